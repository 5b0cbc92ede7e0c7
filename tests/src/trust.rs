//! Scenarios for the commit, savepoint, hook and lock promises, written once
//! as generic functions; `tests/tests/{sqlite,postgres,mysql}.rs` list the
//! ones that hold on each backend, and
//! [`backend_tests!`](crate::backend_tests) stamps out their `#[test]`
//! wrappers.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use diesel::prelude::*;
use diesel_facade::{writer, Context, Error, ErrorKind, Facade};

use crate::TestBackend;

fn setup<C: TestBackend>(test: &str) -> Facade<C> {
    crate::facade::<C>(test, |b| b)
}

fn insert<C: TestBackend>(conn: &mut C, id: i32) -> QueryResult<()> {
    conn.batch_execute(&format!(
        "INSERT INTO items (id, name, qty) VALUES ({id}, 'x', 0)"
    ))
}

/// The BIGINT `n` of `sql`, read in a transaction of its own.
fn query_n<C: TestBackend>(db: &Facade<C>, sql: &str) -> i64 {
    diesel_facade::write(&mut db.context(), |ctx| C::query_n(ctx.conn(), sql))
        .expect("read from a fresh context")
}

fn exists<C: TestBackend>(db: &Facade<C>, id: i32) -> bool {
    query_n(
        db,
        &format!("SELECT COUNT(*) AS n FROM items WHERE id = {id}"),
    ) == 1
}

/// A body that left a diesel `conn.transaction(..)` open (its panic was
/// caught) and returned `Ok`: nothing is committed, the hooks do not run,
/// and the caller gets `UnbalancedTransaction`.
pub fn ok_with_a_nested_transaction_left_open_commits_nothing<C: TestBackend>() {
    let db = setup::<C>("trust_unbalanced");
    let hook_ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&hook_ran);
    let result: Result<(), Error> = diesel_facade::write(&mut db.context(), |ctx| {
        insert(ctx.conn(), 1)?;
        ctx.on_commit(move || flag.store(true, Ordering::SeqCst));
        let conn = ctx.conn();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            conn.transaction::<(), diesel::result::Error, _>(|conn| {
                insert(conn, 2)?;
                panic!("legacy code panics inside diesel's transaction");
            })
        }));
        assert!(caught.is_err(), "the panic was caught");
        Ok(())
    });
    let err = result.expect_err("Ok would claim a commit that never happened");
    assert_eq!(err.kind(), ErrorKind::UnbalancedTransaction, "{err}");
    assert!(
        !hook_ran.load(Ordering::SeqCst),
        "hooks of a rolled-back call"
    );
    assert_eq!(db.stats().commits, 0, "{:?}", db.stats());
    assert!(!exists(&db, 1) && !exists(&db, 2), "nothing committed");
    // The pool recovered: the next writer commits.
    diesel_facade::write(&mut db.context(), |ctx| insert(ctx.conn(), 3)).expect("next writer");
    assert!(exists(&db, 3));
}

#[writer(savepoint)]
fn savepoint_leaving_a_transaction_open<C: TestBackend>(ctx: &mut Context<C>) -> Result<(), Error> {
    insert(ctx.conn(), 2)?;
    let conn = ctx.conn();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        conn.transaction::<(), diesel::result::Error, _>(|conn| {
            insert(conn, 3)?;
            panic!("legacy code panics inside diesel's transaction");
        })
    }));
    assert!(caught.is_err());
    Ok(())
}

/// The same inside `#[writer(savepoint)]`: the savepoint is rolled back and
/// reported, the outer transaction may go on and commit its own work.
pub fn savepoint_ok_with_a_nested_transaction_left_open_is_rolled_back<C: TestBackend>() {
    let db = setup::<C>("trust_unbalanced_sp");
    let inner: Result<(), Error> = diesel_facade::write(&mut db.context(), |ctx| {
        insert(ctx.conn(), 1)?;
        let inner = savepoint_leaving_a_transaction_open(ctx);
        Ok::<_, Error>(inner)
    })
    .expect("the outer writer commits");
    let err = inner.expect_err("the savepoint did not really complete");
    assert_eq!(err.kind(), ErrorKind::UnbalancedTransaction, "{err}");
    assert!(exists(&db, 1), "the outer work committed");
    assert!(
        !exists(&db, 2) && !exists(&db, 3),
        "the savepoint's work did not"
    );
}

