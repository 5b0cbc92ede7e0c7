//! Explicit lifetimes shared by the context and other parameters, and in the return type.
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
fn check<'a>(ctx: &'a mut Ctx, name: &'a str) -> QueryResult<&'a str> {
    let _: i64 = items::table.filter(items::name.eq(name)).count().get_result(ctx.conn())?;
    Ok(name)
}

#[writer]
fn rename<'a, 'b>(ctx: &'a mut Ctx, name: &'b str) -> QueryResult<&'b str> {
    diesel::update(items::table).set(items::name.eq(name)).execute(ctx.conn())?;
    check(ctx, name)
}

fn _idle<'n>(ctx: &mut Ctx, name: &'n str) -> QueryResult<&'n str> {
    rename(ctx, name)
}

fn main() {}
