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

use std::ops::Deref;
use std::time::Duration;

use crate::backend::{ConcurrentWriters, SupportedConnection};
use crate::context::TransactionContext;
use crate::error::Error;
use crate::lock;
use crate::read_only::ReadOnlyConnection;
use crate::transaction::Transaction;

/// What a scope argument is: an idle context or an open transaction.
#[doc(hidden)]
pub enum ScopeState<'a, T: TransactionContext + ?Sized> {
    Idle(&'a T),
    Open {
        ctx: &'a T,
        tx: &'a mut Transaction<T::Connection>,
    },
}

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

    /// Whether this type always carries an open transaction (a scope) or
    /// never does (a request context). The entry points branch on it, so a
    /// call from inside a transaction compiles no code that begins one.
    #[doc(hidden)]
    const __OPEN: bool;

    #[doc(hidden)]
    fn __scope_state(&mut self) -> ScopeState<'_, Self::Context>;
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
pub trait WriteAccess: Scope {}

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
pub trait IndependentAccess: Scope {}

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
pub trait ReadAccess: Scope {}

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
pub trait ReplicaReadAccess: Scope {}

// `do_not_recommend`: when a scope lacks a capability, rustc should name the
// capability (with its message), not suggest implementing
// `TransactionContext` for the scope.
#[diagnostic::do_not_recommend]
impl<T: TransactionContext> Scope for T {
    type Context = T;
    const __OPEN: bool = false;

    fn __scope_state(&mut self) -> ScopeState<'_, T> {
        ScopeState::Idle(self)
    }
}
#[diagnostic::do_not_recommend]
impl<T: TransactionContext> WriteAccess for T {}
#[diagnostic::do_not_recommend]
impl<T: TransactionContext> IndependentAccess for T {}
#[diagnostic::do_not_recommend]
impl<T: TransactionContext> ReadAccess for T {}
#[diagnostic::do_not_recommend]
impl<T: TransactionContext> ReplicaReadAccess for T {}

macro_rules! scope_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name<'s, T: TransactionContext> {
            ctx: &'s T,
            tx: &'s mut Transaction<T::Connection>,
        }

        impl<'s, T: TransactionContext> $name<'s, T> {
            pub(crate) fn new(ctx: &'s T, tx: &'s mut Transaction<T::Connection>) -> Self {
                $name { ctx, tx }
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
                self.tx.replica.is_some()
            }
        }

        impl<T: TransactionContext> Deref for $name<'_, T> {
            type Target = T;

            fn deref(&self) -> &T {
                self.ctx
            }
        }

        impl<T: TransactionContext> Scope for $name<'_, T> {
            type Context = T;
            const __OPEN: bool = true;

            fn __scope_state(&mut self) -> ScopeState<'_, T> {
                ScopeState::Open {
                    ctx: self.ctx,
                    tx: &mut *self.tx,
                }
            }
        }

        impl<T: TransactionContext> ReplicaReadAccess for $name<'_, T> {}

        impl<T: TransactionContext> std::fmt::Debug for $name<'_, T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("backend", &<T::Connection as SupportedConnection>::NAME)
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

impl<T: TransactionContext> WriteAccess for WriterScope<'_, T> {}
// SQLite has one writer: an independent writer inside a writer could never
// commit there, so it does not compile.
impl<T: TransactionContext> IndependentAccess for WriterScope<'_, T> where
    T::Connection: ConcurrentWriters
{
}
impl<T: TransactionContext> IndependentAccess for ReaderScope<'_, T> {}
impl<T: TransactionContext> IndependentAccess for ReplicaScope<'_, T> {}
impl<T: TransactionContext> ReadAccess for WriterScope<'_, T> {}
impl<T: TransactionContext> ReadAccess for ReaderScope<'_, T> {}

impl<T: TransactionContext> WriterScope<'_, T> {
    /// The connection, inside the open read-write transaction.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     let conn: &mut diesel::SqliteConnection = ctx.conn();
    ///     diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(conn)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn conn(&mut self) -> &mut T::Connection {
        self.tx.connection()
    }

    /// Run `hook` after the outermost transaction commits (and its connection
    /// is back in the pool). Never runs if it rolls back; a hook registered
    /// inside a `#[writer(savepoint)]` that rolls back is dropped.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// let sent = Arc::new(AtomicBool::new(false));
    /// let flag = sent.clone();
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     ctx.on_commit(move || flag.store(true, Ordering::SeqCst));
    ///     Ok::<_, diesel_facade::Error>(())
    /// })?;
    /// assert!(sent.load(Ordering::SeqCst));
    /// # Ok(()) }
    /// ```
    pub fn on_commit(&mut self, hook: impl FnOnce() + 'static) {
        self.tx.on_commit.push(Box::new(hook));
    }

    /// Take the exclusive lock `name` by upserting its row in the `locks`
    /// table; held until the outermost transaction ends. A name is 1 to 50
    /// characters, without control characters or whitespace at either end;
    /// anything else is `ErrorKind::InvalidLockName`, before any SQL.
    /// Waits as long as the server's lock wait allows. Inside a
    /// `#[writer(savepoint)]` only a lock the transaction already holds may
    /// be taken (it returns at once); any other name is
    /// [`ErrorKind::LockInSavepoint`](crate::ErrorKind::LockInSavepoint),
    /// since the savepoint's rollback would release it early.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// db.run_migrations()?;
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     ctx.lock("nightly-report")?;
    ///     ctx.lock("nightly-report")?; // taking it again is fine
    ///     Ok::<_, diesel_facade::Error>(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn lock(&mut self, name: &str) -> Result<(), Error> {
        self.take_lock(name, None)
    }

    fn take_lock(&mut self, name: &str, timeout: Option<Duration>) -> Result<(), Error> {
        if self.tx.check_lock_level(name)? {
            return Ok(()); // already held until the outermost transaction ends
        }
        lock::lock(self.tx.connection(), name, timeout)?;
        self.tx.note_lock(name);
        Ok(())
    }

    /// Like [`lock`](Self::lock), but fail with
    /// [`ErrorKind::LockTimeout`](crate::ErrorKind::LockTimeout) after
    /// `timeout` (MySQL/MariaDB round it up to whole seconds).
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// # db.run_migrations()?;
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     ctx.lock_timeout("import", std::time::Duration::from_secs(2))
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn lock_timeout(&mut self, name: &str, timeout: Duration) -> Result<(), Error> {
        self.take_lock(name, Some(timeout))
    }

    /// Take the lock if no other transaction holds it, without waiting:
    /// `Ok(false)` if it is taken. The transaction stays usable either way.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// # db.run_migrations()?;
    /// let took = diesel_facade::write(&mut db.context(), |ctx| ctx.try_lock("cleanup"))?;
    /// assert!(took);
    /// # Ok(()) }
    /// ```
    pub fn try_lock(&mut self, name: &str) -> Result<bool, Error> {
        if self.tx.check_lock_level(name)? {
            return Ok(true);
        }
        let took = lock::try_lock(self.tx.connection(), name)?;
        if took {
            self.tx.note_lock(name);
        }
        Ok(took)
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
        impl<T: TransactionContext> $scope<'_, T> {
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

impl<T: TransactionContext> ReaderScope<'_, T> {
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
    pub fn conn(&mut self) -> &mut ReadOnlyConnection<T::Connection> {
        ReadOnlyConnection::from_mut(self.tx.connection())
    }
}

impl<T: TransactionContext> ReplicaScope<'_, T> {
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
    pub fn conn(&mut self) -> &mut ReadOnlyConnection<T::Connection> {
        ReadOnlyConnection::from_mut(self.tx.connection())
    }
}
