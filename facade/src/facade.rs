//! The shared handle: a writer pool, replica pools and configuration.
//!
//! A [`Facade`] is cheap to clone (one `Arc`) and is what a request context
//! hands out. Connections come from r2d2 pools whose manager applies the
//! backend's session settings on connect, checks health on checkout, and
//! discards any connection that comes back with a transaction open or after
//! a failed rollback. URLs are kept out of every `Debug`, `Display`, log line
//! and error with their password replaced by `***`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::{
    Instrumentation, InstrumentationEvent, TransactionManager, TransactionManagerStatus,
};
use r2d2::{ManageConnection, Pool, PooledConnection};
use serde::Deserialize;

use crate::backend::{SessionState, SupportedConnection};
use crate::context::Context;
use crate::error::{classify, is_connection_lost, Error, ErrorKind};
use crate::redact::{redact_url, Secrets};
use crate::replica::{Applied, Position, ReadPosition, Recorded};

/// A factory for a per-connection diesel [`Instrumentation`], see
/// [`FacadeBuilder::instrumentation`].
///
/// ```
/// use diesel::connection::{Instrumentation, InstrumentationEvent};
/// let factory: diesel_facade::InstrumentationFactory = std::sync::Arc::new(|| {
///     Box::new(|_event: InstrumentationEvent<'_>| {}) as Box<dyn Instrumentation>
/// });
/// # let _ = factory;
/// ```
pub type InstrumentationFactory = Arc<dyn Fn() -> Box<dyn Instrumentation> + Send + Sync>;

/// The session `wait_timeout` a Galera node gets unless
/// [`FacadeBuilder::mysql_wait_timeout`] says otherwise: nothing on a
/// default Galera setup waits forever for a brute-force-aborted connection.
///
/// ```
/// assert_eq!(diesel_facade::GALERA_DEFAULT_WAIT_TIMEOUT.as_secs(), 10);
/// ```
pub const GALERA_DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Backend session options applied to every new connection.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct BackendOptions {
    pub(crate) sqlite_foreign_keys: bool,
    pub(crate) sqlite_wal: bool,
    pub(crate) sqlite_busy_timeout: Duration,
    pub(crate) mysql_sql_mode: Option<String>,
    pub(crate) wsrep_sync_wait: Option<u8>,
    /// `None`: the default (on a Galera node, [`GALERA_DEFAULT_WAIT_TIMEOUT`];
    /// elsewhere the server's); `Some(None)`: the server's own, always.
    pub(crate) mysql_wait_timeout: Option<Option<Duration>>,
    pub(crate) application_name: Option<String>,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            sqlite_foreign_keys: true,
            sqlite_wal: true,
            sqlite_busy_timeout: Duration::from_secs(5),
            mysql_sql_mode: Some("TRADITIONAL".to_owned()),
            wsrep_sync_wait: None,
            mysql_wait_timeout: None,
            application_name: None,
        }
    }
}

/// The longest any configured wait may be: the pool and replica timeouts,
/// SQLite's busy timeout, retry backoffs and a lock guard's timeout. A
/// longer one is a configuration mistake (a request that waits a day has
/// failed), and `Instant::now() + Duration::MAX` would panic.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The URLs of a comma-separated list. A comma inside a server URL's
/// authority (`scheme://` up to the next `/`, `?` or `#`) belongs to that
/// URL: a password with a comma, a multi-host PostgreSQL URL
/// (`postgres://h1,h2/db`). Every other comma separates two entries.
pub(crate) fn split_url_list(list: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut start = 0;
    let mut in_authority = false;
    let mut i = 0;
    let bytes = list.as_bytes();
    while i < bytes.len() {
        if list[i..].starts_with("://") {
            in_authority = true;
            i += 3;
            continue;
        }
        match bytes[i] {
            b'/' | b'?' | b'#' => in_authority = false,
            b',' if !in_authority => {
                urls.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    urls.push(&list[start..]);
    urls.into_iter()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// How long a writer failover list waits for a node's port to answer
/// before it tries the next node (at most `pool_timeout`).
const FAILOVER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest pool: r2d2 reserves room for every connection up front, and
/// no server accepts more connections than this from one client anyway.
pub(crate) const MAX_POOL_SIZE: u32 = 10_000;

/// MySQL's and MariaDB's upper limit for `wait_timeout` (365 days).
const MYSQL_MAX_WAIT_TIMEOUT_SECS: u64 = 31_536_000;

/// A `Config` error unless `value` is at most [`MAX_WAIT`] (and, unless
/// `zero_ok`, more than zero).
pub(crate) fn check_wait(option: &str, value: Duration, zero_ok: bool) -> Result<(), Error> {
    let too_small = !zero_ok && value.is_zero();
    if too_small || value > MAX_WAIT {
        let lower = if zero_ok {
            "at least 0"
        } else {
            "greater than 0"
        };
        return Err(Error::config(format!(
            "{option} must be {lower} and at most {MAX_WAIT:?} (24 hours), not {value:?}"
        )));
    }
    Ok(())
}

/// How `#[writer(retry)]` backs off between attempts, and when it stops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetrySettings {
    pub(crate) max_retries: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    /// No retry starts later than this after the first attempt began.
    pub(crate) max_duration: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: 10,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(500),
            max_duration: Duration::from_secs(60),
        }
    }
}

/// Counters of what a facade has done since it was built, for metrics and
/// tests. See [`Facade::stats`].
///
/// ```
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
///     .writer(":memory:")
///     .build()?;
/// let mut ctx = db.context();
/// diesel_facade::read(&mut ctx, |_| Ok::<_, diesel_facade::Error>(()))?;
/// let stats = db.stats();
/// assert_eq!(stats.transactions, 1);
/// assert_eq!(stats.commits, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FacadeStats {
    /// Connections checked out of any pool.
    pub checkouts: u64,
    /// Outermost transactions begun (each retry attempt counts).
    pub transactions: u64,
    /// Outermost transactions committed.
    pub commits: u64,
    /// Outermost transactions rolled back.
    pub rollbacks: u64,
    /// Whole-transaction retries by `#[writer(retry)]`.
    pub retries: u64,
    /// Replica reads that fell back to the primary.
    pub replica_fallbacks: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) checkouts: AtomicU64,
    pub(crate) transactions: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) replica_fallbacks: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The instrumentation the facade installs on each connection: it remembers
