//! The shared handle: a writer pool, replica pools and configuration.
//!
//! A [`Facade`] is cheap to clone (one `Arc`) and is what a request context
//! hands out. It is built by `builder/` (`Facade::builder`, `from_env`,
//! `from_config`); its pools are in `pool/`, replica routing is
//! `routing.rs`'s and its counters `stats.rs`'s. Its URLs appear only with
//! their password replaced by `***`.

use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::backend::SupportedConnection;
use crate::config::RetrySettings;
use crate::error::Error;
use crate::pool::{PoolSet, PooledConn};
use crate::replica::ReadPosition;
use crate::routing::Replicas;
use crate::stats::{Counters, FacadeStats};

/// What every clone of a facade shares.
pub(crate) struct Inner<C: SupportedConnection> {
    writer: PoolSet<C>,
    replicas: Replicas<C>,
    pub(crate) retry: RetrySettings,
    pub(crate) counters: Counters,
    /// Something that must live exactly as long as the pools and go after
    /// them (a test database, dropped once its connections are closed):
    /// fields drop in order, so this one is last. Never read, only dropped
    /// (and only set with the `testing` feature).
    #[allow(dead_code)]
    owned: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// The shared database handle: a writer pool, zero or more replica pools and
/// the configuration. Clone it freely; clones share the pools.
///
/// Each handle also carries a [`ReadPosition`]: the position of the last
/// commit made through a context holding this handle, so that the context's
/// `#[reader(replica)]` calls see its own writes (see
/// [`read_position`](Self::read_position)). A clone starts with a copy of
/// the position and tracks its own from then on: build each request's
/// context with `db.clone()`.
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::Facade;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// # let dir = std::env::temp_dir().join(format!("facade-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("app.db");
/// # let path = path.to_str().unwrap();
/// let db: Facade<SqliteConnection> = Facade::builder()
///     .writer(path)
///     .max_pool_size(4)
///     .pool_timeout(Duration::from_secs(5))
///     .build()?;
/// db.run_migrations()?;
/// # Ok(()) }
/// ```
pub struct Facade<C: SupportedConnection> {
    /// The pools and settings every clone shares. Dropped, like `position`,
    /// by `Facade`'s own `Drop`.
    pub(crate) inner: ManuallyDrop<Arc<Inner<C>>>,
    /// The read-your-writes position of contexts that have no
    /// `#[read_position]` field of their own.
    position: ManuallyDrop<ReadPosition>,
}

impl<C: SupportedConnection> Drop for Facade<C> {
    // Not inlined, for the same reason as `clone`: a request context is
    // dropped at every call site that starts a request, and the fields'
    // drops (the `Arc`'s count, the position's variants, their unwinding
    // paths) were copied into each of them (docs/performance.md, "Seventh
    // pass").
    #[inline(never)]
    fn drop(&mut self) {
        // SAFETY: the fields are dropped here only, once each, and never
        // used after: this is the facade's own drop.
        unsafe {
            ManuallyDrop::drop(&mut self.position);
            ManuallyDrop::drop(&mut self.inner);
        }
    }
}

impl<C: SupportedConnection> Clone for Facade<C> {
    /// Shares the pools; copies the read position into a fresh cell, so the
    /// clone's writes do not make the original wait, nor the other way round.
    // Not inlined: a request context is made from a clone at every call
    // site that starts a request, and its copies (the `Arc`'s count, the
    // position's copy and their unwinding paths) made an application's
    // release build measurably bigger (docs/performance.md).
    #[inline(never)]
    fn clone(&self) -> Self {
        Facade {
            inner: ManuallyDrop::new(Arc::clone(&self.inner)),
            position: ManuallyDrop::new(ReadPosition::clone(&self.position)),
        }
    }
}

impl<C: SupportedConnection> fmt::Debug for Facade<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Facade")
            .field("backend", &C::NAME)
            .field("writer", &self.inner.writer.redacted)
            .field("replicas", &self.inner.replicas.redacted())
            .field("max_pool_size", &self.inner.writer.max_pool_size)
            .field("pool_timeout", &self.inner.writer.pool_timeout)
            .finish()
    }
}

