//! `#[derive(TransactionContext)]` with two `Facade` fields and no `#[facade]` marker: ambiguous.
use diesel::SqliteConnection;
use diesel_facade::{Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    primary: Facade<SqliteConnection>,
    archive: Facade<SqliteConnection>,
}

fn main() {}
