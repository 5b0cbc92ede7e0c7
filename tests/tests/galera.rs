//! The lock guard on a real 3-node MariaDB Galera cluster (started by
//! `scripts/test-servers`): the seed's promise. Across nodes, Galera is
//! optimistic: two transactions upserting the same lock row both proceed
//! locally, the first COMMIT wins and the other fails certification with a
//! deadlock error, which `#[writer(retry)]` turns into a re-run.

use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::MysqlConnection;
use diesel_facade::{writer, ErrorKind, Facade, TransactionContext};
use diesel_facade_tests::schema::counters;

#[derive(TransactionContext)]
struct Req {
    #[facade]
    db: Facade<MysqlConnection>,
}

/// The scenarios run one at a time: a DDL statement from one test's set-up
/// (total-order isolation across the cluster) running while another test's
/// transactions are being brute-force aborted was seen to leave a victim
/// connection stuck in the `Killed` state (MariaDB 10.11 + galera-4 26.4).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One facade per node, on a fresh database created through node 1.
fn cluster(test: &str) -> Vec<Facade<MysqlConnection>> {
    cluster_with(test, |b| {
        // A shorter bound than the default (`GALERA_DEFAULT_WAIT_TIMEOUT`)
        // keeps a rare server-side hang after a brute-force abort short.
        b.mysql_wait_timeout(Duration::from_secs(3))
    })
}

