//! The shared scenarios on SQLite (a temporary file per test).
diesel_facade_tests::backend_suite!(diesel::SqliteConnection, single_writer = true);

mod in_memory {
    //! In-memory URLs: a private database lives in its one connection, a
    //! shared-cache one is the same database on every connection.

    use std::time::Duration;

    use diesel::sql_types::BigInt;
    use diesel::{QueryResult, RunQueryDsl, SqliteConnection};
    use diesel_facade::{writer, Context, ErrorKind, Facade};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut SqliteConnection) -> QueryResult<i64> {
        diesel::sql_query("SELECT COUNT(*) AS n FROM notes")
            .get_result::<Count>(conn)
            .map(|c| c.n)
    }

    #[writer(independent)]
    fn count_independently(ctx: &mut Context<SqliteConnection>) -> QueryResult<i64> {
        count(ctx.conn())
    }

    /// Data written through one checkout is read through the next; a
    /// second connection at the same time (an independent writer inside a
    /// reader) either is refused (private) or sees the same data (shared).
    fn one_database_per_url(url: &str, shared: bool) {
        let db = Facade::<SqliteConnection>::builder()
            .writer(url)
            .max_pool_size(4)
            .pool_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let mut ctx = db.context();
        diesel_facade::write(&mut ctx, |ctx| {
            diesel::sql_query("CREATE TABLE notes (body TEXT NOT NULL)").execute(ctx.conn())?;
            diesel::sql_query("INSERT INTO notes (body) VALUES ('kept')").execute(ctx.conn())
        })
        .unwrap_or_else(|e| panic!("{url}: {e}"));
        let seen = diesel_facade::read(&mut ctx, |ctx| {
            diesel::sql_query("SELECT COUNT(*) AS n FROM notes")
                .load::<Count>(ctx.conn())
                .map(|rows| rows[0].n)
        })
        .unwrap_or_else(|e: diesel::result::Error| panic!("{url}: {e}"));
        assert_eq!(seen, 1, "{url}");
        let nested = diesel_facade::read(&mut ctx, |ctx| {
            diesel::sql_query("SELECT COUNT(*) AS n FROM notes").load::<Count>(ctx.conn())?;
            count_independently(ctx)
        })
        .map_err(diesel_facade::Error::from);
        if shared {
            assert_eq!(nested.unwrap_or_else(|e| panic!("{url}: {e}")), 1, "{url}");
        } else {
            let err = nested.expect_err(url);
            assert_eq!(err.kind(), ErrorKind::PoolTimeout, "{url}: {err}");
            assert!(err.message().contains("max_pool_size = 4"), "{err}");
        }
    }

    #[test]
    fn private_in_memory_forms_use_one_connection() {
        for url in [
            ":memory:",
            "file::memory:",
            "sqlite://:memory:",
            "file:private_notes?mode=memory",
        ] {
            one_database_per_url(url, false);
        }
    }

    #[test]
    fn shared_in_memory_forms_are_one_database_for_all_connections() {
        for url in [
            "file::memory:?cache=shared",
            "file:cfg_shared_notes?mode=memory&cache=shared",
        ] {
            one_database_per_url(url, true);
        }
    }

    #[test]
    fn sqlx_style_memory_url_is_a_config_error() {
        let err = Facade::<SqliteConnection>::builder()
            .writer("sqlite::memory:")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.message().contains(":memory:"), "{err}");
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

    #[test]
    fn cannot_commit_in_rollback_journal_mode() {
        let err = independent_writer_inside_a_reader(false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
        assert!(err.message().contains("database is locked"), "{err}");
    }
}
