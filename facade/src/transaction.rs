//! Begin, commit, roll back, savepoints, retries: the whole life of a
//! transaction, written once for every backend.
//!
//! Invariants:
//! - Only the outermost scope talks to the pool and sends `BEGIN`/`COMMIT`/
//!   `ROLLBACK`; joined scopes send nothing.
//! - A [`RollbackOnDrop`] guard is armed while user code runs, so a panic or
//!   an early return rolls back; a rollback that fails marks the connection
//!   broken and the pool discards it.
//! - `COMMIT` that loses the connection is `CommitUnknown` and never retried.
//! - Retrying re-runs the whole outermost transaction, and only when the
//!   server reported a retryable error during the attempt (seen through the
//!   connection's instrumentation, whatever error type the body returns).

use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager, TransactionManagerStatus};
use diesel::result::Error as DieselError;

use crate::backend::{SupportedConnection, TxMode};
use crate::classify::{is_connection_lost, savepoint_failure};
use crate::config::RetrySettings;
use crate::context::TransactionContext;
use crate::error::{Error, ErrorKind};
use crate::facade::Facade;
use crate::pool::PooledConn;
use crate::replica::{Position, ReadPosition};
use crate::stats::Counters;

/// A hook registered with `on_commit`.
pub(crate) type CommitHook = Box<dyn FnOnce() + 'static>;

/// The state of one open outermost transaction. Scopes borrow it.
#[doc(hidden)]
pub struct Transaction<C: SupportedConnection> {
    pub(crate) conn: PooledConn<C>,
    pub(crate) mode: TxMode,
    pub(crate) on_commit: Vec<CommitHook>,
    pub(crate) joins: u32,
    pub(crate) savepoints: u32,
    /// How many `#[writer(savepoint)]` levels are open right now.
    pub(crate) savepoint_depth: u32,
    /// Lock names taken at the outermost level: held until it ends.
    pub(crate) locks: Vec<String>,
    /// A retryable error that a rolled-back savepoint hit: if the body then
    /// fails, the outermost `retry` re-runs the whole transaction.
    pub(crate) savepoint_retryable: Option<(ErrorKind, String)>,
    /// Whether this transaction runs on a replica.
    pub(crate) on_replica: bool,
}

impl<C: SupportedConnection> Transaction<C> {
    pub(crate) fn connection(&mut self) -> &mut C {
        &mut self.conn.conn
    }

    /// Before `lock(name)`: a lock is held until the outermost transaction
    /// ends, which a lock first taken inside a savepoint cannot promise (its
    /// rollback releases the row on PostgreSQL and Galera, and a fresh row on
    /// MySQL). Inside a savepoint only locks the transaction already holds
    /// may be taken again.
    pub(crate) fn check_lock_level(&self, name: &str) -> Result<bool, Error> {
        // A bad name is reported as such, wherever it is taken.
        crate::lock::validate_name(name)?;
        if self.savepoint_depth == 0 {
            return Ok(false);
        }
        if self.locks.iter().any(|held| held == name) {
            return Ok(true);
        }
        Err(Error::new(
            ErrorKind::LockInSavepoint,
            format!(
                "cannot take lock `{name}` inside a `#[writer(savepoint)]`: rolling the savepoint \
                 back would release it before the outermost transaction ends. Take the lock in \
                 the enclosing writer, before the savepoint"
            ),
        ))
    }

    /// After `lock(name)` succeeded at the outermost level.
    pub(crate) fn note_lock(&mut self, name: &str) {
        if self.savepoint_depth == 0 && !self.locks.iter().any(|held| held == name) {
            self.locks.push(name.to_owned());
        }
    }

    pub(crate) fn note_join(&mut self, kind: &'static str) {
        self.joins += 1;
        tracing::trace!(
            scope = kind,
            depth = self.joins,
            "joined the open transaction"
        );
    }
}

/// Where an outermost read-only transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Primary,
    Replica,
}

/// How many times `#[writer(retry)]` may re-run a transaction.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    max_retries: Option<u32>,
}

impl RetryPolicy {
    /// The facade's configured default (`FacadeBuilder::max_retries`).
    pub const fn default_attempts() -> Self {
        RetryPolicy { max_retries: None }
    }