/// Like [`cluster`], each node's builder configured by `configure`.
fn cluster_with(
    test: &str,
    configure: impl Fn(
        diesel_facade::FacadeBuilder<MysqlConnection>,
    ) -> diesel_facade::FacadeBuilder<MysqlConnection>,
) -> Vec<Facade<MysqlConnection>> {
    let urls = diesel_facade_tests::galera_urls();
    assert_eq!(urls.len(), 3, "three Galera nodes");
    // FACADE_TEST_DB_PREFIX keeps two checkouts' runs on one cluster apart.
    let prefix = std::env::var("FACADE_TEST_DB_PREFIX").unwrap_or_default();
    let db = format!("ftg{prefix}_{test}");
    let mut admin = MysqlConnection::establish(&urls[0]).expect("connect to Galera node 1");
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4; USE {db};
             CREATE TABLE counters (id VARCHAR(50) PRIMARY KEY, value INTEGER NOT NULL) ENGINE=InnoDB;
             INSERT INTO counters (id, value) VALUES ('c', 0);"
        ))
        .expect("create the test database on node 1");
    // Other nodes apply DDL on their own schedule (seen: a node that did not
    // know the new database yet, or the tables, even to a causal read, on a
    // loaded machine): wait until each node has the set-up, up to 30 s.
    let settle = |what: &str, mut ready: Box<dyn FnMut() -> Result<(), String> + '_>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match ready() {
                Ok(()) => return,
                Err(e) if std::time::Instant::now() > deadline => {
                    panic!("{what} within 30 s: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    };
    let facades: Vec<_> = urls
        .iter()
        .map(|url| {
            let mut parsed = url::Url::parse(url).expect("node URL");
            parsed.set_path(&format!("/{db}"));
            let mut facade = None;
            settle(
                "a facade on each Galera node",
                Box::new(|| {
                    let built = configure(
                        Facade::<MysqlConnection>::builder()
                            .writer(parsed.to_string())
                            .max_pool_size(4)
                            .max_retries(100),
                    )
                    .build()
                    .map_err(|e| e.to_string())?;
                    facade = Some(built);
                    Ok(())
                }),
            );
            facade.expect("set when settled")
        })
        .collect();
    facades[0]
        .run_migrations()
        .expect("migrations through node 1");
    for node in &facades {
        settle(
            "each node has applied the set-up",
            Box::new(|| {
                diesel_facade::write(&mut Req { db: node.clone() }, |ctx| {
                    ctx.conn().batch_execute(
                        "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM locks; \
                         SELECT COUNT(*) FROM counters; SET SESSION wsrep_sync_wait = 0",
                    )
                })
                .map_err(|e| e.to_string())
            }),
        );
    }
    facades
}

/// Read the counter and write it back plus one; returns the value written.
fn increment(conn: &mut MysqlConnection) -> QueryResult<i32> {
    let value: i32 = counters::table
        .find("c")
        .select(counters::value)
        .first(conn)?;
    std::thread::sleep(Duration::from_millis(1));
    diesel::update(counters::table.find("c"))
        .set(counters::value.eq(value + 1))
        .execute(conn)?;
    Ok(value + 1)
}

#[writer(retry)]
fn locked_increment(ctx: &mut Req) -> Result<i32, diesel_facade::Error> {
    ctx.lock("counter")?;
    Ok(increment(ctx.conn())?)
}

/// [`locked_increment`] in a body that first turns the session's
/// constraint checks off (the guard's check must not depend on them).
#[writer(retry)]
fn locked_increment_checks_off(ctx: &mut Req) -> Result<i32, diesel_facade::Error> {
    diesel::sql_query("SET SESSION check_constraint_checks = OFF").execute(ctx.conn())?;
    ctx.lock("counter")?;
    Ok(increment(ctx.conn())?)
}

#[writer(retry)]
fn unlocked_increment(ctx: &mut Req) -> Result<i32, diesel_facade::Error> {
    Ok(increment(ctx.conn())?)
}

/// Reads wait for the whole cluster (`wsrep_sync_wait`), so the value is
/// the cluster's, whichever node answers.
fn counter(node: &Facade<MysqlConnection>) -> i32 {
    diesel_facade::write(&mut Req { db: node.clone() }, |ctx| {
        diesel::sql_query("SET SESSION wsrep_sync_wait = 1").execute(ctx.conn())?;
        let value = counters::table
            .find("c")
            .select(counters::value)
            .first(ctx.conn());
        diesel::sql_query("SET SESSION wsrep_sync_wait = 0").execute(ctx.conn())?;
        value
    })
    .expect("read the counter")
}

/// The counter on `node` once it shows `expected`, or what it shows after
/// 10 s.
fn counter_reaching(node: &Facade<MysqlConnection>, expected: i32) -> i32 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let value = counter(node);
        if value == expected || std::time::Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The values the committed increments wrote, in no particular order.
fn hammer(
    nodes: &[Facade<MysqlConnection>],
    per_node: usize,
    iterations: usize,
    locked: bool,
) -> Vec<i32> {
    let written = Mutex::new(Vec::new());
    diesel_facade_tests::spread(nodes, per_node, iterations, |node| {
        let mut ctx = Req { db: node.clone() };
        let value = if locked {
            locked_increment(&mut ctx)
        } else {
            unlocked_increment(&mut ctx)
        }
        .expect("no error reaches the caller");
        written.lock().expect("written").push(value);
    });
    written.into_inner().expect("written")
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn locked_counter_across_three_nodes_is_exact() {
    let _serial = serial();
    let nodes = cluster("locked");
    const PER_NODE: usize = 2;
    const ITERATIONS: usize = 20;
    let mut written = hammer(&nodes, PER_NODE, ITERATIONS, true);
    let expected = (nodes.len() * PER_NODE * ITERATIONS) as i32;
    let retries: u64 = nodes.iter().map(|n| n.stats().retries).sum();
    // Stronger than the total: every committed increment wrote a value no
    // other one wrote (a silently aborted transaction that still "commits"
    // would show up here as a duplicate).
    written.sort_unstable();
    assert_eq!(written, (1..=expected).collect::<Vec<_>>());
    let seen: Vec<i32> = nodes.iter().map(counter).collect();
    assert_eq!(
        seen,
        vec![expected; nodes.len()],
        "the counter on each node"
    );
    eprintln!(
        "galera: {} threads over 3 nodes x {ITERATIONS} locked increments -> {expected}, \
         {retries} retries (certification failures and deadlocks)",
        nodes.len() * PER_NODE
    );
}

/// Real brute-force aborts across nodes, in bodies that turn constraint
/// checks off for their session: still exact. (With the guard's check
/// depending on the session's setting, 1 or 2 of 180 increments were lost
/// in each of five runs.)
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn locked_counter_is_exact_when_bodies_turn_constraint_checks_off() {
    let _serial = serial();
    let nodes = cluster("checks_off");
    const PER_NODE: usize = 2;
    const ITERATIONS: usize = 30;
    let written = Mutex::new(Vec::new());
    diesel_facade_tests::spread(&nodes, PER_NODE, ITERATIONS, |node| {
        let value = locked_increment_checks_off(&mut Req { db: node.clone() })
            .expect("no error reaches the caller");
        written.lock().expect("written").push(value);
    });
    let mut written = written.into_inner().expect("written");
    written.sort_unstable();
    let expected = (nodes.len() * PER_NODE * ITERATIONS) as i32;
    assert_eq!(written, (1..=expected).collect::<Vec<_>>());
    assert_eq!(counter(&nodes[0]), expected);
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn without_the_lock_galera_loses_updates() {
    let _serial = serial();
    let nodes = cluster("unlocked");
    const PER_NODE: usize = 2;
    const ITERATIONS: usize = 20;
    let _ = hammer(&nodes, PER_NODE, ITERATIONS, false);
    let expected = (nodes.len() * PER_NODE * ITERATIONS) as i32;
    let value = counter(&nodes[0]);
    eprintln!("galera: unlocked increments -> {value} of {expected}");
    assert!(
        value < expected,
        "some increments must be lost without the lock ({value})"
    );
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn try_lock_cannot_see_another_nodes_uncommitted_lock() {
    let _serial = serial();
    let nodes = cluster("try_lock");
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (commit_tx, commit_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let node1 = nodes[0].clone();
        let holder = s.spawn(move || {
            diesel_facade::write(&mut Req { db: node1 }, |ctx| {
                ctx.lock("job")?;
                held_tx.send(()).unwrap();
                commit_rx.recv().unwrap();
                Ok::<_, diesel_facade::Error>(())
            })
        });
        held_rx.recv().unwrap();
        // On node 2, the lock row held by node 1's open transaction is
        // invisible: try_lock takes it locally...
        let result = diesel_facade::write(
            &mut Req {
                db: nodes[1].clone(),
            },
            |ctx| {
                let took = ctx.try_lock("job")?;
                assert!(took, "node 2 cannot know about node 1's uncommitted lock");
                // ...node 1 commits first...
                commit_tx.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                Ok::<_, diesel_facade::Error>(())
            },
        );
        holder
            .join()
            .unwrap()
            .expect("node 1 committed first and wins");
        // ...and node 2 learns at COMMIT (or its next statement) that it lost.
        let err = result.expect_err("node 2 must fail certification");
        assert_eq!(err.kind(), ErrorKind::Deadlock, "{err}");
    });
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn same_node_lock_waits_and_times_out() {
    let _serial = serial();
    let nodes = cluster("same_node");
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let node1 = nodes[0].clone();
        s.spawn(move || {
            diesel_facade::write(&mut Req { db: node1 }, |ctx| {
                ctx.lock("local")?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, diesel_facade::Error>(())
            })
            .unwrap();
        });
        held_rx.recv().unwrap();
        let mut ctx = Req {
            db: nodes[0].clone(),
        };
        let err = diesel_facade::write(&mut ctx, |ctx| {
            ctx.lock_timeout("local", Duration::from_secs(1))
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
        let took = diesel_facade::write(&mut ctx, |ctx| ctx.try_lock("local")).unwrap();
        assert!(!took, "on the same node try_lock sees the held lock");
        release_tx.send(()).unwrap();
    });
}

/// After a wsrep abort (another node committed a conflicting write-set),
/// the server has already rolled the whole local transaction back, so a
/// savepoint's `ROLLBACK TO SAVEPOINT` fails with 1305: that is reported as
/// the deadlock it is, and the outermost `retry` re-runs the transaction.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_savepoint_lost_to_a_wsrep_abort_is_a_deadlock_and_retried() {
    let _serial = serial();
    use std::sync::atomic::{AtomicUsize, Ordering};

    let nodes = cluster("wsrep_savepoint");
    let (reached_tx, reached_rx) = mpsc::channel::<()>();
    let (conflict_tx, conflict_rx) = mpsc::channel::<()>();
    let attempts = AtomicUsize::new(0);
    let first_error = Mutex::new(None::<diesel_facade::Error>);

    #[writer(savepoint)]
    fn inner(
        ctx: &mut Req,
        first: bool,
        reached: &mpsc::Sender<()>,
        conflict: &Mutex<mpsc::Receiver<()>>,
    ) -> Result<(), diesel_facade::Error> {
        if first {
            // Let node 1 commit a conflicting upsert of our lock row; its
            // write-set aborts this transaction when node 2 applies it.
            reached.send(()).unwrap();
            conflict.lock().unwrap().recv().unwrap();
        }
        // Any statement after the abort: it (or the savepoint's rollback)
        // finds the transaction gone. (Not a new lock: inside a savepoint
        // only locks already held may be taken.)
        diesel::update(counters::table.find("c"))
            .set(counters::value.eq(counters::value + 1))
            .execute(ctx.conn())?;
        Ok(())
    }

    #[writer(retry = 5)]
    fn outer(
        ctx: &mut Req,
        attempts: &AtomicUsize,
        reached: &mpsc::Sender<()>,
        conflict: &Mutex<mpsc::Receiver<()>>,
        first_error: &Mutex<Option<diesel_facade::Error>>,
    ) -> Result<(), diesel_facade::Error> {
        let first = attempts.fetch_add(1, Ordering::SeqCst) == 0;
        ctx.lock("contended")?;
        let result = inner(ctx, first, reached, conflict);
        if first {
            if let Err(err) = &result {
                *first_error.lock().unwrap() =
                    Some(diesel_facade::Error::new(err.kind(), err.message()));
            }
        }
        result
    }

    let conflict_rx = Mutex::new(conflict_rx);
    std::thread::scope(|s| {
        let node1 = nodes[0].clone();
        s.spawn(move || {
            reached_rx.recv().unwrap();
            diesel_facade::write(&mut Req { db: node1 }, |ctx| ctx.lock("contended"))
                .expect("node 1 commits first");
            // Give node 2 time to apply it (and abort the local transaction).
            std::thread::sleep(Duration::from_millis(300));
            conflict_tx.send(()).unwrap();
        });
        outer(
            &mut Req {
                db: nodes[1].clone(),
            },
            &attempts,
            &reached_tx,
            &conflict_rx,
            &first_error,
        )
        .expect("the retry succeeds");
    });
    let err = first_error
        .lock()
        .unwrap()
        .take()
        .expect("the first attempt failed");
    assert_eq!(err.kind(), ErrorKind::Deadlock, "{err}");
    eprintln!("first attempt: {err}");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(nodes[1].stats().retries >= 1);
}

#[derive(diesel::QueryableByName)]
struct WaitTimeout {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    value: i64,
}

fn session_wait_timeout(node: &Facade<MysqlConnection>) -> i64 {
    diesel_facade::write(&mut Req { db: node.clone() }, |ctx| {
        diesel::sql_query("SELECT CAST(@@SESSION.wait_timeout AS SIGNED) AS value")
            .get_result::<WaitTimeout>(ctx.conn())
            .map(|row| row.value)
    })
    .expect("read wait_timeout")
}

/// Nothing waits forever by default: a Galera node (detected at connect
/// time) gets `GALERA_DEFAULT_WAIT_TIMEOUT` unless the builder says
/// otherwise, and `mysql_wait_timeout(None)` keeps the server's own.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_galera_node_gets_a_bounded_wait_timeout_by_default() {
    let _serial = serial();
    let nodes = cluster_with("default_wait", |b| b);
    let default = diesel_facade::GALERA_DEFAULT_WAIT_TIMEOUT.as_secs() as i64;
    assert_eq!(session_wait_timeout(&nodes[0]), default);
    let off = cluster_with("default_wait_off", |b| b.mysql_wait_timeout(None));
    assert!(session_wait_timeout(&off[0]) > default, "the server's own");
}

/// DDL, which MariaDB commits implicitly, in a `#[writer]` on Galera
/// behaves as on one server: it succeeds, and the statements after it
/// commit too (they no longer fail with "SAVEPOINT ... does not exist").
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn ddl_in_a_writer_behaves_as_on_one_server() {
    let _serial = serial();
    let nodes = cluster("ddl_writer");
    let mut ctx = Req {
        db: nodes[0].clone(),
    };
    diesel_facade::write(&mut ctx, |ctx| {
        ctx.conn().batch_execute(
            "DROP TABLE IF EXISTS ddl_t; \
             CREATE TABLE ddl_t (id INTEGER PRIMARY KEY) ENGINE=InnoDB",
        )?;
        ctx.conn()
            .batch_execute("INSERT INTO ddl_t (id) VALUES (1)")?;
        diesel::update(counters::table.find("c"))
            .set(counters::value.eq(7))
            .execute(ctx.conn())
    })
    .expect("a writer with DDL commits on Galera");
    // Read on the node that committed: a causal read on another node can
    // run through a prepared statement, which may not wait for the cluster.
    assert_eq!(counter(&nodes[0]), 7, "the update after the DDL committed");
    assert_eq!(nodes[0].stats().retries, 0);
}

/// The locked-increment workload (6 threads over 3 nodes) on the default
/// settings (no `mysql_wait_timeout` chosen): every run ends, with the
/// exact count. `FACADE_GALERA_DEFAULT_RUNS` sets how many runs (3 by
/// default; 20 for the proof in docs/locks.md). A run that does not end
/// within 5 minutes fails the test instead of hanging it.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn locked_increments_on_default_settings_always_finish() {
    let _serial = serial();
    let runs: usize = std::env::var("FACADE_GALERA_DEFAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for run in 0..runs {
        let nodes = cluster_with("default_settings", |b| b);
        let (done_tx, done_rx) = mpsc::channel();
        let started = std::time::Instant::now();
        let worker = std::thread::spawn(move || {
            let written = hammer(&nodes, 2, 10, true);
            let _ = done_tx.send(());
            (nodes, written)
        });
        done_rx
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_else(|_| panic!("run {run} did not finish within 5 minutes"));
        let (nodes, mut written) = worker.join().expect("worker");
        written.sort_unstable();
        assert_eq!(written, (1..=60).collect::<Vec<_>>(), "run {run}");
        for node in &nodes {
            // `written` above is the exactness check; a node applies the
            // last write-sets shortly after they commit (a causal read
            // through a prepared statement need not wait), so it is given
            // up to 10 s to show them.
            assert_eq!(counter_reaching(node, 60), 60, "run {run}");
        }
        eprintln!(
            "galera default settings: run {run} finished in {:.1} s, {} retries",
            started.elapsed().as_secs_f64(),
            nodes.iter().map(|n| n.stats().retries).sum::<u64>()
        );
    }
}

/// The abort guard is on for an ordinary writer: its own `BEGIN` does not
/// count as an implicit commit, so each transaction arms the guard right
/// after `BEGIN` and checks it right before `COMMIT`, and the connection is
/// kept for the next transaction.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn every_plain_writer_is_checked_by_the_abort_guard() {
    let _serial = serial();
    let log = diesel_facade_tests::EventLog::default();
    let nodes = cluster_with("guard_on", |b| {
        b.mysql_wait_timeout(Duration::from_secs(3))
            .max_pool_size(1)
            .instrumentation(log.factory())
    });
    log.clear();
    for _ in 0..3 {
        locked_increment(&mut Req {
            db: nodes[0].clone(),
        })
        .expect("increment");
    }
    const ARM: &str = "query UPDATE diesel_facade_guard SET armed = 1 WHERE id = 1";
    const CHECK_AND_COMMIT: &str =
        "query BEGIN NOT ATOMIC SET STATEMENT check_constraint_checks = 1 FOR \
                                    UPDATE diesel_facade_guard SET armed = armed - 1 WHERE id = 1; \
                                    COMMIT; END";
    let control: Vec<&str> = log
        .all()
        .iter()
        .filter_map(|e| {
            [ARM, CHECK_AND_COMMIT, "query BEGIN", "query COMMIT"]
                .into_iter()
                .find(|c| e.starts_with(c))
        })
        .collect();
    assert_eq!(
        control,
        ["query BEGIN", ARM, CHECK_AND_COMMIT].repeat(3),
        "{:#?}",
        log.all()
    );
    assert_eq!(log.count("commit"), 3, "{:#?}", log.all());
    assert_eq!(
        session_of(&nodes[0]),
        session_of(&nodes[0]),
        "the same pooled connection"
    );
}

