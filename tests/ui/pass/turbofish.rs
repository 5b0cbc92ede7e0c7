//! A turbofish names only the function's own generic parameters: the
//! scope the attribute adds is an `impl Trait` argument, not one of them.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

/// `T` appears only in the return type: callers must name it.
#[reader]
fn parsed_name<T: std::str::FromStr + Default>(ctx: &mut Ctx, id: i32) -> QueryResult<T> {
    let name: String = items::table.find(id).select(items::name).first(ctx.conn())?;
    Ok(name.parse().unwrap_or_default())
}

#[reader]
fn first_quantities<const N: usize>(ctx: &mut Ctx) -> QueryResult<Vec<i32>> {
    items::table
        .select(items::qty)
        .limit(N as i64)
        .load(ctx.conn())
}

#[reader]
fn count_on<C>(ctx: &mut C) -> QueryResult<i64>
where
    C: TransactionContext<Connection = SqliteConnection>,
{
    items::table.count().get_result(ctx.conn())
}

#[writer]
fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<u64> {
    // Inside a writer, on its scope.
    let parsed = parsed_name::<u64>(ctx, id)?;
    let _first: Vec<i32> = first_quantities::<3>(ctx)?;
    let _count = count_on::<Ctx>(ctx)?;
    Ok(parsed)
}

fn _idle(ctx: &mut Ctx) -> QueryResult<u64> {
    // On the idle context.
    let _value = parsed_name::<i64>(ctx, 1)?;
    let _first = first_quantities::<2>(ctx)?;
    let _count = count_on::<Ctx>(ctx)?;
    restock(ctx, 1)
}

fn main() {}
