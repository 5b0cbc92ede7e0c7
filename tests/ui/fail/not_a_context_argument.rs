//! Passing something that is neither a request context nor a scope to a `#[reader]`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

struct NotACtx {
    db: Facade<SqliteConnection>,
}

#[reader]
fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn call(not_a_ctx: &mut NotACtx) -> QueryResult<i32> {
    let _ = &not_a_ctx.db;
    qty(not_a_ctx, 1)
}

fn main() {}
