//! Nesting: a `#[writer(savepoint)]` called inside a `#[writer]` runs in a SAVEPOINT.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer(savepoint)]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())
}

#[writer]
fn restock_or_not(ctx: &mut Ctx, id: i32) -> QueryResult<bool> {
    Ok(restock(ctx, id).is_ok())
}

fn main() {}
