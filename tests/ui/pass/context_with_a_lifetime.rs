//! A context that borrows (`Ctx<'r>`), with a named database: the derive
//! and `db = api` work on it, and the body names the database's connection
//! type. (Write the lifetime, `Ctx<'_>`, in the signature.)
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{reader, writer, Facade, ReadOnlyConnection, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx<'r> {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<PgConnection>,
    request_id: &'r str,
}

#[reader(db = api)]
fn api_count(ctx: &mut Ctx<'_>) -> QueryResult<i64> {
    let conn: &mut ReadOnlyConnection<PgConnection> = ctx.conn();
    items::table.count().get_result(conn)
}

#[writer(db = api)]
fn api_restock(ctx: &mut Ctx<'_>, id: i32) -> QueryResult<i64> {
    let conn: &mut PgConnection = ctx.conn();
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(conn)?;
    api_count(ctx)
}

#[reader]
fn main_count<'r>(ctx: &mut Ctx<'r>) -> QueryResult<i64> {
    let conn: &mut ReadOnlyConnection<SqliteConnection> = ctx.conn();
    items::table.count().get_result(conn)
}

#[writer]
fn main_then_api(ctx: &mut Ctx<'_>) -> QueryResult<i64> {
    let _ = ctx.request_id;
    main_count(ctx)?;
    api_restock(ctx, 1)
}

fn main() {
    // Compile only: the api database is a PostgreSQL server.
    let _ = |ctx: &mut Ctx<'_>| -> QueryResult<i64> { main_then_api(ctx) };
}
