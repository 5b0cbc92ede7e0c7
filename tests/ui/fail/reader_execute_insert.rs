//! A `#[reader]` cannot `.execute(..)` an INSERT.
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
fn sneaky(ctx: &mut Ctx) -> QueryResult<usize> {
    diesel::insert_into(items::table)
        .values((items::name.eq("x"), items::qty.eq(0)))
        .execute(ctx.conn())
}

fn main() {}
