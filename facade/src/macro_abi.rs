//! What `#[reader]`, `#[writer]` and `#[derive(TransactionContext)]` expand
//! to, re-exported as `diesel_facade::__private`. Not a public API: names
//! and signatures change with the macros.
//!
//! Each annotated function's body becomes one call of a function here.
//! The function's scope parameter is a trait object (`&mut dyn
//! DynRead<C>` and so on), so the function is not generic:
//! it is compiled once, in its own crate, and its code is not carried in
//! the crate's metadata. The call hands the body, its result type erased
//! (`scope/erased.rs`), to the trait object: a request context's
//! implementation begins a transaction, a scope's joins (see `entry` and
//! `joins`); both are compiled once per context type, not per function.

use crate::backend::SupportedConnection;
use crate::context::TransactionContext;
use crate::entry::{outermost_writer, write_attempt};
use crate::error::Error;
use crate::scope::{Again, Kept, Once, ReaderScope, ReplicaScope, WriteHow, WriterScope};
pub use crate::scope::{DynIndependent, DynRead, DynReplicaRead, DynWrite};
use crate::transaction::with_retry;

pub use crate::context::{database_id, Database, Main, Named};
pub use crate::replica::Position;
pub use crate::scope::{
    False, IndependentAccess, ReadAccess, ReplicaReadAccess, SameDb, Scope, True, WriteAccess,
};
pub use crate::transaction::shared_instances;
pub use crate::transaction::{RetryPolicy, Route};

/// `#[reader]`: begin a read-only transaction on the primary, or join the
/// open one.
pub fn read<C, D, R, E, F>(access: &mut dyn DynRead<C, D>, f: F) -> Result<R, E>
where
    C: TransactionContext,
    D: Database<C>,
    E: From<Error>,
    F: FnOnce(&mut ReaderScope<'_, C, D>) -> Result<R, E>,
{
    let mut f = Some(f);
    let mut kept = Kept::new();
    let failed = access.__read_erased(&mut Once {
        f: &mut f,
        kept: &mut kept,
    });
    kept.finish(failed)
}

/// `#[reader(replica)]` and `#[reader(allow_replica)]`: begin a read-only
/// transaction routed by `route`, or join the open one.
pub fn read_replica<C, D, R, E, F>(
    access: &mut dyn DynReplicaRead<C, D>,
    route: Route,
    f: F,
) -> Result<R, E>
where
    C: TransactionContext,
    D: Database<C>,
    E: From<Error>,
    F: FnOnce(&mut ReplicaScope<'_, C, D>) -> Result<R, E>,
{
    let mut f = Some(f);
    let mut kept = Kept::new();
    let failed = access.__read_replica_erased(
        route,
        &mut Once {
            f: &mut f,
            kept: &mut kept,
        },
    );
    kept.finish(failed)
}

/// `#[writer]` and `#[writer(savepoint)]`: begin a read-write transaction,
/// or join the open one (in a savepoint when `savepoint`).
pub fn write<C, D, R, E, F>(access: &mut dyn DynWrite<C, D>, savepoint: bool, f: F) -> Result<R, E>
where
    C: TransactionContext,
    D: Database<C>,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, C, D>) -> Result<R, E>,
{
    let mut f = Some(f);
    let mut kept = Kept::new();
    let how = WriteHow {
        savepoint,
        retry: None,
    };
    let failed = access.__write_erased(
        how,
        &mut Once {
            f: &mut f,
            kept: &mut kept,
        },
    );
    kept.finish(failed)
}

/// `#[writer(retry)]` and `#[writer(savepoint, retry)]`: like [`write`],
/// re-running a transaction it begins per `policy`.
pub fn write_retry<C, D, R, E, F>(
    access: &mut dyn DynWrite<C, D>,
    savepoint: bool,
    policy: RetryPolicy,
    mut f: F,
) -> Result<R, E>
where
    C: TransactionContext,
    D: Database<C>,
    E: From<Error>,
    F: FnMut(&mut WriterScope<'_, C, D>) -> Result<R, E>,
{
    let mut kept = Kept::new();
    let how = WriteHow {
        savepoint,
        retry: Some(policy),
    };
    let failed = access.__write_erased(
        how,
        &mut Again {
            f: &mut f,
            kept: &mut kept,
        },
    );
    kept.finish(failed)
}

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

/// `#[writer(independent)]`: begin a read-write transaction on a
/// connection of its own, wherever it is called.
pub fn writer_independent<C, D, R, E, F>(ctx: &mut dyn DynIndependent<C, D>, f: F) -> Result<R, E>
where
    C: TransactionContext,
    D: Database<C>,
    E: From<Error>,
    F: FnOnce(&mut WriterScope<'_, C, D>) -> Result<R, E>,
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

/// `#[writer(independent, retry)]`: like [`writer_independent`],
/// re-running the transaction per `policy`.
pub fn writer_independent_retry<C, D, R, E, F>(
    ctx: &mut dyn DynIndependent<C, D>,
    policy: RetryPolicy,
    mut f: F,
) -> Result<R, E>
where
    C: TransactionContext,
    D: Database<C>,
    E: From<Error>,
    F: FnMut(&mut WriterScope<'_, C, D>) -> Result<R, E>,
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
