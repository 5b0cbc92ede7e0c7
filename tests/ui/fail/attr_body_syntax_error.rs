//! A syntax error in the body of a data-access function is reported once, where it is, and the function still exists for its callers.
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
    let qty: i32 = items::table.find(id).select(items::qty).first(ctx.conn())?;
    let twice = qty * ;
    Ok(twice)
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())?;
    qty(ctx, id)
}

fn main() {}