#[writer(savepoint)]
fn savepoint_that_panics<C: TestBackend>(
    ctx: &mut Context<C>,
    ran: Arc<AtomicBool>,
) -> Result<(), Error> {
    insert(ctx.conn(), 2)?;
    ctx.on_commit(move || ran.store(true, Ordering::SeqCst));
    panic!("the savepoint's body panics");
}

/// A hook registered in a savepoint whose body panicked (the caller caught
/// it) is dropped with the savepoint's work.
pub fn hooks_of_a_savepoint_that_panicked_never_run<C: TestBackend>() {
    let db = setup::<C>("trust_sp_panic_hook");
    let ran = Arc::new(AtomicBool::new(false));
    diesel_facade::write(&mut db.context(), |ctx| {
        insert(ctx.conn(), 1)?;
        let caught = catch_unwind(AssertUnwindSafe(|| {
            savepoint_that_panics(ctx, Arc::clone(&ran))
        }));
        assert!(caught.is_err());
        Ok::<_, Error>(())
    })
    .expect("the outer writer commits");
    assert!(exists(&db, 1));
    assert!(!exists(&db, 2), "the savepoint was rolled back");
    assert!(!ran.load(Ordering::SeqCst), "its hook was dropped");
}

/// A savepoint whose panic the outer body caught is over: the transaction
/// is at its outermost level again, so it may take a new lock (it used to
/// keep counting itself inside the savepoint and refuse the lock with
/// `LockInSavepoint`).
pub fn a_lock_after_a_caught_savepoint_panic_is_taken<C: TestBackend>() {
    let db = setup::<C>("trust_sp_panic_lock");
    let ran = Arc::new(AtomicBool::new(false));
    diesel_facade::write(&mut db.context(), |ctx| {
        let caught = catch_unwind(AssertUnwindSafe(|| {
            savepoint_that_panics(ctx, Arc::clone(&ran))
        }));
        assert!(caught.is_err());
        ctx.lock("after-a-caught-panic")?;
        insert(ctx.conn(), 1)?;
        Ok::<_, Error>(())
    })
    .expect("the lock is taken and the outer writer commits");
    assert!(exists(&db, 1));
    assert!(!exists(&db, 2), "the savepoint was rolled back");
}

/// A hook that panics does not keep the others from running; the panic
/// reaches the caller after the commit, which stands.
pub fn a_panicking_hook_runs_the_others_and_the_commit_stands<C: TestBackend>() {
    let db = setup::<C>("trust_hook_panic");
    let second = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&second);
    let caught = catch_unwind(AssertUnwindSafe(|| {
        diesel_facade::write(&mut db.context(), |ctx| {
            insert(ctx.conn(), 1)?;
            ctx.on_commit(|| panic!("the first hook panics"));
            ctx.on_commit(move || flag.store(true, Ordering::SeqCst));
            Ok::<_, Error>(())
        })
    }));
    assert!(caught.is_err(), "the hook's panic reaches the caller");
    assert!(second.load(Ordering::SeqCst), "the second hook still ran");
    assert_eq!(db.stats().commits, 1);
    assert!(exists(&db, 1), "the transaction is committed");
}

#[writer(savepoint)]
fn lock_in_savepoint<C: TestBackend>(ctx: &mut Context<C>, name: &str) -> Result<bool, Error> {
    ctx.lock(name)?;
    ctx.try_lock(name)
}

