//! Two fields marked with the same database name, and a name that is not
//! an identifier.
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<PgConnection>,
    #[facade(api)]
    api_again: Facade<PgConnection>,
    #[facade("audit")]
    audit: Facade<PgConnection>,
}

fn main() {}
