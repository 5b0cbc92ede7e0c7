//! `#[read_position]` marks the field holding the context's read-your-writes
//! position; the derive hands it out.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, ReadPosition, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct RequestContext {
    #[facade]
    db: Facade<SqliteConnection>,
    #[read_position]
    position: ReadPosition,
}

#[reader(replica)]
fn qty(ctx: &mut RequestContext, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn _idle(db: Facade<SqliteConnection>) -> QueryResult<i32> {
    let mut ctx = RequestContext { db, position: ReadPosition::new() };
    let _: Option<&ReadPosition> = ctx.read_position();
    let _ = &ctx.position;
    qty(&mut ctx, 1)
}

fn main() {}
