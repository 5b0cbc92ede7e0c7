//! `ctx.conn()` in a `db = api` function is the api database's connection,
//! not the default one's.
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{writer, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<PgConnection>,
}

#[writer(db = api)]
fn touch(ctx: &mut Ctx) -> QueryResult<usize> {
    let conn: &mut SqliteConnection = ctx.conn();
    diesel::sql_query("UPDATE t SET x = 1").execute(conn)
}

fn main() {}