    /// Exactly `n` retries after the first attempt.
    pub const fn retries(n: u32) -> Self {
        RetryPolicy {
            max_retries: Some(n),
        }
    }
}

/// One run of an outermost transaction: its result and, when the server
/// said so, the retryable error that doomed it.
pub(crate) struct Attempt<R, E> {
    pub(crate) result: Result<R, E>,
    pub(crate) retry: Option<(ErrorKind, String)>,
}

impl<R, E: From<Error>> Attempt<R, E> {
    fn failed(err: Error) -> Self {
        let retry = err
            .kind()
            .is_retryable()
            .then(|| (err.kind(), err.message().to_owned()));
        Attempt {
            result: Err(E::from(err)),
            retry,
        }
    }
}

/// Unless disarmed, rolls back every level above `depth` (the transaction
/// itself when `depth` is 0) and drops the hooks registered since: the panic
/// path, including levels a body opened with diesel's own
/// `conn.transaction(..)` and left open.
struct RollbackOnDrop<'t, C: SupportedConnection> {
    tx: &'t mut Transaction<C>,
    depth: u32,
    hooks: usize,
    armed: bool,
}

impl<C: SupportedConnection> Drop for RollbackOnDrop<'_, C> {
    fn drop(&mut self) {
        if self.armed {
            self.tx.on_commit.truncate(self.hooks);
            let _ = rollback_to(self.tx, self.depth);
        }
    }
}

/// diesel's transaction depth on this connection: 0 outside a transaction,
/// 1 in the outermost one, one more per savepoint.
fn depth<C: SupportedConnection>(tx: &mut Transaction<C>) -> Result<u32, DieselError> {
    AnsiTransactionManager::transaction_manager_status_mut(tx.connection())
        .transaction_depth()
        .map(|d| d.map_or(0, |d| d.get()))
}

/// Roll back every open level above `target`. If that fails the connection
/// is discarded (the server then rolls back whatever is left).
fn rollback_to<C: SupportedConnection>(
    tx: &mut Transaction<C>,
    target: u32,
) -> Result<(), DieselError> {
    loop {
        let result = match depth(tx) {
            Ok(current) if current <= target => return Ok(()),
            Ok(_) => AnsiTransactionManager::rollback_transaction(tx.connection()),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "rollback failed; the connection will be discarded");
            tx.conn.broken = true;
            return Err(err);
        }
    }
}

fn rollback<C: SupportedConnection>(tx: &mut Transaction<C>) -> Result<(), DieselError> {
    rollback_to(tx, 0)
}

/// If the body hit an error, handled it and returned `Ok`, but the server
/// aborted the transaction at that error (PostgreSQL does, outside a
/// savepoint), the error to report instead of a commit that would be a
/// silent `ROLLBACK`.
fn aborted_by_a_handled_error<C: SupportedConnection>(tx: &mut Transaction<C>) -> Option<Error> {
    let (kind, message) = tx.conn.first_error()?;
    match C::transaction_usable(tx.connection()) {
        Ok(()) => None,
        Err(_) => Some(Error::new(
            kind,
            format!(
                "the server aborted this transaction at an error the function handled \
                 ({message}) and would not commit it; nothing was committed. Run statements \
                 that may fail inside a `#[writer(savepoint)]`"
            ),
        )),
    }
}

/// A savepoint statement's error: on a backend where a vanished savepoint
/// means the server rolled everything back, that deadlock.
fn savepoint_error<C: SupportedConnection>(err: DieselError) -> Error {
    if C::LOST_SAVEPOINT_MEANS_ROLLED_BACK {
        savepoint_failure(err)
    } else {
        Error::from(err)
    }
}

/// The error for a body that returned `Ok` with diesel transactions of its
/// own still open (a `conn.transaction(..)` whose panic was caught, say):
/// committing would only release their savepoints.
fn unbalanced(open: u32) -> Error {
    Error::new(
        ErrorKind::UnbalancedTransaction,
        format!(
            "the function returned Ok but left {open} nested diesel transaction(s) open \
             (e.g. a `conn.transaction(..)` that panicked and whose panic was caught); \
             everything was rolled back and nothing was committed"
        ),
    )
}