/// A lock is held until the outermost transaction ends, so inside a
/// savepoint only a lock the transaction already holds may be taken.
pub fn a_lock_first_taken_inside_a_savepoint_is_refused<C: TestBackend>() {
    let db = setup::<C>("trust_lock_in_sp");
    diesel_facade::write(&mut db.context(), |ctx| {
        let bad = lock_in_savepoint(ctx, "report ").expect_err("an invalid name");
        assert_eq!(bad.kind(), ErrorKind::InvalidLockName, "{bad}");
        let err = lock_in_savepoint(ctx, "report").expect_err("not held yet");
        assert_eq!(err.kind(), ErrorKind::LockInSavepoint, "{err}");
        assert!(err.message().contains("before the savepoint"), "{err}");
        ctx.lock("report")?;
        assert!(
            lock_in_savepoint(ctx, "report")?,
            "held: taking it again is fine"
        );
        Ok::<_, Error>(())
    })
    .expect("writer");
}

#[writer(savepoint)]
fn lock_again_then_fail<C: TestBackend>(ctx: &mut Context<C>) -> Result<(), Error> {
    ctx.lock("report")?;
    Err(Error::new(ErrorKind::Other, "the savepoint fails"))
}

/// On a server: after a savepoint that re-took the lock rolled back, the
/// lock is still held by the outer transaction (another transaction's
/// `try_lock` gets `false`) until the outer one ends.
pub fn a_lock_survives_a_savepoint_rollback<C: TestBackend>() {
    let db = setup::<C>("trust_lock_survives_sp");
    let other = db.clone();
    diesel_facade::write(&mut db.context(), |ctx| {
        ctx.lock("report")?;
        assert!(lock_again_then_fail(ctx).is_err());
        let taken = std::thread::scope(|s| {
            s.spawn(|| diesel_facade::write(&mut other.context(), |ctx| ctx.try_lock("report")))
                .join()
                .expect("other thread")
        })?;
        assert!(!taken, "still held by the outer transaction");
        Ok::<_, Error>(())
    })
    .expect("writer");
    let taken = diesel_facade::write(&mut db.context(), |ctx| ctx.try_lock("report"))
        .expect("after the outer transaction");
    assert!(taken, "released when the outermost transaction ended");
}

#[writer(savepoint)]
fn update_in_order<C: TestBackend>(
    ctx: &mut Context<C>,
    first: i32,
    second: i32,
    meet: Option<&Barrier>,
) -> Result<(), Error> {
    let bump = |id: i32| format!("UPDATE items SET qty = qty + 1 WHERE id = {id}");
    ctx.conn().batch_execute(&bump(first))?;
    if let Some(meet) = meet {
        meet.wait();
    }
    ctx.conn().batch_execute(&bump(second))?;
    Ok(())
}

#[writer(retry = 5)]
fn crossed_updates<C: TestBackend>(
    ctx: &mut Context<C>,
    first: i32,
    second: i32,
    meet: &Barrier,
    first_attempt: &AtomicBool,
) -> Result<(), Error> {
    let meet = first_attempt.swap(false, Ordering::SeqCst).then_some(meet);
    update_in_order(ctx, first, second, meet)?;
    Ok(())
}

/// A deadlock inside a savepoint, passed up with `?`, is retried by the
/// outermost `retry`: both crossed writers end `Ok`.
pub fn a_deadlock_inside_a_savepoint_is_retried_by_the_outermost_retry<C: TestBackend>() {
    let db = setup::<C>("trust_sp_deadlock");
    diesel_facade::write(&mut db.context(), |ctx| {
        insert(ctx.conn(), 1)?;
        insert(ctx.conn(), 2)
    })
    .expect("rows");
    let meet = Barrier::new(2);
    std::thread::scope(|s| {
        let a = s.spawn(|| crossed_updates(&mut db.context(), 1, 2, &meet, &AtomicBool::new(true)));
        let b = s.spawn(|| crossed_updates(&mut db.context(), 2, 1, &meet, &AtomicBool::new(true)));
        a.join().expect("a").expect("a commits after a retry");
        b.join().expect("b").expect("b commits after a retry");
    });
    assert!(db.stats().retries >= 1, "{:?}", db.stats());
    let both = query_n(&db, "SELECT COUNT(*) AS n FROM items WHERE qty = 2");
    assert_eq!(both, 2, "each writer committed both updates exactly once");
}

