//! A data-access function must return a `Result` (commit on `Ok`, roll back on `Err`).
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
fn qty(ctx: &mut Ctx, id: i32) -> Option<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn()).ok()
}

fn main() {}