/// A writer that increments, runs `first` (statements of the body's own),
/// then disarms the guard (what a transaction the server replaced sees at
/// COMMIT): its commit must be refused as a deadlock that committed
/// nothing. Returns the error.
fn assert_disarmed_writer_is_refused(
    node: &Facade<MysqlConnection>,
    first: &[&str],
) -> diesel_facade::Error {
    let before = counter(node);
    let err = diesel_facade::write(&mut Req { db: node.clone() }, |ctx| {
        increment(ctx.conn())?;
        for statement in first {
            diesel::sql_query(*statement).execute(ctx.conn())?;
        }
        diesel::sql_query("UPDATE diesel_facade_guard SET armed = 0").execute(ctx.conn())?;
        Ok::<_, diesel_facade::Error>(increment(ctx.conn())?)
    })
    .expect_err("the commit is refused");
    assert_eq!(err.kind(), ErrorKind::Deadlock, "{first:?}: {err}");
    assert!(
        err.to_string().contains("nothing was committed"),
        "{first:?}: {err}"
    );
    assert_eq!(
        counter(node),
        before,
        "{first:?}: nothing of the body was committed"
    );
    err
}

/// What a transaction that the server replaced behind the facade's back
/// sees at COMMIT: the guard not armed (the `UPDATE` that armed it was
/// rolled back with the transaction). Here the body disarms it itself, so
/// the case is deterministic: the commit must be refused as a deadlock,
/// nothing of the body committed, and the connection stays usable.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_commit_that_finds_the_guard_disarmed_commits_nothing() {
    let _serial = serial();
    let nodes = cluster_with("guard_disarmed", |b| b.max_pool_size(1));
    let node = &nodes[0];
    let before = counter(node);
    let rollbacks = node.stats().rollbacks;
    assert_disarmed_writer_is_refused(node, &[]);
    assert_eq!(node.stats().rollbacks, rollbacks + 1);
    // The same (only) connection: its guard works for the next writer.
    let written = locked_increment(&mut Req { db: node.clone() }).expect("the next writer");
    assert_eq!(written, before + 1);
    assert_eq!(counter(node), before + 1);
}

