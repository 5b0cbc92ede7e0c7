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

/// In rollback-journal mode the enclosing reader's lock keeps an
/// independent writer from committing: it fails at once and says why,
/// instead of waiting out the busy timeout. (In WAL mode, the default, it
/// works: `independent_commits_while_the_outer_rolls_back`.)
#[test]
fn an_independent_writer_inside_a_reader_without_wal_fails_at_once() {
    use diesel_facade::{writer, Context, ErrorKind};

    #[writer(independent)]
    fn touch(ctx: &mut Context<diesel::SqliteConnection>) -> diesel::QueryResult<()> {
        diesel::connection::SimpleConnection::batch_execute(
            ctx.conn(),
            "INSERT INTO counters (id, value) VALUES ('x', 1)",
        )
    }

    let db = diesel_facade_tests::facade::<diesel::SqliteConnection>("indep_no_wal", |b| {
        b.sqlite_wal(false)
    })
    .expect("sqlite");
    let err = diesel_facade::read(&mut db.context(), |ctx| touch(ctx))
        .map(|_| ())
        .map_err(diesel_facade::Error::from)
        .expect_err("cannot commit beside the reader");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("WAL"), "{err}");
}
