//! The closure forms of `#[reader]`/`#[writer]` (`read`, `read_replica`,
//! `write`) and the one decision every entry point makes: begin a
//! transaction (the argument is a request context) or join the open one (it
//! is a scope). The functions the macros expand to are in `macro_abi`.

use crate::backend::TxMode;
use crate::context::TransactionContext;
use crate::error::{Error, ErrorKind};
use crate::scope::{
    ReadAccess, ReaderScope, ReplicaReadAccess, ReplicaScope, Scope, ScopeState, WriteAccess,
    WriterScope,
};
use crate::transaction::{outermost, Route, Transaction};

/// The open transaction of a context `T`.
pub(crate) type Tx<T> = Transaction<<T as TransactionContext>::Connection>;

/// Begin a transaction with `begin` (`ctx` is a request context) or hand
/// the open one to `join` (`ctx` is a scope). The choice is made from `S`'s
/// type, so the begin path is not even compiled into a call from inside a
/// transaction.
pub(crate) fn begin_or_join<S, F, R, E>(
    ctx: &mut S,
    kind: &'static str,
    f: F,
    begin: impl FnOnce(&S::Context, F) -> Result<R, E>,
    join: impl FnOnce(&S::Context, &mut Tx<S::Context>, F) -> Result<R, E>,
) -> Result<R, E>
where
    S: Scope + ?Sized,
    E: From<Error>,
{
    if S::__OPEN {
        match ctx.__scope_state() {
            ScopeState::Open { ctx, tx } => {
                tx.note_join(kind);
                join(ctx, tx, f)
            }
            ScopeState::Idle(_) => Err(E::from(mismatch())),
        }
    } else {
        match ctx.__scope_state() {
            ScopeState::Idle(ctx) => begin(ctx, f),
            ScopeState::Open { .. } => Err(E::from(mismatch())),
        }
    }
}

/// A `Scope` implementation whose `__OPEN` disagrees with its state (only a
/// hand-written one could).
fn mismatch() -> Error {
    Error::new(
        ErrorKind::Other,
        "a `Scope` implementation reported a transaction state that contradicts its type; \
         implement `TransactionContext` (derive it) instead of `Scope`",
    )
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
    begin_or_join(
        ctx,
        "reader",
        f,
        |ctx, f| {
            outermost(ctx, TxMode::Read, Route::Primary, |ctx, tx| {
                f(&mut ReaderScope::new(ctx, tx))
            })
            .result
        },
        // Joined: a retry here would re-run only part of the outer
        // transaction, so errors go to the outermost call.
        |ctx, tx, f| f(&mut ReaderScope::new(ctx, tx)),
    )
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
    replica_read(ctx, Route::Replica, f)
}

pub(crate) fn replica_read<S, R, E, F>(ctx: &mut S, route: Route, f: F) -> Result<R, E>
where
    S: ReplicaReadAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut ReplicaScope<'_, S::Context>) -> Result<R, E>,
{
    begin_or_join(
        ctx,
        "replica reader",
        f,
        |ctx, f| {
            outermost(ctx, TxMode::Read, route, |ctx, tx| {
                f(&mut ReplicaScope::new(ctx, tx))
            })
            .result
        },
        |ctx, tx, f| f(&mut ReplicaScope::new(ctx, tx)),
    )
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
    begin_or_join(
        ctx,
        "writer",
        f,
        |ctx, f| {
            outermost(ctx, TxMode::Write, Route::Primary, |ctx, tx| {
                f(&mut WriterScope::new(ctx, tx))
            })
            .result
        },
        |ctx, tx, f| f(&mut WriterScope::new(ctx, tx)),
    )
}
