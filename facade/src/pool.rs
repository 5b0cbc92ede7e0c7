//! The connection pools: an r2d2 `Manager` per pool that connects (trying
//! a writer failover list in order), applies the backend's session
//! settings and hands out `Managed` connections (`connection.rs`) watched
//! by the facade's instrumentation; and checkout.
//!
//! Invariants: a connection that comes back with a transaction open, after
//! a failed rollback or a lost connection (`Managed::broken`), or while its
//! thread panics is discarded, never handed out again; and a checkout that
//! the server refused fails at once with `Config` instead of waiting out
//! `pool_timeout`. URLs appear only redacted in errors and logs.
//!
//! A transactional test pool (`TestDatabase::transactional_facade`, feature
//! `testing`) holds one connection, opened inside a test transaction that
//! is never committed: "no transaction open" means "only the test
//! transaction open" there, a panic alone does not discard the connection
//! (the rollback guard already rolled its work back), and the pool never
//! makes a second connection, which would silently start over without the
//! test's earlier writes (see [`TestTransaction`]).

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use diesel::connection::{TransactionManager, TransactionManagerStatus};
use r2d2::{ManageConnection, Pool, PooledConnection};

use crate::backend::SupportedConnection;
use crate::config::check_wait;
use crate::connection::{FacadeInstrumentation, InstrumentationFactory, Managed};
use crate::error::{Error, ErrorKind};
use crate::redact::{redact_url, Secrets};
use crate::stats::Counters;

/// The largest pool: r2d2 reserves room for every connection up front, and
/// no server accepts more connections than this from one client anyway.
const MAX_POOL_SIZE: u32 = 10_000;

/// The pool settings a builder collects, the same for every pool of a
/// facade.
pub(crate) struct PoolSettings {
    pub(crate) max_pool_size: u32,
    pub(crate) pool_timeout: Duration,
    pub(crate) connection_recycle_time: Option<Duration>,
    pub(crate) instrumentation: Option<InstrumentationFactory>,
    /// A transactional test pool (see the module docs).
    pub(crate) test_transaction: bool,
}

impl PoolSettings {
    /// A `Config` error for a size r2d2 cannot allocate or a timeout that
    /// would panic or never end.
    pub(crate) fn validate(&self) -> Result<(), Error> {
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
        Ok(())
    }
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_pool_size: 10,
            pool_timeout: Duration::from_secs(30),
            connection_recycle_time: Some(Duration::from_secs(3600)),
            instrumentation: None,
            test_transaction: false,
        }
    }
}

/// The state of a transactional test pool's one connection.
#[derive(Debug, Default)]
pub(crate) struct TestTransaction {
    /// Whether the pool has made its connection. A second one would hold a
    /// fresh test transaction without what the test wrote before, so it is
    /// refused instead.
    connected: AtomicBool,
    /// The thread that has the connection checked out: a second checkout on
    /// that thread (a `#[writer(independent)]`, or another context's
    /// transaction, inside a transaction) could only wait for itself.
    holder: Mutex<Option<ThreadId>>,
}

impl TestTransaction {
    fn holder(&self) -> std::sync::MutexGuard<'_, Option<ThreadId>> {
        self.holder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lost() -> Error {
        Error::config(
            "the connection of this transactional test facade was discarded (a failed \
             rollback, a lost connection, a server that rolled the test transaction back, or \
             DDL that committed it), and with it the test transaction and everything the test \
             wrote in it: this facade cannot go on. Build a new one with \
             `TestDatabase::transactional_facade`",
        )
    }
}