/// The guard's check is a `CHECK` constraint, which a server can be told
/// to skip (`check_constraint_checks = OFF` by default): the facade's
/// sessions enforce it anyway, so a disarmed guard still refuses the commit.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn the_guard_holds_where_the_server_skips_check_constraints() {
    let _serial = serial();
    let admin = &diesel_facade_tests::galera_urls()[0];
    let mut conn = MysqlConnection::establish(admin).expect("connect to node 1");
    diesel::sql_query("SET GLOBAL check_constraint_checks = OFF")
        .execute(&mut conn)
        .expect("turn constraint checks off by default");
    struct Restore(MysqlConnection);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ =
                diesel::sql_query("SET GLOBAL check_constraint_checks = ON").execute(&mut self.0);
        }
    }
    let _restore = Restore(conn);
    // Connections made after the change start with the server's new default.
    let nodes = cluster_with("guard_no_checks", |b| b.max_pool_size(1));
    assert_disarmed_writer_is_refused(&nodes[0], &[]);
}

/// `USE` does not end the transaction on MariaDB, so the guard stays in
/// force after it: a writer that runs `USE` (of its own database) and is
/// then found disarmed at COMMIT is refused. (Found by an attack pass: the
/// facade counted `USE` as an implicit commit and sent a plain COMMIT.)
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_use_in_a_writer_keeps_the_guard() {
    let _serial = serial();
    let nodes = cluster_with("guard_use", |b| b.max_pool_size(1));
    let database = diesel_facade_tests::database_name_of(&nodes[0]);
    assert_disarmed_writer_is_refused(&nodes[0], &[&format!("USE `{database}`")]);
}

