//! Typestate scopes and the capability traits that encode the nesting table.
//!
//! A `#[reader]`/`#[writer]` function's context parameter becomes
//! `&mut S` where `S` implements one capability trait:
//!
//! | capability            | idle context | [`WriterScope`] | [`ReaderScope`] | [`ReplicaScope`] |
//! |-----------------------|--------------|-----------------|-----------------|------------------|
//! | [`WriteAccess`]       | begin        | join/savepoint  | —               | —                |
//! | [`IndependentAccess`] | begin        | new txn         | new txn         | new txn          |
//! | [`ReadAccess`]        | begin        | join            | join            | —                |
//! | [`ReplicaReadAccess`] | begin        | join            | join            | join             |
//!
//! A missing cell is a missing impl, so the forbidden calls do not compile.
//! A scope derefs to the user's context only by shared reference, so a
//! nested call can never see the idle context and start a second
//! transaction by accident.

use std::marker::PhantomData;
use std::ops::Deref;
use std::time::Duration;

use crate::backend::SupportedConnection;
use crate::context::{Database, Main, TransactionContext};
use crate::error::Error;
use crate::read_only::ReadOnlyConnection;
use crate::transaction::{RetryPolicy, Route, Transaction};

mod chain;
mod erased;
mod state;
mod writer;

pub(crate) use chain::{end_all, Frame, Opened};
pub use chain::{Frames, OpenKind, Pending, Root};
pub use erased::{Again, DynIndependent, DynRead, DynReplicaRead, DynWrite, Kept, Once, WriteHow};
pub use state::{Elsewhere, False, Found, Here, Rep, SameDb, True, R, W};

/// Anything a data-access function can be called with: a request context
/// (no transaction yet) or one of the scopes ([`WriterScope`],
/// [`ReaderScope`], [`ReplicaScope`]).
///
/// ```
/// fn context_of<S: diesel_facade::Scope>(_: &mut S) {}
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// context_of(&mut db.context());
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a request context nor a transaction scope",
    label = "pass the request context (`&mut ctx`) or the `ctx` of the enclosing #[reader]/#[writer]",
    note = "request contexts implement `diesel_facade::TransactionContext` (derive it)"
)]
pub trait Scope {
    /// The application's context type.
    type Context: TransactionContext;
}

/// May start or join a read-write transaction: an idle context or a
/// [`WriterScope`]. Not a reader's scope: a reader's transaction is READ ONLY.
///
/// ```
/// fn needs_write<S: diesel_facade::WriteAccess>(_: &mut S) {}
/// # fn main() -> Result<(), diesel_facade::Error> {
/// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// needs_write(&mut db.context());
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "a `#[writer]` cannot run inside `{Self}`: that transaction is read-only",
    label = "read-only scope: cannot start or join a read-write transaction here",
    note = "make the calling function `#[writer]` so the whole transaction can write, or mark the callee `#[writer(independent)]` to commit it separately on its own connection"
)]
pub trait WriteAccess<D = Main>: Scope
where
    D: Database<Self::Context>,
{
    /// Begin a read-write transaction (a request context) or join the open
    /// one (a [`WriterScope`]). Each implementation holds only its own path,
    /// so a call from inside a transaction compiles no code that begins one.
    #[doc(hidden)]
    fn __write<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, Self::Context, D>) -> Result<R, E>;

    /// Like `__write`, but joined in a savepoint.
    #[doc(hidden)]
    fn __write_savepoint<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, Self::Context, D>) -> Result<R, E>;

    /// Like `__write`, re-running a transaction it begins per `policy`.
    #[doc(hidden)]
    fn __write_retry<R, E, F>(&mut self, policy: RetryPolicy, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnMut(&mut WriterScope<'_, Self::Context, D>) -> Result<R, E>;

    /// Like `__write_savepoint`, re-running a transaction it begins per
    /// `policy`.
    #[doc(hidden)]
    fn __write_savepoint_retry<R, E, F>(&mut self, policy: RetryPolicy, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnMut(&mut WriterScope<'_, Self::Context, D>) -> Result<R, E>;
}

/// May start an independent read-write transaction on a second connection:
/// any context or scope.
///
/// ```
/// fn needs_independent<S: diesel_facade::IndependentAccess>(_: &mut S) {}
/// # fn main() -> Result<(), diesel_facade::Error> {
/// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// needs_independent(&mut db.context());
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot start an independent transaction",
    label = "not a request context or a transaction scope, or a writer on SQLite",
    note = "pass the request context or the `ctx` of the enclosing #[reader]/#[writer]",
    note = "inside a `#[writer]` on SQLite (see `diesel_facade::ConcurrentWriters`), which allows one writer at a time, an independent writer would wait for its own caller and could never commit: call it before or after the writer, or from a `#[reader]`"
)]
pub trait IndependentAccess<D = Main>: Scope
where
    D: Database<Self::Context>,
{
    /// The context, and whether a transaction of the same database is open
    /// on it (refused where an independent writer could not commit beside
    /// it).
    #[doc(hidden)]
    fn __independent_context(&mut self) -> Result<(&Self::Context, bool), Error>;
}

/// May start or join a read-only transaction on the primary: an idle
/// context, a [`WriterScope`] or a [`ReaderScope`]. Not a [`ReplicaScope`]:
/// a primary-only read must not silently join a replica's (possibly stale)
/// transaction.
///
/// ```
/// fn needs_read<S: diesel_facade::ReadAccess>(_: &mut S) {}
/// # fn main() -> Result<(), diesel_facade::Error> {
/// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// needs_read(&mut db.context());
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "a `#[reader]` cannot be called with `{Self}`",
    label = "not a request context, a writer scope or a primary reader scope",
    note = "inside a `#[reader(replica)]` or `#[reader(allow_replica)]` the transaction may run on a replica: mark the callee `#[reader(allow_replica)]` if it can read replica data, or make the caller a plain `#[reader]` so it reads the primary"
)]
pub trait ReadAccess<D = Main>: Scope
where
    D: Database<Self::Context>,
{
    /// Begin a read-only transaction on the primary (a request context) or
    /// join the open one (a scope).
    #[doc(hidden)]
    fn __read<R, E, F>(&mut self, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReaderScope<'_, Self::Context, D>) -> Result<R, E>;
}

/// May start a read-only transaction on a replica, or join any open one:
/// every context and scope.
///
/// ```
/// fn needs_replica_read<S: diesel_facade::ReplicaReadAccess>(_: &mut S) {}
/// # fn main() -> Result<(), diesel_facade::Error> {
/// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// needs_replica_read(&mut db.context());
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot start or join a read-only transaction",
    label = "not a request context or a transaction scope",
    note = "pass the request context or the `ctx` of the enclosing #[reader]/#[writer]"
)]
pub trait ReplicaReadAccess<D = Main>: Scope
where
    D: Database<Self::Context>,
{
    /// Begin a read-only transaction routed by `route` (a request context)
    /// or join the open one (a scope).
    #[doc(hidden)]
    fn __read_replica<R, E, F>(&mut self, route: Route, f: F) -> Result<R, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReplicaScope<'_, Self::Context, D>) -> Result<R, E>;
}

