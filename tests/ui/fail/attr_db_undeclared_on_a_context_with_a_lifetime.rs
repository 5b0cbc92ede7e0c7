//! On a context with a lifetime, a name the context does not declare is
//! reported on the context parameter (the where-clause that would report it
//! on the name would hide the derive's impl from the body).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx<'r> {
    #[facade]
    main: Facade<SqliteConnection>,
    request_id: &'r str,
}

#[reader(db = nope)]
fn f(ctx: &mut Ctx<'_>) -> QueryResult<i64> {
    let _ = ctx;
    Ok(1)
}

fn main() {}
