//! `#[derive(TransactionContext)]` on an enum.
use diesel::SqliteConnection;
use diesel_facade::{Facade, TransactionContext};

#[derive(TransactionContext)]
enum Ctx {
    Primary(#[facade] Facade<SqliteConnection>),
    Other(Facade<SqliteConnection>),
}

fn main() {}
