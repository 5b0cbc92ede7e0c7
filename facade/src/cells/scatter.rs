//! Scatter-gather reads: one read-only transaction per cell, all at once,
//! each given until a common deadline.
//!
//! Each cell runs on a thread of its own, detached: the caller waits on a
//! channel until every cell answered or the deadline passed, and never
//! joins a thread, so a cell that hangs (a dead host, a held lock) costs
//! the caller nothing past the deadline. That is why everything a worker
//! takes must be `Send + 'static`: it may outlive the call.
//!
//! A worker the caller stopped waiting for is not abandoned on the server:
//! its transaction's statements are bounded to the time left until the
//! deadline, plus a moment (`SupportedConnection::limit_statement_time`: PostgreSQL's
//! transaction-local `statement_timeout`, MariaDB's session
//! `max_statement_time`, lifted again before the connection goes back to
//! its pool). The server cancels a statement still running or waiting for
//! a lock then, the transaction rolls back, and the thread ends and returns
//! its connection. What the bound cannot cut short: the wait for a pooled
//! connection (at most the cell's `pool_timeout`) and a connect to a host
//! that does not answer (see `pool.rs`).
//!
//! A result counts if its worker finished by the deadline, even if the
//! caller reads it a moment later; one that finished after it is
//! `TimedOut`, even if it is already in the channel.

use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{point_at, CellMap, Retarget};
use crate::backend::SupportedConnection;
use crate::config::MAX_WAIT;
use crate::error::{Error, ErrorKind};
use crate::scope::ReaderScope;

/// What one cell answered in a [`CellMap::scatter_gather`].
///
/// ```
/// use diesel_facade::CellOutcome;
/// let answered: CellOutcome<i64, diesel_facade::Error> = CellOutcome::Value(3);
/// assert_eq!(answered.value(), Some(&3));
/// assert!(CellOutcome::<i64, diesel_facade::Error>::TimedOut.is_timed_out());
/// ```
#[derive(Debug)]
pub enum CellOutcome<R, E> {
    /// The function returned `Ok` on this cell (and its read-only
    /// transaction committed).
    Value(R),
    /// The function, the transaction or the connection failed on this
    /// cell.
    Error(E),
    /// The cell did not answer within the timeout. Its query is cancelled
    /// on the server when the time is up (see
    /// [`CellMap::scatter_gather`]); its answer is never reported.
    TimedOut,
}

impl<R, E> CellOutcome<R, E> {
    /// The value, if the cell answered one.
    ///
    /// ```
    /// let failed = diesel_facade::CellOutcome::<i64, &str>::Error("down");
    /// assert_eq!(failed.value(), None);
    /// ```
    pub fn value(&self) -> Option<&R> {
        match self {
            CellOutcome::Value(value) => Some(value),
            _ => None,
        }
    }

    /// The error, if the cell answered one.
    ///
    /// ```
    /// let failed = diesel_facade::CellOutcome::<i64, &str>::Error("down");
    /// assert_eq!(failed.error(), Some(&"down"));
    /// ```
    pub fn error(&self) -> Option<&E> {
        match self {
            CellOutcome::Error(err) => Some(err),
            _ => None,
        }
    }

    /// Whether the cell did not answer in time.
    ///
    /// ```
    /// assert!(!diesel_facade::CellOutcome::<i64, ()>::Value(1).is_timed_out());
    /// ```
    pub fn is_timed_out(&self) -> bool {
        matches!(self, CellOutcome::TimedOut)
    }
}

/// How long after the deadline a cell's server cancels the statement the
/// caller stopped waiting for. Not zero: the server's timer may fire a
/// little early (PostgreSQL was seen to cancel 50 µs before a deadline set
/// to the millisecond), and a cancellation that beats the deadline would
/// report the cell as an error instead of timed out.
const SERVER_GRACE: Duration = Duration::from_millis(100);

/// What a worker sends back: its cell's index, when it finished, and the
/// result or the payload of its panic.
type Report<R, E> = (usize, Instant, thread::Result<Result<R, E>>);

