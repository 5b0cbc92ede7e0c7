//! The outermost transaction: checkout, BEGIN, then (once the body has run:
//! `entry::outermost` is the only part generic over it) COMMIT or ROLLBACK,
//! the span and the commit hooks; a rollback if the body panicked.

use super::commit::commit;
use super::*;

/// An outermost transaction that has begun, inside its span. Dropped
/// before [`end_outermost`] (the body panicked), it rolls back, including
/// levels the body opened with diesel's own `conn.transaction(..)` and
/// left open, and the connection goes back to the pool (or is discarded if
/// the rollback failed).
pub(crate) struct Begun<C: SupportedConnection> {
    pub(crate) tx: Transaction<C>,
    span: Option<tracing::span::EnteredSpan>,
    /// The span, exited while the transaction waits for another database's
    /// outermost call to end (see `suspend_span`).
    suspended: Option<tracing::Span>,
    started: Option<Instant>,
    ended: bool,
}

impl<C: SupportedConnection> Drop for Begun<C> {
    fn drop(&mut self) {
        if !self.ended {
            // Through the table compiled in this crate (see `runtime`).
            (runtime::<C>().abandon)(self);
        }
    }
}

impl<C: SupportedConnection> Begun<C> {
    /// Roll back a transaction that did not end (see `Drop`).
    pub(crate) fn abandon(&mut self) {
        self.tx.on_commit.clear();
        let _ = rollback(&mut self.tx);
    }

    /// Leave the span while the transaction waits for the end of another
    /// database's outermost call, so what that call does next is not
    /// recorded inside it; `end_outermost` enters it again.
    pub(crate) fn suspend_span(&mut self) {
        if let Some(span) = self.span.take() {
            self.suspended = Some(span.exit());
        }
    }
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

impl NotBegun {
    /// The error to report when nothing retries.
    pub(crate) fn into_error(self) -> Error {
        match self {
            NotBegun::Checkout(err) | NotBegun::Begin(err) => err,
        }
    }

    /// The attempt this makes: a failed checkout already waited for a
    /// connection (up to `pool_timeout`), so a retry would only wait again;
    /// a failed `BEGIN` may be retried if its error is retryable.
    pub(crate) fn attempt<R, E: From<Error>>(self) -> Attempt<R, E> {
        match self {
            NotBegun::Checkout(err) => Attempt {
                result: Err(E::from(err)),
                retry: None,
            },
            NotBegun::Begin(err) => Attempt::failed(err),
        }
    }
}

/// Check out a connection for `route` and `BEGIN` a transaction of `mode`.
///
/// A checkout does not ping a connection in steady use (see
/// `pool::PING_AFTER_IDLE`), so the `BEGIN` is the first word to it: if
/// that finds such an unproven connection lost (the server restarted, or
/// closed it), the connection is discarded and the transaction begins on
/// another one, as a ping at checkout would have done. Nothing of the
/// caller's was sent. Each pooled connection can fail so at most once, so
/// this ends after `max_pool_size` more tries at the most.
pub(crate) fn begin_outermost<C: SupportedConnection>(
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    mode: TxMode,
    route: Route,
) -> Result<Begun<C>, NotBegun> {
    let mut unproven_losses = 0;
    loop {
        match try_begin(facade, position, mode, route) {
            Err((_, true)) if unproven_losses < facade.max_pool_size() => {
                unproven_losses += 1;
                tracing::debug!("a pooled connection was lost before BEGIN; beginning on another");
            }
            Err((err, _)) => return Err(err),
            Ok(begun) => return Ok(begun),
        }
    }
}

/// One checkout and `BEGIN`; on failure, also whether the `BEGIN` found an
/// unproven connection lost (then the caller may try another).
fn try_begin<C: SupportedConnection>(
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    mode: TxMode,
    route: Route,
) -> Result<Begun<C>, (NotBegun, bool)> {
    let counters = &facade.inner.counters;
    let (checkout, on_replica) = match route {
        Route::Primary => (facade.checkout_writer(), false),
        Route::Replica => match facade.checkout_replica(position) {
            Some(conn) => (Ok(conn), true),
            None => (facade.checkout_writer(), false),
        },
    };
    let server = if on_replica { "replica" } else { "primary" };
    let conn = checkout.map_err(|err| (NotBegun::Checkout(err), false))?;
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
        panicked: false,
    };
    tx.conn.begin_watching();
    let managed = &mut *tx.conn;
    if let Err(err) = begin_level(managed, mode) {
        let lost = is_connection_lost(&err);
        let err = Error::from(err);
        if lost || err.kind() == ErrorKind::Disconnected {
            tx.conn.broken = true;
        }
        let unproven_loss = lost && !tx.conn.proven;
        span.record(
            "outcome",
            if unproven_loss {
                "connection lost before BEGIN"
            } else {
                "begin failed"
            },
        );
        tracing::debug!(error = %err, "BEGIN failed");
        return Err((NotBegun::Begin(err), unproven_loss));
    }
    // The BEGIN itself is no implicit commit of this transaction.
    tx.conn.forget_implicit_commits();
    Counters::bump(&counters.transactions);
    Ok(Begun {
        tx,
        span: Some(span),
        suspended: None,
        started,
        ended: false,
    })
}

