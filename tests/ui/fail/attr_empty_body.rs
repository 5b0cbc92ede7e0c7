//! An empty body is a type error in the body, reported on the user's braces.
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{reader, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn nothing(ctx: &mut Ctx) -> QueryResult<i32> {}

#[reader]
fn only_an_attribute(ctx: &mut Ctx) -> QueryResult<i32> {
    #![allow(unused_variables)]
}

fn main() {}