/// the first retryable error a transaction hit (so that `retry` works for any
/// error type the body returns) and forwards every event to the
/// application's own instrumentation.
pub(crate) struct FacadeInstrumentation {
    user: Option<Box<dyn Instrumentation>>,
    /// The first retryable error of this transaction.
    pub(crate) doomed: Option<(ErrorKind, String)>,
    /// The first error of any kind of this transaction: on PostgreSQL it
    /// may have aborted the transaction even though the body handled it.
    first_error: Option<(ErrorKind, String)>,
    /// The backend's test for statements that commit implicitly, where it
    /// matters; see `SupportedConnection::implicit_commit_check`.
    implicit_check: Option<fn(&str, bool) -> bool>,
    /// How many such statements ran since the transaction began.
    implicit_commits: u32,
}

/// The beginning of a statement's text (a batch's, or a prepared
/// statement's SQL without its binds): enough to classify it, without
/// formatting all of a large statement.
struct StatementHead {
    buf: [u8; 512],
    len: usize,
    cut: bool,
}

impl fmt::Write for StatementHead {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.cut = true;
                return Err(fmt::Error); // stop formatting: we have enough
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl StatementHead {
    fn of(query: &dyn fmt::Display) -> Self {
        let mut head = StatementHead {
            buf: [0; 512],
            len: 0,
            cut: false,
        };
        let _ = fmt::write(&mut head, format_args!("{query}"));
        head
    }

    /// The SQL text, and whether it is all there.
    fn sql(&self) -> (&str, bool) {
        let bytes = &self.buf[..self.len];
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            // Cut inside a multibyte character: keep the valid prefix.
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        // diesel prints a prepared statement as `SQL -- binds: [..]`.
        match text.find(" -- binds: ") {
            Some(end) => (&text[..end], true),
            None => (text, !self.cut),
        }
    }
}

impl Instrumentation for FacadeInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let (Some(check), InstrumentationEvent::StartQuery { query, .. }) =
            (self.implicit_check, &event)
        {
            let head = StatementHead::of(query);
            let (sql, complete) = head.sql();
            if check(sql, complete) {
                self.implicit_commits += 1;
            }
        }
        if let InstrumentationEvent::FinishQuery {
            error: Some(err), ..
        } = &event
        {
            let kind = classify(err);
            if kind.is_retryable() && self.doomed.is_none() {
                self.doomed = Some((kind, err.to_string()));
            }
            if self.first_error.is_none() {
                self.first_error = Some((kind, err.to_string()));
            }
        }
        if let Some(user) = &mut self.user {
            user.on_connection_event(event);
        }
    }
}

/// A pooled connection with the facade's per-connection state.
pub(crate) struct Managed<C> {
    pub(crate) conn: C,
    pub(crate) session: SessionState,
    /// Set when the connection must not be reused (a failed rollback, a lost
    /// connection, a Galera node that is not ready).
    pub(crate) broken: bool,
    /// Reinstalls the facade's instrumentation if a body replaced it.
    factory: Option<InstrumentationFactory>,
    implicit_check: Option<fn(&str, bool) -> bool>,
}

impl<C: SupportedConnection> Managed<C> {
    fn instrumentation(&mut self) -> Option<&mut FacadeInstrumentation> {
        self.conn
            .instrumentation()
            .downcast_mut::<FacadeInstrumentation>()
    }

    fn install_instrumentation(&mut self) {
        self.conn.set_instrumentation(FacadeInstrumentation {
            user: self.factory.as_ref().map(|f| f()),
            doomed: None,
            first_error: None,
            implicit_check: self.implicit_check,
            implicit_commits: 0,
        });
    }

    /// Start watching a new transaction: forget the last one's errors and
    /// implicit commits, and put the facade's instrumentation back if an
    /// earlier body replaced it.
    pub(crate) fn begin_watching(&mut self) {
        match self.instrumentation() {
            Some(i) => {
                i.doomed = None;
                i.first_error = None;
                i.implicit_commits = 0;
            }
            None => self.install_instrumentation(),
        }
    }

    /// Whether the facade still watches this connection (a body may have
    /// replaced its instrumentation with `set_instrumentation`).
    pub(crate) fn watched(&mut self) -> bool {
        self.instrumentation().is_some()
    }

    /// The retryable error this transaction hit, if any.
    pub(crate) fn doomed(&mut self) -> Option<(ErrorKind, String)> {
        self.instrumentation().and_then(|i| i.doomed.clone())
    }

    pub(crate) fn set_doomed(&mut self, value: Option<(ErrorKind, String)>) {
        if let Some(i) = self.instrumentation() {
            i.doomed = value;
        }
    }

    /// The first error of any kind this transaction hit.
    pub(crate) fn first_error(&mut self) -> Option<(ErrorKind, String)> {
        self.instrumentation().and_then(|i| i.first_error.clone())
    }

    /// Start counting implicit commits afresh (after the facade's own BEGIN).
    pub(crate) fn forget_implicit_commits(&mut self) {
        if let Some(i) = self.instrumentation() {
            i.implicit_commits = 0;
        }
    }

    /// How many statements that commit implicitly ran in this transaction.
    pub(crate) fn implicit_commits(&mut self) -> u32 {
        self.instrumentation().map_or(0, |i| i.implicit_commits)
    }
}

/// The outcome of a pool's most recent connect attempt. r2d2 connects in
/// the background and only reports a failure when a checkout times out, so
/// the manager records it here for `checkout` to act on at once.
#[derive(Default)]
pub(crate) struct LastConnect {
    failure: Mutex<Option<(ErrorKind, String)>>,
}

