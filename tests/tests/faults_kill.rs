//! kill -9 of real servers during a locked-increment run: the PostgreSQL
//! primary, the MariaDB primary, and one node of a 3-node Galera cluster,
//! all of the fault set that `scripts/test` starts beside the ordinary
//! servers (`FACADE_FAULT_*`). Each call takes `lock("counter")`, reads the
//! counter, writes it back plus one and logs its `(thread, i)`; afterwards
//! the log says which calls committed, and that is compared with what each
//! caller was told (see `diesel_facade_tests::kill::Ledger`).
//!
//! The tests run one at a time (`kill::serial`): each kills a server the
//! others use.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use diesel::query_builder::SqlQuery;
use diesel::query_dsl::LoadQuery;
use diesel::{Connection, MysqlConnection, PgConnection};
use diesel_facade::{ErrorKind, Facade};
use diesel_facade_tests::kill::{
    assert_crash_durable, fault_var, fresh_database, galera_nodes, galera_state, increments_until,
    lock_timeouts_during, locked_increment, locked_increment_retrying, longest_standstill, ms,
    serial, server_state, Abort, Call, FaultSet, GaleraNode, Key, KillTarget, Ledger, LogRow,
};
use diesel_facade_tests::report::reliability;

/// How long a test waits for a phase that should take seconds before it
/// gives up with a clear failure instead of hanging.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

/// Block until `done()` holds; panics after [`PHASE_LIMIT`].
fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PHASE_LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(5));
    }
}

/// 4 threads x 50 `#[writer]` locked increments through one facade; the
/// primary is killed after the first 40 calls, restarted a second later,
/// and the threads keep calling through the same facade.
fn primary_killed_mid_run<C>()
where
    C: KillTarget,
    for<'a> SqlQuery: LoadQuery<'a, C, LogRow>,
{
    const THREADS: i32 = 4;
    const CALLS: i32 = 50;
    const KILL_AFTER: usize = 40;
    const DOWN: Duration = Duration::from_secs(1);
    const PAUSE: Duration = Duration::from_millis(10);

    let _serial = serial();
    let (Some(set), Some(admin)) = (FaultSet::from_env(), fault_var(C::FAULT_URL_VAR)) else {
        return;
    };
    set.ensure_running(C::SERVER);
    let url = fresh_database::<C>(&admin, "kill_primary");
    assert_crash_durable(&mut C::establish(&url).expect("connect"));
    // The test helpers' settings (diesel_facade_tests::facade): nothing
    // chosen for faults.
    let db: Facade<C> = Facade::builder()
        .writer(url.clone())
        .pool_timeout(Duration::from_secs(10))
        .build()
        .expect("facade");
    db.run_migrations().expect("migrations");

    let done = AtomicUsize::new(0);
    let abort = Abort::default();
    let (mut calls, killed_at, revived_at, revive_took) = std::thread::scope(|s| {
        let _abort = abort.on_panic();
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (db, done, abort) = (&db, &done, &abort);
                s.spawn(move || {
                    let mut ctx = db.context();
                    (0..CALLS)
                        .take_while(|_| !abort.is_set())
                        .map(|i| {
                            let key = Key { thread, i };
                            let call = Call::run(key, || locked_increment(&mut ctx, key, PAUSE));
                            done.fetch_add(1, Ordering::SeqCst);
                            call
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        wait_for("the first calls", || {
            done.load(Ordering::SeqCst) >= KILL_AFTER
        });
        let killed_at = Instant::now();
        let killed = set.kill(C::SERVER);
        sleep(DOWN);
        let revive_took = killed.revive();
        let revived_at = Instant::now();
        let calls: Vec<Call> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        (calls, killed_at, revived_at, revive_took)
    });

    // The process recovers by itself: every call that began after the
    // server was back succeeded, and so does one more on the same facade.
    assert!(
        calls.iter().any(|c| c.started > revived_at),
        "the kill landed mid-run"
    );
    for call in calls.iter().filter(|c| c.started > revived_at) {
        assert!(call.is_ok(), "a call after the restart failed: {call:?}");
    }
    let key = Key { thread: 99, i: 0 };
    let after = Call::run(key, || locked_increment(&mut db.context(), key, PAUSE));
    assert!(after.is_ok(), "a later call on the same facade: {after:?}");
    calls.push(after);

    let (rows, counter) = server_state(&mut C::establish(&url).expect("connect"));
    let ledger = Ledger::settle(&calls, &rows, counter);
    let failed: Vec<&Call> = calls.iter().filter(|c| !c.is_ok()).collect();
    for call in &failed {
        assert!(
            matches!(
                call.kind(),
                Some(ErrorKind::Disconnected | ErrorKind::CommitUnknown)
            ),
            "a call failed with something other than a lost connection: {call:?}"
        );
    }
    let first_error = failed
        .iter()
        .map(|c| c.ended.saturating_duration_since(killed_at))
        .max()
        .unwrap_or_default();
    let longest_call = calls.iter().map(|c| c.ended - c.started).max().unwrap();
    reliability(&ledger.outcome(
        &format!("kill -9 of the primary mid-run, restarted after {DOWN:?}"),
        C::REPORTED_AS,
        format!(
            "threads={THREADS} revive_ms={} \
             failed_within_ms={} longest_call_ms={}",
            ms(revive_took),
            ms(first_error),
            ms(longest_call),
        ),
    ));
    ledger.assert_sound(C::REPORTED_AS);
}

#[test]
#[cfg_attr(
    not(fault_servers),
    ignore = "needs FACADE_FAULT_SERVERS_DIR (the fault set scripts/test starts)"
)]
fn kill_9_of_the_postgres_primary_loses_no_ok_commit_and_the_facade_recovers() {
    primary_killed_mid_run::<PgConnection>();
}

#[test]
#[cfg_attr(
    not(fault_servers),
    ignore = "needs FACADE_FAULT_SERVERS_DIR (the fault set scripts/test starts)"
)]
fn kill_9_of_mariadb_loses_no_ok_commit_and_the_facade_recovers() {
    primary_killed_mid_run::<MysqlConnection>();
}

