//! `try_lock` and `lock_timeout` are writer-only too, also in a replica reader.
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader(replica)]
fn sneaky(ctx: &mut Ctx) -> Result<bool, diesel_facade::Error> {
    ctx.lock_timeout("x", std::time::Duration::from_secs(1))?;
    ctx.try_lock("x")
}

fn main() {}
