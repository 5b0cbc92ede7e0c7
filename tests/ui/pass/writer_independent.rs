//! `#[writer(independent)]`: its own transaction on its own connection.
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

fn _idle(ctx: &mut Ctx) -> QueryResult<usize> {
    audit(ctx, "x")
}

fn main() {}