/// Run `body` as an outermost transaction of `mode` on a freshly checked-out
/// connection, then commit or roll back.
///
/// This is the only part generic over the body: checkout, `BEGIN`, the span,
/// the commit or rollback and the hooks live in [`begin_outermost`] and
/// [`end_outermost`], compiled once per connection type.
pub(crate) fn outermost<T, R, E>(
    ctx: &T,
    mode: TxMode,
    route: Route,
    body: impl FnOnce(&T, &mut Transaction<T::Connection>) -> Result<R, E>,
) -> Attempt<R, E>
where
    T: TransactionContext + ?Sized,
    E: From<Error>,
{
    let facade = ctx.facade();
    let position = ctx.read_position();
    let mut begun = match begin_outermost(facade, position, mode, route) {
        Ok(begun) => begun,
        // The checkout already waited for a connection (up to
        // `pool_timeout`): a retry would only wait again.
        Err(NotBegun::Checkout(err)) => {
            return Attempt {
                result: Err(E::from(err)),
                retry: None,
            }
        }
        Err(NotBegun::Begin(err)) => return Attempt::failed(err),
    };
    let result = guarded(&mut begun.tx, 0, |tx| body(ctx, tx));
    match end_outermost(begun, facade, position, result.is_ok()) {
        Ended::Stands(retry) => Attempt { result, retry },
        Ended::Replaced(err) => Attempt::failed(err),
    }
}

/// Run `body` on `tx` with a [`RollbackOnDrop`] armed for levels above
/// `depth`: a panic rolls them back (and drops the hooks they registered).
fn guarded<C: SupportedConnection, R>(
    tx: &mut Transaction<C>,
    depth: u32,
    body: impl FnOnce(&mut Transaction<C>) -> R,
) -> R {
    let hooks = tx.on_commit.len();
    let mut guard = RollbackOnDrop {
        tx,
        depth,
        hooks,
        armed: true,
    };
    let result = body(&mut *guard.tx);
    guard.armed = false;
    result
}

/// An outermost transaction that has begun, inside its span.
pub(crate) struct Begun<C: SupportedConnection> {
    tx: Transaction<C>,
    span: tracing::span::EnteredSpan,
    started: Option<Instant>,
}

/// What became of an outermost transaction once its body returned.
pub(crate) enum Ended {
    /// The body's result stands: `Ok` was committed, or `Err` was rolled
    /// back (and is retryable with this error when set).
    Stands(Option<(ErrorKind, String)>),
    /// The body returned `Ok` but nothing was committed, for this reason.
    Replaced(Error),
}

/// Why [`begin_outermost`] could not begin.
pub(crate) enum NotBegun {
    /// No connection: the checkout failed (and already waited).
    Checkout(Error),
    /// `BEGIN` failed on a checked-out connection.
    Begin(Error),
}

/// Check out a connection for `route` and `BEGIN` a transaction of `mode`.
pub(crate) fn begin_outermost<C: SupportedConnection>(
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    mode: TxMode,
    route: Route,
) -> Result<Begun<C>, NotBegun> {
    let counters = &facade.inner.counters;
    let (checkout, on_replica) = match route {
        Route::Primary => (facade.checkout_writer(), false),
        Route::Replica => match facade.checkout_replica(position) {
            Some(conn) => (Ok(conn), true),
            None => (facade.checkout_writer(), false),
        },
    };
    let server = if on_replica { "replica" } else { "primary" };
    let conn = checkout.map_err(NotBegun::Checkout)?;
    let span = tracing::debug_span!(
        "diesel_facade.transaction",
        mode = ?mode,
        backend = C::NAME,
        server,
        joins = tracing::field::Empty,
        savepoints = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    )
    .entered();
    // Only pay for the clock when someone listens to the span.
    let started = (!span.is_disabled()).then(Instant::now);
    let mut tx = Transaction {
        conn,
        mode,
        on_commit: Vec::new(),
        joins: 0,
        savepoints: 0,
        savepoint_depth: 0,
        locks: Vec::new(),
        savepoint_retryable: None,
        on_replica,
    };
    tx.conn.begin_watching();
    let managed = &mut *tx.conn;
    if let Err(err) = C::begin(&mut managed.conn, mode, &mut managed.session) {
        let lost = is_connection_lost(&err);
        let err = Error::from(err);
        if lost || err.kind() == ErrorKind::Disconnected {
            tx.conn.broken = true;
        }
        span.record("outcome", "begin failed");
        tracing::debug!(error = %err, "BEGIN failed");
        return Err(NotBegun::Begin(err));
    }
    // The BEGIN itself is no implicit commit of this transaction.
    tx.conn.forget_implicit_commits();
    Counters::bump(&counters.transactions);
    Ok(Begun { tx, span, started })
}

