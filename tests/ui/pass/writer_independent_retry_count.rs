//! `#[writer(independent, retry = 2)]`: an independent transaction, retried.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer(independent, retry = 2)]
fn audit(ctx: &mut Ctx, name: &str) -> QueryResult<usize> {
    diesel::insert_into(items::table)
        .values((items::name.eq(name), items::qty.eq(0)))
        .execute(ctx.conn())
}

fn _idle(ctx: &mut Ctx) -> QueryResult<usize> {
    audit(ctx, "x")
}

#[reader]
fn _from_reader(ctx: &mut Ctx) -> QueryResult<usize> {
    audit(ctx, "x")
}

fn main() {}
