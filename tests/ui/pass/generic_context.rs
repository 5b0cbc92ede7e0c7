//! A generic context `C: TransactionContext<Connection = SqliteConnection>`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

use diesel_facade::Context;

#[reader]
fn qty<C: TransactionContext<Connection = SqliteConnection>>(ctx: &mut C, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[writer]
fn restock<C: TransactionContext<Connection = SqliteConnection>>(ctx: &mut C, id: i32) -> QueryResult<i32> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())?;
    qty(ctx, id)
}

fn _idle(ctx: &mut Ctx, ready_made: &mut Context<SqliteConnection>) -> QueryResult<i32> {
    restock(ctx, 1)?;
    qty(ready_made, 1)
}

fn main() {}
