//! `ReadOnlyConnection`: the connection type of reader scopes, on which only
//! reads compile.
//!
//! It is deliberately not a diesel `Connection`. diesel's `execute` needs a
//! `Connection`, and every `load`/`get_result`/`first` needs `LoadQuery`;
//! this module implements `LoadQuery` for `ReadOnlyConnection` only for
//! queries marked [`ReadOnlyQuery`]: `SELECT` statements without a locking
//! clause (plain or boxed, including bare tables) and raw `sql_query`s. An
//! `INSERT/UPDATE/DELETE … RETURNING` or a `.for_update()` select therefore
//! fails `cargo check` on the user's line. Raw SQL is checked at run time by
//! the database, because reader transactions are READ ONLY there too.
//!
//! This needs diesel's `i-implement-a-third-party-backend-and-opt-into-breaking-changes`
//! feature (it makes `LoadQuery::internal_load` public), which is why
//! diesel-facade pins diesel to `~2.3`.

use diesel::query_builder::{BoxedSelectStatement, SelectStatement, SqlQuery};
use diesel::query_dsl::LoadQuery;
use diesel::{Connection, QueryResult};

/// A connection inside a read-only transaction. Only reads compile on it:
///
/// ```
/// use diesel::prelude::*;
/// use diesel_facade::{reader, Context};
/// use diesel::SqliteConnection;
///
/// diesel::table! { items (id) { id -> Integer, qty -> Integer } }
///
/// #[reader]
/// fn stock(ctx: &mut Context<SqliteConnection>) -> QueryResult<(i64, Vec<(i32, i32)>)> {
///     use diesel::query_builder::AsQuery;
///     let n = items::table.count().get_result(ctx.conn())?;
///     // A bare `items::table.load(..)` does not compile (see below); go
///     // through `as_query()` or, better, `select(..)`:
///     let all = items::table.as_query().load(ctx.conn())?;
///     let _ = items::table.filter(items::qty.gt(0)).into_boxed().load::<(i32, i32)>(ctx.conn())?;
///     Ok((n, all))
/// }
/// # fn main() -> Result<(), diesel_facade::Error> {
/// # let db = diesel_facade::Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
/// # diesel_facade::write(&mut db.context(), |ctx| diesel::sql_query("CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL)").execute(ctx.conn()))?;
/// assert_eq!(stock(&mut db.context())?.0, 0);
/// # Ok(()) }
/// ```
///
/// Why not a bare `items::table.load(ro)`: diesel implements `LoadQuery` for
/// every table with every `Connection`, and Rust's coherence rules then forbid
/// any crate (yours or this one) from adding an impl for your table with
/// `ReadOnlyConnection`, because diesel might one day make it a `Connection`.
///
/// Writes do not compile:
///
/// ```compile_fail
/// use diesel::prelude::*;
/// use diesel_facade::{reader, Context};
/// use diesel::SqliteConnection;
/// diesel::table! { items (id) { id -> Integer, qty -> Integer } }
///
/// #[reader]
/// fn sneaky(ctx: &mut Context<SqliteConnection>) -> QueryResult<usize> {
///     diesel::delete(items::table).execute(ctx.conn())
/// }
/// ```
#[repr(transparent)]
pub struct ReadOnlyConnection<C> {
    conn: C,
}

impl<C> ReadOnlyConnection<C> {
    pub(crate) fn from_mut(conn: &mut C) -> &mut Self {
        // SAFETY: `ReadOnlyConnection<C>` is `repr(transparent)` over `C`,
        // so both have the same layout, and the returned borrow has the
        // lifetime of the input.
        unsafe { &mut *(conn as *mut C).cast::<ReadOnlyConnection<C>>() }
    }

    /// The underlying connection, for passing to a function that has not
    /// been converted to `#[reader]` yet (one that takes `&mut C`).
    ///
    /// The compiler no longer checks what is done with it, but the
    /// transaction is still READ ONLY in the database: a write through it
    /// fails at run time with
    /// [`ErrorKind::ReadOnlyViolation`](crate::ErrorKind::ReadOnlyViolation),
    /// as long as the SQL sent through it leaves the transaction alone. On
    /// MySQL/MariaDB a statement that ends it (a `COMMIT` of its own, DDL)
    /// makes the reader fail with
    /// [`ErrorKind::CommitUnknown`](crate::ErrorKind::CommitUnknown) (a
    /// write after it may be committed); PostgreSQL's `SET
    /// transaction_read_only = off` as the first statement is not refused
    /// yet.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use diesel::SqliteConnection;
    ///
    /// fn legacy_count(conn: &mut SqliteConnection) -> QueryResult<i32> {
    ///     diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(conn)
    /// }
    ///
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
    /// let n = diesel_facade::read(&mut db.context(), |ctx| {
    ///     legacy_count(ctx.conn().database_enforced())
    /// })?;
    /// assert_eq!(n, 1);
    /// # Ok(()) }
    /// ```
    pub fn database_enforced(&mut self) -> &mut C {
        &mut self.conn
    }
}

impl<C> std::fmt::Debug for ReadOnlyConnection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadOnlyConnection")
    }
}

/// A query that cannot write or lock rows, so it may run on a
/// [`ReadOnlyConnection`]: `SELECT` statements without `FOR UPDATE`/`FOR
/// SHARE` (plain or boxed) and raw `sql_query` (which the database checks).
///
/// ```
/// use diesel_facade::ReadOnlyQuery;
/// fn is_read_only<Q: ReadOnlyQuery>(_: &Q) {}
/// is_read_only(&diesel::sql_query("SELECT 1"));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` can write or lock rows, so it cannot run in a #[reader]",
    label = "not a read-only query",
    note = "a #[reader]'s connection only runs SELECT statements without FOR UPDATE/FOR SHARE; move this statement into a #[writer]"
)]
pub trait ReadOnlyQuery {}

impl<F, S, D, W, O, LOf, G, H> ReadOnlyQuery for SelectStatement<F, S, D, W, O, LOf, G, H> {}
impl<ST, QS, DB, GB> ReadOnlyQuery for BoxedSelectStatement<'_, ST, QS, DB, GB> {}
impl<Inner> ReadOnlyQuery for SqlQuery<Inner> {}

/// Forward a load on a [`ReadOnlyConnection`] to the real connection, for
/// one query type (each impl must name the type: a blanket impl over all
/// queries would break the orphan rule).
macro_rules! forward_load {
    ([$($lt:lifetime),*] [$($generics:tt)*] $query:ty) => {
        impl<'query, $($lt,)* C, U, B, $($generics)*> LoadQuery<'query, ReadOnlyConnection<C>, U, B> for $query
        where
            C: Connection,
            $query: LoadQuery<'query, C, U, B> + ReadOnlyQuery,
        {
            type RowIter<'conn>
                = <$query as LoadQuery<'query, C, U, B>>::RowIter<'conn>
            where
                ReadOnlyConnection<C>: 'conn;

            fn internal_load(
                self,
                conn: &mut ReadOnlyConnection<C>,
            ) -> QueryResult<Self::RowIter<'_>> {
                <$query as LoadQuery<'query, C, U, B>>::internal_load(self, &mut conn.conn)
            }
        }
    };
}

forward_load!([] [F, S, D, W, O, LOf, G, H] SelectStatement<F, S, D, W, O, LOf, G, H>);
forward_load!(['a] [ST, QS, DB, GB] BoxedSelectStatement<'a, ST, QS, DB, GB>);
forward_load!([] [Inner] SqlQuery<Inner>);
