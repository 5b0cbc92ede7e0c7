//! The shared scenarios on the PostgreSQL primary of `scripts/test-servers`,
//! and what only PostgreSQL can show.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::{Connection, PgConnection, RunQueryDsl};
use diesel_facade::{writer, ErrorKind, Facade};

type Req = diesel_facade_tests::scenarios::Req<PgConnection>;

diesel_facade_tests::backend_tests! {
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    diesel::PgConnection => scenarios {
        composed_call_uses_one_checkout_one_begin_one_commit,
        nested_reader_sees_the_outer_writers_uncommitted_row,
        err_rolls_back_everything,
        joined_error_does_not_roll_back_the_outer_transaction,
        panic_rolls_back_and_the_pool_recovers,
        savepoint_rolls_back_only_its_own_work,
        independent_commits_while_the_outer_rolls_back,
        on_commit_runs_after_commit_only,
        context_and_closure_forms_work_together,
        writes_in_sequence_from_many_threads_all_commit,
        unique_violation_is_classified,
        pool_exhaustion_is_a_pool_timeout_that_names_the_cause,
        raw_sql_write_in_a_reader_is_a_read_only_violation,
        bare_tables_load_through_as_query,
        locked_counter_ends_at_exactly_threads_times_iterations,
        lock_names_are_validated_and_stored_verbatim,
        a_missing_locks_table_says_to_run_the_migrations,
        retry_is_inert_on_a_joined_call_and_counts_whole_transactions,
        // Writers that run at the same time (ConcurrentWriters).
        without_the_lock_updates_are_lost,
        opposite_lock_order_deadlock_is_retried,
        lock_timeout_and_try_lock_while_another_transaction_holds_it,
        // A session that can be killed.
        a_connection_lost_before_commit_is_retried_on_a_fresh_one,
        a_pooled_connection_killed_between_calls_is_replaced_without_a_retry,
        a_never_used_pooled_connection_the_server_closed_is_replaced,
    }
}

/// A connection lost while COMMIT is in flight: the transaction may or may
/// not have committed, so the error is `CommitUnknown` and even
/// `#[writer(retry)]` does not re-run it. COMMIT is made slow with a
/// deferred constraint trigger, and the session is killed during it.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn a_connection_lost_during_commit_is_commit_unknown_and_not_retried() {
    use diesel_facade_tests::{kill_session, server_url, SessionId};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    let db = diesel_facade_tests::facade::<diesel::PgConnection>("commit_unknown", |b| b);
    let admin = server_url::<diesel::PgConnection>();
    diesel_facade::write(&mut Req { db: db.clone() }, |ctx| {
        diesel::connection::SimpleConnection::batch_execute(
            ctx.conn(),
            "CREATE TABLE slow (id INTEGER);
             CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$;
             CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON slow
               DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();",
        )
    })
    .expect("create the slow-commit table");

    let attempts = AtomicUsize::new(0);
    let (pid_tx, pid_rx) = mpsc::channel::<i64>();
    let killer = std::thread::spawn(move || {
        let pid = pid_rx.recv().expect("the session id");
        // The body has returned by now and COMMIT is sleeping in the trigger.
        std::thread::sleep(Duration::from_millis(700));
        kill_session::<diesel::PgConnection>(&admin, pid);
    });

    #[writer(retry = 3)]
    fn slow_insert(
        ctx: &mut Req,
        attempts: &AtomicUsize,
        pid_tx: &mpsc::Sender<i64>,
    ) -> Result<(), diesel_facade::Error> {
        attempts.fetch_add(1, Ordering::SeqCst);
        let pid = diesel::sql_query("SELECT pg_backend_pid()::bigint AS id")
            .get_result::<SessionId>(ctx.conn())?
            .id;
        let _ = pid_tx.send(pid);
        diesel::sql_query("INSERT INTO slow (id) VALUES (1)").execute(ctx.conn())?;
        Ok(())
    }

    let err = slow_insert(&mut Req { db: db.clone() }, &attempts, &pid_tx).unwrap_err();
    killer.join().expect("killer thread");
    assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");
    assert!(err.message().contains("COMMIT"), "{err}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "never retried");
    assert_eq!(db.stats().retries, 0);
}

mod trust {
    diesel_facade_tests::backend_tests! {
        #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
        diesel::PgConnection => trust {
            ok_with_a_nested_transaction_left_open_commits_nothing,
            savepoint_ok_with_a_nested_transaction_left_open_is_rolled_back,
            hooks_of_a_savepoint_that_panicked_never_run,
            a_lock_after_a_caught_savepoint_panic_is_taken,
            a_panicking_hook_runs_the_others_and_the_commit_stands,
            a_lock_first_taken_inside_a_savepoint_is_refused,
            a_handled_error_inside_a_savepoint_lets_the_transaction_commit,
            a_lock_survives_a_savepoint_rollback,
            a_deadlock_inside_a_savepoint_is_retried_by_the_outermost_retry,
            independent_commits_while_the_outer_writer_rolls_back,
            a_failed_savepoint_rollback_that_is_not_retryable_is_not_retried,
            an_independent_writer_blocked_by_its_own_outer_writer_times_out,
            a_handled_error_that_aborted_the_transaction_is_not_reported_committed,
            an_own_commit_statement_is_never_reported_rolled_back,
        }
    }
}

