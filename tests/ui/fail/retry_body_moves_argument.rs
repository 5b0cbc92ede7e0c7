//! A `#[writer(retry)]` body may run more than once (an `FnMut` closure), so it cannot move an argument out.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[writer(retry)]
fn rename(ctx: &mut Ctx, id: i32, name: String) -> QueryResult<usize> {
    let owned: String = name;
    diesel::update(items::table.find(id)).set(items::name.eq(owned)).execute(ctx.conn())
}

fn main() {}
