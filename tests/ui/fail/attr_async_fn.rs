//! `#[reader]`/`#[writer]` on an `async fn`: diesel is synchronous.
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
async fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn main() {}
