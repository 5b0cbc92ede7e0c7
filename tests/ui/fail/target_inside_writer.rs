//! Re-targeting inside a `#[writer]` (with the open transaction's scope) does not compile either.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TargetCell, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer]
fn move_on(ctx: &mut Ctx, cell: &Facade<SqliteConnection>) -> QueryResult<()> {
    ctx.target(cell, |_| ());
    Ok(())
}

fn main() {}
