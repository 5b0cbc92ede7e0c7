//! Shared pieces of diesel-facade's integration suites: the test schema, a
//! fresh database per test on each backend, an instrumentation that counts
//! what reaches the server, the [`scenarios`] written once as generic
//! functions and run on every backend, and [`backend_tests!`], which stamps
//! out their `#[test]` wrappers.
//!
//! # Test servers, and tests that cannot run without one
//!
//! Server URLs come from the environment that `scripts/test-servers` writes
//! (`source target/test-servers/env`), and are read only through
//! [`server_env`] (or [`server_url`] and [`galera_urls`], built on it):
//!
//! | variable | cfg | what it names |
//! |---|---|---|
//! | `FACADE_TEST_PG_URL` | `pg_server` | a PostgreSQL primary (admin URL) |
//! | `FACADE_TEST_PG_REPLICA_URL` | `pg_replica` | its streaming replica |
//! | `FACADE_TEST_MYSQL_URL` | `mysql_server` | a MariaDB primary (admin URL) |
//! | `FACADE_TEST_MYSQL_REPLICA_URL` | `mysql_replica` | its GTID replica |
//! | `FACADE_TEST_GALERA_URLS` | `galera_cluster` | three Galera nodes, comma-separated |
//!
//! A test that needs a server says so on its first line, as a skip gate:
//!
//! ```ignore
//! #[test]
//! #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
//! fn a_postgres_test() { /* ... */ }
//! ```
//!
//! `tests/build.rs` sets each cfg when its variable is set (and not
//! empty), so without the server the test is reported `ignored, needs
//! FACADE_TEST_PG_URL`, never `ok`. Under `CI=true` every cfg is set:
//! nothing is ignored, and a missing server is a failure whose message
//! names the variable. So is running an ignored test anyway
//! (`--include-ignored`). A test never returns early because a server is
//! missing.
//!
//! `FACADE_TEST_DB_PREFIX` (optional) is put into the name of every
//! database the suites create, so that two checkouts can share the servers.
//! [`facade`] and [`facade_without_migrations`] create theirs with
//! `diesel_facade::testing::TestDatabase`, under a unique name, and drop
//! it when the test's facade goes.

