//! `diesel_facade::testing` on every backend: test databases are dropped at
//! their end (after a panic too, with sessions still connected), errors
//! name the problem without the password, and transactional facades roll
//! everything back, also for tests running in parallel on one database
//! (real threads on PostgreSQL and MariaDB), and on a Galera node.

use diesel_facade::testing::TestDatabase;
use diesel_facade_tests::proxy::{Proxied, Proxy};
use diesel_facade_tests::server_url;

mod sqlite {
    diesel_facade_tests::backend_tests! {
        diesel::SqliteConnection => scenarios {
            test_database_is_dropped_with_sessions_still_connected,
            test_database_is_dropped_after_a_panic,
            failing_migration_is_an_error_and_the_database_is_dropped,
            transactional_writes_are_rolled_back_at_the_end,
            transactional_commit_is_a_savepoint_release,
            transactional_panic_rolls_back_and_the_facade_goes_on,
            transactional_nested_independent_writer_is_a_config_error,
            transactional_threads_of_one_test_take_turns,
            transactional_facade_with_a_replica_is_a_config_error,
            transactional_reader_is_not_read_only_on_the_server,
        }
    }

    /// A name prefix that is not a plain identifier is a `Config` error.
    #[test]
    fn bad_name_prefix_is_a_config_error() {
        for prefix in ["", "Upper", "x\"; DROP DATABASE x; --", "../up"] {
            let err = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::builder("")
                .name_prefix(prefix)
                .create()
                .unwrap_err();
            assert_eq!(err.kind(), diesel_facade::ErrorKind::Config, "{prefix:?}");
        }
    }
}

mod postgres {
    diesel_facade_tests::backend_tests! {
        #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
        diesel::PgConnection => scenarios {
            test_database_is_dropped_with_sessions_still_connected,
            test_database_is_dropped_after_a_panic,
            failing_migration_is_an_error_and_the_database_is_dropped,
            transactional_writes_are_rolled_back_at_the_end,
            transactional_commit_is_a_savepoint_release,
            transactional_panic_rolls_back_and_the_facade_goes_on,
            transactional_nested_independent_writer_is_a_config_error,
            transactional_threads_of_one_test_take_turns,
            transactional_facade_with_a_replica_is_a_config_error,
            transactional_reader_is_not_read_only_on_the_server,
            parallel_transactional_tests_do_not_see_each_other,
            transactional_lock_is_held_until_the_test_ends,
            transactional_lost_connection_fails_every_later_call,
            wrong_password_is_a_config_error_without_the_password,
            unreachable_server_is_disconnected_without_the_password,
            bad_admin_url_and_prefix_are_config_errors,
            test_database_debug_hides_the_password,
        }
    }
}

mod mysql {
    diesel_facade_tests::backend_tests! {
        #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
        diesel::MysqlConnection => scenarios {
            test_database_is_dropped_with_sessions_still_connected,
            test_database_is_dropped_after_a_panic,
            failing_migration_is_an_error_and_the_database_is_dropped,
            transactional_writes_are_rolled_back_at_the_end,
            transactional_commit_is_a_savepoint_release,
            transactional_panic_rolls_back_and_the_facade_goes_on,
            transactional_nested_independent_writer_is_a_config_error,
            transactional_threads_of_one_test_take_turns,
            transactional_facade_with_a_replica_is_a_config_error,
            transactional_reader_is_not_read_only_on_the_server,
            parallel_transactional_tests_do_not_see_each_other,
            transactional_lock_is_held_until_the_test_ends,
            transactional_lost_connection_fails_every_later_call,
            wrong_password_is_a_config_error_without_the_password,
            unreachable_server_is_disconnected_without_the_password,
            bad_admin_url_and_prefix_are_config_errors,
            test_database_debug_hides_the_password,
        }
    }
}

