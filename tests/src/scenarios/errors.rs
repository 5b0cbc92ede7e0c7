//! What a caller is told when a request fails: the error's kind, and a
//! message that names the cause.

use std::time::Duration;

use diesel_facade::ErrorKind;

use super::{insert_independently, insert_item, item_exists, setup, Req, TypedQueries};

/// A duplicate key is `UniqueViolation`.
pub fn unique_violation_is_classified<C: TypedQueries>() {
    let db = setup::<C>("unique_violation");
    let mut ctx = Req { db };
    insert_item(&mut ctx, 1, 0).unwrap();
    let err = diesel_facade::Error::from(insert_item(&mut ctx, 1, 0).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::UniqueViolation, "{err}");
}

/// An independent writer inside a reader on a pool of one cannot get a
/// connection: `PoolTimeout`, and the message names the pool size and the
/// independent writer.
pub fn pool_exhaustion_is_a_pool_timeout_that_names_the_cause<C: TypedQueries>() {
    let db = crate::facade::<C>("pool_exhaustion", |b| {
        b.max_pool_size(1).pool_timeout(Duration::from_millis(300))
    });
    let mut ctx = Req { db: db.clone() };
    let err = diesel_facade::read(&mut ctx, |ctx| insert_independently(ctx, 1))
        .map_err(diesel_facade::Error::from)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PoolTimeout, "{err}");
    assert!(err.message().contains("max_pool_size = 1"), "{err}");
    assert!(err.message().contains("independent"), "{err}");
    assert!(!item_exists(&mut ctx, 1).unwrap());
}
