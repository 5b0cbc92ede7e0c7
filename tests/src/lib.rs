//! Shared pieces of diesel-facade's integration suites: the test schema, a
//! fresh database per test on each backend, an instrumentation that counts
//! what reaches the server, and [`backend_suite!`], the scenarios written
//! once and instantiated for every connection type.
//!
//! Server URLs come from the environment that `scripts/test-servers` writes
//! (`FACADE_TEST_PG_URL`, `FACADE_TEST_MYSQL_URL`, ...). Without them a
//! server suite is skipped with a message, except under `CI=true`, where a
//! missing server is a failure.

use std::sync::{Arc, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::Connection;
use diesel_facade::{Facade, FacadeBuilder, SupportedConnection};

pub mod kill;
pub mod proxy;
pub mod report;
pub mod trust;

pub mod schema {
    //! The benchmark schema of DESIGN §8.
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
pub trait TestBackend: SupportedConnection + Sized {
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
}

/// Kill the server session `id` from a separate connection to `url`.
pub fn kill_session<C: TestBackend>(url: &str, id: i64) {
    let (_, kill) = C::KILL.expect("a server backend");
    let mut admin = C::establish(url).expect("admin connection");
    admin
        .batch_execute(&kill.replace("{id}", &id.to_string()))
        .expect("kill the session");
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
    const SCHEMA: &'static str = "
        CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL) ENGINE=InnoDB;
        CREATE TABLE counters (id VARCHAR(50) PRIMARY KEY, value INTEGER NOT NULL) ENGINE=InnoDB;
        INSERT INTO counters (id, value) VALUES ('c', 0);
    ";

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

/// The admin URL of `C`'s test server, or `None` (and a message) when it is
/// not configured outside CI. Under `CI=true` a missing server panics.
pub fn server_url<C: TestBackend>() -> Option<String> {
    if C::URL_VAR.is_empty() {
        return Some(String::new());
    }
    match std::env::var(C::URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{} is not set under CI=true: the {} suite must run against a real server \
             (scripts/test-servers start; source target/test-servers/env)",
            C::URL_VAR,
            C::NAME
        ),
        _ => {
            eprintln!(
                "SKIPPED: {} is not set; start the test servers with scripts/test-servers",
                C::URL_VAR
            );
            None
        }
    }
}

/// A fresh database for `test` with the test schema and the `locks` table
/// (via the embedded migrations), and a facade on it configured by
/// `configure`.
pub fn facade<C: TestBackend>(
    test: &str,
    configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> Option<Facade<C>> {
    let db = facade_without_migrations(test, configure)?;
    db.run_migrations().expect("run the embedded migrations");
    Some(db)
}

/// Like [`facade`], without the `locks` table.
pub fn facade_without_migrations<C: TestBackend>(
    test: &str,
    configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> Option<Facade<C>> {
    let admin = server_url::<C>()?;
    let url = C::create_database(&admin, test);
    let mut conn = C::establish(&url).expect("connect to the fresh test database");
    conn.batch_execute(C::SCHEMA)
        .expect("create the test schema");
    drop(conn);
    let db = configure(
        Facade::builder()
            .writer(url)
            .pool_timeout(std::time::Duration::from_secs(10)),
    )
    .build()
    .expect("build the facade");
    Some(db)
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

/// The scenarios that need a server (a connection that can be killed);
/// invoke after [`backend_suite!`] in the same module.
#[macro_export]
macro_rules! server_suite {
    () => {
        #[test]
        fn a_connection_lost_before_commit_is_retried_on_a_fresh_one() {
            let (own_id_sql, _) = <Conn as $crate::TestBackend>::KILL.expect("a server backend");
            let Some(db) = $crate::facade::<Conn>("lost_connection", |b| b) else {
                return;
            };
            let admin_url = $crate::server_url::<Conn>().expect("server");
            let attempts = AtomicUsize::new(0);

            #[writer(retry = 3)]
            fn write_through_a_kill(
                ctx: &mut Req,
                attempts: &AtomicUsize,
                own_id_sql: &str,
                admin_url: &str,
            ) -> Result<(), diesel_facade::Error> {
                let attempt = attempts.fetch_add(1, Ordering::SeqCst) as i32;
                insert_item(ctx, 100 + attempt, 0)?;
                if attempt == 0 {
                    let id = diesel::sql_query(own_id_sql)
                        .get_result::<$crate::SessionId>(ctx.conn())?
                        .id;
                    $crate::kill_session::<Conn>(admin_url, id);
                }
                insert_item(ctx, 200, 0)?; // fails on the first attempt
                Ok(())
            }

            write_through_a_kill(
                &mut Req { db: db.clone() },
                &attempts,
                own_id_sql,
                &admin_url,
            )
            .expect("the retry runs on a fresh connection");
            assert_eq!(attempts.load(Ordering::SeqCst), 2);
            assert_eq!(db.stats().retries, 1);
            let mut ctx = Req { db: db.clone() };
            assert!(
                !item_exists(&mut ctx, 100).unwrap(),
                "the lost attempt left nothing"
            );
            assert!(item_exists(&mut ctx, 101).unwrap() && item_exists(&mut ctx, 200).unwrap());

            // Without retry the caller gets a clear Disconnected error, and
            // the pool replaces the dead connection.
            let err = diesel_facade::write(&mut ctx, |ctx| {
                let id = diesel::sql_query(own_id_sql)
                    .get_result::<$crate::SessionId>(ctx.conn())?
                    .id;
                $crate::kill_session::<Conn>(&admin_url, id);
                insert_item(ctx, 300, 0)
            })
            .map_err(diesel_facade::Error::from)
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
            assert!(
                count_items(&mut ctx).is_ok(),
                "the next request gets a live connection"
            );
        }
    };
}

/// Instantiate every scenario as a `#[test]` for one connection type.
/// `single_writer` is true for SQLite, where a second write transaction
/// waits for the first.
#[macro_export]
macro_rules! backend_suite {
    ($conn:ty, single_writer = $single_writer:expr) => {
        $crate::__backend_suite_body!($conn, $single_writer);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __backend_suite_body {
    ($conn:ty, $single_writer:expr) => {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use std::time::Duration;

        use diesel::prelude::*;
        use diesel_facade::{reader, writer, Context, ErrorKind, Facade, TransactionContext};
        use $crate::schema::items;
        use $crate::Item;

        type Conn = $conn;

        #[derive(TransactionContext)]
        struct Req {
            #[facade]
            db: Facade<Conn>,
        }

        fn setup(test: &str) -> Option<Facade<Conn>> {
            $crate::facade::<Conn>(test, |b| b)
        }

        #[reader]
        fn get_item(ctx: &mut Req, id: i32) -> QueryResult<Item> {
            items::table
                .find(id)
                .select(Item::as_select())
                .first(ctx.conn())
        }

        #[reader]
        fn item_exists(ctx: &mut Req, id: i32) -> QueryResult<bool> {
            diesel::select(diesel::dsl::exists(items::table.find(id))).get_result(ctx.conn())
        }

        #[reader(allow_replica)]
        fn count_items(ctx: &mut Req) -> QueryResult<i64> {
            items::table.count().get_result(ctx.conn())
        }

        #[writer]
        fn insert_item(ctx: &mut Req, id: i32, qty: i32) -> QueryResult<()> {
            diesel::insert_into(items::table)
                .values((
                    items::id.eq(id),
                    items::name.eq(format!("item {id}")),
                    items::qty.eq(qty),
                ))
                .execute(ctx.conn())
                .map(drop)
        }

        #[writer]
        fn bump(ctx: &mut Req, id: i32) -> QueryResult<Item> {
            let item = get_item(ctx, id)?;
            diesel::update(items::table.find(id))
                .set(items::qty.eq(item.qty + 1))
                .execute(ctx.conn())?;
            get_item(ctx, id)
        }

        #[writer(savepoint)]
        fn insert_in_savepoint(ctx: &mut Req, id: i32, fail: bool) -> QueryResult<()> {
            insert_item(ctx, id, 0)?;
            if fail {
                Err(diesel::result::Error::RollbackTransaction)
            } else {
                Ok(())
            }
        }

        #[writer(independent)]
        fn insert_independently(ctx: &mut Req, id: i32) -> QueryResult<()> {
            insert_item(ctx, id, 0)
        }

        fn other_context_sees(db: &Facade<Conn>, id: i32) -> bool {
            let mut other = Req { db: db.clone() };
            item_exists(&mut other, id).expect("read from a second context")
        }

        #[test]
        fn composed_call_uses_one_checkout_one_begin_one_commit() {
            let log = $crate::EventLog::default();
            let factory = log.factory();
            let Some(db) = $crate::facade::<Conn>("composed", |b| b.instrumentation(factory))
            else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            insert_item(&mut ctx, 1, 0).unwrap();

            #[writer]
            fn composed(ctx: &mut Req) -> QueryResult<(Item, i64)> {
                let _ = get_item(ctx, 1)?; // 2: reader joins
                let bumped = bump(ctx, 1)?; // 3: writer joins (4, 5: its readers)
                let n = count_items(ctx)?; // 6: allow_replica reader joins
                Ok((bumped, n))
            }

            log.clear();
            let before = db.stats();
            let (item, n) = composed(&mut ctx).unwrap();
            let after = db.stats();
            assert_eq!((item.qty, n), (1, 1));
            assert_eq!(after.checkouts - before.checkouts, 1, "pool checkouts");
            assert_eq!(after.transactions - before.transactions, 1);
            assert_eq!(
                log.count("begin"),
                1,
                "BEGINs seen by diesel: {:?}",
                log.all()
            );
            assert_eq!(
                log.count("commit"),
                1,
                "COMMITs seen by diesel: {:?}",
                log.all()
            );
            assert_eq!(log.count("rollback"), 0);
        }

        #[test]
        fn nested_reader_sees_the_outer_writers_uncommitted_row() {
            let Some(db) = setup("nested_reader_sees") else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            diesel_facade::write(&mut ctx, |ctx| {
                insert_item(ctx, 7, 3)?;
                assert_eq!(get_item(ctx, 7)?.qty, 3, "the joined reader sees the write");
                assert!(
                    !other_context_sees(&db, 7),
                    "another context must not see it yet"
                );
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
            assert!(other_context_sees(&db, 7), "visible after commit");
        }

        #[test]
        fn err_rolls_back_everything() {
            let Some(db) = setup("err_rolls_back") else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            let before = db.stats();
            let result: QueryResult<()> = diesel_facade::write(&mut ctx, |ctx| {
                insert_item(ctx, 1, 0)?;
                insert_item(ctx, 2, 0)?;
                Err(diesel::result::Error::RollbackTransaction)
            });
            assert!(result.is_err());
            assert_eq!(count_items(&mut ctx).unwrap(), 0);
            assert_eq!(db.stats().rollbacks - before.rollbacks, 1);
        }

        #[test]
        fn joined_error_does_not_roll_back_the_outer_transaction() {
            let Some(db) = setup("joined_error") else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            diesel_facade::write(&mut ctx, |ctx| {
                insert_item(ctx, 1, 0)?;
                // A duplicate key: the joined writer's Err reaches us and we
                // decide to carry on (on PostgreSQL the failed statement
                // aborts the transaction, so use a savepoint there).
                let dup = insert_in_savepoint(ctx, 1, false);
                assert_eq!(
                    diesel_facade::Error::from(dup.unwrap_err()).kind(),
                    ErrorKind::UniqueViolation
                );
                insert_item(ctx, 2, 0)
            })
            .unwrap();
            assert_eq!(count_items(&mut ctx).unwrap(), 2);
        }

        #[test]
        fn panic_rolls_back_and_the_pool_recovers() {
            let Some(db) = $crate::facade::<Conn>("panic_rolls_back", |b| {
                b.max_pool_size(1).pool_timeout(Duration::from_secs(5))
            }) else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let _: QueryResult<()> = diesel_facade::write(&mut ctx, |ctx| {
                    insert_item(ctx, 1, 0)?;
                    panic!("boom");
                });
            }));
            assert!(outcome.is_err(), "the panic propagates");
            // The only pooled connection was rolled back and discarded; the
            // pool makes a new one and nothing was committed.
            assert_eq!(count_items(&mut ctx).unwrap(), 0);
            insert_item(&mut ctx, 2, 0).unwrap();
            assert_eq!(count_items(&mut ctx).unwrap(), 1);
        }

        #[test]
        fn savepoint_rolls_back_only_its_own_work() {
            let Some(db) = setup("savepoint") else { return };
            let mut ctx = Req { db: db.clone() };
            let log_before = db.stats();
            diesel_facade::write(&mut ctx, |ctx| {
                insert_item(ctx, 1, 0)?;
                assert!(insert_in_savepoint(ctx, 2, true).is_err());
                insert_in_savepoint(ctx, 3, false)?;
                assert!(!item_exists(ctx, 2)?, "rolled back to the savepoint");
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
            assert!(item_exists(&mut ctx, 1).unwrap());
            assert!(!item_exists(&mut ctx, 2).unwrap());
            assert!(item_exists(&mut ctx, 3).unwrap());
            assert_eq!(
                db.stats().commits - log_before.commits,
                4,
                "1 writer + 3 readers"
            );
            // Outermost, a savepoint writer is an ordinary transaction.
            insert_in_savepoint(&mut ctx, 4, false).unwrap();
            assert!(insert_in_savepoint(&mut ctx, 5, true).is_err());
            assert!(item_exists(&mut ctx, 4).unwrap() && !item_exists(&mut ctx, 5).unwrap());
        }

        #[test]
        fn independent_commits_while_the_outer_rolls_back() {
            let Some(db) = setup("independent") else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            // Inside a reader (also on SQLite, in WAL mode); inside a
            // writer on the server backends: `trust::independent_*`.
            let result: QueryResult<()> = diesel_facade::read(&mut ctx, |ctx| {
                insert_independently(ctx, 2)?;
                Err(diesel::result::Error::RollbackTransaction)
            });
            assert!(result.is_err());
            assert!(item_exists(&mut ctx, 2).unwrap(), "independent committed");
        }

        #[test]
        fn raw_sql_write_in_a_reader_is_a_read_only_violation() {
            let Some(db) = setup("raw_write_in_reader") else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            let err = diesel_facade::read(&mut ctx, |ctx| {
                diesel::sql_query("INSERT INTO items (id, name, qty) VALUES (9, 'x', 0)")
                    .execute(ctx.conn().database_enforced())
            })
            .map_err(diesel_facade::Error::from)
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ReadOnlyViolation, "{err}");
            // The same connection is fine for writers afterwards.
            insert_item(&mut ctx, 9, 0).unwrap();
            let err = diesel_facade::read(&mut ctx, |ctx| {
                diesel::sql_query("UPDATE items SET qty = 1")
                    .execute(ctx.conn().database_enforced())
            })
            .map_err(diesel_facade::Error::from)
            .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ReadOnlyViolation, "{err}");
            assert_eq!(get_item(&mut ctx, 9).unwrap().qty, 0);
        }

        #[test]
        fn pool_exhaustion_is_a_pool_timeout_that_names_the_cause() {
            let Some(db) = $crate::facade::<Conn>("pool_exhaustion", |b| {
                b.max_pool_size(1).pool_timeout(Duration::from_millis(300))
            }) else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            let err = diesel_facade::read(&mut ctx, |ctx| insert_independently(ctx, 1))
                .map_err(diesel_facade::Error::from)
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::PoolTimeout, "{err}");
            assert!(err.message().contains("max_pool_size = 1"), "{err}");
            assert!(err.message().contains("independent"), "{err}");
            assert!(!item_exists(&mut ctx, 1).unwrap());
        }

        #[test]
        fn on_commit_runs_after_commit_only() {
            let Some(db) = setup("on_commit") else { return };
            let mut ctx = Req { db: db.clone() };
            let ran = Arc::new(AtomicUsize::new(0));
            let hook = |ran: &Arc<AtomicUsize>, n: usize| {
                let ran = ran.clone();
                move || {
                    ran.fetch_add(n, Ordering::SeqCst);
                }
            };
            // Committed: the hook runs once the transaction is over.
            diesel_facade::write(&mut ctx, |ctx| {
                ctx.on_commit(hook(&ran, 1));
                assert_eq!(ran.load(Ordering::SeqCst), 0, "not before commit");
                Ok::<_, diesel_facade::Error>(())
            })
            .unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1);
            // Rolled back: it never runs.
            let _: Result<(), diesel_facade::Error> = diesel_facade::write(&mut ctx, |ctx| {
                ctx.on_commit(hook(&ran, 10));
                Err(diesel_facade::Error::new(ErrorKind::Other, "no"))
            });
            assert_eq!(ran.load(Ordering::SeqCst), 1);
            // Registered in a savepoint that rolls back: dropped; the outer
            // one still runs.
            #[writer(savepoint)]
            fn failing_with_hook(ctx: &mut Req, ran: Arc<AtomicUsize>) -> QueryResult<()> {
                ctx.on_commit(move || {
                    ran.fetch_add(100, Ordering::SeqCst);
                });
                Err(diesel::result::Error::RollbackTransaction)
            }
            diesel_facade::write(&mut ctx, |ctx| {
                ctx.on_commit(hook(&ran, 1000));
                assert!(failing_with_hook(ctx, ran.clone()).is_err());
                Ok::<_, diesel::result::Error>(())
            })
            .unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1001);
        }

        #[test]
        fn unique_violation_is_classified() {
            let Some(db) = setup("unique_violation") else {
                return;
            };
            let mut ctx = Req { db };
            insert_item(&mut ctx, 1, 0).unwrap();
            let err = diesel_facade::Error::from(insert_item(&mut ctx, 1, 0).unwrap_err());
            assert_eq!(err.kind(), ErrorKind::UniqueViolation, "{err}");
        }

        #[test]
        fn context_and_closure_forms_work_together() {
            let Some(db) = setup("closure_forms") else {
                return;
            };
            let mut ctx: Context<Conn> = db.context();
            #[writer]
            fn add(ctx: &mut Context<Conn>, id: i32) -> QueryResult<()> {
                diesel::insert_into(items::table)
                    .values((items::id.eq(id), items::name.eq("n"), items::qty.eq(1)))
                    .execute(ctx.conn())
                    .map(drop)
            }
            add(&mut ctx, 1).unwrap();
            let n: i64 = diesel_facade::read_replica(&mut ctx, |ctx| {
                items::table.count().get_result(ctx.conn())
            })
            .unwrap();
            assert_eq!(n, 1);
        }

        #[test]
        fn bare_tables_load_through_as_query() {
            let Some(db) = setup("bare_table") else {
                return;
            };
            let mut ctx = Req { db };
            insert_item(&mut ctx, 1, 5).unwrap();
            let rows: Vec<(i32, String, i32)> = diesel_facade::read(&mut ctx, |ctx| {
                use diesel::query_builder::AsQuery;
                items::table.as_query().load(ctx.conn())
            })
            .unwrap();
            assert_eq!(rows, vec![(1, "item 1".to_owned(), 5)]);
        }

        #[test]
        fn writes_in_sequence_from_many_threads_all_commit() {
            let Some(db) = $crate::facade::<Conn>("threads_bump", |b| b.max_pool_size(4)) else {
                return;
            };
            insert_item(&mut Req { db: db.clone() }, 1, 0).unwrap();
            const THREADS: usize = 4;
            const ITERATIONS: usize = 25;
            std::thread::scope(|s| {
                for _ in 0..THREADS {
                    let db = db.clone();
                    s.spawn(move || {
                        let mut ctx = Req { db };
                        for _ in 0..ITERATIONS {
                            bump_locked(&mut ctx, 1).unwrap();
                        }
                    });
                }
            });
            let qty = get_item(&mut Req { db: db.clone() }, 1).unwrap().qty;
            assert_eq!(qty as usize, THREADS * ITERATIONS);
        }

        #[writer(retry)]
        fn bump_locked(ctx: &mut Req, id: i32) -> Result<Item, diesel_facade::Error> {
            ctx.lock("bump")?;
            Ok(bump(ctx, id)?)
        }

        // ---- locks and retries (DESIGN §5) ----

        use $crate::schema::{counters, locks};

        /// Read the counter, give other threads a chance to interleave, and
        /// write it back plus one: a lost update unless serialized.
        fn increment_counter(conn: &mut Conn) -> QueryResult<()> {
            let value: i32 = counters::table
                .find("c")
                .select(counters::value)
                .first(conn)?;
            std::thread::sleep(Duration::from_millis(1));
            diesel::update(counters::table.find("c"))
                .set(counters::value.eq(value + 1))
                .execute(conn)
                .map(drop)
        }

        #[writer(retry = 50)]
        fn locked_increment(ctx: &mut Req) -> Result<(), diesel_facade::Error> {
            ctx.lock("counter")?;
            Ok(increment_counter(ctx.conn())?)
        }

        #[writer(retry = 50)]
        fn unlocked_increment(ctx: &mut Req) -> Result<(), diesel_facade::Error> {
            Ok(increment_counter(ctx.conn())?)
        }

        #[reader]
        fn counter_value(ctx: &mut Req) -> QueryResult<i32> {
            counters::table
                .find("c")
                .select(counters::value)
                .first(ctx.conn())
        }

        fn hammer(db: &Facade<Conn>, threads: usize, iterations: usize, locked: bool) {
            $crate::spread(std::slice::from_ref(db), threads, iterations, |db| {
                let mut ctx = Req { db: db.clone() };
                if locked {
                    locked_increment(&mut ctx)
                } else {
                    unlocked_increment(&mut ctx)
                }
                .expect("no error reaches the caller")
            });
        }

        #[test]
        fn locked_counter_ends_at_exactly_threads_times_iterations() {
            let Some(db) = $crate::facade::<Conn>("locked_counter", |b| b.max_pool_size(8)) else {
                return;
            };
            const THREADS: usize = 4;
            const ITERATIONS: usize = 25;
            hammer(&db, THREADS, ITERATIONS, true);
            let value = counter_value(&mut Req { db: db.clone() }).unwrap();
            eprintln!(
                "{}: {THREADS}x{ITERATIONS} locked increments -> {value}, {} retries",
                <Conn as diesel_facade::SupportedConnection>::NAME,
                db.stats().retries
            );
            assert_eq!(value as usize, THREADS * ITERATIONS);
        }

        #[test]
        fn without_the_lock_updates_are_lost() {
            let Some(db) = $crate::facade::<Conn>("unlocked_counter", |b| b.max_pool_size(8))
            else {
                return;
            };
            const THREADS: usize = 4;
            const ITERATIONS: usize = 25;
            hammer(&db, THREADS, ITERATIONS, false);
            let value = counter_value(&mut Req { db: db.clone() }).unwrap();
            eprintln!(
                "{}: {THREADS}x{ITERATIONS} unlocked increments -> {value}",
                <Conn as diesel_facade::SupportedConnection>::NAME
            );
            if $single_writer {
                // SQLite's BEGIN IMMEDIATE already serializes writers: the
                // lock adds nothing there, and nothing is lost.
                assert_eq!(value as usize, THREADS * ITERATIONS);
            } else {
                assert!(
                    (value as usize) < THREADS * ITERATIONS,
                    "without the lock some increments must be lost (got {value})"
                );
            }
        }

        #[test]
        fn opposite_lock_order_deadlock_is_retried() {
            let Some(db) = $crate::facade::<Conn>("lock_order", |b| b.max_pool_size(4)) else {
                return;
            };
            let barrier = std::sync::Barrier::new(2);
            // On SQLite the second writer cannot even begin while the first
            // holds the database, so the two never meet (and never deadlock).
            let first_attempts = AtomicUsize::new(if $single_writer { 2 } else { 0 });

            #[writer(retry = 10)]
            fn take_both(
                ctx: &mut Req,
                first: &str,
                second: &str,
                barrier: &std::sync::Barrier,
                first_attempts: &AtomicUsize,
            ) -> Result<(), diesel_facade::Error> {
                ctx.lock(first)?;
                // Only the first attempts meet at the barrier: that is what
                // makes them deadlock.
                if first_attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                    barrier.wait();
                }
                ctx.lock(second)?;
                Ok(())
            }

            std::thread::scope(|s| {
                for (a, b) in [("A", "B"), ("B", "A")] {
                    let db = db.clone();
                    let (barrier, first_attempts) = (&barrier, &first_attempts);
                    s.spawn(move || {
                        take_both(&mut Req { db }, a, b, barrier, first_attempts)
                            .expect("both finish thanks to retry")
                    });
                }
            });
            if $single_writer {
                assert_eq!(db.stats().retries, 0, "serialized writers cannot deadlock");
            } else {
                assert!(db.stats().retries >= 1, "the deadlock victim was retried");
            }
        }

        #[test]
        fn lock_names_are_validated_and_stored_verbatim() {
            let Some(db) = setup("lock_names") else {
                return;
            };
            let mut ctx = Req { db };
            for bad in [String::new(), "x".repeat(51)] {
                let err = diesel_facade::write(&mut ctx, |ctx| ctx.lock(&bad)).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidLockName, "{err}");
                let err = diesel_facade::write(&mut ctx, |ctx| ctx.try_lock(&bad)).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidLockName, "{err}");
            }
            let multibyte = "錠".repeat(50);
            let evil = "x'); DROP TABLE locks; --\\ %_".to_owned();
            for good in [multibyte, evil, "a".repeat(50)] {
                diesel_facade::write(&mut ctx, |ctx| ctx.lock(&good)).unwrap();
                let stored: Vec<String> = diesel_facade::read(&mut ctx, |ctx| {
                    locks::table
                        .filter(locks::id.eq(&good))
                        .select(locks::id)
                        .load(ctx.conn())
                })
                .unwrap();
                assert_eq!(stored, vec![good.clone()], "stored verbatim, untruncated");
            }
        }

        #[test]
        fn a_missing_locks_table_says_to_run_the_migrations() {
            let Some(db) = $crate::facade_without_migrations::<Conn>("no_locks_table", |b| b)
            else {
                return;
            };
            let err = diesel_facade::write(&mut Req { db }, |ctx| ctx.lock("x")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MissingLocksTable, "{err}");
            assert!(err.message().contains("run_migrations"), "{err}");
        }

        #[test]
        fn lock_timeout_and_try_lock_while_another_transaction_holds_it() {
            let Some(db) = $crate::facade::<Conn>("lock_timeout", |b| {
                b.max_pool_size(4)
                    .sqlite_busy_timeout(Duration::from_millis(300))
            }) else {
                return;
            };
            let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
            let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
            std::thread::scope(|s| {
                let holder_db = db.clone();
                s.spawn(move || {
                    diesel_facade::write(&mut Req { db: holder_db }, |ctx| {
                        ctx.lock("held")?;
                        held_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok::<_, diesel_facade::Error>(())
                    })
                    .unwrap();
                });
                held_rx.recv().unwrap();
                let mut ctx = Req { db: db.clone() };
                let started = std::time::Instant::now();
                let err = diesel_facade::write(&mut ctx, |ctx| {
                    ctx.lock_timeout("held", Duration::from_millis(300))
                })
                .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
                assert!(
                    started.elapsed() < Duration::from_secs(4),
                    "{:?}",
                    started.elapsed()
                );
                if !$single_writer {
                    // try_lock says "taken" and leaves the transaction usable.
                    let (took, wrote) = diesel_facade::write(&mut ctx, |ctx| {
                        let took = ctx.try_lock("held")?;
                        let wrote = diesel::insert_into(items::table)
                            .values((items::id.eq(77), items::name.eq("after"), items::qty.eq(0)))
                            .execute(ctx.conn())?;
                        Ok::<_, diesel_facade::Error>((took, wrote))
                    })
                    .unwrap();
                    assert!(!took, "the lock is held by the other transaction");
                    assert_eq!(wrote, 1);
                    assert!(item_exists(&mut ctx, 77).unwrap());
                    assert!(diesel_facade::write(&mut ctx, |ctx| ctx.try_lock("free")).unwrap());
                }
                release_tx.send(()).unwrap();
            });
            // Released at the end of the holder's transaction.
            assert!(diesel_facade::write(&mut Req { db }, |ctx| ctx.try_lock("held")).unwrap());
        }

        #[test]
        fn retry_is_inert_on_a_joined_call_and_counts_whole_transactions() {
            let Some(db) = setup("retry_joined") else {
                return;
            };
            let mut ctx = Req { db: db.clone() };
            let calls = AtomicUsize::new(0);
            #[writer(retry = 3)]
            fn fails_retryably(
                ctx: &mut Req,
                calls: &AtomicUsize,
            ) -> Result<(), diesel_facade::Error> {
                calls.fetch_add(1, Ordering::SeqCst);
                // A genuine serialization failure raised by the server would
                // be classified the same way; this one comes from the body.
                let _ = ctx.conn();
                Err(diesel_facade::Error::new(
                    ErrorKind::SerializationFailure,
                    "simulated",
                ))
            }
            // Outermost, the error alone (not seen by the server) is not
            // retried: only errors the database reported doom a transaction.
            assert!(fails_retryably(&mut ctx, &calls).is_err());
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(db.stats().retries, 0);
            // Joined, retry is inert: the error reaches the outermost call.
            let err =
                diesel_facade::write(&mut ctx, |ctx| fails_retryably(ctx, &calls)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::SerializationFailure);
            assert_eq!(calls.load(Ordering::SeqCst), 2);
            assert_eq!(db.stats().retries, 0);
        }
    };
}

pub mod hostile;
