//! One transaction per request: nested calls join it, an error or a panic
//! rolls all of it back, a savepoint rolls back only its own work, an
//! independent writer commits on its own, and hooks run after the commit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::QueryResult;
use diesel_facade::{writer, Context, ErrorKind};

use super::{
    bump, count_items, get_item, insert_in_savepoint, insert_independently, insert_item,
    item_exists, other_context_sees, setup, Req, TypedQueries,
};
use crate::{EventLog, Item};

#[writer]
fn composed<C: TypedQueries>(ctx: &mut Req<C>) -> QueryResult<(Item, i64)> {
    let _ = get_item(ctx, 1)?; // 2: reader joins
    let bumped = bump(ctx, 1)?; // 3: writer joins (4, 5: its readers)
    let n = count_items(ctx)?; // 6: allow_replica reader joins
    Ok((bumped, n))
}

/// A writer that calls readers, a writer and an `allow_replica` reader uses
/// one pool checkout, one BEGIN and one COMMIT.
pub fn composed_call_uses_one_checkout_one_begin_one_commit<C: TypedQueries>() {
    let log = EventLog::default();
    let factory = log.factory();
    let db = crate::facade::<C>("composed", |b| b.instrumentation(factory));
    let mut ctx = Req { db: db.clone() };
    insert_item(&mut ctx, 1, 0).unwrap();

    log.clear();
    let before = db.stats();
    let (item, n) = composed(&mut ctx).unwrap();
    let after = db.stats();
    assert_eq!((item.qty, n), (1, 1));
    assert_eq!(after.checkouts - before.checkouts, 1, "pool checkouts");
    assert_eq!(after.transactions - before.transactions, 1);
    assert_eq!(
        log.count("begin"),
        1,
        "BEGINs seen by diesel: {:?}",
        log.all()
    );
    assert_eq!(
        log.count("commit"),
        1,
        "COMMITs seen by diesel: {:?}",
        log.all()
    );
    assert_eq!(log.count("rollback"), 0);
}

