//! Begin, commit, roll back, savepoints, retries: the whole life of a
//! transaction, written once for every backend.
//!
//! Invariants:
//! - Only the outermost scope talks to the pool and sends `BEGIN`/`COMMIT`/
//!   `ROLLBACK`; joined scopes send nothing.
//! - While user code runs, the transaction (`outermost::Begun`) or the
//!   savepoint (`savepoint::OpenSavepoint`) rolls back when dropped before it
//!   was ended: a panic rolls back; a rollback that fails marks the
//!   connection broken and the pool discards it.
//! - `COMMIT` that loses the connection is `CommitUnknown` and never retried.
//! - Retrying re-runs the whole outermost transaction, and only when the
//!   server reported a retryable error during the attempt (seen through the
//!   connection's instrumentation, whatever error type the body returns).

use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager, TransactionManagerStatus};
use diesel::result::Error as DieselError;
use diesel::QueryResult;

use crate::backend::{SupportedConnection, TxMode};
use crate::classify::{is_connection_lost, is_no_transaction, savepoint_failure};
use crate::config::RetrySettings;
use crate::connection::Managed;
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
    /// A call that joined this transaction from another database's scope
    /// panicked: a caller further out may have caught the panic, and the
    /// half-done work of that call must not commit.
    pub(crate) panicked: bool,
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
#[doc(hidden)]
pub enum Route {
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
    pub(crate) fn failed(err: Error) -> Self {
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

/// The transaction depth on this connection: 0 outside a transaction,
/// 1 in the outermost one, one more per savepoint. Counted from the
/// connection's base (`Managed::base_depth`), so on a transactional test
/// pool's connection the test transaction itself is level 0 and is never
/// committed or rolled back here.
fn depth<C: SupportedConnection>(tx: &mut Transaction<C>) -> Result<u32, DieselError> {
    let base = tx.conn.base_depth;
    AnsiTransactionManager::transaction_manager_status_mut(tx.connection())
        .transaction_depth()
        .map(|d| d.map_or(0, |d| d.get()).saturating_sub(base))
}

/// `BEGIN` the outermost transaction of `mode`; inside a test transaction,
/// a savepoint stands in for it, so that its `COMMIT` becomes a `RELEASE
/// SAVEPOINT` and its `ROLLBACK` a `ROLLBACK TO SAVEPOINT` (diesel's own
/// names for the levels above 1). A savepoint cannot be made read-only:
/// there a reader relies on its types alone.
fn begin_level<C: SupportedConnection>(managed: &mut Managed<C>, mode: TxMode) -> QueryResult<()> {
    if managed.base_depth == 0 {
        C::begin(&mut managed.conn, mode, &mut managed.session)
    } else {
        AnsiTransactionManager::begin_transaction(&mut managed.conn)
    }
}

/// The last check before a test transaction's `RELEASE SAVEPOINT`, whose
/// outermost `BEGIN` was a savepoint rather than the backend's own (so
/// there is no backend check, such as Galera's guard): a statement that
/// committed implicitly (MySQL DDL) committed the test transaction too.
fn before_commit<C: SupportedConnection>(
    managed: &mut Managed<C>,
    implicit_commit: bool,
) -> QueryResult<()> {
    if managed.base_depth > 0 && implicit_commit {
        // Travels through diesel's error as itself (see `Error::from`).
        return Err(DieselError::QueryBuilderError(Box::new(Error::config(
            "a statement of this transaction (DDL, `LOCK`, `SET autocommit`, ...) made the \
             server commit implicitly, which committed the test transaction of this \
             transactional test facade too: what the test wrote before it is committed, and \
             the facade cannot go on. Run DDL in migrations, before the test",
        ))));
    }
    Ok(())
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

/// The error for a body that returned `Ok` after ending the transaction
/// itself, below its own level (a `COMMIT` or `ROLLBACK` statement of its
/// own, which diesel's PostgreSQL and SQLite connections notice): whatever
/// it wrote before may be committed, so this must not read "rolled back".
fn ended_by_the_body() -> Error {
    Error::new(
        ErrorKind::CommitUnknown,
        "the function ended the transaction itself (a `COMMIT` or `ROLLBACK` statement of its \
         own) and returned Ok: the facade did not commit it and cannot tell whether what it \
         wrote before that statement was committed. Return an error to roll back instead",
    )
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

mod commit;
mod outermost;
mod retry;
mod runtime;
mod savepoint;

pub(crate) use self::outermost::{
    begin_outermost, caught_panic, run_hooks, Begun, Ended, NotBegun,
};
pub(crate) use self::retry::with_retry;
pub(crate) use self::runtime::runtime;
pub use self::runtime::shared_instances;
pub(crate) use self::savepoint::savepoint;
