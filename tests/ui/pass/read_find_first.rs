//! Reads that compile on a reader's `ReadOnlyConnection`: `.find(..).first(..)`.
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
fn get(ctx: &mut Ctx, id: i32) -> QueryResult<(i32, String, i32)> {
    items::table.find(id).first(ctx.conn())
}

#[reader]
fn get_optional(ctx: &mut Ctx, id: i32) -> QueryResult<Option<Item>> {
    items::table.find(id).select(Item::as_select()).first(ctx.conn()).optional()
}

fn main() {}
