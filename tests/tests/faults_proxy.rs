//! Faults injected by the proxy of `tests/src/proxy.rs` between the facade
//! and PostgreSQL / MariaDB: a writer's connection is cut before BEGIN,
//! mid-body, with COMMIT sent and its reply dropped (the server committed,
//! the client cannot know), and after COMMIT. For each point and backend,
//! with a plain and a retrying writer that insert one uniquely keyed row:
//! the kind the caller gets, whether the row exists (read over a direct
//! connection), how often the body ran (an unknown commit is never re-run),
//! and that the next calls on the same facade succeed. Each point prints
//! one reliability line (`tests/src/report.rs`).
//!
//! The rows go to a table without a unique key, so a transaction committed
//! twice would show as two rows rather than as a constraint error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel_facade::testing::TestDatabase;
use diesel_facade::{writer, Context, Error, ErrorKind, Facade};
use diesel_facade_tests::proxy::{Cut, Proxied, Proxy, Sent};
use diesel_facade_tests::report::{reliability, Outcome};
use diesel_facade_tests::test_database;

diesel::table! {
    proxy_rows (k, attempt) {
        k -> Integer,
        attempt -> Integer,
    }
}

const ROWS_TABLE: &str = "CREATE TABLE proxy_rows (k INTEGER NOT NULL, attempt INTEGER NOT NULL)";
/// Runs per cut point and backend; each run makes a plain and a retrying call.
const RUNS: i32 = 10;
/// Keys of the calls that check the pool recovered, apart from the faulted ones.
const RECOVERY_KEYS: i32 = 100_000;
/// A bound on how long a cut may take to be reported (a signal, not a sleep).
const FIRED_WITHIN: Duration = Duration::from_secs(10);
/// Longer than the facade's 500 ms window after which a checkout pings a
/// pooled connection before handing it out (`pool::PING_AFTER_IDLE`).
const IDLE_LONG_ENOUGH: Duration = Duration::from_millis(650);

/// How the faulted calls come: on a connection in steady use (given back
/// moments before, so the checkout does not ping it) or on one that sat
/// idle (so the checkout pings it first, and it answers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    Steady,
    Idle,
}

type InsertRow = diesel::dsl::Values<
    diesel::dsl::insert_into<proxy_rows::table>,
    (
        diesel::dsl::Eq<proxy_rows::k, i32>,
        diesel::dsl::Eq<proxy_rows::attempt, i32>,
    ),
>;

/// The body's one statement: diesel's cached prepared INSERT, as an
/// application would write it.
fn insert_row<C: Connection>(conn: &mut C, k: i32, attempt: i32) -> QueryResult<()>
where
    InsertRow: ExecuteDsl<C>,
{
    diesel::insert_into(proxy_rows::table)
        .values((proxy_rows::k.eq(k), proxy_rows::attempt.eq(attempt)))
        .execute(conn)
        .map(drop)
}

/// A writer's body: counts its runs and tags the row with the attempt.
fn counted_insert<C: Connection>(conn: &mut C, k: i32, body_runs: &AtomicUsize) -> Result<(), Error>
where
    InsertRow: ExecuteDsl<C>,
{
    let attempt = body_runs.fetch_add(1, Ordering::SeqCst) as i32;
    Ok(insert_row(conn, k, attempt)?)
}

#[writer]
fn insert_once<C>(ctx: &mut Context<C>, k: i32, body_runs: &AtomicUsize) -> Result<(), Error>
where
    C: Proxied,
    InsertRow: ExecuteDsl<C>,
{
    counted_insert(ctx.conn(), k, body_runs)
}

#[writer(retry = 3)]
fn insert_retrying<C>(ctx: &mut Context<C>, k: i32, body_runs: &AtomicUsize) -> Result<(), Error>
where
    C: Proxied,
    InsertRow: ExecuteDsl<C>,
{
    counted_insert(ctx.conn(), k, body_runs)
}

