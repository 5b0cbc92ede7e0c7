//! A scope only derefs to `&Ctx`: the idle `&mut Ctx` (which could start a second transaction) cannot be taken back.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

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

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())
}

#[reader]
fn get(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
    let idle: &mut Ctx = &mut *ctx;
    restock(idle, id)?;
    items::table.find(id).select(Item::as_select()).first(ctx.conn())
}

fn main() {}
