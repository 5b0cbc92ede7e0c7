//! Pieces of the kill -9 suite (`tests/tests/faults_kill.rs`): the fault
//! set of servers that `scripts/test` starts beside the ordinary one, a
//! locked-increment workload whose every call leaves a row keyed by
//! `(thread, i)`, and the ledger that compares what callers were told with
//! what the server kept.
//!
//! The fault set is shared by every test of the binary and each test kills
//! a server of it, so the tests take [`serial`] first. Its URLs and state
//! dir come from `FACADE_FAULT_*` variables; without them a test is skipped
//! with a message, except under `CI=true`, where that is a failure.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{BigInt, Integer};
use diesel::{Connection, QueryResult, RunQueryDsl};
use diesel_facade::{writer, Context, Error, ErrorKind};

use crate::TestBackend;

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time: each one kills a server the others would use.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The value of `var`; panics, naming it, when it is not set (the tests
/// that call this are ignored without the fault set, except under CI).
pub fn fault_var(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => panic!(
            "{var} is not configured: the kill -9 suite needs the fault set of servers that \
             scripts/test starts (FACADE_FAULT_SERVERS_DIR, FACADE_FAULT_*_URL). Without it \
             the suite is ignored, except under CI=true"
        ),
    }
}

/// The servers this suite may crash: a state dir of `scripts/test-servers`.
#[derive(Debug, Clone)]
pub struct FaultSet {
    dir: String,
}

impl FaultSet {
    /// From `FACADE_FAULT_SERVERS_DIR` (see [`fault_var`]).
    pub fn from_env() -> Option<FaultSet> {
        fault_var("FACADE_FAULT_SERVERS_DIR").map(|dir| FaultSet { dir })
    }

    fn run(&self, command: &str, server: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/test-servers");
        let output = Command::new(script)
            .args([command, &self.dir, server])
            .output()
            .expect("run scripts/test-servers");
        assert!(
            output.status.success(),
            "scripts/test-servers {command} {} {server} failed:\n{}",
            self.dir,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// SIGKILL `server` (e.g. `pg-primary`, `galera-node2`) and its
    /// children. The server comes back when the returned guard is revived
    /// or dropped, so a failing test leaves the set whole for the next.
    pub fn kill(&self, server: &'static str) -> Killed<'_> {
        let killed = Killed {
            set: self,
            server,
            revived: false,
        };
        self.run("kill", server);
        killed
    }

    /// Make sure `server` runs (a test before may have died with it down).
    pub fn ensure_running(&self, server: &str) {
        self.run("revive", server);
    }
}

/// A server [`FaultSet::kill`] took down.
#[must_use = "dropping it revives the server at once"]
pub struct Killed<'a> {
    set: &'a FaultSet,
    server: &'static str,
    revived: bool,
}

impl Killed<'_> {
    /// Start the server again and wait until it serves (a Galera node:
    /// Synced in a cluster of 3). Returns how long that took.
    pub fn revive(mut self) -> Duration {
        let started = Instant::now();
        self.revived = true;
        self.set.run("revive", self.server);
        started.elapsed()
    }
}

impl Drop for Killed<'_> {
    fn drop(&mut self) {
        if !self.revived {
            let revived = std::panic::catch_unwind(|| self.set.run("revive", self.server));
            if revived.is_err() {
                eprintln!("could not revive {} after a failure", self.server);
            }
        }
    }
}

/// Set while a test's controlling thread unwinds, so its workers stop
/// calling instead of keeping the scope (and the test) alive.
#[derive(Debug, Default)]
pub struct Abort(std::sync::atomic::AtomicBool);

impl Abort {
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A guard that sets the flag if it is dropped during a panic.
    pub fn on_panic(&self) -> impl Drop + '_ {
        struct Guard<'a>(&'a Abort);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0 .0.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
        Guard(self)
    }
}

/// The primary of a backend in the fault set.
pub trait KillTarget: TestBackend {
    /// The variable with the fault set's URL of this server.
    const FAULT_URL_VAR: &'static str;
    /// Its name for `scripts/test-servers kill`.
    const SERVER: &'static str;
    /// Its name in the reliability report.
    const REPORTED_AS: &'static str;
    /// SQL returning `n` = 1 when the server acknowledges a commit only
    /// once a process crash can no longer lose it. Without that, a kill -9
    /// may lose `Ok` commits whatever the library does.
    const CRASH_DURABLE: &'static str;
}

