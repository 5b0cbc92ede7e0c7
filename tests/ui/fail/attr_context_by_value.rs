//! The context parameter taken by value: it must be `&mut`.
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
fn qty(ctx: Ctx, id: i32) -> QueryResult<i32> {
    let _ = ctx;
    Ok(id)
}

fn main() {}
