//! Cells: several databases of one schema (shards by tenant, region or
//! cell, as nova's cells v2 has them), a request that works on one of them
//! for a while, and reads fanned out over all of them.
//!
//! - [`Retarget`]: a context whose database can be pointed at another
//!   [`Facade`] (derived with `TransactionContext`; [`Context`] has it too).
//! - [`TargetCell::target`]: point the context at a cell for the duration of
//!   a closure (nova's `target_cell`).
//! - [`CellMap`] (`map.rs`): each cell's facade, built once, looked up by id.
//! - [`CellMap::scatter_gather`] (`scatter.rs`): one read-only transaction
//!   per cell, in parallel, with a per-cell timeout (nova's
//!   `scatter_gather_cells`).
//!
//! Invariants:
//! - A context is switched only through `&mut` of the idle context. No
//!   transaction scope hands that out (scopes deref to `&T` only), so no
//!   transaction is ever open on the database being switched: the compiler
//!   checks it, and a call inside a `#[reader]`/`#[writer]` names the fix.
//! - The previous facade, and the context's own `#[read_position]` field if
//!   it has one, are put back by a drop guard: on return, on an early
//!   return and on a panic.
//! - Read-your-writes positions never cross cells. The default position
//!   lives in the facade handle, so it is swapped with it: the cell's handle
//!   brings the cell's position, and the context's own comes back
//!   afterwards. A `#[read_position]` field is set aside (the closure starts
//!   with an empty one, which records the cell's commits) and restored
//!   afterwards. A position of one cell is never waited for on another's
//!   replicas, and the cell's position is not carried past the closure.
//!
//! Later, a named database of a context (`#[facade(api)]`) can be targeted
//! the same way, by a `Retarget` for that name; this module only knows the
//! default one.

use crate::backend::SupportedConnection;
use crate::context::{Context, TransactionContext};
use crate::facade::Facade;
use crate::replica::ReadPosition;
use crate::scope::Scope;

mod map;
mod scatter;

pub use map::CellMap;
pub use scatter::CellOutcome;

/// A request context whose database can be pointed at another [`Facade`]
/// (a cell), which is what [`TargetCell::target`] and
/// [`CellMap::scatter_gather`] need.
///
/// `#[derive(TransactionContext)]` implements it, and so does
/// [`Context`](crate::Context). By hand it is one method, plus one more if
/// the context keeps its read position in a field of its own:
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::{Facade, Retarget, TransactionContext};
///
/// struct Job { db: Facade<SqliteConnection> }
///
/// impl TransactionContext for Job {
///     type Connection = SqliteConnection;
///     fn facade(&self) -> &Facade<SqliteConnection> { &self.db }
/// }
///
/// impl Retarget for Job {
///     fn facade_mut(&mut self) -> &mut Facade<SqliteConnection> { &mut self.db }
/// }
/// # fn main() -> Result<(), diesel_facade::Error> {
/// # let mut job = Job { db: Facade::builder().writer(":memory:").build()? };
/// # let cell = Facade::<SqliteConnection>::builder().writer("file:cell?mode=memory&cache=shared").build()?;
/// use diesel_facade::TargetCell;
/// job.target(&cell, |job| assert!(job.facade().writer_url().starts_with("file:cell")));
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be pointed at another cell's database",
    label = "a transaction may be open here, or this is not a request context",
    note = "inside a #[reader]/#[writer] body, `ctx` is a transaction scope: a transaction cannot move to another database. Call `target` on the request context (`&mut ctx`) before the transaction begins, and call the data-access functions inside its closure",
    note = "request contexts get `Retarget` from `#[derive(TransactionContext)]`, and `diesel_facade::Context` has it; a hand-written context implements it with one method, `facade_mut`"
)]
pub trait Retarget: TransactionContext {
    /// The facade field, to be replaced for a while.
    fn facade_mut(&mut self) -> &mut Facade<Self::Connection>;

    /// The context's own read position (its `#[read_position]` field), if
    /// it keeps one apart from its facade: it is set aside while the context
    /// works on another cell, so that cell starts with an empty position.
    /// By default `None`: the position lives in the facade handle and is
    /// swapped with it.
    ///
    /// ```
    /// use diesel::SqliteConnection;
    /// use diesel_facade::{Facade, ReadPosition, Retarget, TransactionContext};
    ///
    /// #[derive(TransactionContext)]
    /// struct RequestContext {
    ///     #[facade]
    ///     db: Facade<SqliteConnection>,
    ///     #[read_position]
    ///     position: ReadPosition,
    /// }
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
    /// let mut ctx = RequestContext { db, position: ReadPosition::from_token("written")? };
    /// assert_eq!(ctx.read_position_mut().unwrap().token().as_deref(), Some("written"));
    /// # Ok(()) }
    /// ```
    fn read_position_mut(&mut self) -> Option<&mut ReadPosition> {
        None
    }
}

