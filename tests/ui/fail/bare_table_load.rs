//! A bare table does not load on a `ReadOnlyConnection` (Rust coherence: diesel's blanket `LoadQuery` impl for tables); write `items::table.as_query().load(..)` or `.select(Item::as_select()).load(..)` instead (see pass/read_bare_table_alternatives.rs).
use diesel::prelude::*;
use diesel::SqliteConnection;
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
    db: Facade<SqliteConnection>,
}

#[reader]
fn all(ctx: &mut Ctx) -> QueryResult<Vec<(i32, String, i32)>> {
    items::table.load(ctx.conn())
}

fn main() {}