/// A reader's body that ends its READ ONLY transaction itself (a `COMMIT`
/// through the escape hatch) and then writes: the write ran outside the
/// READ ONLY transaction, in an implicit one (Galera sessions run without
/// autocommit). The facade rolls it back and reports `CommitUnknown`,
/// never `Ok`. (Found by an attack pass: the facade's COMMIT committed it.)
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_reader_that_ends_its_own_transaction_commits_nothing_after_it() {
    let _serial = serial();
    let nodes = cluster_with("reader_own_commit", |b| b.max_pool_size(1));
    let before = counter(&nodes[0]);
    let err = diesel_facade::read(
        &mut Req {
            db: nodes[0].clone(),
        },
        |ctx| {
            let conn = ctx.conn().database_enforced();
            diesel::sql_query("COMMIT").execute(conn)?;
            diesel::sql_query("UPDATE counters SET value = value + 100 WHERE id = 'c'")
                .execute(conn)?;
            Ok::<_, diesel_facade::Error>(())
        },
    )
    .expect_err("never Ok");
    assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");
    assert_eq!(
        counter(&nodes[0]),
        before,
        "the write after the COMMIT was rolled back"
    );
    // The next reader on the pool is a plain one again.
    diesel_facade::read(
        &mut Req {
            db: nodes[0].clone(),
        },
        |ctx| diesel::sql_query("SELECT 1").execute(ctx.conn().database_enforced()),
    )
    .map_err(diesel_facade::Error::from)
    .expect("the next reader");
}

