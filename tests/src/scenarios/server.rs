//! Scenarios that need a database server: a session can be killed under a
//! transaction.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel_facade::{writer, ErrorKind};

use super::{count_items, insert_item, item_exists, Req, TypedQueries};

#[writer(retry = 3)]
fn write_through_a_kill<C: TypedQueries>(
    ctx: &mut Req<C>,
    attempts: &AtomicUsize,
    own_id_sql: &str,
    admin_url: &str,
) -> Result<(), diesel_facade::Error> {
    let attempt = attempts.fetch_add(1, Ordering::SeqCst) as i32;
    insert_item(ctx, 100 + attempt, 0)?;
    if attempt == 0 {
        let id = C::session_id(ctx.conn(), own_id_sql)?;
        crate::kill_session::<C>(admin_url, id);
    }
    insert_item(ctx, 200, 0)?; // fails on the first attempt
    Ok(())
}

/// A session killed before COMMIT: `retry` re-runs the transaction on a
/// fresh connection, and the lost attempt left nothing. Without `retry`
/// the caller gets `Disconnected` and the pool replaces the connection.
pub fn a_connection_lost_before_commit_is_retried_on_a_fresh_one<C: TypedQueries>() {
    let (own_id_sql, _) = C::KILL.expect("a server backend");
    let db = crate::facade::<C>("lost_connection", |b| b);
    let admin_url = crate::server_url::<C>();
    let attempts = AtomicUsize::new(0);

    write_through_a_kill(
        &mut Req { db: db.clone() },
        &attempts,
        own_id_sql,
        &admin_url,
    )
    .expect("the retry runs on a fresh connection");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert_eq!(db.stats().retries, 1);
    let mut ctx = Req { db: db.clone() };
    assert!(
        !item_exists(&mut ctx, 100).unwrap(),
        "the lost attempt left nothing"
    );
    assert!(item_exists(&mut ctx, 101).unwrap() && item_exists(&mut ctx, 200).unwrap());

    // Without retry the caller gets a clear Disconnected error, and the
    // pool replaces the dead connection.
    let err = diesel_facade::write(&mut ctx, |ctx| {
        let id = C::session_id(ctx.conn(), own_id_sql)?;
        crate::kill_session::<C>(&admin_url, id);
        insert_item(ctx, 300, 0)
    })
    .map_err(diesel_facade::Error::from)
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    assert!(
        count_items(&mut ctx).is_ok(),
        "the next request gets a live connection"
    );
}

/// A pooled connection the server closed between two calls (a restart, an
/// administrator's `KILL`): the checkout does not ping a connection in
/// steady use, so the next call's `BEGIN` finds it lost, and the facade
/// begins on a fresh connection by itself. After an idle spell the
/// checkout's ping finds it instead. Either way the call succeeds, its
/// body runs once, and no retry of the caller's is spent. `run_migrations`,
/// which sends no `BEGIN` first, always has its connection pinged.
pub fn a_pooled_connection_killed_between_calls_is_replaced_without_a_retry<C: TypedQueries>() {
    let (own_id_sql, _) = C::KILL.expect("a server backend");
    let db = crate::facade::<C>("killed_between_calls", |b| b.max_pool_size(1));
    let admin_url = crate::server_url::<C>();
    let mut ctx = Req { db: db.clone() };
    // Longer than the facade's 500 ms window before a checkout pings.
    for (key, idle) in [(400, Duration::ZERO), (401, Duration::from_millis(650))] {
        let id = diesel_facade::write(&mut ctx, |ctx| C::session_id(ctx.conn(), own_id_sql))
            .map_err(diesel_facade::Error::from)
            .expect("a writer reads its session id");
        crate::kill_session_and_wait::<C>(&admin_url, id);
        std::thread::sleep(idle);
        let runs = AtomicUsize::new(0);
        let retries = db.stats().retries;
        diesel_facade::write(&mut ctx, |ctx| {
            runs.fetch_add(1, Ordering::SeqCst);
            insert_item(ctx, key, 0)
        })
        .map_err(diesel_facade::Error::from)
        .unwrap_or_else(|e| panic!("idle {idle:?}: the call after the kill failed: {e}"));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "idle {idle:?}");
        assert_eq!(db.stats().retries, retries, "idle {idle:?}: no retry spent");
        assert!(item_exists(&mut ctx, key).unwrap(), "idle {idle:?}");
    }
    // Migrations send statements of their own first: their checkout pings
    // even a connection in steady use.
    let id = diesel_facade::write(&mut ctx, |ctx| C::session_id(ctx.conn(), own_id_sql))
        .map_err(diesel_facade::Error::from)
        .expect("a writer reads its session id");
    crate::kill_session_and_wait::<C>(&admin_url, id);
    db.run_migrations()
        .expect("migrations run on a fresh connection after the kill");
}

/// A connection the pool opened for a waiter that another, given back
/// meanwhile, served instead: it sits in the pool never checked out. When
/// the server closes it (here, every session of the database is killed),
/// the next call still succeeds once, without a retry of its own, in
/// steady use and after an idle spell: a new connection is pinged after
/// 500 ms idle like any other, and its lost `BEGIN` begins on another
/// connection. (The race that leaves a connection unused is not certain:
/// the rounds where it does not happen prove nothing, and say so.)
pub fn a_never_used_pooled_connection_the_server_closed_is_replaced<C: TypedQueries>() {
    use std::sync::{Arc, Barrier};
    let db = crate::facade::<C>("never_used_closed", |b| b.max_pool_size(2));
    let admin_url = crate::server_url::<C>();
    let name = crate::database_name_of(&db);
    let mut unused_rounds = 0;
    for round in 0..24u64 {
        let barrier = Arc::new(Barrier::new(2));
        let holder = {
            let db = db.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                diesel_facade::write(&mut Req { db }, |ctx| {
                    barrier.wait();
                    std::thread::sleep(Duration::from_micros((round % 6) * 300));
                    count_items(ctx)
                })
                .map_err(diesel_facade::Error::from)
                .expect("the holder")
            })
        };
        barrier.wait();
        diesel_facade::write(&mut Req { db: db.clone() }, |ctx| count_items(ctx))
            .map_err(diesel_facade::Error::from)
            .expect("the waiter");
        holder.join().expect("holder thread");
        // r2d2 may still be opening the second connection.
        std::thread::sleep(Duration::from_millis(30));
        let killed = crate::kill_sessions_of_database::<C>(&admin_url, &name);
        if killed >= 2 {
            unused_rounds += 1;
        }
        std::thread::sleep(if round % 2 == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(650)
        });
        let runs = AtomicUsize::new(0);
        let retries = db.stats().retries;
        let key = 500 + i32::try_from(round).expect("a small round");
        diesel_facade::write(&mut Req { db: db.clone() }, |ctx| {
            runs.fetch_add(1, Ordering::SeqCst);
            insert_item(ctx, key, 0)
        })
        .map_err(diesel_facade::Error::from)
        .unwrap_or_else(|e| panic!("round {round} ({killed} sessions killed): {e}"));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "round {round}");
        assert_eq!(db.stats().retries, retries, "round {round}: no retry spent");
    }
    eprintln!("never-used connection: {unused_rounds} of 24 rounds had two pooled sessions killed");
}
