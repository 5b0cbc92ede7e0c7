//! The `#[facade]` field must hold a `diesel_facade::Facade`.
use diesel_facade::TransactionContext;

#[derive(TransactionContext)]
struct RequestContext {
    #[facade]
    db: String,
}

fn main() {}
