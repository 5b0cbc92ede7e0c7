//! Readers: typed reads compile and run on their `ReadOnlyConnection`, and
//! raw SQL that writes is refused by the database.

use diesel_facade::ErrorKind;

use super::{get_item, insert_item, setup, Req, TypedQueries};

/// Raw SQL that writes, run in a reader through `database_enforced()`, is a
/// `ReadOnlyViolation`, and the connection serves writers afterwards.
pub fn raw_sql_write_in_a_reader_is_a_read_only_violation<C: TypedQueries>() {
    let db = setup::<C>("raw_write_in_reader");
    let mut ctx = Req { db: db.clone() };
    let err = diesel_facade::read(&mut ctx, |ctx| {
        C::execute_sql(
            ctx.conn().database_enforced(),
            "INSERT INTO items (id, name, qty) VALUES (9, 'x', 0)",
        )
    })
    .map_err(diesel_facade::Error::from)
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnlyViolation, "{err}");
    // The same connection is fine for writers afterwards.
    insert_item(&mut ctx, 9, 0).unwrap();
    let err = diesel_facade::read(&mut ctx, |ctx| {
        C::execute_sql(ctx.conn().database_enforced(), "UPDATE items SET qty = 1")
    })
    .map_err(diesel_facade::Error::from)
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnlyViolation, "{err}");
    assert_eq!(get_item(&mut ctx, 9).unwrap().qty, 0);
}

/// A bare table loads in a reader through `as_query()`.
pub fn bare_tables_load_through_as_query<C: TypedQueries>() {
    let db = setup::<C>("bare_table");
    let mut ctx = Req { db };
    insert_item(&mut ctx, 1, 5).unwrap();
    let rows: Vec<(i32, String, i32)> =
        diesel_facade::read(&mut ctx, |ctx| C::all_items_as_query(ctx.conn())).unwrap();
    assert_eq!(rows, vec![(1, "item 1".to_owned(), 5)]);
}