impl LastConnect {
    fn record(&self, failure: Option<(ErrorKind, String)>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    /// The last connect attempt's failure, if it failed.
    fn failure(&self) -> Option<(ErrorKind, String)> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// One URL the manager may connect to.
pub(crate) struct Target {
    url: String,
    redacted: String,
    /// Scrubbed from every message derived from a driver error: libpq
    /// repeats parts of the URL (a badly percent-encoded password) in its own.
    secrets: Secrets,
    /// Where a failover list probes the server's port first, so that a node
    /// that does not answer (a powered-off host drops the SYN) is skipped
    /// within `probe_timeout` instead of the system's connect timeout.
    probe: Option<(String, u16)>,
}

impl Target {
    fn new(url: &str, default_port: u16) -> Self {
        let probe = url::Url::parse(url).ok().and_then(|u| {
            // A Unix socket (`?unix_socket=`) has no port to probe.
            let socket = u.query_pairs().any(|(k, _)| k == "unix_socket");
            let host = u.host_str()?.trim_matches(['[', ']']).to_owned();
            (!socket).then(|| (host, u.port().unwrap_or(default_port)))
        });
        Target {
            url: url.to_owned(),
            redacted: redact_url(url),
            secrets: Secrets::of(url),
            probe,
        }
    }

    /// Whether something accepts TCP connections at the target's port
    /// within `timeout` (true when there is nothing to probe).
    fn answers(&self, timeout: Duration) -> bool {
        use std::net::{TcpStream, ToSocketAddrs};
        let Some((host, port)) = &self.probe else {
            return true;
        };
        let Ok(addrs) = (host.as_str(), *port).to_socket_addrs() else {
            // Let the driver report the unresolvable name in its own words.
            return true;
        };
        addrs
            .into_iter()
            .any(|addr| TcpStream::connect_timeout(&addr, timeout).is_ok())
    }
}

/// The r2d2 manager: connects, applies session settings, checks health.
pub(crate) struct Manager<C> {
    /// One URL, or (a writer failover list) several in order of preference:
    /// every new connection goes to the first that accepts it.
    targets: Vec<Target>,
    /// How long a failover list waits for a node's port to answer.
    probe_timeout: Duration,
    options: Arc<BackendOptions>,
    instrumentation: Option<InstrumentationFactory>,
    last_connect: Arc<LastConnect>,
    _conn: PhantomData<fn() -> C>,
}

impl<C: SupportedConnection> Manager<C> {
    /// Connect to the first target that accepts; with several, an error
    /// names every target's failure, and is a `Config` error only when each
    /// of them refused.
    fn establish(&self) -> Result<Managed<C>, Error> {
        let several = self.targets.len() > 1;
        let mut failures = Vec::new();
        for target in &self.targets {
            if several && !target.answers(self.probe_timeout) {
                failures.push(Error::new(
                    ErrorKind::Disconnected,
                    format!(
                        "could not connect to {}: no answer on its port within {:?}",
                        target.redacted, self.probe_timeout
                    ),
                ));
                continue;
            }
            match self.establish_at(target) {
                Ok(conn) => {
                    if several && !failures.is_empty() {
                        tracing::warn!(
                            writer = %target.redacted,
                            skipped = failures.len(),
                            "writer failover: connected to a later node of the list"
                        );
                    }
                    return Ok(conn);
                }
                Err(e) if !several => return Err(e),
                Err(e) => failures.push(e),
            }
        }
        let kind = if failures.iter().all(|e| e.kind() == ErrorKind::Config) {
            ErrorKind::Config
        } else {
            ErrorKind::Disconnected
        };
        let each: Vec<&str> = failures.iter().map(Error::message).collect();
        Err(Error::new(
            kind,
            format!(
                "no node of the writer list accepted a connection: {}",
                each.join("; ")
            ),
        ))
    }

    fn establish_at(&self, target: &Target) -> Result<Managed<C>, Error> {
        let mut conn = C::establish(&target.url).map_err(|e| {
            // The driver's error is dropped, not kept as a source: only
            // its scrubbed text survives.
            if C::connect_refused(&e) {
                // The server answered and said no: retrying cannot help.
                let cause = Error::from(e);
                return Error::config(format!(
                    "{} refused the connection: {}",
                    target.redacted,
                    target.secrets.scrub(cause.message().trim_end())
                ));
            }
            let cause = Error::from(e);
            let message = format!(
                "could not connect to {}: {}",
                target.redacted,
                target.secrets.scrub(cause.message().trim_end())
            );
            Error::new(cause.kind(), message)
        })?;
        conn.set_instrumentation(FacadeInstrumentation {
            user: self.instrumentation.as_ref().map(|f| f()),
            doomed: None,
            first_error: None,
            implicit_check: None,
            implicit_commits: 0,
        });
        let session = C::after_connect(&mut conn, &self.options).map_err(|e| {
            let err = Error::from(e);
            let message = format!(
                "applying session settings on {} failed: {}",
                target.redacted,
                target.secrets.scrub(err.message())
            );
            Error::new(err.kind(), message)
        })?;
        let implicit_check = C::implicit_commit_check(&session);
        let mut managed = Managed {
            conn,
            session,
            broken: false,
            factory: self.instrumentation.clone(),
            implicit_check,
        };
        if let Some(i) = managed.instrumentation() {
            i.implicit_check = implicit_check;
        }
        Ok(managed)
    }
}

impl<C: SupportedConnection> ManageConnection for Manager<C> {
    type Connection = Managed<C>;
    type Error = Error;

    fn connect(&self) -> Result<Managed<C>, Error> {
        let result = self.establish();
        self.last_connect.record(
            result
                .as_ref()
                .err()
                .map(|e| (e.kind(), e.message().to_owned())),
        );
        result
    }

    fn is_valid(&self, conn: &mut Managed<C>) -> Result<(), Error> {
        conn.conn.ping().map_err(Error::from)
    }

    fn has_broken(&self, conn: &mut Managed<C>) -> bool {
        if conn.broken || std::thread::panicking() {
            return true;
        }
        // Never hand out a connection with a transaction still open.
        match C::TransactionManager::transaction_manager_status_mut(&mut conn.conn) {
            TransactionManagerStatus::Valid(status) => status.transaction_depth().is_some(),
            TransactionManagerStatus::InError => true,
        }
    }
}

pub(crate) type PooledConn<C> = PooledConnection<Manager<C>>;

struct PoolSet<C: SupportedConnection> {
    pool: Pool<Manager<C>>,
    redacted: String,
    last_connect: Arc<LastConnect>,
}

/// How often a checkout waiting for a new connection looks whether the
/// server refused it, so a refusal fails the checkout at once instead of
/// after `pool_timeout`.
const REFUSAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// A replica pool and when it may be tried again after failing.
struct Replica<C: SupportedConnection> {
    set: PoolSet<C>,
    down_until: Mutex<Option<Instant>>,
}

impl<C: SupportedConnection> Replica<C> {
    fn is_down(&self) -> bool {
        let guard = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        guard.is_some_and(|until| Instant::now() < until)
    }

    fn mark_down(&self, interval: Duration) {
        let mut guard = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        *guard = Some(Instant::now() + interval);
    }
}

/// How waiting for a context's position on a replica ended.
enum Waited {
    /// The replica has it: read there.
    Reached,
    /// Read from the primary (the replica is behind, or the position is
    /// unusable and was dropped).
    UsePrimary,
    /// The replica failed: mark it down and try the next one.
    ReplicaFailed,
}

/// Replica routing settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplicaSettings {
    pub(crate) checkout_timeout: Duration,
    pub(crate) retry_interval: Duration,
    pub(crate) wait_timeout: Duration,
    pub(crate) max_lag: Option<Duration>,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings {
            checkout_timeout: Duration::from_millis(250),
            retry_interval: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(1),
            max_lag: None,
        }
    }
}

