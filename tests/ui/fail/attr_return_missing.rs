//! A data-access function without a return type.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) {
    let _ = diesel::update(items::table.find(id)).set(items::qty.eq(0)).execute(ctx.conn());
}

fn main() {}
