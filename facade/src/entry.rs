//! The closure forms of `#[reader]`/`#[writer]` (`read`, `read_replica`,
//! `write`), and the one decision every entry point makes: begin a
//! transaction (the argument is a request context) or join the open one (it
//! is a scope). The decision is made by the trait implementation that the
//! argument's type selects: a request context's begins, a scope's joins, so
//! a call from inside a transaction compiles no code that begins one, and a
//! call with a request context none that joins. The functions the macros
//! expand to are in `macro_abi`.

use crate::backend::TxMode;
use crate::context::{Database, TransactionContext};
use crate::error::Error;
use crate::scope::{
    end_all, Opened, ReadAccess, ReaderScope, ReplicaReadAccess, ReplicaScope, Root, WriteAccess,
    WriterScope,
};
use crate::transaction::{runtime, with_retry, Attempt, Ended, RetryPolicy, Route};

/// The body of an outermost transaction: run `$body` in a transaction of
/// `$mode` on a freshly checked-out connection (routed by `$route`), with a
/// `$scope`, then commit or roll back, and return its result (or the error
/// that replaced it) from the enclosing function.
///
/// The code generic over the body is kept to the call of the body:
/// checkout, `BEGIN`, the span, the commit or rollback, the hooks and the
/// retry decision live in `begin_outermost`, `end_outermost` and `end_once`,
/// and the rollback on panic in `Begun`'s `Drop`, all compiled once per
/// connection type. It is a macro so that the trait methods that begin
/// (below) are the shell themselves, with no further function per body, and
/// the body gets its scope directly, without a wrapper closure.
macro_rules! outermost {
    ($ctx:expr, $mode:expr, $route:expr, $scope:ident, $body:expr) => {{
        let ctx = $ctx;
        let err = match Opened::<T, D>::open(ctx, $mode, $route) {
            Ok(mut open) => {
                let result = ($body)(&mut $scope::<T, D>::new(
                    ctx,
                    &mut open.begun.tx,
                    &mut open.root,
                ));
                // A pattern rather than `is_ok()`: no call (and no copy of
                // `is_ok` per result type) in every annotated function.
                #[allow(clippy::redundant_pattern_matching)]
                let body_ok = matches!(result, Ok(_));
                match open.close(ctx, body_ok) {
                    None => return result,
                    Some(err) => err,
                }
            }
            Err(not_begun) => not_begun.into_error(),
        };
        Err(E::from(err))
    }};
}

/// Run `body` as an outermost read-write transaction (the independent
/// writers' shell).
pub(crate) fn outermost_writer<T, D, R, E, F>(ctx: &T, body: F) -> Result<R, E>
where
    T: TransactionContext,
    D: Database<T>,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, T, D>) -> Result<R, E>,
{
    outermost!(ctx, TxMode::Write, Route::Primary, WriterScope, body)
}

/// One outermost read-write attempt of `f`, for a retry loop: like
/// [`outermost_writer`], and says whether the failure may be retried.
pub(crate) fn write_attempt<T, D, R, E, F>(ctx: &T, body: F) -> Attempt<R, E>
where
    T: TransactionContext,
    D: Database<T>,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, T, D>) -> Result<R, E>,
{
    let facade = D::facade(ctx);
    let position = D::read_position(ctx);
    let mut begun = match (runtime::<D::Connection>().begin_outermost)(
        facade,
        position,
        TxMode::Write,
        Route::Primary,
    ) {
        Ok(begun) => begun,
        Err(not_begun) => return not_begun.attempt(),
    };
    let mut root = Root::new();
    let result = body(&mut WriterScope::new(ctx, &mut begun.tx, &mut root));
    match end_all::<T, D>(begun, ctx, root, result.is_ok()) {
        Ended::Stands(retry) => Attempt { result, retry },
        Ended::Replaced(err) => Attempt::failed(err),
    }
}

// A request context begins. `do_not_recommend`: when a scope lacks a
// capability, rustc should name the capability (with its message), not
// suggest implementing `TransactionContext` for the scope.

#[diagnostic::do_not_recommend]
impl<T: TransactionContext, D: Database<T>> ReadAccess<D> for T {
    fn __read<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReaderScope<'_, T, D>) -> Result<R, E>,
    {
        outermost!(&*self, TxMode::Read, Route::Primary, ReaderScope, f)
    }
}