// `do_not_recommend`: when a scope lacks a capability, rustc should name the
// capability (with its message), not suggest implementing
// `TransactionContext` for the scope.
#[diagnostic::do_not_recommend]
impl<T: TransactionContext> Scope for T {
    type Context = T;
}
#[diagnostic::do_not_recommend]
impl<T: TransactionContext, D: Database<T>> IndependentAccess<D> for T {
    fn __independent_context(&mut self) -> Result<(&T, bool), Error> {
        Ok((self, false))
    }
}

macro_rules! scope_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'s, T: TransactionContext, D: Database<T> = Main> {
            pub(crate) ctx: &'s T,
            pub(crate) tx: &'s mut Transaction<D::Connection>,
            /// The transactions open on the context's other databases.
            pub(crate) outer: &'s mut dyn Frames<T>,
            pub(crate) db: PhantomData<fn() -> D>,
        }

        impl<'s, T: TransactionContext, D: Database<T>> $name<'s, T, D> {
            pub(crate) fn new(
                ctx: &'s T,
                tx: &'s mut Transaction<D::Connection>,
                outer: &'s mut dyn Frames<T>,
            ) -> Self {
                $name {
                    ctx,
                    tx,
                    outer,
                    db: PhantomData,
                }
            }

            /// The application's context (also reachable through `Deref`).
            ///
            /// ```
            /// use diesel_facade::TransactionContext;
            /// # fn main() -> Result<(), diesel_facade::Error> {
            /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
            /// diesel_facade::read(&mut db.context(), |ctx| {
            ///     assert_eq!(ctx.context().facade().writer_url(), ":memory:");
            ///     Ok::<_, diesel_facade::Error>(())
            /// })?;
            /// # Ok(()) }
            /// ```
            pub fn context(&self) -> &T {
                self.ctx
            }

            /// Whether this transaction is running on a replica rather than
            /// the primary.
            ///
            /// ```
            /// # fn main() -> Result<(), diesel_facade::Error> {
            /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
            /// // No replica configured: replica reads run on the primary.
            /// let on_replica = diesel_facade::read_replica(&mut db.context(), |ctx| {
            ///     Ok::<_, diesel_facade::Error>(ctx.on_replica())
            /// })?;
            /// assert!(!on_replica);
            /// # Ok(()) }
            /// ```
            pub fn on_replica(&self) -> bool {
                self.tx.on_replica
            }
        }

        impl<T: TransactionContext, D: Database<T>> Deref for $name<'_, T, D> {
            type Target = T;

            fn deref(&self) -> &T {
                self.ctx
            }
        }

        impl<T: TransactionContext, D: Database<T>> Scope for $name<'_, T, D> {
            type Context = T;
        }

        impl<T: TransactionContext, D: Database<T>> std::fmt::Debug for $name<'_, T, D> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("database", &D::NAME)
                    .field("backend", &<D::Connection as SupportedConnection>::NAME)
                    .field("mode", &self.tx.mode)
                    .finish_non_exhaustive()
            }
        }
    };
}

