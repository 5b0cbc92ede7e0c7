//! Each cell's read gets a clone of the context, on a thread of its own: the context must be `Clone`.
use std::time::Duration;

use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, CellMap, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn one(ctx: &mut Ctx) -> QueryResult<i32> {
    diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
}

fn everywhere(cells: &CellMap<SqliteConnection>, ctx: &Ctx) {
    let _ = cells.scatter_gather(ctx, Duration::from_secs(1), |ctx| one(ctx));
}

fn main() {}
