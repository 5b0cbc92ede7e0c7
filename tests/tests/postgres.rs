//! The shared scenarios on the PostgreSQL primary of `scripts/test-servers`.
diesel_facade_tests::backend_suite!(diesel::PgConnection, single_writer = false);
diesel_facade_tests::server_suite!();

/// A connection lost while COMMIT is in flight: the transaction may or may
/// not have committed, so the error is `CommitUnknown` and even
/// `#[writer(retry)]` does not re-run it. COMMIT is made slow with a
/// deferred constraint trigger, and the session is killed during it.
#[test]
fn a_connection_lost_during_commit_is_commit_unknown_and_not_retried() {
    use diesel_facade_tests::{kill_session, server_url, SessionId};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    let Some(db) = diesel_facade_tests::facade::<diesel::PgConnection>("commit_unknown", |b| b)
    else {
        return;
    };
    let admin = server_url::<diesel::PgConnection>().expect("server");
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
    diesel_facade_tests::trust_tests!(server: diesel::PgConnection);
    diesel_facade_tests::trust_tests!(diesel::PgConnection;
        a_failed_savepoint_rollback_that_is_not_retryable_is_not_retried,
        an_independent_writer_blocked_by_its_own_outer_writer_times_out,
    );
}
