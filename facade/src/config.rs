//! What can be configured, and the limits it is checked against:
//! [`FacadeConfig`] (the deserializable form, named after oslo.db's
//! `[database]` options), the retry settings, [`MAX_WAIT`] (the bound of
//! every configured wait), and how a comma-separated list of URLs is split.
//!
//! `builder/sources.rs` turns a configuration into a
//! [`Facade`](crate::Facade); each backend reads its own fields
//! (`SupportedConnection::apply_config`) and checks its own options.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::redact::redact_url;

/// The longest any configured wait may be: the pool and replica timeouts,
/// SQLite's busy timeout, retry backoffs and a lock guard's timeout. A
/// longer one is a configuration mistake (a request that waits a day has
/// failed), and `Instant::now() + Duration::MAX` would panic.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// The URLs of a comma-separated list. A comma inside a server URL's
/// authority (`scheme://` up to the next `/`, `?` or `#`) belongs to that
/// URL: a password with a comma, a multi-host PostgreSQL URL
/// (`postgres://h1,h2/db`). Every other comma separates two entries.
pub(crate) fn split_url_list(list: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut start = 0;
    let mut in_authority = false;
    let mut i = 0;
    let bytes = list.as_bytes();
    while i < bytes.len() {
        if list[i..].starts_with("://") {
            in_authority = true;
            i += 3;
            continue;
        }
        match bytes[i] {
            b'/' | b'?' | b'#' => in_authority = false,
            b',' if !in_authority => {
                urls.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    urls.push(&list[start..]);
    urls.into_iter()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// A `Config` error unless `value` is at most [`MAX_WAIT`] (and, unless
/// `zero_ok`, more than zero).
pub(crate) fn check_wait(option: &str, value: Duration, zero_ok: bool) -> Result<(), Error> {
    let too_small = !zero_ok && value.is_zero();
    if too_small || value > MAX_WAIT {
        let lower = if zero_ok {
            "at least 0"
        } else {
            "greater than 0"
        };
        return Err(Error::config(format!(
            "{option} must be {lower} and at most {MAX_WAIT:?} (24 hours), not {value:?}"
        )));
    }
    Ok(())
}

/// How `#[writer(retry)]` backs off between attempts, and when it stops.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetrySettings {
    pub(crate) max_retries: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
    /// No retry starts later than this after the first attempt began.
    pub(crate) max_duration: Duration,
}

impl RetrySettings {
    /// A `Config` error for a backoff or duration that could never end.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_wait("retry_backoff initial", self.initial_backoff, true)?;
        check_wait("retry_backoff max", self.max_backoff, true)?;
        check_wait("max_retry_duration", self.max_duration, true)
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            max_retries: 10,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(500),
            max_duration: Duration::from_secs(60),
        }
    }
}

/// Deserializable configuration, named after oslo.db's `[database]` options.
/// Every field but `connection` is optional; unknown fields are rejected, so
/// a misspelt option is an error rather than silently ignored.
///
/// The `sqlite_*` fields are SQLite's, `mysql_*` and `wsrep_sync_wait`
/// MySQL/MariaDB's and `application_name` and `pg_lock_stamp` PostgreSQL's, like the builder
/// methods of the same names (which only a facade of that backend has).
/// [`Facade::from_config`](crate::Facade::from_config) with another backend's field set is an
/// [`ErrorKind::Config`](crate::ErrorKind::Config) error naming the field, for the same reason: an
/// option the facade would silently ignore.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config: diesel_facade::FacadeConfig = serde_json::from_str(r#"{
///     "connection": ":memory:",
///     "max_pool_size": 2,
///     "pool_timeout": 2.5,
///     "sqlite_busy_timeout_ms": 1000
/// }"#)?;
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::from_config(&config)?;
/// assert!(serde_json::from_str::<diesel_facade::FacadeConfig>(r#"{"conection": "x"}"#).is_err());
/// # let _ = db;
///
/// let mysql_only: diesel_facade::FacadeConfig = serde_json::from_str(
///     r#"{"connection": ":memory:", "mysql_sql_mode": "TRADITIONAL"}"#,
/// )?;
/// let err = diesel_facade::Facade::<diesel::SqliteConnection>::from_config(&mysql_only)
///     .unwrap_err();
/// assert_eq!(err.kind(), diesel_facade::ErrorKind::Config);
/// assert!(err.message().contains("`mysql_sql_mode`"));
/// # Ok(()) }
/// ```
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FacadeConfig {
    /// The writer database URL (oslo.db `connection`).
    pub connection: String,
    /// Replica URLs (oslo.db `slave_connection`, here a list).
    pub replica_connections: Vec<String>,
    /// Connections per pool (oslo.db `max_pool_size`).
    pub max_pool_size: Option<u32>,
    /// Seconds to wait for a pooled connection (oslo.db `pool_timeout`).
    pub pool_timeout: Option<f64>,
    /// Seconds after which a connection is replaced; 0 disables
    /// (oslo.db `connection_recycle_time`).
    pub connection_recycle_time: Option<u64>,
    /// SQLite only: `PRAGMA foreign_keys` (oslo.db `sqlite_fk`).
    pub sqlite_foreign_keys: Option<bool>,
    /// SQLite only: write-ahead logging.
    pub sqlite_wal: Option<bool>,
    /// SQLite only: `busy_timeout` in milliseconds.
    pub sqlite_busy_timeout_ms: Option<u64>,
    /// MySQL/MariaDB only: `sql_mode` (oslo.db `mysql_sql_mode`); empty
    /// keeps the server's.
    pub mysql_sql_mode: Option<String>,
    /// MySQL/MariaDB (Galera) only: `wsrep_sync_wait` (oslo.db
    /// `mysql_wsrep_sync_wait`).
    pub wsrep_sync_wait: Option<u8>,
    /// MySQL/MariaDB only: the session `wait_timeout` in seconds.
    pub mysql_wait_timeout: Option<u64>,
    /// PostgreSQL only: `application_name`.
    pub application_name: Option<String>,
    /// PostgreSQL only: whether `ctx.lock` writes the lock row's `ts` on
    /// every take (see
    /// [`FacadeBuilder::pg_lock_stamp`](crate::FacadeBuilder::pg_lock_stamp)).
    pub pg_lock_stamp: Option<bool>,
    /// Default retries for `#[writer(retry)]` (oslo.db `db_max_retries`).
    pub max_retries: Option<u32>,
    /// Seconds after the first attempt of `#[writer(retry)]` past which no
    /// retry starts (see
    /// [`FacadeBuilder::max_retry_duration`](crate::FacadeBuilder::max_retry_duration)).
    pub max_retry_duration: Option<f64>,
}

impl FacadeConfig {
    /// The backend-specific fields this configuration sets: each must be
    /// one of the facade's backend (`SupportedConnection::CONFIG_FIELDS`).
    pub(crate) fn backend_fields_set(&self) -> impl Iterator<Item = &'static str> {
        [
            ("sqlite_foreign_keys", self.sqlite_foreign_keys.is_some()),
            ("sqlite_wal", self.sqlite_wal.is_some()),
            (
                "sqlite_busy_timeout_ms",
                self.sqlite_busy_timeout_ms.is_some(),
            ),
            ("mysql_sql_mode", self.mysql_sql_mode.is_some()),
            ("wsrep_sync_wait", self.wsrep_sync_wait.is_some()),
            ("mysql_wait_timeout", self.mysql_wait_timeout.is_some()),
            ("application_name", self.application_name.is_some()),
            ("pg_lock_stamp", self.pg_lock_stamp.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, set)| set.then_some(field))
    }
}

