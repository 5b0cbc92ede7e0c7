//! `#[derive(TransactionContext)]` on a struct with named fields, one marked `#[facade]`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct RequestContext {
    request_id: String,
    #[facade]
    db: Facade<SqliteConnection>,
    other: Option<Facade<SqliteConnection>>,
}

#[reader]
fn qty(ctx: &mut RequestContext, id: i32) -> QueryResult<i32> {
    let _: &str = &ctx.request_id; // the scope derefs to the context
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn _idle(db: Facade<SqliteConnection>) -> QueryResult<i32> {
    let mut ctx = RequestContext { request_id: "req-1".into(), db, other: None };
    let _: &Facade<SqliteConnection> = ctx.facade();
    let _ = &ctx.other;
    qty(&mut ctx, 1)
}

fn main() {}
