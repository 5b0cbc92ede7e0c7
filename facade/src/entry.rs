//! The entry points: the closure forms (`read`, `write`, `read_replica`) and
//! the functions `#[reader]`/`#[writer]` expand to. Each decides between
//! beginning a transaction (idle context), joining it, or opening a
//! savepoint or an independent transaction, then hands the body its scope.

use crate::backend::SupportedConnection;
use crate::backend::TxMode;
use crate::context::TransactionContext;
use crate::error::{Error, ErrorKind};
use crate::scope::{
    ReadAccess, ReaderScope, ReplicaReadAccess, ReplicaScope, ScopeState, WriteAccess, WriterScope,
};
use crate::transaction::{outermost, savepoint, with_retry, Route, Transaction};

/// Split a scope argument into "begin a transaction" or "join this one".
enum Entry<'a, T: TransactionContext> {
    Begin(&'a T),
    Join(&'a T, &'a mut Transaction<T::Connection>),
}

fn entry<'a, S: crate::scope::Scope + ?Sized>(
    ctx: &'a mut S,
    kind: &'static str,
) -> Entry<'a, S::Context> {
    match ctx.__scope_state() {
        ScopeState::Idle(ctx) => Entry::Begin(ctx),
        ScopeState::Open { ctx, tx, .. } => {
            tx.note_join(kind);
            Entry::Join(ctx, tx)
        }
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
    match entry(ctx, "reader") {
        Entry::Begin(ctx) => {
            outermost(ctx, TxMode::Read, Route::Primary, |ctx, tx| {
                f(&mut ReaderScope::new(ctx, tx))
            })
            .result
        }
        // Joined: a retry here would re-run only part of the outer
        // transaction, so errors go to the outermost call.
        Entry::Join(ctx, tx) => f(&mut ReaderScope::new(ctx, tx)),
    }
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

fn replica_read<S, R, E, F>(ctx: &mut S, route: Route, f: F) -> Result<R, E>
where
    S: ReplicaReadAccess + ?Sized,
    E: From<Error>,
    F: FnOnce(&mut ReplicaScope<'_, S::Context>) -> Result<R, E>,
{
    match entry(ctx, "replica reader") {
        Entry::Begin(ctx) => {
            outermost(ctx, TxMode::Read, route, |ctx, tx| {
                f(&mut ReplicaScope::new(ctx, tx))
            })
            .result
        }
        // Joined: a retry here would re-run only part of the outer
        // transaction, so errors go to the outermost call.
        Entry::Join(ctx, tx) => f(&mut ReplicaScope::new(ctx, tx)),
    }
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
    match entry(ctx, "writer") {
        Entry::Begin(ctx) => {
            outermost(ctx, TxMode::Write, Route::Primary, |ctx, tx| {
                f(&mut WriterScope::new(ctx, tx))
            })
            .result
        }
        // Joined: a retry here would re-run only part of the outer
        // transaction, so errors go to the outermost call.
        Entry::Join(ctx, tx) => f(&mut WriterScope::new(ctx, tx)),
    }
}

#[doc(hidden)]
pub mod private {
    //! What the macros expand to. Not a public API.
    use super::*;

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
    }

    impl<C: crate::SupportedConnection> FacadeField for crate::Facade<C> {
        type Connection = C;
        fn as_facade(&self) -> &crate::Facade<C> {
            self
        }
    }

    pub fn reader<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
    where
        S: ReadAccess + ?Sized,
        E: From<Error>,
        F: FnOnce(&mut ReaderScope<'_, S::Context>) -> Result<R, E>,
    {
        read(ctx, f)
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
        write(ctx, f)
    }

    pub fn writer_savepoint<S, R, E, F>(ctx: &mut S, f: F) -> Result<R, E>
    where
        S: WriteAccess + ?Sized,
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
    {
        match entry(ctx, "savepoint writer") {
            Entry::Begin(ctx) => {
                outermost(ctx, TxMode::Write, Route::Primary, |ctx, tx| {
                    f(&mut WriterScope::new(ctx, tx))
                })
                .result
            }
            // Joined: a retry here would re-run only part of the outer
            // transaction, so errors go to the outermost call.
            Entry::Join(ctx, tx) => savepoint(tx, |tx| f(&mut WriterScope::new(ctx, tx))),
        }
    }

    pub fn writer_retry<S, R, E, F>(ctx: &mut S, policy: RetryPolicy, mut f: F) -> Result<R, E>
    where
        S: WriteAccess + ?Sized,
        E: From<Error>,
        F: FnMut(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
    {
        match entry(ctx, "writer") {
            Entry::Begin(ctx) => with_retry(ctx.facade(), policy, || {
                outermost(ctx, TxMode::Write, Route::Primary, |ctx, tx| {
                    f(&mut WriterScope::new(ctx, tx))
                })
            }),
            // Joined: a retry here would re-run only part of the outer
            // transaction, so errors go to the outermost call.
            Entry::Join(ctx, tx) => f(&mut WriterScope::new(ctx, tx)),
        }
    }

    pub fn writer_savepoint_retry<S, R, E, F>(
        ctx: &mut S,
        policy: RetryPolicy,
        mut f: F,
    ) -> Result<R, E>
    where
        S: WriteAccess + ?Sized,
        E: From<Error>,
        F: FnMut(&mut WriterScope<'_, S::Context>) -> Result<R, E>,
    {
        match entry(ctx, "savepoint writer") {
            Entry::Begin(ctx) => with_retry(ctx.facade(), policy, || {
                outermost(ctx, TxMode::Write, Route::Primary, |ctx, tx| {
                    f(&mut WriterScope::new(ctx, tx))
                })
            }),
            // Joined: a retry here would re-run only part of the outer
            // transaction, so errors go to the outermost call.
            Entry::Join(ctx, tx) => savepoint(tx, |tx| f(&mut WriterScope::new(ctx, tx))),
        }
    }

    /// The context, and whether a transaction is open on it (checked for
    /// whether an independent writer can commit beside it).
    fn independent_context<S: crate::scope::Scope + ?Sized>(
        ctx: &mut S,
    ) -> Result<(&S::Context, bool), Error> {
        match ctx.__scope_state() {
            ScopeState::Idle(ctx) => Ok((ctx, false)),
            ScopeState::Open { ctx, tx, .. } => {
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
    ) -> crate::transaction::Attempt<R, E>
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
}
