//! Reads that compile on a reader's `ReadOnlyConnection`: `.filter(..).load(..)`, ordered and limited.
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
fn in_stock(ctx: &mut Ctx) -> QueryResult<Vec<(i32, String, i32)>> {
    items::table
        .filter(items::qty.gt(0))
        .order(items::id)
        .limit(10)
        .load(ctx.conn())
}

#[reader]
fn names(ctx: &mut Ctx) -> QueryResult<Vec<String>> {
    items::table.filter(items::qty.gt(0)).select(items::name).load(ctx.conn())
}

fn main() {}