#[writer(savepoint)]
fn release_own_savepoint_then_fail<C: TestBackend>(
    ctx: &mut Context<C>,
    release_sql: &str,
) -> Result<(), Error> {
    ctx.conn().batch_execute(release_sql)?;
    Err(Error::new(
        ErrorKind::Other,
        "fail after the savepoint vanished",
    ))
}

#[writer(retry = 3)]
fn outer_with_broken_savepoint<C: TestBackend>(
    ctx: &mut Context<C>,
    attempts: &AtomicUsize,
    release_sql: &str,
) -> Result<(), Error> {
    attempts.fetch_add(1, Ordering::SeqCst);
    let _ = release_own_savepoint_then_fail(ctx, release_sql);
    Ok(())
}

/// A `ROLLBACK TO SAVEPOINT` that fails for a reason that is not retryable
/// (here the body released diesel's savepoint itself) dooms the
/// transaction without `retry` re-running it.
///
/// Not on MySQL/MariaDB: there a vanished savepoint is taken for the
/// deadlock or wsrep abort that removes it, which is retryable.
pub fn a_failed_savepoint_rollback_that_is_not_retryable_is_not_retried<C: TestBackend>() {
    let release_sql = "RELEASE SAVEPOINT diesel_savepoint_1";
    let db = setup::<C>("trust_sp_rollback_fails");
    let attempts = AtomicUsize::new(0);
    let err = outer_with_broken_savepoint(&mut db.context(), &attempts, release_sql)
        .expect_err("a doomed transaction never commits");
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "not retried: {err}");
    assert_eq!(db.stats().retries, 0);
    assert!(!err.kind().is_retryable(), "{err}");
}

#[writer(independent)]
fn insert_independently<C: TestBackend>(ctx: &mut Context<C>, id: i32) -> Result<(), Error> {
    insert(ctx.conn(), id)?;
    Ok(())
}

#[writer(independent)]
fn lock_independently<C: TestBackend>(ctx: &mut Context<C>, name: &str) -> Result<(), Error> {
    ctx.lock(name)
}

/// An independent writer inside a writer commits on its own connection
/// while the outer one rolls back (not on SQLite: see `ConcurrentWriters`).
pub fn independent_commits_while_the_outer_writer_rolls_back<C>()
where
    C: TestBackend + diesel_facade::ConcurrentWriters,
{
    let db = setup::<C>("trust_independent_in_writer");
    let result: Result<(), Error> = diesel_facade::write(&mut db.context(), |ctx| {
        insert(ctx.conn(), 1)?;
        insert_independently(ctx, 2)?;
        Err(Error::new(ErrorKind::Other, "the outer writer fails"))
    });
    assert!(result.is_err());
    assert!(!exists(&db, 1), "the outer writer rolled back");
    assert!(exists(&db, 2), "the independent writer committed");
}

/// An independent writer that waits for a lock its own outer writer holds
/// would wait forever; its wait is bounded and ends in `LockTimeout`.
pub fn an_independent_writer_blocked_by_its_own_outer_writer_times_out<C>()
where
    C: TestBackend + diesel_facade::ConcurrentWriters,
{
    let db = setup::<C>("trust_independent_self_wait");
    diesel_facade::write(&mut db.context(), |ctx| {
        ctx.lock("import")?;
        let err = lock_independently(ctx, "import").expect_err("it cannot get the lock");
        assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
        Ok::<_, Error>(())
    })
    .expect("the outer writer goes on and commits");
}