pub(crate) struct Inner<C: SupportedConnection> {
    writer: PoolSet<C>,
    replicas: Vec<Replica<C>>,
    replica_settings: ReplicaSettings,
    next_replica: AtomicUsize,
    max_pool_size: u32,
    pool_timeout: Duration,
    pub(crate) retry: RetrySettings,
    pub(crate) counters: Counters,
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
    pub(crate) inner: Arc<Inner<C>>,
    /// The read-your-writes position of contexts that have no
    /// `#[read_position]` field of their own.
    position: ReadPosition,
}

impl<C: SupportedConnection> Clone for Facade<C> {
    /// Shares the pools; copies the read position into a fresh cell, so the
    /// clone's writes do not make the original wait, nor the other way round.
    fn clone(&self) -> Self {
        Facade {
            inner: Arc::clone(&self.inner),
            position: self.position.clone(),
        }
    }
}

impl<C: SupportedConnection> fmt::Debug for Facade<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Facade")
            .field("backend", &C::NAME)
            .field("writer", &self.inner.writer.redacted)
            .field(
                "replicas",
                &self
                    .inner
                    .replicas
                    .iter()
                    .map(|r| r.set.redacted.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("max_pool_size", &self.inner.max_pool_size)
            .field("pool_timeout", &self.inner.pool_timeout)
            .finish()
    }
}

