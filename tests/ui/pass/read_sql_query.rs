//! Reads that compile on a reader's `ReadOnlyConnection`: raw `sql_query("SELECT ..")` (the database enforces READ ONLY).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

use diesel::sql_types::{Integer, Text};

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Text)]
    name: String,
}

#[reader]
fn plain(ctx: &mut Ctx) -> QueryResult<Vec<Row>> {
    diesel::sql_query("SELECT id, name FROM items").load(ctx.conn())
}

fn main() {}