/// The session id of the (only) connection of `node`'s pool.
fn session_of(node: &Facade<MysqlConnection>) -> i64 {
    diesel_facade::write(&mut Req { db: node.clone() }, |ctx| {
        diesel::sql_query("SELECT CAST(CONNECTION_ID() AS SIGNED) AS id")
            .get_result::<diesel_facade_tests::SessionId>(ctx.conn())
            .map(|row| row.id)
    })
    .expect("session id")
}

/// A body that turns constraint checks off for its session, or switches
/// the session's message language, and then finds the guard disarmed (what
/// a replaced transaction sees) still gets its commit refused, reported as
/// the deadlock it is.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_body_cannot_switch_the_guard_off_with_a_session_setting() {
    let _serial = serial();
    let nodes = cluster_with("guard_session", |b| b.max_pool_size(1));
    for setting in [
        "SET SESSION check_constraint_checks = OFF",
        "SET SESSION lc_messages = 'de_DE'",
    ] {
        assert_disarmed_writer_is_refused(&nodes[0], &[setting]);
    }
}

/// A session in safe-update mode (`sql_safe_updates`, which refuses an
/// `UPDATE` that names no key) still begins and commits writers: the
/// guard's statements name its row by key.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn writers_commit_in_safe_update_mode() {
    let _serial = serial();
    let nodes = cluster_with("guard_safe_updates", |b| b.max_pool_size(1));
    let node = &nodes[0];
    let before = counter(node);
    diesel_facade::write(&mut Req { db: node.clone() }, |ctx| {
        increment(ctx.conn())?;
        diesel::sql_query("SET SESSION sql_safe_updates = 1").execute(ctx.conn())?;
        Ok::<_, diesel_facade::Error>(())
    })
    .expect("a writer that turns safe updates on commits");
    assert_eq!(counter(node), before + 1);
}

