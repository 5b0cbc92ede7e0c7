//! Scatter-gather runs a read-only transaction per cell: a `#[writer]` inside it does not compile.
use std::time::Duration;

use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, CellMap, Facade, TransactionContext};

#[derive(Clone, TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer]
fn bump(ctx: &mut Ctx) -> QueryResult<usize> {
    diesel::sql_query("UPDATE counters SET value = value + 1").execute(ctx.conn())
}

fn everywhere(cells: &CellMap<SqliteConnection>, ctx: &Ctx) {
    let _ = cells.scatter_gather(ctx, Duration::from_secs(1), |ctx| bump(ctx));
}

fn main() {}
