//! SQLite allows one writer at a time: a `#[writer(independent)]` inside a `#[writer]` could never commit, so it does not compile.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer(independent)]
fn audit(ctx: &mut Ctx, name: &str) -> QueryResult<usize> {
    diesel::insert_into(items::table)
        .values((items::name.eq(name), items::qty.eq(0)))
        .execute(ctx.conn())
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    audit(ctx, "restock")?;
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())
}

fn main() {}
