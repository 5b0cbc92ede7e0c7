//! Locks and retries: `ctx.lock` serializes writers that would otherwise
//! lose updates, a deadlock is retried, lock names are checked and stored
//! as given, and `retry` applies to whole transactions only.
//!
//! SQLite lets one writer at a time begin (BEGIN IMMEDIATE), so there
//! concurrent writers never interleave: the scenarios that make them
//! interleave need [`ConcurrentWriters`], and SQLite has its own
//! `sqlite_…` scenarios saying what it does instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use diesel::{QueryResult, SqliteConnection};
use diesel_facade::{reader, writer, ConcurrentWriters, ErrorKind, Facade};

use super::{item_exists, setup, Req, TypedQueries};

/// Read the counter, give other threads a chance to interleave, and
/// write it back plus one: a lost update unless serialized.
fn increment_counter<C: TypedQueries>(conn: &mut C) -> QueryResult<()> {
    let value = C::read_counter(conn)?;
    std::thread::sleep(Duration::from_millis(1));
    C::set_counter(conn, value + 1).map(drop)
}

#[writer(retry = 50)]
fn locked_increment<C: TypedQueries>(ctx: &mut Req<C>) -> Result<(), diesel_facade::Error> {
    ctx.lock("counter")?;
    Ok(increment_counter(ctx.conn())?)
}

#[writer(retry = 50)]
fn unlocked_increment<C: TypedQueries>(ctx: &mut Req<C>) -> Result<(), diesel_facade::Error> {
    Ok(increment_counter(ctx.conn())?)
}

#[reader]
fn counter_value<C: TypedQueries>(ctx: &mut Req<C>) -> QueryResult<i32> {
    C::counter_value(ctx.conn())
}

const THREADS: usize = 4;
const ITERATIONS: usize = 25;

/// `THREADS` threads per facade run `increment` `ITERATIONS` times each on
/// every one of `dbs` (facades on one database).
fn hammer<C: TypedQueries>(
    dbs: &[Facade<C>],
    increment: impl Fn(&mut Req<C>) -> Result<(), diesel_facade::Error> + Sync,
) {
    crate::spread(dbs, THREADS, ITERATIONS, |db| {
        increment(&mut Req { db: db.clone() }).expect("no error reaches the caller")
    });
}

/// With the lock, concurrent increments are exact.
pub fn locked_counter_ends_at_exactly_threads_times_iterations<C: TypedQueries>() {
    let db = crate::facade::<C>("locked_counter", |b| b.max_pool_size(8));
    locked_increments_are_exact(&[db]);
}

/// `THREADS` threads per facade of `dbs` (one or more facades on one fresh
/// database) take the lock and increment the counter `ITERATIONS` times
/// each, all at once: the counter ends at exactly their product.
pub fn locked_increments_are_exact<C: TypedQueries>(dbs: &[Facade<C>]) {
    hammer(dbs, |ctx| locked_increment(ctx));
    let value = counter_value(&mut Req { db: dbs[0].clone() }).unwrap();
    let retries: u64 = dbs.iter().map(|db| db.stats().retries).sum();
    eprintln!(
        "{}: {}x{THREADS}x{ITERATIONS} locked increments -> {value}, {retries} retries",
        C::NAME,
        dbs.len(),
    );
    assert_eq!(value as usize, dbs.len() * THREADS * ITERATIONS);
}

/// The counter after `THREADS` x `ITERATIONS` increments without the lock.
fn unlocked_counter<C: TypedQueries>() -> i32 {
    let db = crate::facade::<C>("unlocked_counter", |b| b.max_pool_size(8));
    hammer(std::slice::from_ref(&db), |ctx| unlocked_increment(ctx));
    let value = counter_value(&mut Req { db: db.clone() }).unwrap();
    eprintln!(
        "{}: {THREADS}x{ITERATIONS} unlocked increments -> {value}",
        C::NAME
    );
    value
}

/// Without the lock, concurrent read-modify-write writers lose updates:
/// what the lock is for.
pub fn without_the_lock_updates_are_lost<C: TypedQueries + ConcurrentWriters>() {
    let value = unlocked_counter::<C>();
    assert!(
        (value as usize) < THREADS * ITERATIONS,
        "without the lock some increments must be lost (got {value})"
    );
}

/// SQLite's BEGIN IMMEDIATE already serializes writers: the lock adds
/// nothing there, and without it nothing is lost.
pub fn sqlite_serializes_writers_so_no_update_is_lost() {
    let value = unlocked_counter::<SqliteConnection>();
    assert_eq!(value as usize, THREADS * ITERATIONS);
}

#[writer(retry = 10)]
fn take_both<C: TypedQueries>(
    ctx: &mut Req<C>,
    first: &str,
    second: &str,
    barrier: &Barrier,
    first_attempts: &AtomicUsize,
) -> Result<(), diesel_facade::Error> {
    ctx.lock(first)?;
    // Only the first attempts meet at the barrier: that is what
    // makes them deadlock.
    if first_attempts.fetch_add(1, Ordering::SeqCst) < 2 {
        barrier.wait();
    }
    ctx.lock(second)?;
    Ok(())
}

