//! The benchmark workloads of docs/performance.md ("What is measured"),
//! facade against hand-written diesel.
//!
//! ```text
//! cargo bench -p diesel-facade --features sqlite,postgres,mysql --bench workloads
//! ```
//!
//! For each backend (a SQLite file in WAL mode with `synchronous = NORMAL`
//! under `target/`; PostgreSQL at `FACADE_TEST_PG_URL`, one MariaDB server
//! at `FACADE_TEST_MYSQL_URL` and one Galera node, the first URL of
//! `FACADE_TEST_GALERA_URLS`, each when it answers) this sets up the
//! benchmark schema in a database of its own, then measures, in one
//! process run:
//!
//! - **W1 read**: a `#[reader]` selecting one item by primary key;
//! - **W2 composed**: a `#[writer]` that calls the W1 reader, updates the
//!   item's `qty` and calls the reader again;
//! - **W3 lock**: a `#[writer]` that takes `ctx.lock("counter")`, reads the
//!   counter and writes it back plus one;
//! - **PostgreSQL contended lock**: 4 threads incrementing the counter under
//!   `ctx.lock("counter")`, against the same increment under
//!   `pg_advisory_xact_lock(42)`.
//!
//! The baseline is what a careful diesel user writes by hand: `pool.get()`
//! from a plain `r2d2::Pool<ConnectionManager<C>>` of the same size (r2d2's
//! defaults, so `test_on_check_out` pings at every checkout; the facade
//! pings only a connection idle for 500 ms or more, which these loops never
//! leave one, and lets `BEGIN` find a dead one), the same
//! `BEGIN` the facade sends (through `AnsiTransactionManager::
//! begin_transaction_sql`, diesel's `batch_execute`; on MySQL/MariaDB the
//! facade sends it, and `COMMIT`, as cached prepared statements instead),
//! the same diesel statements, and `TransactionManager::commit_transaction`.
//! On a Galera node the baseline is the one-server MariaDB transaction: the
//! facade's Galera write guard (a temporary row armed right after `BEGIN`
//! and checked right before `COMMIT`, and `autocommit = 0` on its sessions)
//! is what those rows measure.
//!
//! Criterion runs first (facade and baseline side by side per group). Then
//! a compact summary is printed from the bench's own timed loops:
//! `FACADE_BENCH_PAIRS` (default 21) pairs of back-to-back blocks of about
//! `FACADE_BENCH_BLOCK_MS` (default 40) ms per side, alternating which side
//! goes first; calls/s from the median block of each side, and the ratio as
//! the median over pairs of facade time / baseline time, so load from other
//! processes that comes and goes cancels out. The contended row uses
//! `FACADE_BENCH_CONTENDED_PAIRS` (9) pairs of `FACADE_BENCH_CONTENDED_OPS`
//! (400) increments, and checks that no increment was lost. Each row also
//! shows the statements one call sends on each side, counted by diesel's
//! instrumentation on separate, counted pools.
//!
//! Other switches: `FACADE_BENCH_BACKENDS` (default
//! `sqlite,postgres,mariadb,galera`) picks backends;
//! `FACADE_BENCH_SKIP_CRITERION=1` prints only the summary;
//! `FACADE_BENCH_SHOW_SQL=1` prints the statements of one call of each
//! workload; `FACADE_BENCH_ONLY=w1/sqlite/facade` (any of w1|w2|w3,
//! sqlite|postgres|mariadb|galera, facade|baseline) runs only that loop
//! `FACADE_BENCH_CALLS` times, for a profiler.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::Text;
use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_facade::{reader, writer, Context, Facade};

use common::{env_u64, in_transaction, median, redact};

diesel::table! {
    items (id) {
        id -> Integer,
        name -> Text,
        qty -> Integer,
    }
}

diesel::table! {
    counters (id) {
        id -> Text,
        value -> Integer,
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = items)]
pub struct Item {
    pub id: i32,
    pub name: String,
    pub qty: i32,
}

/// Connections per pool, the same on both sides.
const POOL_SIZE: u32 = 4;
/// Rows of `items`.
const ITEMS: i32 = 1000;
/// The lock name of W3 and the contended benchmark.
const LOCK_NAME: &str = "counter";
/// Threads of the contended benchmark.
const THREADS: usize = 4;

/// The facade's lock statements, copied from `facade/src/backend/sqlite.rs`,
/// `pg.rs` and `mysql/mod.rs`.
const SQLITE_LOCK_UPSERT: &str = "INSERT INTO locks (id, ts) VALUES (?, CURRENT_TIMESTAMP) \
                                  ON CONFLICT (id) DO UPDATE SET ts = excluded.ts";
