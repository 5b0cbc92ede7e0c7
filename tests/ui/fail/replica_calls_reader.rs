//! A `#[reader(replica)]` (which may run on a replica) cannot call a plain `#[reader]` (primary only).
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
fn get(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
    items::table.find(id).select(Item::as_select()).first(ctx.conn())
}

#[reader(replica)]
fn get_twice(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
    get(ctx, id)?;
    get(ctx, id)
}

fn main() {}
