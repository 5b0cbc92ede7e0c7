//! `ctx.target(&cell, |ctx| ..)` on a derived context (plain, with a `#[read_position]` field, generic) and on `Context<C>`: nested calls begin on the cell, targets nest, and the closure's value comes back.
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{
    reader, writer, CellMap, Context, Facade, ReadPosition, SupportedConnection, TargetCell,
    TransactionContext,
};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[derive(TransactionContext)]
struct WithPosition {
    #[facade]
    db: Facade<SqliteConnection>,
    #[read_position]
    position: ReadPosition,
}

#[derive(TransactionContext)]
struct Generic<C: SupportedConnection>(#[facade] Facade<C>, u32);

#[reader]
fn one(ctx: &mut Ctx) -> QueryResult<i32> {
    diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
}

#[writer]
fn touch(ctx: &mut Ctx) -> QueryResult<i32> {
    one(ctx)
}

#[reader]
fn two<C: TransactionContext<Connection = SqliteConnection>>(ctx: &mut C) -> QueryResult<i32> {
    diesel::select(2.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
}

fn in_cells(ctx: &mut Ctx, cells: &CellMap<SqliteConnection>) -> Result<i32, diesel_facade::Error> {
    let a = cells.get("a")?;
    let b = cells.get("b")?;
    let sum = ctx.target(a, |ctx| -> QueryResult<i32> {
        let inner = ctx.target(b, |ctx| touch(ctx))?;
        Ok(inner + one(ctx)?)
    })?;
    Ok(sum)
}

fn others(
    with_position: &mut WithPosition,
    context: &mut Context<SqliteConnection>,
    pg: &mut Generic<PgConnection>,
    cell: &Facade<SqliteConnection>,
    pg_cell: &Facade<PgConnection>,
) -> QueryResult<i32> {
    let x = with_position.target(cell, |ctx| two(ctx))?;
    let y = context.target(cell, |ctx| two(ctx))?;
    pg.target(pg_cell, |ctx| ctx.1 = 7);
    Ok(x + y)
}

fn main() {
    let _ = (in_cells, others);
}
