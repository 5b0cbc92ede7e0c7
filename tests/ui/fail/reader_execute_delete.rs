//! A `#[reader]` cannot `.execute(..)` a DELETE.
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
    diesel::delete(items::table).execute(ctx.conn())
}

fn main() {}
