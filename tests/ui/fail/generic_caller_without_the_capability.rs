//! Code generic over a scope must state the capability it passes on: a
//! `WriteAccess` bound does not promise `ReadAccess` (the fix the compiler
//! suggests is `+ diesel_facade::ReadAccess`).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext, WriteAccess};

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

fn twice<S: WriteAccess<Context = Ctx>>(scope: &mut S) -> QueryResult<i32> {
    Ok(qty(scope, 1)? + qty(scope, 1)?)
}

fn main() {
    let _ = twice::<Ctx>;
}