/// Two writers take locks A and B in opposite orders, from two threads;
/// with `meet`, their first attempts wait for each other between the two
/// locks. Both must finish; returns the facade, for its stats.
fn opposite_lock_orders<C: TypedQueries>(meet: bool) -> Facade<C> {
    let db = crate::facade::<C>("lock_order", |b| b.max_pool_size(4));
    opposite_lock_orders_on(&db, meet);
    db
}

/// [`opposite_lock_orders`] on `db`.
fn opposite_lock_orders_on<C: TypedQueries>(db: &Facade<C>, meet: bool) {
    let barrier = Barrier::new(2);
    let first_attempts = AtomicUsize::new(if meet { 0 } else { 2 });
    std::thread::scope(|s| {
        for (a, b) in [("A", "B"), ("B", "A")] {
            let db = db.clone();
            let (barrier, first_attempts) = (&barrier, &first_attempts);
            s.spawn(move || {
                take_both(&mut Req { db }, a, b, barrier, first_attempts)
                    .expect("both finish thanks to retry")
            });
        }
    });
}

/// Two writers that hold one lock each and wait for the other's deadlock;
/// the victim is retried and both finish.
pub fn opposite_lock_order_deadlock_is_retried<C: TypedQueries + ConcurrentWriters>() {
    let db = opposite_lock_orders::<C>(true);
    assert!(db.stats().retries >= 1, "the deadlock victim was retried");
}

/// Like [`opposite_lock_order_deadlock_is_retried`], on `db` (a fresh
/// database) once the two locks' rows exist: the deadlock is between takes of existing rows, not between the
/// inserts of a first take.
pub fn a_deadlock_between_existing_lock_rows_is_retried<C: TypedQueries + ConcurrentWriters>(
    db: &Facade<C>,
) {
    for name in ["A", "B"] {
        diesel_facade::write(&mut Req { db: db.clone() }, |ctx| ctx.lock(name)).unwrap();
    }
    let before = db.stats().retries;
    opposite_lock_orders_on(db, true);
    assert!(
        db.stats().retries > before,
        "the deadlock victim was retried"
    );
}

/// On SQLite the second writer cannot even begin while the first holds the
/// database, so writers taking locks in opposite orders never meet and
/// never deadlock: nothing is retried.
pub fn sqlite_opposite_lock_order_cannot_deadlock() {
    let db = opposite_lock_orders::<SqliteConnection>(false);
    assert_eq!(db.stats().retries, 0, "serialized writers cannot deadlock");
}

