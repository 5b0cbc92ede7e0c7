//! The shared scenarios on SQLite (a temporary file per test), and what
//! SQLite does where the servers differ: it lets one writer at a time
//! begin, so its writers never interleave.

use diesel_facade_tests::scenarios;

diesel_facade_tests::backend_tests! {
    diesel::SqliteConnection => scenarios {
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
    }
}

#[test]
fn sqlite_serializes_writers_so_no_update_is_lost() {
    scenarios::sqlite_serializes_writers_so_no_update_is_lost();
}

#[test]
fn sqlite_opposite_lock_order_cannot_deadlock() {
    scenarios::sqlite_opposite_lock_order_cannot_deadlock();
}

#[test]
fn sqlite_lock_timeout_while_another_writer_holds_the_database() {
    scenarios::sqlite_lock_timeout_while_another_writer_holds_the_database();
}

mod trust {
    diesel_facade_tests::backend_tests! {
        diesel::SqliteConnection => trust {
            ok_with_a_nested_transaction_left_open_commits_nothing,
            savepoint_ok_with_a_nested_transaction_left_open_is_rolled_back,
            hooks_of_a_savepoint_that_panicked_never_run,
            a_lock_after_a_caught_savepoint_panic_is_taken,
            a_panicking_hook_runs_the_others_and_the_commit_stands,
            a_lock_first_taken_inside_a_savepoint_is_refused,
            a_handled_error_inside_a_savepoint_lets_the_transaction_commit,
            a_failed_savepoint_rollback_that_is_not_retryable_is_not_retried,
            a_handled_error_then_ok_commits_the_rest,
            an_own_commit_statement_is_never_reported_rolled_back,
        }
    }
}

mod independent_in_reader {
    //! An independent writer inside a reader: it commits in WAL mode (the
    //! default); in rollback-journal mode it cannot commit while the
    //! reader's shared lock is held.

    use std::time::Duration;

    use diesel::sql_types::BigInt;
    use diesel::{QueryResult, RunQueryDsl, SqliteConnection};
    use diesel_facade::{writer, Context, ErrorKind};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    #[writer(independent)]
    fn insert_independently(ctx: &mut Context<SqliteConnection>) -> QueryResult<usize> {
        diesel::sql_query("INSERT INTO counters (id, value) VALUES ('independent', 1)")
            .execute(ctx.conn())
    }

    fn independent_writer_inside_a_reader(wal: bool) -> Result<usize, diesel_facade::Error> {
        let test = if wal { "indep_wal" } else { "indep_journal" };
        let db = diesel_facade_tests::facade::<SqliteConnection>(test, |b| {
            b.sqlite_wal(wal)
                .sqlite_busy_timeout(Duration::from_millis(200))
        });
        let mut ctx = db.context();
        diesel_facade::read(&mut ctx, |ctx| {
            // The reader has read: it holds its snapshot (WAL) or its
            // shared lock (rollback journal) until it ends.
            let before = diesel::sql_query("SELECT COUNT(*) AS n FROM counters")
                .get_result::<Count>(ctx.conn())?;
            assert_eq!(before.n, 1);
            insert_independently(ctx)
        })
        .map_err(diesel_facade::Error::from)
    }

    #[test]
    fn commits_in_wal_mode() {
        assert_eq!(independent_writer_inside_a_reader(true).unwrap(), 1);
    }

    /// It could not commit beside the reader's lock: it fails at once and
    /// says why, instead of waiting out the busy timeout (`LockTimeout`).
    #[test]
    fn fails_at_once_in_rollback_journal_mode() {
        let err = independent_writer_inside_a_reader(false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.message().contains("WAL"), "{err}");
    }
}
