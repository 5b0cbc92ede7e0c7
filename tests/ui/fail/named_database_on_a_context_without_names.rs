//! `db = NAME` on a context that has only its default database (the first
//! error is on the name).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Context};

#[writer(db = api)]
fn touch(ctx: &mut Context<SqliteConnection>) -> QueryResult<usize> {
    diesel::sql_query("UPDATE t SET x = 1").execute(ctx.conn())
}

fn main() {}
