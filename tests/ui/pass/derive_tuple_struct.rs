//! `#[derive(TransactionContext)]` on a tuple struct.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Job(u64, #[facade] Facade<SqliteConnection>);

#[reader]
fn qty(ctx: &mut Job, id: i32) -> QueryResult<i32> {
    let _: u64 = ctx.0;
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn _idle(db: Facade<SqliteConnection>) -> QueryResult<i32> {
    let mut job = Job(7, db);
    let _: &Facade<SqliteConnection> = job.facade();
    qty(&mut job, 1)
}

fn main() {}
