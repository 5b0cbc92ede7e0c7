//! The five-minute tour, on an embedded SQLite file: no server needed.
//!
//! `cargo run --example quickstart`
//!
//! It creates `target/quickstart.db`, runs the embedded migrations (the
//! `locks` table), creates an `items` table, and shows a writer that joins
//! readers, a rollback, a savepoint, a lock and what each did.

use std::time::Duration;

use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! {
    items (id) {
        id -> Integer,
        name -> Text,
        qty -> Integer,
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = items)]
struct Item {
    id: i32,
    name: String,
    qty: i32,
}

/// One request's context: a request id for logs, and the database handle.
#[derive(TransactionContext)]
struct RequestContext {
    request_id: String,
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn get_item(ctx: &mut RequestContext, id: i32) -> QueryResult<Item> {
    items::table
        .find(id)
        .select(Item::as_select())
        .first(ctx.conn())
}

#[reader]
fn total_qty(ctx: &mut RequestContext) -> QueryResult<i64> {
    items::table
        .select(diesel::dsl::sum(items::qty))
        .first::<Option<i64>>(ctx.conn())
        .map(Option::unwrap_or_default)
}

#[writer]
fn restock(ctx: &mut RequestContext, id: i32, by: i32) -> QueryResult<Item> {
    let item = get_item(ctx, id)?; // joins this transaction
    diesel::update(items::table.find(id))
        .set(items::qty.eq(item.qty + by))
        .execute(ctx.conn())?;
    let request_id = ctx.request_id.clone();
    ctx.on_commit(move || println!("  [{request_id}] on_commit: restock is durable"));
    get_item(ctx, id) // sees the uncommitted update
}

#[writer]
fn restock_everything_then_fail(ctx: &mut RequestContext) -> QueryResult<()> {
    diesel::update(items::table)
        .set(items::qty.eq(items::qty + 100))
        .execute(ctx.conn())?;
    println!("  inside the failing writer, total = {}", total_qty(ctx)?);
    Err(diesel::result::Error::RollbackTransaction)
}

#[writer(savepoint)]
fn try_rename(ctx: &mut RequestContext, id: i32, name: &str) -> QueryResult<()> {
    diesel::update(items::table.find(id))
        .set(items::name.eq(name))
        .execute(ctx.conn())?;
    if name.is_empty() {
        return Err(diesel::result::Error::RollbackTransaction);
    }
    Ok(())
}

#[writer(retry)]
fn locked_restock(ctx: &mut RequestContext, id: i32) -> Result<Item, diesel_facade::Error> {
    ctx.lock_timeout("restock", Duration::from_secs(2))?;
    Ok(restock(ctx, id, 1)?)
}

#[writer]
fn seed(ctx: &mut RequestContext) -> QueryResult<()> {
    diesel::sql_query(
        "CREATE TABLE IF NOT EXISTS items (
             id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL)",
    )
    .execute(ctx.conn())?;
    diesel::delete(items::table).execute(ctx.conn())?;
    diesel::insert_into(items::table)
        .values(&vec![
            (items::id.eq(1), items::name.eq("bolt"), items::qty.eq(10)),
            (items::id.eq(2), items::name.eq("nut"), items::qty.eq(20)),
        ])
        .execute(ctx.conn())?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace directory")?
        .join("target");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("quickstart.db");
    let url = path.to_str().ok_or("target path is not UTF-8")?;

    let db = Facade::<SqliteConnection>::builder()
        .writer(url)
        .max_pool_size(4)
        .pool_timeout(Duration::from_secs(5))
        .build()?;
    let applied = db.run_migrations()?;
    println!("database: {url}");
    println!("migrations applied now: {applied:?} (empty when already applied)");

    let mut ctx = RequestContext {
        request_id: "req-1".into(),
        db: db.clone(),
    };
    seed(&mut ctx)?;
    println!("seeded: total qty = {}", total_qty(&mut ctx)?);

    println!("1. a writer that joins two readers:");
    let before = db.stats();
    let item = restock(&mut ctx, 1, 5)?;
    let after = db.stats();
    println!(
        "  restocked {} (#{}) to {}: {} checkout, {} transaction, {} commit",
        item.name,
        item.id,
        item.qty,
        after.checkouts - before.checkouts,
        after.transactions - before.transactions,
        after.commits - before.commits,
    );

    println!("2. a writer that fails rolls back everything:");
    let err = restock_everything_then_fail(&mut ctx).unwrap_err();
    println!(
        "  it returned `{err}`; total after rollback = {}",
        total_qty(&mut ctx)?
    );

    println!("3. a savepoint undoes only its own work:");
    diesel_facade::write(&mut ctx, |ctx| {
        try_rename(ctx, 1, "hex bolt")?;
        let failed = try_rename(ctx, 2, "");
        println!("  second rename failed ({failed:?}) and was rolled back alone");
        Ok::<_, diesel::result::Error>(())
    })?;
    println!(
        "  names now: {}, {}",
        get_item(&mut ctx, 1)?.name,
        get_item(&mut ctx, 2)?.name
    );

    println!("4. a lock, held until the outermost transaction ends:");
    let item = locked_restock(&mut ctx, 2)?;
    println!("  {} now has qty {}", item.name, item.qty);

    println!("5. the read-only backstop: raw SQL writes fail in a reader:");
    let err = diesel_facade::read(&mut ctx, |ctx| {
        diesel::sql_query("DELETE FROM items").execute(ctx.conn().database_enforced())
    })
    .map_err(diesel_facade::Error::from)
    .unwrap_err();
    println!("  {:?}: {}", err.kind(), err);

    let stats = db.stats();
    println!(
        "totals: {} transactions, {} commits, {} rollbacks, {} checkouts",
        stats.transactions, stats.commits, stats.rollbacks, stats.checkouts
    );
    Ok(())
}
