//! `db = ..` takes the database's name as an identifier.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Context};

#[reader(db = "api")]
fn count(ctx: &mut Context<SqliteConnection>) -> QueryResult<i64> {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("1")).get_result(ctx.conn())
}

fn main() {}