impl<C: SupportedConnection> Facade<C> {
    /// Start configuring a facade.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> FacadeBuilder<C> {
        FacadeBuilder::default()
    }

    /// Build from `DATABASE_URL` and, if set, `DATABASE_REPLICA_URLS`
    /// (comma-separated), with default options.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// std::env::set_var("DATABASE_URL", ":memory:");
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::from_env()?;
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        let writer = std::env::var("DATABASE_URL").map_err(|_| {
            Error::config(
                "DATABASE_URL is not set (or not UTF-8): set it to the writer database's URL",
            )
        })?;
        let mut builder = Facade::builder().writer(writer);
        if let Ok(replicas) = std::env::var("DATABASE_REPLICA_URLS") {
            for url in split_url_list(&replicas) {
                builder = builder.replica(url);
            }
        }
        builder.build()
    }

    /// Build from a deserialized [`FacadeConfig`].
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let config = diesel_facade::FacadeConfig {
    ///     connection: ":memory:".into(),
    ///     ..Default::default()
    /// };
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::from_config(&config)?;
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &FacadeConfig) -> Result<Self, Error> {
        FacadeBuilder::from_config(config)?.build()
    }

    /// A ready-made request context holding a clone of this facade.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// let mut ctx = db.context();
    /// let one: i32 = diesel_facade::read(&mut ctx, |ctx| {
    ///     use diesel::RunQueryDsl;
    ///     diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
    ///         .get_result(ctx.conn())
    /// })?;
    /// assert_eq!(one, 1);
    /// # Ok(()) }
    /// ```
    pub fn context(&self) -> Context<C> {
        Context::new(self.clone())
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
        let mut conn = self.checkout_writer()?;
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
        let c = &self.inner.counters;
        FacadeStats {
            checkouts: c.checkouts.load(Ordering::Relaxed),
            transactions: c.transactions.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            rollbacks: c.rollbacks.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            replica_fallbacks: c.replica_fallbacks.load(Ordering::Relaxed),
        }
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

    pub(crate) fn checkout_writer(&self) -> Result<PooledConn<C>, Error> {
        self.checkout(&self.inner.writer, "writer")
    }

    /// A connection to the next healthy replica that has caught up with the
    /// context's `position` (when given), or `None` if there is no replica or
    /// none can serve the read (the caller falls back to the primary).
    pub(crate) fn checkout_replica(
        &self,
        position: Option<&ReadPosition>,
    ) -> Option<(usize, PooledConn<C>)> {
        let replicas = &self.inner.replicas;
        if replicas.is_empty() {
            return None;
        }
        let settings = self.inner.replica_settings;
        let recorded = position.and_then(|cell| cell.recorded().map(|r| (cell, r)));
        if recorded
            .as_ref()
            .is_some_and(|(_, r)| r.position == Position::Written)
        {
            Counters::bump(&self.inner.counters.replica_fallbacks);
            tracing::debug!(
                "this context wrote but its position is unknown; reading from the primary"
            );
            return None;
        }
        let start = self.inner.next_replica.fetch_add(1, Ordering::Relaxed);
        for offset in 0..replicas.len() {
            let index = (start + offset) % replicas.len();
            let replica = &replicas[index];
            if replica.is_down() {
                continue;
            }
            let mut conn = match replica.set.pool.get_timeout(settings.checkout_timeout) {
                Ok(conn) => {
                    Counters::bump(&self.inner.counters.checkouts);
                    conn
                }
                Err(err) => {
                    replica.mark_down(settings.retry_interval);
                    tracing::warn!(
                        replica = %replica.set.redacted,
                        error = %err,
                        retry_in = ?settings.retry_interval,
                        "replica unavailable; skipping it"
                    );
                    continue;
                }
            };
            if let Some(max_lag) = settings.max_lag {
                let managed = &mut *conn;
                match C::replica_lag(&mut managed.conn, &managed.session) {
                    Ok(Some(lag)) if lag <= max_lag => {}
                    Ok(lag) => {
                        tracing::warn!(
                            replica = %replica.set.redacted,
                            ?lag,
                            ?max_lag,
                            "replica lags too far behind; skipping it"
                        );
                        continue;
                    }
                    Err(err) => {
                        conn.broken = true;
                        replica.mark_down(settings.retry_interval);
                        tracing::warn!(replica = %replica.set.redacted, error = %err, "replica did not answer");
                        continue;
                    }
                }
            }
            if let Some((cell, recorded)) = &recorded {
                match self.wait_for_position(replica, &mut conn, cell, recorded) {
                    Waited::Reached => {}
                    Waited::UsePrimary => {
                        Counters::bump(&self.inner.counters.replica_fallbacks);
                        return None;
                    }
                    Waited::ReplicaFailed => {
                        conn.broken = true;
                        replica.mark_down(settings.retry_interval);
                        continue;
                    }
                }
            }
            return Some((index, conn));
        }
        Counters::bump(&self.inner.counters.replica_fallbacks);
        tracing::warn!("no replica could serve the read; using the primary");
        None
    }

    /// Wait, bounded, until the replica behind `conn` has applied the
    /// context's position. A position restored from a token is checked
    /// before any waiting: if the replica is behind it, the primary is asked
    /// whether it exists at all, and a position from the future is dropped
    /// rather than waited for. A replica that rejects such a position is not
    /// at fault: the position is dropped and the replica stays in use.
    fn wait_for_position(
        &self,
        replica: &Replica<C>,
        conn: &mut PooledConn<C>,
        cell: &ReadPosition,
        recorded: &Recorded,
    ) -> Waited {
        let settings = self.inner.replica_settings;
        let position = &recorded.position;
        let started = Instant::now();
        let managed = &mut **conn;
        if !recorded.verified {
            match C::wait_for_position(
                &mut managed.conn,
                &managed.session,
                position,
                Duration::ZERO,
            ) {
                Ok(Applied::Yes) => {
                    cell.mark_verified(position);
                    return Waited::Reached;
                }
                Ok(Applied::NotYet) => match self.position_is_ahead(position) {
                    Some(true) => {
                        cell.forget(position);
                        tracing::warn!(
                            "a restored read position is ahead of the primary (a token from \
                             the future); dropped it and reading from the primary"
                        );
                        return Waited::UsePrimary;
                    }
                    Some(false) => cell.mark_verified(position),
                    // The primary could not tell right now: wait as usual.
                    None => {}
                },
                Ok(Applied::Foreign) => return self.foreign(replica, cell, recorded),
                Err(err) => return self.rejected(replica, cell, recorded, &err),
            }
        }
        match C::wait_for_position(
            &mut managed.conn,
            &managed.session,
            position,
            settings.wait_timeout,
        ) {
            Ok(Applied::Yes) => {
                tracing::debug!(
                    waited_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                    "replica has this context's last write"
                );
                Waited::Reached
            }
            Ok(Applied::NotYet) => {
                tracing::warn!(
                    replica = %replica.set.redacted,
                    wait = ?settings.wait_timeout,
                    "replica has not applied this context's last write; reading from the primary"
                );
                Waited::UsePrimary
            }
            Ok(Applied::Foreign) => self.foreign(replica, cell, recorded),
            Err(err) => self.rejected(replica, cell, recorded, &err),
        }
    }

    /// The replica cannot check this kind of position. One from a token is
    /// invalid here and is dropped; one this process recorded (a Galera
    /// writer with a non-Galera replica, say) sends reads to the primary.
    fn foreign(&self, replica: &Replica<C>, cell: &ReadPosition, recorded: &Recorded) -> Waited {
        if !recorded.verified {
            cell.forget(&recorded.position);
        }
        tracing::warn!(
            replica = %replica.set.redacted,
            restored = !recorded.verified,
            "the replica cannot check this kind of read position; reading from the primary"
        );
        Waited::UsePrimary
    }

    /// The replica answered the wait with an error. A lost connection is the
    /// replica's fault, and so is any error about a position this process
    /// recorded itself; an error about a restored (token) position that the
    /// replica answered is the token's: drop it, keep the replica. The
    /// server's message can quote the token, so only its kind is logged.
    fn rejected(
        &self,
        replica: &Replica<C>,
        cell: &ReadPosition,
        recorded: &Recorded,
        err: &diesel::result::Error,
    ) -> Waited {
        let kind = classify(err);
        if recorded.verified || kind == ErrorKind::Disconnected || is_connection_lost(err) {
            tracing::warn!(replica = %replica.set.redacted, error = %err, "replica did not answer");
            return Waited::ReplicaFailed;
        }
        cell.forget(&recorded.position);
        tracing::warn!(
            replica = %replica.set.redacted,
            error_kind = ?kind,
            "the replica rejected a restored read position; dropped it and reading from the primary"
        );
        Waited::UsePrimary
    }

    /// Ask the primary whether `position` is ahead of everything it has
    /// committed. `None` if it cannot tell within the replica checkout
    /// timeout (then the caller just waits, bounded, as for any position).
    fn position_is_ahead(&self, position: &Position) -> Option<bool> {
        let settings = self.inner.replica_settings;
        let mut conn = self
            .inner
            .writer
            .pool
            .get_timeout(settings.checkout_timeout)
            .ok()?;
        Counters::bump(&self.inner.counters.checkouts);
        let managed = &mut *conn;
        match C::position_is_ahead(&mut managed.conn, &managed.session, position) {
            Ok(ahead) => Some(ahead),
            Err(err) => {
                if is_connection_lost(&err) {
                    conn.broken = true;
                }
                tracing::debug!(error_kind = ?classify(&err), "could not compare a read position with the primary");
                None
            }
        }
    }

    fn checkout(&self, set: &PoolSet<C>, role: &str) -> Result<PooledConn<C>, Error> {
        let timeout = self.inner.pool_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(REFUSAL_CHECK_INTERVAL);
            let err = match set.pool.get_timeout(wait) {
                Ok(conn) => {
                    Counters::bump(&self.inner.counters.checkouts);
                    return Ok(conn);
                }
                Err(err) => err,
            };
            let last_connect = set.last_connect.failure();
            // The server refused the pool's last attempt (wrong password,
            // dropped database) and the pool holds no connection that could
            // come back: waiting cannot fix that. (With connections out,
            // one may come back in time, as after a password rotation.)
            // The pool keeps trying in the background and recovers by itself.
            let nothing_to_wait_for = set.pool.state().connections == 0;
            if let (Some((ErrorKind::Config, message)), true) = (&last_connect, nothing_to_wait_for)
            {
                return Err(Error::config(format!(
                    "no connection to the {role} database: {message}"
                )));
            }
            if Instant::now() < deadline {
                continue;
            }
            let text = err.to_string();
            let plain = "timed out waiting for connection";
            let cause = match last_connect {
                Some((_, message)) => Some(message),
                None if text != plain => Some(
                    text.strip_prefix(plain)
                        .unwrap_or(&text)
                        .trim_start_matches(':')
                        .trim()
                        .to_owned(),
                ),
                None => None,
            };
            return Err(match cause {
                None => {
                    let state = set.pool.state();
                    Error::new(
                        ErrorKind::PoolTimeout,
                        format!(
                            "no connection to the {role} database {} became free within {timeout:?}: \
                             all {} are checked out (max_pool_size = {}). Raise max_pool_size or \
                             pool_timeout; note that #[writer(independent)] inside a transaction \
                             needs a second connection",
                            set.redacted,
                            state.connections - state.idle_connections,
                            self.inner.max_pool_size,
                        ),
                    )
                }
                Some(cause) => Error::new(
                    ErrorKind::Disconnected,
                    format!(
                        "no connection to the {role} database {} within {timeout:?}: {cause}",
                        set.redacted
                    ),
                ),
            });
        }
    }
}