/// Commit (when the body returned `Ok` and nothing doomed the
/// transaction) or roll back, record the span, give the connection back and
/// run the commit hooks.
pub(crate) fn end_outermost<C: SupportedConnection>(
    begun: Begun<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    body_ok: bool,
) -> Ended {
    let Begun {
        mut tx,
        span,
        started,
    } = begun;
    let ended = settle(&mut tx, facade, position, body_ok);
    if let Some(started) = started {
        span.record("joins", tx.joins);
        span.record("savepoints", tx.savepoints);
        let committed = body_ok && matches!(ended, Ended::Stands(_));
        span.record(
            "outcome",
            if committed {
                "committed"
            } else {
                "rolled back"
            },
        );
        span.record(
            "duration_us",
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        );
    }
    if tx.on_commit.is_empty() {
        return ended;
    }
    let hooks = std::mem::take(&mut tx.on_commit);
    // Give the connection back before running hooks, so a hook may use the
    // facade itself.
    drop(tx);
    if body_ok && matches!(ended, Ended::Stands(_)) {
        run_hooks(hooks);
    }
    ended
}

/// The decision of [`end_outermost`], and its COMMIT or ROLLBACK.
fn settle<C: SupportedConnection>(
    tx: &mut Transaction<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    body_ok: bool,
) -> Ended {
    let counters = &facade.inner.counters;
    let rolled_back = |tx: &mut Transaction<C>, err: Error| {
        let _ = rollback(tx);
        Counters::bump(&counters.rollbacks);
        Ended::Replaced(err)
    };
    if !tx.conn.watched() {
        // The body replaced the connection's instrumentation: the facade
        // could not see the errors of this transaction, so it cannot tell
        // whether the server aborted it.
        tx.conn.broken = true;
        let err = Error::new(
            ErrorKind::Other,
            "the function replaced the connection's diesel instrumentation \
             (`set_instrumentation`), so the facade could not watch this transaction for \
             aborts; it was rolled back. Install instrumentation with \
             `FacadeBuilder::instrumentation` instead",
        );
        return rolled_back(tx, err);
    }
    let doomed = tx.conn.doomed();
    if !body_ok {
        // The body's own error stands, whatever state the connection is in
        // (diesel may call its transaction manager broken after a lost
        // connection: that must not replace the application's error).
        let _ = rollback(tx);
        Counters::bump(&counters.rollbacks);
        if doomed
            .as_ref()
            .is_some_and(|(kind, _)| *kind == ErrorKind::Disconnected)
        {
            tx.conn.broken = true;
        }
        tracing::debug!("rolled back");
        // Only what the server reported as retryable re-runs the
        // transaction (a failed ROLLBACK TO SAVEPOINT dooms it with
        // whatever kind that failure had); a deadlock that a savepoint
        // rolled back and the body passed up counts too.
        let retry = doomed
            .or_else(|| tx.savepoint_retryable.take())
            .filter(|(kind, _)| kind.is_retryable());
        return Ended::Stands(retry);
    }
    let open = match depth(tx) {
        Ok(d) => d,
        Err(err) => {
            tx.conn.broken = true;
            let err = match doomed {
                // The body handled (or never saw) the lost connection.
                Some((kind, message)) => Error::new(
                    kind,
                    format!(
                        "the function returned Ok, but the transaction could not go on \
                         ({message}); nothing was committed"
                    ),
                ),
                None => Error::from(err),
            };
            return rolled_back(tx, err);
        }
    };
    match doomed {
        None if open != 1 => {
            tracing::warn!(open, "the body left nested transactions open; rolled back");
            rolled_back(tx, unbalanced(open.saturating_sub(1)))
        }
        None => match aborted_by_a_handled_error(tx) {
            Some(err) => rolled_back(tx, err),
            None => match commit(tx, facade, position) {
                Ok(()) => Ended::Stands(None),
                Err(err) => Ended::Replaced(err),
            },
        },
        Some((kind, message)) if !kind.is_retryable() => {
            // Doomed by the facade itself (see `savepoint`): the message
            // says what happened.
            rolled_back(tx, Error::new(kind, message))
        }
        Some((kind, message)) => {
            // The server aborted the transaction (a deadlock the body caught
            // and ignored, say); reporting Ok would claim lost writes.
            let err = Error::new(
                kind,
                format!(
                    "the server aborted this transaction ({message}) but the function \
                     returned Ok; nothing was committed"
                ),
            );
            rolled_back(tx, err)
        }
    }
}

