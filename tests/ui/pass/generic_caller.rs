//! Code generic over what it is given passes it on to annotated functions:
//! with a request context they begin, with a scope they join. (An
//! annotated function takes its scope as `&mut dyn ..`; any type with the
//! capability converts to it.)
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, ReadAccess, TransactionContext, WriteAccess};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())
}

fn total<S: ReadAccess<Context = Ctx>>(scope: &mut S, ids: &[i32]) -> QueryResult<i32> {
    let mut sum = 0;
    for &id in ids {
        sum += qty(scope, id)?;
    }
    Ok(sum)
}

fn restock_all<S: WriteAccess<Context = Ctx>>(scope: &mut S, ids: &[i32]) -> QueryResult<()> {
    for &id in ids {
        restock(scope, id)?;
    }
    Ok(())
}

fn with_context(ctx: &mut Ctx) -> QueryResult<i32> {
    restock_all(ctx, &[1, 2])?;
    total(ctx, &[1, 2])
}

fn inside_a_writer(ctx: &mut Ctx) -> QueryResult<i32> {
    diesel_facade::write(ctx, |scope| {
        restock_all(scope, &[1])?;
        total(scope, &[1])
    })
}

fn main() {
    let _ = (with_context, inside_a_writer);
}