impl fmt::Debug for FacadeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacadeConfig")
            .field("connection", &redact_url(&self.connection))
            .field(
                "replica_connections",
                &self
                    .replica_connections
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("max_pool_size", &self.max_pool_size)
            .field("pool_timeout", &self.pool_timeout)
            .field("connection_recycle_time", &self.connection_recycle_time)
            .field("sqlite_foreign_keys", &self.sqlite_foreign_keys)
            .field("sqlite_wal", &self.sqlite_wal)
            .field("sqlite_busy_timeout_ms", &self.sqlite_busy_timeout_ms)
            .field("mysql_sql_mode", &self.mysql_sql_mode)
            .field("wsrep_sync_wait", &self.wsrep_sync_wait)
            .field("mysql_wait_timeout", &self.mysql_wait_timeout)
            .field("application_name", &self.application_name)
            .field("pg_lock_stamp", &self.pg_lock_stamp)
            .field("max_retries", &self.max_retries)
            .field("max_retry_duration", &self.max_retry_duration)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_lists_split_only_before_a_scheme() {
        assert_eq!(
            split_url_list("postgres://u:Pa55,word9@h/db, postgres://u:pw@h2,h3/db ,"),
            ["postgres://u:Pa55,word9@h/db", "postgres://u:pw@h2,h3/db"]
        );
        assert_eq!(split_url_list(""), Vec::<&str>::new());
        assert_eq!(split_url_list("a.db"), ["a.db"]);
        assert_eq!(
            split_url_list(":memory:, :memory:"),
            [":memory:", ":memory:"]
        );
        assert_eq!(
            split_url_list("mysql://u:p@h1/db,mysql://u:p@h2/db"),
            ["mysql://u:p@h1/db", "mysql://u:p@h2/db"]
        );
    }
}
