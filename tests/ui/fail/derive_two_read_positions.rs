//! A context has one read position.
use diesel::SqliteConnection;
use diesel_facade::{Facade, ReadPosition, TransactionContext};

#[derive(TransactionContext)]
struct RequestContext {
    #[facade]
    db: Facade<SqliteConnection>,
    #[read_position]
    first: ReadPosition,
    #[read_position]
    second: ReadPosition,
}

fn main() {}
