//! `#[derive(TransactionContext)]` on a struct with no `Facade` field.
use diesel_facade::TransactionContext;

#[derive(TransactionContext)]
struct Ctx {
    request_id: String,
    url: String,
}

fn main() {}
