//! `&self` methods in an `impl` block: the context is the first parameter after the receiver.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

struct Repo {
    table_name: &'static str,
}

impl Repo {
    #[reader]
    fn qty(&self, ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
        let _ = self.table_name;
        items::table.find(id).select(items::qty).first(ctx.conn())
    }

    #[writer]
    fn restock(&self, ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
        diesel::update(items::table.find(id))
            .set(items::qty.eq(items::qty + 1))
            .execute(ctx.conn())?;
        self.qty(ctx, id)
    }
}

fn _idle(repo: &Repo, ctx: &mut Ctx) -> QueryResult<i32> {
    repo.restock(ctx, 1)?;
    repo.qty(ctx, 1)
}

fn main() {}
