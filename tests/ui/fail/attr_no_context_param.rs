//! A data-access function needs a context parameter first.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn qty(id: i32) -> QueryResult<i32> {
    Ok(id)
}

#[writer]
fn nothing() -> QueryResult<()> {
    Ok(())
}

struct Repo;

impl Repo {
    #[reader]
    fn qty(&self) -> QueryResult<i32> {
        Ok(0)
    }
}

fn main() {}
