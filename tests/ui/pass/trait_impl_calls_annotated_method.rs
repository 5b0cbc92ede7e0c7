//! A trait whose methods take the request context is implemented by calling annotated inherent methods (an annotated method cannot implement the trait method itself: see `ui/fail/attr_trait_impl_method.rs`).
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

impl Sql {
    #[reader]
    fn read_one(&self, ctx: &mut Ctx) -> QueryResult<i32> {
        diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
    }
}

impl Repo for Sql {
    fn one(&self, ctx: &mut Ctx) -> QueryResult<i32> {
        self.read_one(ctx)
    }
}

fn main() {
    let db = Facade::<SqliteConnection>::builder()
        .writer(":memory:")
        .build()
        .unwrap();
    assert_eq!(Sql.one(&mut Ctx { db }).unwrap(), 1);
}
