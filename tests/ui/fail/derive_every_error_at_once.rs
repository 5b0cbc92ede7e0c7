//! A struct with several problems gets every error in one compile, each on
//! its own token: a marker on the struct, a marker with arguments, a
//! repeated marker, two unmarked `Facade` fields and two read positions.
use diesel::SqliteConnection;
use diesel_facade::{Facade, ReadPosition, TransactionContext};

#[derive(TransactionContext)]
#[facade]
struct RequestContext {
    primary: Facade<SqliteConnection>,
    archive: Facade<SqliteConnection>,
    #[read_position(primary)]
    first: ReadPosition,
    #[read_position]
    #[read_position]
    second: ReadPosition,
}

fn main() {}
