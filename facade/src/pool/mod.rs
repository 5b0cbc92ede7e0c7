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
//! test's earlier writes (see `TestTransaction` in `pool/manager.rs`).

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2d2::{ManageConnection, Pool, PooledConnection};

use crate::backend::SupportedConnection;
use crate::config::check_wait;
use crate::connection::InstrumentationFactory;
use crate::error::{Error, ErrorKind};
use crate::redact::Secrets;
use crate::stats::Counters;

mod manager;

pub(crate) use self::manager::Manager;
use self::manager::{LastConnect, Target, TestTransaction, FAILOVER_PROBE_TIMEOUT};

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

/// A checkout pings a pooled connection only when it sat idle at least this
/// long (as HikariCP does with its 500 ms bypass window): a connection in
/// steady use is not asked a `SELECT 1` before every transaction, which was
/// one round trip of every transaction. One that died unseen within the
/// window fails its `BEGIN`, and the transaction begins on another
/// connection (`transaction/outermost.rs`).
pub(crate) const PING_AFTER_IDLE: Duration = Duration::from_millis(500);

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
            // `get_alive` pings instead, only connections that sat idle.
            .test_on_check_out(false)
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

    /// A connection from the pool within `timeout`: one that sat idle for
    /// [`PING_AFTER_IDLE`] or longer is pinged first (any pooled one, with
    /// `always`: for a caller whose first statement is not a `BEGIN` that
    /// could be sent again), and discarded (the next one tried) if it does
    /// not answer.
    pub(crate) fn get_alive(
        &self,
        timeout: Duration,
        always: bool,
    ) -> Result<PooledConn<C>, r2d2::Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let mut conn = self.pool.get_timeout(wait)?;
            if !always && conn.idle_since.elapsed() < PING_AFTER_IDLE {
                return Ok(conn);
            }
            match self.side.is_valid(&mut conn) {
                Ok(()) => {
                    conn.proven = true;
                    return Ok(conn);
                }
                Err(err) => {
                    tracing::debug!(error = %err, "an idle pooled connection did not answer; discarded");
                    conn.broken = true;
                }
            }
        }
    }

    /// A connection within `pool_timeout`, failing at once when the server
    /// refused the pool's last connect and no connection could come back.
    /// `role` names the pool in errors; `always_ping` as for [`get_alive`](Self::get_alive).
    pub(crate) fn checkout(
        &self,
        role: &str,
        counters: &Counters,
        always_ping: bool,
    ) -> Result<PooledConn<C>, Error> {
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
            let err = match self.get_alive(wait, always_ping) {
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
