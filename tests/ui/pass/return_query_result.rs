//! `QueryResult<T>` (diesel::result::Error implements `From<diesel_facade::Error>`): existing diesel functions convert with the attribute alone.
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
fn restock(ctx: &mut Ctx, id: i32) -> diesel::QueryResult<i32> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())?;
    qty(ctx, id)
}

#[reader]
fn qty_spelled_out(ctx: &mut Ctx, id: i32) -> Result<i32, diesel::result::Error> {
    qty(ctx, id)
}

fn _idle(ctx: &mut Ctx) -> QueryResult<i32> {
    restock(ctx, 1)?;
    qty_spelled_out(ctx, 1)
}

fn main() {}
