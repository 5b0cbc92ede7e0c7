//! Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB.
//!
//! The transaction, lock, retry and pool code is written once against
//! [`SupportedConnection`]; each backend module implements it for one diesel
//! connection type and owns what it knows: its SQL (BEGIN, lock upserts,
//! replica positions), the reading of its server's errors, its per-connection
//! `Session` state, and its `Options` with their builder methods
//! (`impl FacadeBuilder<ThisConnection>`), `FacadeConfig` fields and
//! validation. No other module matches on the backend or uses
//! `#[cfg(feature = ...)]`. The measured server behaviour the backends rely
//! on is in docs/internals.md.

use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, LoadConnection};
use diesel::migration::MigrationConnection;
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind};
use diesel::{Connection, ConnectionError, QueryResult};

use crate::config::FacadeConfig;
use crate::error::{Error, ErrorKind};
use crate::replica::{Applied, Position};

#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod url;

#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use url::check_server_url;

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// The kind of transaction a scope opens at the outermost level.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// A read-write transaction (`BEGIN`, SQLite `BEGIN IMMEDIATE`).
    Write,
    /// A read-only transaction (`BEGIN READ ONLY`, `START TRANSACTION READ
    /// ONLY`, SQLite `PRAGMA query_only` + `BEGIN`).
    Read,
}

/// The session `wait_timeout` a Galera node gets unless
/// `FacadeBuilder::mysql_wait_timeout` (feature `mysql`) says otherwise:
/// nothing on a default Galera setup waits forever for a
/// brute-force-aborted connection. (Defined here, not in `mysql.rs`, so that
/// it exists in every build.)
///
/// ```
/// assert_eq!(diesel_facade::GALERA_DEFAULT_WAIT_TIMEOUT.as_secs(), 10);
/// ```
pub const GALERA_DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a backend reads in one of its server's errors, beyond diesel's
/// [`DatabaseErrorKind`] (see `crate::error` for how the readers are used).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSays {
    /// An error of this kind.
    Kind(ErrorKind),
    /// The connection is gone (`Disconnected`): a `COMMIT` in flight has an
    /// unknown outcome.
    ConnectionLost,
    /// A savepoint no longer exists because the server rolled the whole
    /// transaction back (MySQL 1305 after a deadlock or a wsrep abort).
    SavepointGone,
    /// `COMMIT` found no transaction open: the body ended it with a
    /// statement of its own (SQLite, whose diesel connection does not notice).
    NoTransaction,
}

/// What a statement may do to the open transaction, as far as its SQL text
/// tells (see [`SupportedConnection::implicit_commit_check`]).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implicit {
    /// The transaction goes on.
    Keeps,
    /// The server may commit it (DDL, `LOCK`, `SET autocommit`, ...).
    Commits,
    /// The statement rolls the whole transaction back (`ROLLBACK` that is
    /// not `ROLLBACK TO` a savepoint): the transaction can no longer commit.
    RollsBack,
    /// The statement runs SQL the facade cannot read (`CALL`, `EXECUTE`,
    /// a compound statement such as `BEGIN NOT ATOMIC .. END`), which may
    /// commit the transaction or roll it back: counted as a commit, and
    /// the backend checks at `COMMIT` which it was where it can (see
    /// [`SupportedConnection::checked_commit`]).
    Unread,
    /// A batch with both: SQL the facade cannot read, and a statement that
    /// commits.
    UnreadAndCommits,
    /// The transaction goes on, but the statement changes the session for
    /// the transactions after it (`SET SESSION TRANSACTION READ ONLY`,
    /// `SET sql_mode = ..`): the connection is replaced after this one.
    ChangesSession,
}

