//! Nesting: a `#[reader]` called inside a `#[reader]` joins its transaction.
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
fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[reader]
fn total(ctx: &mut Ctx) -> QueryResult<i32> {
    Ok(qty(ctx, 1)? + qty(ctx, 2)?)
}

fn main() {}
