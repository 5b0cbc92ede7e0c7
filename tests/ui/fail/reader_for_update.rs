//! A `#[reader]` cannot take row locks with `.for_update()` (PostgreSQL: SQLite has no FOR UPDATE at all).
use diesel::prelude::*;
use diesel::PgConnection;
use diesel_facade::{reader, Facade, TransactionContext};

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
fn sneaky(ctx: &mut Ctx) -> QueryResult<Vec<Item>> {
    items::table.select(Item::as_select()).for_update().load(ctx.conn())
}

fn main() {}
