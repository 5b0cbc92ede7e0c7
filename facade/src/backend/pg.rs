//! PostgreSQL: `BEGIN READ ONLY` readers; locks by `UPDATE` of the lock's
//! row, with an `ON CONFLICT DO UPDATE` upsert when the row does not exist
//! yet.
//!
//! Both statements take the row's `FOR NO KEY UPDATE` lock and hold it to
//! the end of the transaction, so they exclude each other. The `UPDATE`
//! comes first because it is what a contended lock needs: a waiting
//! `UPDATE` follows the row's new version when the holder commits (the
//! usual `EvalPlanQual` recheck), whereas a waiting upsert finds the
//! conflicting row replaced and starts the whole `INSERT` again
//! (`ExecOnConflictUpdate` in PostgreSQL's `nodeModifyTable.c`). The upsert
//! also writes a `Heap LOCK` WAL record before its update. The upsert stays
//! for a name's first take, and for a row deleted or inserted by another
//! transaction between the two statements: it waits for that transaction
//! like any other holder.
//!
//! With [`pg_lock_stamp(false)`](FacadeBuilder::pg_lock_stamp) a name's
//! row that exists is locked with `SELECT … FOR NO KEY UPDATE` instead of
//! updated, in a READ COMMITTED transaction: the same row lock (the one the
//! `UPDATE` takes, so the two ways exclude each other), without a new row
//! version; `ts` then keeps the time of the name's first take. At other
//! isolation levels the take writes, as with the stamp (see [`LOCK_ROW`]).
//!
//! A failed statement aborts a PostgreSQL transaction, so the non-blocking
//! `try_lock` runs inside its own savepoint and rolls back to it when the
//! row is taken; `lock_timeout` is set with `set_config(.., true)`, which is
//! transaction-local and undone by that same rollback.

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind};
use diesel::sql_types::Text;
use diesel::{ConnectionError, PgConnection, QueryResult, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{Sealed, ServerSays, SupportedConnection, TxMode};
use crate::builder::FacadeBuilder;
use crate::config::FacadeConfig;
use crate::error::{Error, ErrorKind};
use crate::replica::{format_pg_lsn, parse_pg_lsn, Applied, Position};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Takes the lock when its row exists; 0 rows when it does not.
const UPDATE: &str = "UPDATE locks SET ts = now() AT TIME ZONE 'UTC' WHERE id = $1";
/// Takes the lock whether or not its row exists.
const UPSERT: &str = "INSERT INTO locks (id, ts) VALUES ($1, now() AT TIME ZONE 'UTC') \
                      ON CONFLICT (id) DO UPDATE SET ts = excluded.ts";

/// Takes the lock when its row exists and the transaction runs at READ
/// COMMITTED, without writing the row; 0 rows otherwise. `FOR NO KEY
/// UPDATE` is the lock [`UPDATE`] takes. At REPEATABLE READ and
/// SERIALIZABLE the take must write (the upsert does): a transaction that
/// waited for a lock whose holder wrote its row fails with 40001 (a
/// retryable `SerializationFailure`) instead of going on with a snapshot
/// older than the holder's commit, and a row that was only locked gives it
/// no such error.
const LOCK_ROW: &str = "SELECT 1 FROM locks WHERE id = $1 \
                        AND current_setting('transaction_isolation') = 'read committed' \
                        FOR NO KEY UPDATE";

/// Takes the lock on `name`'s row: see the module docs for why the `UPDATE`
/// (or, without the stamp, the row lock) comes first.
fn take_row(conn: &mut PgConnection, session: &PgSession, name: &str) -> QueryResult<()> {
    let first = if session.lock_stamp { UPDATE } else { LOCK_ROW };
    let taken = diesel::sql_query(first)
        .bind::<Text, _>(name)
        .execute(conn)?;
    if taken == 0 {
        diesel::sql_query(UPSERT)
            .bind::<Text, _>(name)
            .execute(conn)?;
    }
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

fn set_lock_timeout(conn: &mut PgConnection, value: &str) -> QueryResult<String> {
    diesel::sql_query("SELECT set_config('lock_timeout', $1, true) AS value")
        .bind::<Text, _>(value)
        .get_result::<Setting>(conn)
        .map(|s| s.value)
}

fn current_lock_timeout(conn: &mut PgConnection) -> QueryResult<String> {
    diesel::sql_query("SELECT current_setting('lock_timeout') AS value")
        .get_result::<Setting>(conn)
        .map(|s| s.value)
}

#[derive(diesel::QueryableByName)]
struct Reached {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    reached: bool,
}

#[derive(diesel::QueryableByName)]
struct Lag {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    seconds: Option<f64>,
}

/// A position from the primary's insert `pg_lsn` text (see [`record_end`]);
/// `Written` if it does not parse (then the context's replica reads use the
/// primary).
fn position_from_lsn(text: &str, block: i64, segment: i64) -> Position {
    parse_pg_lsn(text.trim()).map_or(Position::Written, |lsn| {
        Position::PgLsn(format_pg_lsn(record_end(lsn, block, segment)))
    })
}

/// Where the primary would insert the next WAL record, and the WAL's page
/// and segment sizes.
#[derive(diesel::QueryableByName)]
struct InsertPosition {
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    block: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    segment: i64,
}

/// The end of the last WAL record, from the insert position `lsn`.
/// `pg_current_wal_insert_lsn()` is where the next record would start: past
/// the next page's header when the last record ended at a page boundary. A
/// replica reports the end of the last record it replayed (before that
/// header) and would not reach the insert position until more WAL is
/// written, so a reader would wait out `replica_wait_timeout` and fall back
/// to the primary. A position just past a page header (24 bytes; 40 on a
/// segment's first page) is the boundary.
fn record_end(lsn: u64, block: i64, segment: i64) -> u64 {
    const PAGE_HEADER: u64 = 24;
    const SEGMENT_HEADER: u64 = 40;
    let block = u64::try_from(block).ok().filter(|&b| b > 0).unwrap_or(8192);
    let segment = u64::try_from(segment)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(16 << 20);
    if lsn % segment == SEGMENT_HEADER {
        lsn - SEGMENT_HEADER
    } else if lsn % block == PAGE_HEADER && lsn % segment >= block {
        lsn - PAGE_HEADER
    } else {
        lsn
    }
}

/// What the server says when it refuses a connection, as (start, end) of
/// its message. libpq reports `connection to server at "<host>" ..., port
/// <n> failed: FATAL:  <server message>` (one such part per host tried), so
/// each part's server message is matched from its start.
const REFUSALS: &[(&str, &str)] = &[
    ("password authentication failed for user \"", "\""),
    ("database \"", "\" does not exist"),
    ("role \"", "\" does not exist"),
    ("permission denied for database \"", "\""),
    ("no pg_hba.conf entry for ", ""),
    ("pg_hba.conf rejects connection for ", ""),
    ("fe_sendauth: no password supplied", ""),
];

/// The beginnings of libpq's messages for a URL or connection string it
/// rejects itself, before it contacts any server (`fe-connect.c`): a
/// misspelt option or value, a bad percent-encoding. Retrying cannot help,
/// as with a server's refusal.
const LIBPQ_OPTION_ERRORS: &[&str] = &[
    "invalid ",
    "missing \"=\" after ",
    "missing key/value separator ",
    "extra key/value separator ",
    "unterminated quoted string in connection info string",
    "forbidden value %00 in percent-encoded value",
    "unexpected character ",
    "end of string reached when looking for matching \"]\"",
    "IPv6 host address may not be empty",
    "could not match ",
];

/// Whether libpq rejected the connection string itself (see
/// [`LIBPQ_OPTION_ERRORS`]): then its message names no server.
fn libpq_rejects_options(message: &str) -> bool {
    !message.contains("connection to server")
        && LIBPQ_OPTION_ERRORS
            .iter()
            .any(|start| message.starts_with(start))
}

/// Whether `message` is exactly `start`, a name, and `end`, as in
/// `database "x" does not exist` (the name is an identifier the
/// configuration or the schema chose, never row data).
fn quoted_then(message: &str, start: &str, end: &str) -> bool {
    message.len() >= start.len() + end.len() && message.starts_with(start) && message.ends_with(end)
}

/// PostgreSQL's session options, applied to every new connection.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct PgOptions {
    application_name: Option<String>,
    lock_stamp: bool,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            application_name: None,
            lock_stamp: true,
        }
    }
}