/// A body that replaces the connection's diesel instrumentation would blind
/// the facade (retries, swallowed aborts): that transaction is rolled back
/// with an error that names the fix, and the next one on the same pooled
/// connection is watched again (its 40001 is retried).
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn a_body_replacing_the_instrumentation_is_rolled_back_and_the_watch_restored() {
    use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
    use diesel_facade::{Context, Error};

    struct Blind;
    impl Instrumentation for Blind {
        fn on_connection_event(&mut self, _: InstrumentationEvent<'_>) {}
    }

    #[writer(retry = 2)]
    fn serialization_failure(
        ctx: &mut Context<diesel::PgConnection>,
        attempts: &AtomicUsize,
    ) -> Result<(), Error> {
        attempts.fetch_add(1, Ordering::SeqCst);
        ctx.conn().batch_execute(
            "DO $$BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END$$",
        )?;
        Ok(())
    }

    let db = diesel_facade_tests::facade::<diesel::PgConnection>("instrumentation_swap", |b| {
        b.max_pool_size(1)
    });
    let err = diesel_facade::write(&mut db.context(), |ctx| {
        ctx.conn()
            .batch_execute("INSERT INTO items (id, name, qty) VALUES (1, 'x', 0)")?;
        ctx.conn().set_instrumentation(Blind);
        Ok::<_, Error>(())
    })
    .expect_err("not committed unwatched");
    assert!(
        err.message().contains("FacadeBuilder::instrumentation"),
        "{err}"
    );
    let attempts = AtomicUsize::new(0);
    let err = serialization_failure(&mut db.context(), &attempts).expect_err("always fails");
    assert_eq!(err.kind(), ErrorKind::SerializationFailure, "{err}");
    assert_eq!(
        attempts.load(Ordering::SeqCst),
        3,
        "watched again: retried twice"
    );
    let rows: i64 = diesel_facade::write(&mut db.context(), |ctx| {
        <diesel::PgConnection as diesel_facade_tests::TestBackend>::query_n(
            ctx.conn(),
            "SELECT COUNT(*) AS n FROM items",
        )
    })
    .expect("count");
    assert_eq!(rows, 0, "the unwatched transaction was rolled back");
}

/// A password rotated on the server while the pool holds a healthy
/// connection: a request waits for that connection instead of failing at
/// once with the refusal (it fails fast only when the pool has nothing to
/// wait for).
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn a_refused_reconnect_waits_for_a_healthy_pooled_connection() {
    use diesel::connection::SimpleConnection;
    use diesel_facade_tests::TestBackend;

    let admin = diesel_facade_tests::server_url::<diesel::PgConnection>();
    let url = diesel::PgConnection::create_database(&admin, "rotation");
    let database = url::Url::parse(&url).expect("url").path()[1..].to_owned();
    let user = format!("ft_rotation_{}", std::process::id());
    let mut root = diesel::PgConnection::establish(&admin).expect("admin");
    root.batch_execute(&format!(
        "DROP ROLE IF EXISTS {user}; CREATE ROLE {user} LOGIN PASSWORD 'old_pw'; \
         GRANT ALL ON DATABASE {database} TO {user}"
    ))
    .expect("role");
    let mut login = url::Url::parse(&url).expect("url");
    login.set_username(&user).expect("user");
    login.set_password(Some("old_pw")).expect("password");
    let db = Facade::<diesel::PgConnection>::builder()
        .writer(login.to_string())
        .max_pool_size(4)
        .pool_timeout(Duration::from_secs(10))
        .build()
        .expect("facade");
    diesel_facade::write(&mut db.context(), |ctx| {
        ctx.conn().batch_execute("SELECT 1")
    })
    .expect("one healthy connection");
    root.batch_execute(&format!("ALTER ROLE {user} PASSWORD 'new_pw'"))
        .expect("rotate");
    std::thread::scope(|s| {
        let holder = s.spawn(|| {
            diesel_facade::write(&mut db.context(), |ctx| {
                ctx.conn().batch_execute("SELECT pg_sleep(0.5)")
            })
        });
        std::thread::sleep(Duration::from_millis(100));
        let during = diesel_facade::write(&mut db.context(), |ctx| {
            ctx.conn().batch_execute("SELECT 1")
        });
        holder
            .join()
            .expect("holder")
            .expect("the healthy connection works");
        during.expect("waited for the healthy connection");
    });
    drop(db);
    // One statement per call: DROP DATABASE refuses to run in a batch.
    let _ = root.batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"));
    let _ = root.batch_execute(&format!("DROP ROLE IF EXISTS {user}"));
}

/// A writer that changes its session's defaults (`SET SESSION
/// CHARACTERISTICS AS TRANSACTION READ ONLY`) and commits does not make
/// every later writer on that pooled connection fail: writers begin with
/// `BEGIN READ WRITE`.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn a_writer_that_changed_the_session_does_not_poison_the_pool() {
    use diesel::connection::SimpleConnection;
    use diesel_facade_tests::TestBackend;
    let db = diesel_facade_tests::facade::<PgConnection>("pg_poison", |b| b.max_pool_size(1));
    for statement in [
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "SET default_transaction_read_only = on",
    ] {
        diesel_facade::write(&mut db.context(), |ctx| ctx.conn().batch_execute(statement)).unwrap();
        for _ in 0..3 {
            let written = diesel_facade::write(&mut db.context(), |ctx| {
                PgConnection::query_n(
                    ctx.conn(),
                    "UPDATE counters SET value = value + 1 WHERE id = 'c' RETURNING value::bigint AS n",
                )
            });
            assert!(written.is_ok(), "after {statement}: {written:?}");
        }
    }
}