/// The facade settings of the Galera suite (`tests/tests/galera.rs`,
/// `cluster_with(|b| b)`): a small pool and room for certification
/// retries; everything else, including the Galera session `wait_timeout`
/// (`GALERA_DEFAULT_WAIT_TIMEOUT`, 10 s), `pool_timeout` (30 s) and
/// `max_retry_duration` (60 s), the library's defaults.
fn galera_settings(
    b: diesel_facade::FacadeBuilder<MysqlConnection>,
) -> diesel_facade::FacadeBuilder<MysqlConnection> {
    b.max_pool_size(4).max_retries(100)
}

/// The fault set's Galera cluster with all three nodes running, and a
/// fresh database for `test` with a facade bound to each node.
fn galera_fault_set(test: &str) -> Option<(FaultSet, Vec<GaleraNode>)> {
    let (Some(set), Some(urls)) = (FaultSet::from_env(), fault_var("FACADE_FAULT_GALERA_URLS"))
    else {
        return None;
    };
    for server in ["galera-node1", "galera-node2", "galera-node3"] {
        set.ensure_running(server);
    }
    let urls: Vec<&str> = urls.split(',').collect();
    assert_eq!(urls.len(), 3, "three Galera nodes");
    let nodes = galera_nodes(&urls, test, galera_settings);
    assert_crash_durable(&mut MysqlConnection::establish(&nodes[0].url).expect("connect"));
    Some((set, nodes))
}

/// How long a caller bound to a lost node may wait for its error, as
/// documented (docs/reliability.md): a call in flight fails at once; its
/// retry's checkout gives up after `UNREACHABLE_GRACE` (3 s) when the pool
/// holds no connection and the node does not answer, and is not retried
/// again; plus the retry backoff and slack for a loaded machine.
const DOCUMENTED_LOST_NODE_BOUND: Duration = Duration::from_secs(10);

#[test]
#[cfg_attr(
    not(fault_servers),
    ignore = "needs FACADE_FAULT_SERVERS_DIR (the fault set scripts/test starts)"
)]
fn kill_9_of_one_galera_node_survivors_go_on_callers_on_it_fail_within_seconds_and_it_rejoins() {
    galera_node_killed_mid_run("kill_node", DOCUMENTED_LOST_NODE_BOUND);
}