/// What a [`SupportedConnection::checked_commit`] batch found when its
/// check stopped it before `COMMIT`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRefused {
    /// The transaction was replaced (the text says by what, for the
    /// error's message): nothing of it was committed.
    Replaced(&'static str),
    /// A statement the facade cannot read ([`Implicit::Unread`]; the text
    /// names the backend's kinds of them, for the error's message) may have
    /// ended the transaction, by a commit or a rollback the facade cannot
    /// tell apart.
    EndedUnseen(&'static str),
}

/// A backend's test of a statement's SQL text (the beginning of it, and
/// whether it is complete).
#[doc(hidden)]
pub type ImplicitCheck = fn(&str, bool) -> Implicit;

/// A diesel connection type diesel-facade can manage: `SqliteConnection`,
/// `PgConnection` or `MysqlConnection` (each behind its cargo feature).
///
/// The methods are the backend-specific halves of the facade's transaction,
/// lock and replica logic; they are not meant to be called by applications.
///
/// ```
/// fn assert_supported<C: diesel_facade::SupportedConnection>() {}
/// assert_supported::<diesel::SqliteConnection>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a connection type diesel-facade supports",
    label = "not supported by diesel-facade",
    note = "use `diesel::SqliteConnection`, `diesel::PgConnection` or `diesel::MysqlConnection`, with the `sqlite`, `postgres` or `mysql` feature of diesel-facade enabled"
)]
pub trait SupportedConnection:
    Connection<TransactionManager = AnsiTransactionManager>
    + R2D2Connection
    + LoadConnection
    + MigrationConnection
    + Send
    + Sealed
    + 'static
{
    /// A short name for logs and spans: `sqlite`, `postgres`, `mysql`.
    #[doc(hidden)]
    const NAME: &'static str;

    /// The server's port when a URL names none (0 where there is no server).
    #[doc(hidden)]
    const DEFAULT_PORT: u16 = 0;

    /// Whether a savepoint that vanished (`ROLLBACK TO`/`RELEASE SAVEPOINT`
    /// failing because it does not exist) means the server rolled the whole
    /// transaction back: true on MySQL/MariaDB, where a deadlock or a wsrep
    /// abort does that; elsewhere savepoints only vanish when the
    /// application's own SQL released them.
    #[doc(hidden)]
    const LOST_SAVEPOINT_MEANS_ROLLED_BACK: bool = false;

    /// What this backend remembers about one connection between
    /// transactions: what it learnt at connect time (a Galera node, a WAL
    /// database) and settings it switches only when they change.
    #[doc(hidden)]
    type Session: Send + 'static;

    /// This backend's session options, set through its own builder methods
    /// (an `impl FacadeBuilder<ThisConnection>` in the backend's file), so
    /// that one backend's options cannot be given to another's facade.
    #[doc(hidden)]
    type Options: Default + Send + Sync + 'static;

    /// The backend-specific fields of [`FacadeConfig`] this backend reads.
    /// A configuration that sets another backend's field is a `Config`
    /// error rather than silently ignored.
    #[doc(hidden)]
    const CONFIG_FIELDS: &'static [&'static str];

    /// Set `options` from this backend's fields of `config` (the ones in
    /// [`CONFIG_FIELDS`](Self::CONFIG_FIELDS)).
    #[doc(hidden)]
    fn apply_config(options: &mut Self::Options, config: &FacadeConfig);

    /// Check the options at `build`: any value that could make a later call
    /// panic, wait without bound or send an invalid value to the server is
    /// a `Config` error naming the option and the range it accepts.
    #[doc(hidden)]
    fn validate_options(_options: &Self::Options) -> Result<(), Error> {
        Ok(())
    }

    /// Check a URL before any connection is attempted, so that an unusable
    /// one is a `Config` error naming the problem.
    #[doc(hidden)]
    fn check_url(url: &str) -> Result<(), String>;

    /// The writer URLs that `writer(..)` names, in order of preference:
    /// several only where the backend supports an active/passive list
    /// (MySQL/MariaDB, for Galera nodes). Elsewhere the string is one URL
    /// as the driver reads it (a SQLite path may hold a comma; a
    /// PostgreSQL URL names several hosts its own way).
    #[doc(hidden)]
    fn writer_candidates(url: &str) -> Vec<String> {
        vec![url.to_owned()]
    }

    /// The most connections a pool on `url` may hold, if the URL itself
    /// limits it (an in-memory SQLite database exists once per connection).
    #[doc(hidden)]
    fn pool_size_limit(_url: &str) -> Option<u32> {
        None
    }

    /// Whether a failed connect means the server answered and refused (bad
    /// credentials, unknown database, a SQLite path that cannot be opened):
    /// a configuration problem that retrying cannot fix.
    #[doc(hidden)]
    fn connect_refused(err: &ConnectionError) -> bool;

    /// This backend's reading of a database error, from the server's fixed
    /// wording anchored at the start of the primary message (never a
    /// substring, which data could supply), or `None` if the wording is not
    /// this server's. Only consulted for what diesel's code-derived
    /// [`DatabaseErrorKind`] leaves open.
    #[doc(hidden)]
    fn read_error(
        kind: DatabaseErrorKind,
        info: &dyn DatabaseErrorInformation,
    ) -> Option<ServerSays>;

    /// Session settings applied to every new connection.
    #[doc(hidden)]
    fn after_connect(conn: &mut Self, options: &Self::Options) -> QueryResult<Self::Session>;

    /// Open the outermost transaction.
    #[doc(hidden)]
    fn begin(conn: &mut Self, mode: TxMode, session: &mut Self::Session) -> QueryResult<()>;

    /// Whether an independent writer can commit while the same context has
    /// a transaction of `outer` mode open on `session`'s connection: `Err`
    /// says why not (SQLite has one writer at a time).
    #[doc(hidden)]
    fn check_independent(_outer: TxMode, _session: &Self::Session) -> Result<(), String> {
        Ok(())
    }

    /// Bound the row-lock waits of an independent writer that runs while
    /// its own context holds a transaction open: if the outer transaction
    /// holds the row, the wait could never end. Runs first in that
    /// independent transaction.
    #[doc(hidden)]
    fn bound_nested_lock_waits(_conn: &mut Self, _timeout: Duration) -> QueryResult<()> {
        Ok(())
    }

    /// Bound every statement of the open transaction to `limit` on the
    /// server (`Some`), or lift that bound again before the connection goes
    /// back to the pool (`None`). Scatter-gather reads use it, so that a
    /// cell's query the caller stopped waiting for is cancelled by its
    /// server and its connection comes back. A backend without such a
    /// setting (SQLite, whose reads wait only for `busy_timeout`) does
    /// nothing.
    #[doc(hidden)]
    fn limit_statement_time(_conn: &mut Self, _limit: Option<Duration>) -> QueryResult<()> {
        Ok(())
    }

    /// The outermost `COMMIT` of a transaction of `mode` that [`begin`](Self::begin)
    /// opened, when it is more than diesel's `COMMIT`: statements (run by
    /// [`run_control`](Self::run_control)) whose first fails if the
    /// transaction is no longer the one that began, so that `COMMIT` then
    /// never runs.
    /// `None` (the default): diesel's `COMMIT`.
    /// `implicit_commit` says a statement of this transaction made the
    /// server commit implicitly, `unread` that one ran SQL the facade
    /// cannot read, which may have committed or rolled back (see
    /// [`implicit_commit_check`](Self::implicit_commit_check)).
    #[doc(hidden)]
    fn checked_commit(
        _mode: TxMode,
        _session: &Self::Session,
        _implicit_commit: bool,
        _unread: bool,
    ) -> Option<&'static str> {
        None
    }

    /// Whether the outermost `COMMIT` without a check also goes through
    /// [`run_control`](Self::run_control) (as `"COMMIT"`) instead of
    /// diesel's `commit_transaction`.
    #[doc(hidden)]
    const OWN_COMMIT: bool = false;

    /// Run one of the facade's own `COMMIT` batches (`"COMMIT"` or one that
    /// [`checked_commit`](Self::checked_commit) returned), stopping at the
    /// first error: by default diesel's `batch_execute`.
    #[doc(hidden)]
    fn run_control(
        conn: &mut Self,
        _session: &mut Self::Session,
        sql: &'static str,
    ) -> QueryResult<()> {
        conn.batch_execute(sql)
    }

    /// Whether `err`, the failure of a [`checked_commit`](Self::checked_commit)
    /// batch, is its check, and what the check found. Read only for that
    /// batch, whose statements are the facade's own, so no data can steer
    /// it.
    #[doc(hidden)]
    fn replaced_at_commit(_err: &diesel::result::Error) -> Option<CommitRefused> {
        None
    }

    /// A test of a statement's SQL text (the beginning of it; the flag says
    /// whether it is complete) for "the server may commit the open
    /// transaction implicitly at this", where
    /// [`checked_commit`](Self::checked_commit) needs to know; `None` (the
    /// default) costs nothing per statement.
    #[doc(hidden)]
    fn implicit_commit_check(_session: &Self::Session) -> Option<ImplicitCheck> {
        None
    }

    /// After a body that hit an error (and handled it) returned `Ok`:
    /// whether the transaction can still commit. PostgreSQL aborts a
    /// transaction at any failed statement outside a savepoint, and then
    /// answers `COMMIT` with a silent `ROLLBACK`; elsewhere a failed
    /// statement leaves the transaction usable.
    #[doc(hidden)]
    fn transaction_usable(_conn: &mut Self) -> QueryResult<()> {
        Ok(())
    }

    /// Upsert `(name, now)` into `locks`, waiting at most `timeout` (the
    /// server default when `None`). Runs inside a write transaction.
    #[doc(hidden)]
    fn upsert_lock(
        conn: &mut Self,
        session: &Self::Session,
        name: &str,
        timeout: Option<Duration>,
    ) -> QueryResult<()>;

    /// Upsert the lock row without waiting: `Ok(false)` if another
    /// transaction holds it. Leaves the transaction usable either way.
    #[doc(hidden)]
    fn try_upsert_lock(conn: &mut Self, session: &Self::Session, name: &str) -> QueryResult<bool>;

    /// Whether `err` says the `locks` table does not exist.
    #[doc(hidden)]
    fn is_missing_table(err: &diesel::result::Error) -> bool;

    /// Run the crate's embedded migrations for this backend.
    #[doc(hidden)]
    fn run_embedded_migrations(conn: &mut Self) -> Result<Vec<String>, Error>;

    /// After a COMMIT on the primary (outside any transaction), the position
    /// a replica must reach to see it; `None` where there are no replicas.
    #[doc(hidden)]
    fn commit_position(conn: &mut Self, session: &Self::Session) -> QueryResult<Option<Position>>;

    /// Whether this replica connection has applied `position`, waiting up to
    /// `timeout` for it (`Duration::ZERO`: look once, without waiting).
    /// [`Applied::Foreign`] for a position this kind of replica cannot
    /// check (another backend's, or a GTID on a Galera node). Runs outside
    /// a transaction.
    #[doc(hidden)]
    fn wait_for_position(
        conn: &mut Self,
        session: &Self::Session,
        position: &Position,
        timeout: Duration,
    ) -> QueryResult<Applied>;

    /// On the primary: whether `position` is ahead of everything it has
    /// committed, i.e. a position from the future that no replica will
    /// reach. Runs outside a transaction.
    #[doc(hidden)]
    fn position_is_ahead(
        conn: &mut Self,
        session: &Self::Session,
        position: &Position,
    ) -> QueryResult<bool>;

    /// How far this replica is behind its primary, `None` if it cannot tell
    /// (replication stopped).
    #[doc(hidden)]
    fn replica_lag(conn: &mut Self, session: &Self::Session) -> QueryResult<Option<Duration>>;
}

