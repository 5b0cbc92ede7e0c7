//! `#[derive(TransactionContext)]` with two fields marked `#[facade]`.
use diesel::SqliteConnection;
use diesel_facade::{Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    primary: Facade<SqliteConnection>,
    #[facade]
    archive: Facade<SqliteConnection>,
}

fn main() {}