#[diagnostic::do_not_recommend]
impl<T: TransactionContext, D: Database<T>> ReplicaReadAccess<D> for T {
    fn __read_replica<R, E, F>(&mut self, route: Route, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReplicaScope<'_, T, D>) -> Result<R, E>,
    {
        outermost!(&*self, TxMode::Read, route, ReplicaScope, f)
    }
}

// Outermost, a savepoint writer is a plain writer: the savepoint is only
// for a joined call.
#[diagnostic::do_not_recommend]
impl<T: TransactionContext, D: Database<T>> WriteAccess<D> for T {
    fn __write<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, T, D>) -> Result<R, E>,
    {
        outermost!(&*self, TxMode::Write, Route::Primary, WriterScope, f)
    }

    fn __write_savepoint<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, T, D>) -> Result<R, E>,
    {
        outermost!(&*self, TxMode::Write, Route::Primary, WriterScope, f)
    }

    fn __write_retry<R, E, F>(&mut self, policy: RetryPolicy, mut f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnMut(&mut WriterScope<'_, T, D>) -> Result<R, E>,
    {
        let ctx = &*self;
        with_retry(D::facade(ctx), policy, || write_attempt(ctx, &mut f))
    }

    fn __write_savepoint_retry<R, E, F>(&mut self, policy: RetryPolicy, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnMut(&mut WriterScope<'_, T, D>) -> Result<R, E>,
    {
        self.__write_retry(policy, f)
    }
}

/// Run `f` in a read-only transaction on the primary, or join the one open
/// on `ctx`: the closure form of `#[reader]`.
///
/// ```
/// use diesel::prelude::*;
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// let mut ctx = db.context();
/// let two: i32 = diesel_facade::read(&mut ctx, |ctx| {
///     diesel::select(2.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
/// })?;
/// assert_eq!(two, 2);
/// # Ok(()) }
/// ```
pub fn read<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: ReadAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut ReaderScope<'_, S::Context>) -> Result<R, E>,
{
    ctx.__read(f)
}

/// Run `f` in a read-only transaction on a replica (the primary if none is
/// configured or reachable), or join the transaction open on `ctx`: the
/// closure form of `#[reader(replica)]`.
///
/// ```
/// use diesel::prelude::*;
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// let three: i32 = diesel_facade::read_replica(&mut db.context(), |ctx| {
///     diesel::select(3.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
/// })?;
/// assert_eq!(three, 3);
/// # Ok(()) }
/// ```
pub fn read_replica<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: ReplicaReadAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut ReplicaScope<'_, S::Context>) -> Result<R, E>,
{
    ctx.__read_replica(Route::Replica, f)
}

/// Run `f` in a read-write transaction on the primary, or join the one open
/// on `ctx`: the closure form of `#[writer]`.
///
/// ```
/// use diesel::prelude::*;
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// diesel_facade::write(&mut db.context(), |ctx| {
///     diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(ctx.conn())
/// })?;
/// # Ok(()) }
/// ```
pub fn write<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: WriteAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    ctx.__write(f)
}

/// The marker of the context's database declared `#[facade(NAME)]`, for
/// the closure forms [`read_in`], [`write_in`] and [`read_replica_in`]:
/// `db!(api)` is `Named::<{ database_id("api") }>`, what `db = api` selects
/// in `#[reader]`/`#[writer]`.
///
/// ```
/// use diesel_facade::{database_id, db, Named};
/// let _: Named<{ database_id("api") }> = db!(api);
/// ```
#[macro_export]
macro_rules! db {
    ($name:ident) => {
        $crate::Named::<{ $crate::database_id(::core::stringify!($name)) }>
    };
}

/// [`read`](fn@crate::read) on the database `db` of the context (see [`db!`](crate::db)):
/// the closure form of `#[reader(db = NAME)]`.
///
/// ```
/// use diesel::prelude::*;
/// use diesel::SqliteConnection;
/// use diesel_facade::{db, Facade, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct Ctx {
///     #[facade]
///     main: Facade<SqliteConnection>,
///     #[facade(api)]
///     api: Facade<SqliteConnection>,
/// }
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let mut ctx = Ctx {
///     main: Facade::builder().writer(":memory:").build()?,
///     api: Facade::builder().writer(":memory:").build()?,
/// };
/// let two: i32 = diesel_facade::read_in(&mut ctx, db!(api), |ctx| {
///     diesel::select(2.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
/// })?;
/// assert_eq!(two, 2);
/// assert_eq!(ctx.api.stats().transactions, 1);
/// assert_eq!(ctx.main.stats().transactions, 0);
/// # Ok(()) }
/// ```
pub fn read_in<S, D, R, E, F>(ctx: &mut S, db: D, f: F) -> Result<R, E>
where
    S: ReadAccess<D> + ?Sized,
    D: Database<S::Context>,
    E: From<Error>,
    F: FnOnce(&mut ReaderScope<'_, S::Context, D>) -> Result<R, E>,
{
    let _ = db;
    ctx.__read(f)
}

/// [`read_replica`](fn@crate::read_replica) on the database `db` of the context (see
/// [`db!`](crate::db)): the closure form of `#[reader(db = NAME, replica)]`.
///
/// ```
/// use diesel::prelude::*;
/// use diesel::SqliteConnection;
/// use diesel_facade::{db, Facade, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct Ctx {
///     #[facade]
///     main: Facade<SqliteConnection>,
///     #[facade(api)]
///     api: Facade<SqliteConnection>,
/// }
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let mut ctx = Ctx {
///     main: Facade::builder().writer(":memory:").build()?,
///     api: Facade::builder().writer(":memory:").build()?,
/// };
/// let three: i32 = diesel_facade::read_replica_in(&mut ctx, db!(api), |ctx| {
///     diesel::select(3.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
/// })?;
/// assert_eq!(three, 3);
/// assert_eq!(ctx.api.stats().transactions, 1);
/// # Ok(()) }
/// ```
pub fn read_replica_in<S, D, R, E, F>(ctx: &mut S, db: D, f: F) -> Result<R, E>
where
    S: ReplicaReadAccess<D> + ?Sized,
    D: Database<S::Context>,
    E: From<Error>,
    F: FnOnce(&mut ReplicaScope<'_, S::Context, D>) -> Result<R, E>,
{
    let _ = db;
    ctx.__read_replica(Route::Replica, f)
}

/// [`write`](fn@crate::write) on the database `db` of the context (see [`db!`](crate::db)):
/// the closure form of `#[writer(db = NAME)]`.
///
/// ```
/// use diesel::prelude::*;
/// use diesel::SqliteConnection;
/// use diesel_facade::{db, Facade, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct Ctx {
///     #[facade]
///     main: Facade<SqliteConnection>,
///     #[facade(api)]
///     api: Facade<SqliteConnection>,
/// }
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let mut ctx = Ctx {
///     main: Facade::builder().writer(":memory:").build()?,
///     api: Facade::builder().writer(":memory:").build()?,
/// };
/// diesel_facade::write_in(&mut ctx, db!(api), |ctx| {
///     let conn: &mut SqliteConnection = ctx.conn();
///     diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(conn)
/// })?;
/// assert_eq!(ctx.api.stats().commits, 1);
/// assert_eq!(ctx.main.stats().commits, 0);
/// # Ok(()) }
/// ```
pub fn write_in<S, D, R, E, F>(ctx: &mut S, db: D, f: F) -> Result<R, E>
where
    S: WriteAccess<D> + ?Sized,
    D: Database<S::Context>,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, S::Context, D>) -> Result<R, E>,
{
    let _ = db;
    ctx.__write(f)
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::{read, write, ErrorKind, Facade};

    /// The shell keeps the body in a `ManuallyDrop` until it calls it: when
    /// the transaction cannot begin, the body (and what it captured) must
    /// still be dropped, not leaked.
    #[test]
    fn a_body_that_never_ran_is_dropped_when_the_transaction_cannot_begin() {
        // One connection, held by the outer call: the inner calls (other
        // request contexts) cannot check one out.
        let db = Facade::<diesel::SqliteConnection>::builder()
            .writer(":memory:")
            .max_pool_size(1)
            .pool_timeout(Duration::from_millis(100))
            .build()
            .expect("facade");
        let captured = Arc::new(());
        write(&mut db.context(), |_ctx| {
            let held = Arc::clone(&captured);
            let err = read(&mut db.context(), move |_ctx| {
                let _held = &held;
                Ok::<_, crate::Error>(())
            })
            .expect_err("no connection for the reader");
            assert_ne!(err.kind(), ErrorKind::Other, "{err}");
            let held = Arc::clone(&captured);
            write(&mut db.context(), move |_ctx| {
                let _held = &held;
                Ok::<_, crate::Error>(())
            })
            .expect_err("no connection for the writer");
            Ok::<_, crate::Error>(())
        })
        .expect("the outer writer");
        assert_eq!(Arc::strong_count(&captured), 1, "both bodies were dropped");
    }
}