/// A connection type whose database lets two write transactions be open at
/// once: `PgConnection`, `MysqlConnection`. Not SQLite, which has one
/// writer at a time, so an independent writer inside a writer there would
/// wait for its own caller and could never commit.
///
/// ```
/// fn two_writers<C: diesel_facade::ConcurrentWriters>() {}
/// # #[cfg(feature = "postgres")]
/// two_writers::<diesel::PgConnection>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` allows one writer at a time: a `#[writer(independent)]` called inside a `#[writer]` could never commit",
    label = "an independent writer inside a writer",
    note = "the outer writer holds the database's only write lock until it ends; call the independent writer before or after the outer writer, or from a `#[reader]` (SQLite in WAL mode, the default)"
)]
pub trait ConcurrentWriters: SupportedConnection {}

/// `timeout` from now, or the latest instant the clock can represent: never
/// a panic, whatever the timeout.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(crate::config::MAX_WAIT))
        .unwrap_or(now)
}

/// Ask `applied` until it says the replica has the position or `timeout`
/// has passed (`Duration::ZERO`: once): the wait of a backend whose server
/// has none built in (PostgreSQL 15, a Galera node). One round trip when
/// the replica already has it, the usual case; then looks again quickly
/// (replay usually catches up within milliseconds), backing off to one
/// look per 10 ms.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn poll_position(
    timeout: Duration,
    mut applied: impl FnMut() -> QueryResult<bool>,
) -> QueryResult<Applied> {
    let deadline = deadline(timeout);
    let mut pause = Duration::from_micros(200);
    loop {
        if applied()? {
            return Ok(Applied::Yes);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Applied::NotYet);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// Whether `C`'s own rules read `err` as a lock timeout: for a backend's
/// lock code, which knows which server raised the error.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn is_lock_timeout<C: SupportedConnection>(err: &diesel::result::Error) -> bool {
    matches!(err, diesel::result::Error::DatabaseError(kind, info)
        if C::read_error(*kind, &**info) == Some(ServerSays::Kind(ErrorKind::LockTimeout)))
}

/// One backend's `SupportedConnection::read_error`.
pub(crate) type ErrorReader =
    fn(DatabaseErrorKind, &dyn DatabaseErrorInformation) -> Option<ServerSays>;

/// Read a database error with every enabled backend's rules, for the places
/// that do not know which backend raised it (`Error::from(diesel::result::Error)`).
/// Sound because each backend's rules only match its own server's fixed
/// wordings, anchored, and no two servers share one (a unit test in
/// `crate::error` checks that).
pub(crate) fn read_error_any(
    kind: DatabaseErrorKind,
    info: &dyn DatabaseErrorInformation,
) -> Option<ServerSays> {
    let readers: &[ErrorReader] = &[
        #[cfg(feature = "postgres")]
        <diesel::PgConnection as SupportedConnection>::read_error,
        #[cfg(feature = "mysql")]
        <diesel::MysqlConnection as SupportedConnection>::read_error,
        #[cfg(feature = "sqlite")]
        <diesel::SqliteConnection as SupportedConnection>::read_error,
    ];
    readers.iter().find_map(|read| read(kind, info))
}

/// Run `migrations` on `conn`, naming each one that ran.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
pub(crate) fn run_migrations<C>(
    conn: &mut C,
    migrations: diesel_migrations::EmbeddedMigrations,
) -> Result<Vec<String>, Error>
where
    C: diesel_migrations::MigrationHarness<C::Backend> + Connection,
{
    conn.run_pending_migrations(migrations)
        .map(|done| done.iter().map(ToString::to_string).collect())
        .map_err(|e| {
            Error::new(
                crate::ErrorKind::Other,
                format!("running the embedded migrations failed: {e}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_for_a_position_is_bounded() {
        let mut looks = 0;
        let once = poll_position(Duration::ZERO, || {
            looks += 1;
            Ok(false)
        });
        assert_eq!((once, looks), (Ok(Applied::NotYet), 1));
        let mut looks = 0;
        let third = poll_position(Duration::from_secs(5), || {
            looks += 1;
            Ok(looks == 3)
        });
        assert_eq!(third, Ok(Applied::Yes));
        let started = Instant::now();
        let never = poll_position(Duration::from_millis(30), || Ok(false));
        assert_eq!(never, Ok(Applied::NotYet));
        assert!(started.elapsed() >= Duration::from_millis(30));
        let forever = poll_position(Duration::MAX, || Ok(true));
        assert_eq!(forever, Ok(Applied::Yes), "no overflow");
    }
}
