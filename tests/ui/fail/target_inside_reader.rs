//! A transaction cannot move to another cell: inside a `#[reader]`, `ctx` is a scope, and `target` names the fix.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TargetCell, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn qty_in(ctx: &mut Ctx, cell: &Facade<SqliteConnection>, id: i32) -> QueryResult<i32> {
    ctx.target(cell, |ctx| items::table.find(id).select(items::qty).first(ctx.conn()))
}

fn main() {}
