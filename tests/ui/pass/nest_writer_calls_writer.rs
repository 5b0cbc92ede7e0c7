//! Nesting: a `#[writer]` called inside a `#[writer]` joins its transaction.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())
}

#[writer]
fn restock_twice(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    Ok(restock(ctx, id)? + restock(ctx, id)?)
}

fn main() {}
