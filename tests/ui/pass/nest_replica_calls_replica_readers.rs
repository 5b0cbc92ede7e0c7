//! Nesting: `#[reader(allow_replica)]` and `#[reader(replica)]` called inside either replica reader join it.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

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

#[reader(replica)]
fn total_on_replica(ctx: &mut Ctx) -> QueryResult<i32> {
    Ok(qty_anywhere(ctx, 1)? + qty_on_replica(ctx, 2)?)
}

#[reader(allow_replica)]
fn total_anywhere(ctx: &mut Ctx) -> QueryResult<i32> {
    Ok(qty_anywhere(ctx, 1)? + qty_on_replica(ctx, 2)? + total_on_replica(ctx)?)
}

fn main() {}
