//! `#[derive(TransactionContext)]` without `#[facade]`: the only field of type `Facade<..>` is used.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct RequestContext {
    user: String,
    db: Facade<SqliteConnection>,
}

#[derive(TransactionContext)]
struct Job(u64, diesel_facade::Facade<SqliteConnection>);

#[reader]
fn qty(ctx: &mut RequestContext, id: i32) -> QueryResult<i32> {
    let _: &str = &ctx.user;
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn _idle(db: Facade<SqliteConnection>) -> QueryResult<i32> {
    let _: &Facade<SqliteConnection> = Job(1, db.clone()).facade();
    qty(&mut RequestContext { user: String::new(), db }, 1)
}

fn main() {}
