//! Named databases on one context (`#[facade(api)]`, `db = api`), with the
//! default and the api database on different backends.

use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_facade_tests::named;

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn sqlite_main_postgres_api_each_function_uses_the_database_it_names() {
    named::each_function_uses_the_database_it_names::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn sqlite_main_postgres_api_nests_like_the_default() {
    named::a_named_database_nests_like_the_default::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn mariadb_main_postgres_api_each_function_uses_the_database_it_names() {
    named::each_function_uses_the_database_it_names::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn mariadb_main_postgres_api_nests_like_the_default() {
    named::a_named_database_nests_like_the_default::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn postgres_main_mariadb_api_each_function_uses_the_database_it_names() {
    named::each_function_uses_the_database_it_names::<PgConnection, MysqlConnection>();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_default_writer_inside_an_api_reader_commits_with_the_outermost_call()
{
    named::a_default_writer_inside_an_api_reader_commits_with_the_outermost_call::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_calls_back_into_a_database_join_its_open_transaction() {
    named::calls_back_into_a_database_join_its_open_transaction::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting(
) {
    named::a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_failed_commit_after_another_database_committed_is_partially_committed(
) {
    named::a_failed_commit_after_another_database_committed_is_partially_committed::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_default_writer_inside_an_api_reader_commits_with_the_outermost_call()
{
    named::a_default_writer_inside_an_api_reader_commits_with_the_outermost_call::<
        MysqlConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_calls_back_into_a_database_join_its_open_transaction() {
    named::calls_back_into_a_database_join_its_open_transaction::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting(
) {
    named::a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting::<
        MysqlConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_failed_commit_after_another_database_committed_is_partially_committed(
) {
    named::a_failed_commit_after_another_database_committed_is_partially_committed::<
        MysqlConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting(
) {
    named::a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_caught_panic_in_a_joined_other_database_commits_nothing() {
    named::a_caught_panic_in_a_joined_other_database_commits_nothing::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting(
) {
    named::a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_caught_panic_in_a_joined_other_database_commits_nothing() {
    named::a_caught_panic_in_a_joined_other_database_commits_nothing::<MysqlConnection, PgConnection>(
    );
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn sqlite_independent_writer_reached_through_another_database_inside_a_writer_fails_at_once() {
    named::sqlite_independent_writer_reached_through_another_database_inside_a_writer_fails_at_once::<
        PgConnection,
    >();
}

mod attacks {
    use diesel::connection::SimpleConnection;
    use diesel::{PgConnection, QueryResult, SqliteConnection};
    use diesel_facade::{reader, writer, ErrorKind};
    use diesel_facade_tests::named::TwoDatabases;
    use diesel_facade_tests::scenarios::TypedQueries;

    type Two = TwoDatabases<SqliteConnection, PgConnection>;

    #[writer(db = api)]
    fn insert_api(ctx: &mut Two, id: i32, handle_an_error: bool) -> QueryResult<usize> {
        let inserted = PgConnection::insert_item(ctx.conn(), id, format!("api-{id}"), 1)?;
        if handle_an_error {
            // PostgreSQL aborts the transaction at this error, which the
            // body ignores: its COMMIT cannot commit anything.
            let _ = ctx.conn().batch_execute("SELECT 1 / 0");
        }
        Ok(inserted)
    }

    #[reader(db = api)]
    fn api_has(ctx: &mut Two, id: i32) -> QueryResult<bool> {
        PgConnection::item_exists(ctx.conn(), id)
    }

    #[reader]
    fn main_has(ctx: &mut Two, id: i32) -> QueryResult<bool> {
        SqliteConnection::item_exists(ctx.conn(), id)
    }

    /// A main writer whose on-commit hook panics, and which wrote to the
    /// api database in its body (that transaction's COMMIT follows main's).
    #[writer]
    fn main_and_api_with_a_panicking_hook(ctx: &mut Two, id: i32) -> QueryResult<()> {
        ctx.on_commit(|| panic!("an on_commit hook of main panics"));
        SqliteConnection::insert_item(ctx.conn(), id, format!("main-{id}"), 1)?;
        insert_api(ctx, id, false)?;
        Ok(())
    }

    /// The body returned Ok and main committed; a hook of main that panics
    /// afterwards must not roll back the api transaction that waited for
    /// it (it did: main committed, api silently rolled back, no
    /// PartiallyCommitted).
    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn a_panicking_on_commit_hook_of_the_outermost_database_does_not_roll_back_the_others() {
        let mut ctx = Two::setup("atk_hook_panic");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            main_and_api_with_a_panicking_hook(&mut ctx, 7)
        }));
        assert!(outcome.is_err(), "the hook's panic goes on to the caller");
        assert!(main_has(&mut ctx, 7).unwrap(), "main committed");
        assert!(
            api_has(&mut ctx, 7).unwrap(),
            "the api transaction committed after main's, as for a body that returned Ok"
        );
    }

    #[writer]
    fn main_then_api_that_handled_an_error(ctx: &mut Two, id: i32) -> QueryResult<()> {
        SqliteConnection::insert_item(ctx.conn(), id, format!("main-{id}"), 1)?;
        insert_api(ctx, id, true)?;
        Ok(())
    }

    /// A PartiallyCommitted error never says "nothing was committed": main
    /// did commit.
    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn a_partially_committed_message_never_says_nothing_was_committed() {
        let mut ctx = Two::setup("atk_partial_message");
        let err = main_then_api_that_handled_an_error(&mut ctx, 8).unwrap_err();
        let err = diesel_facade::Error::from(err);
        assert_eq!(err.kind(), ErrorKind::PartiallyCommitted, "{err}");
        assert!(!err.kind().is_retryable());
        assert!(main_has(&mut ctx, 8).unwrap(), "main committed");
        assert!(!api_has(&mut ctx, 8).unwrap(), "api did not");
        let message = err.to_string();
        // Only ever about the database that did not commit.
        let unscoped = message.replace("nothing was committed on `api`", "");
        assert!(
            !unscoped.contains("nothing was committed") && !unscoped.contains("nothing committed"),
            "{message}"
        );
        assert!(
            message.contains("committed on the default database"),
            "{message}"
        );
    }

    #[writer]
    fn main_insert_then_panic(ctx: &mut Two, id: i32) -> QueryResult<()> {
        SqliteConnection::insert_item(ctx.conn(), id, format!("main-{id}"), 1)?;
        panic!("a bug in a nested call");
    }

    #[reader(db = api)]
    fn api_reader_catches_a_panic_in_main(ctx: &mut Two, id: i32) -> QueryResult<()> {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            main_insert_then_panic(ctx, id)
        }));
        assert!(caught.is_err());
        Ok(())
    }

    #[writer]
    fn main_writer_begun_inside_api(ctx: &mut Two, id: i32) -> QueryResult<()> {
        SqliteConnection::insert_item(ctx.conn(), id, format!("main-{id}"), 1)?;
        api_reader_catches_a_panic_in_main(ctx, id + 1)
    }

    #[writer(db = api)]
    fn api_writer_outermost(ctx: &mut Two, id: i32) -> QueryResult<()> {
        insert_api(ctx, id, false)?;
        main_writer_begun_inside_api(ctx, id)
    }

    /// docs/databases.md: "a panic in a call that had joined one of them
    /// [the transactions begun inside the outermost call on another
    /// database] rolls that one back; if the panic is caught and the
    /// outermost body still returns Ok, nothing is committed and the call
    /// fails". Here the joined transaction is main's, begun inside the api
    /// writer, and still open on the stack when the panic is caught.
    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn a_caught_panic_in_a_call_that_joined_a_transaction_begun_inside_commits_nothing() {
        let mut ctx = Two::setup("atk_frame_panic");
        let result = api_writer_outermost(&mut ctx, 20);
        let (m20, m21, a20) = (
            main_has(&mut ctx, 20).unwrap(),
            main_has(&mut ctx, 21).unwrap(),
            api_has(&mut ctx, 20).unwrap(),
        );
        assert!(
            result.is_err() && !m20 && !m21 && !a20,
            "{result:?}, main 20: {m20}, main 21 (written by the panicking call): {m21}, api 20: {a20}"
        );
    }

    #[writer]
    fn main_insert(ctx: &mut Two, id: i32) -> QueryResult<usize> {
        SqliteConnection::insert_item(ctx.conn(), id, format!("main-{id}"), 1)
    }

    #[writer(db = api)]
    fn api_writer_then_main_panics(ctx: &mut Two, id: i32) -> QueryResult<()> {
        insert_api(ctx, id, false)?;
        main_insert_then_panic(ctx, id)
    }

    #[writer]
    fn main_writer_then_api_then_err(ctx: &mut Two, id: i32) -> QueryResult<()> {
        SqliteConnection::insert_item(ctx.conn(), id, format!("main-{id}"), 1)?;
        insert_api(ctx, id, false)?;
        Err(diesel::result::Error::RollbackTransaction)
    }

    /// Every way a call across the two databases can fail, many times over
    /// on pools of two connections: afterwards both pools still hand out
    /// connections at once, with no transaction left open.
    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn failed_and_panicked_calls_across_databases_leak_no_connection() {
        use std::time::{Duration, Instant};
        let mut ctx = Two {
            main: diesel_facade_tests::facade::<SqliteConnection>("atk_leak_m", |b| {
                b.max_pool_size(2).pool_timeout(Duration::from_secs(2))
            }),
            api: diesel_facade_tests::facade::<PgConnection>("atk_leak_a", |b| {
                b.max_pool_size(2).pool_timeout(Duration::from_secs(2))
            }),
        };
        let catch = |f: &mut dyn FnMut()| {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        };
        for round in 0..6 {
            let id = 100 * (round + 1);
            catch(&mut || drop(api_writer_then_main_panics(&mut ctx, id)));
            assert!(main_writer_then_api_then_err(&mut ctx, id + 1).is_err());
            assert!(main_then_api_that_handled_an_error(&mut ctx, id + 2).is_err());
            catch(&mut || drop(main_and_api_with_a_panicking_hook(&mut ctx, id + 3)));
            assert!(api_writer_outermost(&mut ctx, id + 4).is_err());
        }
        let started = Instant::now();
        insert_api(&mut ctx, 1, false).unwrap();
        main_insert(&mut ctx, 1).unwrap();
        assert!(started.elapsed() < Duration::from_secs(1));
        // Nothing of the failed calls is visible; the hook's call committed.
        for round in 0..6 {
            let id = 100 * (round + 1);
            assert!(!api_has(&mut ctx, id).unwrap());
            assert!(!main_has(&mut ctx, id + 1).unwrap() && !api_has(&mut ctx, id + 1).unwrap());
            assert!(main_has(&mut ctx, id + 2).unwrap() && !api_has(&mut ctx, id + 2).unwrap());
            assert!(main_has(&mut ctx, id + 3).unwrap() && api_has(&mut ctx, id + 3).unwrap());
            assert!(!main_has(&mut ctx, id + 4).unwrap() && !api_has(&mut ctx, id + 4).unwrap());
        }
    }

    use diesel_facade_tests::TestBackend;

    type Same = TwoDatabases<PgConnection, PgConnection>;

    #[writer(db = api)]
    fn api_bump(ctx: &mut Same) -> QueryResult<i64> {
        PgConnection::query_n(
            ctx.conn(),
            "UPDATE counters SET value = value + 1 WHERE id = 'c' RETURNING value::bigint AS n",
        )
    }

    #[writer]
    fn main_bump_then_api_bump(ctx: &mut Same) -> QueryResult<i64> {
        PgConnection::query_n(
            ctx.conn(),
            "UPDATE counters SET value = value + 1 WHERE id = 'c' RETURNING value::bigint AS n",
        )?;
        api_bump(ctx)
    }

    /// One Facade for both fields: the api call inside a main writer would
    /// run on a second connection of the same database, waiting forever for
    /// the row lock its own caller holds. It fails at once instead.
    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn the_same_facade_for_both_databases_does_not_hang() {
        let db = diesel_facade_tests::facade::<PgConnection>("atk_same", |b| b);
        let mut ctx = Same {
            main: db.clone(),
            api: db,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let call = std::thread::spawn(move || {
            let _ = tx.send(format!("{:?}", main_bump_then_api_bump(&mut ctx)));
        });
        let outcome = rx.recv_timeout(std::time::Duration::from_secs(8));
        let outcome = outcome.expect("still waiting after 8 s");
        // The thread still drops the facade (its pool and connections):
        // let it finish, so the test binary never exits while a client
        // library is closing connections on another thread (seen: SIGSEGV
        // at exit, 1 run in 40).
        call.join().expect("the calling thread");
        assert!(
            outcome.contains("Config") && outcome.contains("the same `Facade`"),
            "{outcome}"
        );
    }

    #[writer]
    fn main_and_api(ctx: &mut Two, id: i32) -> QueryResult<()> {
        SqliteConnection::insert_item(ctx.conn(), id, format!("main-{id}"), 1)?;
        insert_api(ctx, id, false)?;
        Ok(())
    }

    /// A panic out of the outermost database's COMMIT that is not an
    /// on-commit hook's (here: the application's instrumentation, at the
    /// COMMIT event, before the COMMIT is sent) leaves that database
    /// uncommitted: the other database must not commit either.
    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn a_panic_at_the_outermost_commit_commits_no_other_database() {
        use diesel::connection::{Instrumentation, InstrumentationEvent};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let armed = Arc::new(AtomicBool::new(false));
        let trap = armed.clone();
        let main = diesel_facade_tests::facade::<SqliteConnection>("atk_instr_m", move |b| {
            b.instrumentation(move || {
                let trap = trap.clone();
                Box::new(move |event: InstrumentationEvent<'_>| {
                    if matches!(event, InstrumentationEvent::CommitTransaction { .. })
                        && trap.load(Ordering::SeqCst)
                    {
                        panic!("the application's instrumentation panics at COMMIT");
                    }
                }) as Box<dyn Instrumentation>
            })
        });
        let mut ctx = Two {
            main,
            api: diesel_facade_tests::facade::<PgConnection>("atk_instr_a", |b| b),
        };
        armed.store(true, Ordering::SeqCst);
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main_and_api(&mut ctx, 30)));
        armed.store(false, Ordering::SeqCst);
        assert!(outcome.is_err(), "the panic goes on to the caller");
        assert!(!main_has(&mut ctx, 30).unwrap(), "main never committed");
        assert!(
            !api_has(&mut ctx, 30).unwrap(),
            "so api must not have either"
        );
    }

    #[writer(db = api, independent)]
    fn api_bump_independently(ctx: &mut Same) -> QueryResult<i64> {
        api_bump(ctx)
    }

    #[writer]
    fn main_bump_then_independent_api_bump(ctx: &mut Same) -> Result<i64, diesel_facade::Error> {
        PgConnection::query_n(
            ctx.conn(),
            "UPDATE counters SET value = value + 1 WHERE id = 'c' RETURNING value::bigint AS n",
        )?;
        Ok(api_bump_independently(ctx)?)
    }

    /// The same Facade for both fields, through an independent writer: it
    /// waits for the row lock its caller holds, bounded as a nested
    /// independent writer of that database is (`LockTimeout` after 10 s),
    /// instead of forever.
    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn an_independent_writer_on_the_same_facade_does_not_wait_forever() {
        let db = diesel_facade_tests::facade::<PgConnection>("atk_same_indep", |b| b);
        let mut ctx = Same {
            main: db.clone(),
            api: db,
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let call = std::thread::spawn(move || {
            let _ = tx.send(main_bump_then_independent_api_bump(&mut ctx).map_err(|e| e.kind()));
        });
        let outcome = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("still waiting after 20 s");
        // As above: no exit while the thread drops the facade.
        call.join().expect("the calling thread");
        assert_eq!(outcome, Err(ErrorKind::LockTimeout));
    }
}