/// Builder for [`Facade`]; see [`Facade::builder`].
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
pub struct FacadeBuilder<C> {
    writer: Option<String>,
    replicas: Vec<String>,
    max_pool_size: u32,
    pool_timeout: Duration,
    connection_recycle_time: Option<Duration>,
    options: BackendOptions,
    retry: RetrySettings,
    replica_settings: ReplicaSettings,
    instrumentation: Option<InstrumentationFactory>,
    _conn: PhantomData<fn() -> C>,
}

impl<C> Default for FacadeBuilder<C> {
    fn default() -> Self {
        FacadeBuilder {
            writer: None,
            replicas: Vec::new(),
            max_pool_size: 10,
            pool_timeout: Duration::from_secs(30),
            connection_recycle_time: Some(Duration::from_secs(3600)),
            options: BackendOptions::default(),
            retry: RetrySettings::default(),
            replica_settings: ReplicaSettings::default(),
            instrumentation: None,
            _conn: PhantomData,
        }
    }
}

impl<C> fmt::Debug for FacadeBuilder<C> {
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
            .field("max_pool_size", &self.max_pool_size)
            .field("pool_timeout", &self.pool_timeout)
            .finish_non_exhaustive()
    }
}

impl<C> FacadeBuilder<C> {
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
    /// node is lost, its pooled connections fail their check-out ping and
    /// new transactions move to the next live node; the transactions that
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
        self.max_pool_size = size;
        self
    }

    /// How long a checkout waits for a free connection before
    /// [`ErrorKind::PoolTimeout`] (default 30 s). `build` rejects zero and
    /// anything above 24 hours with [`ErrorKind::Config`].
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
        self.pool_timeout = timeout;
        self
    }

    /// Close connections older than this when they return to the pool
    /// (oslo.db's `connection_recycle_time`, default 1 hour). `None` keeps
    /// them forever; `Duration::ZERO` is a [`ErrorKind::Config`] error at
    /// `build`.
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
        self.connection_recycle_time = age.into();
        self
    }

    /// SQLite: enforce foreign keys (`PRAGMA foreign_keys`, default on).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .sqlite_foreign_keys(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn sqlite_foreign_keys(mut self, on: bool) -> Self {
        self.options.sqlite_foreign_keys = on;
        self
    }

    /// SQLite: use write-ahead logging with `synchronous = NORMAL` (default
    /// on), so readers never block the writer.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .sqlite_wal(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn sqlite_wal(mut self, on: bool) -> Self {
        self.options.sqlite_wal = on;
        self
    }

    /// SQLite: how long a statement waits for another connection's write
    /// lock (`PRAGMA busy_timeout`, default 5 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .sqlite_busy_timeout(Duration::from_millis(500))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn sqlite_busy_timeout(mut self, timeout: Duration) -> Self {
        self.options.sqlite_busy_timeout = timeout;
        self
    }

    /// MySQL/MariaDB: the session `sql_mode` (default `TRADITIONAL`, which
    /// makes the server reject rather than truncate bad data). `None` keeps
    /// the server's.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "mysql")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::MysqlConnection>::builder()
    ///     .writer("mysql://app:secret@db/app")
    ///     .mysql_sql_mode(Some("TRADITIONAL,NO_ENGINE_SUBSTITUTION"))
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "mysql"))]
    /// # fn main() {}
    /// ```
    pub fn mysql_sql_mode(mut self, mode: Option<&str>) -> Self {
        self.options.mysql_sql_mode = mode.map(str::to_owned);
        self
    }

    /// MariaDB Galera: the session `wsrep_sync_wait` (e.g. `1` for causal
    /// reads on any node). Unset by default.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "mysql")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::MysqlConnection>::builder()
    ///     .writer("mysql://app:secret@galera-1/app")
    ///     .wsrep_sync_wait(1)
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "mysql"))]
    /// # fn main() {}
    /// ```
    pub fn wsrep_sync_wait(mut self, level: u8) -> Self {
        self.options.wsrep_sync_wait = Some(level);
        self
    }

    /// MySQL/MariaDB: the session `wait_timeout`, after which the server
    /// closes a connection it is waiting on; `None` keeps the server's own
    /// (8 hours by default).
    ///
    /// Default: on a Galera node (detected at connect time),
    /// [`GALERA_DEFAULT_WAIT_TIMEOUT`] (10 s); elsewhere the server's.
    /// MariaDB 10.11 was seen here to leave a brute-force-aborted connection
    /// waiting for the client while the client waited for its reply
    /// (MDEV-20172's symptom), forever; with the bound the server closes it,
    /// the client gets `Disconnected`, and `retry` re-runs the transaction
    /// on a fresh connection. The price: a Galera transaction that stays idle
    /// between two statements for longer is disconnected too, and idle
    /// pooled connections closed by the server are replaced at checkout.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "mysql")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::MysqlConnection>::builder()
    ///     .writer("mysql://app:secret@galera-1/app")
    ///     .mysql_wait_timeout(Duration::from_secs(10))
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "mysql"))]
    /// # fn main() {}
    /// ```
    pub fn mysql_wait_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.options.mysql_wait_timeout = Some(timeout.into());
        self
    }

    /// PostgreSQL: the `application_name` shown in `pg_stat_activity`.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # #[cfg(feature = "postgres")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::PgConnection>::builder()
    ///     .writer("postgres://app:secret@db/app")
    ///     .application_name("billing-api")
    ///     .build()?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "postgres"))]
    /// # fn main() {}
    /// ```
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.options.application_name = Some(name.into());
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
        self.instrumentation = Some(Arc::new(factory));
        self
    }

    fn from_config(config: &FacadeConfig) -> Result<Self, Error> {
        let mut builder = FacadeBuilder::default().writer(config.connection.clone());
        for replica in &config.replica_connections {
            builder = builder.replica(replica.clone());
        }
        if let Some(size) = config.max_pool_size {
            builder = builder.max_pool_size(size);
        }
        if let Some(secs) = config.pool_timeout {
            // Negative, NaN and out-of-range numbers do not convert; zero
            // and values above the maximum are rejected by `build`.
            builder.pool_timeout = Duration::try_from_secs_f64(secs).map_err(|_| {
                Error::config(format!(
                    "pool_timeout must be a number of seconds greater than 0 and at most {}, \
                     not {secs}",
                    MAX_WAIT.as_secs()
                ))
            })?;
        }
        if let Some(secs) = config.connection_recycle_time {
            builder.connection_recycle_time = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(on) = config.sqlite_foreign_keys {
            builder.options.sqlite_foreign_keys = on;
        }
        if let Some(on) = config.sqlite_wal {
            builder.options.sqlite_wal = on;
        }
        if let Some(ms) = config.sqlite_busy_timeout_ms {
            builder.options.sqlite_busy_timeout = Duration::from_millis(ms);
        }
        if let Some(mode) = &config.mysql_sql_mode {
            builder.options.mysql_sql_mode = (!mode.is_empty()).then(|| mode.clone());
        }
        builder.options.wsrep_sync_wait = config.wsrep_sync_wait;
        builder.options.mysql_wait_timeout = config
            .mysql_wait_timeout
            .map(|secs| Some(Duration::from_secs(secs)));
        if let Some(name) = &config.application_name {
            builder.options.application_name = Some(name.clone());
        }
        if let Some(n) = config.max_retries {
            builder.retry.max_retries = n;
        }
        if let Some(secs) = config.max_retry_duration {
            builder.retry.max_duration = Duration::try_from_secs_f64(secs).map_err(|_| {
                Error::config(format!(
                    "max_retry_duration must be a number of seconds from 0 to {}, not {secs}",
                    MAX_WAIT.as_secs()
                ))
            })?;
        }
        Ok(builder)
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
    pub fn build(self) -> Result<Facade<C>, Error> {
        let writer = self.writer.clone().ok_or_else(|| {
            Error::config("no writer database: call .writer(url) or set DATABASE_URL")
        })?;
        self.validate()?;
        let options = Arc::new(self.options.clone());
        let writer_set = self.pool_set(&writer, &options, true)?;
        let replicas = self
            .replicas
            .iter()
            .map(|url| {
                Ok(Replica {
                    set: self.pool_set(url, &options, false)?,
                    down_until: Mutex::new(None),
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Facade {
            inner: Arc::new(Inner {
                writer: writer_set,
                replicas,
                replica_settings: self.replica_settings,
                next_replica: AtomicUsize::new(0),
                max_pool_size: self.max_pool_size,
                pool_timeout: self.pool_timeout,
                retry: self.retry,
                counters: Counters::default(),
            }),
            position: ReadPosition::new(),
        })
    }

    /// Every option that could make a later call panic, wait without bound
    /// or send an invalid value to the server is rejected here, naming the
    /// option and the range it accepts.
    fn validate(&self) -> Result<(), Error> {
        if self.max_pool_size == 0 || self.max_pool_size > MAX_POOL_SIZE {
            return Err(Error::config(format!(
                "max_pool_size must be between 1 and {MAX_POOL_SIZE}, not {}",
                self.max_pool_size
            )));
        }
        check_wait("pool_timeout", self.pool_timeout, false)?;
        if self.connection_recycle_time == Some(Duration::ZERO) {
            return Err(Error::config(
                "connection_recycle_time must be greater than 0, or None to keep connections",
            ));
        }
        check_wait(
            "sqlite_busy_timeout",
            self.options.sqlite_busy_timeout,
            true,
        )?;
        check_wait("retry_backoff initial", self.retry.initial_backoff, true)?;
        check_wait("retry_backoff max", self.retry.max_backoff, true)?;
        check_wait("max_retry_duration", self.retry.max_duration, true)?;
        let replica = &self.replica_settings;
        check_wait("replica_wait_timeout", replica.wait_timeout, true)?;
        check_wait("replica_timeouts checkout", replica.checkout_timeout, false)?;
        check_wait(
            "replica_timeouts retry_interval",
            replica.retry_interval,
            true,
        )?;
        if let Some(mode) = &self.options.mysql_sql_mode {
            if !mode
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ',')
            {
                return Err(Error::config(format!(
                    "mysql_sql_mode `{mode}` may only contain letters, digits, '_' and ','"
                )));
            }
        }
        if let Some(Some(timeout)) = self.options.mysql_wait_timeout {
            // The server's own range for the session `wait_timeout`.
            if !(1..=MYSQL_MAX_WAIT_TIMEOUT_SECS).contains(&timeout.as_secs()) {
                return Err(Error::config(format!(
                    "mysql_wait_timeout must be between 1 second and \
                     {MYSQL_MAX_WAIT_TIMEOUT_SECS} seconds (365 days), not {timeout:?}"
                )));
            }
        }
        if let Some(level) = self.options.wsrep_sync_wait {
            if level > 15 {
                return Err(Error::config(format!(
                    "wsrep_sync_wait must be between 0 and 15, not {level}"
                )));
            }
        }
        Ok(())
    }

    fn pool_set(
        &self,
        url: &str,
        options: &Arc<BackendOptions>,
        connect_now: bool,
    ) -> Result<PoolSet<C>, Error> {
        let urls = if connect_now {
            C::writer_candidates(url)
        } else {
            vec![url.to_owned()]
        };
        if urls.is_empty() {
            return Err(Error::config(
                "the writer URL list is empty: give at least one URL",
            ));
        }
        for one in &urls {
            C::check_url(one).map_err(|message| Error::config(Secrets::of(one).scrub(&message)))?;
        }
        let targets: Vec<Target> = urls
            .iter()
            .map(|u| Target::new(u, C::DEFAULT_PORT))
            .collect();
        let redacted = targets
            .iter()
            .map(|t| t.redacted.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let last_connect = Arc::new(LastConnect::default());
        let manager = Manager::<C> {
            targets,
            probe_timeout: self.pool_timeout.min(FAILOVER_PROBE_TIMEOUT),
            options: Arc::clone(options),
            instrumentation: self.instrumentation.clone(),
            last_connect: Arc::clone(&last_connect),
            _conn: PhantomData,
        };
        let limit = C::pool_size_limit(url);
        let max_size = limit.map_or(self.max_pool_size, |limit| self.max_pool_size.min(limit));
        // A URL that limits the pool names a database that lives in its
        // connection: recycling that connection would empty the database.
        let max_lifetime = if limit.is_some() {
            None
        } else {
            self.connection_recycle_time
        };
        if connect_now {
            // A server that does not answer may just be starting
            // (`Disconnected`); anything else at start-up (a refusal, a
            // session setting the server rejects) is the configuration's.
            let probe = manager.establish().map_err(|e| match e.kind() {
                ErrorKind::Disconnected | ErrorKind::Config => e,
                _ => Error::config(e.message().to_owned()),
            })?;
            drop(probe);
        }
        let pool = Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .idle_timeout(None)
            .max_lifetime(max_lifetime)
            .connection_timeout(self.pool_timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(TracingErrorHandler))
            .build_unchecked(manager);
        Ok(PoolSet {
            pool,
            redacted,
            last_connect,
        })
    }
}

#[derive(Debug)]
struct TracingErrorHandler;

impl r2d2::HandleError<Error> for TracingErrorHandler {
    fn handle_error(&self, error: Error) {
        // The error's message carries the redacted URL, never the password.
        tracing::warn!(error = %error, "connection pool error");
    }
}

/// Deserializable configuration, named after oslo.db's `[database]` options.
/// Every field but `connection` is optional; unknown fields are rejected, so
/// a misspelt option is an error rather than silently ignored.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config: diesel_facade::FacadeConfig = serde_json::from_str(r#"{
///     "connection": ":memory:",
///     "max_pool_size": 2,
///     "pool_timeout": 2.5,
///     "sqlite_busy_timeout_ms": 1000
/// }"#)?;
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::from_config(&config)?;
/// assert!(serde_json::from_str::<diesel_facade::FacadeConfig>(r#"{"conection": "x"}"#).is_err());
/// # let _ = db;
/// # Ok(()) }
/// ```
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FacadeConfig {
    /// The writer database URL (oslo.db `connection`).
    pub connection: String,
    /// Replica URLs (oslo.db `slave_connection`, here a list).
    pub replica_connections: Vec<String>,
    /// Connections per pool (oslo.db `max_pool_size`).
    pub max_pool_size: Option<u32>,
    /// Seconds to wait for a pooled connection (oslo.db `pool_timeout`).
    pub pool_timeout: Option<f64>,
    /// Seconds after which a connection is replaced; 0 disables
    /// (oslo.db `connection_recycle_time`).
    pub connection_recycle_time: Option<u64>,
    /// SQLite `PRAGMA foreign_keys` (oslo.db `sqlite_fk`).
    pub sqlite_foreign_keys: Option<bool>,
    /// SQLite write-ahead logging.
    pub sqlite_wal: Option<bool>,
    /// SQLite `busy_timeout` in milliseconds.
    pub sqlite_busy_timeout_ms: Option<u64>,
    /// MySQL `sql_mode` (oslo.db `mysql_sql_mode`); empty keeps the server's.
    pub mysql_sql_mode: Option<String>,
    /// MariaDB Galera `wsrep_sync_wait` (oslo.db `mysql_wsrep_sync_wait`).
    pub wsrep_sync_wait: Option<u8>,
    /// MySQL/MariaDB session `wait_timeout` in seconds.
    pub mysql_wait_timeout: Option<u64>,
    /// PostgreSQL `application_name`.
    pub application_name: Option<String>,
    /// Default retries for `#[writer(retry)]` (oslo.db `db_max_retries`).
    pub max_retries: Option<u32>,
    /// Seconds after the first attempt of `#[writer(retry)]` past which no
    /// retry starts (see [`FacadeBuilder::max_retry_duration`]).
    pub max_retry_duration: Option<f64>,
}

impl fmt::Debug for FacadeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacadeConfig")
            .field("connection", &redact_url(&self.connection))
            .field(
                "replica_connections",
                &self
                    .replica_connections
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("max_pool_size", &self.max_pool_size)
            .field("pool_timeout", &self.pool_timeout)
            .field("connection_recycle_time", &self.connection_recycle_time)
            .field("sqlite_foreign_keys", &self.sqlite_foreign_keys)
            .field("sqlite_wal", &self.sqlite_wal)
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .field("mysql_sql_mode", &self.mysql_sql_mode)
            .field("wsrep_sync_wait", &self.wsrep_sync_wait)
            .field("mysql_wait_timeout", &self.mysql_wait_timeout)
            .field("application_name", &self.application_name)
            .field("max_retries", &self.max_retries)
            .field("max_retry_duration", &self.max_retry_duration)
            .finish()
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
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

    #[test]
    fn replica_lists_split_only_before_a_scheme() {
        assert_eq!(
            split_url_list("postgres://u:Pa55,word9@h/db, postgres://u:pw@h2,h3/db ,"),
            ["postgres://u:Pa55,word9@h/db", "postgres://u:pw@h2,h3/db"]
        );
        assert_eq!(split_url_list(""), Vec::<&str>::new());
        assert_eq!(split_url_list("a.db"), ["a.db"]);
        assert_eq!(
            split_url_list(":memory:, :memory:"),
            [":memory:", ":memory:"]
        );
        assert_eq!(
            split_url_list("mysql://u:p@h1/db,mysql://u:p@h2/db"),
            ["mysql://u:p@h1/db", "mysql://u:p@h2/db"]
        );
    }

    #[test]
    fn max_retry_duration_comes_from_the_config() {
        let config = FacadeConfig {
            connection: ":memory:".into(),
            max_retry_duration: Some(0.5),
            ..FacadeConfig::default()
        };
        let builder = FacadeBuilder::<diesel::SqliteConnection>::from_config(&config)
            .expect("a valid config");
        assert_eq!(builder.retry.max_duration, Duration::from_millis(500));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            let config = FacadeConfig {
                connection: ":memory:".into(),
                max_retry_duration: Some(bad),
                ..FacadeConfig::default()
            };
            let err = match FacadeBuilder::<diesel::SqliteConnection>::from_config(&config) {
                Ok(builder) => builder.build().map(drop).expect_err("out of range"),
                Err(err) => err,
            };
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
        }
        assert_eq!(
            RetrySettings::default().max_duration,
            Duration::from_secs(60)
        );
    }
}