/// Run every hook of a committed transaction. A hook that panics does not
/// keep the others from running; once all have run, the first panic goes
/// on to the caller (the transaction stays committed).
fn run_hooks(hooks: Vec<CommitHook>) {
    let mut first_panic = None;
    for hook in hooks {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(hook)) {
            tracing::error!("an on_commit hook panicked after the transaction committed");
            first_panic.get_or_insert(panic);
        }
    }
    if let Some(panic) = first_panic {
        std::panic::resume_unwind(panic);
    }
}

/// COMMIT, after the backend's last check. `Err` means nothing is known to
/// be committed, except `CommitUnknown`, which says the outcome is unknown.
fn commit<C: SupportedConnection>(
    tx: &mut Transaction<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
) -> Result<(), Error> {
    let counters = &facade.inner.counters;
    let managed = &mut *tx.conn;
    let implicit_commits = managed.implicit_commits();
    if implicit_commits > 0 {
        // Statements that end transactions can also change the session
        // (`SET autocommit = 1`): start the next one on a fresh connection.
        managed.broken = true;
    }
    let implicit_commit = implicit_commits > 0;
    if let Err(err) = C::before_commit(
        &mut managed.conn,
        tx.mode,
        &managed.session,
        implicit_commit,
    ) {
        let _ = rollback(tx);
        Counters::bump(&counters.rollbacks);
        let err = savepoint_error::<C>(err);
        tracing::debug!(error = %err, "the transaction was replaced before COMMIT");
        return Err(err);
    }
    match AnsiTransactionManager::commit_transaction(tx.connection()) {
        Ok(()) if depth(tx).ok() != Some(0) => {
            // diesel released a savepoint instead of committing: never
            // report that as a commit.
            tx.conn.broken = true;
            let _ = rollback(tx);
            Counters::bump(&counters.rollbacks);
            Err(unbalanced(1))
        }
        Ok(()) => {
            Counters::bump(&counters.commits);
            if let Some(position) = position {
                if tx.mode == TxMode::Write && facade.replica_count() > 0 {
                    record_position(tx, position);
                }
            }
            Ok(())
        }
        Err(err) => {
            Counters::bump(&counters.rollbacks);
            if is_connection_lost(&err) {
                tx.conn.broken = true;
                let err = Error::from(err).with_kind(
                    ErrorKind::CommitUnknown,
                    "the connection was lost while COMMIT was in flight; the transaction \
                     may or may not have been committed",
                );
                tracing::warn!(error = %err, "commit outcome unknown");
                return Err(err);
            }
            let err = Error::from(err);
            tracing::debug!(error = %err, "COMMIT failed");
            Err(err)
        }
    }
}

/// Remember where the primary was after this commit, so the context's next
/// replica read waits for it. If that cannot be read, the context's replica
/// reads go to the primary until it writes again.
fn record_position<C: SupportedConnection>(tx: &mut Transaction<C>, position: &ReadPosition) {
    let managed = &mut *tx.conn;
    match C::commit_position(&mut managed.conn, &managed.session) {
        Ok(Some(now)) => {
            tracing::trace!(?now, "recorded commit position");
            position.set(Some(now));
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(error = %err, "could not read the commit position; replica reads will use the primary");
            position.set(Some(Position::Written));
        }
    }
}