/// A facade whose connections all run through a proxy, and a direct
/// connection to the same database to check rows without it. Fields drop
/// in order: the pool closes its connections before the proxy stops, and
/// the test database is dropped last.
struct Rig<C: Proxied> {
    db: Facade<C>,
    direct: C,
    proxy: Proxy,
    _database: TestDatabase<C>,
}

fn rig<C: Proxied>(test: &str) -> Option<Rig<C>> {
    let database = test_database::<C>(test)
        .without_facade_migrations()
        .create()
        .expect("create the test database");
    let url = database.url().to_owned();
    let mut direct = C::establish(&url).expect("a direct connection to the test database");
    direct.batch_execute(ROWS_TABLE).expect("create proxy_rows");
    let proxy = Proxy::start(C::PROTOCOL, &url).expect("start the proxy");
    let db = Facade::<C>::builder()
        .writer(C::through(&url, proxy.addr()))
        .max_pool_size(2)
        .pool_timeout(Duration::from_secs(10))
        .build()
        .expect("a facade through the proxy");
    Some(Rig {
        db,
        direct,
        proxy,
        _database: database,
    })
}

impl<C: Proxied> Rig<C> {
    fn count(&mut self, filter: &str) -> i64 {
        C::query_n(
            &mut self.direct,
            &format!("SELECT COUNT(*) AS n FROM proxy_rows WHERE {filter}"),
        )
        .expect("count rows over the direct connection")
    }
}

/// What one faulted call did.
#[derive(Debug, PartialEq, Eq)]
struct Call {
    /// `None` for `Ok`.
    kind: Option<ErrorKind>,
    /// Rows with the call's key.
    rows: i64,
    /// Rows with the call's key written by its last attempt.
    rows_of_last_attempt: i64,
    /// How many times the body ran.
    body_runs: usize,
    /// Retries the facade counted for the call.
    retries: u64,
}

/// What each cut point must give, for a plain and a retrying writer.
fn expected(cut: Cut, pace: Pace, retrying: bool) -> Call {
    let (kind, rows, body_runs, retries) = match (cut, retrying) {
        // BEGIN never reached the server, on a connection in steady use:
        // the checkout did not ping it, so the facade begins on another
        // connection by itself (nothing of the caller's was sent), without
        // a retry of the caller's.
        (Cut::BeforeBegin, _) if pace == Pace::Steady => (None, 1, 1, 0),
        // On a connection the checkout pinged, and which answered: a lost
        // connection before COMMIT, retried on a fresh connection.
        (Cut::BeforeBegin, false) => (Some(ErrorKind::Disconnected), 0, 0, 0),
        (Cut::BeforeBegin, true) => (None, 1, 1, 1),
        // The INSERT never reached the server, which rolls back on EOF.
        (Cut::MidBody, false) => (Some(ErrorKind::Disconnected), 0, 1, 0),
        (Cut::MidBody, true) => (None, 1, 2, 1),
        // The server committed; the client cannot know, and must not re-run.
        (Cut::CommitReplyDropped, _) => (Some(ErrorKind::CommitUnknown), 1, 1, 0),
        (Cut::AfterCommit, _) => (None, 1, 1, 0),
    };
    Call {
        kind,
        rows,
        rows_of_last_attempt: rows,
        body_runs,
        retries,
    }
}

fn fault_name(cut: Cut) -> &'static str {
    match cut {
        Cut::BeforeBegin => "proxy: cut before BEGIN",
        Cut::MidBody => "proxy: cut at the body's INSERT",
        Cut::CommitReplyDropped => "proxy: COMMIT sent, reply dropped",
        Cut::AfterCommit => "proxy: cut after the COMMIT reply",
    }
}

/// One faulted call.
#[derive(Debug)]
struct Run {
    run: i32,
    retrying: bool,
    call: Call,
}

