//! Reads that compile on a reader's `ReadOnlyConnection`: `diesel::select(exists(..))` and other bare selects.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

use diesel::dsl::exists;

#[reader]
fn has_item(ctx: &mut Ctx, id: i32) -> QueryResult<bool> {
    diesel::select(exists(items::table.find(id))).get_result(ctx.conn())
}

#[reader]
fn answer(ctx: &mut Ctx) -> QueryResult<i32> {
    diesel::select(42.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
}

fn main() {}
