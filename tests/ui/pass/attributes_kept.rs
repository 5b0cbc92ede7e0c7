//! Doc comments and lint attributes on the function (outer ones, and inner ones at the top of its body) survive the rewrite: `missing_docs` and `unused_variables` are denied here, so dropping either would fail the build.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, writer, Facade, TransactionContext};

diesel::table! { items (id) { id -> Integer, name -> Text, qty -> Integer } }

#[derive(TransactionContext)]
pub struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[deny(missing_docs, unused_variables)]
pub mod documented {
    //! Data access with documented functions.
    use super::*;

    /// The quantity of one item.
    #[allow(unused_variables)]
    #[reader]
    pub fn qty(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
        let unused = 1;
        items::table.find(id).select(items::qty).first(ctx.conn())
    }

    #[allow(unused_variables)]
    /// Adds one to an item.
    #[writer]
    /// (Doc comments after the attribute are kept too.)
    pub fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<i32> {
        let unused = 1;
        diesel::update(items::table.find(id))
            .set(items::qty.eq(items::qty + 1))
            .execute(ctx.conn())?;
        qty(ctx, id)
    }

    /// The name of one item: an inner attribute at the top of the body
    /// stays the function's own.
    #[reader]
    pub fn name(ctx: &mut Ctx, id: i32) -> QueryResult<String> {
        #![allow(unused_variables)]
        let unused = 1;
        items::table.find(id).select(items::name).first(ctx.conn())
    }
}

fn _idle(ctx: &mut Ctx) -> QueryResult<i32> {
    documented::restock(ctx, 1)
}

fn main() {}