/// `pg_lock_stamp(false)` takes the same row lock without writing the row:
/// locked increments stay exact, on facades with it alone and on facades
/// with either setting taking the same lock at once.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn without_the_stamp_locked_increments_are_exact_and_exclude_stamped_ones() {
    use diesel_facade_tests::scenarios::locked_increments_are_exact;
    let unstamped = diesel_facade_tests::facade::<PgConnection>("unstamped_counter", |b| {
        b.max_pool_size(8).pg_lock_stamp(false)
    });
    locked_increments_are_exact(&[unstamped]);
    let (stamped, unstamped) = diesel_facade_tests::two_facades::<PgConnection>(
        "mixed_counter",
        |b| b.max_pool_size(8),
        |b| b.max_pool_size(8).pg_lock_stamp(false),
    );
    locked_increments_are_exact(&[stamped, unstamped]);
}

/// Without the stamp, two writers taking two existing locks in opposite
/// orders deadlock as with it, and the victim is retried.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn without_the_stamp_a_deadlock_between_locks_is_retried() {
    let db = diesel_facade_tests::facade::<PgConnection>("unstamped_deadlock", |b| {
        b.max_pool_size(4).pg_lock_stamp(false)
    });
    diesel_facade_tests::scenarios::a_deadlock_between_existing_lock_rows_is_retried(&db);
}

/// While a transaction holds a lock, taken with or without the stamp, a
/// facade with either setting cannot take it: `lock_timeout` is a
/// `LockTimeout` and `try_lock` says "taken"; the lock is free once the
/// holder's transaction ends.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn without_the_stamp_lock_timeout_and_try_lock_see_a_lock_held_either_way() {
    use diesel_facade_tests::scenarios::lock_timeout_and_try_lock_while_held_by;
    let unstamped =
        |b: diesel_facade::FacadeBuilder<PgConnection>| b.max_pool_size(4).pg_lock_stamp(false);
    let stamped = |b: diesel_facade::FacadeBuilder<PgConnection>| b.max_pool_size(4);
    let db = diesel_facade_tests::facade::<PgConnection>("unstamped_held", unstamped);
    lock_timeout_and_try_lock_while_held_by(&db, &db);
    let (holder, waiter) =
        diesel_facade_tests::two_facades::<PgConnection>("stamped_holds", stamped, unstamped);
    lock_timeout_and_try_lock_while_held_by(&holder, &waiter);
    let (holder, waiter) =
        diesel_facade_tests::two_facades::<PgConnection>("unstamped_holds", unstamped, stamped);
    lock_timeout_and_try_lock_while_held_by(&holder, &waiter);
}

#[derive(diesel::QueryableByName)]
struct Stamp {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    micros: i64,
}

/// The lock row's `ts`, in microseconds since the epoch.
fn stamp(db: &Facade<PgConnection>, name: &str) -> i64 {
    // A raw query, which a reader's read-only connection does not run.
    diesel_facade::write(&mut db.context(), |ctx| {
        diesel::sql_query(
            "SELECT (extract(epoch FROM ts) * 1000000)::bigint AS micros FROM locks WHERE id = $1",
        )
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Stamp>(ctx.conn())
    })
    .unwrap()
    .micros
}

