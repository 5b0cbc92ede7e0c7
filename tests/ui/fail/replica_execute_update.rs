//! A `#[reader(replica)]` body cannot `.execute(..)` an UPDATE either.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader(replica)]
fn sneaky(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(0))
        .execute(ctx.conn())
}

fn main() {}
