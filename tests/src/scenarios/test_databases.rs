//! `diesel_facade::testing`: a `TestDatabase` is dropped at its end (also
//! after a panic, and with sessions still connected), its errors name the
//! problem without the password, and a transactional facade's work is
//! rolled back at the end while its commits are savepoint releases.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_facade::testing::TestDatabase;
use diesel_facade::{reader, writer, ConcurrentWriters, ErrorKind, Facade};

use super::{count_items, insert_independently, insert_item, item_exists, Req, TypedQueries};
use crate::{server_url, test_database, EventLog, TestBackend};

/// The test schema on a fresh test database.
fn schema_db<C: TestBackend>(test: &str) -> TestDatabase<C> {
    let db = test_database::<C>(test)
        .create()
        .expect("create the test database");
    let mut conn = C::establish(db.url()).expect("connect to the test database");
    conn.batch_execute(C::SCHEMA)
        .expect("create the test schema");
    db
}

fn exists<C: TestBackend>(name: &str, url: &str) -> bool {
    C::database_exists(&server_url::<C>(), name, url)
}

#[writer]
fn lock_and_insert<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<()> {
    ctx.lock(&format!("item-{id}"))?;
    insert_item(ctx, id, 0)
}

#[writer]
fn insert_then_fail<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<()> {
    insert_item(ctx, id, 0)?;
    Err(diesel::result::Error::RollbackTransaction)
}

#[reader]
fn independent_inside_a_reader<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<()> {
    insert_independently(ctx, id)
}

#[reader(replica)]
fn replica_sees<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<bool> {
    C::item_exists(ctx.conn(), id)
}

#[reader]
fn lock_rows<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> QueryResult<i64> {
    C::lock_rows_named(ctx.conn(), &format!("item-{id}"))
        .map(|rows| i64::try_from(rows.len()).expect("a few rows"))
}

/// Dropping a `TestDatabase` drops the database, even while a facade's
/// pool and a raw connection inside an open transaction that wrote to it
/// are still connected.
pub fn test_database_is_dropped_with_sessions_still_connected<C: TypedQueries>() {
    let db = schema_db::<C>("td_drop");
    let (name, url) = (db.name().to_owned(), db.url().to_owned());
    assert!(exists::<C>(&name, &url), "created");
    let facade = db.facade().expect("facade");
    insert_item(&mut Req { db: facade.clone() }, 1, 0).expect("write through the facade");
    let mut raw = C::establish(&url).expect("raw connection");
    raw.batch_execute("BEGIN; INSERT INTO counters (id, value) VALUES ('open', 1)")
        .expect("open a transaction that holds locks");
    let started = Instant::now();
    drop(db);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "dropping took {:?}",
        started.elapsed()
    );
    assert!(!exists::<C>(&name, &url), "dropped despite open sessions");
    drop((raw, facade));
}

/// A test that panics still drops its database (the drop runs while the
/// panic unwinds).
pub fn test_database_is_dropped_after_a_panic<C: TypedQueries>() {
    let seen = Mutex::new(None);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let db = schema_db::<C>("td_panic");
        let facade = db.facade().expect("facade");
        insert_item(&mut Req { db: facade }, 1, 0).expect("write");
        *seen.lock().unwrap() = Some((db.name().to_owned(), db.url().to_owned()));
        assert!(exists::<C>(db.name(), db.url()));
        panic!("the test fails");
    }));
    assert!(result.is_err(), "the closure panicked");
    let (name, url) = seen
        .into_inner()
        .unwrap()
        .expect("the database was created");
    assert!(!exists::<C>(&name, &url), "{name} dropped after the panic");
}

/// A failing migration is an error that names it; the database it was run
/// on is dropped.
pub fn failing_migration_is_an_error_and_the_database_is_dropped<C: TypedQueries>() {
    let dir = std::env::temp_dir().join(format!(
        "facade-broken-migrations-{}-{}",
        C::NAME,
        std::process::id()
    ));
    let migration = dir.join("2020-01-01-000000_broken");
    std::fs::create_dir_all(&migration).unwrap();
    std::fs::write(migration.join("up.sql"), "CREATE TABLE t (;\n").unwrap();
    std::fs::write(migration.join("down.sql"), "SELECT 1;\n").unwrap();
    let source = diesel_migrations::FileBasedMigrations::from_path(&dir).unwrap();
    let db = test_database::<C>("td_migration").create().expect("create");
    let (name, url) = (db.name().to_owned(), db.url().to_owned());
    let err = db.with_migrations(source).unwrap_err();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.message().contains("2020-01-01-000000"), "{err}");
    assert!(err.message().contains(&name), "{err}");
    assert!(
        !exists::<C>(&name, &url),
        "dropped after the failed migration"
    );
}

