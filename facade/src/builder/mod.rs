//! Configuring a facade: [`FacadeBuilder`] with the options every backend
//! shares (each backend adds its own in its file: `impl
//! FacadeBuilder<SqliteConnection>` in `backend/sqlite.rs`, ...). The
//! constructors `Facade::builder`, `from_env` and `from_config` are in
//! `builder/sources.rs`.
//!
//! `build` validates every option first (anything that could make a later
//! call panic, wait without bound or send an invalid value to the server is
//! an `ErrorKind::Config` naming the option), then creates the pools and
//! connects once to the writer.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::Instrumentation;

use crate::backend::SupportedConnection;
use crate::config::RetrySettings;
use crate::error::Error;
use crate::facade::Facade;
use crate::pool::{PoolSet, PoolSettings};
use crate::redact::redact_url;
use crate::routing::{ReplicaSettings, Replicas};

mod sources;

/// Builder for [`Facade`]; see [`Facade::builder`].
///
/// The options every backend has are here; each backend adds its own
/// (`sqlite_*` on `FacadeBuilder<SqliteConnection>`, `mysql_*` and
/// `wsrep_sync_wait` on `FacadeBuilder<MysqlConnection>`,
/// `application_name` on `FacadeBuilder<PgConnection>`).
///
/// ```
/// use std::time::Duration;
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
///     .writer(":memory:")
///     .max_pool_size(1)
///     .pool_timeout(Duration::from_millis(200))
///     .connection_recycle_time(Duration::from_secs(600))
///     .sqlite_busy_timeout(Duration::from_secs(2))
///     .max_retries(5)
///     .build()?;
/// # Ok(()) }
/// ```
pub struct FacadeBuilder<C: SupportedConnection> {
    writer: Option<String>,
    replicas: Vec<String>,
    pool: PoolSettings,
    /// The backend's own options, set by its builder methods (in its file).
    options: C::Options,
    retry: RetrySettings,
    replica_settings: ReplicaSettings,
    _conn: PhantomData<fn() -> C>,
}

impl<C: SupportedConnection> Default for FacadeBuilder<C> {
    fn default() -> Self {
        FacadeBuilder {
            writer: None,
            replicas: Vec::new(),
            pool: PoolSettings::default(),
            options: C::Options::default(),
            retry: RetrySettings::default(),
            replica_settings: ReplicaSettings::default(),
            _conn: PhantomData,
        }
    }
}

impl<C: SupportedConnection> fmt::Debug for FacadeBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacadeBuilder")
            .field("writer", &self.writer.as_deref().map(redact_url))
            .field(
                "replicas",
                &self
                    .replicas
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("max_pool_size", &self.pool.max_pool_size)
            .field("pool_timeout", &self.pool.pool_timeout)
            .finish_non_exhaustive()
    }
}

