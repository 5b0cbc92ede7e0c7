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

// Nested, the scope passed to `check` is borrowed only for this body, so the
// result borrows from `name`, not from `check`'s return value.
#[writer]
fn rename<'a>(ctx: &'a mut Ctx, name: &'a str) -> QueryResult<&'a str> {
    diesel::update(items::table).set(items::name.eq(name)).execute(ctx.conn())?;
    check(ctx, name)?;
    Ok(name)
}

#[reader]
fn longest<'c, 'n>(ctx: &'c mut Ctx, names: &'n [String]) -> QueryResult<Option<&'n str>> {
    let _: i64 = items::table.count().get_result(ctx.conn())?;
    Ok(names.iter().map(String::as_str).max_by_key(|name| name.len()))
}

fn _idle<'n>(ctx: &'n mut Ctx, name: &'n str) -> QueryResult<&'n str> {
    rename(ctx, name)?;
    check(ctx, name)
}

fn main() {}