/// Commit (when the body returned `Ok` and nothing doomed the
/// transaction) or roll back, record the span, give the connection back and
/// run the commit hooks.
pub(crate) fn end_outermost<C: SupportedConnection>(
    mut begun: Begun<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    body_ok: bool,
) -> Ended {
    begun.ended = true;
    let ended = settle(&mut begun.tx, facade, position, body_ok);
    let span = begun
        .span
        .take()
        .or_else(|| begun.suspended.take().map(tracing::Span::entered));
    if let (Some(started), Some(span)) = (begun.started, &span) {
        let tx = &begun.tx;
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
    if begun.tx.on_commit.is_empty() {
        return ended;
    }
    let hooks = std::mem::take(&mut begun.tx.on_commit);
    // Give the connection back before running hooks, so a hook may use the
    // facade itself.
    drop(begun);
    if body_ok && matches!(ended, Ended::Stands(_)) {
        run_hooks(hooks);
    }
    ended
}

/// [`end_outermost`] that leaves the hooks of a committed transaction to
/// the caller (empty if it did not commit), for a call that has more
/// transactions to COMMIT first: a hook that panics must not keep them
/// from committing.
pub(crate) fn end_outermost_keeping_hooks<C: SupportedConnection>(
    mut begun: Begun<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    body_ok: bool,
) -> (Ended, Vec<CommitHook>) {
    let hooks = std::mem::take(&mut begun.tx.on_commit);
    let ended = end_outermost(begun, facade, position, body_ok);
    let committed = body_ok && matches!(ended, Ended::Stands(_));
    (ended, if committed { hooks } else { Vec::new() })
}

/// [`end_outermost`] for a transaction that nothing retries: `Some` is the
/// error to report instead of the body's `Ok`. Never inlined, so the
/// retry information it drops is not dropped in every body's shell.
#[inline(never)]
pub(crate) fn end_once<C: SupportedConnection>(
    begun: Begun<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
    body_ok: bool,
) -> Option<Error> {
    match end_outermost(begun, facade, position, body_ok) {
        Ended::Stands(_) => None,
        Ended::Replaced(err) => Some(err),
    }
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
        // As after a commit: a statement that ended the transaction (DDL,
        // `SET autocommit`, ...) may also have changed the session (dropped
        // the Galera guard's table, say), which must not go back to the
        // pool. Counted before the facade's own `ROLLBACK`, which is one.
        let session_changed = tx.conn.session_changed();
        let _ = rollback(tx);
        Counters::bump(&counters.rollbacks);
        if session_changed
            || doomed
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
    if tx.panicked {
        return rolled_back(tx, caught_panic());
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
        None if open == 0 => {
            tracing::warn!("the body ended the transaction itself");
            rolled_back(tx, ended_by_the_body())
        }
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

/// The error for a body that returned `Ok` although a call that had joined
/// its transaction (or one waiting for its end) from another database's
/// scope panicked, and a caller caught the panic.
pub(crate) fn caught_panic() -> Error {
    Error::new(
        ErrorKind::Other,
        "a panic inside this call was caught after it had joined the transaction of \
         another database, which was rolled back; nothing was committed",
    )
}

/// Run every hook of a committed transaction. A hook that panics does not
/// keep the others from running; once all have run, the first panic goes
/// on to the caller (the transaction stays committed).
pub(crate) fn run_hooks(hooks: Vec<CommitHook>) {
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
