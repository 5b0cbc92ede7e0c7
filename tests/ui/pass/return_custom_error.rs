//! A custom error type `E: From<diesel_facade::Error>` (here also `From<diesel::result::Error>` so `?` works on queries).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[derive(Debug)]
enum AppError {
    Db(diesel_facade::Error),
    NotFound(i32),
}

impl From<diesel_facade::Error> for AppError {
    fn from(error: diesel_facade::Error) -> Self {
        AppError::Db(error)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        AppError::Db(error.into())
    }
}

#[reader]
fn qty(ctx: &mut Ctx, id: i32) -> Result<i32, AppError> {
    items::table
        .find(id)
        .select(items::qty)
        .first(ctx.conn())
        .optional()?
        .ok_or(AppError::NotFound(id))
}

#[writer(retry)]
fn restock(ctx: &mut Ctx, id: i32) -> Result<i32, AppError> {
    ctx.lock("restock")?;
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())?;
    qty(ctx, id)
}

fn _idle(ctx: &mut Ctx) -> Result<i32, AppError> {
    restock(ctx, 1)
}

fn main() {}