const PG_LOCK_UPDATE: &str = "UPDATE locks SET ts = now() AT TIME ZONE 'UTC' WHERE id = $1";
const PG_LOCK_UPSERT: &str = "INSERT INTO locks (id, ts) VALUES ($1, now() AT TIME ZONE 'UTC') \
                              ON CONFLICT (id) DO UPDATE SET ts = excluded.ts";
const MYSQL_LOCK_UPSERT: &str = "INSERT INTO locks (id, ts) VALUES (?, UTC_TIMESTAMP()) \
                                 ON DUPLICATE KEY UPDATE ts = IF(VALUES(ts) > ts, VALUES(ts), ts + INTERVAL 1 SECOND)";

/// The baselines' lock, as each backend of the facade takes it.
fn sqlite_lock(conn: &mut SqliteConnection) -> QueryResult<()> {
    diesel::sql_query(SQLITE_LOCK_UPSERT)
        .bind::<Text, _>(LOCK_NAME)
        .execute(conn)
        .map(drop)
}

/// PostgreSQL updates the lock's row and upserts only when it is missing.
fn pg_lock(conn: &mut PgConnection) -> QueryResult<()> {
    let updated = diesel::sql_query(PG_LOCK_UPDATE)
        .bind::<Text, _>(LOCK_NAME)
        .execute(conn)?;
    if updated == 0 {
        diesel::sql_query(PG_LOCK_UPSERT)
            .bind::<Text, _>(LOCK_NAME)
            .execute(conn)?;
    }
    Ok(())
}

fn mysql_lock(conn: &mut MysqlConnection) -> QueryResult<()> {
    diesel::sql_query(MYSQL_LOCK_UPSERT)
        .bind::<Text, _>(LOCK_NAME)
        .execute(conn)
        .map(drop)
}