/// Run `body` inside a savepoint of the open transaction.
///
/// Generic over the body only here: opening and ending the savepoint live
/// in [`begin_savepoint`] and [`end_savepoint`].
pub(crate) fn savepoint<C, R, E>(
    tx: &mut Transaction<C>,
    body: impl FnOnce(&mut Transaction<C>) -> Result<R, E>,
) -> Result<R, E>
where
    C: SupportedConnection,
    E: From<Error>,
{
    let mark = begin_savepoint(tx).map_err(E::from)?;
    let result = guarded(tx, mark.base, body);
    match end_savepoint(tx, &mark, result.is_ok()) {
        None => result,
        Some(err) => Err(E::from(err)),
    }
}

/// Where a savepoint began: what ending it restores or compares against.
pub(crate) struct SavepointMark {
    base: u32,
    hooks_before: usize,
    doomed_before: Option<(ErrorKind, String)>,
    implicit_before: u32,
}

/// Open a savepoint on the open transaction.
pub(crate) fn begin_savepoint<C: SupportedConnection>(
    tx: &mut Transaction<C>,
) -> Result<SavepointMark, Error> {
    let base = depth(tx).map_err(Error::from)?;
    AnsiTransactionManager::begin_transaction(tx.connection()).map_err(Error::from)?;
    tx.savepoints += 1;
    tx.savepoint_depth += 1;
    tracing::debug!(savepoint = tx.savepoints, "savepoint");
    Ok(SavepointMark {
        base,
        hooks_before: tx.on_commit.len(),
        doomed_before: tx.conn.doomed(),
        implicit_before: tx.conn.implicit_commits(),
    })
}

/// Release the savepoint (the body returned `Ok`) or roll back to it. `None`:
/// the body's result stands; `Some`: report this error instead.
pub(crate) fn end_savepoint<C: SupportedConnection>(
    tx: &mut Transaction<C>,
    mark: &SavepointMark,
    body_ok: bool,
) -> Option<Error> {
    let SavepointMark {
        base,
        hooks_before,
        ref doomed_before,
        implicit_before,
    } = *mark;
    tx.savepoint_depth -= 1;
    if tx.conn.implicit_commits() > implicit_before {
        // DDL (or the like) ended the transaction on the server, and the
        // savepoint with it: neither RELEASE nor ROLLBACK TO can work, and
        // part of the work is already committed.
        tx.on_commit.truncate(hooks_before);
        tx.conn.broken = true;
        let message = "a statement inside this `#[writer(savepoint)]` (DDL, `LOCK`, \
                       `SET autocommit`, ...) made the server commit the transaction \
                       implicitly, which also removed the savepoint: what ran before it is \
                       committed, and the rest cannot be rolled back to the savepoint. Run \
                       DDL outside savepoints"
            .to_owned();
        tx.conn
            .set_doomed(Some((ErrorKind::CommitUnknown, message.clone())));
        return Some(Error::new(ErrorKind::CommitUnknown, message));
    }
    let open = depth(tx).unwrap_or(u32::MAX);
    if body_ok && open != base + 1 {
        tx.on_commit.truncate(hooks_before);
        // Only this savepoint's work is undone: the caller may go on.
        return Some(match rollback_to(tx, base) {
            Ok(()) => unbalanced(open.saturating_sub(base + 1)),
            Err(rollback_err) => {
                let err = savepoint_error::<C>(rollback_err);
                tx.conn
                    .set_doomed(Some((err.kind(), err.message().to_owned())));
                err
            }
        });
    }
    if body_ok {
        return AnsiTransactionManager::commit_transaction(tx.connection())
            .err()
            .map(savepoint_error::<C>);
    }
    tx.on_commit.truncate(hooks_before);
    let seen = tx.conn.doomed();
    match rollback_to(tx, base) {
        Ok(()) if whole_transaction_lost(tx) => {
            // diesel tolerated a failed ROLLBACK TO SAVEPOINT (MySQL
            // 1305 after a deadlock or wsrep abort rolled everything
            // back): the outer transaction is gone too, so it stays
            // doomed and the outermost `retry` re-runs it.
            if tx.conn.doomed().is_none() {
                tx.conn.set_doomed(Some((
                    ErrorKind::Deadlock,
                    "the server rolled the transaction back; its savepoint is gone".into(),
                )));
            }
            tracing::debug!("savepoint gone: the whole transaction was rolled back");
            None
        }
        Ok(()) => {
            // The savepoint undid whatever the server rejected inside
            // it (PostgreSQL recovers from errors this way), so the
            // outer transaction may still commit. If that error was
            // retryable and the body passes the failure up, the
            // outermost `retry` re-runs the whole transaction.
            if let Some(failure) = seen.filter(|_| doomed_before.is_none()) {
                tx.savepoint_retryable.get_or_insert(failure);
            }
            tx.conn.set_doomed(doomed_before.clone());
            tracing::debug!("rolled back to savepoint");
            None
        }
        Err(rollback_err) => {
            let err = savepoint_error::<C>(rollback_err);
            tx.conn
                .set_doomed(Some((err.kind(), err.message().to_owned())));
            Some(err)
        }
    }
}