/// The guard holds 0 or 1 only: a trigger that writes another value into
/// it fails the statement that fired it, so no value that would pass a
/// later check unarmed is ever committed.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_trigger_cannot_leave_the_guard_armed() {
    let _serial = serial();
    let nodes = cluster_with("guard_trigger", |b| b.max_pool_size(1));
    let node = &nodes[0];
    let prefix = std::env::var("FACADE_TEST_DB_PREFIX").unwrap_or_default();
    let mut admin = MysqlConnection::establish(&diesel_facade_tests::galera_urls()[0])
        .expect("connect to node 1");
    admin
        .batch_execute(&format!(
            "USE ftg{prefix}_guard_trigger; CREATE TABLE fired (id INTEGER PRIMARY KEY) ENGINE=InnoDB; \
             CREATE TRIGGER arm_it AFTER INSERT ON fired FOR EACH ROW \
             UPDATE diesel_facade_guard SET armed = 5"
        ))
        .expect("create the trigger");
    let before = counter(node);
    let inserted = diesel_facade::write(&mut Req { db: node.clone() }, |ctx| {
        increment(ctx.conn())?;
        diesel::sql_query("INSERT INTO fired VALUES (1)").execute(ctx.conn())?;
        Ok::<_, diesel_facade::Error>(())
    });
    assert!(
        inserted.is_err(),
        "the trigger's write is refused: {inserted:?}"
    );
    assert_eq!(counter(node), before, "nothing of the body was committed");
    // The connection's guard still refuses a transaction that is not armed.
    assert_disarmed_writer_is_refused(node, &[]);
}

/// The text diesel prints between a prepared statement's SQL and its binds
/// (` -- binds: `), written in the SQL itself, hides nothing from the
/// facade's reading of it: a statement that writes the guard, or a batch
/// that changes the session, still costs the connection its place in the
/// pool.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_binds_marker_in_the_sql_hides_nothing() {
    let _serial = serial();
    let nodes = cluster_with("guard_marker", |b| b.max_pool_size(1));
    let node = &nodes[0];
    let prepared = |ctx: &mut diesel_facade::WriterScope<'_, Req>| {
        diesel::sql_query("UPDATE /* -- binds: */ diesel_facade_guard SET armed = 1")
            .execute(ctx.conn())
            .map(drop)
    };
    let batch = |ctx: &mut diesel_facade::WriterScope<'_, Req>| {
        ctx.conn()
            .batch_execute("SELECT 1 -- binds: x\n; SET SESSION sql_notes = 1")
    };
    type Body<'a> = &'a dyn Fn(&mut diesel_facade::WriterScope<'_, Req>) -> QueryResult<()>;
    let bodies: [(&str, Body<'_>); 2] = [("prepared", &prepared), ("batch", &batch)];
    for (what, body) in bodies {
        let before = session_of(node);
        diesel_facade::write(&mut Req { db: node.clone() }, |ctx| body(ctx)).expect(what);
        assert_ne!(
            session_of(node),
            before,
            "{what}: the connection was not reused"
        );
    }
}

/// The node a facade's writer connections reach (`@@port`).
fn writer_port(db: &Facade<MysqlConnection>) -> i32 {
    #[derive(QueryableByName)]
    struct Port {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        port: i32,
    }
    diesel_facade::write(&mut Req { db: db.clone() }, |ctx| {
        diesel::sql_query("SELECT CAST(@@port AS SIGNED) AS port").get_result::<Port>(ctx.conn())
    })
    .map(|p| p.port)
    .expect("ask the writer node for its port")
}

/// A URL of `url`'s server with the database of `like`.
fn with_db(url: &str, like: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("node URL");
    let db = url::Url::parse(like).expect("URL").path().to_owned();
    parsed.set_path(&db);
    parsed.to_string()
}

/// A port on 127.0.0.1 that nothing listens on (a lost node).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let port = listener.local_addr().expect("its address").port();
    drop(listener);
    port
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_writer_list_prefers_the_first_live_node_and_skips_a_lost_one() {
    let _serial = serial();
    let nodes = cluster("writer_list");
    let urls: Vec<String> = diesel_facade_tests::galera_urls()
        .iter()
        .map(|u| with_db(u, nodes[0].writer_url()))
        .collect();
    let port = |url: &str| i32::from(url::Url::parse(url).unwrap().port().unwrap());

    // The first live node of the list takes every new connection.
    let list = Facade::<MysqlConnection>::builder()
        .writer(format!("{},{},{}", urls[1], urls[0], urls[2]))
        .build()
        .expect("a facade on a writer list");
    assert_eq!(writer_port(&list), port(&urls[1]));
    let shown = list.writer_url().to_owned();
    assert_eq!(shown.matches("mysql://").count(), 3, "{shown}");
    assert!(!shown.contains("facade_pw"), "{shown}");

    // A lost first node (nothing listens on its port) is skipped: the
    // facade builds, and its writers commit on the next node.
    let lost = format!("mysql://facade:facade_pw@127.0.0.1:{}/x", closed_port());
    let started = std::time::Instant::now();
    let list = Facade::<MysqlConnection>::builder()
        .writer(format!("{lost},{}", urls[2]))
        .build()
        .expect("the lost node is skipped");
    assert_eq!(writer_port(&list), port(&urls[2]));
    let value = locked_increment(&mut Req { db: list.clone() }).expect("a locked increment");
    assert!(value > 0, "{value}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "skipping a lost node took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_writer_list_with_no_live_node_names_each_without_passwords() {
    let lost: Vec<String> = (0..2)
        .map(|_| format!("mysql://facade:s3cret_pw@127.0.0.1:{}/x", closed_port()))
        .collect();
    let err = Facade::<MysqlConnection>::builder()
        .writer(lost.join(","))
        .pool_timeout(Duration::from_secs(1))
        .build()
        .expect_err("no node answers");
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("s3cret_pw"), "{text}");
    for url in &lost {
        let port = url::Url::parse(url).unwrap().port().unwrap().to_string();
        assert!(text.contains(&port), "names the node on {port}: {text}");
    }
}

/// Session status counters of the facade's (single) pooled connection:
/// statements prepared and executed, multi-statement switches (two per
/// `batch_execute`) and savepoints made, read in one writer.
fn session_counters(db: &Facade<MysqlConnection>) -> [i64; 4] {
    #[derive(QueryableByName)]
    struct Status {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = Variable_name)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = Value)]
        value: String,
    }
    const COUNTERS: [&str; 4] = [
        "Com_stmt_prepare",
        "Com_stmt_execute",
        "Com_set_option",
        "Com_savepoint",
    ];
    let rows = diesel_facade::write(&mut Req { db: db.clone() }, |ctx| {
        diesel::sql_query(
            "SHOW SESSION STATUS WHERE Variable_name IN \
             ('Com_stmt_prepare', 'Com_stmt_execute', 'Com_set_option', 'Com_savepoint')",
        )
        .load::<Status>(ctx.conn())
    })
    .expect("read the session status counters");
    COUNTERS.map(|name| {
        rows.iter()
            .find(|row| row.name.eq_ignore_ascii_case(name))
            .map(|row| row.value.parse().expect("a number"))
            .unwrap_or_else(|| panic!("{name} in SHOW SESSION STATUS"))
    })
}

