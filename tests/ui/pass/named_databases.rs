//! A default database and a named one on different backends: `db = api`
//! selects the api database (its connection type in `ctx.conn()`), with
//! every other argument, on concrete and generic contexts.
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{reader, writer, Facade, ReadOnlyConnection, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<PgConnection>,
}

#[reader(db = api)]
fn api_count(ctx: &mut Ctx) -> QueryResult<i64> {
    let conn: &mut ReadOnlyConnection<PgConnection> = ctx.conn();
    items::table.count().get_result(conn)
}

#[reader(db = api, replica)]
fn api_count_on_replica(ctx: &mut Ctx) -> QueryResult<i64> {
    items::table.count().get_result(ctx.conn())
}

#[reader(db = api, allow_replica)]
fn api_count_anywhere(ctx: &mut Ctx) -> QueryResult<i64> {
    items::table.count().get_result(ctx.conn())
}

#[writer(db = api)]
fn api_restock(ctx: &mut Ctx, id: i32) -> QueryResult<i64> {
    let conn: &mut PgConnection = ctx.conn();
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(conn)?;
    // Readers of the same database join.
    api_count(ctx)?;
    api_count_anywhere(ctx)?;
    api_count_on_replica(ctx)
}

#[writer(db = api, savepoint)]
fn api_restock_in_savepoint(ctx: &mut Ctx, id: i32) -> QueryResult<i64> {
    ctx.lock("restock")?;
    api_restock(ctx, id)
}

#[writer(retry = 2, db = api)]
fn api_restock_retried(ctx: &mut Ctx, id: i32) -> QueryResult<i64> {
    api_restock_in_savepoint(ctx, id)
}

#[writer(db = api, independent)]
fn api_audit(ctx: &mut Ctx) -> QueryResult<usize> {
    diesel::sql_query("INSERT INTO audit DEFAULT VALUES").execute(ctx.conn())
}

#[reader(db = api)]
fn api_reader_calls_independent(ctx: &mut Ctx) -> QueryResult<usize> {
    api_audit(ctx)
}

#[reader]
fn main_count(ctx: &mut Ctx) -> QueryResult<i64> {
    let conn: &mut ReadOnlyConnection<SqliteConnection> = ctx.conn();
    items::table.count().get_result(conn)
}

// A generic context works too: the bound travels to the callers.
#[reader(db = api)]
fn generic_api_count<C>(ctx: &mut C) -> QueryResult<i64>
where
    C: TransactionContext,
    diesel_facade::Named<{ diesel_facade::database_id("api") }>:
        diesel_facade::Database<C, Connection = PgConnection>,
{
    items::table.count().get_result(ctx.conn())
}

fn main() {
    // Compile only: the api database is a PostgreSQL server.
    let _ = |ctx: &mut Ctx| -> QueryResult<i64> {
        api_restock_retried(ctx, 1)?;
        api_reader_calls_independent(ctx)?;
        main_count(ctx)?;
        generic_api_count(ctx)
    };
}
