//! `ctx.lock(name)` in a writer: `Result<(), diesel_facade::Error>`, converts with `?`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer]
fn locked(ctx: &mut Ctx) -> QueryResult<()> {
    ctx.lock("counter")?;
    let name = String::from("per-tenant");
    ctx.lock(&name)?;
    Ok(())
}

#[writer]
fn locked_facade_error(ctx: &mut Ctx) -> Result<(), diesel_facade::Error> {
    ctx.lock("counter")
}

fn main() {}
