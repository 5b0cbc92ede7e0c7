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

use super::{Sealed, ServerSays, SupportedConnection, TxMode};
use crate::builder::FacadeBuilder;
use crate::config::{check_wait, FacadeConfig};
use crate::error::{Error, ErrorKind};
use crate::replica::{Applied, Position};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

#[derive(diesel::QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = Text)]
    journal_mode: String,
}

/// Where an SQLite URL keeps its data, as `sqlite3_open_v2` with
/// `SQLITE_OPEN_URI` (diesel's flags) reads it.
#[derive(Debug, PartialEq, Eq)]
enum Storage {
    File,
    /// One database per connection: `:memory:`, `file::memory:`,
    /// `file:x?mode=memory`, an empty `file:` path (a temporary database).
    PrivateMemory,
    /// One database per process, shared by every connection that opens it.
    SharedMemory,
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn storage(url: &str) -> Storage {
    if url == ":memory:" {
        return Storage::PrivateMemory;
    }
    // diesel rewrites a `sqlite://` prefix to `file:`.
    let uri = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if starts_with_ignore_case(url, "file:") {
        &url[5..]
    } else {
        return Storage::File;
    };
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let query = query.split('#').next().unwrap_or(query);
    let path = path.split('#').next().unwrap_or(path);
    // `file://host/path`: the authority is dropped (it must be empty or
    // `localhost`).
    let path = match path.strip_prefix("//") {
        Some(rest) => rest.find('/').map_or("", |slash| &rest[slash..]),
        None => path,
    };
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    };
    let shared_cache = param("cache") == Some("shared");
    if param("vfs") == Some("memdb") {
        return if path.starts_with('/') {
            Storage::SharedMemory
        } else {
            Storage::PrivateMemory
        };
    }
    if path == ":memory:" || param("mode") == Some("memory") {
        return if shared_cache {
            Storage::SharedMemory
        } else {
            Storage::PrivateMemory
        };
    }
    if path.is_empty() {
        // A temporary database, private to its connection.
        return Storage::PrivateMemory;
    }
    Storage::File
}

/// SQLite's session options, applied to every new connection; set with the
/// `sqlite_*` methods of `FacadeBuilder<SqliteConnection>` below.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    foreign_keys: bool,
    wal: bool,
    busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            foreign_keys: true,
            wal: true,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// What the facade knows about one SQLite connection.
#[doc(hidden)]
#[derive(Debug)]
pub struct SqliteSession {
    /// Whether `PRAGMA query_only` is currently on for this connection.
    /// Toggled only when the transaction mode changes, so a run of readers
    /// pays for it once. `None` when unknown (after a failed BEGIN), which
    /// forces the pragma.
    query_only: Option<bool>,
    /// Whether the database runs in WAL mode, where a reader does not keep
    /// a writer on another connection from committing.
    wal: bool,
}

/// SQLite's own options: only a facade on `SqliteConnection` offers them.
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
impl FacadeBuilder<SqliteConnection> {
    /// Enforce foreign keys (`PRAGMA foreign_keys`, default on).
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .sqlite_foreign_keys(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn sqlite_foreign_keys(self, on: bool) -> Self {
        self.with_options(|o| o.foreign_keys = on)
    }

    /// Use write-ahead logging with `synchronous = NORMAL` (default on), so
    /// readers never block the writer.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .sqlite_wal(false)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn sqlite_wal(self, on: bool) -> Self {
        self.with_options(|o| o.wal = on)
    }

    /// How long a statement waits for another connection's write lock
    /// (`PRAGMA busy_timeout`, default 5 s). `build` rejects anything above
    /// 24 hours with [`ErrorKind::Config`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .sqlite_busy_timeout(Duration::from_millis(500))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn sqlite_busy_timeout(self, timeout: Duration) -> Self {
        self.with_options(|o| o.busy_timeout = timeout)
    }
}

impl Sealed for SqliteConnection {}

