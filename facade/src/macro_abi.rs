//! What `#[reader]`, `#[writer]` and `#[derive(TransactionContext)]` expand
//! to, re-exported as `diesel_facade::__private`. Not a public API: names
//! and signatures change with the macros.
//!
//! Each annotated function's body becomes one call of a function here. A
//! call from inside a transaction (the scope argument is a scope type)
//! compiles only the join path; only a call with a request context compiles
//! the begin path (`entry::begin_or_join`).

use crate::backend::{SupportedConnection, TxMode};
use crate::context::TransactionContext;
use crate::entry::{begin_or_join, replica_read, Tx};
use crate::error::{Error, ErrorKind};
use crate::scope::{ReaderScope, ReplicaScope, ScopeState, WriterScope};
use crate::transaction::{outermost, savepoint, with_retry, Attempt, Route};

pub use crate::replica::Position;
pub use crate::scope::{IndependentAccess, ReadAccess, ReplicaReadAccess, Scope, WriteAccess};
pub use crate::transaction::RetryPolicy;

/// Lets `#[derive(TransactionContext)]` name the connection type of a
/// `Facade<C>` field even through a type alias.
#[diagnostic::on_unimplemented(
    message = "the `#[facade]` field must be a `diesel_facade::Facade<C>`, not `{Self}`",
    label = "not a `Facade`",
    note = "mark the field that holds the `diesel_facade::Facade` with `#[facade]`"
)]
pub trait FacadeField {
    type Connection: crate::SupportedConnection;
    fn as_facade(&self) -> &crate::Facade<Self::Connection>;
    fn as_facade_mut(&mut self) -> &mut crate::Facade<Self::Connection>;
}

impl<C: crate::SupportedConnection> FacadeField for crate::Facade<C> {
    type Connection = C;
    fn as_facade(&self) -> &crate::Facade<C> {
        self
    }
    fn as_facade_mut(&mut self) -> &mut crate::Facade<C> {
        self
    }
}

pub fn reader<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: ReadAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut ReaderScope<'_, S::Context>) -> Result<R, E>,
{
    crate::entry::read(ctx, f)
}

pub fn reader_allow_replica<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: ReplicaReadAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut ReplicaScope<'_, S::Context>) -> Result<R, E>,
{
    replica_read(ctx, Route::Primary, f)
}

pub fn reader_replica<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: ReplicaReadAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut ReplicaScope<'_, S::Context>) -> Result<R, E>,
{
    replica_read(ctx, Route::Replica, f)
}

pub fn writer<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: WriteAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    crate::entry::write(ctx, f)
}

/// One outermost read-write attempt of `f`.
fn write_attempt<T, R, E>(
    ctx: &T,
    f: impl FnOnce(&mut WriterScope<'_, T>) -> Result<R, E>,
) -> Attempt<R, E>
where
    T: TransactionContext,
    E: From<Error>,
{
    outermost(ctx, TxMode::Write, Route::Primary, |ctx, tx| {
        f(&mut WriterScope::new(ctx, tx))
    })
}

/// Joined, `f` runs in a savepoint of the open transaction. A retry there
/// would re-run only part of the outer transaction, so a joined call never
/// retries: errors go to the outermost call.
fn in_savepoint<T, R, E>(
    ctx: &T,
    tx: &mut Tx<T>,
    f: impl FnOnce(&mut WriterScope<'_, T>) -> Result<R, E>,
) -> Result<R, E>
where
    T: TransactionContext,
    E: From<Error>,
{
    savepoint(tx, |tx| f(&mut WriterScope::new(ctx, tx)))
}

pub fn writer_savepoint<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: WriteAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    begin_or_join(
        ctx,
        "savepoint writer",
        f,
        |ctx, f| write_attempt(ctx, f).result,
        in_savepoint,
    )
}

pub fn writer_retry<S, R, E, F>(ctx: &mut S, policy: RetryPolicy, f: F) -> Result<R, E>
where
    S: WriteAccess + ?Sized,
    E: From<Error>,
    F: FnMut(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    begin_or_join(
        ctx,
        "writer",
        f,
        |ctx, mut f| with_retry(ctx.facade(), policy, || write_attempt(ctx, &mut f)),
        |ctx, tx, mut f| f(&mut WriterScope::new(ctx, tx)),
    )
}

pub fn writer_savepoint_retry<S, R, E, F>(ctx: &mut S, policy: RetryPolicy, f: F) -> Result<R, E>
where
    S: WriteAccess + ?Sized,
    E: From<Error>,
    F: FnMut(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    begin_or_join(
        ctx,
        "savepoint writer",
        f,
        |ctx, mut f| with_retry(ctx.facade(), policy, || write_attempt(ctx, &mut f)),
        in_savepoint,
    )
}

/// The context, and whether a transaction is open on it (checked for
/// whether an independent writer can commit beside it).
fn independent_context<S: Scope + ?Sized>(ctx: &mut S) -> Result<(&S::Context, bool), Error> {
    match ctx.__scope_state() {
        ScopeState::Idle(ctx) => Ok((ctx, false)),
        ScopeState::Open { ctx, tx } => {
            <<S::Context as TransactionContext>::Connection as SupportedConnection>::check_independent(
                tx.mode,
                &tx.conn.session,
            )
            .map_err(|why| Error::new(ErrorKind::Config, why))?;
            Ok((ctx, true))
        }
    }
}

/// How long an independent writer nested in an open transaction of its
/// own context waits for a row lock: its outer transaction may hold the
/// row, and that wait would never end.
pub(crate) const NESTED_INDEPENDENT_LOCK_WAIT: std::time::Duration =
    std::time::Duration::from_secs(10);

fn independent_attempt<T, R, E>(
    ctx: &T,
    nested: bool,
    f: impl FnOnce(&mut WriterScope<'_, T>) -> Result<R, E>,
) -> Attempt<R, E>
where
    T: TransactionContext,
    E: From<Error>,
{
    outermost(ctx, TxMode::Write, Route::Primary, |ctx, tx| {
        if nested {
            <T::Connection as SupportedConnection>::bound_nested_lock_waits(
                tx.connection(),
                NESTED_INDEPENDENT_LOCK_WAIT,
            )
            .map_err(|e| E::from(Error::from(e)))?;
        }
        f(&mut WriterScope::new(ctx, tx))
    })
}

pub fn writer_independent<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: IndependentAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    let (ctx, nested) = independent_context(ctx)?;
    tracing::debug!(nested, "independent transaction");
    independent_attempt(ctx, nested, f).result
}

pub fn writer_independent_retry<S, R, E, F>(
    ctx: &mut S,
    policy: RetryPolicy,
    mut f: F,
) -> Result<R, E>
where
    S: IndependentAccess + ?Sized,
    E: From<Error>,
    F: FnMut(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    let (ctx, nested) = independent_context(ctx)?;
    with_retry(ctx.facade(), policy, || {
        independent_attempt(ctx, nested, &mut f)
    })
}
