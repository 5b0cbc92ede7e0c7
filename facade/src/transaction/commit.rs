//! COMMIT of an outermost transaction: the backend's last check (its
//! checked-commit batch), what a failed COMMIT means, and the position a
//! commit leaves for the context's later replica reads.

use super::*;
use crate::backend::CommitRefused;

/// COMMIT, after the backend's last check. `Err` means nothing is known to
/// be committed, except `CommitUnknown`, which says the outcome is unknown.
pub(super) fn commit<C: SupportedConnection>(
    tx: &mut Transaction<C>,
    facade: &Facade<C>,
    position: Option<&ReadPosition>,
) -> Result<(), Error> {
    let counters = &facade.inner.counters;
    let managed = &mut *tx.conn;
    let (implicit_commits, unread) = managed.implicit_commits();
    if managed.session_changed() {
        // Statements that end transactions can also change the session
        // (`SET autocommit = 1`): start the next one on a fresh connection.
        managed.broken = true;
    }
    let implicit_commit = implicit_commits > 0;
    // Statements the facade read as committing, apart from those it could
    // not read at all.
    let read_commit = implicit_commits > unread;
    if let Err(err) = before_commit(managed, implicit_commit) {
        let _ = rollback(tx);
        Counters::bump(&counters.rollbacks);
        let err = savepoint_error::<C>(err);
        tracing::debug!(error = %err, "the transaction was replaced before COMMIT");
        return Err(err);
    }
    if tx.mode == TxMode::Read && read_commit {
        // A reader's statement ended its READ ONLY transaction (a `COMMIT`
        // of its own, DDL, ..): what ran after it ran outside it, where
        // writes are allowed. Roll back what is still open (on Galera,
        // without autocommit, that is all of it) and never report `Ok`.
        tx.conn.broken = true;
        let _ = rollback(tx);
        Counters::bump(&counters.rollbacks);
        let err = Error::new(
            ErrorKind::CommitUnknown,
            "a statement of this reader (a `COMMIT` of its own, DDL, ...) ended its read-only \
             transaction on the server: what ran after it ran outside that transaction, where \
             a write is allowed (and, on a server with autocommit on, already committed). The \
             facade rolled back whatever was still open. Keep transaction control and DDL out \
             of readers",
        );
        tracing::warn!(error = %err, "a reader ended its own transaction");
        return Err(err);
    }
    let checked = match managed.base_depth {
        0 => C::checked_commit(tx.mode, &managed.session, read_commit, unread > 0),
        _ => None,
    };
    let own = (managed.base_depth == 0 && C::OWN_COMMIT).then_some("COMMIT");
    let committed = match checked.or(own) {
        None => AnsiTransactionManager::commit_transaction(tx.connection()),
        Some(sql) => {
            let managed = &mut *tx.conn;
            commit_batch(&mut managed.conn, &mut managed.session, sql)
        }
    };
    let replaced = match (&committed, checked) {
        (Err(err), Some(_)) => C::replaced_at_commit(err),
        _ => None,
    };
    match committed {
        Err(err) if let Some(CommitRefused::EndedUnseen(statements)) = replaced => {
            // Nothing was open to commit or roll back; the connection may
            // have been changed by what the statement ran.
            tx.conn.broken = true;
            Counters::bump(&counters.rollbacks);
            let err = Error::new(
                ErrorKind::CommitUnknown,
                format!(
                    "a statement of this transaction that the facade cannot read ({statements}) \
                     may have ended the transaction on the server, by a commit or a rollback \
                     the facade cannot tell apart: what ran before the end may or may not be \
                     committed, and what ran after it on its own (autocommit) is. The facade \
                     rolled back whatever was still open. Keep `COMMIT`, `ROLLBACK` and DDL \
                     out of procedures and dynamic SQL run in a `#[writer]`"
                ),
            )
            .with_source(err);
            tracing::warn!(error = %err, "commit outcome unknown");
            Err(err)
        }
        Err(err) if let Some(CommitRefused::Replaced(cause)) = replaced => {
            // The batch stopped before its COMMIT and rolled back (if that
            // failed too, the connection cannot be trusted again).
            if matches!(err, DieselError::RollbackErrorOnCommit { .. }) {
                tx.conn.broken = true;
            }
            Counters::bump(&counters.rollbacks);
            let err = Error::new(
                ErrorKind::Deadlock,
                format!(
                    "the server rolled this transaction back before COMMIT without reporting \
                     it ({cause}); nothing was committed"
                ),
            )
            .with_source(err);
            tracing::debug!(error = %err, "the transaction was replaced before COMMIT");
            Err(err)
        }
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
            if is_no_transaction(&err) {
                // The body ended the transaction itself, and the
                // connection did not notice (SQLite).
                return Err(ended_by_the_body());
            }
            let err = Error::from(err);
            tracing::debug!(error = %err, "COMMIT failed");
            Err(err)
        }
    }
}

/// diesel's outermost COMMIT with `sql` (a backend's checked commit batch)
/// in place of its `COMMIT`: the same instrumentation event, depth and
/// rollback when the batch fails.
fn commit_batch<C: SupportedConnection>(
    conn: &mut C,
    session: &mut C::Session,
    sql: &'static str,
) -> QueryResult<()> {
    use diesel::connection::{
        InstrumentationEvent, TransactionDepthChange, TransactionManager, TransactionManagerStatus,
    };
    let depth = AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .ok_or(DieselError::NotInTransaction)?;
    conn.instrumentation()
        .on_connection_event(InstrumentationEvent::commit_transaction(depth));
    match C::run_control(conn, session, sql) {
        Ok(()) => match AnsiTransactionManager::transaction_manager_status_mut(conn) {
            TransactionManagerStatus::Valid(status) => {
                status.change_transaction_depth(TransactionDepthChange::DecreaseDepth)
            }
            TransactionManagerStatus::InError => Err(DieselError::BrokenTransactionManager),
        },
        Err(commit_error) => match AnsiTransactionManager::rollback_transaction(conn) {
            Ok(()) => Err(commit_error),
            Err(rollback_error) => {
                AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
                Err(DieselError::RollbackErrorOnCommit {
                    rollback_error: Box::new(rollback_error),
                    commit_error: Box::new(commit_error),
                })
            }
        },
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