/// Cut `RUNS` plain and `RUNS` retrying writers at `cut`, check that the
/// next calls on the same facade succeed, report the figures, and check
/// what must hold whatever kind the caller got: no `Ok` without its row,
/// no other failure with it, no key committed twice, and an unknown commit
/// run once and never retried. `None` when the server is not configured
/// (outside CI).
fn cut_point<C>(cut: Cut, pace: Pace, backend: &str) -> Option<Vec<Run>>
where
    C: Proxied,
    InsertRow: ExecuteDsl<C>,
{
    cut_point_on::<C>(&format!("{cut:?}_{pace:?}_{backend}"), cut, pace, backend)
}

/// [`cut_point`] on a database of its own named after `test`.
fn cut_point_on<C>(test: &str, cut: Cut, pace: Pace, backend: &str) -> Option<Vec<Run>>
where
    C: Proxied,
    InsertRow: ExecuteDsl<C>,
{
    let mut rig = rig::<C>(test)?;
    let mut runs = Vec::new();
    let mut cut_at = std::collections::BTreeMap::<&str, u32>::new();
    // The pool's connection in use before the first faulted call.
    insert_once(
        &mut rig.db.context(),
        RECOVERY_KEYS - 1,
        &AtomicUsize::new(0),
    )
    .unwrap_or_else(|e| panic!("{test}: a first writer failed: {e}"));
    for run in 0..RUNS {
        for retrying in [false, true] {
            let k = run * 2 + i32::from(retrying);
            let body_runs = AtomicUsize::new(0);
            let retries_before = rig.db.stats().retries;
            let mut ctx = rig.db.context();
            if pace == Pace::Idle {
                std::thread::sleep(IDLE_LONG_ENOUGH);
            }
            rig.proxy.arm(cut);
            let result = if retrying {
                insert_retrying(&mut ctx, k, &body_runs)
            } else {
                insert_once(&mut ctx, k, &body_runs)
            };
            let fired = rig
                .proxy
                .wait_fired(FIRED_WITHIN)
                .unwrap_or_else(|| panic!("{test} run {run}: the cut never fired ({result:?})"));
            *cut_at.entry(fired.at.message).or_default() += 1;
            if matches!(cut, Cut::CommitReplyDropped | Cut::AfterCommit) {
                assert_eq!(
                    fired.server_committed,
                    Some(true),
                    "{test} run {run}: the server's whole reply to COMMIT arrived and said so"
                );
            }
            let body_runs = body_runs.load(Ordering::SeqCst);
            let last = body_runs.saturating_sub(1);
            let call = Call {
                kind: result.as_ref().err().map(Error::kind),
                rows: rig.count(&format!("k = {k}")),
                rows_of_last_attempt: rig.count(&format!("k = {k} AND attempt = {last}")),
                body_runs,
                retries: rig.db.stats().retries - retries_before,
            };
            if let Err(err) = &result {
                eprintln!("{test} run {run} retrying={retrying}: {err}");
            }
            runs.push(Run {
                run,
                retrying,
                call,
            });
            // The pool recovers: the next calls on the same facade succeed.
            let next = RECOVERY_KEYS + k;
            insert_once(&mut ctx, next, &AtomicUsize::new(0))
                .unwrap_or_else(|e| panic!("{test} run {run}: the next writer failed: {e}"));
            let seen = diesel_facade::read(&mut ctx, |ctx| {
                C::query_n(
                    ctx.conn().database_enforced(),
                    &format!("SELECT COUNT(*) AS n FROM proxy_rows WHERE k = {next}"),
                )
            })
            .unwrap_or_else(|e| panic!("{test} run {run}: the next reader failed: {e}"));
            assert_eq!(
                seen, 1,
                "{test} run {run}: the next reader sees the next writer"
            );
        }
    }
    assert_eq!(rig.proxy.armed(), None, "every armed cut fired");
    assert_eq!(
        rig.proxy.wait_fired(Duration::ZERO),
        None,
        "each cut fired once"
    );

    let mut outcome = Outcome {
        fault: fault_name(cut).to_owned(),
        backend: backend.to_owned(),
        ..Outcome::default()
    };
    for Run { call, .. } in &runs {
        outcome.runs += 1;
        match call.kind {
            None => outcome.ok += 1,
            Some(ErrorKind::CommitUnknown) => outcome.unknown += 1,
            Some(_) => outcome.failed += 1,
        }
        outcome.rows += u64::try_from(call.rows).expect("a count");
        outcome.lost += u64::from(call.kind.is_none() && call.rows == 0);
        outcome.false_commits +=
            u64::from(call.kind.is_some_and(|k| k != ErrorKind::CommitUnknown) && call.rows > 0);
    }
    let body_runs: usize = runs.iter().map(|r| r.call.body_runs).sum();
    let cut_at: Vec<String> = cut_at.iter().map(|(m, n)| format!("{m}:{n}")).collect();
    outcome.extra = format!(
        "retrying_calls={RUNS} body_runs={body_runs} retries={} cut_at={}",
        rig.db.stats().retries,
        cut_at.join(",").replace(' ', "_")
    );
    reliability(&outcome);
    assert_eq!(outcome.lost, 0, "an Ok call's row is missing: {runs:#?}");
    assert_eq!(
        outcome.false_commits, 0,
        "a failed call's row is present: {runs:#?}"
    );
    for Run { run, call, .. } in &runs {
        assert!(
            call.rows <= 1,
            "{test} run {run}: committed twice: {call:?}"
        );
        assert_eq!(
            call.rows, call.rows_of_last_attempt,
            "{test} run {run}: {call:?}"
        );
        if call.kind == Some(ErrorKind::CommitUnknown) {
            assert_eq!(
                (call.body_runs, call.retries),
                (1, 0),
                "{test} run {run}: re-run"
            );
        }
    }
    Some(runs)
}