/// 2 threads per node x 3 nodes of `#[writer(retry)]` locked increments,
/// each thread through a facade bound to its node; node 2 is killed after
/// 60 calls. The survivors go on; the callers on node 2 get an error within
/// `lost_node_bound`; node 2 is revived, rejoins, and serves a call through
/// its facade.
fn galera_node_killed_mid_run(test: &str, lost_node_bound: Duration) {
    const PER_NODE: i32 = 2;
    const KILL_AFTER: usize = 60;
    const SURVIVOR_CALLS_AFTER_KILL: usize = 40;
    const PAUSE: Duration = Duration::from_millis(5);
    const VICTIM: usize = 1;
    const VICTIM_SERVER: &str = "galera-node2";

    let _serial = serial();
    let Some((set, nodes)) = galera_fault_set(test) else {
        return;
    };

    let killed_at = OnceLock::<Instant>::new();
    let (ok, survivors_after_kill) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (stop, abort) = (AtomicBool::new(false), Abort::default());
    let run = std::thread::scope(|s| {
        let _abort = abort.on_panic();
        let mut victims = Vec::new();
        let mut survivors = Vec::new();
        for (n, node) in nodes.iter().enumerate() {
            for k in 0..PER_NODE {
                let thread = n as i32 * 10 + k;
                let victim = n == VICTIM;
                let (ok, after, killed_at) = (&ok, &survivors_after_kill, &killed_at);
                let (stop, abort) = (&stop, &abort);
                let handle = s.spawn(move || {
                    increments_until(&node.db, thread, PAUSE, stop, abort, |call| {
                        let after_kill = killed_at.get().is_some();
                        if call.is_ok() {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if after_kill && !victim {
                                after.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        // A caller on the lost node stops at the error this
                        // test measures.
                        !(victim && after_kill && !call.is_ok())
                    })
                });
                if victim {
                    victims.push(handle);
                } else {
                    survivors.push(handle);
                }
            }
        }

        wait_for("the first calls", || {
            ok.load(Ordering::SeqCst) >= KILL_AFTER
        });
        let kill_started = *killed_at.get_or_init(Instant::now);
        let killed = set.kill(VICTIM_SERVER);
        wait_for("the survivors to go on", || {
            survivors_after_kill.load(Ordering::SeqCst) >= SURVIVOR_CALLS_AFTER_KILL
        });
        let survivors_resumed = Instant::now();
        wait_for("the callers on the lost node to get an error", || {
            victims.iter().all(|v| v.is_finished())
        });
        let victim_calls: Vec<Call> = victims
            .into_iter()
            .flat_map(|v| v.join().expect("caller on the lost node"))
            .collect();

        let revive_started = Instant::now();
        let revive_took = killed.revive();
        let revived_at = Instant::now();
        sleep(Duration::from_millis(200)); // the survivors go on beside it
        stop.store(true, Ordering::SeqCst);
        let survivor_calls: Vec<Call> = survivors
            .into_iter()
            .flat_map(|v| v.join().expect("survivor"))
            .collect();
        // The node serves again, through the facade bound to it. (Once the
        // survivors have stopped: while four callers on the other nodes
        // take the same lock row back to back, every transaction on the
        // rejoined node was seen to lose its brute-force race, 100 retries
        // over 23 s; Galera gives a node no fairness on a hot row, see
        // docs/reliability.md.)
        let key = Key { thread: 99, i: 0 };
        let back = Call::run(key, || {
            locked_increment_retrying(&mut nodes[VICTIM].db.context(), key, PAUSE)
        });
        GaleraRun {
            killed_at: kill_started,
            survivors_resumed,
            revive_started,
            revive_took,
            revived_at,
            victim_calls,
            survivor_calls,
            back,
        }
    });
    run.check_and_report(&nodes, lost_node_bound);
}

/// What one Galera kill run recorded.
struct GaleraRun {
    killed_at: Instant,
    survivors_resumed: Instant,
    revive_started: Instant,
    revive_took: Duration,
    revived_at: Instant,
    victim_calls: Vec<Call>,
    survivor_calls: Vec<Call>,
    back: Call,
}

impl GaleraRun {
    fn check_and_report(self, nodes: &[GaleraNode], lost_node_bound: Duration) {
        assert!(
            self.back.is_ok(),
            "a call through the revived node's facade: {:?}",
            self.back
        );
        // The survivors go on (LockTimeout only while the cluster stood
        // still: see `lock_timeouts_during`).
        let survivors: Vec<&Call> = self.survivor_calls.iter().collect();
        let stall = longest_standstill(&survivors, self.killed_at, self.survivors_resumed);
        let rejoin_stall = longest_standstill(&survivors, self.revive_started, self.revived_at);
        let survivor_lock_timeouts = lock_timeouts_during(&survivors, stall, "survivors");
        // The callers on the lost node: each one's last call failed with a
        // lost connection, and how long after the kill.
        let (mut lost_node_errors, mut lost_node_messages) = (Vec::new(), Vec::new());
        for call in self.victim_calls.iter().filter(|c| !c.is_ok()) {
            assert!(
                call.ended > self.killed_at,
                "a call on node 2 failed before the kill: {call:?}"
            );
            assert!(
                matches!(
                    call.kind(),
                    Some(ErrorKind::Disconnected | ErrorKind::CommitUnknown)
                ),
                "a caller on the lost node got something other than a lost connection: {call:?}"
            );
            lost_node_errors.push(call.ended - self.killed_at);
            lost_node_messages.push(call.outcome.clone().unwrap_err().1);
        }
        assert_eq!(lost_node_errors.len(), 2, "both callers on node 2 failed");
        let worst_error = lost_node_errors.iter().max().copied().unwrap_or_default();

        let mut calls = self.victim_calls;
        calls.extend(self.survivor_calls);
        calls.push(self.back);
        let (rows, counter) = galera_state(&nodes[0].url);
        let (_, counter_on_revived) = galera_state(&nodes[1].url);
        assert_eq!(counter_on_revived, counter, "the revived node has it all");
        let ledger = Ledger::settle(&calls, &rows, counter);
        reliability(&ledger.outcome(
            "kill -9 of one Galera node of 3 mid-run, facades bound to each node",
            "galera",
            format!(
                "threads=6 lost_node_error_ms={} \
                 survivor_stall_ms={} survivor_lock_timeouts={survivor_lock_timeouts} \
                 rejoin_ms={} rejoin_stall_ms={}",
                lost_node_errors
                    .iter()
                    .map(|d| ms(*d).to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
                ms(stall.length()),
                ms(self.revive_took),
                ms(rejoin_stall.length()),
            ),
        ));
        ledger.assert_sound("galera");
        assert!(
            worst_error <= lost_node_bound,
            "a caller bound to the lost node waited {worst_error:?} for its error \
             (bound {lost_node_bound:?}): {:?}",
            lost_node_messages
        );
    }
}

/// The port of the node a writer transaction of `db` runs on, or the error.
fn writer_port(db: &Facade<MysqlConnection>) -> Result<i64, diesel_facade::Error> {
    diesel_facade::write(&mut db.context(), |ctx| {
        <MysqlConnection as diesel_facade_tests::TestBackend>::query_n(
            ctx.conn(),
            "SELECT CAST(@@port AS SIGNED) AS n",
        )
        .map_err(diesel_facade::Error::from)
    })
}

fn port_of(url: &str) -> i64 {
    i64::from(url::Url::parse(url).expect("URL").port().expect("a port"))
}

/// Writer failover: one facade on the list of all three nodes (node 1
/// first), 3 threads of `#[writer(retry)]` locked increments through it,
/// node 1 killed mid-run. New transactions move to a live node within
/// seconds, and nothing `Ok` is lost.
#[test]
#[cfg_attr(
    not(fault_servers),
    ignore = "needs FACADE_FAULT_SERVERS_DIR (the fault set scripts/test starts)"
)]
fn kill_9_of_the_writer_node_moves_a_failover_list_to_a_live_node() {
    const THREADS: i32 = 3; // the pool's 4th connection is the probe's
    const KILL_AFTER: usize = 40;
    const CALLS_AFTER_KILL: usize = 40;
    const PAUSE: Duration = Duration::from_millis(5);
    // The guide promises new transactions move "at once": a refused port
    // is skipped without waiting, a silent one after 2 s.
    const MOVE_BOUND: Duration = Duration::from_secs(5);
    // A commit on the new node also waits until the cluster has declared
    // the lost node dead (evs.suspect_timeout, 5 s by default).
    const FIRST_COMMIT_BOUND: Duration = Duration::from_secs(15);

    let _serial = serial();
    let Some((set, nodes)) = galera_fault_set("kill_failover") else {
        return;
    };
    let list: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let db = galera_settings(Facade::builder().writer(list.join(",")))
        .build()
        .expect("a facade on the writer list");
    let first_port = port_of(&nodes[0].url);
    assert_eq!(writer_port(&db).expect("probe"), first_port, "node 1 first");

    let gone_at = OnceLock::<Instant>::new();
    let (ok, after_kill) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (stop, abort) = (AtomicBool::new(false), Abort::default());
    let (calls, kill_started, kill_done, moved, revive_took) = std::thread::scope(|s| {
        let _abort = abort.on_panic();
        let workers: Vec<_> = (0..THREADS)
            .map(|thread| {
                let (db, ok, after_kill, gone_at) = (&db, &ok, &after_kill, &gone_at);
                let (stop, abort) = (&stop, &abort);
                s.spawn(move || {
                    increments_until(db, thread, PAUSE, stop, abort, |call| {
                        if call.is_ok() {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if gone_at.get().is_some_and(|gone| call.started > *gone) {
                                after_kill.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        true
                    })
                })
            })
            .collect();
        wait_for("the first calls", || {
            ok.load(Ordering::SeqCst) >= KILL_AFTER
        });
        let kill_started = Instant::now();
        let killed = set.kill("galera-node1");
        let kill_done = *gone_at.get_or_init(Instant::now);
        // A new transaction on a live node: how long after the kill.
        let moved = loop {
            match writer_port(&db) {
                Ok(port) if port != first_port => break kill_started.elapsed(),
                _ => assert!(
                    kill_started.elapsed() < PHASE_LIMIT,
                    "no writer transaction reached a live node"
                ),
            }
            sleep(Duration::from_millis(10));
        };
        wait_for("calls begun after the kill to commit", || {
            after_kill.load(Ordering::SeqCst) >= CALLS_AFTER_KILL
        });
        stop.store(true, Ordering::SeqCst);
        let calls: Vec<Call> = workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect();
        let revive_took = killed.revive();
        (calls, kill_started, kill_done, moved, revive_took)
    });

    // The calls in flight at the kill: re-run on a live node by `retry`,
    // or a lost connection (CommitUnknown if COMMIT was in flight).
    let in_flight: Vec<&Call> = calls
        .iter()
        .filter(|c| c.started <= kill_done && c.ended > kill_started)
        .collect();
    let lost_connection = |c: &Call| {
        matches!(
            c.kind(),
            Some(ErrorKind::Disconnected | ErrorKind::CommitUnknown)
        )
    };
    // Every other call committed on a live node, but for LockTimeout while
    // the cluster stood still (`lock_timeouts_during`), a re-run of an
    // in-flight call included. Times count from before the kill.
    let all: Vec<&Call> = calls.iter().collect();
    let last_end = calls.iter().map(|c| c.ended).max().expect("calls");
    let stall = longest_standstill(&all, kill_started, last_end);
    let others: Vec<&Call> = calls
        .iter()
        .filter(|c| !(lost_connection(c) && in_flight.iter().any(|f| f.key == c.key)))
        .collect();
    let lock_timeouts = lock_timeouts_during(&others, stall, "failover");
    let first_commit = calls
        .iter()
        .filter(|c| c.started > kill_done && c.is_ok())
        .map(|c| c.ended - kill_started)
        .min()
        .expect("calls begun after the kill committed");
    let in_flight_worst = in_flight
        .iter()
        .map(|c| c.ended - kill_started)
        .max()
        .unwrap_or_default();

    let (rows, counter) = galera_state(&nodes[1].url);
    let (_, counter_on_revived) = galera_state(&nodes[0].url);
    assert_eq!(counter_on_revived, counter, "the revived node has it all");
    let ledger = Ledger::settle(&calls, &rows, counter);
    reliability(&ledger.outcome(
        "kill -9 of the writer node of a failover list (3 Galera nodes)",
        "galera",
        format!(
            "threads={THREADS} moved_ms={} \
             first_commit_ms={} stall_ms={} lock_timeouts={lock_timeouts} in_flight={} \
             in_flight_done_ms={} rejoin_ms={}",
            ms(moved),
            ms(first_commit),
            ms(stall.length()),
            in_flight.len(),
            ms(in_flight_worst),
            ms(revive_took),
        ),
    ));
    ledger.assert_sound("galera failover");
    assert!(
        moved <= MOVE_BOUND,
        "new transactions moved after {moved:?}"
    );
    assert!(
        first_commit <= FIRST_COMMIT_BOUND,
        "the first commit on a live node came {first_commit:?} after the kill"
    );
}
