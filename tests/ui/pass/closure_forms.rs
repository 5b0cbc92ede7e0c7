//! The closure forms `diesel_facade::read`, `write` and `read_replica`, alone and nested.
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
fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn _idle(ctx: &mut Ctx) -> QueryResult<i32> {
    let a: i32 = diesel_facade::read(ctx, |ctx| {
        items::table.find(1).select(items::qty).first(ctx.conn())
    })?;
    let b: i32 = diesel_facade::read_replica(ctx, |ctx| {
        items::table.find(1).select(items::qty).first(ctx.conn())
    })?;
    let c: i32 = diesel_facade::write(ctx, |ctx| {
        diesel::update(items::table.find(1))
            .set(items::qty.eq(items::qty + 1))
            .execute(ctx.conn())?;
        ctx.on_commit(|| ());
        // Nested: a closure form and a #[reader] join this transaction.
        let inner: i32 = diesel_facade::read(ctx, |ctx| qty(ctx, 1))?;
        Ok::<_, diesel::result::Error>(inner + qty(ctx, 1)?)
    })?;
    Ok(a + b + c)
}

fn main() {}