/// Panics unless the server of `conn` is durable against a process crash.
pub fn assert_crash_durable<C: KillTarget>(conn: &mut C) {
    let durable = C::query_n(conn, C::CRASH_DURABLE).expect("read the durability settings");
    assert_eq!(
        durable,
        1,
        "{}: the server may acknowledge commits a kill -9 loses (PostgreSQL \
         synchronous_commit = off, MariaDB innodb_flush_log_at_trx_commit = 0): fix the \
         server's settings (scripts/test-servers), this is not the library's doing",
        C::REPORTED_AS
    );
}

impl KillTarget for diesel::PgConnection {
    const FAULT_URL_VAR: &'static str = "FACADE_FAULT_PG_URL";
    const SERVER: &'static str = "pg-primary";
    const REPORTED_AS: &'static str = "postgres";
    // fsync = off does not matter against a process crash: the WAL is in
    // the OS's cache once COMMIT returns, unless commits are asynchronous.
    const CRASH_DURABLE: &'static str = "SELECT CASE WHEN current_setting('synchronous_commit') \
         <> 'off' THEN 1 ELSE 0 END::bigint AS n";
}

impl KillTarget for diesel::MysqlConnection {
    const FAULT_URL_VAR: &'static str = "FACADE_FAULT_MYSQL_URL";
    const SERVER: &'static str = "mysql-primary";
    const REPORTED_AS: &'static str = "mariadb";
    // 1 flushes at COMMIT, 2 writes to the OS's cache at COMMIT: both
    // survive a process crash. 0 leaves up to a second in mariadbd.
    const CRASH_DURABLE: &'static str =
        "SELECT CAST(@@GLOBAL.innodb_flush_log_at_trx_commit IN (1, 2) AS SIGNED) AS n";
}

/// The workload's tables (valid SQL on PostgreSQL and MariaDB): one
/// counter row, and one log row per committed increment, keyed by the call.
pub const SCHEMA: &str = "
    CREATE TABLE kill_counter (id INTEGER PRIMARY KEY, value BIGINT NOT NULL);
    INSERT INTO kill_counter (id, value) VALUES (1, 0);
    CREATE TABLE kill_log (thread INTEGER NOT NULL, i INTEGER NOT NULL, value BIGINT NOT NULL,
                           PRIMARY KEY (thread, i));
";

/// A fresh database named after `test` on the server of `admin_url`, with
/// [`SCHEMA`]; returns its URL. (The `locks` table comes from the facade's
/// migrations.)
pub fn fresh_database<C: TestBackend>(admin_url: &str, test: &str) -> String {
    let url = C::create_database(admin_url, test);
    let mut conn = C::establish(&url).expect("connect to the fresh database");
    conn.batch_execute(SCHEMA).expect("create the kill tables");
    url
}

/// Which call of the workload: thread `thread`, its `i`-th call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub thread: i32,
    pub i: i32,
}

/// The body of one increment: read the counter, hold the lock a moment
/// (`pause`, so that a kill finds work in flight), write it back plus one
/// and log the call, all in the caller's transaction.
fn increment<C: TestBackend>(conn: &mut C, key: Key, pause: Duration) -> QueryResult<i64> {
    let value = C::query_n(conn, "SELECT value AS n FROM kill_counter WHERE id = 1")? + 1;
    sleep(pause);
    conn.batch_execute(&format!(
        "UPDATE kill_counter SET value = {value} WHERE id = 1"
    ))?;
    conn.batch_execute(&format!(
        "INSERT INTO kill_log (thread, i, value) VALUES ({}, {}, {value})",
        key.thread, key.i
    ))?;
    Ok(value)
}

/// A `#[writer]` taking the lock `counter` and incrementing; returns the
/// value it wrote.
#[writer]
pub fn locked_increment<C: TestBackend>(
    ctx: &mut Context<C>,
    key: Key,
    pause: Duration,
) -> Result<i64, Error> {
    ctx.lock("counter")?;
    Ok(increment(ctx.conn(), key, pause)?)
}

