//! A reader can pass `ctx.conn().database_enforced()` to a function not converted yet (`fn(&mut SqliteConnection)`); the database still runs it READ ONLY.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

fn legacy_count(conn: &mut SqliteConnection) -> QueryResult<i64> {
    items::table.count().get_result(conn)
}

#[reader]
fn count(ctx: &mut Ctx) -> QueryResult<i64> {
    legacy_count(ctx.conn().database_enforced())
}

fn main() {}
