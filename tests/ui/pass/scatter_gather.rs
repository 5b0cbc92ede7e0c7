//! Scatter-gather with the application's own `#[reader]` functions (plain, `allow_replica`, generic) and with a closure on `ctx.conn()`.
use std::collections::BTreeMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, CellMap, CellOutcome, Context, Facade, TransactionContext};

#[derive(Clone, TransactionContext)]
struct Ctx {
    request_id: String,
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn one(ctx: &mut Ctx) -> QueryResult<i32> {
    let _ = &ctx.request_id;
    diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
}

#[reader(allow_replica)]
fn replica_ok(ctx: &mut Ctx) -> QueryResult<i32> {
    diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
}

#[reader]
fn generic<C: TransactionContext<Connection = SqliteConnection>>(ctx: &mut C) -> Result<i64, diesel_facade::Error> {
    Ok(diesel::select(1.into_sql::<diesel::sql_types::BigInt>()).get_result(ctx.conn())?)
}

fn gather(cells: &CellMap<SqliteConnection>, ctx: &Ctx) {
    let t = Duration::from_secs(1);
    let a: BTreeMap<String, CellOutcome<i32, diesel::result::Error>> =
        cells.scatter_gather(ctx, t, |ctx| one(ctx));
    let _ = cells.scatter_gather(ctx, t, |ctx| replica_ok(ctx));
    let _ = cells.scatter_gather(ctx, t, |ctx| generic(ctx));
    let _ = cells.scatter_gather(ctx, t, |ctx| {
        let _: &Ctx = ctx;
        diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result::<i32>(ctx.conn())
    });
    let plain: Context<SqliteConnection> = ctx.db.context();
    let _ = cells.scatter_gather(&plain, t, |ctx| generic(ctx));
    let _ = a;
}

fn main() {
    let _ = gather;
}