/// How long a writer failover list waits for a node's port to answer
/// before it tries the next node (at most `pool_timeout`).
const FAILOVER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of a pool's most recent connect attempt. r2d2 connects in
/// the background and only reports a failure when a checkout times out, so
/// the manager records it here for `checkout` to act on at once.
#[derive(Default)]
struct LastConnect {
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
#[derive(Clone)]
struct Target {
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
pub(crate) struct Manager<C: SupportedConnection> {
    /// One URL, or (a writer failover list) several in order of preference:
    /// every new connection goes to the first that accepts it.
    targets: Vec<Target>,
    /// How long a failover list waits for a node's port to answer.
    probe_timeout: Duration,
    options: Arc<C::Options>,
    instrumentation: Option<InstrumentationFactory>,
    last_connect: Arc<LastConnect>,
    /// Set for a transactional test pool.
    test: Option<Arc<TestTransaction>>,
    _conn: PhantomData<fn() -> C>,
}

impl<C: SupportedConnection> Clone for Manager<C> {
    fn clone(&self) -> Self {
        Manager {
            targets: self.targets.clone(),
            probe_timeout: self.probe_timeout,
            options: Arc::clone(&self.options),
            instrumentation: self.instrumentation.clone(),
            last_connect: Arc::clone(&self.last_connect),
            test: self.test.clone(),
            _conn: PhantomData,
        }
    }
}

impl<C: SupportedConnection> Manager<C> {
    /// Whether any target's port accepts a TCP connection within `timeout`.
    fn answers(&self, timeout: Duration) -> bool {
        self.targets.iter().any(|t| t.answers(timeout))
    }

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
        conn.set_instrumentation(FacadeInstrumentation::new(
            self.instrumentation.as_ref(),
            None,
        ));
        let session = C::after_connect(&mut conn, &self.options).map_err(|e| {
            let err = Error::from(e);
            let message = format!(
                "applying session settings on {} failed: {}",
                target.redacted,
                target.secrets.scrub(err.message())
            );
            Error::new(err.kind(), message)
        })?;
        let mut managed = Managed::new(conn, session, self.instrumentation.clone());
        if self.test.is_some() {
            // diesel's own test transaction: its depth 1 is this
            // connection's "no transaction open" from now on.
            managed.conn.begin_test_transaction().map_err(|e| {
                let err = Error::from(e);
                Error::new(
                    err.kind(),
                    format!(
                        "beginning the test transaction on {} failed: {}",
                        target.redacted,
                        target.secrets.scrub(err.message())
                    ),
                )
            })?;
            managed.base_depth = 1;
        }
        Ok(managed)
    }
}

impl<C: SupportedConnection> ManageConnection for Manager<C> {
    type Connection = Managed<C>;
    type Error = Error;

    fn connect(&self) -> Result<Managed<C>, Error> {
        if self
            .test
            .as_ref()
            .is_some_and(|t| t.connected.load(Ordering::SeqCst))
        {
            let err = TestTransaction::lost();
            self.last_connect
                .record(Some((err.kind(), err.message().to_owned())));
            return Err(err);
        }
        let result = self.establish();
        if let (Some(test), Ok(_)) = (&self.test, &result) {
            test.connected.store(true, Ordering::SeqCst);
        }
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
        // r2d2 asks this as each connection comes back.
        if let Some(test) = &self.test {
            *test.holder() = None;
        }
        // A test pool's connection survives a panic its rollback guard
        // handled: discarding it would lose the test transaction.
        if conn.broken || (conn.base_depth == 0 && std::thread::panicking()) {
            return true;
        }
        // Never hand out a connection with a transaction still open (beyond
        // a test pool's test transaction, which must still be usable).
        match C::TransactionManager::transaction_manager_status_mut(&mut conn.conn) {
            TransactionManagerStatus::Valid(status) => {
                let depth = status.transaction_depth().map_or(0, |d| d.get());
                let doomed = status
                    .in_transaction
                    .as_ref()
                    .is_some_and(|s| s.requires_rollback_maybe_up_to_top_level);
                depth != conn.base_depth || doomed
            }
            TransactionManagerStatus::InError => true,
        }
    }
}

pub(crate) type PooledConn<C> = PooledConnection<Manager<C>>;

/// One pool (the writer's, or one replica's) and what its checkouts report.
pub(crate) struct PoolSet<C: SupportedConnection> {
    pub(crate) pool: Pool<Manager<C>>,
    /// Its URL (or failover list) with passwords replaced by `***`.
    pub(crate) redacted: String,
    last_connect: Arc<LastConnect>,
    /// A manager like the pool's, for the one connect attempt a checkout
    /// makes itself before it gives up on a server that stopped answering.
    side: Manager<C>,
    /// The configured `pool_timeout` and `max_pool_size`, for checkout and
    /// its error messages.
    pub(crate) pool_timeout: Duration,
    pub(crate) max_pool_size: u32,
}

/// How often a checkout waiting for a new connection looks whether the
/// server refused it, so a refusal fails the checkout at once instead of
/// after `pool_timeout`.
const REFUSAL_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// How long a checkout waits, at most, while the pool holds no connection
/// and its connect attempts find no server (nothing listens, or a Galera
/// node is not ready): a lost server fails its callers within seconds,
/// not after `pool_timeout`. A server that is only restarting is usually
/// back within this; the pool keeps trying in the background either way.
pub(crate) const UNREACHABLE_GRACE: Duration = Duration::from_secs(3);

impl<C: SupportedConnection> PoolSet<C> {
    /// A pool on `url`. The writer's (`connect_now`) may be a failover
    /// list and connects once now, so that a wrong URL, host or password
    /// fails `build`; a replica's connects lazily.
    pub(crate) fn new(
        url: &str,
        settings: &PoolSettings,
        options: &Arc<C::Options>,
        connect_now: bool,
    ) -> Result<Self, Error> {
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
            probe_timeout: settings.pool_timeout.min(FAILOVER_PROBE_TIMEOUT),
            options: Arc::clone(options),
            instrumentation: settings.instrumentation.clone(),
            last_connect: Arc::clone(&last_connect),
            test: settings
                .test_transaction
                .then(|| Arc::new(TestTransaction::default())),
            _conn: PhantomData,
        };
        let limit = C::pool_size_limit(url);
        let max_size = limit.map_or(settings.max_pool_size, |limit| {
            settings.max_pool_size.min(limit)
        });
        let max_size = if settings.test_transaction {
            1
        } else {
            max_size
        };
        // A URL that limits the pool names a database that lives in its
        // connection, and a test pool's connection holds the test
        // transaction: recycling either would empty it.
        let max_lifetime = if limit.is_some() || settings.test_transaction {
            None
        } else {
            settings.connection_recycle_time
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
            .connection_timeout(settings.pool_timeout)
            .test_on_check_out(true)
            .error_handler(Box::new(TracingErrorHandler))
            .build_unchecked(manager.clone());
        let side = manager;
        Ok(PoolSet {
            pool,
            side,
            redacted,
            last_connect,
            pool_timeout: settings.pool_timeout,
            max_pool_size: settings.max_pool_size,
        })
    }

