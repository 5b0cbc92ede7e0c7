//! The shared scenarios: each one a plain function generic over the
//! connection type, written once and run on every backend by one `#[test]`
//! per backend in `tests/tests/{sqlite,postgres,mysql}.rs` (stamped out by
//! [`backend_tests!`](crate::backend_tests)).
//!
//! Where the backends behave differently, each behaviour is its own
//! scenario, named for what it asserts: the server variant is bound by
//! [`ConcurrentWriters`](diesel_facade::ConcurrentWriters), and the SQLite
//! one, whose writers take turns, is written for `SqliteConnection` and
//! named `sqlite_…`.
//!
//! The scenarios share a request context, [`Req`], and the small readers and
//! writers below, which the scenarios compose.

mod errors;
mod locks;
mod queries;
mod read_only;
mod server;
mod test_databases;
mod transactions;

use diesel::QueryResult;
use diesel_facade::{reader, writer, Facade, SupportedConnection, TransactionContext};

pub use errors::*;
pub use locks::*;
pub use queries::TypedQueries;
pub use read_only::*;
pub use server::*;
pub use test_databases::*;
pub use transactions::*;

use crate::{Item, TestBackend};

/// The request context of the scenarios.
#[derive(TransactionContext)]
pub struct Req<C: SupportedConnection> {
    #[facade]
    pub db: Facade<C>,
}

/// A facade on a fresh database for `test`, with the default settings.
fn setup<C: TestBackend>(test: &str) -> Facade<C> {
    crate::facade::<C>(test, |b| b)
}

#[reader]
fn get_item<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<Item> {
    C::get_item(ctx.conn(), id)
}

#[reader]
fn item_exists<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<bool> {
    C::item_exists(ctx.conn(), id)
}

#[reader(allow_replica)]
fn count_items<C: TypedQueries>(ctx: &mut Req<C>) -> QueryResult<i64> {
    C::count_items(ctx.conn())
}

#[writer]
fn insert_item<C: TypedQueries>(ctx: &mut Req<C>, id: i32, qty: i32) -> QueryResult<()> {
    C::insert_item(ctx.conn(), id, format!("item {id}"), qty).map(drop)
}

#[writer]
fn bump<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<Item> {
    let item = get_item(ctx, id)?;
    C::set_qty(ctx.conn(), id, item.qty + 1)?;
    get_item(ctx, id)
}

#[writer(savepoint)]
fn insert_in_savepoint<C: TypedQueries>(ctx: &mut Req<C>, id: i32, fail: bool) -> QueryResult<()> {
    insert_item(ctx, id, 0)?;
    if fail {
        Err(diesel::result::Error::RollbackTransaction)
    } else {
        Ok(())
    }
}

#[writer(independent)]
fn insert_independently<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<()> {
    insert_item(ctx, id, 0)
}

/// Whether a second context on `db` sees item `id`.
fn other_context_sees<C: TypedQueries>(db: &Facade<C>, id: i32) -> bool {
    let mut other = Req { db: db.clone() };
    item_exists(&mut other, id).expect("read from a second context")
}
