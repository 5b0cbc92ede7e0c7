//! An in-process TCP proxy between the facade and a database server that
//! reads the client's side of the wire protocol message by message and cuts
//! the connection at a chosen point of a transaction (see [`Cut`]).
//!
//! Invariants:
//! - A cut is armed once and fires once, on the first connection whose
//!   traffic matches it; before and after that every byte is forwarded
//!   unchanged (except that TLS is refused: the proxy must read the SQL).
//! - A cut is recorded ([`Proxy::wait_fired`]) before the connection
//!   closes, so a caller that got its error can read the record at once.
//! - Dropping the proxy closes its port and every proxied connection and
//!   joins every thread it started.
//!
//! Threads, not an async runtime: one acceptor, and two pumps per proxied
//! connection (client to server, server to client), each blocked in a read.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::TestBackend;

use link::Shared;

mod link;
mod mysql;
mod postgres;

/// The wire protocol a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// PostgreSQL's frontend/backend protocol 3.0.
    Postgres,
    /// The MySQL/MariaDB client/server protocol.
    Mysql,
}

/// A backend whose connections can run through a [`Proxy`].
pub trait Proxied: TestBackend {
    /// How its client talks to its server.
    const PROTOCOL: Protocol;

    /// `url` with its host and port replaced by `proxy`'s, and whatever
    /// keeps the connection readable by the proxy.
    fn through(url: &str, proxy: SocketAddr) -> String;
}

fn with_address(url: &str, addr: SocketAddr) -> url::Url {
    let mut parsed = url::Url::parse(url).expect("server URL parses");
    parsed
        .set_host(Some(&addr.ip().to_string()))
        .expect("an IP address is a valid host");
    parsed.set_port(Some(addr.port())).expect("URL with a port");
    parsed
}

impl Proxied for diesel::PgConnection {
    const PROTOCOL: Protocol = Protocol::Postgres;

    fn through(url: &str, proxy: SocketAddr) -> String {
        let mut url = with_address(url, proxy);
        // libpq would otherwise ask for TLS first. The proxy also answers
        // an SSLRequest with 'N' itself, for URLs that prefer TLS.
        url.query_pairs_mut().append_pair("sslmode", "disable");
        url.to_string()
    }
}

impl Proxied for diesel::MysqlConnection {
    const PROTOCOL: Protocol = Protocol::Mysql;

    fn through(url: &str, proxy: SocketAddr) -> String {
        // No `ssl_mode=disabled`: diesel parses it, but on libmariadb
        // (mysqlclient-sys `SUPPORTS_MYSQL_SSL_MODE == false`) it has no
        // effect (here even `ssl_mode=required` connected in plaintext).
        // Instead the proxy clears CLIENT_SSL in the server's greeting, so
        // no client can start TLS through it.
        with_address(url, proxy).to_string()
    }
}

/// Where the proxy cuts a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The transaction's `BEGIN` is not forwarded; the connection closes.
    BeforeBegin,
    /// The first `INSERT` (as SQL text, a `Parse`/`COM_STMT_PREPARE` of it,
    /// or an execution of a statement prepared from it) is not forwarded;
    /// the connection closes.
    MidBody,
    /// `COMMIT` reaches the server; the proxy reads the server's whole reply,
    /// forwards none of it, and closes the connection: the server decided,
    /// the client cannot know what.
    CommitReplyDropped,
    /// `COMMIT` and its whole reply pass; then the connection closes before
    /// the client's next message.
    AfterCommit,
}

/// One client message, as far as the proxy understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The message type (`Query`, `Parse`, `Bind`, `COM_QUERY`, ...).
    pub message: &'static str,
    /// The SQL it carries or runs (a prepared statement's text for `Bind`,
    /// `Execute` and `COM_STMT_EXECUTE`, when the proxy saw it prepared).
    pub sql: Option<String>,
    /// Whether the server runs a statement on receiving it.
    pub executes: bool,
}

impl Sent {
    fn sql_starts_with(&self, words: &[&str]) -> bool {
        let Some(sql) = &self.sql else { return false };
        let sql = sql.trim_start().to_ascii_uppercase();
        words.iter().any(|w| sql.starts_with(w))
    }

    /// `BEGIN` or `START TRANSACTION`, whatever follows.
    pub fn is_begin(&self) -> bool {
        self.sql_starts_with(&["BEGIN", "START TRANSACTION"])
    }

    /// An `INSERT` statement.
    pub fn is_insert(&self) -> bool {
        self.sql_starts_with(&["INSERT"])
    }

    /// The execution of exactly `COMMIT`.
    pub fn is_commit(&self) -> bool {
        self.executes
            && self.sql.as_deref().is_some_and(|s| {
                s.trim()
                    .trim_end_matches(';')
                    .eq_ignore_ascii_case("COMMIT")
            })
    }
}

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sql {
            Some(sql) => write!(f, "{} {sql}", self.message),
            None => f.write_str(self.message),
        }
    }
}

/// A cut that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub cut: Cut,
    /// The client message the cut matched.
    pub at: Sent,
    /// For the COMMIT cuts: whether the server's whole reply arrived and
    /// said the transaction committed (`None`: the server closed first).
    pub server_committed: Option<bool>,
}

/// A fault proxy listening on `127.0.0.1:0` (see the module docs).
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listen on a free local port and forward every connection to the
    /// server of `server_url` (its host and port).
    pub fn start(protocol: Protocol, server_url: &str) -> io::Result<Proxy> {
        let parsed = url::Url::parse(server_url).map_err(io::Error::other)?;
        let host = parsed.host_str().unwrap_or("127.0.0.1");
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| io::Error::other("server URL without a port"))?;
        let upstream = (host, port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other("server host resolves to nothing"))?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(protocol, upstream);
        let acceptor = shared.spawn_acceptor(listener)?;
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Arm `cut` for the next matching message on any connection. Panics if
    /// a cut is armed already.
    pub fn arm(&self, cut: Cut) {
        self.shared.arm(cut);
    }

    /// The cut that is armed and has not fired yet, if any.
    pub fn armed(&self) -> Option<Cut> {
        self.shared.armed()
    }

    /// The oldest cut that fired and was not returned yet, waiting up to
    /// `timeout` for one.
    pub fn wait_fired(&self, timeout: Duration) -> Option<Fired> {
        self.shared.wait_fired(timeout)
    }

    /// Every client message seen since the last call, in order.
    pub fn take_log(&self) -> Vec<Sent> {
        self.shared.take_log()
    }

    /// How many of the proxy's threads are running; 0 once it is dropped.
    pub fn live_threads(&self) -> Arc<AtomicUsize> {
        self.shared.live_threads()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            self.shared.shut_down(self.addr, acceptor);
        }
    }
}