const SCHEMA: &str = "
    CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL);
    CREATE TABLE counters (id VARCHAR(50) PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters (id, value) VALUES ('c', 0);
";

fn item_id(i: u64) -> i32 {
    1 + (i % ITEMS as u64) as i32
}

/// The facade functions and their hand-written twins for one connection type.
macro_rules! workloads {
    (
        $module:ident, $conn:ty,
        read_begin = $read_begin:expr,
        write_begin = $write_begin:expr,
        take_lock = $take_lock:path $(,)?
    ) => {
        pub mod $module {
            use super::*;

            pub type Conn = $conn;
            pub type Ctx = Context<Conn>;
            pub type BasePool = Pool<ConnectionManager<Conn>>;

            // ---- the facade side --------------------------------------

            /// W1.
            #[reader]
            pub fn get_item(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
                items::table
                    .find(id)
                    .select(Item::as_select())
                    .first(ctx.conn())
            }

            /// W2.
            #[writer]
            pub fn restock(ctx: &mut Ctx, id: i32) -> QueryResult<Item> {
                let item = get_item(ctx, id)?;
                diesel::update(items::table.find(id))
                    .set(items::qty.eq(item.qty + 1))
                    .execute(ctx.conn())?;
                get_item(ctx, id)
            }

            /// W3 (and the facade side of the contended benchmark).
            #[writer]
            pub fn bump_counter(ctx: &mut Ctx) -> Result<i32, diesel_facade::Error> {
                ctx.lock(LOCK_NAME)?;
                let value: i32 = counters::table
                    .find("c")
                    .select(counters::value)
                    .first(ctx.conn())?;
                diesel::update(counters::table.find("c"))
                    .set(counters::value.eq(value + 1))
                    .execute(ctx.conn())?;
                Ok(value + 1)
            }

            // ---- the baseline: the same statements by hand ------------

            pub fn select_item(conn: &mut Conn, id: i32) -> QueryResult<Item> {
                items::table.find(id).select(Item::as_select()).first(conn)
            }

            pub fn increment_counter(conn: &mut Conn) -> QueryResult<i32> {
                let value: i32 = counters::table
                    .find("c")
                    .select(counters::value)
                    .first(conn)?;
                diesel::update(counters::table.find("c"))
                    .set(counters::value.eq(value + 1))
                    .execute(conn)?;
                Ok(value + 1)
            }

            pub fn base_get_item(pool: &BasePool, id: i32) -> QueryResult<Item> {
                let mut conn = pool.get().expect("baseline checkout");
                in_transaction(&mut *conn, $read_begin, |conn| select_item(conn, id))
            }

            pub fn base_restock(pool: &BasePool, id: i32) -> QueryResult<Item> {
                let mut conn = pool.get().expect("baseline checkout");
                in_transaction(&mut *conn, $write_begin, |conn| {
                    let item = select_item(conn, id)?;
                    diesel::update(items::table.find(id))
                        .set(items::qty.eq(item.qty + 1))
                        .execute(conn)?;
                    select_item(conn, id)
                })
            }

            pub fn base_bump_counter(pool: &BasePool) -> QueryResult<i32> {
                let mut conn = pool.get().expect("baseline checkout");
                in_transaction(&mut *conn, $write_begin, |conn| {
                    $take_lock(conn)?;
                    increment_counter(conn)
                })
            }

            pub fn counter_value(pool: &BasePool) -> i32 {
                counters::table
                    .find("c")
                    .select(counters::value)
                    .first(&mut *pool.get().expect("checkout"))
                    .expect("read the counter")
            }
        }
    };
}

// The facade's SQLite reader begins with a plain BEGIN (it keeps `PRAGMA
// query_only` on between readers, so a run of readers sends only BEGIN);
// its writer uses BEGIN IMMEDIATE. PostgreSQL: BEGIN READ ONLY / BEGIN.
// MySQL/MariaDB: START TRANSACTION READ ONLY / BEGIN, on one server and on
// a Galera node alike: there the facade's writer adds its guard (an
// `UPDATE` of a temporary row in the `BEGIN` batch and one in the `COMMIT`
// batch, and `autocommit = 0` on its sessions), which is the cost the
// Galera rows measure, so the baseline leaves it out.
workloads!(
    sqlite,
    SqliteConnection,
    read_begin = "BEGIN",
    write_begin = "BEGIN IMMEDIATE",
    take_lock = sqlite_lock
);
workloads!(
    pg,
    PgConnection,
    read_begin = "BEGIN READ ONLY",
    write_begin = "BEGIN READ WRITE",
    take_lock = pg_lock
);
workloads!(
    mysql,
    MysqlConnection,
    read_begin = "START TRANSACTION READ ONLY",
    write_begin = "BEGIN",
    take_lock = mysql_lock
);

/// The baseline side of the contended benchmark: the same increment,
/// serialized by a transaction-scoped advisory lock instead of the locks
/// table.
fn base_bump_counter_advisory(pool: &pg::BasePool) -> QueryResult<i32> {
    let mut conn = pool.get().expect("baseline checkout");
    in_transaction(&mut *conn, "BEGIN", |conn| {
        diesel::sql_query("SELECT pg_advisory_xact_lock(42)").execute(conn)?;
        pg::increment_counter(conn)
    })
}

// ------------------------------------------------------------------ set-up

/// Per-connection settings of the baseline pool. For SQLite these are the
/// facade's defaults (busy timeout, foreign keys, WAL, synchronous=NORMAL),
/// so both sides run the same database configuration.
#[derive(Debug)]
struct SessionSetup {
    sql: &'static str,
    counter: Option<Arc<StatementCounter>>,
}

impl<C: Connection> CustomizeConnection<C, diesel::r2d2::Error> for SessionSetup {
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        if !self.sql.is_empty() {
            conn.batch_execute(self.sql)
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        if let Some(counter) = &self.counter {
            conn.set_instrumentation(counter.instrumentation());
        }
        Ok(())
    }
}

const SQLITE_SESSION: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                              PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// Counts the statements diesel sends (every `StartQuery`, which includes
/// `BEGIN`, `COMMIT` and a checkout ping) and optionally records them.
#[derive(Debug, Default)]
struct StatementCounter {
    count: AtomicUsize,
    log: Mutex<Option<Vec<String>>>,
}

impl StatementCounter {
    fn instrumentation(self: &Arc<Self>) -> Box<dyn Instrumentation> {
        let me = Arc::clone(self);
        Box::new(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                me.count.fetch_add(1, Ordering::Relaxed);
                if let Some(log) = me.log.lock().expect("log").as_mut() {
                    log.push(query.to_string());
                }
            }
        })
    }

    fn take(&self) -> usize {
        self.count.swap(0, Ordering::Relaxed)
    }

    fn start_log(&self) {
        *self.log.lock().expect("log") = Some(Vec::new());
    }

    fn stop_log(&self) -> Vec<String> {
        self.log.lock().expect("log").take().unwrap_or_default()
    }
}

fn seed(conn: &mut impl SimpleConnection) -> QueryResult<()> {
    conn.batch_execute(SCHEMA)?;
    let values: Vec<String> = (1..=ITEMS)
        .map(|id| format!("({id}, 'item {id}', 0)"))
        .collect();
    conn.batch_execute(&format!(
        "INSERT INTO items (id, name, qty) VALUES {}",
        values.join(", ")
    ))
}

fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace directory")
                .join("target")
        })
}

