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
use crate::context::TransactionContext;
use crate::error::{is_connection_lost, savepoint_failure, Error, ErrorKind};
use crate::facade::{Counters, Facade, PooledConn};
use crate::replica::{Position, ReadPosition};

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
    /// Whether this transaction runs on a replica.
    pub(crate) replica: Option<usize>,
}

impl<C: SupportedConnection> Transaction<C> {
    pub(crate) fn connection(&mut self) -> &mut C {
        &mut self.conn.conn
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

/// Rolls back the innermost open level (transaction or savepoint) unless
/// disarmed: the panic and early-return path.
struct RollbackOnDrop<'t, C: SupportedConnection> {
    tx: &'t mut Transaction<C>,
    armed: bool,
}

impl<C: SupportedConnection> Drop for RollbackOnDrop<'_, C> {
    fn drop(&mut self) {
        if self.armed && rollback(self.tx).is_err() {
            self.tx.conn.broken = true;
        }
    }
}

fn rollback<C: SupportedConnection>(tx: &mut Transaction<C>) -> Result<(), DieselError> {
    let result = AnsiTransactionManager::rollback_transaction(tx.connection());
    if let Err(err) = &result {
        tracing::warn!(error = %err, "rollback failed; the connection will be discarded");
        tx.conn.broken = true;
    }
    result
}

/// Run `body` as an outermost transaction of `mode` on a freshly checked-out
/// connection, then commit or roll back.
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
    let counters = &facade.inner.counters;
    let (checkout, replica) = match route {
        Route::Primary => (facade.checkout_writer(), None),
        Route::Replica => {
            match facade.checkout_replica(ctx.read_position().and_then(|p| p.get()).as_ref()) {
                Some((index, conn)) => (Ok(conn), Some(index)),
                None => (facade.checkout_writer(), None),
            }
        }
    };
    let server = if replica.is_some() {
        "replica"
    } else {
        "primary"
    };
    let conn = match checkout {
        Ok(conn) => conn,
        Err(err) => return Attempt::failed(err),
    };
    let span = tracing::debug_span!(
        "diesel_facade.transaction",
        mode = ?mode,
        backend = <T::Connection as SupportedConnection>::NAME,
        server,
        joins = tracing::field::Empty,
        savepoints = tracing::field::Empty,
        outcome = tracing::field::Empty,
        duration_us = tracing::field::Empty,
    );
    let _entered = span.enter();
    // Only pay for the clock when someone listens to the span.
    let started = (!span.is_disabled()).then(Instant::now);
    let mut tx = Transaction {
        conn,
        mode,
        on_commit: Vec::new(),
        joins: 0,
        savepoints: 0,
        replica,
    };
    tx.conn.set_doomed(None);
    let Transaction { conn, .. } = &mut tx;
    let managed = &mut **conn;
    if let Err(err) =
        <T::Connection as SupportedConnection>::begin(&mut managed.conn, mode, &mut managed.session)
    {
        let lost = is_connection_lost(&err);
        let err = Error::from(err);
        if lost || err.kind() == ErrorKind::Disconnected {
            tx.conn.broken = true;
        }
        span.record("outcome", "begin failed");
        tracing::debug!(error = %err, "BEGIN failed");
        return Attempt::failed(err);
    }
    Counters::bump(&counters.transactions);

    let mut guard = RollbackOnDrop {
        tx: &mut tx,
        armed: true,
    };
    let result = body(ctx, &mut *guard.tx);
    guard.armed = false;
    drop(guard);

    let doomed = tx.conn.doomed();
    let attempt = match (result, doomed) {
        (Ok(value), None) => commit(&mut tx, facade, ctx.read_position(), value),
        (Ok(_), Some((kind, message))) => {
            // The server aborted the transaction (a deadlock the body caught
            // and ignored, say); reporting Ok would claim lost writes.
            let _ = rollback(&mut tx);
            Counters::bump(&counters.rollbacks);
            let err = Error::new(
                kind,
                format!(
                    "the server aborted this transaction ({message}) but the function \
                     returned Ok; nothing was committed"
                ),
            );
            Attempt::failed(err)
        }
        (Err(err), doomed) => {
            let _ = rollback(&mut tx);
            Counters::bump(&counters.rollbacks);
            if doomed
                .as_ref()
                .is_some_and(|(kind, _)| *kind == ErrorKind::Disconnected)
            {
                tx.conn.broken = true;
            }
            tracing::debug!("rolled back");
            Attempt {
                result: Err(err),
                retry: doomed,
            }
        }
    };
    if let Some(started) = started {
        span.record("joins", tx.joins);
        span.record("savepoints", tx.savepoints);
        span.record(
            "outcome",
            match &attempt.result {
                Ok(_) => "committed",
                Err(_) => "rolled back",
            },
        );
        span.record(
            "duration_us",
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        );
    }
    if tx.on_commit.is_empty() {
        return attempt;
    }
    let hooks = std::mem::take(&mut tx.on_commit);
    // Give the connection back before running hooks, so a hook may use the
    // facade itself.
    drop(tx);
    if attempt.result.is_ok() {
        for hook in hooks {
            hook();
        }
    }
    attempt
}

