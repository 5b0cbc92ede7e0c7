//! `#[writer(savepoint)]` inside an open transaction.

use super::*;

/// Run `body` inside a savepoint of the open transaction.
///
/// Generic over the body only here: opening and ending the savepoint live
/// in [`begin_savepoint`] and [`end_savepoint`], and the rollback on panic in
/// [`OpenSavepoint`]'s `Drop`.
pub(crate) fn savepoint<C, R, E>(
    tx: &mut Transaction<C>,
    body: impl FnOnce(&mut Transaction<C>) -> Result<R, E>,
) -> Result<R, E>
where
    C: SupportedConnection,
    E: From<Error>,
{
    let mut open = match begin_savepoint(tx) {
        Ok(open) => open,
        Err(err) => return Err(E::from(err)),
    };
    let result = body(open.tx());
    match open.end(result.is_ok()) {
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

/// A savepoint that has begun. Dropped before [`end`](Self::end) (the
/// body panicked), it rolls back to the savepoint and drops the hooks
/// registered since, including levels the body opened with diesel's own
/// `conn.transaction(..)` and left open.
pub(crate) struct OpenSavepoint<'t, C: SupportedConnection> {
    tx: &'t mut Transaction<C>,
    mark: SavepointMark,
    ended: bool,
}

impl<C: SupportedConnection> OpenSavepoint<'_, C> {
    /// The transaction, for the body.
    pub(crate) fn tx(&mut self) -> &mut Transaction<C> {
        self.tx
    }

    /// Release the savepoint or roll back to it: see [`end_savepoint`].
    pub(crate) fn end(mut self, body_ok: bool) -> Option<Error> {
        self.ended = true;
        end_savepoint(self.tx, &self.mark, body_ok)
    }
}

impl<C: SupportedConnection> Drop for OpenSavepoint<'_, C> {
    fn drop(&mut self) {
        if !self.ended {
            self.tx.savepoint_depth -= 1;
            self.tx.on_commit.truncate(self.mark.hooks_before);
            let _ = rollback_to(self.tx, self.mark.base);
        }
    }
}

/// Open a savepoint on the open transaction.
pub(crate) fn begin_savepoint<C: SupportedConnection>(
    tx: &mut Transaction<C>,
) -> Result<OpenSavepoint<'_, C>, Error> {
    let base = depth(tx).map_err(Error::from)?;
    AnsiTransactionManager::begin_transaction(tx.connection()).map_err(Error::from)?;
    tx.savepoints += 1;
    tx.savepoint_depth += 1;
    tracing::debug!(savepoint = tx.savepoints, "savepoint");
    let mark = SavepointMark {
        base,
        hooks_before: tx.on_commit.len(),
        doomed_before: tx.conn.doomed(),
        implicit_before: tx.conn.implicit_commits().0,
    };
    Ok(OpenSavepoint {
        tx,
        mark,
        ended: false,
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
    if tx.conn.implicit_commits().0 > implicit_before {
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
    if body_ok && open < base {
        // The body ended the outer transaction too (a `COMMIT` or
        // `ROLLBACK` statement of its own): nothing is left to roll back
        // to, and what ran before may be committed.
        tx.on_commit.truncate(hooks_before);
        let err = ended_by_the_body();
        tx.conn
            .set_doomed(Some((err.kind(), err.message().to_owned())));
        return Some(err);
    }
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
        let err = AnsiTransactionManager::commit_transaction(tx.connection()).err()?;
        if matches!(&err, DieselError::DatabaseError(_, info)
            if info.message().starts_with("no such savepoint"))
        {
            // SQLite: the body ended the transaction itself (diesel's
            // SQLite connection does not notice), and the savepoint with it.
            let err = ended_by_the_body();
            tx.conn
                .set_doomed(Some((err.kind(), err.message().to_owned())));
            return Some(err);
        }
        return Some(savepoint_error::<C>(err));
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
