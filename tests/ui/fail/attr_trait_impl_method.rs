//! An annotated method cannot implement a trait method declared with `ctx: &mut Ctx`: the macro turns the parameter into `&mut dyn DynRead<Ctx>`, so the signatures differ (E0053). The documented way is `ui/pass/trait_impl_calls_annotated_method.rs`.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

#[derive(TransactionContext)]
pub struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

pub trait Repo {
    fn one(&self, ctx: &mut Ctx) -> QueryResult<i32>;
}

pub struct Sql;

impl Repo for Sql {
    #[reader]
    fn one(&self, ctx: &mut Ctx) -> QueryResult<i32> {
        diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
    }
}

fn main() {}
