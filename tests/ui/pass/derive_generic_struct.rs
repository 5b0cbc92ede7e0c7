//! `#[derive(TransactionContext)]` on a generic struct: its parameters and where-clause carry over to the impl.
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{reader, Facade, SupportedConnection, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Job<C: SupportedConnection, T>
where
    T: Clone,
{
    payload: T,
    #[facade]
    db: Facade<C>,
}

#[reader]
fn qty<T: Clone>(ctx: &mut Job<SqliteConnection, T>, id: i32) -> QueryResult<i32> {
    let _: T = ctx.payload.clone();
    items::table.find(id).select(items::qty).first(ctx.conn())
}

fn connection_of<C: TransactionContext>(_: &C) -> &'static str {
    std::any::type_name::<C::Connection>()
}

fn _idle(sqlite: Facade<SqliteConnection>, pg: Facade<PgConnection>) -> QueryResult<i32> {
    let _ = connection_of(&Job { payload: (), db: pg });
    qty(&mut Job { payload: String::new(), db: sqlite }, 1)
}

fn main() {}
