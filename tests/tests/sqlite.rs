//! The shared scenarios on SQLite (a temporary file per test).
diesel_facade_tests::backend_suite!(diesel::SqliteConnection, single_writer = true);

mod trust {
    diesel_facade_tests::trust_tests!(diesel::SqliteConnection;
        ok_with_a_nested_transaction_left_open_commits_nothing,
        savepoint_ok_with_a_nested_transaction_left_open_is_rolled_back,
        hooks_of_a_savepoint_that_panicked_never_run,
        a_panicking_hook_runs_the_others_and_the_commit_stands,
        a_lock_first_taken_inside_a_savepoint_is_refused,
    );

    /// Releasing diesel's own savepoint makes its ROLLBACK TO fail with a
    /// kind that is not retryable (on MySQL a vanished savepoint is taken
    /// for the deadlock that removes it there, so this one is not run).
    #[test]
    fn a_failed_savepoint_rollback_that_is_not_retryable_is_not_retried() {
        diesel_facade_tests::trust::a_failed_savepoint_rollback_that_is_not_retryable_is_not_retried::<diesel::SqliteConnection>(
            "RELEASE SAVEPOINT diesel_savepoint_1",
        );
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
        })
        .expect("SQLite needs no server");
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