/// A reader joined to a writer sees the writer's row; another context sees
/// it only after the commit.
pub fn nested_reader_sees_the_outer_writers_uncommitted_row<C: TypedQueries>() {
    let db = setup::<C>("nested_reader_sees");
    let mut ctx = Req { db: db.clone() };
    diesel_facade::write(&mut ctx, |ctx| {
        insert_item(ctx, 7, 3)?;
        assert_eq!(get_item(ctx, 7)?.qty, 3, "the joined reader sees the write");
        assert!(
            !other_context_sees(&db, 7),
            "another context must not see it yet"
        );
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    assert!(other_context_sees(&db, 7), "visible after commit");
}

/// A writer whose body returns `Err` rolls back every joined write.
pub fn err_rolls_back_everything<C: TypedQueries>() {
    let db = setup::<C>("err_rolls_back");
    let mut ctx = Req { db: db.clone() };
    let before = db.stats();
    let result: QueryResult<()> = diesel_facade::write(&mut ctx, |ctx| {
        insert_item(ctx, 1, 0)?;
        insert_item(ctx, 2, 0)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    assert_eq!(count_items(&mut ctx).unwrap(), 0);
    assert_eq!(db.stats().rollbacks - before.rollbacks, 1);
}

/// The `Err` of a joined writer reaches the outer body, which may carry on
/// and commit.
pub fn joined_error_does_not_roll_back_the_outer_transaction<C: TypedQueries>() {
    let db = setup::<C>("joined_error");
    let mut ctx = Req { db: db.clone() };
    diesel_facade::write(&mut ctx, |ctx| {
        insert_item(ctx, 1, 0)?;
        // A duplicate key: the joined writer's Err reaches us and we
        // decide to carry on (on PostgreSQL the failed statement
        // aborts the transaction, so use a savepoint there).
        let dup = insert_in_savepoint(ctx, 1, false);
        assert_eq!(
            diesel_facade::Error::from(dup.unwrap_err()).kind(),
            ErrorKind::UniqueViolation
        );
        insert_item(ctx, 2, 0)
    })
    .unwrap();
    assert_eq!(count_items(&mut ctx).unwrap(), 2);
}

/// A panic in a writer rolls it back, and the pool replaces the connection.
pub fn panic_rolls_back_and_the_pool_recovers<C: TypedQueries>() {
    let db = crate::facade::<C>("panic_rolls_back", |b| {
        b.max_pool_size(1).pool_timeout(Duration::from_secs(5))
    });
    let mut ctx = Req { db: db.clone() };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _: QueryResult<()> = diesel_facade::write(&mut ctx, |ctx| {
            insert_item(ctx, 1, 0)?;
            panic!("boom");
        });
    }));
    assert!(outcome.is_err(), "the panic propagates");
    // The only pooled connection was rolled back and discarded; the
    // pool makes a new one and nothing was committed.
    assert_eq!(count_items(&mut ctx).unwrap(), 0);
    insert_item(&mut ctx, 2, 0).unwrap();
    assert_eq!(count_items(&mut ctx).unwrap(), 1);
}

/// A failing `#[writer(savepoint)]` rolls back to its savepoint only;
/// outermost, it is an ordinary transaction.
pub fn savepoint_rolls_back_only_its_own_work<C: TypedQueries>() {
    let db = setup::<C>("savepoint");
    let mut ctx = Req { db: db.clone() };
    let log_before = db.stats();
    diesel_facade::write(&mut ctx, |ctx| {
        insert_item(ctx, 1, 0)?;
        assert!(insert_in_savepoint(ctx, 2, true).is_err());
        insert_in_savepoint(ctx, 3, false)?;
        assert!(!item_exists(ctx, 2)?, "rolled back to the savepoint");
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    assert!(item_exists(&mut ctx, 1).unwrap());
    assert!(!item_exists(&mut ctx, 2).unwrap());
    assert!(item_exists(&mut ctx, 3).unwrap());
    assert_eq!(
        db.stats().commits - log_before.commits,
        4,
        "1 writer + 3 readers"
    );
    // Outermost, a savepoint writer is an ordinary transaction.
    insert_in_savepoint(&mut ctx, 4, false).unwrap();
    assert!(insert_in_savepoint(&mut ctx, 5, true).is_err());
    assert!(item_exists(&mut ctx, 4).unwrap() && !item_exists(&mut ctx, 5).unwrap());
}

/// An independent writer called inside a reader commits although the
/// reader fails.
pub fn independent_commits_while_the_outer_rolls_back<C: TypedQueries>() {
    let db = setup::<C>("independent");
    let mut ctx = Req { db: db.clone() };
    // Inside a reader (also on SQLite, in WAL mode); inside a
    // writer on the server backends: `trust::independent_*`.
    let result: QueryResult<()> = diesel_facade::read(&mut ctx, |ctx| {
        insert_independently(ctx, 2)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    assert!(item_exists(&mut ctx, 2).unwrap(), "independent committed");
}

#[writer(savepoint)]
fn failing_with_hook<C: TypedQueries>(ctx: &mut Req<C>, ran: Arc<AtomicUsize>) -> QueryResult<()> {
    ctx.on_commit(move || {
        ran.fetch_add(100, Ordering::SeqCst);
    });
    Err(diesel::result::Error::RollbackTransaction)
}

/// `on_commit` hooks run once the transaction has committed, never after a
/// rollback, and not when registered in a savepoint that rolled back.
pub fn on_commit_runs_after_commit_only<C: TypedQueries>() {
    let db = setup::<C>("on_commit");
    let mut ctx = Req { db: db.clone() };
    let ran = Arc::new(AtomicUsize::new(0));
    let hook = |ran: &Arc<AtomicUsize>, n: usize| {
        let ran = ran.clone();
        move || {
            ran.fetch_add(n, Ordering::SeqCst);
        }
    };
    // Committed: the hook runs once the transaction is over.
    diesel_facade::write(&mut ctx, |ctx| {
        ctx.on_commit(hook(&ran, 1));
        assert_eq!(ran.load(Ordering::SeqCst), 0, "not before commit");
        Ok::<_, diesel_facade::Error>(())
    })
    .unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // Rolled back: it never runs.
    let _: Result<(), diesel_facade::Error> = diesel_facade::write(&mut ctx, |ctx| {
        ctx.on_commit(hook(&ran, 10));
        Err(diesel_facade::Error::new(ErrorKind::Other, "no"))
    });
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    // Registered in a savepoint that rolls back: dropped; the outer
    // one still runs.
    diesel_facade::write(&mut ctx, |ctx| {
        ctx.on_commit(hook(&ran, 1000));
        assert!(failing_with_hook(ctx, ran.clone()).is_err());
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1001);
}

#[writer]
fn add<C: TypedQueries>(ctx: &mut Context<C>, id: i32) -> QueryResult<()> {
    C::insert_item(ctx.conn(), id, "n".to_owned(), 1).map(drop)
}

/// The facade's own `Context` with an annotated writer, then the closure
/// form `read_replica` on the same context.
pub fn context_and_closure_forms_work_together<C: TypedQueries>() {
    let db = setup::<C>("closure_forms");
    let mut ctx: Context<C> = db.context();
    add(&mut ctx, 1).unwrap();
    let n: i64 = diesel_facade::read_replica(&mut ctx, |ctx| C::count_items(ctx.conn())).unwrap();
    assert_eq!(n, 1);
}

#[writer(retry)]
fn bump_locked<C: TypedQueries>(ctx: &mut Req<C>, id: i32) -> Result<Item, diesel_facade::Error> {
    ctx.lock("bump")?;
    Ok(bump(ctx, id)?)
}

/// Locked read-modify-write writers from four threads: every one commits.
pub fn writes_in_sequence_from_many_threads_all_commit<C: TypedQueries>() {
    let db = crate::facade::<C>("threads_bump", |b| b.max_pool_size(4));
    insert_item(&mut Req { db: db.clone() }, 1, 0).unwrap();
    const THREADS: usize = 4;
    const ITERATIONS: usize = 25;
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            let db = db.clone();
            s.spawn(move || {
                let mut ctx = Req { db };
                for _ in 0..ITERATIONS {
                    bump_locked(&mut ctx, 1).unwrap();
                }
            });
        }
    });
    let qty = get_item(&mut Req { db: db.clone() }, 1).unwrap().qty;
    assert_eq!(qty as usize, THREADS * ITERATIONS);
}
