//! `Result<T, diesel_facade::Error>`.
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
fn qty(ctx: &mut Ctx, id: i32) -> Result<i32, diesel_facade::Error> {
    Ok(items::table.find(id).select(items::qty).first(ctx.conn())?)
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> Result<i32, diesel_facade::Error> {
    ctx.lock("restock")?;
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())?;
    qty(ctx, id)
}

fn _idle(ctx: &mut Ctx) -> Result<i32, diesel_facade::Error> {
    restock(ctx, 1)
}

fn main() {}
