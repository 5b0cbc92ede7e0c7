//! `ctx.lock_timeout(name, Duration)` in a writer.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

use std::time::Duration;

#[writer]
fn locked(ctx: &mut Ctx) -> QueryResult<()> {
    ctx.lock_timeout("counter", Duration::from_millis(500))?;
    Ok(())
}

fn main() {}
