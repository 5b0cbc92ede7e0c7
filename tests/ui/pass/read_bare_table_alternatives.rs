//! A bare `items::table.load(ctx.conn())` does not compile on a `ReadOnlyConnection` (see fail/bare_table_load.rs); these spellings do.
use diesel::prelude::*;
use diesel::query_builder::AsQuery;
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
fn all_as_query(ctx: &mut Ctx) -> QueryResult<Vec<(i32, String, i32)>> {
    items::table.as_query().load(ctx.conn())
}

#[reader]
fn all_selected(ctx: &mut Ctx) -> QueryResult<Vec<Item>> {
    items::table.select(Item::as_select()).load(ctx.conn())
}

#[reader]
fn all_columns(ctx: &mut Ctx) -> QueryResult<Vec<(i32, String, i32)>> {
    items::table.select(items::all_columns).load(ctx.conn())
}

#[reader]
fn first_row(ctx: &mut Ctx) -> QueryResult<(i32, String, i32)> {
    items::table.as_query().first(ctx.conn())
}

fn main() {}
