//! The facade's own `BEGIN` and `COMMIT` on MySQL/MariaDB as prepared
//! statements that diesel caches per connection: one round trip each after
//! the first. diesel's `batch_execute`, which `AnsiTransactionManager`
//! uses, takes three: it switches the session's multi-statement option on
//! (`COM_SET_OPTION`) before its `COM_QUERY` and off after it, and each
//! switch waits for the server's reply. A server that refuses to prepare
//! one of them (MySQL does not prepare `BEGIN` or `START TRANSACTION`,
//! MariaDB does) gets that statement and the rest as one batch, as before,
//! and the session remembers not to try again.

use std::num::NonZeroU32;

use diesel::connection::{
    AnsiTransactionManager, InstrumentationEvent, SimpleConnection, TransactionDepthChange,
    TransactionManager, TransactionManagerStatus,
};
use diesel::mysql::Mysql;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::result::Error as DieselError;
use diesel::{Connection, MysqlConnection, QueryResult, RunQueryDsl};

/// One fixed statement of the facade's own, without binds. Its SQL is the
/// key of diesel's statement cache (no static query id), so each one is
/// prepared once per connection.
#[derive(Debug, Clone, Copy)]
struct Control(&'static str);

impl QueryId for Control {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl QueryFragment<Mysql> for Control {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        out.push_sql(self.0);
        Ok(())
    }
}

impl RunQueryDsl<MysqlConnection> for Control {}

/// Whether the server refused to prepare a statement of this kind (1295,
/// "This command is not supported in the prepared statement protocol
/// yet"): nothing of it ran.
fn not_preparable(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(_, info)
        if info.message().starts_with("This command is not supported in the prepared statement protocol"))
}

/// Run `statements` in order, stopping at the first error: each as a cached
/// prepared statement while `prepared` holds, otherwise (from the first one
/// the server would not prepare) the rest as one batch.
pub(crate) fn run(
    conn: &mut MysqlConnection,
    prepared: &mut bool,
    statements: &[&'static str],
) -> QueryResult<()> {
    for (i, sql) in statements.iter().enumerate() {
        if *prepared {
            match Control(sql).execute(conn) {
                Ok(_) => continue,
                Err(err) if not_preparable(&err) => *prepared = false,
                Err(err) => return Err(err),
            }
        }
        return conn.batch_execute(&statements[i..].join("; "));
    }
    Ok(())
}

/// diesel's `begin_transaction_sql` with [`run`] in place of its batch:
/// the same check, instrumentation event and depth.
pub(super) fn begin(
    conn: &mut MysqlConnection,
    prepared: &mut bool,
    statements: &[&'static str],
) -> QueryResult<()> {
    if AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some()
    {
        return Err(DieselError::AlreadyInTransaction);
    }
    conn.instrumentation()
        .on_connection_event(InstrumentationEvent::begin_transaction(NonZeroU32::MIN));
    run(conn, prepared, statements)?;
    match AnsiTransactionManager::transaction_manager_status_mut(conn) {
        TransactionManagerStatus::Valid(status) => {
            status.change_transaction_depth(TransactionDepthChange::IncreaseDepth)
        }
        TransactionManagerStatus::InError => Err(DieselError::BrokenTransactionManager),
    }
}