fn commit<C: SupportedConnection, R, E: From<Error>>(
    tx: &mut Transaction<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    value: R,
) -> Attempt<R, E> {
    let counters = &facade.inner.counters;
    let managed = &mut *tx.conn;
    if let Err(err) = C::before_commit(&mut managed.conn, tx.mode, &managed.session) {
        let _ = rollback(tx);
        Counters::bump(&counters.rollbacks);
        let err = savepoint_failure(err);
        tracing::debug!(error = %err, "the transaction was replaced before COMMIT");
        return Attempt::failed(err);
    }
    match AnsiTransactionManager::commit_transaction(tx.connection()) {
        Ok(()) => {
            Counters::bump(&counters.commits);
            if let Some(position) = position {
                if tx.mode == TxMode::Write && facade.replica_count() > 0 {
                    record_position(tx, position);
                }
            }
            Attempt {
                result: Ok(value),
                retry: None,
            }
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
                return Attempt {
                    result: Err(E::from(err)),
                    retry: None,
                };
            }
            let err = Error::from(err);
            tracing::debug!(error = %err, "COMMIT failed");
            Attempt::failed(err)
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
pub(crate) fn savepoint<C, R, E>(
    tx: &mut Transaction<C>,
    body: impl FnOnce(&mut Transaction<C>) -> Result<R, E>,
) -> Result<R, E>
where
    C: SupportedConnection,
    E: From<Error>,
{
    if let Err(err) = AnsiTransactionManager::begin_transaction(tx.connection()) {
        return Err(E::from(Error::from(err)));
    }
    tx.savepoints += 1;
    tracing::debug!(savepoint = tx.savepoints, "savepoint");
    let hooks_before = tx.on_commit.len();
    let doomed_before = tx.conn.doomed();
    let mut guard = RollbackOnDrop {
        tx: &mut *tx,
        armed: true,
    };
    let result = body(&mut *guard.tx);
    guard.armed = false;
    drop(guard);
    match result {
        Ok(value) => match AnsiTransactionManager::commit_transaction(tx.connection()) {
            Ok(()) => Ok(value),
            Err(err) => Err(E::from(savepoint_failure(err))),
        },
        Err(err) => {
            tx.on_commit.truncate(hooks_before);
            match AnsiTransactionManager::rollback_transaction(tx.connection()) {
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
                    Err(err)
                }
                Ok(()) => {
                    // The savepoint undid whatever the server rejected inside
                    // it (PostgreSQL recovers from errors this way).
                    tx.conn.set_doomed(doomed_before);
                    tracing::debug!("rolled back to savepoint");
                    Err(err)
                }
                Err(rollback_err) => {
                    let err = savepoint_failure(rollback_err);
                    tx.conn
                        .set_doomed(Some((err.kind(), err.message().to_owned())));
                    Err(E::from(err))
                }
            }
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
    let settings = facade.inner.retry;
    let max = policy.max_retries.unwrap_or(settings.max_retries);
    let started = Instant::now();
    let mut retries = 0u32;
    loop {
        let outcome = attempt();
        let delay = backoff(retries + 1, settings.initial_backoff, settings.max_backoff);
        let in_time = started.elapsed().saturating_add(delay) <= settings.max_duration;
        match outcome.retry {
            Some((kind, message)) if retries < max && in_time => {
                retries += 1;
                Counters::bump(&facade.inner.counters.retries);
                tracing::warn!(
                    attempt = retries + 1,
                    max_attempts = max + 1,
                    error_kind = ?kind,
                    error = %message,
                    delay_us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
                    "retrying transaction"
                );
                std::thread::sleep(delay);
            }
            Some((kind, _)) if retries < max => {
                tracing::warn!(
                    attempts = retries + 1,
                    error_kind = ?kind,
                    max_retry_duration = ?settings.max_duration,
                    "not retrying: max_retry_duration reached"
                );
                return outcome.result;
            }
            _ => return outcome.result,
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