/// Cut `RUNS` writers at `cut` and `pace` on `backend` (see
/// [`cut_point`]); every call did exactly what [`expected`] says.
fn check_cut<C>(cut: Cut, pace: Pace, backend: &str)
where
    C: Proxied,
    InsertRow: ExecuteDsl<C>,
{
    if let Some(runs) = cut_point::<C>(cut, pace, backend) {
        assert_expected(cut, pace, &runs);
    }
}

/// Every call did exactly what [`expected`] says for `cut` at `pace`.
fn assert_expected(cut: Cut, pace: Pace, runs: &[Run]) {
    for Run {
        run,
        retrying,
        call,
    } in runs
    {
        assert_eq!(
            *call,
            expected(cut, pace, *retrying),
            "{cut:?} {pace:?} run {run} (retrying: {retrying})"
        );
    }
}

/// Everything the client sent for one writer on a pooled connection (with
/// diesel's cached prepared INSERT), as the proxy read it: right after a
/// first writer gave the connection back, or after it sat idle.
fn traffic_of_a_writer<C>(backend: &str, pace: Pace) -> Option<Vec<String>>
where
    C: Proxied,
    InsertRow: ExecuteDsl<C>,
{
    let mut rig = rig::<C>(&format!("traffic_{pace:?}_{backend}"))?;
    let mut ctx = rig.db.context();
    insert_once(&mut ctx, 0, &AtomicUsize::new(0)).expect("a first writer");
    if pace == Pace::Idle {
        std::thread::sleep(IDLE_LONG_ENOUGH);
    }
    rig.proxy.take_log();
    insert_once(&mut ctx, 1, &AtomicUsize::new(0)).expect("a writer through the proxy");
    assert_eq!(rig.count("k = 1"), 1);
    Some(rig.proxy.take_log().iter().map(Sent::to_string).collect())
}

/// BEGIN (READ WRITE, for a writer) and COMMIT are simple queries; the
/// INSERT is a cached prepared statement. A connection in steady use is
/// not pinged at checkout: the writer sends only its own statements.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_writer_sends_begin_and_commit_as_simple_queries() {
    let Some(traffic) = traffic_of_a_writer::<diesel::PgConnection>("postgres", Pace::Steady)
    else {
        return;
    };
    assert_eq!(traffic, postgres_writer(false));
}

