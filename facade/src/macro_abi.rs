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
use crate::error::Error;
use crate::scope::WriterScope;
use crate::transaction::with_retry;

pub use crate::context::{database_id, Database, Main, Named};
pub use crate::replica::Position;
pub use crate::scope::{
    False, IndependentAccess, ReadAccess, ReplicaReadAccess, SameDb, Scope, True, WriteAccess,
};
pub use crate::transaction::shared_instances;
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

/// How long an independent writer nested in an open transaction of its
/// own context waits for a row lock: its outer transaction may hold the
/// row, and that wait would never end.
pub(crate) const NESTED_INDEPENDENT_LOCK_WAIT: std::time::Duration =
    std::time::Duration::from_secs(10);

/// A nested independent writer first bounds its lock waits (see
/// [`NESTED_INDEPENDENT_LOCK_WAIT`]).
fn bound_waits<T: TransactionContext, D: Database<T>>(
    scope: &mut WriterScope<'_, T, D>,
) -> Result<(), Error> {
    <D::Connection as SupportedConnection>::bound_nested_lock_waits(
        scope.tx.connection(),
        NESTED_INDEPENDENT_LOCK_WAIT,
    )
    .map_err(Error::from)
}

pub fn writer_independent<S, D, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
where
    S: IndependentAccess<D> + ?Sized,
    D: Database<S::Context>,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, S::Context, D>) -> Result<R, E>,
{
    let (ctx, nested) = ctx.__independent_context()?;
    tracing::debug!(nested, "independent transaction");
    outermost_writer(ctx, |scope| {
        if nested {
            bound_waits(scope)?;
        }
        f(scope)
    })
}

pub fn writer_independent_retry<S, D, R, E, F>(
    ctx: &mut S,
    policy: RetryPolicy,
    mut f: F,
) -> Result<R, E>
where
    S: IndependentAccess<D> + ?Sized,
    D: Database<S::Context>,
    E: From<Error>,
    F: FnMut(&mut WriterScope<'_, S::Context, D>) -> Result<R, E>,
{
    let (ctx, nested) = ctx.__independent_context()?;
    with_retry(D::facade(ctx), policy, || {
        write_attempt(ctx, |scope| {
            if nested {
                bound_waits(scope)?;
            }
            f(scope)
        })
    })
}