impl<C: SupportedConnection> FacadeBuilder<C> {
    /// The writer (primary) database: any diesel URL for the backend.
    ///
    /// SQLite: a private in-memory database (`:memory:`, `file::memory:`,
    /// `file:name?mode=memory`) exists once per connection, so its pool is
    /// limited to one connection; a shared-cache one
    /// (`file::memory:?cache=shared`, `file:name?mode=memory&cache=shared`)
    /// is one database for every connection and is not limited.
    ///
    /// MySQL/MariaDB (Galera): a comma-separated list of URLs is an
    /// active/passive failover list, as operators configure HAProxy with
    /// backup servers. Every new connection goes to the first node that
    /// accepts it and is ready (`wsrep_ready`); a node whose port does not
    /// answer within 2 s (or `pool_timeout`, if shorter) is skipped. When a
    /// node is lost, its pooled connections fail their `BEGIN` (or, after
    /// 500 ms idle, their check-out ping) and new transactions move to the
    /// next live node; the transactions that
    /// were running on it end with `Disconnected` (or `CommitUnknown` if
    /// COMMIT was in flight). When the first node is back, new connections
    /// prefer it again while existing ones stay where they are, so for a
    /// while writes may reach two nodes: Galera certifies them like any
    /// multi-master writes, and `#[writer(retry)]` retries the loser.
    /// PostgreSQL names several hosts in one URL, libpq's way
    /// (`postgres://h1,h2/db?target_session_attrs=read-write`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    ///
    /// ```no_run
    /// # #[cfg(feature = "mysql")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::MysqlConnection>::builder()
    ///     .writer("mysql://app:secret@node1/app,mysql://app:secret@node2/app")
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "mysql"))]
    /// # fn main() {}
    /// ```
    pub fn writer(mut self, url: impl Into<String>) -> Self {
        self.writer = Some(url.into());
        self
    }

    /// Add a replica for `#[reader(replica)]`. Repeatable; with none,
    /// replica reads use the writer database.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "postgres")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::PgConnection>::builder()
    ///     .writer("postgres://app:secret@primary/app")
    ///     .replica("postgres://app:secret@replica-1/app")
    ///     .replica("postgres://app:secret@replica-2/app")
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "postgres"))]
    /// # fn main() {}
    /// ```
    pub fn replica(mut self, url: impl Into<String>) -> Self {
        self.replicas.push(url.into());
        self
    }

    /// Connections per pool (default 10). Must be at least 1.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .max_pool_size(20)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn max_pool_size(mut self, size: u32) -> Self {
        self.pool.max_pool_size = size;
        self
    }

    /// How long a checkout waits for a free connection before
    /// [`ErrorKind::PoolTimeout`](crate::ErrorKind::PoolTimeout) (default
    /// 30 s). `build` rejects zero and anything above 24 hours with
    /// [`ErrorKind::Config`](crate::ErrorKind::Config).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .pool_timeout(Duration::from_secs(2))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn pool_timeout(mut self, timeout: Duration) -> Self {
        self.pool.pool_timeout = timeout;
        self
    }

    /// Close connections older than this when they return to the pool
    /// (oslo.db's `connection_recycle_time`, default 1 hour). `None` keeps
    /// them forever; `Duration::ZERO` is a
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error at `build`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .connection_recycle_time(Duration::from_secs(600))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn connection_recycle_time(mut self, age: impl Into<Option<Duration>>) -> Self {
        self.pool.connection_recycle_time = age.into();
        self
    }

    /// How many times `#[writer(retry)]` re-runs a transaction by default
    /// (default 10; `#[writer(retry = N)]` overrides it per function).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .max_retries(20)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.retry.max_retries = retries;
        self
    }

    /// Backoff between retries: exponential from `initial`, capped at `max`,
    /// with full jitter (defaults 5 ms and 500 ms).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .retry_backoff(Duration::from_millis(10), Duration::from_secs(1))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry.initial_backoff = initial;
        self.retry.max_backoff = max.max(initial);
        self
    }

    /// The longest `#[writer(retry)]` keeps retrying: no retry starts later
    /// than this after the first attempt began (default 60 s), whatever
    /// `max_retries` allows. An attempt already running is not interrupted,
    /// so a call can take this plus one attempt (at most `pool_timeout` to
    /// get a connection, plus the body).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .max_retry_duration(Duration::from_secs(10))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn max_retry_duration(mut self, duration: Duration) -> Self {
        self.retry.max_duration = duration;
        self
    }

    /// How long a replica read that must see this context's last write
    /// waits for the replica to apply it before reading from the primary
    /// instead (default 1 s).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "postgres")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::PgConnection>::builder()
    ///     .writer("postgres://app:secret@primary/app")
    ///     .replica("postgres://app:secret@replica/app")
    ///     .replica_wait_timeout(Duration::from_millis(250))
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "postgres"))]
    /// # fn main() {}
    /// ```
    pub fn replica_wait_timeout(mut self, timeout: Duration) -> Self {
        self.replica_settings.wait_timeout = timeout;
        self
    }

    /// Skip replicas that report more replication lag than this (PostgreSQL:
    /// time since the last replayed transaction while WAL is pending;
    /// MariaDB: `Seconds_Behind_Master`). Costs one query per replica read.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "postgres")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::PgConnection>::builder()
    ///     .writer("postgres://app:secret@primary/app")
    ///     .replica("postgres://app:secret@replica/app")
    ///     .max_replica_lag(Duration::from_secs(5))
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "postgres"))]
    /// # fn main() {}
    /// ```
    pub fn max_replica_lag(mut self, lag: Duration) -> Self {
        self.replica_settings.max_lag = Some(lag);
        self
    }

    /// How long a replica read waits for a pooled replica connection before
    /// treating the replica as unavailable (default 250 ms), and how long an
    /// unavailable replica is skipped before it is tried again (default 5 s).
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "postgres")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::PgConnection>::builder()
    ///     .writer("postgres://app:secret@primary/app")
    ///     .replica("postgres://app:secret@replica/app")
    ///     .replica_timeouts(Duration::from_millis(100), Duration::from_secs(10))
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "postgres"))]
    /// # fn main() {}
    /// ```
    pub fn replica_timeouts(mut self, checkout: Duration, retry_interval: Duration) -> Self {
        self.replica_settings.checkout_timeout = checkout;
        self.replica_settings.retry_interval = retry_interval;
        self
    }

    /// Install a diesel [`Instrumentation`] on every connection (the facade
    /// keeps its own and forwards every event to yours).
    ///
    /// ```
    /// use diesel::connection::{Instrumentation, InstrumentationEvent};
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    ///
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let begins = Arc::new(AtomicUsize::new(0));
    /// let counter = begins.clone();
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .instrumentation(move || {
    ///         let counter = counter.clone();
    ///         Box::new(move |event: InstrumentationEvent<'_>| {
    ///             if let InstrumentationEvent::BeginTransaction { .. } = event {
    ///                 counter.fetch_add(1, Ordering::SeqCst);
    ///             }
    ///         }) as Box<dyn Instrumentation>
    ///     })
    ///     .build()?;
    /// diesel_facade::read(&mut db.context(), |_| Ok::<_, diesel_facade::Error>(()))?;
    /// assert_eq!(begins.load(Ordering::SeqCst), 1);
    /// # Ok(()) }
    /// ```
    pub fn instrumentation<F>(mut self, factory: F) -> Self
    where
        F: Fn() -> Box<dyn Instrumentation> + Send + Sync + 'static,
    {
        self.pool.instrumentation = Some(Arc::new(factory));
        self
    }

    /// A transactional test facade (`crate::testing`): one connection,
    /// inside a test transaction that is rolled back when the pool closes.
    #[cfg(feature = "testing")]
    pub(crate) fn test_transaction(mut self) -> Self {
        self.pool.test_transaction = true;
        self
    }

    /// For the backends' own builder methods (in their files).
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(dead_code)
    )]
    pub(crate) fn with_options(mut self, set: impl FnOnce(&mut C::Options)) -> Self {
        set(&mut self.options);
        self
    }
}

