//! The shared scenarios on the MariaDB primary of `scripts/test-servers`.

diesel_facade_tests::backend_tests! {
    #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
    diesel::MysqlConnection => scenarios {
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

mod trust {
    diesel_facade_tests::backend_tests! {
        #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
        diesel::MysqlConnection => trust {
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
            a_handled_error_then_ok_commits_the_rest,
        }
    }
}

/// The facade's own `BEGIN`/`COMMIT` statements go as prepared statements
/// until the server refuses to prepare one (MySQL does not prepare `BEGIN`;
/// MariaDB refuses `PREPARE` itself, used here): that one and the rest then
/// run as one batch, and the session does not try to prepare again.
#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn control_statements_fall_back_to_a_batch_where_the_server_will_not_prepare() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    use diesel_facade::testing::mysql_control_statements;
    let url = diesel_facade_tests::server_url::<diesel::MysqlConnection>();
    let mut conn = diesel::MysqlConnection::establish(&url).expect("connect");
    let value = |conn: &mut diesel::MysqlConnection| {
        <diesel::MysqlConnection as diesel_facade_tests::TestBackend>::query_n(
            conn,
            "SELECT CAST(@facade_probe AS SIGNED) AS n",
        )
        .expect("read @facade_probe")
    };
    let mut prepared = true;
    mysql_control_statements(&mut conn, &mut prepared, &["SET @facade_probe = 1"])
        .expect("a preparable statement");
    assert!(prepared);
    assert_eq!(value(&mut conn), 1);
    mysql_control_statements(
        &mut conn,
        &mut prepared,
        &[
            "SET @facade_probe = 2",
            "PREPARE diesel_facade_probe FROM 'SELECT 1'",
            "SET @facade_probe = @facade_probe * 10",
        ],
    )
    .expect("the rest as a batch");
    assert!(!prepared, "the session remembers");
    assert_eq!(value(&mut conn), 20, "every statement ran, once");
    conn.batch_execute("DEALLOCATE PREPARE diesel_facade_probe")
        .expect("the batch prepared it");
    // Nothing runs twice or is skipped once the session remembers, and an
    // error stops the batch.
    let err = mysql_control_statements(
        &mut conn,
        &mut prepared,
        &[
            "SET @facade_probe = 3",
            "SELECT * FROM no_such_table",
            "SET @facade_probe = 4",
        ],
    )
    .expect_err("the batch stops at the error");
    assert!(err.to_string().contains("no_such_table"), "{err}");
    assert_eq!(value(&mut conn), 3);
}

/// A body's own `SET SESSION` of the two settings the facade sets and
/// restores itself (`innodb_lock_wait_timeout`, `max_statement_time`) is a
/// session change like any other: the connection is not reused, so the
/// next transaction neither waits nor is interrupted by the body's values.
/// (Found by an attack pass: they stayed on the pooled connection, and a
/// tiny `max_statement_time` failed every later transaction.)
#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn a_body_s_own_session_timeouts_do_not_outlive_its_transaction() {
    use diesel_facade_tests::scenarios::{Req, TypedQueries};
    use diesel_facade_tests::TestBackend;
    type C = diesel::MysqlConnection;
    let db = diesel_facade_tests::facade::<C>("own_session_timeouts", |b| b.max_pool_size(1));
    let mut ctx = Req { db: db.clone() };
    let settings = |ctx: &mut Req<C>| {
        diesel_facade::read(ctx, |ctx| {
            let lock_wait = <C as TestBackend>::query_n(
                ctx.conn().database_enforced(),
                "SELECT CAST(@@SESSION.innodb_lock_wait_timeout AS SIGNED) AS n",
            )?;
            let statement_time = <C as TestBackend>::query_n(
                ctx.conn().database_enforced(),
                "SELECT CAST(@@SESSION.max_statement_time * 1000000 AS SIGNED) AS n",
            )?;
            Ok::<_, diesel_facade::Error>((lock_wait, statement_time))
        })
        .expect("read the session settings")
    };
    let defaults = settings(&mut ctx);
    diesel_facade::write(&mut ctx, |ctx| {
        <C as TypedQueries>::execute_sql(ctx.conn(), "SET SESSION innodb_lock_wait_timeout = 1")?;
        <C as TypedQueries>::execute_sql(ctx.conn(), "SET SESSION max_statement_time = 0.000001")
            .map(drop)
    })
    .map_err(diesel_facade::Error::from)
    .expect("the body's settings");
    assert_eq!(
        settings(&mut ctx),
        defaults,
        "the next transaction's session"
    );
}

/// A reader's body that ends its READ ONLY transaction itself (a `COMMIT`
/// through the escape hatch) and then writes never gets `Ok`: on one
/// server, with autocommit on, the write committed at once, so the caller
/// gets `CommitUnknown`, and a reader that leaves the transaction alone is
/// unaffected.
#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn a_reader_that_ends_its_own_transaction_is_never_ok() {
    use diesel_facade_tests::scenarios::{Req, TypedQueries};
    type C = diesel::MysqlConnection;
    let db = diesel_facade_tests::facade::<C>("reader_own_commit", |b| b.max_pool_size(1));
    let mut ctx = Req { db: db.clone() };
    let err = diesel_facade::read(&mut ctx, |ctx| {
        let conn = ctx.conn().database_enforced();
        <C as TypedQueries>::execute_sql(conn, "COMMIT")?;
        <C as TypedQueries>::execute_sql(conn, "UPDATE counters SET value = value + 100")
    })
    .map_err(diesel_facade::Error::from)
    .expect_err("never Ok");
    assert_eq!(err.kind(), diesel_facade::ErrorKind::CommitUnknown, "{err}");
    let n = diesel_facade::read(&mut ctx, |ctx| {
        <C as TypedQueries>::execute_sql(ctx.conn().database_enforced(), "SELECT 1")
    })
    .map_err(diesel_facade::Error::from)
    .expect("the next reader");
    assert_eq!(n, 1);
}