/// Whether diesel knows the transaction must be rolled back up to the top
/// level (a serialization failure or deadlock it saw, or a savepoint
/// rollback that failed and was tolerated).
fn whole_transaction_lost<C: SupportedConnection>(tx: &mut Transaction<C>) -> bool {
    match AnsiTransactionManager::transaction_manager_status_mut(tx.connection()) {
        TransactionManagerStatus::Valid(status) => status
            .in_transaction
            .as_ref()
            .is_some_and(|s| s.requires_rollback_maybe_up_to_top_level),
        TransactionManagerStatus::InError => true,
    }
}

/// Re-run `attempt` while it fails with a retryable error, up to the
/// policy's limit and `max_duration` after the first attempt began,
/// sleeping with capped exponential backoff and full jitter.
pub(crate) fn with_retry<C, R, E>(
    facade: &Facade<C>,
    policy: RetryPolicy,
    mut attempt: impl FnMut() -> Attempt<R, E>,
) -> Result<R, E>
where
    C: SupportedConnection,
{
    let mut retries = Retries::new(&facade.inner.retry, policy);
    loop {
        let outcome = attempt();
        if !retries.again(outcome.retry, &facade.inner.counters) {
            return outcome.result;
        }
    }
}

/// The retry loop's state and decisions, apart from the attempt itself.
struct Retries<'a> {
    settings: &'a RetrySettings,
    max: u32,
    started: Instant,
    done: u32,
}

impl<'a> Retries<'a> {
    fn new(settings: &'a RetrySettings, policy: RetryPolicy) -> Self {
        Retries {
            settings,
            max: policy.max_retries.unwrap_or(settings.max_retries),
            started: Instant::now(),
            done: 0,
        }
    }

    /// Whether to run the attempt again after it failed with `retry` (`None`:
    /// not retryable); sleeps the backoff first when so.
    fn again(&mut self, retry: Option<(ErrorKind, String)>, counters: &Counters) -> bool {
        let settings = self.settings;
        let delay = backoff(
            self.done + 1,
            settings.initial_backoff,
            settings.max_backoff,
        );
        let in_time = self.started.elapsed().saturating_add(delay) <= settings.max_duration;
        match retry {
            Some((kind, message)) if self.done < self.max && in_time => {
                self.done += 1;
                Counters::bump(&counters.retries);
                tracing::warn!(
                    attempt = self.done + 1,
                    max_attempts = self.max + 1,
                    error_kind = ?kind,
                    error = %message,
                    delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
                    "retrying transaction"
                );
                std::thread::sleep(delay);
                true
            }
            Some((kind, _)) if self.done < self.max => {
                tracing::warn!(
                    attempts = self.done + 1,
                    error_kind = ?kind,
                    max_retry_duration = ?settings.max_duration,
                    "not retrying: max_retry_duration reached"
                );
                false
            }
            _ => false,
        }
    }
}

fn backoff(retry: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << (retry - 1).min(20));
    let cap = exp.min(max);
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let initial = Duration::from_millis(5);
        let max = Duration::from_millis(100);
        for retry in 1..40 {
            let d = backoff(retry, initial, max);
            assert!(d <= max, "{d:?}");
            let exp = initial.saturating_mul(1 << (retry - 1).min(20)).min(max);
            assert!(d <= exp);
        }
    }
}