/// In a transactional facade everything "committed" is visible to the
/// test, and rolled back when the facade goes: no row, no lock row.
pub fn transactional_writes_are_rolled_back_at_the_end<C: TypedQueries>() {
    let db = schema_db::<C>("td_rollback");
    {
        let facade = db.transactional_facade().expect("transactional facade");
        let mut ctx = Req { db: facade.clone() };
        lock_and_insert(&mut ctx, 1).unwrap();
        assert!(
            item_exists(&mut ctx, 1).unwrap(),
            "the test sees its commit"
        );
        assert!(
            replica_sees(&mut ctx, 1).unwrap(),
            "a replica reader reads the one connection"
        );
        assert_eq!(lock_rows(&mut ctx, 1).unwrap(), 1);
        let stats = facade.stats();
        assert_eq!((stats.commits, stats.rollbacks), (4, 0), "{stats:?}");
    }
    let plain = db.facade().expect("facade");
    let mut ctx = Req { db: plain };
    assert_eq!(count_items(&mut ctx).unwrap(), 0, "rolled back");
    assert_eq!(lock_rows(&mut ctx, 1).unwrap(), 0, "the lock row too");
}

/// The outermost BEGIN/COMMIT are a SAVEPOINT and its RELEASE; an `Err`
/// rolls back to the savepoint only, keeping what the test committed
/// before; no COMMIT or ROLLBACK reaches the server.
pub fn transactional_commit_is_a_savepoint_release<C: TypedQueries>() {
    let db = schema_db::<C>("td_savepoint");
    let log = EventLog::default();
    let factory = log.factory();
    let facade = db
        .transactional_facade_with(|b| b.instrumentation(factory))
        .expect("transactional facade");
    let mut ctx = Req { db: facade };
    // The pool connects (and begins the test transaction) on first use.
    assert!(!item_exists(&mut ctx, 1).unwrap());
    log.clear();
    insert_item(&mut ctx, 1, 0).unwrap();
    insert_then_fail(&mut ctx, 2).unwrap_err();
    assert!(item_exists(&mut ctx, 1).unwrap());
    assert!(
        !item_exists(&mut ctx, 2).unwrap(),
        "rolled back to the savepoint"
    );
    let queries: Vec<String> = log
        .all()
        .into_iter()
        .filter(|e| e.starts_with("query "))
        .collect();
    let sent = |sql: &str| {
        queries
            .iter()
            .filter(|q| q.as_str() == format!("query {sql}"))
            .count()
    };
    assert_eq!(sent("SAVEPOINT diesel_savepoint_1"), 4, "{queries:?}");
    assert_eq!(
        sent("RELEASE SAVEPOINT diesel_savepoint_1"),
        3,
        "{queries:?}"
    );
    assert_eq!(
        sent("ROLLBACK TO SAVEPOINT diesel_savepoint_1"),
        1,
        "{queries:?}"
    );
    assert!(
        !queries
            .iter()
            .any(|q| q == "query COMMIT" || q == "query ROLLBACK" || q.starts_with("query BEGIN")),
        "{queries:?}"
    );
}

/// A panic in a transactional facade's writer rolls back that writer's
/// work only, and the facade goes on with the test's earlier writes.
pub fn transactional_panic_rolls_back_and_the_facade_goes_on<C: TypedQueries>() {
    let db = schema_db::<C>("td_panic_tx");
    let facade = db.transactional_facade().expect("transactional facade");
    let mut ctx = Req { db: facade };
    insert_item(&mut ctx, 1, 0).unwrap();
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        diesel_facade::write(&mut ctx, |ctx| {
            C::insert_item(ctx.conn(), 2, "two".into(), 0)?;
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<_, diesel::result::Error>(())
        })
    }));
    assert!(panicked.is_err());
    assert!(item_exists(&mut ctx, 1).unwrap(), "the earlier write stays");
    assert!(
        !item_exists(&mut ctx, 2).unwrap(),
        "the panicking write is gone"
    );
}

/// A `#[writer(independent)]` nested in a transaction needs a second
/// connection: in a transactional facade that is a `Config` error at once,
/// not a wait for a connection that never comes back.
pub fn transactional_nested_independent_writer_is_a_config_error<C: TypedQueries>() {
    let db = schema_db::<C>("td_independent");
    let facade = db
        .transactional_facade_with(|b| b.pool_timeout(Duration::from_secs(30)))
        .expect("transactional facade");
    let mut ctx = Req { db: facade };
    let started = Instant::now();
    let err = independent_inside_a_reader(&mut ctx, 1).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let err = diesel_facade::Error::from(err);
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("independent"), "{err}");
    // Outside a transaction it is an ordinary outermost writer.
    insert_independently(&mut ctx, 2).unwrap();
    assert!(item_exists(&mut ctx, 2).unwrap());
}