struct Sides<C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection> {
    db: Facade<C>,
    pool: Pool<ConnectionManager<C>>,
    /// The same two sides again, with a statement counter on every
    /// connection (kept apart so the timed pools carry no extra
    /// instrumentation).
    counted_db: Facade<C>,
    counted_pool: Pool<ConnectionManager<C>>,
    facade_counter: Arc<StatementCounter>,
    base_counter: Arc<StatementCounter>,
}

fn build_sides<C>(url: &str, session_sql: &'static str) -> Sides<C>
where
    C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection,
{
    let facade = |counter: Option<Arc<StatementCounter>>| {
        let mut builder = Facade::<C>::builder()
            .writer(url)
            .max_pool_size(POOL_SIZE)
            .pool_timeout(Duration::from_secs(30));
        if let Some(counter) = counter {
            builder = builder.instrumentation(move || counter.instrumentation());
        }
        builder.build().expect("build the facade")
    };
    let pool = |counter: Option<Arc<StatementCounter>>| {
        Pool::builder()
            .max_size(POOL_SIZE)
            .connection_customizer(Box::new(SessionSetup {
                sql: session_sql,
                counter,
            }))
            .build(ConnectionManager::<C>::new(url))
            .expect("build the baseline pool")
    };
    let facade_counter = Arc::new(StatementCounter::default());
    let base_counter = Arc::new(StatementCounter::default());
    let db = facade(None);
    db.run_migrations()
        .expect("run the facade's migrations (locks table)");
    Sides {
        db,
        pool: pool(None),
        counted_db: facade(Some(Arc::clone(&facade_counter))),
        counted_pool: pool(Some(Arc::clone(&base_counter))),
        facade_counter,
        base_counter,
    }
}

fn setup_sqlite() -> Sides<SqliteConnection> {
    let dir = target_dir().join("bench-workloads");
    std::fs::create_dir_all(&dir).expect("create target/bench-workloads");
    let path = dir.join("workloads.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let url = path.to_str().expect("UTF-8 path").to_owned();
    let mut conn = SqliteConnection::establish(&url).expect("create the SQLite file");
    conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .expect("WAL");
    seed(&mut conn).expect("seed SQLite");
    drop(conn);
    println!("SQLite: {url} (WAL, synchronous=NORMAL on both sides)");
    build_sides(&url, SQLITE_SESSION)
}

/// A server backend of the bench: where its URL comes from and how its
/// database is dropped.
struct Server {
    label: &'static str,
    /// The environment variable holding its URL (the first of a
    /// comma-separated list is used: one Galera node).
    var: &'static str,
    drop_database: &'static str,
    analyze: &'static str,
}

const DATABASE: &str = "facade_bench_workloads";

const PG_SERVER: Server = Server {
    label: "PostgreSQL",
    var: "FACADE_TEST_PG_URL",
    drop_database: "DROP DATABASE IF EXISTS facade_bench_workloads WITH (FORCE)",
    analyze: "ANALYZE items; ANALYZE counters",
};
const MYSQL_SERVER: Server = Server {
    label: "MariaDB (one server)",
    var: "FACADE_TEST_MYSQL_URL",
    drop_database: "DROP DATABASE IF EXISTS facade_bench_workloads",
    analyze: "ANALYZE TABLE items, counters",
};
const GALERA_SERVER: Server = Server {
    label: "Galera node",
    var: "FACADE_TEST_GALERA_URLS",
    drop_database: "DROP DATABASE IF EXISTS facade_bench_workloads",
    analyze: "ANALYZE TABLE items, counters",
};

/// `None` (with a line saying why) when the server is not configured or not
/// reachable.
fn setup_server<C>(server: &Server) -> Option<Sides<C>>
where
    C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection,
{
    let label = server.label;
    let Ok(urls) = std::env::var(server.var) else {
        println!(
            "{label}: SKIPPED, {} is not set (start servers with \
             `scripts/test-servers start` and `source target/test-servers/env`)",
            server.var
        );
        return None;
    };
    let admin = urls.split(',').next().unwrap_or_default().trim().to_owned();
    let mut conn = match C::establish(&admin) {
        Ok(conn) => conn,
        Err(err) => {
            let reason = err
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "{label}: SKIPPED, {} is not reachable ({reason})",
                redact(&admin)
            );
            return None;
        }
    };
    // A database of its own for each run; fall back to recreating the
    // tables in the given database if the user may not create databases.
    let created = conn
        .batch_execute(server.drop_database)
        .and_then(|()| conn.batch_execute(&format!("CREATE DATABASE {DATABASE}")));
    let url = match created {
        Ok(()) => {
            let mut parsed = url::Url::parse(&admin).expect("the server URL parses");
            parsed.set_path(&format!("/{DATABASE}"));
            parsed.to_string()
        }
        Err(err) => {
            println!("{label}: cannot create a database ({err}); recreating the tables instead");
            conn.batch_execute("DROP TABLE IF EXISTS items, counters, locks")
                .expect("drop the old tables");
            // The locks table's migration must run again.
            let _ = conn
                .batch_execute("DELETE FROM __diesel_schema_migrations WHERE version LIKE '2015%'");
            admin.clone()
        }
    };
    drop(conn);
    let mut conn = C::establish(&url).expect("connect to the bench database");
    seed(&mut conn).unwrap_or_else(|err| panic!("seed {label}: {err}"));
    conn.batch_execute(server.analyze).expect("analyze");
    drop(conn);
    println!("{label}: {}", redact(&url));
    Some(build_sides(&url, ""))
}

// ------------------------------------------------------------------ criterion

fn criterion_groups<C>(c: &mut Criterion, label: &str, sides: &Sides<C>, w: &WorkloadFns<C>)
where
    C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection,
{
    for (name, facade_fn, base_fn) in w.list() {
        let mut group = c.benchmark_group(format!("{name}/{label}"));
        group.throughput(Throughput::Elements(1));
        let mut ctx = sides.db.context();
        let mut i = 0u64;
        group.bench_function("facade", |b| {
            b.iter(|| {
                i += 1;
                facade_fn(&mut ctx, i)
            })
        });
        let mut i = 0u64;
        group.bench_function("baseline", |b| {
            b.iter(|| {
                i += 1;
                base_fn(&sides.pool, i)
            })
        });
        group.finish();
    }
}

type FacadeFn<C> = fn(&mut Context<C>, u64);
type BaseFn<C> = fn(&Pool<ConnectionManager<C>>, u64);

struct WorkloadFns<C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection> {
    w1: (FacadeFn<C>, BaseFn<C>),
    w2: (FacadeFn<C>, BaseFn<C>),
    w3: (FacadeFn<C>, BaseFn<C>),
}

impl<C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection> WorkloadFns<C> {
    fn list(&self) -> [(&'static str, FacadeFn<C>, BaseFn<C>); 3] {
        [
            ("W1 read", self.w1.0, self.w1.1),
            ("W2 composed", self.w2.0, self.w2.1),
            ("W3 lock", self.w3.0, self.w3.1),
        ]
    }
}

macro_rules! workload_fns {
    ($module:ident) => {
        WorkloadFns {
            w1: (
                |ctx, i| {
                    black_box($module::get_item(ctx, item_id(i)).expect("facade W1"));
                },
                |pool, i| {
                    black_box($module::base_get_item(pool, item_id(i)).expect("baseline W1"));
                },
            ),
            w2: (
                |ctx, i| {
                    black_box($module::restock(ctx, item_id(i)).expect("facade W2"));
                },
                |pool, i| {
                    black_box($module::base_restock(pool, item_id(i)).expect("baseline W2"));
                },
            ),
            w3: (
                |ctx, _| {
                    black_box($module::bump_counter(ctx).expect("facade W3"));
                },
                |pool, _| {
                    black_box($module::base_bump_counter(pool).expect("baseline W3"));
                },
            ),
        }
    };
}

/// Run `ops` increments on `THREADS` threads (as evenly as possible), all
/// released together; the wall time from release to the last thread done.
fn contended(ops: u64, run: impl Fn(u64) + Sync) -> Duration {
    let barrier = Barrier::new(THREADS + 1);
    let per_thread = ops.div_ceil(THREADS as u64);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    run(per_thread);
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        for handle in handles {
            handle.join().expect("bench thread");
        }
        let elapsed = start.elapsed();
        // Report the time for exactly `ops` increments.
        elapsed.mul_f64(ops as f64 / (per_thread * THREADS as u64) as f64)
    })
}