/// Inserts row 1, hits a duplicate of it and handles that error, tries row
/// 2, returns `Ok`.
fn write_handling_a_duplicate<C: TestBackend>(db: &Facade<C>) -> Result<(), Error> {
    diesel_facade::write(&mut db.context(), |ctx| {
        insert(ctx.conn(), 1)?;
        let duplicate = insert(ctx.conn(), 1).expect_err("a duplicate key");
        assert_eq!(Error::from(duplicate).kind(), ErrorKind::UniqueViolation);
        let _ = insert(ctx.conn(), 2); // PostgreSQL refuses: the transaction is aborted
        Ok(())
    })
}

/// MySQL and SQLite keep a transaction usable after a failed statement:
/// a handled duplicate, then `Ok`, commits everything else.
pub fn a_handled_error_then_ok_commits_the_rest<C: TestBackend>() {
    let db = setup::<C>("trust_handled_ok");
    write_handling_a_duplicate(&db).expect("commits");
    assert_eq!(db.stats().commits, 1);
    assert!(exists(&db, 1) && exists(&db, 2));
}

/// PostgreSQL aborts the transaction at the failed statement and answers
/// its `COMMIT` with a silent `ROLLBACK`: the caller gets the handled
/// error's kind instead of an `Ok` for writes that are gone.
pub fn a_handled_error_that_aborted_the_transaction_is_not_reported_committed<C: TestBackend>() {
    let db = setup::<C>("trust_handled_aborted");
    let err = write_handling_a_duplicate(&db).expect_err("nothing was committed");
    assert_eq!(err.kind(), ErrorKind::UniqueViolation, "{err}");
    assert!(err.message().contains("savepoint"), "names the fix: {err}");
    assert_eq!(db.stats().commits, 0, "{:?}", db.stats());
    assert!(!exists(&db, 1) && !exists(&db, 2));
}

#[writer(savepoint)]
fn insert_in_a_savepoint<C: TestBackend>(ctx: &mut Context<C>, id: i32) -> Result<(), Error> {
    insert(ctx.conn(), id)?;
    Ok(())
}

/// The documented way: a statement that may fail runs in a savepoint, and
/// the transaction commits after the handled error on every backend.
pub fn a_handled_error_inside_a_savepoint_lets_the_transaction_commit<C: TestBackend>() {
    let db = setup::<C>("trust_handled_in_sp");
    diesel_facade::write(&mut db.context(), |ctx| {
        insert(ctx.conn(), 1)?;
        let err = insert_in_a_savepoint(ctx, 1).expect_err("a duplicate key");
        assert_eq!(err.kind(), ErrorKind::UniqueViolation, "{err}");
        insert(ctx.conn(), 2)?;
        Ok::<_, Error>(())
    })
    .expect("commits");
    assert!(exists(&db, 1) && exists(&db, 2));
}

/// A body that ends the transaction itself with a `COMMIT` statement and
/// returns `Ok` (directly, or inside a `#[writer(savepoint)]` whose error
/// it passes up): its row is committed, so the error must not say that
/// nothing was: it is `CommitUnknown`, never `UnbalancedTransaction`
/// ("rolled back instead of committed"), which a caller may safely retry.
pub fn an_own_commit_statement_is_never_reported_rolled_back<C: TestBackend>() {
    let db = setup::<C>("own_commit");
    let err = diesel_facade::write(&mut db.context(), |ctx| -> Result<(), Error> {
        insert(ctx.conn(), 1)?;
        ctx.conn().batch_execute("COMMIT")?;
        Ok(())
    })
    .expect_err("the facade did not commit this transaction");
    assert!(exists(&db, 1), "the body's COMMIT committed the row");
    assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");

    let err = diesel_facade::write(&mut db.context(), |ctx| savepoint_that_commits(ctx))
        .expect_err("the facade did not commit this transaction");
    assert!(exists(&db, 2), "the body's COMMIT committed the row");
    assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");
}

#[writer(savepoint)]
fn savepoint_that_commits<C: TestBackend>(ctx: &mut Context<C>) -> Result<(), Error> {
    insert(ctx.conn(), 2)?;
    ctx.conn().batch_execute("COMMIT")?;
    Ok(())
}