/// A connection that sat idle is pinged at checkout (`SELECT 1`, prepared
/// by diesel the first time) before the writer's statements.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_writer_on_an_idle_connection_pings_it_first() {
    let Some(traffic) = traffic_of_a_writer::<diesel::PgConnection>("postgres", Pace::Idle) else {
        return;
    };
    assert_eq!(traffic, postgres_writer(true));
}

/// `writer`'s messages, after `health_check`'s when the checkout pinged.
fn pinged_first(health_check: &[&str], writer: &[&str], ping: bool) -> Vec<String> {
    let ping = if ping { health_check } else { &[] };
    ping.iter().chain(writer).map(|s| (*s).to_owned()).collect()
}

fn postgres_writer(ping: bool) -> Vec<String> {
    let insert = r#"INSERT INTO "proxy_rows" ("k", "attempt") VALUES ($1, $2)"#;
    // The connection's first ping: diesel prepares it, then runs it.
    let health_check = [
        "Parse SELECT 1",
        "Sync",
        "Bind SELECT 1",
        "Describe",
        "Execute SELECT 1",
        "Sync",
    ];
    let writer = [
        "Query BEGIN READ WRITE",
        &format!("Bind {insert}"),
        "Describe",
        &format!("Execute {insert}"),
        "Sync",
        "Query COMMIT",
    ];
    pinged_first(&health_check, &writer, ping)
}

/// Plain MariaDB (not Galera): no savepoint around the writer. `BEGIN` and
/// `COMMIT` are prepared statements the connection caches, one round trip
/// each (diesel's `batch_execute` would bracket a COM_QUERY with two
/// COM_SET_OPTION round trips). A connection in steady use is not pinged
/// at checkout.
#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_writer_sends_begin_and_commit_as_cached_prepared_statements() {
    let Some(traffic) = traffic_of_a_writer::<diesel::MysqlConnection>("mariadb", Pace::Steady)
    else {
        return;
    };
    assert_eq!(traffic, mariadb_writer(false));
}

/// A connection that sat idle is pinged at checkout (`SELECT 1`, prepared
/// by diesel the first time) before the writer's statements.
#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_writer_on_an_idle_connection_pings_it_first() {
    let Some(traffic) = traffic_of_a_writer::<diesel::MysqlConnection>("mariadb", Pace::Idle)
    else {
        return;
    };
    assert_eq!(traffic, mariadb_writer(true));
}

