//! SQLite: `BEGIN IMMEDIATE` writers, `PRAGMA query_only` readers.
//!
//! SQLite has one writer at a time per database file, so a writer that
//! begins `IMMEDIATE` already holds the database's write lock and the lock
//! guard's upsert never waits. `PRAGMA query_only` is a connection setting,
//! so it is switched only when a connection moves between reader and writer
//! use; `BEGIN IMMEDIATE` fails while it is on, which is why readers begin
//! with a plain `BEGIN`.

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection};
use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind};
use diesel::sql_types::Text;
use diesel::{ConnectionError, QueryResult, RunQueryDsl, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{Sealed, ServerSays, SessionState, SupportedConnection, TxMode};
use crate::error::{Error, ErrorKind};
use crate::facade::BackendOptions;
use crate::replica::Position;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");

impl Sealed for SqliteConnection {}

impl SupportedConnection for SqliteConnection {
    const NAME: &'static str = "sqlite";

    fn check_url(url: &str) -> Result<(), String> {
        if url.trim().is_empty() {
            return Err("the SQLite database path is empty".to_owned());
        }
        if url.contains("://") && !url.starts_with("file:") && !url.starts_with("sqlite://") {
            return Err(format!(
                "`{}` looks like a server URL, but this facade's connection type is SQLite: \
                 give a file path such as `app.db`",
                super::redact_url(url)
            ));
        }
        Ok(())
    }

    fn pool_size_limit(url: &str) -> Option<u32> {
        // More than one pooled connection would mean more than one database.
        (url == ":memory:" || url.contains("mode=memory")).then_some(1)
    }

    fn connect_refused(_err: &ConnectionError) -> bool {
        // Opening a file never waits for a server: a path that cannot be
        // opened stays unopenable until someone fixes the configuration.
        true
    }

    /// SQLite's own wordings (`sqlite3_errstr`) for result codes diesel
    /// reports as `Unknown`; they are whole messages, matched exactly.
    fn read_error(
        _kind: DatabaseErrorKind,
        info: &dyn DatabaseErrorInformation,
    ) -> Option<ServerSays> {
        let message = info.message();
        let kind = match message {
            // SQLITE_BUSY: the busy timeout expired.
            "database is locked" => ErrorKind::LockTimeout,
            // SQLITE_LOCKED: a table lock held by another connection of a
            // shared cache ("database table is locked: <table>").
            m if m == "database table is locked" || m.starts_with("database table is locked: ") => {
                ErrorKind::LockTimeout
            }
            // SQLITE_READONLY: `PRAGMA query_only` or a read-only file.
            "attempt to write a readonly database" => ErrorKind::ReadOnlyViolation,
            _ => return None,
        };
        Some(ServerSays::Kind(kind))
    }

    fn after_connect(conn: &mut Self, options: &BackendOptions) -> QueryResult<SessionState> {
        let mut sql = format!(
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = {};",
            options.sqlite_busy_timeout.as_millis(),
            if options.sqlite_foreign_keys {
                "ON"
            } else {
                "OFF"
            },
        );
        if options.sqlite_wal {
            // In-memory databases silently keep their own journal mode.
            sql.push_str(" PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        }
        conn.batch_execute(&sql)?;
        Ok(SessionState {
            query_only: Some(false),
            ..SessionState::default()
        })
    }

    fn begin(conn: &mut Self, mode: TxMode, session: &mut SessionState) -> QueryResult<()> {
        let sql = match (mode, session.query_only) {
            (TxMode::Write, Some(false)) => "BEGIN IMMEDIATE",
            (TxMode::Write, _) => "PRAGMA query_only = OFF; BEGIN IMMEDIATE",
            (TxMode::Read, Some(true)) => "BEGIN",
            (TxMode::Read, _) => "PRAGMA query_only = ON; BEGIN",
        };
        let result = AnsiTransactionManager::begin_transaction_sql(conn, sql);
        // If BEGIN failed (e.g. BUSY) the pragma may or may not have run:
        // forget what we knew so the next transaction sets it again.
        session.query_only = result.is_ok().then_some(mode == TxMode::Read);
        result
    }

    fn upsert_lock(conn: &mut Self, name: &str, _timeout: Option<Duration>) -> QueryResult<()> {
        diesel::sql_query(
            "INSERT INTO locks (id, ts) VALUES (?, CURRENT_TIMESTAMP) \
             ON CONFLICT (id) DO UPDATE SET ts = excluded.ts",
        )
        .bind::<Text, _>(name)
        .execute(conn)
        .map(drop)
    }

    fn try_upsert_lock(conn: &mut Self, name: &str) -> QueryResult<bool> {
        // The writer's BEGIN IMMEDIATE already made it the only writer.
        Self::upsert_lock(conn, name, None).map(|()| true)
    }

    fn is_missing_table(err: &diesel::result::Error) -> bool {
        matches!(err, diesel::result::Error::DatabaseError(_, info)
            if info.message() == "no such table: locks")
    }

    fn run_embedded_migrations(conn: &mut Self) -> Result<Vec<String>, Error> {
        super::run_migrations(conn, MIGRATIONS)
    }

    // SQLite has no replication: a "replica" is just another file, and
    // there is no position to wait for.
    fn commit_position(_: &mut Self, _: &SessionState) -> QueryResult<Option<Position>> {
        Ok(None)
    }

    fn wait_for_position(
        _: &mut Self,
        _: &SessionState,
        _: &Position,
        _: Duration,
    ) -> QueryResult<bool> {
        Ok(true)
    }

    fn replica_lag(_: &mut Self, _: &SessionState) -> QueryResult<Option<Duration>> {
        Ok(Some(Duration::ZERO))
    }
}