/// Tests on several threads, each with its own transactional facade on one
/// database, all open at once: each sees its own rows only, and none are
/// left afterwards.
pub fn parallel_transactional_tests_do_not_see_each_other<C: TypedQueries>() {
    const TESTS: usize = 4;
    let db = schema_db::<C>("td_parallel");
    let all_written = Barrier::new(TESTS);
    let all_read = Barrier::new(TESTS);
    std::thread::scope(|s| {
        for t in 0..TESTS {
            let (db, all_written, all_read) = (&db, &all_written, &all_read);
            s.spawn(move || {
                let facade: Facade<C> = db.transactional_facade().expect("transactional facade");
                let mut ctx = Req { db: facade };
                let id = i32::try_from(t).unwrap() + 1;
                lock_and_insert(&mut ctx, id).unwrap();
                insert_item(&mut ctx, id + 100, 0).unwrap();
                all_written.wait();
                assert_eq!(
                    count_items(&mut ctx).unwrap(),
                    2,
                    "test {t} sees only its rows"
                );
                for other in 1..=TESTS {
                    let other = i32::try_from(other).unwrap();
                    assert_eq!(item_exists(&mut ctx, other).unwrap(), other == id);
                    let locks = lock_rows(&mut ctx, other).unwrap();
                    assert_eq!(locks, i64::from(other == id), "test {t}: lock rows");
                }
                all_read.wait();
            });
        }
    });
    let mut ctx = Req {
        db: db.facade().expect("facade"),
    };
    assert_eq!(count_items(&mut ctx).unwrap(), 0, "nothing was committed");
    for id in 1..=TESTS {
        assert_eq!(lock_rows(&mut ctx, i32::try_from(id).unwrap()).unwrap(), 0);
    }
}

/// The admin URL with its password replaced by `password`.
fn with_password<C: TestBackend>(password: &str) -> String {
    let mut url = url::Url::parse(&server_url::<C>()).unwrap();
    url.set_password(Some(password)).unwrap();
    url.to_string()
}

