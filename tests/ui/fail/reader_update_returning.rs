//! A `#[reader]` cannot run `UPDATE ... RETURNING` through `get_result`. (PostgreSQL: diesel supports RETURNING there without extra features.)
use diesel::prelude::*;
use diesel::PgConnection;
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
    db: Facade<PgConnection>,
}

#[reader]
fn sneaky(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(0))
        .returning(Item::as_returning())
        .get_result(ctx.conn())
}

fn main() {}