impl SupportedConnection for SqliteConnection {
    const NAME: &'static str = "sqlite";
    const CONFIG_FIELDS: &'static [&'static str] = &[
        "sqlite_foreign_keys",
        "sqlite_wal",
        "sqlite_busy_timeout_ms",
    ];

    type Session = SqliteSession;
    type Options = SqliteOptions;

    fn apply_config(options: &mut SqliteOptions, config: &FacadeConfig) {
        if let Some(on) = config.sqlite_foreign_keys {
            options.foreign_keys = on;
        }
        if let Some(on) = config.sqlite_wal {
            options.wal = on;
        }
        if let Some(ms) = config.sqlite_busy_timeout_ms {
            options.busy_timeout = Duration::from_millis(ms);
        }
    }

    fn validate_options(options: &SqliteOptions) -> Result<(), Error> {
        check_wait("sqlite_busy_timeout", options.busy_timeout, true)
    }

    fn check_url(url: &str) -> Result<(), String> {
        if url.trim().is_empty() {
            return Err("the SQLite database path is empty".to_owned());
        }
        if starts_with_ignore_case(url, "sqlite:") && !url.starts_with("sqlite://") {
            return Err(format!(
                "`{}` would open a file of that name: diesel reads only `sqlite://` as a URL \
                 prefix. Write `:memory:` (or `sqlite://:memory:`) for an in-memory database, \
                 or a path such as `app.db`",
                crate::redact::redact_url(url)
            ));
        }
        if url.contains("://") && !url.starts_with("file:") && !url.starts_with("sqlite://") {
            return Err(format!(
                "`{}` looks like a server URL, but this facade's connection type is SQLite: \
                 give a file path such as `app.db`",
                crate::redact::redact_url(url)
            ));
        }
        Ok(())
    }

    /// A private in-memory (or temporary) database exists once per
    /// connection, so its pool holds one connection; a shared-cache or
    /// `memdb` one (`file::memory:?cache=shared`,
    /// `file:name?mode=memory&cache=shared`, `file:/name?vfs=memdb`) is one
    /// database for every connection of the process and is not limited.
    fn pool_size_limit(url: &str) -> Option<u32> {
        (storage(url) == Storage::PrivateMemory).then_some(1)
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
            "cannot commit - no transaction is active" => return Some(ServerSays::NoTransaction),
            _ => return None,
        };
        Some(ServerSays::Kind(kind))
    }

    fn after_connect(conn: &mut Self, options: &SqliteOptions) -> QueryResult<SqliteSession> {
        let mut sql = format!(
            "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = {};",
            options.busy_timeout.as_millis(),
            if options.foreign_keys { "ON" } else { "OFF" },
        );
        if options.wal {
            // In-memory databases silently keep their own journal mode.
            sql.push_str(" PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        }
        conn.batch_execute(&sql)?;
        let wal = diesel::sql_query("PRAGMA journal_mode")
            .get_result::<JournalMode>(conn)?
            .journal_mode
            .eq_ignore_ascii_case("wal");
        Ok(SqliteSession {
            query_only: Some(false),
            wal,
        })
    }

    fn check_independent(outer: TxMode, session: &SqliteSession) -> Result<(), String> {
        match outer {
            TxMode::Write => Err("SQLite allows one writer at a time: an independent writer \
                 inside a writer would wait for its own caller's write lock and could never \
                 commit; run it before or after the writer"
                .to_owned()),
            TxMode::Read if !session.wal => {
                Err("this SQLite database is not in WAL mode, so \
                 the enclosing reader's lock keeps an independent writer from committing; \
                 enable WAL (`sqlite_wal(true)`, the default) or run the writer outside the reader"
                    .to_owned())
            }
            TxMode::Read => Ok(()),
        }
    }

    fn begin(conn: &mut Self, mode: TxMode, session: &mut SqliteSession) -> QueryResult<()> {
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

    fn upsert_lock(
        conn: &mut Self,
        _: &Self::Session,
        name: &str,
        _timeout: Option<Duration>,
    ) -> QueryResult<()> {
        diesel::sql_query(
            "INSERT INTO locks (id, ts) VALUES (?, CURRENT_TIMESTAMP) \
             ON CONFLICT (id) DO UPDATE SET ts = excluded.ts",
        )
        .bind::<Text, _>(name)
        .execute(conn)
        .map(drop)
    }

    fn try_upsert_lock(conn: &mut Self, session: &Self::Session, name: &str) -> QueryResult<bool> {
        // The writer's BEGIN IMMEDIATE already made it the only writer.
        Self::upsert_lock(conn, session, name, None).map(|()| true)
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
    fn commit_position(_: &mut Self, _: &SqliteSession) -> QueryResult<Option<Position>> {
        Ok(None)
    }

    fn wait_for_position(
        _: &mut Self,
        _: &SqliteSession,
        _: &Position,
        _: Duration,
    ) -> QueryResult<Applied> {
        Ok(Applied::Yes)
    }

    fn position_is_ahead(_: &mut Self, _: &SqliteSession, _: &Position) -> QueryResult<bool> {
        Ok(false)
    }

    fn replica_lag(_: &mut Self, _: &SqliteSession) -> QueryResult<Option<Duration>> {
        Ok(Some(Duration::ZERO))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_forms_are_recognised() {
        for url in [
            ":memory:",
            "file::memory:",
            "FILE::memory:",
            "sqlite://:memory:",
            "file:app?mode=memory",
            "file:app?mode=memory&cache=private",
            "file:",
            "file:?cache=shared",
            "file:x?vfs=memdb",
        ] {
            assert_eq!(storage(url), Storage::PrivateMemory, "{url}");
            assert_eq!(SqliteConnection::pool_size_limit(url), Some(1), "{url}");
        }
        for url in [
            "file::memory:?cache=shared",
            "sqlite://:memory:?cache=shared",
            "file:app?mode=memory&cache=shared",
            "file:/app?vfs=memdb",
        ] {
            assert_eq!(storage(url), Storage::SharedMemory, "{url}");
            assert_eq!(SqliteConnection::pool_size_limit(url), None, "{url}");
        }
        for url in [
            "app.db",
            "/tmp/mode=memory.db",
            "file:app.db",
            "file:///tmp/app.db?mode=rwc",
            "file://localhost/tmp/app.db",
            "sqlite://app.db",
        ] {
            assert_eq!(storage(url), Storage::File, "{url}");
        }
    }

    #[test]
    fn sqlx_style_urls_are_rejected() {
        let err = SqliteConnection::check_url("sqlite::memory:").unwrap_err();
        assert!(err.contains(":memory:"), "{err}");
        assert!(SqliteConnection::check_url("sqlite:app.db").is_err());
        assert!(SqliteConnection::check_url("sqlite://app.db").is_ok());
    }
}
