//! What `#[reader]`, `#[writer]` and `#[derive(TransactionContext)]` expand
//! to, re-exported as `diesel_facade::__private`. Not a public API: names
//! and signatures change with the macros.
//!
//! Each annotated function's body becomes one call of a function here,
//! which hands it to the scope argument's capability trait: a request
//! context's implementation begins a transaction, a scope's joins (see
//! `entry`), so each call compiles only its own path.

use crate::backend::SupportedConnection;
use crate::context::TransactionContext;
use crate::entry::{outermost_writer, write_attempt};
use crate::error::{Error, ErrorKind};
use crate::scope::{ScopeState, WriterScope};
use crate::transaction::with_retry;

pub use crate::replica::Position;
pub use crate::scope::{IndependentAccess, ReadAccess, ReplicaReadAccess, Scope, WriteAccess};
pub use crate::transaction::{RetryPolicy, Route};

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

/// A nested independent writer first bounds its lock waits (see
/// [`NESTED_INDEPENDENT_LOCK_WAIT`]).
fn bound_waits<T: TransactionContext>(scope: &mut WriterScope<'_, T>) -> Result<(), Error> {
    <T::Connection as SupportedConnection>::bound_nested_lock_waits(
        scope.tx.connection(),
        NESTED_INDEPENDENT_LOCK_WAIT,
    )
    .map_err(Error::from)
}

pub fn writer_independent<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: IndependentAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
{
    let (ctx, nested) = independent_context(ctx)?;
    tracing::debug!(nested, "independent transaction");
    outermost_writer(ctx, |scope| {
        if nested {
            bound_waits(scope)?;
        }
        f(scope)
    })
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
        write_attempt(ctx, |scope| {
            if nested {
                bound_waits(scope)?;
            }
            f(scope)
        })
    })
}