/// `ctx.target(&cell, |ctx| ..)`: run a closure with the request context
/// pointed at another database (a cell), then point it back.
///
/// Implemented for every context and scope, so that a call inside a
/// transaction is reported by name: only an idle request context
/// ([`Retarget`]) can be re-targeted, never one with a transaction open.
///
/// ```
/// use diesel::prelude::*;
/// use diesel::SqliteConnection;
/// use diesel_facade::{reader, writer, Facade, TargetCell, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct RequestContext {
///     #[facade]
///     db: Facade<SqliteConnection>,
/// }
///
/// #[writer]
/// fn create(ctx: &mut RequestContext, name: &str) -> QueryResult<usize> {
///     diesel::sql_query("CREATE TABLE IF NOT EXISTS t (name TEXT)").execute(ctx.conn())?;
///     diesel::sql_query(format!("INSERT INTO t VALUES ('{name}')")).execute(ctx.conn())
/// }
///
/// #[reader]
/// fn names(ctx: &mut RequestContext) -> QueryResult<i64> {
///     diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>("(SELECT COUNT(*) FROM t)"))
///         .get_result(ctx.conn())
/// }
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let main = Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
/// let cell1 = Facade::<SqliteConnection>::builder()
///     .writer("file:cell1?mode=memory&cache=shared")
///     .build()?;
/// let mut ctx = RequestContext { db: main };
/// create(&mut ctx, "main")?;
/// let in_cell = ctx.target(&cell1, |ctx| -> QueryResult<i64> {
///     create(ctx, "a")?;
///     create(ctx, "b")?;
///     names(ctx)
/// })?;
/// assert_eq!(in_cell, 2);
/// assert_eq!(names(&mut ctx)?, 1); // back on the main database
/// # Ok(()) }
/// ```
pub trait TargetCell: Sized {
    /// Point this context at `cell` (a clone of that handle) while `f` runs,
    /// and back at its previous facade when `f` returns or panics. Calls
    /// inside `f` that get the context begin their transactions on `cell`;
    /// nested `target` calls stack.
    ///
    /// Only an idle request context can be re-targeted: inside a
    /// `#[reader]`/`#[writer]`, `ctx` is a transaction scope and the call does
    /// not compile (see [`Retarget`]).
    ///
    /// Read-your-writes: `f` sees the cell's own writes made inside it on the
    /// cell's replicas; the context's position on its previous database is
    /// untouched, and the cell's is dropped when `f` returns (see
    /// `docs/cells.md`).
    fn target<C, R>(&mut self, cell: &Facade<C>, f: impl FnOnce(&mut Self) -> R) -> R
    where
        C: SupportedConnection,
        Self: Retarget<Connection = C>,
    {
        let pointed = Pointed::new(self, cell.clone());
        f(&mut *pointed.ctx)
    }
}

impl<S: Scope> TargetCell for S {}

/// A [`Context`] can be pointed at a cell too.
impl<C: SupportedConnection> Retarget for Context<C> {
    fn facade_mut(&mut self) -> &mut Facade<C> {
        Context::facade_mut(self)
    }
}

/// A context pointed at a cell: puts its previous facade (and its own read
/// position, if it has one) back when dropped.
struct Pointed<'a, T: Retarget> {
    ctx: &'a mut T,
    saved: Option<Saved<T::Connection>>,
}

struct Saved<C: SupportedConnection> {
    facade: Facade<C>,
    position: Option<ReadPosition>,
}

impl<'a, T: Retarget> Pointed<'a, T> {
    fn new(ctx: &'a mut T, cell: Facade<T::Connection>) -> Self {
        let saved = point_at(ctx, cell);
        Pointed {
            ctx,
            saved: Some(saved),
        }
    }
}

impl<T: Retarget> Drop for Pointed<'_, T> {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            *self.ctx.facade_mut() = saved.facade;
            if let (Some(slot), Some(position)) = (self.ctx.read_position_mut(), saved.position) {
                *slot = position;
            }
        }
    }
}

/// Point `ctx` at `cell`, with an empty own read position; returns what it
/// held before.
fn point_at<T: Retarget>(ctx: &mut T, cell: Facade<T::Connection>) -> Saved<T::Connection> {
    let facade = std::mem::replace(ctx.facade_mut(), cell);
    let position = ctx.read_position_mut().map(std::mem::take);
    Saved { facade, position }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests;
