//! A `#[reader]` cannot run `DELETE ... RETURNING` through `get_results`. (PostgreSQL: diesel supports RETURNING there without extra features.)
use diesel::prelude::*;
use diesel::PgConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<PgConnection>,
}

#[reader]
fn sneaky(ctx: &mut Ctx) -> QueryResult<Vec<i32>> {
    diesel::delete(items::table)
        .returning(items::id)
        .get_results(ctx.conn())
}

fn main() {}
