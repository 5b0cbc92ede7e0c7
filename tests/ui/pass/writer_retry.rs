//! `#[writer(retry)]`: the outermost call is retried with the default number of attempts.
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
fn bump(ctx: &mut Ctx, id: i32) -> Result<usize, diesel_facade::Error> {
    ctx.lock("counter")?;
    Ok(diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())?)
}

fn _idle(ctx: &mut Ctx) -> Result<usize, diesel_facade::Error> {
    bump(ctx, 1)
}

fn main() {}
