//! Where-clauses on the function, on the context type and on other parameters.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn count_named<C, N>(ctx: &mut C, name: N) -> QueryResult<i64>
where
    C: TransactionContext<Connection = SqliteConnection>,
    N: AsRef<str>,
{
    items::table
        .filter(items::name.eq(name.as_ref()))
        .count()
        .get_result(ctx.conn())
}

#[writer]
fn insert_named<C, N>(ctx: &mut C, name: N) -> QueryResult<i64>
where
    C: TransactionContext<Connection = SqliteConnection>,
    N: AsRef<str> + Clone,
{
    diesel::insert_into(items::table)
        .values((items::name.eq(name.as_ref()), items::qty.eq(0)))
        .execute(ctx.conn())?;
    count_named(ctx, name)
}

fn _idle(ctx: &mut Ctx) -> QueryResult<i64> {
    insert_named(ctx, String::from("x"))
}

fn main() {}
