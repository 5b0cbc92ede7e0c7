//! `#[reader]` on a function declaration without a body.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

trait Repo {
    #[reader]
    fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32>;
}

fn main() {}