/// Dropping a `TestDatabase` whose server is gone does not panic: the
/// failure is logged at WARN, without the password, and the database stays
/// (removed here directly).
fn drop_without_a_server_logs_and_does_not_panic<C: Proxied>() {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let admin = server_url::<C>();
    let password = url::Url::parse(&admin)
        .unwrap()
        .password()
        .expect("the test server URL has a password")
        .to_owned();
    let proxy = Proxy::start(C::PROTOCOL, &admin).expect("start the proxy");
    let db = TestDatabase::<C>::builder(C::through(&admin, proxy.addr()))
        .name_prefix("ft_drop_no_server")
        .create()
        .expect("create through the proxy");
    let name = db.name().to_owned();
    drop(proxy); // the server is unreachable from now on
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _logging = tracing_subscriber::util::SubscriberInitExt::set_default(subscriber);
        drop(db);
    }));
    assert!(dropped.is_ok(), "Drop panicked");
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains("could not drop the test database"),
        "{logged}"
    );
    assert!(logged.contains(&name), "{logged}");
    assert!(!logged.contains(&password), "{logged}");
    assert!(
        C::database_exists(&admin, &name, ""),
        "nothing could drop it"
    );
    let mut conn = C::establish(&admin).expect("admin connection");
    conn.batch_execute(&format!("DROP DATABASE {name}"))
        .expect("clean up");
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_drop_without_a_server_logs_and_does_not_panic() {
    drop_without_a_server_logs_and_does_not_panic::<diesel::PgConnection>();
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mysql_drop_without_a_server_logs_and_does_not_panic() {
    drop_without_a_server_logs_and_does_not_panic::<diesel::MysqlConnection>();
}

/// On a Galera node (whose sessions run with `autocommit = 0` and whose
/// writers normally arm the abort guard with `BEGIN`) a transactional facade
/// releases and rolls back its savepoints, holds its lock rows, and leaves
/// nothing committed; the test database is dropped across the cluster.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn galera_transactional_facade_commits_nothing() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, MysqlConnection};
    use diesel_facade_tests::scenarios::{Req, TypedQueries};
    use diesel_facade_tests::{galera_urls, TestBackend};

    let nodes = galera_urls();
    let db = TestDatabase::<MysqlConnection>::builder(nodes[0].clone())
        .name_prefix("ftg_testing")
        .create()
        .expect("create on node 1");
    let name = db.name().to_owned();
    MysqlConnection::establish(db.url())
        .expect("connect to the test database")
        .batch_execute(MysqlConnection::SCHEMA)
        .expect("the test schema");
    {
        let mut ctx = Req {
            db: db.transactional_facade().expect("transactional facade"),
        };
        diesel_facade::write(&mut ctx, |ctx| {
            ctx.lock("galera")?;
            MysqlConnection::insert_item(ctx.conn(), 1, "one".into(), 0)?;
            Ok::<_, diesel_facade::Error>(())
        })
        .expect("a writer releases its savepoint");
        let failed: Result<(), diesel_facade::Error> = diesel_facade::write(&mut ctx, |ctx| {
            MysqlConnection::insert_item(ctx.conn(), 2, "two".into(), 0)?;
            Err(diesel_facade::Error::new(
                diesel_facade::ErrorKind::Other,
                "undo",
            ))
        });
        assert!(failed.is_err());
        let (items, locks) = diesel_facade::read(&mut ctx, |ctx| {
            let items = MysqlConnection::count_items(ctx.conn())?;
            let locks = MysqlConnection::lock_rows_named(ctx.conn(), "galera")?.len();
            Ok::<_, diesel::result::Error>((items, locks))
        })
        .unwrap();
        assert_eq!((items, locks), (1, 1));
    }
    let mut ctx = Req {
        db: db.facade().expect("facade"),
    };
    let items =
        diesel_facade::read(&mut ctx, |ctx| MysqlConnection::count_items(ctx.conn())).unwrap();
    assert_eq!(items, 0, "nothing was committed");
    drop(ctx);
    drop(db);
    // The other nodes apply the DROP on their own schedule (a read there is
    // not causal): seen once still listed right after the drop.
    for node in &nodes {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while MysqlConnection::database_exists(node, &name, "") {
            assert!(
                std::time::Instant::now() < deadline,
                "dropped on {} within 10 s",
                node.split('@').next_back().unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// On MySQL/MariaDB, DDL in a transactional test commits the test
/// transaction implicitly: that writer's call is a `Config` error saying
/// so, and every later call fails with `Config` too.
#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mysql_ddl_in_a_transactional_test_is_a_config_error() {
    use diesel::RunQueryDsl;
    use diesel_facade::ErrorKind;

    let db = diesel_facade_tests::test_database::<diesel::MysqlConnection>("td_ddl")
        .create()
        .expect("create");
    let facade = db.transactional_facade().expect("transactional facade");
    let mut ctx = facade.context();
    let err = diesel_facade::write(&mut ctx, |ctx| {
        diesel::sql_query("CREATE TABLE made_in_a_test (x INTEGER)").execute(ctx.conn())?;
        Ok::<_, diesel_facade::Error>(())
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(
        err.message().contains("committed the test transaction"),
        "{err}"
    );
    let err = diesel_facade::read(&mut ctx, |_| Ok::<_, diesel_facade::Error>(())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("discarded"), "{err}");
}

/// `#[writer(retry)]` in a transactional test: the attempt that hit a
/// serialization failure is rolled back to its savepoint and the body runs
/// again, in the same test transaction (PostgreSQL, which recovers from an
/// error inside a savepoint).
#[diesel_facade::writer(retry = 2)]
fn insert_failing_once(
    ctx: &mut diesel_facade::Context<diesel::PgConnection>,
    runs: &std::sync::atomic::AtomicUsize,
) -> Result<(), diesel_facade::Error> {
    use diesel::RunQueryDsl;
    let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    diesel::sql_query(format!(
        "INSERT INTO items (id, name, qty) VALUES ({}, 'run', 0)",
        run + 1
    ))
    .execute(ctx.conn())?;
    if run == 0 {
        diesel::sql_query("DO $$ BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '40001'; END $$")
            .execute(ctx.conn())?;
    }
    Ok(())
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_retry_in_a_transactional_test_reruns_inside_the_test_transaction() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    use diesel_facade_tests::scenarios::{Req, TypedQueries};
    use diesel_facade_tests::TestBackend;

    let db = diesel_facade_tests::test_database::<PgConnection>("td_retry")
        .create()
        .expect("create");
    PgConnection::establish(db.url())
        .expect("connect")
        .batch_execute(PgConnection::SCHEMA)
        .expect("the test schema");
    let facade = db.transactional_facade().expect("transactional facade");
    let runs = std::sync::atomic::AtomicUsize::new(0);
    insert_failing_once(&mut facade.context(), &runs).expect("the retry succeeds");
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(facade.stats().retries, 1);
    let mut ctx = Req { db: facade };
    let (first, second) = diesel_facade::read(&mut ctx, |ctx| {
        Ok::<_, diesel::result::Error>((
            PgConnection::item_exists(ctx.conn(), 1)?,
            PgConnection::item_exists(ctx.conn(), 2)?,
        ))
    })
    .unwrap();
    assert_eq!(
        (first, second),
        (false, true),
        "the failed attempt was rolled back"
    );
}

/// An admin URL whose options libpq itself rejects, before it contacts any
/// server (a misspelt `sslmode`, an unknown parameter, a bad
/// percent-encoding in the password), is a bad admin URL: `Config`, as
/// docs/testing.md promises, not `Disconnected` (which says "the server
/// may come back"); a facade built on such a URL says the same. No message
/// holds the password.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn pg_admin_url_that_libpq_rejects_is_a_config_error() {
    type C = diesel::PgConnection;
    let mut admin = url::Url::parse(&server_url::<C>()).unwrap();
    admin.set_password(Some("pw4Leak")).unwrap();
    for (query, password) in [
        (Some("sslmode=sometimes"), "pw4Leak"),
        (Some("no_such_option=1"), "pw4Leak"),
        (None, "pw4Leak%zz"),
    ] {
        let mut url = admin.clone();
        url.set_query(query);
        let url = url.as_str().replace("pw4Leak", password);
        let err = TestDatabase::<C>::create(url.clone()).unwrap_err();
        assert_eq!(err.kind(), diesel_facade::ErrorKind::Config, "{err}");
        assert!(!err.to_string().contains("pw4Leak"), "{err}");
        let err = diesel_facade::Facade::<C>::builder()
            .writer(url)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), diesel_facade::ErrorKind::Config, "{err}");
        assert!(!err.to_string().contains("pw4Leak"), "{err}");
    }
}

/// libpq reads a `dbname` query parameter over the URL's path: an admin URL
/// that names its database that way (`...?dbname=app`) must still give the
/// test a database of its own, never the admin URL's (where migrations and
/// the tests' commits would land, while the generated database stayed
/// empty).
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn pg_admin_url_with_a_dbname_parameter_still_gets_its_own_database() {
    use diesel::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        app: String,
    }

    type C = diesel::PgConnection;
    let mut admin = url::Url::parse(&server_url::<C>()).unwrap();
    let admin_db = admin.path().trim_start_matches('/').to_owned();
    admin.set_query(Some(&format!(
        "application_name=a%20b&dbname={admin_db}&connect_timeout=10"
    )));
    let db = TestDatabase::<C>::builder(admin.as_str())
        .name_prefix("ft_dbname_param")
        .create()
        .expect("create");
    let facade = db.facade().expect("facade");
    let current = diesel_facade::read(&mut facade.context(), |ctx| {
        diesel::sql_query(
            "SELECT current_database()::text AS name, current_setting('application_name') AS app",
        )
        .get_result::<Name>(ctx.conn().database_enforced())
    })
    .expect("read");
    assert_eq!(current.name, db.name(), "the facade's database");
    assert_eq!(
        current.app, "a b",
        "the other parameters are kept as they were"
    );
}
