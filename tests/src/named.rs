//! Two databases on one context, possibly on different backends: the
//! default one (`#[facade] main`) and `#[facade(api)] api`. Each scenario
//! is generic over both connection types and run by `tests/tests/named.rs`
//! on SQLite + PostgreSQL and MariaDB + PostgreSQL.

use diesel::QueryResult;
use diesel_facade::{
    reader, writer, Facade, ReadOnlyConnection, SupportedConnection, TransactionContext,
};

use crate::scenarios::TypedQueries;

/// A request context with a default database and a named one.
#[derive(TransactionContext)]
pub struct TwoDatabases<M: SupportedConnection, A: SupportedConnection> {
    #[facade]
    pub main: Facade<M>,
    #[facade(api)]
    pub api: Facade<A>,
}

impl<M: TypedQueries, A: TypedQueries> TwoDatabases<M, A> {
    /// Fresh databases for `test` on `M`'s and `A`'s test servers.
    #[track_caller]
    pub fn setup(test: &str) -> Self {
        TwoDatabases {
            main: crate::facade::<M>(&format!("{test}_m"), |b| b),
            api: crate::facade::<A>(&format!("{test}_a"), |b| b),
        }
    }
}

#[writer(db = api)]
fn insert_api_item<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    // The api database's own connection type, not the default one's.
    let conn: &mut A = ctx.conn();
    A::insert_item(conn, id, format!("api-{id}"), 1)
}

#[reader(db = api)]
fn api_item_exists<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<A> = ctx.conn();
    A::item_exists(conn, id)
}

#[reader(db = api, allow_replica)]
fn api_item_count<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
) -> QueryResult<i64> {
    A::count_items(ctx.conn())
}

#[writer]
fn insert_main_item<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    let conn: &mut M = ctx.conn();
    M::insert_item(conn, id, format!("main-{id}"), 1)
}

#[reader]
fn main_item_exists<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<M> = ctx.conn();
    M::item_exists(conn, id)
}

/// An api writer composed of api writers and readers, which join its
/// transaction; fails after the writes when `fail` is set.
#[writer(db = api, retry)]
fn insert_two_api_items<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    first: i32,
    fail: bool,
) -> QueryResult<i64> {
    insert_api_item(ctx, first)?;
    assert!(
        api_item_exists(ctx, first)?,
        "a joined api reader sees the api writer's row"
    );
    savepoint_api_item(ctx, first + 1)?;
    if fail {
        return Err(diesel::result::Error::RollbackTransaction);
    }
    api_item_count(ctx)
}

#[writer(db = api, savepoint)]
fn savepoint_api_item<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    insert_api_item(ctx, id)
}

#[writer(db = api, independent)]
fn insert_api_item_independently<M: TypedQueries, A: TypedQueries>(
    ctx: &mut TwoDatabases<M, A>,
    id: i32,
) -> QueryResult<usize> {
    insert_api_item(ctx, id)
}

/// `db = api` functions use the api database (its own connection type,
/// pool and transactions); the others the default database.
pub fn each_function_uses_the_database_it_names<M: TypedQueries, A: TypedQueries>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_each");
    let (main_before, api_before) = (ctx.main.stats(), ctx.api.stats());

    insert_main_item(&mut ctx, 1).unwrap();
    insert_api_item(&mut ctx, 2).unwrap();

    assert!(main_item_exists(&mut ctx, 1).unwrap());
    assert!(!main_item_exists(&mut ctx, 2).unwrap(), "api row in main");
    assert!(api_item_exists(&mut ctx, 2).unwrap());
    assert!(!api_item_exists(&mut ctx, 1).unwrap(), "main row in api");

    let (main_after, api_after) = (ctx.main.stats(), ctx.api.stats());
    assert_eq!(main_after.transactions - main_before.transactions, 3);
    assert_eq!(main_after.commits - main_before.commits, 3);
    assert_eq!(api_after.transactions - api_before.transactions, 3);
    assert_eq!(api_after.commits - api_before.commits, 3);
}

/// On the named database the nesting table holds as on the default one:
/// readers and writers join, a savepoint writer nests, `Err` rolls all of
/// it back, an independent writer commits on its own.
pub fn a_named_database_nests_like_the_default<M: TypedQueries, A: TypedQueries>() {
    let mut ctx = TwoDatabases::<M, A>::setup("named_nests");
    let (main_before, before) = (ctx.main.stats(), ctx.api.stats());

    assert_eq!(insert_two_api_items(&mut ctx, 10, false).unwrap(), 2);
    let after = ctx.api.stats();
    assert_eq!(
        after.transactions - before.transactions,
        1,
        "one api transaction"
    );
    assert!(
        api_item_exists(&mut ctx, 11).unwrap(),
        "the savepoint's row"
    );

    assert!(insert_two_api_items(&mut ctx, 20, true).is_err());
    assert!(!api_item_exists(&mut ctx, 20).unwrap(), "rolled back");
    assert!(!api_item_exists(&mut ctx, 21).unwrap(), "rolled back");

    insert_api_item_independently(&mut ctx, 30).unwrap();
    assert!(api_item_exists(&mut ctx, 30).unwrap());
    assert_eq!(
        ctx.main.stats().transactions,
        main_before.transactions,
        "main was never used"
    );
}