/// By default every take writes the lock row's `ts`; with
/// `pg_lock_stamp(false)` (here from a `FacadeConfig`) the first take of a
/// name makes its row and later takes leave `ts` as it is.
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn the_stamp_moves_on_every_take_and_without_it_ts_keeps_the_first() {
    let database = diesel_facade_tests::test_database::<PgConnection>("lock_stamp")
        .create()
        .unwrap();
    let stamped = database.facade().unwrap();
    let unstamped = Facade::<PgConnection>::from_config(&diesel_facade::FacadeConfig {
        connection: database.url().to_owned(),
        pg_lock_stamp: Some(false),
        ..Default::default()
    })
    .unwrap();
    let take = |db: &Facade<PgConnection>, name: &str| {
        std::thread::sleep(Duration::from_millis(5));
        diesel_facade::write(&mut db.context(), |ctx| ctx.lock(name)).unwrap();
        stamp(db, name)
    };
    let first = take(&stamped, "stamped");
    let second = take(&stamped, "stamped");
    assert!(second > first, "{second} > {first}");
    assert_eq!(take(&unstamped, "stamped"), second);
    let made = take(&unstamped, "unstamped");
    assert_eq!(take(&unstamped, "unstamped"), made);
    assert!(
        diesel_facade::write(&mut unstamped.context(), |ctx| ctx.try_lock("unstamped")).unwrap()
    );
    assert_eq!(stamp(&unstamped, "unstamped"), made);
    let again = take(&stamped, "unstamped");
    assert!(again > made, "{again} > {made}");
}

#[derive(diesel::QueryableByName)]
struct Highest {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    n: i32,
}

/// "The next number", under a lock, at `isolation`: read the highest and
/// insert it plus one.
#[writer(retry = 100)]
fn insert_the_next_number(
    ctx: &mut diesel_facade::Context<PgConnection>,
    isolation: &str,
) -> Result<(), diesel_facade::Error> {
    use diesel::connection::SimpleConnection;
    ctx.conn()
        .batch_execute(&format!("SET TRANSACTION ISOLATION LEVEL {isolation}"))?;
    ctx.lock("numbers")?;
    let highest = diesel::sql_query("SELECT coalesce(max(n), 0) AS n FROM numbers")
        .get_result::<Highest>(ctx.conn())?
        .n;
    diesel::sql_query("INSERT INTO numbers (n) VALUES ($1)")
        .bind::<diesel::sql_types::Integer, _>(highest + 1)
        .execute(ctx.conn())?;
    Ok(())
}

/// At REPEATABLE READ and SERIALIZABLE a facade without the stamp takes the
/// lock as with it (the take writes the row), so a transaction that waited
/// for the lock fails with a retryable `SerializationFailure` instead of
/// going on with a snapshot older than the holder's commit: numbers handed
/// out under the lock stay distinct, on facades without the stamp alone and
/// mixed with stamped ones. (Without the write, REPEATABLE READ handed out
/// the same number many times.)
#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn without_the_stamp_a_lock_at_repeatable_read_or_serializable_is_taken_with_it() {
    use diesel::connection::SimpleConnection;
    use diesel_facade_tests::TestBackend;
    const THREADS: usize = 4;
    const CALLS: usize = 25;
    for isolation in ["REPEATABLE READ", "SERIALIZABLE"] {
        let (stamped, unstamped) = diesel_facade_tests::two_facades::<PgConnection>(
            "stamp_isolation",
            |b| b.max_pool_size(8),
            |b| b.max_pool_size(8).pg_lock_stamp(false),
        );
        diesel_facade::write(&mut stamped.context(), |ctx| {
            ctx.conn()
                .batch_execute("CREATE TABLE numbers (n INTEGER NOT NULL)")
        })
        .unwrap();
        for facades in [
            vec![unstamped.clone()],
            vec![stamped.clone(), unstamped.clone()],
        ] {
            diesel_facade::write(&mut stamped.context(), |ctx| {
                ctx.conn().batch_execute("DELETE FROM numbers")
            })
            .unwrap();
            diesel_facade_tests::spread(&facades, THREADS, CALLS, |db| {
                insert_the_next_number(&mut db.context(), isolation).unwrap();
            });
            let (rows, distinct) = diesel_facade::write(&mut stamped.context(), |ctx| {
                let rows = PgConnection::query_n(ctx.conn(), "SELECT count(*) AS n FROM numbers")?;
                let distinct = PgConnection::query_n(
                    ctx.conn(),
                    "SELECT count(DISTINCT n) AS n FROM numbers",
                )?;
                Ok::<_, diesel_facade::Error>((rows, distinct))
            })
            .unwrap();
            let expected = (facades.len() * THREADS * CALLS) as i64;
            assert_eq!(
                (rows, distinct),
                (expected, expected),
                "{isolation}, {} facade(s)",
                facades.len()
            );
        }
    }
}