/// [`locked_increment`] as the outermost `#[writer(retry)]`, as Galera
/// needs it: across nodes the lock conflict surfaces as a certification
/// failure at COMMIT.
#[writer(retry)]
pub fn locked_increment_retrying<C: TestBackend>(
    ctx: &mut Context<C>,
    key: Key,
    pause: Duration,
) -> Result<i64, Error> {
    locked_increment(ctx, key, pause)
}

/// [`locked_increment_retrying`] calls by `thread` through `db`, one after
/// the other, until `stop` or `abort` is set or `go_on` says no after a call.
pub fn increments_until<C: TestBackend>(
    db: &diesel_facade::Facade<C>,
    thread: i32,
    pause: Duration,
    stop: &std::sync::atomic::AtomicBool,
    abort: &Abort,
    mut go_on: impl FnMut(&Call) -> bool,
) -> Vec<Call> {
    let mut ctx = db.context();
    let mut calls = Vec::new();
    for i in 0.. {
        if stop.load(std::sync::atomic::Ordering::SeqCst) || abort.is_set() {
            break;
        }
        let key = Key { thread, i };
        let call = Call::run(key, || locked_increment_retrying(&mut ctx, key, pause));
        let more = go_on(&call);
        calls.push(call);
        if !more {
            break;
        }
    }
    calls
}

/// One call and what its caller was told.
#[derive(Debug, Clone)]
pub struct Call {
    pub key: Key,
    pub started: Instant,
    pub ended: Instant,
    /// The value written, or the error's kind and message.
    pub outcome: Result<i64, (ErrorKind, String)>,
}

impl Call {
    /// Run `f` for `key`, timing it.
    pub fn run(key: Key, f: impl FnOnce() -> Result<i64, Error>) -> Call {
        let started = Instant::now();
        let outcome = f().map_err(|e| (e.kind(), e.message().to_owned()));
        Call {
            key,
            started,
            ended: Instant::now(),
            outcome,
        }
    }

    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }

    pub fn kind(&self) -> Option<ErrorKind> {
        self.outcome.as_ref().err().map(|(kind, _)| *kind)
    }
}

/// One row of `kill_log`.
#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
pub struct LogRow {
    #[diesel(sql_type = Integer)]
    pub thread: i32,
    #[diesel(sql_type = Integer)]
    pub i: i32,
    #[diesel(sql_type = BigInt)]
    pub value: i64,
}

/// Every row of `kill_log` and the counter, read on `conn`.
pub fn server_state<C>(conn: &mut C) -> (Vec<LogRow>, i64)
where
    C: TestBackend,
    for<'a> SqlQuery: LoadQuery<'a, C, LogRow>,
{
    let rows = diesel::sql_query("SELECT thread, i, value FROM kill_log")
        .load::<LogRow>(conn)
        .expect("read kill_log");
    let counter = C::query_n(conn, "SELECT value AS n FROM kill_counter WHERE id = 1")
        .expect("read the counter");
    (rows, counter)
}

/// What the callers were told against what the server kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub calls: u64,
    pub ok: u64,
    pub unknown: u64,
    /// `CommitUnknown` calls whose row is present (they did commit).
    pub unknown_committed: u64,
    pub failed: u64,
    pub rows: u64,
    /// `Ok` calls whose row is missing, or whose row holds another value.
    pub lost: u64,
    /// Failed (not `CommitUnknown`) calls whose row is present.
    pub false_commits: u64,
    /// Rows no call accounts for.
    pub strays: u64,
    /// Failed calls per error kind, e.g. `Disconnected:4`.
    pub kinds: String,
}

