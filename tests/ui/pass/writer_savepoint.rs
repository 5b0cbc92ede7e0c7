//! `#[writer(savepoint)]`: a SAVEPOINT when called inside a writer.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer(savepoint)]
fn rename(ctx: &mut Ctx, id: i32, name: &str) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::name.eq(name))
        .execute(ctx.conn())
}

fn _idle(ctx: &mut Ctx) -> QueryResult<usize> {
    rename(ctx, 1, "x")
}

fn main() {}
