//! Reads that compile on a reader's `ReadOnlyConnection`: `.select(Item::as_select()).load(..)` and `get_results`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(Queryable, Selectable)]
#[diesel(table_name = items)]
struct Item {
    id: i32,
    name: String,
    qty: i32,
}

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn all(ctx: &mut Ctx) -> QueryResult<Vec<Item>> {
    items::table.select(Item::as_select()).load(ctx.conn())
}

#[reader]
fn all_again(ctx: &mut Ctx) -> QueryResult<Vec<Item>> {
    items::table.select(Item::as_select()).get_results(ctx.conn())
}

fn main() {}