fn mariadb_writer(ping: bool) -> Vec<String> {
    let insert = "INSERT INTO `proxy_rows` (`k`, `attempt`) VALUES (?, ?)";
    let writer = [
        "COM_STMT_EXECUTE BEGIN",
        &format!("COM_STMT_EXECUTE {insert}"),
        "COM_STMT_EXECUTE COMMIT",
    ];
    // The connection's first ping: diesel prepares it, then runs it.
    let health_check = ["COM_STMT_PREPARE SELECT 1", "COM_STMT_EXECUTE SELECT 1"];
    pinged_first(&health_check, &writer, ping)
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_cut_before_begin_after_a_ping_is_disconnected_and_retried_on_a_fresh_connection() {
    check_cut::<diesel::PgConnection>(Cut::BeforeBegin, Pace::Idle, "postgres");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_cut_before_begin_after_a_ping_is_disconnected_and_retried_on_a_fresh_connection() {
    check_cut::<diesel::MysqlConnection>(Cut::BeforeBegin, Pace::Idle, "mariadb");
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_cut_before_begin_in_steady_use_begins_on_another_connection_by_itself() {
    check_cut::<diesel::PgConnection>(Cut::BeforeBegin, Pace::Steady, "postgres");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_cut_before_begin_in_steady_use_begins_on_another_connection_by_itself() {
    check_cut::<diesel::MysqlConnection>(Cut::BeforeBegin, Pace::Steady, "mariadb");
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_cut_at_the_insert_is_disconnected_and_leaves_no_row() {
    check_cut::<diesel::PgConnection>(Cut::MidBody, Pace::Steady, "postgres");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_cut_at_the_insert_is_disconnected_and_leaves_no_row() {
    check_cut::<diesel::MysqlConnection>(Cut::MidBody, Pace::Steady, "mariadb");
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_commit_reply_dropped_is_commit_unknown_committed_once_and_never_rerun() {
    check_cut::<diesel::PgConnection>(Cut::CommitReplyDropped, Pace::Steady, "postgres");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_commit_reply_dropped_is_commit_unknown_committed_once_and_never_rerun() {
    check_cut::<diesel::MysqlConnection>(Cut::CommitReplyDropped, Pace::Steady, "mariadb");
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_cut_after_the_commit_reply_is_ok_with_the_row() {
    check_cut::<diesel::PgConnection>(Cut::AfterCommit, Pace::Steady, "postgres");
}

/// The server acknowledged COMMIT and the client library read its OK; the
/// connection closes after it. The facade's COMMIT is one prepared
/// statement (no `batch_execute`, whose closing COM_SET_OPTION would fail
/// here and be reported as the COMMIT's error): `Ok` with the row, the body
/// ran once and was never retried, and the next calls succeed.
#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_cut_after_the_commit_reply_is_ok_with_the_row() {
    check_cut::<diesel::MysqlConnection>(Cut::AfterCommit, Pace::Steady, "mariadb");
}

/// An application error the body built from the lost connection.
#[derive(Debug)]
enum AppError {
    Insert(Error),
    Facade(Error),
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        AppError::Facade(err)
    }
}

/// A writer whose body fails returns the body's own error: here the
/// application's, wrapping the lost connection at the cut INSERT.
fn the_body_s_error_reaches_the_caller<C>(backend: &str)
where
    C: Proxied,
    InsertRow: ExecuteDsl<C>,
{
    let Some(rig) = rig::<C>(&format!("body_error_{backend}")) else {
        return;
    };
    let mut ctx = rig.db.context();
    rig.proxy.arm(Cut::MidBody);
    let result = diesel_facade::write(&mut ctx, |ctx| {
        insert_row(ctx.conn(), 1, 0).map_err(|e| AppError::Insert(e.into()))
    });
    rig.proxy.wait_fired(FIRED_WITHIN).expect("the cut fired");
    match result {
        Err(AppError::Insert(err)) => assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}"),
        Err(AppError::Facade(err)) => panic!("the body's own error was replaced by: {err:?}"),
        Ok(()) => panic!("the INSERT was cut, yet the writer returned Ok"),
    }
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mariadb_the_body_s_own_error_reaches_the_caller_after_a_cut_at_the_insert() {
    the_body_s_error_reaches_the_caller::<diesel::MysqlConnection>("mariadb");
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_the_body_s_own_error_reaches_the_caller_after_a_cut_at_the_insert() {
    the_body_s_error_reaches_the_caller::<diesel::PgConnection>("postgres");
}

/// Dropping the proxy closes its port and ends every thread it started,
/// including the pumps of a pooled connection that is still open.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn a_dropped_proxy_leaves_no_thread_or_port_behind() {
    let Some(rig) = rig::<diesel::PgConnection>("proxy_teardown") else {
        return;
    };
    insert_once(&mut rig.db.context(), 1, &AtomicUsize::new(0)).expect("a writer");
    let (addr, live) = (rig.proxy.addr(), rig.proxy.live_threads());
    assert!(
        live.load(Ordering::SeqCst) >= 3,
        "the acceptor and the pumps of the pooled connection run"
    );
    let Rig {
        db,
        direct,
        proxy,
        _database,
    } = rig;
    drop(proxy);
    assert_eq!(live.load(Ordering::SeqCst), 0, "every proxy thread ended");
    assert_eq!(
        std::net::TcpStream::connect(addr)
            .map_err(|e| e.kind())
            .err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the proxy's port is closed"
    );
    drop((db, direct));
}
