//! `&mut self` methods in an `impl` block.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

struct Counter {
    calls: u32,
}

impl Counter {
    #[reader]
    fn qty(&mut self, ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
        self.calls += 1;
        items::table.find(id).select(items::qty).first(ctx.conn())
    }

    #[writer]
    fn restock(&mut self, ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
        self.calls += 1;
        diesel::update(items::table.find(id))
            .set(items::qty.eq(items::qty + 1))
            .execute(ctx.conn())?;
        self.qty(ctx, id)
    }
}

fn _idle(counter: &mut Counter, ctx: &mut Ctx) -> QueryResult<i32> {
    counter.restock(ctx, 1)?;
    counter.qty(ctx, 1)
}

fn main() {}