/// The server refuses a wrong password: `Config`, and the password is in
/// neither the error nor a `Debug`.
pub fn wrong_password_is_a_config_error_without_the_password<C: TestBackend>() {
    let secret = "Wr0ng-s3cret-pw";
    let err = TestDatabase::<C>::create(with_password::<C>(secret)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let builder = TestDatabase::<C>::builder(with_password::<C>(secret));
    assert!(!format!("{builder:?}").contains(secret));
}

/// A server that does not answer: `Disconnected`, without the password.
pub fn unreachable_server_is_disconnected_without_the_password<C: TestBackend>() {
    let secret = "Unre4chable-pw";
    let mut url = url::Url::parse(&server_url::<C>()).unwrap();
    url.set_password(Some(secret)).unwrap();
    // Nothing listens on port 1.
    url.set_port(Some(1)).unwrap();
    let err = TestDatabase::<C>::create(url.to_string()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    assert!(!err.to_string().contains(secret), "{err}");
}

/// An admin URL that is not one: `Config`, without the password; so is a
/// name prefix that is not a plain identifier.
pub fn bad_admin_url_and_prefix_are_config_errors<C: TestBackend>() {
    let secret = "B4d-url-pw";
    for bad in [
        format!("{}://user:{secret}@", C::NAME),
        format!("nonsense://user:{secret}@localhost/db"),
        format!(" {}", with_password::<C>(secret)),
    ] {
        let err = TestDatabase::<C>::create(bad.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
        assert!(!err.to_string().contains(secret), "{err}");
    }
    for prefix in [
        "",
        "Upper",
        "x\"; DROP DATABASE x; --",
        "9lives",
        &"a".repeat(31),
    ] {
        let err = TestDatabase::<C>::builder(server_url::<C>())
            .name_prefix(prefix)
            .create()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{prefix:?}: {err}");
    }
}

/// `Debug` of a test database shows its URL without the password.
pub fn test_database_debug_hides_the_password<C: TestBackend>() {
    let db = test_database::<C>("td_debug").create().expect("create");
    let password = url::Url::parse(db.url())
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
        .expect("the test server URL has a password");
    let shown = format!("{db:?}");
    assert!(shown.contains(db.name()), "{shown}");
    assert!(!shown.contains(&password), "{shown}");
}

/// A lock taken in a transactional test is held until that test's facade
/// goes (its test transaction ends): a parallel test waiting for the same
/// name times out, then gets it once the first test is over.
pub fn transactional_lock_is_held_until_the_test_ends<C: TypedQueries + ConcurrentWriters>() {
    let db = schema_db::<C>("td_lock");
    let first = db.transactional_facade().expect("first test's facade");
    diesel_facade::write(&mut Req { db: first.clone() }, |ctx| ctx.lock("shared")).unwrap();
    let second = db.transactional_facade().expect("second test's facade");
    let mut ctx = Req { db: second };
    let err = diesel_facade::write(&mut ctx, |ctx| {
        ctx.lock_timeout("shared", Duration::from_millis(300))
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
    drop(first);
    diesel_facade::write(&mut ctx, |ctx| {
        ctx.lock_timeout("shared", Duration::from_secs(5))
    })
    .expect("the first test is over");
    insert_item(&mut ctx, 1, 0).expect("the second test goes on after the timeout");
}

/// When the connection of a transactional facade is lost, the test
/// transaction is gone: every later call fails with `Config`, rather than
/// going on in a fresh transaction without the test's earlier writes.
pub fn transactional_lost_connection_fails_every_later_call<C: TypedQueries>() {
    let db = schema_db::<C>("td_lost");
    let facade = db.transactional_facade().expect("transactional facade");
    let mut ctx = Req { db: facade };
    insert_item(&mut ctx, 1, 0).unwrap();
    let (session_sql, _) = C::KILL.expect("a server backend");
    let id = diesel_facade::write(&mut ctx, |ctx| C::session_id(ctx.conn(), session_sql)).unwrap();
    crate::kill_session::<C>(&server_url::<C>(), id);
    assert!(item_exists(&mut ctx, 1).is_err(), "the session is gone");
    for _ in 0..2 {
        let err = diesel_facade::Error::from(item_exists(&mut ctx, 1).unwrap_err());
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.message().contains("test transaction"), "{err}");
    }
}

/// Threads of one test share its transactional facade's one connection,
/// taking turns: every write lands in the test transaction; `on_commit`
/// hooks run after each release.
pub fn transactional_threads_of_one_test_take_turns<C: TypedQueries>() {
    const THREADS: i32 = 4;
    let db = schema_db::<C>("td_threads");
    let facade = db.transactional_facade().expect("transactional facade");
    let hooks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::scope(|s| {
        for id in 1..=THREADS {
            let (facade, hooks) = (facade.clone(), hooks.clone());
            s.spawn(move || {
                diesel_facade::write(&mut Req { db: facade }, |ctx| {
                    ctx.on_commit(move || {
                        hooks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    });
                    C::insert_item(ctx.conn(), id, format!("item {id}"), 0)
                })
                .expect("each thread's write");
            });
        }
    });
    assert_eq!(hooks.load(std::sync::atomic::Ordering::SeqCst), 4);
    let mut ctx = Req { db: facade };
    assert_eq!(count_items(&mut ctx).unwrap(), i64::from(THREADS));
}

/// A transactional facade reads and writes through one connection: a
/// replica is a `Config` error at build.
pub fn transactional_facade_with_a_replica_is_a_config_error<C: TypedQueries>() {
    let db = schema_db::<C>("td_replica");
    let url = db.url().to_owned();
    let err = db
        .transactional_facade_with(|b| b.replica(url))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

/// A reader in a transactional facade is a savepoint, which the server
/// cannot make read-only: raw SQL through `database_enforced()` writes
/// there (in production it is a `ReadOnlyViolation`), and is rolled back
/// with the test like everything else.
pub fn transactional_reader_is_not_read_only_on_the_server<C: TypedQueries>() {
    let db = schema_db::<C>("td_reader");
    {
        let mut ctx = Req {
            db: db.transactional_facade().expect("transactional facade"),
        };
        diesel_facade::read(&mut ctx, |ctx| {
            C::execute_sql(
                ctx.conn().database_enforced(),
                "INSERT INTO items (id, name, qty) VALUES (9, 'x', 0)",
            )
        })
        .expect("no READ ONLY on a savepoint");
        assert!(item_exists(&mut ctx, 9).unwrap());
    }
    let mut ctx = Req {
        db: db.facade().expect("facade"),
    };
    assert!(
        !item_exists(&mut ctx, 9).unwrap(),
        "rolled back with the test"
    );
}