impl Ledger {
    /// Compare `calls` with the `rows` of `kill_log` and the `counter`.
    /// Panics when the server's own state is inconsistent: the lock let
    /// two increments write the same value, or the counter and the log
    /// disagree.
    pub fn settle(calls: &[Call], rows: &[LogRow], counter: i64) -> Ledger {
        let by_key: HashMap<Key, i64> = rows
            .iter()
            .map(|r| {
                (
                    Key {
                        thread: r.thread,
                        i: r.i,
                    },
                    r.value,
                )
            })
            .collect();
        let mut values: Vec<i64> = rows.iter().map(|r| r.value).collect();
        values.sort_unstable();
        assert_eq!(
            values,
            (1..=rows.len() as i64).collect::<Vec<_>>(),
            "each committed increment wrote a value no other one wrote"
        );
        assert_eq!(
            counter,
            rows.len() as i64,
            "the counter equals the log rows"
        );

        let mut ledger = Ledger {
            calls: calls.len() as u64,
            rows: rows.len() as u64,
            ..Ledger::default()
        };
        let mut kinds: HashMap<String, u64> = HashMap::new();
        for call in calls {
            let present = by_key.get(&call.key);
            match &call.outcome {
                Ok(value) => {
                    ledger.ok += 1;
                    if present != Some(value) {
                        ledger.lost += 1;
                    }
                }
                Err((ErrorKind::CommitUnknown, _)) => {
                    ledger.unknown += 1;
                    ledger.unknown_committed += u64::from(present.is_some());
                }
                Err((kind, _)) => {
                    ledger.failed += 1;
                    *kinds.entry(format!("{kind:?}")).or_default() += 1;
                    ledger.false_commits += u64::from(present.is_some());
                }
            }
        }
        let keys: std::collections::HashSet<Key> = calls.iter().map(|c| c.key).collect();
        ledger.strays = by_key.keys().filter(|k| !keys.contains(k)).count() as u64;
        let mut kinds: Vec<_> = kinds.into_iter().collect();
        kinds.sort();
        ledger.kinds = kinds
            .iter()
            .map(|(kind, n)| format!("{kind}:{n}"))
            .collect::<Vec<_>>()
            .join(",");
        ledger
    }

    /// The report line's figures for `fault` on `backend`; `extra` follows
    /// `unknown_committed=N failed_kinds=Kind:N,..`.
    pub fn outcome(&self, fault: &str, backend: &str, extra: String) -> crate::report::Outcome {
        let kinds = if self.kinds.is_empty() {
            "-"
        } else {
            &self.kinds
        };
        let extra = format!(
            "unknown_committed={} failed_kinds={kinds} {extra}",
            self.unknown_committed
        );
        crate::report::Outcome {
            fault: fault.to_owned(),
            backend: backend.to_owned(),
            runs: self.calls,
            ok: self.ok,
            unknown: self.unknown,
            failed: self.failed,
            rows: self.rows,
            lost: self.lost,
            false_commits: self.false_commits,
            extra,
        }
    }

    /// The promises: nothing `Ok` lost, nothing failed committed, every row
    /// from a call, and the rows are exactly the `Ok` calls plus the
    /// `CommitUnknown` ones that did commit.
    pub fn assert_sound(&self, what: &str) {
        assert_eq!(self.lost, 0, "{what}: Ok increments lost: {self:?}");
        assert_eq!(
            self.false_commits, 0,
            "{what}: failed calls committed: {self:?}"
        );
        assert_eq!(self.strays, 0, "{what}: rows of no call: {self:?}");
        assert_eq!(
            self.rows,
            self.ok + self.unknown_committed,
            "{what}: rows = Ok + committed CommitUnknown: {self:?}"
        );
    }
}

/// Milliseconds, for the report.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// A node of the fault set's Galera cluster: a facade bound to it alone,
/// and the URL of the test's database on it.
pub struct GaleraNode {
    pub db: diesel_facade::Facade<diesel::MysqlConnection>,
    pub url: String,
}