/// How the counters of [`session_counters`] grow over 5 locked increments.
fn counters_over_five_increments(db: &Facade<MysqlConnection>) -> [i64; 4] {
    // The counters are read inside a writer, between its BEGIN and its
    // COMMIT: read them once first, so that every statement of the
    // facade's own is prepared (and cached) before the first reading.
    session_counters(db);
    let before = session_counters(db);
    for _ in 0..5 {
        locked_increment(&mut Req { db: db.clone() }).expect("increment");
    }
    let after = session_counters(db);
    [0, 1, 2, 3].map(|i| after[i] - before[i])
}

/// The guard costs one statement per writer and nothing else: a Galera
/// writer executes exactly one prepared statement more than the same
/// writer on one MariaDB server, which has no guard (the arming, one round
/// trip; the check travels with `COMMIT`, in one statement), prepares
/// nothing more (the connection caches them), sends no batch on either
/// server (`BEGIN` and `COMMIT` are cached prepared statements too, where a
/// batch costs two multi-statement switches), and makes no savepoint (which
/// would switch MariaDB to its internal two-phase commit).
#[test]
#[cfg_attr(
    not(all(galera_cluster, mysql_server)),
    ignore = "needs FACADE_TEST_GALERA_URLS and FACADE_TEST_MYSQL_URL"
)]
fn the_guard_costs_one_cached_statement_and_no_savepoint() {
    let _serial = serial();
    let nodes = cluster_with("guard_round_trips", |b| b.max_pool_size(1));
    let single =
        diesel_facade_tests::facade::<MysqlConnection>("guard_round_trips", |b| b.max_pool_size(1));
    let [g_prepares, g_executes, g_switches, g_savepoints] =
        counters_over_five_increments(&nodes[0]);
    let [s_prepares, s_executes, s_switches, s_savepoints] = counters_over_five_increments(&single);
    assert!(
        g_executes >= 10,
        "the increments ran ({g_executes} executions)"
    );
    assert_eq!(g_prepares, s_prepares, "statements prepared");
    // One per writer: the five increments, and the arming of the second
    // writer that reads the counters (it begins inside the window).
    assert_eq!(
        g_executes - s_executes,
        5 + 1,
        "prepared statements executed"
    );
    assert_eq!(
        (g_switches, s_switches),
        (0, 0),
        "batches (multi-statement switches)"
    );
    assert_eq!((g_savepoints, s_savepoints), (0, 0), "savepoints");
}
