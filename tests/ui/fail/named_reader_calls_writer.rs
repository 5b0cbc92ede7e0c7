//! The nesting rules hold per database: an api reader cannot call an api
//! writer (the api transaction is read-only).
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{reader, writer, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<PgConnection>,
}

#[writer(db = api)]
fn touch(ctx: &mut Ctx) -> QueryResult<usize> {
    diesel::sql_query("UPDATE t SET x = 1").execute(ctx.conn())
}

#[reader(db = api)]
fn read_and_touch(ctx: &mut Ctx) -> QueryResult<usize> {
    touch(ctx)
}

fn main() {}
