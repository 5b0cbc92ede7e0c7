//! The contended-lock sweep: a locked counter increment (read the counter,
//! write it + 1, in one transaction) on 1, 2, 4, 8 and 16 threads, three
//! ways, on PostgreSQL, one MariaDB server and one Galera node:
//!
//! - **`ctx.lock`**: a `#[writer]` that takes `ctx.lock("counter")` (its
//!   row of the `locks` table: an `UPDATE` on PostgreSQL, with an upsert
//!   only for a name's first take; an upsert on MariaDB) and increments;
//!   on PostgreSQL also with `pg_lock_stamp(false)` (the row locked with
//!   `SELECT … FOR NO KEY UPDATE`, not written);
//! - **native**: the backend's own lock by hand with diesel and an r2d2
//!   pool: `pg_advisory_xact_lock` inside the transaction on PostgreSQL;
//!   `GET_LOCK` before `BEGIN` and `RELEASE_LOCK` after `COMMIT` on MariaDB
//!   (a session lock: releasing it before `COMMIT` would let the next holder
//!   read the old value). Not on Galera, which does not support `GET_LOCK`;
//! - **`FOR UPDATE`**: `SELECT … FOR UPDATE` on the counter row by hand.
//!
//! ```sh
//! scripts/test-servers start && source target/test-servers/env
//! cargo bench -p diesel-facade --features postgres,mysql --bench contended
//! ```
//!
//! Needs `FACADE_TEST_PG_URL`, `FACADE_TEST_MYSQL_URL` and
//! `FACADE_TEST_GALERA_URLS` (the first node is used); a backend whose
//! variable is unset or whose server does not answer is skipped with a line
//! saying so. Each backend gets a database of its own, `sweep_contended`,
//! dropped and recreated.
//!
//! Method (the paired one of `workloads.rs` and `replicas.rs`): for each
//! thread count, every method first runs untimed for a short warm-up (so
//! pools hold live connections for that many threads), then
//! `FACADE_BENCH_ROUNDS` (5) rounds, each running every method for
//! `FACADE_BENCH_POINT_MS` (500) ms, the order rotated from round to round.
//! increments/s is the median over rounds; each ratio (ctx.lock throughput /
//! the other's throughput) is the median of the per-round ratios, so load
//! that comes and goes hits both sides of a ratio alike. Every run, warm-ups
//! included, reads the counter before and after and **panics if it did not
//! grow by exactly the number of committed increments** (a lost update).
//! Failed transactions are counted and shown, not retried.
//!
//! Then, single-threaded, what each lock costs per take in log bytes:
//! `FACADE_BENCH_WAL_TAKES` (200) takes of each method and of the same
//! transaction without a lock, `FACADE_BENCH_WAL_REPS` (5) times interleaved,
//! minimum per take (the logs are server-wide, so other clients only add):
//! PostgreSQL WAL (`pg_current_wal_insert_lsn()`), MariaDB binlog
//! (`SHOW MASTER STATUS`, when binary logging is on) and InnoDB redo
//! (`Innodb_lsn_current`), Galera write-set bytes (`wsrep_replicated_bytes`).
//! A lock's own cost is its method's bytes minus those of its unlocked twin:
//! `ctx.lock` minus a `#[writer]` that only increments (so the facade's own
//! statements, such as the Galera guard's, are not counted as the
//! lock's), the hand-written locks minus the hand-written transaction. The
//! same phase prints the median µs per take, single-threaded.
//!
//! Output: markdown tables on stdout and an SVG plot (one panel per backend)
//! at `FACADE_BENCH_PLOT` (default `docs/img/contended-lock.svg`; empty: no
//! plot). Other switches: `FACADE_BENCH_THREADS` (`1,2,4,8,16`),
//! `FACADE_BENCH_BACKENDS` (`pg,mysql,galera`). The defaults take about
//! two and a half minutes.

#[path = "../common/mod.rs"]
mod common;
mod log_bytes;
mod methods;
mod report;
mod sweep;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{MysqlConnection, PgConnection};
use diesel_facade::{Facade, FacadeBuilder, SupportedConnection};

use common::redact;
use log_bytes::{mysql_binlog_meter, mysql_status_meter, pg_wal_meter, LogBytes, Meter};
use methods::{mysql, mysql_methods, pg, pg_methods, Method, Role};
use sweep::{
    counted_facade, counted_sides, one_line, statements, Point, Settings, StatementCounter,
};

/// Connections per pool: enough for the largest thread count.
const POOL_SIZE: u32 = 16;
/// The bench database on each server.
const DATABASE: &str = "sweep_contended";

