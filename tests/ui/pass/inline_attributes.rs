//! An annotated function may carry an `inline` attribute of its own, directly or through `cfg_attr` before or after the macro's (the macro then adds no `#[inline(never)]`; see the expansion test `the_function_is_not_inlined_unless_it_says_so`): every form compiles, warnings denied.
#![deny(warnings)]
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
pub struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
pub fn plain(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[inline]
#[reader]
pub fn hinted(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[writer]
#[inline(always)]
pub fn always(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    diesel::update(items::table.find(id))
        .set(items::qty.eq(items::qty + 1))
        .execute(ctx.conn())
}

#[cfg_attr(all(), inline)]
#[reader]
pub fn configured_before(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[reader]
#[cfg_attr(all(), inline(never))]
pub fn configured_after(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[reader]
#[cfg_attr(any(), inline(always))]
pub fn configured_off(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
    items::table.find(id).select(items::qty).first(ctx.conn())
}

#[writer]
pub fn all(ctx: &mut Ctx) -> QueryResult<i32> {
    always(ctx, 1)?;
    Ok(plain(ctx, 1)?
        + hinted(ctx, 1)?
        + configured_before(ctx, 1)?
        + configured_after(ctx, 1)?
        + configured_off(ctx, 1)?)
}

fn main() {}