fn facade_contended(db: &Facade<PgConnection>, per_thread: u64) {
    let mut ctx = db.context();
    for _ in 0..per_thread {
        black_box(pg::bump_counter(&mut ctx).expect("facade contended increment"));
    }
}

fn advisory_contended(pool: &pg::BasePool, per_thread: u64) {
    for _ in 0..per_thread {
        black_box(base_bump_counter_advisory(pool).expect("advisory contended increment"));
    }
}

fn criterion_contended(c: &mut Criterion, sides: &Sides<PgConnection>) {
    let mut group = c.benchmark_group(format!("PG contended lock ({THREADS} threads)"));
    group.throughput(Throughput::Elements(1));
    group.bench_function("facade ctx.lock", |b| {
        b.iter_custom(|iters| contended(iters, |n| facade_contended(&sides.db, n)))
    });
    group.bench_function("baseline pg_advisory_xact_lock", |b| {
        b.iter_custom(|iters| contended(iters, |n| advisory_contended(&sides.pool, n)))
    });
    group.finish();
}

// ------------------------------------------------------------------ summary

struct Row {
    workload: String,
    backend: &'static str,
    /// Per-call nanoseconds of each block, paired by index.
    facade_blocks: Vec<f64>,
    base_blocks: Vec<f64>,
    statements: Option<(f64, f64)>,
}

