//! Reads that compile on a reader's `ReadOnlyConnection`: a boxed query built at run time.
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
fn search(ctx: &mut Ctx, name: Option<&str>, min_qty: Option<i32>) -> QueryResult<Vec<Item>> {
    let mut query = items::table.select(Item::as_select()).into_boxed();
    if let Some(name) = name {
        query = query.filter(items::name.eq(name));
    }
    if let Some(min_qty) = min_qty {
        query = query.filter(items::qty.ge(min_qty));
    }
    query.load(ctx.conn())
}

#[reader]
fn all_boxed(ctx: &mut Ctx) -> QueryResult<Vec<(i32, String, i32)>> {
    items::table.into_boxed().load(ctx.conn())
}

fn main() {}
