//! A first parameter that starts with `self` but is no receiver (the path
//! pattern `self::Unit`) is the context parameter, and is not `&mut`: the
//! token-level path of the macro must not take it for `self` and pick the
//! next parameter instead (found by an attack pass).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

struct Unit;

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn qty(self::Unit: Unit, ctx: &mut Ctx) -> QueryResult<i32> {
    let _ = ctx;
    Ok(1)
}

fn main() {}
