//! Reads that compile on a reader's `ReadOnlyConnection`: `.count().get_result(..)`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn count(ctx: &mut Ctx) -> QueryResult<i64> {
    items::table.count().get_result(ctx.conn())
}

#[reader]
fn count_in_stock(ctx: &mut Ctx) -> QueryResult<i64> {
    items::table.filter(items::qty.gt(0)).count().get_result(ctx.conn())
}

fn main() {}