scope_type!(
    /// The `ctx` inside a `#[writer]` body: a read-write transaction on the
    /// primary.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use diesel_facade::{writer, Context};
    /// use diesel::SqliteConnection;
    ///
    /// #[writer]
    /// fn create_table(ctx: &mut Context<SqliteConnection>) -> QueryResult<()> {
    ///     diesel::sql_query("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    ///         .execute(ctx.conn())?;
    ///     ctx.on_commit(|| println!("table created"));
    ///     Ok(())
    /// }
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
    /// create_table(&mut db.context())?;
    /// # Ok(()) }
    /// ```
    WriterScope
);
scope_type!(
    /// The `ctx` inside a `#[reader]` body: a read-only transaction on the
    /// primary (or a writer's transaction it joined). `conn()` is a
    /// [`ReadOnlyConnection`], on which only reads compile.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use diesel_facade::{reader, Context};
    /// use diesel::SqliteConnection;
    ///
    /// #[reader]
    /// fn answer(ctx: &mut Context<SqliteConnection>) -> QueryResult<i32> {
    ///     diesel::select(42.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
    /// }
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
    /// assert_eq!(answer(&mut db.context())?, 42);
    /// # Ok(()) }
    /// ```
    ReaderScope
);
scope_type!(
    /// The `ctx` inside a `#[reader(replica)]` or `#[reader(allow_replica)]`
    /// body: a read-only transaction that may run on a replica. Only
    /// replica-tolerant readers can be called from it.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use diesel_facade::{reader, Context};
    /// use diesel::SqliteConnection;
    ///
    /// #[reader(replica)]
    /// fn answer(ctx: &mut Context<SqliteConnection>) -> QueryResult<i32> {
    ///     diesel::select(42.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
    /// }
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
    /// assert_eq!(answer(&mut db.context())?, 42);
    /// # Ok(()) }
    /// ```
    ReplicaScope
);

impl<T: TransactionContext, D: Database<T>> ReaderScope<'_, T, D> {
    /// The connection as a [`ReadOnlyConnection`]: only reads compile on it.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// let one: i32 = diesel_facade::read(&mut db.context(), |ctx| {
    ///     let conn: &mut diesel_facade::ReadOnlyConnection<diesel::SqliteConnection> = ctx.conn();
    ///     diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(conn)
    /// })?;
    /// assert_eq!(one, 1);
    /// # Ok(()) }
    /// ```
    pub fn conn(&mut self) -> &mut ReadOnlyConnection<D::Connection> {
        ReadOnlyConnection::from_mut(self.tx.connection())
    }
}

impl<T: TransactionContext, D: Database<T>> ReplicaScope<'_, T, D> {
    /// The connection as a [`ReadOnlyConnection`]: only reads compile on it.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// let one: i32 = diesel_facade::read_replica(&mut db.context(), |ctx| {
    ///     let conn: &mut diesel_facade::ReadOnlyConnection<diesel::SqliteConnection> = ctx.conn();
    ///     diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(conn)
    /// })?;
    /// assert_eq!(one, 1);
    /// # Ok(()) }
    /// ```
    pub fn conn(&mut self) -> &mut ReadOnlyConnection<D::Connection> {
        ReadOnlyConnection::from_mut(self.tx.connection())
    }
}

/// Carries the error for writer-only methods called on a reader's scope.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is read-only: `lock`, `lock_timeout`, `try_lock` and `on_commit` need a `#[writer]`",
    label = "only available in a #[writer]",
    note = "make this function `#[writer]` (locks are writes: they upsert a row of the `locks` table)"
)]
pub trait WriterOnly {}

macro_rules! writer_only_methods {
    ($scope:ident) => {
        #[doc(hidden)]
        impl<T: TransactionContext, D: Database<T>> $scope<'_, T, D> {
            pub fn lock(&mut self, _name: &str) -> Result<(), Error>
            where
                Self: WriterOnly,
            {
                unreachable!("WriterOnly is never implemented")
            }

            pub fn lock_timeout(&mut self, _name: &str, _timeout: Duration) -> Result<(), Error>
            where
                Self: WriterOnly,
            {
                unreachable!("WriterOnly is never implemented")
            }

            pub fn try_lock(&mut self, _name: &str) -> Result<bool, Error>
            where
                Self: WriterOnly,
            {
                unreachable!("WriterOnly is never implemented")
            }

            pub fn on_commit(&mut self, _hook: impl FnOnce() + 'static)
            where
                Self: WriterOnly,
            {
                unreachable!("WriterOnly is never implemented")
            }
        }
    };
}

writer_only_methods!(ReaderScope);
writer_only_methods!(ReplicaScope);