use std::sync::{Arc, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::Connection;
use diesel_facade::testing::{Provision, TestDatabase, TestDatabaseBuilder};
use diesel_facade::{Facade, FacadeBuilder, SupportedConnection};

pub mod cells;
pub mod kill;
pub mod proxy;
pub mod report;

// The scenarios: generic functions that the suites run on each backend.
pub mod hostile;
pub mod named;
pub mod scenarios;
pub mod trust;

pub mod schema {
    //! The tables of the suites, as in the benchmark (docs/performance.md).
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
    diesel::table! {
        locks (id) {
            id -> Text,
            ts -> Timestamp,
        }
    }
}

/// One row of `items`.
#[derive(Debug, Clone, PartialEq, Eq, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = schema::items)]
pub struct Item {
    pub id: i32,
    pub name: String,
    pub qty: i32,
}

/// How each backend creates a fresh database and the test tables.
pub trait TestBackend: SupportedConnection + Provision + Sized {
    /// The environment variable with an admin URL of the test server.
    const URL_VAR: &'static str;
    /// DDL for `items` and `counters`.
    const SCHEMA: &'static str;

    /// A URL of a new, empty database named after `test`.
    fn create_database(admin_url: &str, test: &str) -> String;

    /// The single BIGINT column `n` of the single row `sql` returns.
    fn query_n(conn: &mut Self, sql: &str) -> diesel::QueryResult<i64>;

    /// SQL returning this session's server-side id as `id` (BIGINT), and
    /// SQL that kills a session by id; `None` where there is no server.
    const KILL: Option<(&'static str, &'static str)>;

    /// SQL counting the server's sessions with id `{id}` as `n` (BIGINT);
    /// `None` where there is no server.
    const SESSION_COUNT: Option<&'static str>;

    /// SQL giving, as `n` (BIGINT), the lowest id of the sessions connected
    /// to the database `{db}` other than the asking one, or 0 if none.
    const FIRST_SESSION_OF_DATABASE: Option<&'static str>;

    /// Whether the database `name` (at `url`; for SQLite the file) exists
    /// on the server of `admin_url`.
    fn database_exists(admin_url: &str, name: &str, url: &str) -> bool;
}

/// Kill the server session `id` from a separate connection to `url`.
pub fn kill_session<C: TestBackend>(url: &str, id: i64) {
    let (_, kill) = C::KILL.expect("a server backend");
    let mut admin = C::establish(url).expect("admin connection");
    admin
        .batch_execute(&kill.replace("{id}", &id.to_string()))
        .expect("kill the session");
}

/// The name of the database `db` writes to (the last part of its writer
/// URL's path).
pub fn database_name_of<C: diesel_facade::SupportedConnection>(
    db: &diesel_facade::Facade<C>,
) -> String {
    db.writer_url()
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .expect("a database name")
        .to_owned()
}

/// [`kill_session`], then wait (up to 10 s) until the server no longer
/// lists the session.
pub fn kill_session_and_wait<C: TestBackend>(url: &str, id: i64) {
    kill_session::<C>(url, id);
    let count = C::SESSION_COUNT
        .expect("a server backend")
        .replace("{id}", &id.to_string());
    let mut admin = C::establish(url).expect("admin connection");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while C::query_n(&mut admin, &count).expect("count the session") > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "session {id} still listed 10 s after it was killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Kill every session connected to the database `db` (a plain name) on
/// the server of `url`, waiting for each to go, and return how many.
pub fn kill_sessions_of_database<C: TestBackend>(url: &str, db: &str) -> usize {
    let first = C::FIRST_SESSION_OF_DATABASE
        .expect("a server backend")
        .replace("{db}", db);
    let mut admin = C::establish(url).expect("admin connection");
    let mut killed = 0;
    loop {
        let id = C::query_n(&mut admin, &first).expect("find a session");
        if id == 0 {
            return killed;
        }
        kill_session_and_wait::<C>(url, id);
        killed += 1;
    }
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A session id, as returned by `TestBackend::KILL.0`.
#[derive(diesel::QueryableByName)]
pub struct SessionId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
}

/// `ft_<test>`, or `ft<prefix>_<test>` with `FACADE_TEST_DB_PREFIX` set, so
/// two checkouts can run the suites against the same servers at once.
fn db_name(test: &str) -> String {
    let prefix = std::env::var("FACADE_TEST_DB_PREFIX").unwrap_or_default();
    let mut name: String = format!("ft{prefix}_{test}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    name.truncate(60);
    name.to_ascii_lowercase()
}

fn replace_db_in_url(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("test server URL parses");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

const SQL_SCHEMA_COMMON: &str = "
    CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL);
    CREATE TABLE counters (id VARCHAR(50) PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO counters (id, value) VALUES ('c', 0);
";

impl TestBackend for diesel::SqliteConnection {
    fn query_n(conn: &mut Self, sql: &str) -> diesel::QueryResult<i64> {
        use diesel::RunQueryDsl;
        diesel::sql_query(sql)
            .get_result::<N>(conn)
            .map(|row| row.n)
    }

    const URL_VAR: &'static str = "";
    const SCHEMA: &'static str = SQL_SCHEMA_COMMON;
    const KILL: Option<(&'static str, &'static str)> = None;
    const SESSION_COUNT: Option<&'static str> = None;
    const FIRST_SESSION_OF_DATABASE: Option<&'static str> = None;

    fn database_exists(_: &str, _: &str, url: &str) -> bool {
        std::path::Path::new(url).exists()
    }

    fn create_database(_: &str, test: &str) -> String {
        let dir = std::env::temp_dir().join(format!("diesel-facade-tests-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{}.db", db_name(test)));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        path.to_str().expect("utf-8 temp path").to_owned()
    }
}

impl TestBackend for diesel::PgConnection {
    fn query_n(conn: &mut Self, sql: &str) -> diesel::QueryResult<i64> {
        use diesel::RunQueryDsl;
        diesel::sql_query(sql)
            .get_result::<N>(conn)
            .map(|row| row.n)
    }

    const URL_VAR: &'static str = "FACADE_TEST_PG_URL";
    const SCHEMA: &'static str = SQL_SCHEMA_COMMON;
    const KILL: Option<(&'static str, &'static str)> = Some((
        "SELECT pg_backend_pid()::bigint AS id",
        "SELECT pg_terminate_backend({id})",
    ));
    const SESSION_COUNT: Option<&'static str> =
        Some("SELECT COUNT(*)::bigint AS n FROM pg_stat_activity WHERE pid = {id}");
    const FIRST_SESSION_OF_DATABASE: Option<&'static str> = Some(
        "SELECT COALESCE(MIN(pid), 0)::bigint AS n FROM pg_stat_activity \
         WHERE datname = '{db}' AND pid <> pg_backend_pid()",
    );

    fn database_exists(admin_url: &str, name: &str, _: &str) -> bool {
        let mut admin = Self::establish(admin_url).expect("connect to PostgreSQL");
        // `name` is a generated one (letters, digits, `_`).
        let sql = format!("SELECT COUNT(*) AS n FROM pg_database WHERE datname = '{name}'");
        Self::query_n(&mut admin, &sql).expect("look for the database") > 0
    }

    fn create_database(admin_url: &str, test: &str) -> String {
        let db = db_name(test);
        let mut admin = diesel::PgConnection::establish(admin_url).expect("connect to PostgreSQL");
        // One statement per call: PostgreSQL runs a multi-statement batch
        // as one transaction, and DROP DATABASE refuses to.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .expect("drop the old test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .expect("create test database");
        replace_db_in_url(admin_url, &db)
    }
}

impl TestBackend for diesel::MysqlConnection {
    fn query_n(conn: &mut Self, sql: &str) -> diesel::QueryResult<i64> {
        use diesel::RunQueryDsl;
        diesel::sql_query(sql)
            .get_result::<N>(conn)
            .map(|row| row.n)
    }

    const URL_VAR: &'static str = "FACADE_TEST_MYSQL_URL";
    const KILL: Option<(&'static str, &'static str)> =
        Some(("SELECT CAST(CONNECTION_ID() AS SIGNED) AS id", "KILL {id}"));
    const SESSION_COUNT: Option<&'static str> =
        Some("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = {id}");
    const FIRST_SESSION_OF_DATABASE: Option<&'static str> = Some(
        "SELECT CAST(COALESCE(MIN(ID), 0) AS SIGNED) AS n FROM information_schema.PROCESSLIST \
         WHERE DB = '{db}' AND ID <> CONNECTION_ID()",
    );
    const SCHEMA: &'static str = "
        CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL) ENGINE=InnoDB;
        CREATE TABLE counters (id VARCHAR(50) PRIMARY KEY, value INTEGER NOT NULL) ENGINE=InnoDB;
        INSERT INTO counters (id, value) VALUES ('c', 0);
    ";

    fn database_exists(admin_url: &str, name: &str, _: &str) -> bool {
        let mut admin = Self::establish(admin_url).expect("connect to MySQL/MariaDB");
        // `name` is a generated one (letters, digits, `_`).
        let sql = format!(
            "SELECT COUNT(*) AS n FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"
        );
        Self::query_n(&mut admin, &sql).expect("look for the database") > 0
    }

    fn create_database(admin_url: &str, test: &str) -> String {
        let db = db_name(test);
        let mut admin =
            diesel::MysqlConnection::establish(admin_url).expect("connect to MySQL/MariaDB");
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4"
            ))
            .expect("create test database");
        replace_db_in_url(admin_url, &db)
    }
}

