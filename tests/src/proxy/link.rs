//! One proxied connection: the two pumps that forward its traffic message
//! by message, and the state every connection of a proxy shares (the armed
//! cut, what fired, the log, the threads).
//!
//! Invariants:
//! - A cut is taken (disarmed) under the state lock by the message that
//!   matches it, so exactly one connection acts on it.
//! - A cut is recorded before the connection is closed, so whoever sees the
//!   close can read the record.
//! - Every pump is registered before the acceptor accepts again, and every
//!   connection is reachable (weakly) for the proxy's shutdown.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{mysql, postgres, Cut, Fired, Protocol, Sent};

/// What a dialect makes of one client message.
pub(super) enum FromClient {
    Forward {
        bytes: Vec<u8>,
        sent: Option<Sent>,
    },
    /// Answered by the proxy itself; nothing reaches the server.
    Answer(Vec<u8>),
}

impl FromClient {
    /// Forward a message that the proxy understood as `message`.
    pub(super) fn forward(
        bytes: Vec<u8>,
        message: &'static str,
        sql: Option<String>,
        executes: bool,
    ) -> Self {
        FromClient::Forward {
            bytes,
            sent: Some(Sent {
                message,
                sql,
                executes,
            }),
        }
    }
}

/// What a dialect makes of one server message.
pub(super) struct FromServer {
    pub(super) bytes: Vec<u8>,
    /// The last message of the reply to a simple command (PostgreSQL's
    /// ReadyForQuery; a MySQL OK or ERR without more results to come).
    pub(super) ends_reply: bool,
    /// `Some(true)` if it says the command (a COMMIT) succeeded,
    /// `Some(false)` if it says it failed or rolled back.
    pub(super) committed: Option<bool>,
}

/// What the two pumps of one connection share about the conversation.
#[derive(Default)]
pub(super) struct Conversation {
    /// Prepared statements' SQL, by name (PostgreSQL) or id (MySQL).
    pub(super) statements: HashMap<String, String>,
    /// PostgreSQL portals: the SQL each one runs.
    pub(super) portals: HashMap<String, String>,
    /// MySQL: the SQL of a COM_STMT_PREPARE whose id has not arrived yet.
    pub(super) preparing: Option<String>,
}

/// A COMMIT cut in progress on one connection.
#[derive(Debug, Clone)]
struct Watch {
    cut: Cut,
    at: Sent,
    committed: Option<bool>,
}

/// The one place the proxy's core meets the dialects.
impl Protocol {
    /// The next client message; `started` is false until the untyped
    /// opening messages (PostgreSQL's startup) are over.
    fn read_client(
        self,
        from: &mut impl Read,
        started: &mut bool,
        conv: &Mutex<Conversation>,
    ) -> io::Result<Option<FromClient>> {
        match self {
            Protocol::Postgres => postgres::from_client(from, started, conv),
            Protocol::Mysql => mysql::from_client(from, conv),
        }
    }

    /// The next server message; `greeted` is false until the first one
    /// (MySQL's greeting) has been seen.
    fn read_server(
        self,
        from: &mut impl Read,
        greeted: &mut bool,
        conv: &Mutex<Conversation>,
    ) -> io::Result<Option<FromServer>> {
        match self {
            Protocol::Postgres => postgres::from_server(from),
            Protocol::Mysql => mysql::from_server(from, greeted, conv),
        }
    }
}

