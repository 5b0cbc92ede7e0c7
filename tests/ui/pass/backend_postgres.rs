//! The same API on `PgConnection` (compile only): readers, writers, replica readers,
//! the read-only connection, locks and the closure forms.
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::query_builder::AsQuery;
use diesel::PgConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(Queryable, Selectable)]
#[diesel(table_name = items)]
struct Item {
    id: i32,
    name: String,
    qty: i32,
}

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<PgConnection>,
}

#[reader]
fn get(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
    items::table.find(id).select(Item::as_select()).first(ctx.conn())
}

#[reader]
fn stats(ctx: &mut Ctx) -> QueryResult<(i64, bool, Vec<Item>, Vec<(i32, String, i32)>)> {
    let n = items::table.count().get_result(ctx.conn())?;
    let any = diesel::select(exists(items::table.filter(items::qty.gt(0)))).get_result(ctx.conn())?;
    let boxed = items::table.select(Item::as_select()).into_boxed().load(ctx.conn())?;
    let all = items::table.as_query().load(ctx.conn())?;
    Ok((n, any, boxed, all))
}

#[reader(replica)]
fn get_on_replica(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
    items::table.filter(items::id.eq(id)).select(Item::as_select()).first(ctx.conn())
}

#[reader(allow_replica)]
fn legacy(ctx: &mut Ctx) -> QueryResult<i64> {
    let conn: &mut PgConnection = ctx.conn().database_enforced();
    items::table.count().get_result(conn)
}

#[writer(retry)]
fn restock(ctx: &mut Ctx, id: i32) -> Result<Item, diesel_facade::Error> {
    ctx.lock("restock")?;
    ctx.lock_timeout("restock", std::time::Duration::from_secs(1))?;
    let _: bool = ctx.try_lock("other")?;
    ctx.on_commit(|| ());
    let item = get(ctx, id)?;
    diesel::update(items::table.find(id))
        .set(items::qty.eq(item.qty + 1))
        .execute(ctx.conn())?;
    let _ = get_on_replica(ctx, id)?;
    Ok(get(ctx, id)?)
}

/// What a reader may not do (see ui/fail/reader_*_returning.rs, reader_for_*.rs) compiles in a writer.
#[writer]
fn writes_and_locks(ctx: &mut Ctx, id: i32) -> QueryResult<Vec<Item>> {
    let _: Item = diesel::insert_into(items::table)
        .values((items::name.eq("x"), items::qty.eq(0)))
        .returning(Item::as_returning())
        .get_result(ctx.conn())?;
    let _: Item = diesel::update(items::table.find(id))
        .set(items::qty.eq(0))
        .returning(Item::as_returning())
        .get_result(ctx.conn())?;
    let _: Vec<i32> = diesel::delete(items::table).returning(items::id).get_results(ctx.conn())?;
    let _: Vec<Item> = items::table.select(Item::as_select()).for_share().load(ctx.conn())?;
    items::table.select(Item::as_select()).for_update().load(ctx.conn())
}

#[writer(savepoint)]
fn rename(ctx: &mut Ctx, id: i32, name: &str) -> QueryResult<usize> {
    diesel::update(items::table.find(id)).set(items::name.eq(name)).execute(ctx.conn())
}

#[writer(independent, retry = 2)]
fn audit(ctx: &mut Ctx) -> QueryResult<usize> {
    diesel::delete(items::table.filter(items::qty.lt(0))).execute(ctx.conn())
}

fn _idle(ctx: &mut Ctx) -> Result<i64, diesel_facade::Error> {
    restock(ctx, 1)?;
    rename(ctx, 1, "x")?;
    writes_and_locks(ctx, 1)?;
    audit(ctx)?;
    let n = diesel_facade::read(ctx, |ctx| stats(ctx).map(|s| s.0))?;
    let m = diesel_facade::read_replica(ctx, |ctx| legacy(ctx))?;
    diesel_facade::write(ctx, |ctx| rename(ctx, 1, "y"))?;
    Ok(n + m)
}

fn main() {}
