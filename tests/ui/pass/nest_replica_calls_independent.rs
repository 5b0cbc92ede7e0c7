//! Nesting: a `#[writer(independent)]` called inside replica readers starts a new transaction.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer(independent)]
fn audit(ctx: &mut Ctx, name: &str) -> QueryResult<usize> {
    diesel::insert_into(items::table)
        .values((items::name.eq(name), items::qty.eq(0)))
        .execute(ctx.conn())
}

#[reader(replica)]
fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    audit(ctx, "read")?;
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[reader(allow_replica)]
fn qty_anywhere(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    audit(ctx, "read")?;
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn main() {}
