//! MySQL and MariaDB (including Galera): `START TRANSACTION READ ONLY`
//! readers and `ON DUPLICATE KEY UPDATE` locks.
//!
//! Galera certifies only rows a transaction changes, so the lock upsert must
//! change the row every time: `ts` moves to `UTC_TIMESTAMP()` or, if that is
//! not later than the stored value (two takes in one second), one second past
//! it. An unchanged row would replicate nothing and two nodes could both hold
//! the lock. A lock wait timeout (1205) leaves the transaction open, so
//! `try_lock` needs no savepoint here.
//!
//! Galera write transactions carry one more guard. MariaDB 10.11 (with
//! galera-4 26.4, measured here) does not always report a brute-force abort
//! to the client: the victim's next prepared statement may run as if nothing
//! happened, in autocommit mode, and its `COMMIT` then succeeds on an empty
//! transaction. That is a silent lost update. So Galera sessions run with
//! `autocommit = 0` (a statement after such an abort opens a new implicit
//! transaction instead of committing), and each session has a one-row
//! temporary table, `diesel_facade_guard`: a write transaction arms it
//! right after its `BEGIN` (`UPDATE .. SET armed = 1`) and commits with one
//! anonymous block that disarms it with `SET armed = armed - 1`, which a
//! `CHECK (armed BETWEEN 0 AND 1)` constraint refuses (4025) if it is not
//! armed, and then runs `COMMIT` (not reached after a refusal). The check is forced on for that statement (`SET
//! STATEMENT check_constraint_checks = 1`), whatever the server's default
//! or a body's `SET SESSION`; and no value but 0 and 1 can be stored, so a
//! trigger that writes the guard cannot leave it armed for the next
//! transaction. A replaced transaction no longer sees the
//! row armed, so nothing is committed: the facade rolls back and reports a
//! deadlock, which `retry` re-runs. Both are cached prepared statements,
//! one round trip each, as are the facade's `BEGIN` and `COMMIT`
//! (`control.rs`): the guard costs one round trip, the arming. A temporary
//! table is neither replicated nor binlogged (an earlier `SAVEPOINT` guard switched MariaDB to its
//! internal two-phase commit and cost Galera writers up to 1.8x).

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind};
use diesel::sql_types::{BigInt, Text};
use diesel::{ConnectionError, MysqlConnection, QueryResult, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{
    CommitRefused, Implicit, ImplicitCheck, Sealed, ServerSays, SupportedConnection, TxMode,
};
use crate::config::FacadeConfig;
use crate::error::{Error, ErrorKind};
use crate::replica::{Applied, Position};

pub(crate) mod control;
mod gtid;
mod implicit_commit;
mod options;
mod position;

use implicit_commit::{
    changes_the_session, commits_apart_from_unread_sql, commits_implicitly, is_one_kept_statement,
    rolls_back, runs_unread_sql, FACADE_RESTORES,
};
use options::MysqlOptions;

/// The Galera guard (see the module docs): a one-row temporary table
/// of each session, armed in the batch that begins a write transaction.
/// Temporary tables are InnoDB's and transactional, but neither replicated
/// nor binlogged, so arming one costs the commit nothing on the cluster.
const GUARD_TABLE: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS diesel_facade_guard \
                           (id TINYINT NOT NULL PRIMARY KEY, armed TINYINT NOT NULL, \
                           CONSTRAINT diesel_facade_guard_disarmed CHECK (armed BETWEEN 0 AND 1)) ENGINE = InnoDB; \
                           INSERT IGNORE INTO diesel_facade_guard VALUES (1, 0); COMMIT";

/// Arms the guard, right after a Galera write transaction's `BEGIN`.
/// (Both guard statements name the row by its key, as `sql_safe_updates`
/// asks.)
const GUARD_ARM: &str = "UPDATE diesel_facade_guard SET armed = 1 WHERE id = 1";

/// Disarms the guard and commits a Galera write transaction, in one
/// statement (an anonymous block, which MariaDB prepares like any other):
/// the disarming `UPDATE` fails (4025, the table's `CHECK`) where the guard
/// is not armed, and the block then stops before its `COMMIT`. One
/// statement, so that no round trip separates the check from the `COMMIT`:
/// a silent abort in such a gap would leave `COMMIT` to succeed on an empty
/// transaction.
const GUARD_CHECK_AND_COMMIT: &str = "BEGIN NOT ATOMIC SET STATEMENT check_constraint_checks = 1 FOR \
                                      UPDATE diesel_facade_guard SET armed = armed - 1 WHERE id = 1; \
                                      COMMIT; END";

/// Commits a Galera write transaction after disarming the guard: the
/// facade's name for [`GUARD_CHECK_AND_COMMIT`] (see `control.rs`). The check fails where
/// the guard is not armed, that is, when the transaction that armed it is
/// gone, and `COMMIT` then never runs. (An earlier check, a subquery that
/// returned two rows when not armed, made MariaDB build a temporary table
/// for the `UNION` in every commit.)
const GUARDED_COMMIT: &str = "SET STATEMENT check_constraint_checks = 1 FOR \
                              UPDATE diesel_facade_guard SET armed = armed - 1 WHERE id = 1; COMMIT";

/// Commits a write transaction on one server after checking that it is
/// still open, in one batch: sent only after a statement the facade cannot
/// read (`CALL`, `EXECUTE`, ..), which may have ended it. The `SIGNAL`'s
/// text is the facade's own, whatever the session's language.
const OPEN_COMMIT: &str = "IF @@in_transaction = 0 OR @@autocommit = 0 THEN \
                           SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'diesel_facade_transaction_ended'; \
                           END IF; COMMIT";

/// Refuses to commit a transaction whose outcome the facade cannot tell
/// (see `checked_commit`): the batch stops, and the facade rolls back what
/// is still open and reports `CommitUnknown`.
const UNKNOWN_COMMIT: &str =
    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'diesel_facade_transaction_ended'; COMMIT";

/// The message of `OPEN_COMMIT`'s and `UNKNOWN_COMMIT`'s `SIGNAL`.
const NOT_OPEN: &str = "diesel_facade_transaction_ended";

/// Whether `head` names the guard's table (case-insensitively).
fn mentions_the_guard(head: &str) -> bool {
    const NAME: &[u8] = b"diesel_facade_guard";
    head.as_bytes()
        .windows(NAME.len())
        .any(|window| window.eq_ignore_ascii_case(NAME))
}

/// The constraint only the guard's check can break in its batch; MariaDB's
/// 4025 names it ("CONSTRAINT `diesel_facade_guard_disarmed` failed for ..")
/// in every language a body may have switched the session to.
const GUARD_FIRED: &str = "`diesel_facade_guard_disarmed`";

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

const UPSERT: &str = "INSERT INTO locks (id, ts) VALUES (?, UTC_TIMESTAMP()) \
                      ON DUPLICATE KEY UPDATE ts = IF(VALUES(ts) > ts, VALUES(ts), ts + INTERVAL 1 SECOND)";

/// MariaDB's upper limit for `max_statement_time` (one year, in seconds).
const MAX_STATEMENT_TIME_SECS: f64 = 31_536_000.0;

#[derive(diesel::QueryableByName)]
struct Timeout {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

fn lock_wait_timeout(conn: &mut MysqlConnection) -> QueryResult<i64> {
    diesel::sql_query("SELECT CAST(@@SESSION.innodb_lock_wait_timeout AS SIGNED) AS value")
        .get_result::<Timeout>(conn)
        .map(|t| t.value)
}

fn set_lock_wait_timeout(conn: &mut MysqlConnection, seconds: i64) -> QueryResult<()> {
    conn.batch_execute(&format!(
        "SET SESSION innodb_lock_wait_timeout = {seconds} {FACADE_RESTORES}"
    ))
}

/// Run the upsert with `innodb_lock_wait_timeout` set to `seconds`, restoring
/// the session's value whatever happens.
fn upsert_waiting(conn: &mut MysqlConnection, name: &str, seconds: i64) -> QueryResult<()> {
    let previous = lock_wait_timeout(conn)?;
    set_lock_wait_timeout(conn, seconds)?;
    let result = diesel::sql_query(UPSERT)
        .bind::<Text, _>(name)
        .execute(conn)
        .map(drop);
    let restored = set_lock_wait_timeout(conn, previous);
    result.and(restored)
}

#[derive(diesel::QueryableByName)]
pub(super) struct Variable {
    #[diesel(sql_type = Text, column_name = "Value")]
    pub(super) value: String,
}

/// 1213, also a Galera certification failure. diesel says
/// `SerializationFailure` through prepared statements and `Unknown` through
/// `batch_execute`; the wording is the same.
const DEADLOCK: &str = "Deadlock found when trying to get lock; try restarting transaction";

/// Whether `message` is exactly `start`, something, and `end`. The server's
/// messages put their parameters (which may be row data, as in `Duplicate
/// entry '<value>' for key ...`) after a fixed start, so data can never
/// supply the start.
fn framed(message: &str, start: &str, end: &str) -> bool {
    message.len() >= start.len() + end.len() && message.starts_with(start) && message.ends_with(end)
}

/// What the facade knows about one MySQL/MariaDB connection.
#[doc(hidden)]
#[derive(Debug)]
pub struct MysqlSession {
    /// Whether this server is a Galera node (`wsrep_on`).
    galera: bool,
    /// Whether the facade's `BEGIN` and `COMMIT` go as prepared statements
    /// (see `control.rs`): until the server refuses to prepare one.
    prepared_control: bool,
}

impl Sealed for MysqlConnection {}

impl super::ConcurrentWriters for MysqlConnection {}

impl SupportedConnection for MysqlConnection {
    const NAME: &'static str = "mysql";
    const DEFAULT_PORT: u16 = 3306;
    const LOST_SAVEPOINT_MEANS_ROLLED_BACK: bool = true;
    const CONFIG_FIELDS: &'static [&'static str] =
        &["mysql_sql_mode", "wsrep_sync_wait", "mysql_wait_timeout"];

    type Session = MysqlSession;
    type Options = MysqlOptions;

    fn apply_config(options: &mut MysqlOptions, config: &FacadeConfig) {
        options::apply_config(options, config);
    }

    fn validate_options(options: &MysqlOptions) -> Result<(), Error> {
        options::validate(options)
    }

    fn check_url(url: &str) -> Result<(), String> {
        super::check_server_url(url, &["mysql", "mariadb"], "MySQL/MariaDB")
    }

    fn writer_candidates(url: &str) -> Vec<String> {
        let list = crate::config::split_url_list(url);
        if list.len() < 2 {
            // One URL is checked as given (white space around it included).
            return vec![url.to_owned()];
        }
        list.into_iter().map(str::to_owned).collect()
    }

    fn connect_refused(err: &ConnectionError) -> bool {
        let ConnectionError::BadConnection(message) = err else {
            return false;
        };
        // 1045 and 1044 (wrong user or password, no access to the
        // database), 1049 (unknown database), 1130 (host not allowed). These
        // come in the server's global `lc_messages`: on a server configured
        // for another language a refusal is taken for a transient failure.
        message.starts_with("Access denied for user ")
            || framed(message, "Unknown database '", "'")
            || framed(
                message,
                "Host '",
                "' is not allowed to connect to this MariaDB server",
            )
            || framed(
                message,
                "Host '",
                "' is not allowed to connect to this MySQL server",
            )
    }

    /// diesel maps error numbers to kinds only through prepared statements
    /// (unique, foreign key, 1792 read-only, 1213 as `SerializationFailure`);
    /// everything else, and every error of `batch_execute`, arrives as the
    /// server's or the client library's message, matched from its start.
    /// Sessions run with `lc_messages = 'en_US'` so the wording is known.
    fn read_error(
        kind: DatabaseErrorKind,
        info: &dyn DatabaseErrorInformation,
    ) -> Option<ServerSays> {
        use ErrorKind as K;
        use ServerSays::{ConnectionLost, Kind};
        let message = info.message();
        Some(match message {
            DEADLOCK => Kind(K::Deadlock),
            _ if kind != DatabaseErrorKind::Unknown => return None,
            // 1205: the transaction stays open.
            "Lock wait timeout exceeded; try restarting transaction" => Kind(K::LockTimeout),
            // 1020, MariaDB's snapshot isolation check: retryable.
            m if framed(m, "Record has changed since last read in table '", "'") => {
                Kind(K::SerializationFailure)
            }
            // 1047 on a Galera node cut off from the cluster: nothing was
            // committed, so the connection is not "lost" mid-COMMIT.
            "WSREP has not yet prepared node for application use" => Kind(K::Disconnected),
            // 1062 through `batch_execute` (prepared statements already say
            // `UniqueViolation`).
            m if framed(m, "Duplicate entry '", "'") => Kind(K::UniqueViolation),
            // 1792 through `batch_execute`, and 1290 on a read-only server.
            "Cannot execute statement in a READ ONLY transaction" => Kind(K::ReadOnlyViolation),
            m if m.starts_with("The MariaDB server is running with the --read-only option")
                || m.starts_with("The MySQL server is running with the --read-only option")
                || m.starts_with(
                    "The MySQL server is running with the --super-read-only option",
                ) =>
            {
                Kind(K::ReadOnlyViolation)
            }
            // 1305 for a savepoint of ours (the names are diesel's and the
            // facade's, never data).
            m if framed(m, "SAVEPOINT ", " does not exist") => ServerSays::SavepointGone,
            // The client library (libmariadb or libmysqlclient: 2006, 2013,
            // 2055) and the server (1927, 1053, MySQL 4031).
            "Server has gone away"
            | "MySQL server has gone away"
            | "Connection was killed"
            | "Server shutdown in progress" => ConnectionLost,
            m if m.starts_with("Lost connection to ")
                || m.starts_with(
                    "The client was disconnected by the server because of inactivity",
                ) =>
            {
                ConnectionLost
            }
            _ => return None,
        })
    }

    fn after_connect(conn: &mut Self, options: &MysqlOptions) -> QueryResult<MysqlSession> {
        // English server messages whatever the server's configured language:
        // `read_error` matches their wording.
        let mut sql = String::from("SET NAMES utf8mb4, SESSION lc_messages = 'en_US'");
        if let Some(mode) = &options.sql_mode {
            // Validated at build time to be letters, digits, '_' and ','.
            sql.push_str(&format!(", SESSION sql_mode = '{mode}'"));
        }
        if let Some(level) = options.wsrep_sync_wait {
            sql.push_str(&format!(", SESSION wsrep_sync_wait = {level}"));
        }
        conn.batch_execute(&sql)?;
        let galera = diesel::sql_query("SHOW VARIABLES LIKE 'wsrep_on'")
            .load::<Variable>(conn)?
            .iter()
            .any(|v| v.value.eq_ignore_ascii_case("ON"));
        if galera {
            // A node that is joining, donating a snapshot or cut off from
            // the cluster accepts connections but answers every query with
            // 1047: say so now, so the pool (and a writer failover list)
            // moves on instead of handing out a connection that cannot work.
            let ready = diesel::sql_query("SHOW STATUS LIKE 'wsrep_ready'")
                .load::<Variable>(conn)?
                .iter()
                .any(|v| v.value.eq_ignore_ascii_case("ON"));
            if !ready {
                return Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::Unknown,
                    // The server's own 1047 wording, read as `Disconnected`.
                    Box::new(String::from(
                        "WSREP has not yet prepared node for application use",
                    )),
                ));
            }
        }
        let wait_timeout = match options.wait_timeout {
            Some(chosen) => chosen,
            // See `GALERA_DEFAULT_WAIT_TIMEOUT`: never wait forever on a
            // brute-force-aborted connection.
            None if galera => Some(super::GALERA_DEFAULT_WAIT_TIMEOUT),
            None => None,
        };
        let mut session_sql = Vec::new();
        if let Some(timeout) = wait_timeout {
            session_sql.push(format!(
                "SET SESSION wait_timeout = {}",
                timeout.as_secs().max(1)
            ));
        }
        if galera {
            // Statements that follow a silent brute-force abort must not
            // commit on their own: without autocommit they open a new
            // transaction, which the guard's check then rolls back.
            session_sql.push("SET SESSION autocommit = 0".to_owned());
            session_sql.push(GUARD_TABLE.to_owned());
        }
        if !session_sql.is_empty() {
            conn.batch_execute(&session_sql.join("; "))?;
        }
        Ok(MysqlSession {
            galera,
            prepared_control: true,
        })
    }

    fn implicit_commit_check(_session: &MysqlSession) -> Option<ImplicitCheck> {
        // Galera's armed guard is committed with the transaction an implicit
        // commit ends, and every `#[writer(savepoint)]` vanishes with it; a `ROLLBACK` of the
        // body's own ends it too, and COMMIT would then commit nothing of it.
        Some(|head, complete| {
            if is_one_kept_statement(head, complete) {
                // The usual statement, read at the cost of one search (the
                // checks below would say the same: tested there).
                return if mentions_the_guard(head) {
                    Implicit::ChangesSession
                } else {
                    Implicit::Keeps
                };
            }
            if !commits_implicitly(head, complete) {
                // A body that writes the guard's own table (deleting its
                // row would switch the guard off for the session's later
                // transactions) leaves no session behind either.
                if changes_the_session(head) || mentions_the_guard(head) {
                    Implicit::ChangesSession
                } else {
                    Implicit::Keeps
                }
            } else if rolls_back(head) {
                Implicit::RollsBack
            } else if !complete || runs_unread_sql(head) {
                // Text cut short (over 1 MiB) may go on with anything.
                if commits_apart_from_unread_sql(head, true) {
                    Implicit::UnreadAndCommits
                } else {
                    Implicit::Unread
                }
            } else {
                Implicit::Commits
            }
        })
    }

    fn begin(conn: &mut Self, mode: TxMode, session: &mut MysqlSession) -> QueryResult<()> {
        let statements: &[&'static str] = match (mode, session.galera) {
            // See the module docs: the armed guard proves at COMMIT that the
            // transaction was not silently brute-force aborted.
            (TxMode::Write, true) => &["BEGIN", GUARD_ARM],
            (TxMode::Write, false) => &["BEGIN"],
            (TxMode::Read, _) => &["START TRANSACTION READ ONLY"],
        };
        control::begin(conn, &mut session.prepared_control, statements)
    }

    const OWN_COMMIT: bool = true;

    fn run_control(
        conn: &mut Self,
        session: &mut MysqlSession,
        sql: &'static str,
    ) -> QueryResult<()> {
        match sql {
            GUARDED_COMMIT => control::run(
                conn,
                &mut session.prepared_control,
                &[GUARD_CHECK_AND_COMMIT],
            ),
            "COMMIT" => control::run(conn, &mut session.prepared_control, &["COMMIT"]),
            // The checks after SQL the facade cannot read: compound
            // statements, which are not prepared.
            other => conn.batch_execute(other),
        }
    }

    fn checked_commit(
        mode: TxMode,
        session: &MysqlSession,
        implicit_commit: bool,
        unread: bool,
    ) -> Option<&'static str> {
        if mode != TxMode::Write {
            return None;
        }
        if unread && implicit_commit {
            // SQL the facade could not read, and a statement that committed
            // (or that the facade counts as committing): the guard's row
            // may have been committed before the unread SQL rolled back,
            // and on one server a transaction may have been opened again
            // after it. Nothing tells what was committed.
            return Some(UNKNOWN_COMMIT);
        }
        if session.galera {
            // After DDL, which MariaDB commits implicitly (and Galera
            // replicates on its own), the armed guard was committed with
            // the transaction that armed it: the writer then behaves as on
            // one server, where the statements after the DDL run in a new
            // transaction that COMMIT ends (and the connection is not
            // reused). After SQL the facade could not read the check stays:
            // an implicit commit there committed the armed guard too (the
            // check passes), a rollback took it back (the check refuses,
            // and the statements after it, which ran in a new transaction
            // without autocommit, are not committed).
            return (!implicit_commit).then_some(GUARDED_COMMIT);
        }
        // One server, with autocommit: a transaction that SQL the facade
        // could not read ended (by a commit or a rollback) is no longer
        // open at COMMIT, unless that SQL switched autocommit off (then
        // statements after it opened a new one).
        unread.then_some(OPEN_COMMIT)
    }

    fn replaced_at_commit(err: &diesel::result::Error) -> Option<CommitRefused> {
        let err = match err {
            diesel::result::Error::RollbackErrorOnCommit { commit_error, .. } => commit_error,
            err => err,
        };
        let diesel::result::Error::DatabaseError(_, info) = err else {
            return None;
        };
        if info.message().contains(GUARD_FIRED) {
            Some(CommitRefused::Replaced(
                "a Galera brute-force abort, or a rollback by SQL the facade cannot read",
            ))
        } else if info.message() == NOT_OPEN {
            Some(CommitRefused::EndedUnseen(
                "`CALL`, `EXECUTE`, a compound statement such as `BEGIN NOT ATOMIC .. END`",
            ))
        } else {
            None
        }
    }

    fn upsert_lock(
        conn: &mut Self,
        _: &Self::Session,
        name: &str,
        timeout: Option<Duration>,
    ) -> QueryResult<()> {
        match timeout {
            None => diesel::sql_query(UPSERT)
                .bind::<Text, _>(name)
                .execute(conn)
                .map(drop),
            // InnoDB counts whole seconds; round up so a timeout never
            // expires early, within the server's range (1 to 2^30 s).
            Some(timeout) => {
                let seconds = timeout
                    .as_secs()
                    .saturating_add(u64::from(timeout.subsec_nanos() > 0))
                    .clamp(1, 1 << 30);
                upsert_waiting(conn, name, i64::try_from(seconds).unwrap_or(1 << 30))
            }
        }
    }

    fn try_upsert_lock(conn: &mut Self, _: &Self::Session, name: &str) -> QueryResult<bool> {
        // MariaDB accepts 0 (do not wait); MySQL clamps it to 1 second.
        match upsert_waiting(conn, name, 0) {
            Ok(()) => Ok(true),
            Err(err) if super::is_lock_timeout::<Self>(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }

    fn limit_statement_time(conn: &mut Self, limit: Option<Duration>) -> QueryResult<()> {
        // MariaDB's `max_statement_time` (seconds) also interrupts a wait
        // for a table or row lock. It is a session setting, so the caller
        // lifts it (`None`) before the connection goes back to the pool.
        let sql = match limit {
            Some(limit) => format!(
                "SET SESSION max_statement_time = {:.6} {FACADE_RESTORES}",
                limit.as_secs_f64().clamp(0.001, MAX_STATEMENT_TIME_SECS)
            ),
            None => format!("SET SESSION max_statement_time = DEFAULT {FACADE_RESTORES}"),
        };
        match conn.batch_execute(&sql) {
            // MySQL has no such variable (its `max_execution_time` bounds
            // only a SELECT's execution, not its lock waits): no bound.
            Err(diesel::result::Error::DatabaseError(_, info))
                if info
                    .message()
                    .starts_with("Unknown system variable 'max_statement_time'") =>
            {
                Ok(())
            }
            other => other,
        }
    }

    fn is_missing_table(err: &diesel::result::Error) -> bool {
        // 1146 `Table '<database>.locks' doesn't exist`.
        matches!(err, diesel::result::Error::DatabaseError(_, info)
            if framed(info.message(), "Table '", ".locks' doesn't exist"))
    }

    fn run_embedded_migrations(conn: &mut Self) -> Result<Vec<String>, Error> {
        super::run_migrations(conn, MIGRATIONS)
    }

    fn commit_position(conn: &mut Self, session: &MysqlSession) -> QueryResult<Option<Position>> {
        position::commit_position(conn, session.galera)
    }

    fn wait_for_position(
        conn: &mut Self,
        session: &MysqlSession,
        position: &Position,
        timeout: Duration,
    ) -> QueryResult<Applied> {
        position::wait_for_position(conn, session.galera, position, timeout)
    }

    fn position_is_ahead(
        conn: &mut Self,
        session: &MysqlSession,
        position: &Position,
    ) -> QueryResult<bool> {
        position::position_is_ahead(conn, session.galera, position)
    }

    fn replica_lag(conn: &mut Self, session: &MysqlSession) -> QueryResult<Option<Duration>> {
        position::replica_lag(conn, session.galera)
    }
}