    /// A connection within `pool_timeout`, failing at once when the server
    /// refused the pool's last connect and no connection could come back.
    /// `role` names the pool in errors.
    pub(crate) fn checkout(&self, role: &str, counters: &Counters) -> Result<PooledConn<C>, Error> {
        let timeout = self.pool_timeout;
        let started = Instant::now();
        let deadline = started + timeout;
        let grace = timeout.min(UNREACHABLE_GRACE);
        let mut tried_myself = false;
        let me = std::thread::current().id();
        if let Some(test) = &self.side.test {
            if *test.holder() == Some(me) {
                return Err(Error::config(
                    "this transactional test facade has one connection, and this thread's open \
                     transaction holds it: a `#[writer(independent)]` (or a transaction of \
                     another context) inside it would need a second connection, and would \
                     wait for itself. Test such code with `TestDatabase::facade`",
                ));
            }
        }
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(REFUSAL_CHECK_INTERVAL);
            let err = match self.pool.get_timeout(wait) {
                Ok(conn) => {
                    if let Some(test) = &self.side.test {
                        *test.holder() = Some(me);
                    }
                    Counters::bump(&counters.checkouts);
                    return Ok(conn);
                }
                Err(err) => err,
            };
            let last_connect = self.last_connect.failure();
            // The server refused the pool's last attempt (wrong password,
            // dropped database) and the pool holds no connection that could
            // come back: waiting cannot fix that. (With connections out,
            // one may come back in time, as after a password rotation.)
            // The pool keeps trying in the background and recovers by itself.
            let nothing_to_wait_for = self.pool.state().connections == 0;
            if let (Some((ErrorKind::Config, message)), true) = (&last_connect, nothing_to_wait_for)
            {
                return Err(Error::config(format!(
                    "no connection to the {role} database: {message}"
                )));
            }
            if let (Some((ErrorKind::Disconnected, _)), true) = (&last_connect, nothing_to_wait_for)
            {
                // r2d2 retries a failed connect with a growing delay (up to
                // half of pool_timeout): before giving up, try once here,
                // so that a server back from a restart is waited for.
                if started.elapsed() >= grace && !tried_myself {
                    tried_myself = true;
                    // The port first, within a bound: a host that drops
                    // packets would keep a driver's connect for minutes.
                    let attempt = if self.side.answers(self.side.probe_timeout) {
                        self.side.connect().map(drop)
                    } else {
                        Err(Error::new(
                            ErrorKind::Disconnected,
                            format!("no answer on its port within {:?}", self.side.probe_timeout),
                        ))
                    };
                    if let Err(err) = attempt {
                        return Err(Error::new(
                            ErrorKind::Disconnected,
                            format!(
                                "no connection to the {role} database {} within {grace:?}: \
                                 the pool holds none and the server does not answer: {}",
                                self.redacted,
                                err.message()
                            ),
                        ));
                    }
                }
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
                    let state = self.pool.state();
                    Error::new(
                        ErrorKind::PoolTimeout,
                        format!(
                            "no connection to the {role} database {} became free within {timeout:?}: \
                             all {} are checked out (max_pool_size = {}). Raise max_pool_size or \
                             pool_timeout; note that #[writer(independent)] inside a transaction \
                             needs a second connection",
                            self.redacted,
                            state.connections - state.idle_connections,
                            self.max_pool_size,
                        ),
                    )
                }
                Some(cause) => Error::new(
                    ErrorKind::Disconnected,
                    format!(
                        "no connection to the {role} database {} within {timeout:?}: {cause}",
                        self.redacted
                    ),
                ),
            });
        }
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