/// A fresh database for `test` with [`SCHEMA`], created through the first
/// of `urls`, and one facade per node (each built by `configure`), once
/// every node has applied the set-up.
pub fn galera_nodes(
    urls: &[&str],
    test: &str,
    configure: impl Fn(
        diesel_facade::FacadeBuilder<diesel::MysqlConnection>,
    ) -> diesel_facade::FacadeBuilder<diesel::MysqlConnection>,
) -> Vec<GaleraNode> {
    let first = fresh_database::<diesel::MysqlConnection>(urls[0], test);
    let path = url::Url::parse(&first)
        .expect("database URL")
        .path()
        .to_owned();
    for node in &urls[1..] {
        // The other nodes apply the DDL asynchronously (a facade connects
        // at build, and an unknown database is a refusal): a causal read of
        // the new table waits for it.
        let mut conn = diesel::MysqlConnection::establish(node).expect("connect to a node");
        conn.batch_execute(&format!(
            "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM {}.kill_log",
            path.trim_start_matches('/')
        ))
        .expect("the node has the new database");
    }
    let nodes: Vec<GaleraNode> = urls
        .iter()
        .map(|node| {
            let mut url = url::Url::parse(node).expect("node URL");
            url.set_path(&path);
            let url = url.to_string();
            let db = configure(diesel_facade::Facade::builder().writer(url.clone()))
                .build()
                .expect("facade on a Galera node");
            GaleraNode { db, url }
        })
        .collect();
    nodes[0]
        .db
        .run_migrations()
        .expect("migrations through node 1");
    for node in &nodes {
        // DDL reaches the other nodes asynchronously: a causal read waits.
        diesel_facade::write(&mut node.db.context(), |ctx| {
            ctx.conn().batch_execute(
                "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM locks; \
                 SELECT COUNT(*) FROM kill_log; SET SESSION wsrep_sync_wait = 0",
            )
        })
        .expect("the node has applied the set-up");
    }
    nodes
}

/// [`server_state`] on a Galera node, once it has applied everything the
/// cluster committed before (a causal read first).
pub fn galera_state(url: &str) -> (Vec<LogRow>, i64) {
    let mut conn = diesel::MysqlConnection::establish(url).expect("connect to a Galera node");
    conn.batch_execute(
        "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM kill_log; \
         SELECT COUNT(*) FROM kill_counter",
    )
    .expect("a causal read");
    server_state(&mut conn)
}

/// A stretch of time without an `Ok` call ending.
#[derive(Debug, Clone, Copy)]
pub struct Standstill {
    pub from: Instant,
    pub until: Instant,
}

impl Standstill {
    pub fn length(&self) -> Duration {
        self.until - self.from
    }

    /// Whether `call` was running during it.
    pub fn overlaps(&self, call: &Call) -> bool {
        call.started < self.until && call.ended > self.from
    }
}

/// The longest stretch between `from` and `until` in which no `Ok` call of
/// `calls` ended: how long the service stood still.
pub fn longest_standstill(calls: &[&Call], from: Instant, until: Instant) -> Standstill {
    let mut ends: Vec<Instant> = calls
        .iter()
        .filter(|c| c.is_ok() && c.ended > from && c.ended <= until)
        .map(|c| c.ended)
        .collect();
    ends.sort_unstable();
    let mut previous = from;
    let mut longest = Standstill { from, until: from };
    for end in ends.into_iter().chain(std::iter::once(until)) {
        if end - previous > longest.length() {
            longest = Standstill {
                from: previous,
                until: end,
            };
        }
        previous = end;
    }
    longest
}

/// Checks that every failed call of `calls` is a `LockTimeout` that was
/// waiting during `stall`, and returns how many there were.
///
/// While a Galera cluster waits to declare a killed node dead
/// (`evs.suspect_timeout`, 5 s by default), no commit completes on any
/// node: the lock holder's COMMIT waits, and a caller queued behind the
/// lock row on the same node can exceed `innodb_lock_wait_timeout` (5 s on
/// the test servers, 50 s by default). It gets `LockTimeout`, which is not
/// retried; nothing of it was committed (the ledger checks that).
pub fn lock_timeouts_during(calls: &[&Call], stall: Standstill, who: &str) -> u64 {
    let mut count = 0;
    for call in calls.iter().filter(|c| !c.is_ok()) {
        let at = |t: Instant| {
            t.saturating_duration_since(stall.from).as_secs_f64()
                - stall.from.saturating_duration_since(t).as_secs_f64()
        };
        assert!(
            call.kind() == Some(ErrorKind::LockTimeout) && stall.overlaps(call),
            "{who}: a call failed (from {:.3} s to {:.3} s after the stall began, which \
             lasted {:?}): {call:?}",
            at(call.started),
            at(call.ended),
            stall.length(),
        );
        count += 1;
    }
    count
}
