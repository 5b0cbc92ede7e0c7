//! The shared scenarios on SQLite (a temporary file per test).
diesel_facade_tests::backend_suite!(diesel::SqliteConnection, single_writer = true);

mod trust {
    diesel_facade_tests::trust_tests!(every_backend: diesel::SqliteConnection);
    diesel_facade_tests::trust_tests!(diesel::SqliteConnection;
        a_failed_savepoint_rollback_that_is_not_retryable_is_not_retried,
        a_handled_error_then_ok_commits_the_rest,
    );
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