/// Read the first byte of a message into `buf[0]` and the rest of `buf`:
/// `false` at a clean end of stream before the message.
pub(super) fn read_start(from: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    loop {
        match from.read(&mut buf[..1]) {
            Ok(0) => return Ok(false),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    from.read_exact(&mut buf[1..])?;
    Ok(true)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A pump that panicked must not hide the cut records from the test.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Default)]
struct State {
    armed: Option<Cut>,
    fired: Vec<Fired>,
    log: Vec<Sent>,
}

pub(super) struct Shared {
    protocol: Protocol,
    upstream: SocketAddr,
    stopping: AtomicBool,
    state: Mutex<State>,
    changed: Condvar,
    links: Mutex<Vec<Weak<Link>>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
    live_threads: Arc<AtomicUsize>,
}

/// One proxied connection.
struct Link {
    client: TcpStream,
    server: TcpStream,
    conv: Mutex<Conversation>,
    watch: Mutex<Option<Watch>>,
}

impl Link {
    fn close(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

/// Counts a thread as live until it ends, however it ends.
struct LiveThread(Arc<AtomicUsize>);

impl LiveThread {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        LiveThread(Arc::clone(count))
    }
}

impl Drop for LiveThread {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    pub(super) fn new(protocol: Protocol, upstream: SocketAddr) -> Arc<Shared> {
        Arc::new(Shared {
            protocol,
            upstream,
            stopping: AtomicBool::new(false),
            state: Mutex::default(),
            changed: Condvar::new(),
            links: Mutex::default(),
            pumps: Mutex::default(),
            live_threads: Arc::default(),
        })
    }

    /// Start accepting on `listener`, in a thread of its own.
    pub(super) fn spawn_acceptor(
        self: &Arc<Self>,
        listener: TcpListener,
    ) -> io::Result<JoinHandle<()>> {
        let live = LiveThread::new(&self.live_threads);
        let shared = Arc::clone(self);
        std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || {
                let _live = live;
                shared.accept_loop(listener)
            })
    }

    /// Stop the acceptor (listening on `addr`), close every connection and
    /// join every thread.
    pub(super) fn shut_down(&self, addr: SocketAddr, acceptor: JoinHandle<()>) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor out of `accept`.
        let _ = TcpStream::connect(addr);
        let _ = acceptor.join();
        // No connection can be added now.
        for link in lock(&self.links).drain(..) {
            if let Some(link) = link.upgrade() {
                link.close();
            }
        }
        let pumps = std::mem::take(&mut *lock(&self.pumps));
        for pump in pumps {
            let _ = pump.join();
        }
    }

    pub(super) fn arm(&self, cut: Cut) {
        let mut state = lock(&self.state);
        assert_eq!(state.armed, None, "a cut is already armed");
        state.armed = Some(cut);
    }

    pub(super) fn armed(&self) -> Option<Cut> {
        lock(&self.state).armed
    }

    pub(super) fn wait_fired(&self, timeout: Duration) -> Option<Fired> {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.state);
        loop {
            if !state.fired.is_empty() {
                return Some(state.fired.remove(0));
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub(super) fn take_log(&self) -> Vec<Sent> {
        std::mem::take(&mut lock(&self.state).log)
    }

    pub(super) fn live_threads(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.live_threads)
    }

    fn fire(&self, fired: Fired) {
        lock(&self.state).fired.push(fired);
        self.changed.notify_all();
    }

    /// The cut `sent` triggers, if one is armed and matches (disarming it).
    fn take_cut(&self, sent: &Sent) -> Option<Cut> {
        let mut state = lock(&self.state);
        state.log.push(sent.clone());
        let cut = state.armed?;
        let hit = match cut {
            Cut::BeforeBegin => sent.is_begin(),
            Cut::MidBody => sent.is_insert(),
            Cut::CommitReplyDropped | Cut::AfterCommit => sent.is_commit(),
        };
        if hit {
            state.armed = None;
        }
        hit.then_some(cut)
    }

    fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        for client in listener.incoming() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let Ok(client) = client else { continue };
            if let Err(e) = self.open_link(client) {
                eprintln!("proxy: cannot reach the server at {}: {e}", self.upstream);
            }
        }
    }

    fn open_link(self: &Arc<Self>, client: TcpStream) -> io::Result<()> {
        let server = TcpStream::connect(self.upstream)?;
        // Messages are forwarded one write each: without NODELAY, Nagle and
        // delayed ACKs would hold a split request back by ~40 ms.
        client.set_nodelay(true)?;
        server.set_nodelay(true)?;
        let link = Arc::new(Link {
            client,
            server,
            conv: Mutex::default(),
            watch: Mutex::default(),
        });
        let mut links = lock(&self.links);
        links.retain(|l| l.strong_count() > 0);
        links.push(Arc::downgrade(&link));
        drop(links);
        let mut pumps = lock(&self.pumps);
        pumps.retain(|p| !p.is_finished());
        for to_server in [true, false] {
            let (shared, link) = (Arc::clone(self), Arc::clone(&link));
            let live = LiveThread::new(&self.live_threads);
            let pump = std::thread::Builder::new()
                .name(format!(
                    "proxy-pump-{}",
                    if to_server { "c2s" } else { "s2c" }
                ))
                .spawn(move || {
                    let _live = live;
                    let result = if to_server {
                        shared.client_to_server(&link)
                    } else {
                        shared.server_to_client(&link)
                    };
                    // An error is the peer going away (or a cut): end the
                    // whole connection either way.
                    if result.is_err() {
                        link.close();
                    }
                })?;
            pumps.push(pump);
        }
        Ok(())
    }

    fn client_to_server(&self, link: &Link) -> io::Result<()> {
        let mut from = BufReader::new(link.client.try_clone()?);
        let (mut to_server, mut to_client) = (&link.server, &link.client);
        let mut started = false;
        loop {
            let Some(message) = self
                .protocol
                .read_client(&mut from, &mut started, &link.conv)?
            else {
                let _ = link.server.shutdown(Shutdown::Write);
                return Ok(());
            };
            let (bytes, sent) = match message {
                FromClient::Answer(bytes) => {
                    to_client.write_all(&bytes)?;
                    continue;
                }
                FromClient::Forward { bytes, sent } => (bytes, sent),
            };
            if let Some(sent) = sent {
                match self.take_cut(&sent) {
                    Some(cut @ (Cut::BeforeBegin | Cut::MidBody)) => {
                        self.fire(Fired {
                            cut,
                            at: sent,
                            server_committed: None,
                        });
                        link.close();
                        return Ok(());
                    }
                    Some(cut) => {
                        // Before forwarding: the reply cannot arrive first.
                        *lock(&link.watch) = Some(Watch {
                            cut,
                            at: sent,
                            committed: None,
                        });
                    }
                    None => {}
                }
            }
            to_server.write_all(&bytes)?;
        }
    }

    fn server_to_client(&self, link: &Link) -> io::Result<()> {
        let mut from = BufReader::new(link.server.try_clone()?);
        let mut to_client = &link.client;
        let mut greeted = false;
        loop {
            let message = match self
                .protocol
                .read_server(&mut from, &mut greeted, &link.conv)
            {
                Ok(Some(message)) => message,
                end => {
                    // The server went away during a COMMIT cut: say so.
                    if let Some(watch) = lock(&link.watch).take() {
                        self.fire(Fired {
                            cut: watch.cut,
                            at: watch.at,
                            server_committed: None,
                        });
                    }
                    let _ = link.client.shutdown(Shutdown::Write);
                    return end.map(drop);
                }
            };
            let mut watch = lock(&link.watch);
            let Some(w) = watch.as_mut() else {
                drop(watch);
                to_client.write_all(&message.bytes)?;
                continue;
            };
            if message.committed.is_some() {
                w.committed = message.committed;
            }
            if w.cut == Cut::AfterCommit {
                to_client.write_all(&message.bytes)?;
            }
            if message.ends_reply {
                let w = watch.take().expect("watched");
                drop(watch);
                self.fire(Fired {
                    cut: w.cut,
                    at: w.at,
                    server_committed: Some(w.committed == Some(true)),
                });
                link.close();
                return Ok(());
            }
        }
    }
}