impl<C: SupportedConnection> Facade<C> {
    /// A facade on these pools, with an empty read position (see
    /// `builder/` for how they are made).
    pub(crate) fn new(writer: PoolSet<C>, replicas: Replicas<C>, retry: RetrySettings) -> Self {
        Facade {
            inner: ManuallyDrop::new(Arc::new(Inner {
                writer,
                replicas,
                retry,
                counters: Counters::default(),
                owned: None,
            })),
            position: ManuallyDrop::new(ReadPosition::new()),
        }
    }

    /// The read-your-writes position this handle carries: a context whose
    /// [`read_position`](crate::TransactionContext::read_position) is the
    /// default (no `#[read_position]` field) records its commits here, and
    /// its replica reads wait for them. Use [`ReadPosition::token`] to carry
    /// it to the user's next request.
    ///
    /// ```
    /// use diesel::SqliteConnection;
    /// use diesel_facade::{Facade, TransactionContext};
    ///
    /// #[derive(TransactionContext)]
    /// struct RequestContext {
    ///     #[facade]
    ///     db: Facade<SqliteConnection>,
    /// }
    ///
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
    /// let ctx = RequestContext { db: db.clone() };
    /// assert!(std::ptr::eq(ctx.read_position().unwrap(), ctx.db.read_position()));
    /// assert_eq!(ctx.db.read_position().token(), None); // it has not written
    /// # Ok(()) }
    /// ```
    pub fn read_position(&self) -> &ReadPosition {
        &self.position
    }

    /// Run diesel-facade's embedded migrations (the `locks` table) on the
    /// writer database. Idempotent; shares diesel's
    /// `__diesel_schema_migrations` table with the application's migrations.
    /// Returns the versions it applied.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// assert_eq!(db.run_migrations()?.len(), 1);
    /// assert!(db.run_migrations()?.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn run_migrations(&self) -> Result<Vec<String>, Error> {
        // Migrations begin with statements of their own: a pooled
        // connection is pinged first, however recently it was used.
        let mut conn = self
            .inner
            .writer
            .checkout("writer", &self.inner.counters, true)?;
        C::run_embedded_migrations(&mut conn.conn)
    }

    /// Counters since this facade was built.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// assert_eq!(db.stats().transactions, 0);
    /// # Ok(()) }
    /// ```
    pub fn stats(&self) -> FacadeStats {
        self.inner.counters.snapshot()
    }

    /// The writer URL with its password replaced by `***`.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// assert_eq!(db.writer_url(), ":memory:");
    /// # Ok(()) }
    /// ```
    pub fn writer_url(&self) -> &str {
        &self.inner.writer.redacted
    }

    /// How many replicas are configured.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// assert_eq!(db.replica_count(), 0);
    /// # Ok(()) }
    /// ```
    pub fn replica_count(&self) -> usize {
        self.inner.replicas.len()
    }

    /// This facade, made the owner of `value`, which is dropped after the
    /// pools close, when the last clone goes. Only for a facade fresh from
    /// `build` (no clone yet); otherwise `value` comes back.
    #[cfg(feature = "testing")]
    pub(crate) fn owning<V: std::any::Any + Send + Sync>(mut self, value: V) -> Result<Self, V> {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.owned = Some(Box::new(value));
                Ok(self)
            }
            None => Err(value),
        }
    }

    /// The configured `max_pool_size` (the same for every pool).
    pub(crate) fn max_pool_size(&self) -> u32 {
        self.inner.writer.max_pool_size
    }

    pub(crate) fn checkout_writer(&self) -> Result<PooledConn<C>, Error> {
        self.inner
            .writer
            .checkout("writer", &self.inner.counters, false)
    }

    /// A connection to a replica that can serve this read (see
    /// `routing.rs`), or `None`: the caller reads from the primary.
    pub(crate) fn checkout_replica(
        &self,
        position: Option<&ReadPosition>,
    ) -> Option<PooledConn<C>> {
        let inner = &*self.inner;
        inner
            .replicas
            .checkout(&inner.writer, &inner.counters, position)
    }
}
