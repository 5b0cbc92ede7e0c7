//! `ctx.try_lock(name) -> Result<bool, Error>` in a writer.
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer]
fn maybe(ctx: &mut Ctx) -> Result<bool, diesel_facade::Error> {
    let took: bool = ctx.try_lock("cleanup")?;
    Ok(took)
}

fn main() {}
