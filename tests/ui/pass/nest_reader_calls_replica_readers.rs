//! Nesting: `#[reader(allow_replica)]` and `#[reader(replica)]` called inside a `#[reader]` join it.
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

#[reader]
fn total(ctx: &mut Ctx) -> QueryResult<i32> {
    Ok(qty_anywhere(ctx, 1)? + qty_on_replica(ctx, 2)?)
}

fn main() {}
