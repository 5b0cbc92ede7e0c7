//! A context whose type does not implement `TransactionContext`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

struct NotACtx {
    db: Facade<SqliteConnection>,
}

#[reader]
fn qty(ctx: &mut NotACtx, id: i32) -> QueryResult<i32> {
    let _ = &ctx.db;
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn main() {}
