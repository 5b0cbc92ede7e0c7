//! `db = NAME` with a name the context does not declare: the first error is
//! on the name (the body, whose connection type is then unknown, adds more).
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{reader, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<PgConnection>,
}

#[reader(db = apii)]
fn count(ctx: &mut Ctx) -> QueryResult<i64> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("1")).get_result(ctx.conn())
}

fn main() {}