impl Row {
    fn facade_ns(&self) -> f64 {
        median(&self.facade_blocks)
    }

    fn base_ns(&self) -> f64 {
        median(&self.base_blocks)
    }

    /// The median over pairs of facade time / baseline time: each pair ran
    /// back to back, so load that comes and goes cancels out.
    fn ratio(&self) -> f64 {
        let ratios: Vec<f64> = self
            .facade_blocks
            .iter()
            .zip(&self.base_blocks)
            .map(|(f, b)| f / b)
            .collect();
        median(&ratios)
    }
}

fn pairs() -> u64 {
    env_u64("FACADE_BENCH_PAIRS", 21).max(1)
}

/// `pairs` back-to-back blocks of `calls` calls per side, alternating which
/// side goes first; per-call nanoseconds of each block.
fn blocks(
    pairs: u64,
    calls: u64,
    mut facade: impl FnMut(u64),
    mut base: impl FnMut(u64),
) -> (Vec<f64>, Vec<f64>) {
    let mut f = Vec::new();
    let mut b = Vec::new();
    let mut i = 0u64;
    let time = |run: &mut dyn FnMut(u64), i: &mut u64| {
        let start = Instant::now();
        for _ in 0..calls {
            *i += 1;
            run(*i);
        }
        start.elapsed().as_nanos() as f64 / calls as f64
    };
    for pair in 0..pairs {
        if pair % 2 == 0 {
            f.push(time(&mut facade, &mut i));
            b.push(time(&mut base, &mut i));
        } else {
            b.push(time(&mut base, &mut i));
            f.push(time(&mut facade, &mut i));
        }
    }
    (f, b)
}

/// Calls per block so that one block of one side takes about `target`.
fn calibrate(target: Duration, mut run: impl FnMut(u64)) -> u64 {
    let probe = 100;
    let start = Instant::now();
    for i in 0..probe {
        run(i);
    }
    let per_call = start.elapsed().as_secs_f64() / probe as f64;
    ((target.as_secs_f64() / per_call) as u64).clamp(50, 100_000)
}

