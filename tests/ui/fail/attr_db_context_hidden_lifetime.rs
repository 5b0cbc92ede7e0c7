//! A context with a lifetime written without it (`&mut Ctx`) on a
//! `db = NAME` function: "missing lifetime specifier" on the type, whose
//! last suggestion is the fix (`Ctx<'a>`; `Ctx<'_>` works too).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx<'r> {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<SqliteConnection>,
    request_id: &'r str,
}

#[reader(db = api)]
fn f(ctx: &mut Ctx) -> QueryResult<i64> {
    let _ = ctx;
    Ok(1)
}

fn main() {}
