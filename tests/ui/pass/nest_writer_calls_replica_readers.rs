//! Nesting: `#[reader(replica)]` and `#[reader(allow_replica)]` called inside a `#[writer]` join it.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader(allow_replica)]
fn qty_anywhere(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[reader(replica)]
fn qty_on_replica(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())
}

#[writer]
fn restock_checked(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    restock(ctx, id)?;
    Ok(qty_anywhere(ctx, id)? + qty_on_replica(ctx, id)?)
}

fn main() {}
