//! The r2d2 manager of a pool: connects (trying a writer failover list in
//! order, probing each node's port first), applies the backend's session
//! settings, checks health, and records the outcome of its last connect
//! attempt for `checkout` (in `pool/mod.rs`) to act on at once.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use diesel::connection::{TransactionManager, TransactionManagerStatus};
use r2d2::ManageConnection;

use crate::backend::SupportedConnection;
use crate::connection::{FacadeInstrumentation, InstrumentationFactory, Managed};
use crate::error::{Error, ErrorKind};
use crate::redact::{redact_url, Secrets};

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
    pub(super) fn holder(&self) -> std::sync::MutexGuard<'_, Option<ThreadId>> {
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
pub(super) const FAILOVER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The outcome of a pool's most recent connect attempt. r2d2 connects in
/// the background and only reports a failure when a checkout times out, so
/// the manager records it here for `checkout` to act on at once.
#[derive(Default)]
pub(super) struct LastConnect {
    pub(super) failure: Mutex<Option<(ErrorKind, String)>>,
}

impl LastConnect {
    pub(super) fn record(&self, failure: Option<(ErrorKind, String)>) {
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = failure;
    }

    /// The last connect attempt's failure, if it failed.
    pub(super) fn failure(&self) -> Option<(ErrorKind, String)> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The host and port of a server URL, for the failover probe; `None` for
/// SQLite (no server: its `DEFAULT_PORT` is 0).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn server_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    if default_port == 0 {
        return None;
    }
    url::Url::parse(url).ok().and_then(|u| {
        // A Unix socket (`?unix_socket=`) has no port to probe.
        let socket = u.query_pairs().any(|(k, _)| k == "unix_socket");
        let host = u.host_str()?.trim_matches(['[', ']']).to_owned();
        (!socket).then(|| (host, u.port().unwrap_or(default_port)))
    })
}

/// A SQLite-only build has no server to probe (and no URL parser: `url`
/// comes with the server backends).
#[cfg(not(any(feature = "postgres", feature = "mysql")))]
fn server_port(_url: &str, _default_port: u16) -> Option<(String, u16)> {
    None
}

/// One URL the manager may connect to.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) url: String,
    pub(super) redacted: String,
    /// Scrubbed from every message derived from a driver error: libpq
    /// repeats parts of the URL (a badly percent-encoded password) in its own.
    pub(super) secrets: Secrets,
    /// Where a failover list probes the server's port first, so that a node
    /// that does not answer (a powered-off host drops the SYN) is skipped
    /// within `probe_timeout` instead of the system's connect timeout.
    pub(super) probe: Option<(String, u16)>,
}

impl Target {
    pub(super) fn new(url: &str, default_port: u16) -> Self {
        Target {
            url: url.to_owned(),
            redacted: redact_url(url),
            secrets: Secrets::of(url),
            probe: server_port(url, default_port),
        }
    }

    /// Whether something accepts TCP connections at the target's port
    /// within `timeout` (true when there is nothing to probe).
    pub(super) fn answers(&self, timeout: Duration) -> bool {
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
    pub(super) targets: Vec<Target>,
    /// How long a failover list waits for a node's port to answer.
    pub(super) probe_timeout: Duration,
    pub(super) options: Arc<C::Options>,
    pub(super) instrumentation: Option<InstrumentationFactory>,
    pub(super) last_connect: Arc<LastConnect>,
    /// Set for a transactional test pool.
    pub(super) test: Option<Arc<TestTransaction>>,
    pub(super) _conn: PhantomData<fn() -> C>,
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
    pub(super) fn answers(&self, timeout: Duration) -> bool {
        self.targets.iter().any(|t| t.answers(timeout))
    }

    /// Connect to the first target that accepts; with several, an error
    /// names every target's failure, and is a `Config` error only when each
    /// of them refused.
    pub(super) fn establish(&self) -> Result<Managed<C>, Error> {
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

    pub(super) fn establish_at(&self, target: &Target) -> Result<Managed<C>, Error> {
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
        // Idle from now on; the next checkout proves it again if needed.
        conn.idle_since = Instant::now();
        conn.proven = false;
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

#[cfg(all(test, any(feature = "postgres", feature = "mysql")))]
mod tests {
    use super::server_port;

    #[test]
    fn the_failover_probe_reads_host_and_port_of_server_urls_only() {
        assert_eq!(
            server_port("postgres://u:pw@db.example:6543/app", 5432),
            Some(("db.example".to_owned(), 6543))
        );
        assert_eq!(
            server_port("mysql://u:pw@[::1]/app", 3306),
            Some(("::1".to_owned(), 3306))
        );
        // A Unix socket has no port; SQLite (default port 0) has no server,
        // whatever its URL looks like.
        assert_eq!(
            server_port("mysql://u@localhost/app?unix_socket=/run/m.sock", 3306),
            None
        );
        assert_eq!(server_port("sqlite://host:1234/data.db", 0), None);
        assert_eq!(server_port("not a url", 5432), None);
    }
}
