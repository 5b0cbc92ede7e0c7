//! Scenarios that need a database server: a session can be killed under a
//! transaction.

use std::sync::atomic::{AtomicUsize, Ordering};

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