/// The value of `var`, a test server's URL (see the crate documentation).
///
/// # Panics
///
/// When `var` is unset or empty, with a message that names it: a test that
/// needs the server is gated by its cfg, so it gets here without one only
/// under `CI=true` or when run with `--include-ignored`.
#[track_caller]
pub fn server_env(var: &str) -> String {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{var} is not configured: this test needs its server. Start the test servers \
             (scripts/test-servers start; source target/test-servers/env). Without them \
             the test is ignored, except under CI=true"
        ),
    }
}

/// The admin URL of `C`'s test server (empty for SQLite, which needs none).
///
/// # Panics
///
/// When the server is not configured: see [`server_env`].
#[track_caller]
pub fn server_url<C: TestBackend>() -> String {
    if C::URL_VAR.is_empty() {
        return String::new();
    }
    server_env(C::URL_VAR)
}

/// The URLs of the Galera nodes, in order (`FACADE_TEST_GALERA_URLS`).
///
/// # Panics
///
/// When the cluster is not configured: see [`server_env`].
#[track_caller]
pub fn galera_urls() -> Vec<String> {
    server_env("FACADE_TEST_GALERA_URLS")
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A fresh database for `test` with the test schema and the `locks` table
/// (via the embedded migrations), and a facade on it configured by
/// `configure`. The facade owns the database: it is dropped with the
/// facade's last clone (`TestDatabase::into_facade`).
///
/// # Panics
///
/// When `C`'s server is not configured (see [`server_env`]) or the set-up
/// fails.
#[track_caller]
pub fn facade<C: TestBackend>(
    test: &str,
    configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> Facade<C> {
    with_schema(test_database::<C>(test).create(), configure)
}

/// Two facades on one fresh database (as [`facade`] makes it), configured
/// by `first` and `second`: two services sharing a database. The database
/// is dropped with the first facade's last clone.
#[track_caller]
pub fn two_facades<C: TestBackend>(
    test: &str,
    first: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
    second: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> (Facade<C>, Facade<C>) {
    let db = test_database::<C>(test)
        .create()
        .expect("create the test database");
    let other = second(
        db.facade_builder()
            .pool_timeout(std::time::Duration::from_secs(10)),
    )
    .build()
    .expect("build the second facade");
    (with_schema(Ok(db), first), other)
}

/// Like [`facade`], without the `locks` table.
#[track_caller]
pub fn facade_without_migrations<C: TestBackend>(
    test: &str,
    configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> Facade<C> {
    with_schema(
        test_database::<C>(test)
            .without_facade_migrations()
            .create(),
        configure,
    )
}

/// A [`TestDatabase`] builder on `C`'s test server (SQLite: a temporary
/// file) whose names start with `ft<FACADE_TEST_DB_PREFIX>_<test>`, so the
/// test that made a database left behind (a killed run) can be told.
///
/// # Panics
///
/// When `C`'s server is not configured (see [`server_env`]).
#[track_caller]
pub fn test_database<C: TestBackend>(test: &str) -> TestDatabaseBuilder<C> {
    let mut prefix = db_name(test);
    prefix.truncate(30);
    TestDatabase::<C>::builder(server_url::<C>()).name_prefix(&prefix)
}

#[track_caller]
fn with_schema<C: TestBackend>(
    created: Result<TestDatabase<C>, diesel_facade::Error>,
    configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> Facade<C> {
    let db = created.expect("create the test database");
    let mut conn = C::establish(db.url()).expect("connect to the fresh test database");
    conn.batch_execute(C::SCHEMA)
        .expect("create the test schema");
    drop(conn);
    db.into_facade(|b| configure(b.pool_timeout(std::time::Duration::from_secs(10))))
        .expect("build the facade")
}

/// Run `op` `iterations` times on each of `per_target` threads for every
/// target (a facade per database node), all at once.
pub fn spread<T: Sync>(
    targets: &[T],
    per_target: usize,
    iterations: usize,
    op: impl Fn(&T) + Sync,
) {
    std::thread::scope(|s| {
        for target in targets {
            for _ in 0..per_target {
                let op = &op;
                s.spawn(move || {
                    for _ in 0..iterations {
                        op(target);
                    }
                });
            }
        }
    });
}

/// What reached the server, as seen by diesel's instrumentation.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    events: Arc<Mutex<Vec<String>>>,
}

impl EventLog {
    /// A factory for [`FacadeBuilder::instrumentation`] that records into
    /// this log.
    pub fn factory(&self) -> impl Fn() -> Box<dyn Instrumentation> + Send + Sync + 'static {
        let events = Arc::clone(&self.events);
        move || {
            let events = Arc::clone(&events);
            Box::new(move |event: InstrumentationEvent<'_>| {
                let entry = match event {
                    InstrumentationEvent::BeginTransaction { depth, .. } => {
                        format!("begin {depth}")
                    }
                    InstrumentationEvent::CommitTransaction { depth, .. } => {
                        format!("commit {depth}")
                    }
                    InstrumentationEvent::RollbackTransaction { depth, .. } => {
                        format!("rollback {depth}")
                    }
                    InstrumentationEvent::StartQuery { query, .. } => format!("query {query}"),
                    _ => return,
                };
                events.lock().expect("event log").push(entry);
            }) as Box<dyn Instrumentation>
        }
    }

    /// Forget everything recorded so far.
    pub fn clear(&self) {
        self.events.lock().expect("event log").clear();
    }

    /// How many recorded events start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.events
            .lock()
            .expect("event log")
            .iter()
            .filter(|e| e.starts_with(prefix))
            .count()
    }

    /// Everything recorded.
    pub fn all(&self) -> Vec<String> {
        self.events.lock().expect("event log").clone()
    }
}

/// One `#[test]` per scenario, for one connection type: `fn <scenario>()`
/// calls `diesel_facade_tests::<module>::<scenario>::<Conn>()`, a plain
/// generic function in [`scenarios`] or [`trust`]. An attribute written
/// before the connection type goes on every test: a server backend's skip
/// gate (see the crate documentation).
///
/// ```ignore
/// diesel_facade_tests::backend_tests! {
///     #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
///     diesel::PgConnection => scenarios {
///         err_rolls_back_everything,
///         savepoint_rolls_back_only_its_own_work,
///     }
/// }
/// ```
#[macro_export]
macro_rules! backend_tests {
    (#[$gate:meta] $conn:ty => $module:ident { $($scenario:ident),* $(,)? }) => {
        $(
            #[test]
            #[$gate]
            fn $scenario() {
                $crate::$module::$scenario::<$conn>();
            }
        )*
    };
    ($conn:ty => $module:ident { $($scenario:ident),* $(,)? }) => {
        $(
            #[test]
            fn $scenario() {
                $crate::$module::$scenario::<$conn>();
            }
        )*
    };
}
