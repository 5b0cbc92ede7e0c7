//! Nesting: a `#[reader]` called inside a `#[writer]` joins its transaction.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

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

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    let before = qty(ctx, id)?;
    diesel::update(items::table.find(id))
        .set(items::qty.eq(before + 1))
        .execute(ctx.conn())?;
    qty(ctx, id)
}

fn main() {}
