//! A context with named databases still needs its default one.
use diesel::PgConnection;
use diesel_facade::{Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade(api)]
    api: Facade<PgConnection>,
}

fn main() {}