impl<C: SupportedConnection> CellMap<C> {
    /// Run the read `f` on every cell at once, each in a read-only
    /// transaction of its own (a `#[reader]`'s, on the cell's primary), and
    /// return each cell's outcome by id: its value, its error, or
    /// [`CellOutcome::TimedOut`] if it did not finish within `timeout`.
    ///
    /// `f` gets each cell's [`ReaderScope`] on a clone of `ctx` pointed at
    /// that cell (as [`TargetCell::target`](crate::TargetCell::target)
    /// would), so a `#[reader]` function of the application's own context
    /// type can be called with it: `|ctx| list_instances(ctx)`. A
    /// `#[writer]` cannot (it does not compile in a reader's scope).
    ///
    /// The call returns when every cell answered, and never later than
    /// `timeout` after it began (plus the time to start the threads and
    /// collect what they sent): a dead or slow cell delays no other cell's
    /// answer, and fails none. Each cell runs on a thread of its own, which
    /// is not waited for: hence the `Send + 'static` bounds. The cell's
    /// statements are bounded on its server to the time left until the
    /// deadline, so a query the caller gave up on is cancelled there and
    /// the thread returns its connection to the pool: on PostgreSQL with a
    /// transaction-local `statement_timeout`, on MariaDB with the session's
    /// `max_statement_time` (taken off again afterwards); MySQL has no such
    /// setting, and its query runs until it ends. Within the timeout, a
    /// dead cell is an error (once its pool gives up: at most the cell's
    /// `pool_timeout`, and 3 s for a server that refuses connections) or
    /// else timed out.
    ///
    /// If `f` panics on a cell, the panic is resumed in the caller once it
    /// is reported, like a scoped thread's. A zero `timeout` times every
    /// cell out; one above 24 hours is taken as 24 hours.
    ///
    /// ```
    /// use std::time::Duration;
    /// use diesel::prelude::*;
    /// use diesel::SqliteConnection;
    /// use diesel_facade::{reader, CellMap, Facade, TransactionContext};
    ///
    /// #[derive(Clone, TransactionContext)]
    /// struct RequestContext {
    ///     request_id: String,
    ///     #[facade]
    ///     db: Facade<SqliteConnection>,
    /// }
    ///
    /// #[reader]
    /// fn answer(ctx: &mut RequestContext) -> QueryResult<String> {
    ///     diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>("'ok'"))
    ///         .get_result(ctx.conn())
    /// }
    ///
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let mut cells = CellMap::new();
    /// for id in ["cell1", "cell2", "cell3"] {
    ///     cells.insert(id, Facade::<SqliteConnection>::builder().writer(":memory:").build()?)?;
    /// }
    /// let ctx = RequestContext { request_id: "req-1".into(), db: cells.get("cell1")?.clone() };
    /// let answers = cells.scatter_gather(&ctx, Duration::from_secs(5), |ctx| answer(ctx));
    /// assert_eq!(answers.len(), 3);
    /// assert!(answers.values().all(|outcome| outcome.value().map(String::as_str) == Some("ok")));
    /// # Ok(()) }
    /// ```
    pub fn scatter_gather<T, R, E, F>(
        &self,
        ctx: &T,
        timeout: Duration,
        f: F,
    ) -> BTreeMap<String, CellOutcome<R, E>>
    where
        T: Retarget<Connection = C> + Clone + Send + 'static,
        F: Fn(&mut ReaderScope<'_, T>) -> Result<R, E> + Send + Sync + 'static,
        R: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let started = Instant::now();
        let deadline = started + timeout.min(MAX_WAIT);
        let f = Arc::new(f);
        let (sender, receiver) = mpsc::channel::<Report<R, E>>();
        let mut outcomes: Vec<Option<CellOutcome<R, E>>> = Vec::with_capacity(self.len());
        let mut running = 0;
        for (index, (id, cell)) in self.cells.iter().enumerate() {
            let mut cell_ctx = ctx.clone();
            point_at(&mut cell_ctx, cell.clone());
            let (f, sender) = (Arc::clone(&f), sender.clone());
            let spawned = thread::Builder::new()
                .name(format!("scatter-gather {id}"))
                .spawn(move || {
                    let result = panic::catch_unwind(AssertUnwindSafe(|| {
                        read_cell(cell_ctx, &*f, deadline)
                    }));
                    // The caller may have stopped listening: nothing to do.
                    let _ = sender.send((index, Instant::now(), result));
                });
            outcomes.push(match spawned {
                Ok(_) => {
                    running += 1;
                    None
                }
                Err(err) => Some(CellOutcome::Error(E::from(Error::new(
                    ErrorKind::Other,
                    format!("could not start a thread for cell `{id}`: {err}"),
                )))),
            });
        }
        drop(sender);
        let mut take = |(index, finished, result): Report<R, E>| {
            if finished > deadline {
                return;
            }
            outcomes[index] = Some(match result {
                Ok(Ok(value)) => CellOutcome::Value(value),
                Ok(Err(err)) => CellOutcome::Error(err),
                Err(panic) => panic::resume_unwind(panic),
            });
        };
        while running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(report) => {
                    running -= 1;
                    take(report);
                }
                Err(_) => break,
            }
        }
        // Reports that arrived while the caller was not looking.
        while let Ok(report) = receiver.try_recv() {
            take(report);
        }
        tracing::debug!(
            cells = outcomes.len(),
            timed_out = outcomes.iter().filter(|o| o.is_none()).count(),
            elapsed = ?started.elapsed(),
            "scatter-gather"
        );
        self.cells
            .keys()
            .cloned()
            .zip(
                outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or(CellOutcome::TimedOut)),
            )
            .collect()
    }
}

/// One cell's read: a read-only transaction whose statements the server
/// cancels at the deadline.
fn read_cell<T, R, E, F>(mut ctx: T, f: &F, deadline: Instant) -> Result<R, E>
where
    T: Retarget,
    F: Fn(&mut ReaderScope<'_, T>) -> Result<R, E>,
    E: From<Error>,
{
    crate::entry::read(&mut ctx, |scope| {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            // Nobody is waiting for this answer any more.
            return Err(E::from(Error::new(
                ErrorKind::Other,
                "the scatter-gather deadline passed before this cell's transaction began",
            )));
        }
        let bound = |scope: &mut ReaderScope<'_, T>, limit| {
            <T::Connection as SupportedConnection>::limit_statement_time(
                scope.conn().database_enforced(),
                limit,
            )
            .map_err(|e| E::from(Error::from(e)))
        };
        bound(scope, Some(left + SERVER_GRACE))?;
        let result = panic::catch_unwind(AssertUnwindSafe(|| f(scope)));
        // Before the connection goes back to the pool, whatever happened.
        let lifted = bound(scope, None);
        match result {
            Ok(result) => result.and_then(|value| lifted.map(|()| value)),
            Err(panic) => panic::resume_unwind(panic),
        }
    })
}