/// Empty and over-long lock names are `InvalidLockName`; valid ones
/// (multibyte, SQL metacharacters, exactly 50 characters) are stored as
/// given.
pub fn lock_names_are_validated_and_stored_verbatim<C: TypedQueries>() {
    let db = setup::<C>("lock_names");
    let mut ctx = Req { db };
    for bad in [String::new(), "x".repeat(51)] {
        let err = diesel_facade::write(&mut ctx, |ctx| ctx.lock(&bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidLockName, "{err}");
        let err = diesel_facade::write(&mut ctx, |ctx| ctx.try_lock(&bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidLockName, "{err}");
    }
    let multibyte = "錠".repeat(50);
    let evil = "x'); DROP TABLE locks; --\\ %_".to_owned();
    for good in [multibyte, evil, "a".repeat(50)] {
        diesel_facade::write(&mut ctx, |ctx| ctx.lock(&good)).unwrap();
        let stored: Vec<String> =
            diesel_facade::read(&mut ctx, |ctx| C::lock_rows_named(ctx.conn(), &good)).unwrap();
        assert_eq!(stored, vec![good.clone()], "stored verbatim, untruncated");
    }
}

/// Without the `locks` table, `ctx.lock` is `MissingLocksTable` and the
/// message says to run the migrations.
pub fn a_missing_locks_table_says_to_run_the_migrations<C: TypedQueries>() {
    let db = crate::facade_without_migrations::<C>("no_locks_table", |b| b);
    let err = diesel_facade::write(&mut Req { db }, |ctx| ctx.lock("x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MissingLocksTable, "{err}");
    assert!(err.message().contains("run_migrations"), "{err}");
}

/// Run `while_held` on a new context of `db` while another transaction
/// holds the lock `held`; then check that the lock was released at the end
/// of that transaction.
fn while_another_transaction_holds_the_lock<C: TypedQueries>(
    db: &Facade<C>,
    while_held: impl FnOnce(&mut Req<C>),
) {
    while_a_transaction_of_holder_holds_the_lock(db, db, while_held);
}

/// Like [`while_another_transaction_holds_the_lock`], the lock held by a
/// transaction of `holder` (another facade on the same database, or `db`).
fn while_a_transaction_of_holder_holds_the_lock<C: TypedQueries>(
    holder: &Facade<C>,
    db: &Facade<C>,
    while_held: impl FnOnce(&mut Req<C>),
) {
    let (held_tx, held_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        // Owned here, so that a failing `while_held` drops it as it unwinds
        // and the holder stops waiting (the scope waits for it).
        let release_tx = release_tx;
        let holder_db = holder.clone();
        s.spawn(move || {
            diesel_facade::write(&mut Req { db: holder_db }, |ctx| {
                ctx.lock("held")?;
                held_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok::<_, diesel_facade::Error>(())
            })
            .unwrap();
        });
        held_rx.recv().unwrap();
        while_held(&mut Req { db: db.clone() });
        release_tx.send(()).unwrap();
    });
    // Released at the end of the holder's transaction.
    assert!(diesel_facade::write(&mut Req { db: db.clone() }, |ctx| ctx.try_lock("held")).unwrap());
}

/// `lock_timeout` on the held lock fails with `LockTimeout`, in time.
fn lock_timeout_on_the_held_lock_times_out<C: TypedQueries>(ctx: &mut Req<C>) {
    let started = Instant::now();
    let err = diesel_facade::write(ctx, |ctx| {
        ctx.lock_timeout("held", Duration::from_millis(300))
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// While another transaction holds a lock: `lock_timeout` on it is a
/// `LockTimeout`, and `try_lock` says "taken" and leaves the transaction
/// usable. The lock is free once the holder's transaction ends.
pub fn lock_timeout_and_try_lock_while_another_transaction_holds_it<
    C: TypedQueries + ConcurrentWriters,
>() {
    let db = crate::facade::<C>("lock_timeout", |b| b.max_pool_size(4));
    lock_timeout_and_try_lock_while_held_by(&db, &db);
}

/// While a transaction of `holder` holds a lock, on `db` (the same facade,
/// or another on the same database): `lock_timeout` on it is a
/// `LockTimeout`, and `try_lock` says "taken" and leaves the transaction
/// usable. The lock is free once the holder's transaction ends. Twice: when
/// the holder's take made the lock's row, and when the row was there.
pub fn lock_timeout_and_try_lock_while_held_by<C: TypedQueries + ConcurrentWriters>(
    holder: &Facade<C>,
    db: &Facade<C>,
) {
    for item in [77, 78] {
        while_a_transaction_of_holder_holds_the_lock(holder, db, |ctx| {
            lock_timeout_on_the_held_lock_times_out(ctx);
            // try_lock says "taken" and leaves the transaction usable.
            let (took, wrote) = diesel_facade::write(ctx, |ctx| {
                let took = ctx.try_lock("held")?;
                let wrote = C::insert_item(ctx.conn(), item, "after".to_owned(), 0)?;
                Ok::<_, diesel_facade::Error>((took, wrote))
            })
            .unwrap();
            assert!(!took, "the lock is held by the other transaction");
            assert_eq!(wrote, 1);
            assert!(item_exists(ctx, item).unwrap());
            assert!(diesel_facade::write(ctx, |ctx| ctx.try_lock("free")).unwrap());
        });
    }
}

/// On SQLite the writer holding a lock holds the whole database: another
/// writer's `lock_timeout` is a `LockTimeout` after the busy timeout (there
/// is no `try_lock` to ask while it cannot even begin). The lock is free
/// once the holder's transaction ends.
pub fn sqlite_lock_timeout_while_another_writer_holds_the_database() {
    let db = crate::facade::<SqliteConnection>("lock_timeout", |b| {
        b.max_pool_size(4)
            .sqlite_busy_timeout(Duration::from_millis(300))
    });
    while_another_transaction_holds_the_lock(&db, lock_timeout_on_the_held_lock_times_out);
}

#[writer(retry = 3)]
fn fails_retryably<C: TypedQueries>(
    ctx: &mut Req<C>,
    calls: &AtomicUsize,
) -> Result<(), diesel_facade::Error> {
    calls.fetch_add(1, Ordering::SeqCst);
    // A genuine serialization failure raised by the server would
    // be classified the same way; this one comes from the body.
    let _ = ctx.conn();
    Err(diesel_facade::Error::new(
        ErrorKind::SerializationFailure,
        "simulated",
    ))
}

/// `retry` re-runs a whole transaction only: not for an error the database
/// never reported, and not on a joined call, whose error reaches the
/// outermost one.
pub fn retry_is_inert_on_a_joined_call_and_counts_whole_transactions<C: TypedQueries>() {
    let db = setup::<C>("retry_joined");
    let mut ctx = Req { db: db.clone() };
    let calls = AtomicUsize::new(0);
    // Outermost, the error alone (not seen by the server) is not
    // retried: only errors the database reported doom a transaction.
    assert!(fails_retryably(&mut ctx, &calls).is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(db.stats().retries, 0);
    // Joined, retry is inert: the error reaches the outermost call.
    let err = diesel_facade::write(&mut ctx, |ctx| fails_retryably(ctx, &calls)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SerializationFailure);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(db.stats().retries, 0);
}