fn summary_rows<C>(label: &'static str, sides: &Sides<C>, w: &WorkloadFns<C>, out: &mut Vec<Row>)
where
    C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection,
{
    let block_ms = env_u64("FACADE_BENCH_BLOCK_MS", 40);
    let show_sql = std::env::var("FACADE_BENCH_SHOW_SQL").is_ok_and(|v| v == "1");
    for (name, facade_fn, base_fn) in w.list() {
        // Statements per call, on the counted twins.
        let mut counted_ctx = sides.counted_db.context();
        let probe = 20u64;
        // One uncounted call first, so a mode switch (SQLite's query_only
        // pragma) or a first connect is not counted.
        facade_fn(&mut counted_ctx, 0);
        base_fn(&sides.counted_pool, 0);
        sides.facade_counter.take();
        sides.base_counter.take();
        for i in 1..=probe {
            facade_fn(&mut counted_ctx, i);
        }
        let f_stmts = sides.facade_counter.take() as f64 / probe as f64;
        for i in 1..=probe {
            base_fn(&sides.counted_pool, i);
        }
        let b_stmts = sides.base_counter.take() as f64 / probe as f64;
        if show_sql {
            sides.facade_counter.start_log();
            facade_fn(&mut counted_ctx, 1);
            let f_log = sides.facade_counter.stop_log();
            sides.base_counter.start_log();
            base_fn(&sides.counted_pool, 1);
            let b_log = sides.base_counter.stop_log();
            println!(
                "--- {name}/{label}: facade statements\n  {}",
                f_log.join("\n  ")
            );
            println!(
                "--- {name}/{label}: baseline statements\n  {}",
                b_log.join("\n  ")
            );
        }

        let mut ctx = sides.db.context();
        let target = Duration::from_millis(block_ms);
        let calls = calibrate(target, |i| facade_fn(&mut ctx, i))
            .min(calibrate(target, |i| base_fn(&sides.pool, i)));
        let (f, b) = blocks(
            pairs(),
            calls,
            |i| facade_fn(&mut ctx, i),
            |i| base_fn(&sides.pool, i),
        );
        out.push(Row {
            workload: name.to_owned(),
            backend: label,
            facade_blocks: f,
            base_blocks: b,
            statements: Some((f_stmts, b_stmts)),
        });
    }
}

fn contended_row(sides: &Sides<PgConnection>, out: &mut Vec<Row>) {
    let n_pairs = env_u64("FACADE_BENCH_CONTENDED_PAIRS", 9).max(1);
    let ops = env_u64("FACADE_BENCH_CONTENDED_OPS", 400);
    let before = pg::counter_value(&sides.pool);
    let mut f = Vec::new();
    let mut b = Vec::new();
    // Warm both sides' pools up to THREADS connections.
    contended(200, |n| facade_contended(&sides.db, n));
    contended(200, |n| advisory_contended(&sides.pool, n));
    let per_run = |ops: u64| ops.div_ceil(THREADS as u64) * THREADS as u64;
    let mut total = 2 * per_run(200);
    for pair in 0..n_pairs {
        let mut run_f = || {
            let t = contended(ops, |n| facade_contended(&sides.db, n));
            f.push(t.as_nanos() as f64 / ops as f64);
        };
        let mut run_b = || {
            let t = contended(ops, |n| advisory_contended(&sides.pool, n));
            b.push(t.as_nanos() as f64 / ops as f64);
        };
        if pair % 2 == 0 {
            run_f();
            run_b();
        } else {
            run_b();
            run_f();
        }
        total += 2 * per_run(ops);
    }
    // Both locks must have serialized the read-modify-write: no lost update.
    let after = pg::counter_value(&sides.pool);
    assert_eq!(
        (after - before) as u64,
        total,
        "lost updates under contention: the lock did not serialize the increments"
    );
    out.push(Row {
        workload: format!("contended lock, {THREADS} thr"),
        backend: "postgres",
        facade_blocks: f,
        base_blocks: b,
        statements: None,
    });
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn print_summary(rows: &[Row]) {
    println!();
    println!("== diesel-facade workloads: facade vs hand-written diesel + r2d2 ==");
    println!(
        "calls/s = 1 / median per-call time over {} back-to-back block pairs \
         ({} for the contended row);",
        pairs(),
        env_u64("FACADE_BENCH_CONTENDED_PAIRS", 9).max(1)
    );
    println!("ratio = median over pairs of facade time / baseline time (target <= 1.05)");
    println!(
        "{:<24} {:<9} {:>14} {:>16} {:>7} {:>10}",
        "workload", "backend", "facade call/s", "baseline call/s", "ratio", "stmts f/b"
    );
    for row in rows {
        let stmts = row
            .statements
            .map(|(f, b)| format!("{f:.0}/{b:.0}"))
            .unwrap_or_else(|| "-".to_owned());
        println!(
            "{:<24} {:<9} {:>14.0} {:>16.0} {:>7.3} {:>10}",
            row.workload,
            row.backend,
            1e9 / row.facade_ns(),
            1e9 / row.base_ns(),
            row.ratio(),
            stmts,
        );
    }
    println!();
    println!("per-block µs/call, facade | baseline:");
    for row in rows {
        let fmt = |v: &[f64]| {
            v.iter()
                .map(|ns| format!("{:.1}", ns / 1000.0))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "  {:<24} {:<9} {} | {}",
            row.workload,
            row.backend,
            fmt(&row.facade_blocks),
            fmt(&row.base_blocks)
        );
    }
}

/// `FACADE_BENCH_ONLY=<w1|w2|w3>/<backend>/<facade|baseline>`: run just
/// that loop `FACADE_BENCH_CALLS` times (default 100 000) and exit, for a
/// profiler (`perf record`, `valgrind --tool=callgrind`).
fn only<C>(sides: &Sides<C>, w: &WorkloadFns<C>, workload: &str, side: &str)
where
    C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection,
{
    let calls = env_u64("FACADE_BENCH_CALLS", 100_000);
    let (f, b) = match workload {
        "w1" => w.w1,
        "w2" => w.w2,
        "w3" => w.w3,
        other => panic!("FACADE_BENCH_ONLY: unknown workload {other}"),
    };
    let start = Instant::now();
    match side {
        "facade" => {
            let mut ctx = sides.db.context();
            for i in 0..calls {
                f(&mut ctx, i);
            }
        }
        "baseline" => {
            for i in 0..calls {
                b(&sides.pool, i);
            }
        }
        other => panic!("FACADE_BENCH_ONLY: unknown side {other}"),
    }
    let elapsed = start.elapsed();
    println!(
        "{workload} {side}: {calls} calls in {elapsed:?} ({:.2} µs/call)",
        elapsed.as_secs_f64() * 1e6 / calls as f64
    );
}

/// The backends of this run: `FACADE_BENCH_BACKENDS` (default all four),
/// each set up or skipped with a line saying why.
const BACKENDS: [&str; 4] = ["sqlite", "postgres", "mariadb", "galera"];

fn selected_backends() -> Vec<String> {
    let list = std::env::var("FACADE_BENCH_BACKENDS").unwrap_or_else(|_| BACKENDS.join(","));
    let chosen: Vec<String> = list.split(',').map(|b| b.trim().to_owned()).collect();
    for backend in &chosen {
        assert!(
            BACKENDS.contains(&backend.as_str()),
            "FACADE_BENCH_BACKENDS: unknown backend {backend} (one of {})",
            BACKENDS.join(", ")
        );
    }
    chosen
}

/// One backend's sides and workload functions, or `None` when it was not
/// selected or its server does not answer.
type Bench<C> = Option<(Sides<C>, WorkloadFns<C>)>;

fn run_backend<C>(
    label: &'static str,
    bench: &Bench<C>,
    criterion: Option<&mut Criterion>,
    rows: &mut Vec<Row>,
) where
    C: diesel_facade::SupportedConnection + diesel::r2d2::R2D2Connection,
{
    let Some((sides, fns)) = bench else {
        return;
    };
    if let Some(criterion) = criterion {
        criterion_groups(criterion, label, sides, fns);
    }
    summary_rows(label, sides, fns, rows);
}

fn main() {
    println!(
        "load average at start: {}; CPUs this process may run on: {}",
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .nresamples(10_000)
        .without_plots()
        .configure_from_args();
    let skip_criterion = std::env::var("FACADE_BENCH_SKIP_CRITERION").is_ok_and(|v| v == "1");

    let backends = selected_backends();
    let wanted = |name: &str| backends.iter().any(|b| b == name);
    let sqlite: Bench<SqliteConnection> =
        wanted("sqlite").then(|| (setup_sqlite(), workload_fns!(sqlite)));
    let pg: Bench<PgConnection> = wanted("postgres")
        .then(|| setup_server(&PG_SERVER))
        .flatten()
        .map(|sides| (sides, workload_fns!(pg)));
    let mariadb: Bench<MysqlConnection> = wanted("mariadb")
        .then(|| setup_server(&MYSQL_SERVER))
        .flatten()
        .map(|sides| (sides, workload_fns!(mysql)));
    let galera: Bench<MysqlConnection> = wanted("galera")
        .then(|| setup_server(&GALERA_SERVER))
        .flatten()
        .map(|sides| (sides, workload_fns!(mysql)));

    if let Ok(spec) = std::env::var("FACADE_BENCH_ONLY") {
        let parts: Vec<&str> = spec.split('/').collect();
        let [workload, backend, side] = parts[..] else {
            panic!("FACADE_BENCH_ONLY must look like w1/sqlite/facade, not {spec}");
        };
        let missing = || panic!("FACADE_BENCH_ONLY: {backend} is not available (see above)");
        match backend {
            "sqlite" => sqlite.as_ref().map(|(s, w)| only(s, w, workload, side)),
            "postgres" => pg.as_ref().map(|(s, w)| only(s, w, workload, side)),
            "mariadb" => mariadb.as_ref().map(|(s, w)| only(s, w, workload, side)),
            "galera" => galera.as_ref().map(|(s, w)| only(s, w, workload, side)),
            other => panic!("FACADE_BENCH_ONLY: unknown backend {other}"),
        }
        .unwrap_or_else(missing);
        return;
    }

    let mut rows = Vec::new();
    let mut criterion = (!skip_criterion).then_some(&mut criterion);
    run_backend("sqlite", &sqlite, criterion.as_deref_mut(), &mut rows);
    run_backend("postgres", &pg, criterion.as_deref_mut(), &mut rows);
    if let Some((pg_sides, _)) = &pg {
        if let Some(criterion) = criterion.as_deref_mut() {
            criterion_contended(criterion, pg_sides);
        }
        contended_row(pg_sides, &mut rows);
    }
    run_backend("mariadb", &mariadb, criterion.as_deref_mut(), &mut rows);
    run_backend("galera", &galera, criterion.as_deref_mut(), &mut rows);
    print_summary(&rows);
    println!("load average at end: {}", loadavg());
    if let Some(criterion) = criterion {
        criterion.final_summary();
    }
}
