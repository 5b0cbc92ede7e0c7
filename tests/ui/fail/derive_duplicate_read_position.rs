//! `#[read_position]` written twice on one field.
use diesel::SqliteConnection;
use diesel_facade::{Facade, ReadPosition, TransactionContext};

#[derive(TransactionContext)]
struct RequestContext {
    #[facade]
    db: Facade<SqliteConnection>,
    #[read_position]
    #[read_position]
    position: ReadPosition,
}

fn main() {}