impl<C: SupportedConnection> FacadeBuilder<C> {
    /// Check the configuration, connect once to the writer (so a wrong URL,
    /// host or password fails here, not on the first request) and create the
    /// pools. Replicas connect lazily: a replica that is down at start-up is
    /// skipped by reads until it answers.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn build(mut self) -> Result<Facade<C>, Error> {
        let writer = self.writer.clone().ok_or_else(|| {
            Error::config("no writer database: call .writer(url) or set DATABASE_URL")
        })?;
        self.validate()?;
        if self.pool.test_transaction && !self.replicas.is_empty() {
            return Err(Error::config(
                "a transactional test facade reads and writes through its one connection: \
                 it takes no replicas (`#[reader(replica)]` reads that connection too)",
            ));
        }
        let options = Arc::new(std::mem::take(&mut self.options));
        let writer = PoolSet::new(&writer, &self.pool, &options, true)?;
        let replicas = self
            .replicas
            .iter()
            .map(|url| PoolSet::new(url, &self.pool, &options, false))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Facade::new(
            writer,
            Replicas::new(replicas, self.replica_settings),
            self.retry,
        ))
    }

    /// Every option that could make a later call panic, wait without bound
    /// or send an invalid value to the server is rejected here, naming the
    /// option and the range it accepts.
    fn validate(&self) -> Result<(), Error> {
        self.pool.validate()?;
        self.retry.validate()?;
        self.replica_settings.validate()?;
        C::validate_options(&self.options)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::transaction::{with_retry, Attempt, RetryPolicy};

    fn always_retryable(
        db: &Facade<diesel::SqliteConnection>,
        takes: Duration,
    ) -> (Result<(), Error>, usize) {
        let mut attempts = 0;
        let result = with_retry(db, RetryPolicy::default_attempts(), || {
            attempts += 1;
            std::thread::sleep(takes);
            Attempt {
                result: Err(Error::new(ErrorKind::Disconnected, "gone")),
                retry: Some((ErrorKind::Disconnected, "gone".to_owned())),
            }
        });
        (result, attempts)
    }

    #[test]
    fn retries_stop_at_max_retry_duration() {
        let quick = |b: FacadeBuilder<diesel::SqliteConnection>| {
            b.writer(":memory:")
                .retry_backoff(Duration::from_micros(1), Duration::from_micros(1))
        };
        // Within the bound: all max_retries (10) retries.
        let db = quick(Facade::builder()).build().unwrap();
        let (result, attempts) = always_retryable(&db, Duration::ZERO);
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Disconnected);
        assert_eq!((attempts, db.stats().retries), (11, 10));
        // The first attempt alone outlasts the bound: no retry.
        let db = quick(Facade::builder())
            .max_retry_duration(Duration::from_millis(10))
            .build()
            .unwrap();
        let (_, attempts) = always_retryable(&db, Duration::from_millis(20));
        assert_eq!((attempts, db.stats().retries), (1, 0));
    }
}