/// What a PostgreSQL connection keeps: how its locks are taken.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct PgSession {
    /// `ctx.lock` writes `ts` on every take (`pg_lock_stamp`).
    lock_stamp: bool,
}

/// PostgreSQL's own options: only a facade on `PgConnection` offers them.
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
impl FacadeBuilder<PgConnection> {
    /// The `application_name` shown in `pg_stat_activity`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::PgConnection>::builder()
    ///     .writer("postgres://app:secret@db/app")
    ///     .application_name("billing-api")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn application_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with_options(|o| o.application_name = Some(name))
    }

    /// Whether `ctx.lock` writes the lock row's `ts` on every take: `true`
    /// (the default) or only on a name's first take (`false`).
    ///
    /// By default a take is `UPDATE locks SET ts = now() ..`: a new version
    /// of the row and its WAL on every take, and `ts` says when the lock was
    /// last taken by a transaction that committed. With `false`, in a READ
    /// COMMITTED transaction (PostgreSQL's default), a name's existing row
    /// is locked with `SELECT … FOR NO KEY UPDATE`, the row lock that
    /// `UPDATE` takes, without writing the row: the lock is the same
    /// (exclusive until the outermost transaction ends, the same
    /// `lock_timeout`, `try_lock` and deadlock detection, and it excludes
    /// facades with either setting), a take writes less WAL, and under
    /// contention more transactions get through per second (see
    /// docs/performance.md); `ts` keeps the time the row was made. At
    /// REPEATABLE READ or SERIALIZABLE the take writes `ts` as with the
    /// stamp.
    ///
    /// Only for locks that no transaction takes at REPEATABLE READ or
    /// SERIALIZABLE, in any service: such a transaction that waits for a
    /// holder that did not write the row goes on with its older snapshot
    /// (it does not see what the holder committed), where a holder that
    /// wrote the row makes it fail with a retryable
    /// [`SerializationFailure`](crate::ErrorKind::SerializationFailure).
    /// See docs/locks.md.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::PgConnection>::builder()
    ///     .writer("postgres://app:secret@db/app")
    ///     .pg_lock_stamp(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn pg_lock_stamp(self, stamp: bool) -> Self {
        self.with_options(|o| o.lock_stamp = stamp)
    }
}