const SCHEMA: &str = "
    CREATE TABLE counters (id VARCHAR(50) PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters (id, value) VALUES ('c', 0);
";

fn with_database(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("the server URL parses");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

/// A fresh `sweep_contended` database with the counter and the `locks`
/// table, or `None` (with a line saying why) when the server does not
/// answer.
fn fresh_database<C>(label: &str, admin_url: &str, drop_sql: &str) -> Option<String>
where
    C: SupportedConnection,
{
    let mut admin = match C::establish(admin_url) {
        Ok(conn) => conn,
        Err(err) => {
            println!(
                "{label}: SKIPPED, {} does not answer ({})",
                redact(admin_url),
                one_line(&err.to_string())
            );
            return None;
        }
    };
    admin
        .batch_execute(drop_sql)
        .and_then(|()| admin.batch_execute(&format!("CREATE DATABASE {DATABASE}")))
        .expect("recreate the bench database");
    let url = with_database(admin_url, DATABASE);
    C::establish(&url)
        .expect("connect to the bench database")
        .batch_execute(SCHEMA)
        .expect("create the counter");
    Facade::<C>::builder()
        .writer(url.as_str())
        .max_pool_size(1)
        .build()
        .expect("facade for the migrations")
        .run_migrations()
        .expect("create the locks table");
    println!("{label}: {}", redact(&url));
    Some(url)
}

fn facade<C: SupportedConnection>(
    url: &str,
    configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> Facade<C> {
    configure(Facade::<C>::builder().writer(url))
        .max_pool_size(POOL_SIZE)
        .pool_timeout(Duration::from_secs(30))
        .build()
        .expect("build the facade")
}

fn base_pool<C>(url: &str) -> Pool<ConnectionManager<C>>
where
    C: SupportedConnection + diesel::r2d2::R2D2Connection,
{
    // r2d2's defaults otherwise (test_on_check_out on; the facade pings
    // only a connection idle for 500 ms or more).
    Pool::builder()
        .max_size(POOL_SIZE)
        .connection_timeout(Duration::from_secs(30))
        .build(ConnectionManager::<C>::new(url))
        .expect("build the baseline pool")
}

/// Everything measured on one backend.
struct BackendResult {
    label: &'static str,
    /// The swept methods, in sweep order.
    methods: Vec<(&'static str, Role)>,
    statements: Vec<f64>,
    points: Vec<Point>,
    log: LogBytes,
    log_note: Option<&'static str>,
}

/// One backend, ready to measure: its methods on the timed pools, the same
/// methods on the statement-counting pools, and its log meters.
struct Backend<'a> {
    label: &'static str,
    methods: Vec<Method<'a>>,
    counted: Vec<Method<'a>>,
    counted_statements: &'a StatementCounter,
    counter: Box<dyn Fn() -> i64 + 'a>,
    meters: Vec<Meter<'a>>,
    log_note: Option<&'static str>,
}

fn measure(backend: &Backend<'_>, settings: &Settings) -> BackendResult {
    let label = backend.label;
    let swept: Vec<&Method<'_>> = backend.methods.iter().filter(|m| m.role.swept()).collect();
    let statements = statements(&backend.counted, backend.counted_statements);
    println!("{label}: sweeping {} methods", swept.len());
    let points = sweep::points(label, &swept, &*backend.counter, settings);
    let log = log_bytes::per_take(&backend.methods, &backend.meters, settings);
    BackendResult {
        label,
        methods: swept.iter().map(|m| (m.name, m.role)).collect(),
        statements: backend
            .methods
            .iter()
            .zip(statements)
            .filter(|(m, _)| m.role.swept())
            .map(|(_, s)| s)
            .collect(),
        points,
        log,
        log_note: backend.log_note,
    }
}

fn bench_pg(settings: &Settings) -> Option<BackendResult> {
    const LABEL: &str = "PostgreSQL 15";
    let Ok(admin) = std::env::var("FACADE_TEST_PG_URL") else {
        println!("{LABEL}: SKIPPED, FACADE_TEST_PG_URL is not set");
        return None;
    };
    let drop_sql = format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)");
    let url = fresh_database::<PgConnection>(LABEL, &admin, &drop_sql)?;
    let db = facade::<PgConnection>(&url, |b| b);
    let unstamped = facade::<PgConnection>(&url, |b| b.pg_lock_stamp(false));
    let pool = base_pool::<PgConnection>(&url);
    let counted = counted_sides::<PgConnection>(&url);
    let counted_unstamped =
        counted_facade::<PgConnection>(&url, &counted.counter, |b| b.pg_lock_stamp(false));
    let backend = Backend {
        label: LABEL,
        methods: pg_methods(&db, &unstamped, &pool),
        counted: pg_methods(&counted.db, &counted_unstamped, &counted.pool),
        counted_statements: &counted.counter,
        counter: Box::new(|| pg::counter_value(&pool)),
        meters: vec![pg_wal_meter(&url)],
        log_note: None,
    };
    Some(measure(&backend, settings))
}

fn bench_mysql(settings: &Settings, galera: bool) -> Option<BackendResult> {
    let (label, var) = if galera {
        ("Galera node (MariaDB 10.11)", "FACADE_TEST_GALERA_URLS")
    } else {
        ("MariaDB 10.11", "FACADE_TEST_MYSQL_URL")
    };
    let Ok(urls) = std::env::var(var) else {
        println!("{label}: SKIPPED, {var} is not set");
        return None;
    };
    let admin = urls.split(',').next().unwrap_or_default().to_owned();
    let drop_sql = format!("DROP DATABASE IF EXISTS {DATABASE}");
    let url = fresh_database::<MysqlConnection>(label, &admin, &drop_sql)?;
    let db = facade::<MysqlConnection>(&url, |b| b);
    let pool = base_pool::<MysqlConnection>(&url);
    let counted = counted_sides::<MysqlConnection>(&url);
    let binlog = mysql_binlog_meter(&url);
    let log_note = match (&binlog, galera) {
        (None, true) => Some(
            "binary logging is off on the Galera nodes (log_bin = OFF); \
             wsrep_replicated_bytes counts the write-sets instead",
        ),
        (None, false) => Some("binary logging is off on this server (log_bin = OFF)"),
        (Some(_), _) => None,
    };
    let mut meters: Vec<Meter<'_>> = binlog.into_iter().collect();
    if galera {
        // Not the redo log here: a node's redo also grows with the
        // write-sets it applies for the other nodes, whatever this client
        // does, so its minimum is not this transaction's.
        meters.push(mysql_status_meter(
            &url,
            "write-set bytes",
            "WSREP_REPLICATED_BYTES",
        ));
    } else {
        meters.push(mysql_status_meter(
            &url,
            "InnoDB redo bytes",
            "INNODB_LSN_CURRENT",
        ));
    }
    let backend = Backend {
        label,
        methods: mysql_methods(&db, &pool, galera),
        counted: mysql_methods(&counted.db, &counted.pool, galera),
        counted_statements: &counted.counter,
        counter: Box::new(|| mysql::counter_value(&pool)),
        meters,
        log_note,
    };
    Some(measure(&backend, settings))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn plot_path() -> Option<PathBuf> {
    match std::env::var("FACADE_BENCH_PLOT") {
        Ok(path) if path.is_empty() => None,
        Ok(path) => Some(PathBuf::from(path)),
        Err(_) => Some(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace directory")
                .join("docs/img/contended-lock.svg"),
        ),
    }
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "load average at start: {}; CPUs this process may run on: {cpus}",
        loadavg()
    );
    let settings = Settings::from_env();
    let backends =
        std::env::var("FACADE_BENCH_BACKENDS").unwrap_or_else(|_| "pg,mysql,galera".to_owned());
    let started = Instant::now();
    let mut results = Vec::new();
    for backend in backends.split(',').map(str::trim) {
        let result = match backend {
            "pg" => bench_pg(&settings),
            "mysql" => bench_mysql(&settings, false),
            "galera" => bench_mysql(&settings, true),
            other => panic!("FACADE_BENCH_BACKENDS: unknown backend {other} (pg, mysql, galera)"),
        };
        results.extend(result);
    }
    println!();
    println!(
        "== contended counter increment, {} threads; ratios are ctx.lock throughput / \
         the other's (issue 12's target: >= 0.80 against the native lock) ==",
        settings
            .threads
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for result in &results {
        report::print_sweep(result, &settings);
    }
    for result in &results {
        report::print_log_bytes(result, &settings);
    }
    let load = loadavg();
    println!();
    println!(
        "load average at end: {load}; whole run {:.0} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = plot_path() {
        if results.is_empty() {
            println!("no backend was measured: no plot");
            return;
        }
        let subtitle = format!(
            "{cpus} CPUs shared with other work (load {load} at the end); median of {} rounds \
             of {} ms per point",
            settings.rounds,
            settings.point.as_millis()
        );
        match report::plot(&path, &results, &subtitle) {
            Ok(()) => println!("plot: {}", path.display()),
            Err(err) => panic!("could not write the plot {}: {err}", path.display()),
        }
    }
}
