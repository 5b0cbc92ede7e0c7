//! `Facade::context()`: a ready-made `diesel_facade::Context<C>` for scripts and tests.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Context, Facade};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[reader]
fn qty(ctx: &mut Context<SqliteConnection>, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[writer]
fn restock(ctx: &mut Context<SqliteConnection>, id: i32) -> QueryResult<i32> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())?;
    qty(ctx, id)
}

fn _idle(db: &Facade<SqliteConnection>) -> QueryResult<i32> {
    let mut ctx: Context<SqliteConnection> = db.context();
    restock(&mut ctx, 1)?;
    restock(&mut db.context(), 1)
}

fn main() {}