impl Sealed for PgConnection {}

impl super::ConcurrentWriters for PgConnection {}

impl SupportedConnection for PgConnection {
    const NAME: &'static str = "postgres";
    const DEFAULT_PORT: u16 = 5432;
    const CONFIG_FIELDS: &'static [&'static str] = &["application_name", "pg_lock_stamp"];

    type Session = PgSession;
    type Options = PgOptions;

    fn apply_config(options: &mut PgOptions, config: &FacadeConfig) {
        if let Some(name) = &config.application_name {
            options.application_name = Some(name.clone());
        }
        if let Some(stamp) = config.pg_lock_stamp {
            options.lock_stamp = stamp;
        }
    }

    fn check_url(url: &str) -> Result<(), String> {
        if !url.contains("://") && url.contains('=') {
            // A libpq key=value connection string; libpq checks it.
            return Ok(());
        }
        super::check_server_url(url, &["postgres", "postgresql"], "PostgreSQL")
    }

    fn connect_refused(err: &ConnectionError) -> bool {
        let ConnectionError::BadConnection(message) = err else {
            return false;
        };
        if libpq_rejects_options(message) {
            return true;
        }
        message.split("failed: ").skip(1).any(|part| {
            let part = part.strip_prefix("FATAL:  ").unwrap_or(part);
            let server = part.lines().next().unwrap_or_default().trim_end();
            REFUSALS
                .iter()
                .any(|(start, end)| quoted_then(server, start, end))
        })
    }

    /// diesel maps SQLSTATEs to kinds for unique, foreign-key, read-only,
    /// serialization and connection errors; the rest arrive as `Unknown`
    /// with the server's primary message, which is matched whole. Values
    /// never appear in these messages (PostgreSQL puts them in DETAIL), and
    /// a message that quotes a value (`invalid input syntax for type
    /// integer: "..."`) matches no rule.
    fn read_error(
        kind: DatabaseErrorKind,
        info: &dyn DatabaseErrorInformation,
    ) -> Option<ServerSays> {
        if kind != DatabaseErrorKind::Unknown {
            return None;
        }
        // libpq's own messages end with a newline.
        Some(match info.message().trim_end() {
            // 40P01. Its DETAIL names the processes ("Process 12 waits for
            // ..."), which an application's own `RAISE EXCEPTION 'deadlock
            // detected'` would not have.
            "deadlock detected" if info.details().is_some_and(|d| d.starts_with("Process ")) => {
                ServerSays::Kind(ErrorKind::Deadlock)
            }
            // 55P03 from `lock_timeout`, and from NOWAIT row or table locks.
            "canceling statement due to lock timeout" => ServerSays::Kind(ErrorKind::LockTimeout),
            m if quoted_then(m, "could not obtain lock on row in relation \"", "\"")
                || quoted_then(m, "could not obtain lock on relation \"", "\"") =>
            {
                ServerSays::Kind(ErrorKind::LockTimeout)
            }
            // 57P01-57P03 and libpq's own reports; usually diesel has already
            // said `ClosedConnection`.
            "terminating connection due to administrator command"
            | "terminating connection due to idle-in-transaction timeout"
            | "terminating connection due to idle-session timeout"
            | "the database system is shutting down"
            | "no connection to the server" => ServerSays::ConnectionLost,
            m if m.starts_with("server closed the connection unexpectedly") => {
                ServerSays::ConnectionLost
            }
            _ => return None,
        })
    }

    fn after_connect(conn: &mut Self, options: &PgOptions) -> QueryResult<PgSession> {
        if let Some(name) = &options.application_name {
            diesel::sql_query("SELECT set_config('application_name', $1, false) AS value")
                .bind::<Text, _>(name)
                .get_result::<Setting>(conn)?;
        }
        Ok(PgSession {
            lock_stamp: options.lock_stamp,
        })
    }

    fn begin(conn: &mut Self, mode: TxMode, _session: &mut PgSession) -> QueryResult<()> {
        let sql = match mode {
            // READ WRITE, not the session's default: a body that ran `SET
            // SESSION CHARACTERISTICS AS TRANSACTION READ ONLY` (or `SET
            // default_transaction_read_only = on`) and committed leaves that
            // default on the pooled connection, and a plain BEGIN would then
            // fail every later writer there. (Checking every statement's
            // text for such a `SET` instead cost about 8% of a short read's
            // time: measured, not kept.)
            TxMode::Write => "BEGIN READ WRITE",
            TxMode::Read => "BEGIN READ ONLY",
        };
        AnsiTransactionManager::begin_transaction_sql(conn, sql)
    }

    fn bound_nested_lock_waits(conn: &mut Self, timeout: Duration) -> QueryResult<()> {
        // Transaction-local, and only where the session waits forever (0):
        // a lock_timeout the application chose stays.
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        diesel::sql_query(
            "SELECT set_config('lock_timeout', CASE WHEN current_setting('lock_timeout') = '0' \
             THEN $1 ELSE current_setting('lock_timeout') END, true) AS value",
        )
        .bind::<Text, _>(format!("{ms}ms"))
        .get_result::<Setting>(conn)
        .map(drop)
    }

    fn limit_statement_time(conn: &mut Self, limit: Option<Duration>) -> QueryResult<()> {
        // Transaction-local (`set_config(.., true)`), and a shorter
        // statement_timeout the application chose stays. The value before
        // is kept (transaction-local too) and put back by `None`: the end
        // of the transaction undoes the bound, except where the outermost
        // transaction is a savepoint (a transactional test facade), whose
        // `RELEASE` would keep it for the rest of the test transaction.
        let Some(limit) = limit else {
            return diesel::sql_query(
                "SELECT set_config('statement_timeout', \
                 current_setting('diesel_facade.statement_timeout_before'), true) AS value",
            )
            .get_result::<Setting>(conn)
            .map(drop);
        };
        let ms = limit.as_millis().clamp(1, 2_147_483_647);
        diesel::sql_query(
            "SELECT set_config('statement_timeout', CASE WHEN current_setting('statement_timeout') <> '0' \
             AND current_setting('statement_timeout')::interval <= $1::interval \
             THEN current_setting('statement_timeout') ELSE $1 END, true) AS value \
             FROM (SELECT set_config('diesel_facade.statement_timeout_before', \
             current_setting('statement_timeout'), true)) AS before",
        )
        .bind::<Text, _>(format!("{ms}ms"))
        .get_result::<Setting>(conn)
        .map(drop)
    }

    fn transaction_usable(conn: &mut Self) -> QueryResult<()> {
        // Fails with 25P02 ("current transaction is aborted") if an earlier
        // statement aborted it. Only sent after a statement failed.
        conn.batch_execute("SELECT 1")
    }

    fn upsert_lock(
        conn: &mut Self,
        session: &PgSession,
        name: &str,
        timeout: Option<Duration>,
    ) -> QueryResult<()> {
        let Some(timeout) = timeout else {
            return take_row(conn, session, name);
        };
        let previous = current_lock_timeout(conn)?;
        // 0 would mean "wait forever" to PostgreSQL, and it rejects values
        // above INT_MAX milliseconds (about 24.8 days).
        let millis = timeout.as_millis().clamp(1, 2_147_483_647);
        set_lock_timeout(conn, &format!("{millis}ms"))?;
        take_row(conn, session, name)?;
        set_lock_timeout(conn, &previous).map(drop)
    }

    fn try_upsert_lock(conn: &mut Self, session: &PgSession, name: &str) -> QueryResult<bool> {
        let previous = current_lock_timeout(conn)?;
        conn.batch_execute("SAVEPOINT diesel_facade_try_lock")?;
        let attempt = set_lock_timeout(conn, "1ms").and_then(|_| take_row(conn, session, name));
        match attempt {
            Ok(_) => {
                // RELEASE keeps the upsert and, like the savepoint's other
                // effects, the transaction-local lock_timeout: undo that.
                conn.batch_execute("RELEASE SAVEPOINT diesel_facade_try_lock")?;
                set_lock_timeout(conn, &previous).map(|_| true)
            }
            Err(err) if super::is_lock_timeout::<Self>(&err) => {
                conn.batch_execute("ROLLBACK TO SAVEPOINT diesel_facade_try_lock")?;
                conn.batch_execute("RELEASE SAVEPOINT diesel_facade_try_lock")?;
                Ok(false)
            }
            Err(err) => {
                // Leave the transaction usable for the caller's error path.
                let _ = conn.batch_execute("ROLLBACK TO SAVEPOINT diesel_facade_try_lock");
                Err(err)
            }
        }
    }

    fn is_missing_table(err: &diesel::result::Error) -> bool {
        matches!(err, diesel::result::Error::DatabaseError(_, info)
            if info.message() == "relation \"locks\" does not exist")
    }

    fn run_embedded_migrations(conn: &mut Self) -> Result<Vec<String>, Error> {
        super::run_migrations(conn, MIGRATIONS)
    }

    fn commit_position(conn: &mut Self, _: &PgSession) -> QueryResult<Option<Position>> {
        // After COMMIT returned: the insert position is past the commit
        // record (inside the transaction it would precede it).
        let at = diesel::sql_query(
            "SELECT pg_current_wal_insert_lsn()::text AS value, \
                    current_setting('wal_block_size')::int8 AS block, \
                    (SELECT setting::int8 FROM pg_settings WHERE name = 'wal_segment_size') AS segment",
        )
        .get_result::<InsertPosition>(conn)?;
        Ok(Some(position_from_lsn(&at.value, at.block, at.segment)))
    }

    fn wait_for_position(
        conn: &mut Self,
        _: &PgSession,
        position: &Position,
        timeout: Duration,
    ) -> QueryResult<Applied> {
        let Position::PgLsn(lsn) = position else {
            return Ok(Applied::Foreign);
        };
        // PostgreSQL 15 has no built-in wait.
        super::poll_position(timeout, || {
            diesel::sql_query(
                "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, true) AS reached",
            )
            .bind::<Text, _>(lsn)
            .get_result::<Reached>(conn)
            .map(|r| r.reached)
        })
    }

    fn position_is_ahead(conn: &mut Self, _: &PgSession, position: &Position) -> QueryResult<bool> {
        let Position::PgLsn(lsn) = position else {
            return Ok(false);
        };
        Ok(
            diesel::sql_query("SELECT $1::pg_lsn > pg_current_wal_insert_lsn() AS reached")
                .bind::<Text, _>(lsn)
                .get_result::<Reached>(conn)?
                .reached,
        )
    }

    fn replica_lag(conn: &mut Self, _: &PgSession) -> QueryResult<Option<Duration>> {
        let lag = diesel::sql_query(
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0::float8 \
                         WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8 \
                         ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8 \
                    END AS seconds",
        )
        .get_result::<Lag>(conn)?
        .seconds;
        Ok(lag.and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primarys_lsn_is_canonical_or_written() {
        let (block, segment) = (8192, 16 << 20);
        assert_eq!(
            position_from_lsn("16/b374d848", block, segment),
            Position::PgLsn("16/B374D848".into())
        );
        assert_eq!(position_from_lsn("junk", block, segment), Position::Written);
    }

    /// Just past a page header is the page boundary, where a replica's
    /// replay position stops until more WAL comes.
    #[test]
    fn an_insert_position_past_a_page_header_is_the_boundary() {
        let (block, segment) = (8192_i64, 16_i64 << 20);
        let page = 0x4CF_E000_u64; // a page inside a segment
        assert_eq!(page % 8192, 0);
        assert_ne!(page % (16 << 20), 0);
        assert_eq!(record_end(page + 24, block, segment), page);
        assert_eq!(record_end(page + 32, block, segment), page + 32);
        assert_eq!(record_end(page + 8, block, segment), page + 8);
        let first = 5_u64 << 24; // a segment's first page: a long header
        assert_eq!(record_end(first + 40, block, segment), first);
        assert_eq!(record_end(first + 24, block, segment), first + 24);
        // Sizes the server did not give sensibly fall back to the defaults.
        assert_eq!(record_end(page + 24, 0, -1), page);
    }
}
