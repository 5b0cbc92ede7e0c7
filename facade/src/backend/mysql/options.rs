//! MySQL/MariaDB session options: the `mysql_*` and `wsrep_*` methods of
//! `FacadeBuilder<MysqlConnection>`, their `FacadeConfig` fields and their
//! validation. `after_connect` (in `backend/mysql/mod.rs`) sends them.

use std::time::Duration;

use diesel::MysqlConnection;

use crate::builder::FacadeBuilder;
use crate::config::FacadeConfig;
use crate::error::Error;

/// MySQL's and MariaDB's upper limit for `wait_timeout` (365 days).
const MAX_WAIT_TIMEOUT_SECS: u64 = 31_536_000;

/// The session settings applied to every new MySQL/MariaDB connection.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct MysqlOptions {
    /// `None`: the server's own `sql_mode`.
    pub(super) sql_mode: Option<String>,
    pub(super) wsrep_sync_wait: Option<u8>,
    /// `None`: the default (on a Galera node,
    /// [`GALERA_DEFAULT_WAIT_TIMEOUT`](crate::GALERA_DEFAULT_WAIT_TIMEOUT);
    /// elsewhere the server's); `Some(None)`: the server's own, always.
    pub(super) wait_timeout: Option<Option<Duration>>,
}

impl Default for MysqlOptions {
    fn default() -> Self {
        MysqlOptions {
            sql_mode: Some("TRADITIONAL".to_owned()),
            wsrep_sync_wait: None,
            wait_timeout: None,
        }
    }
}

/// MySQL's and MariaDB's own options: only a facade on `MysqlConnection`
/// offers them.
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
impl FacadeBuilder<MysqlConnection> {
    /// The session `sql_mode` (default `TRADITIONAL`, which makes the
    /// server reject rather than truncate bad data). `None` keeps the
    /// server's. `build` accepts only letters, digits, `_` and `,`.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::MysqlConnection>::builder()
    ///     .writer("mysql://app:secret@db/app")
    ///     .mysql_sql_mode(Some("TRADITIONAL,NO_ENGINE_SUBSTITUTION"))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn mysql_sql_mode(self, mode: Option<&str>) -> Self {
        let mode = mode.map(str::to_owned);
        self.with_options(|o| o.sql_mode = mode)
    }

    /// MariaDB Galera: the session `wsrep_sync_wait` (e.g. `1` for causal
    /// reads on any node), 0 to 15. Unset by default.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::MysqlConnection>::builder()
    ///     .writer("mysql://app:secret@galera-1/app")
    ///     .wsrep_sync_wait(1)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn wsrep_sync_wait(self, level: u8) -> Self {
        self.with_options(|o| o.wsrep_sync_wait = Some(level))
    }

    /// The session `wait_timeout`, after which the server closes a
    /// connection it is waiting on; `None` keeps the server's own (8 hours
    /// by default). `build` accepts 1 second to 365 days.
    ///
    /// Default: on a Galera node (detected at connect time),
    /// [`GALERA_DEFAULT_WAIT_TIMEOUT`](crate::GALERA_DEFAULT_WAIT_TIMEOUT)
    /// (10 s); elsewhere the server's. MariaDB 10.11 was seen here to leave
    /// a brute-force-aborted connection waiting for the client while the
    /// client waited for its reply (MDEV-20172's symptom), forever; with the
    /// bound the server closes it, the client gets `Disconnected`, and
    /// `retry` re-runs the transaction on a fresh connection. The price: a
    /// Galera transaction that stays idle between two statements for longer
    /// is disconnected too, and idle pooled connections closed by the server
    /// are replaced at checkout.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::MysqlConnection>::builder()
    ///     .writer("mysql://app:secret@galera-1/app")
    ///     .mysql_wait_timeout(Duration::from_secs(10))
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn mysql_wait_timeout(self, timeout: impl Into<Option<Duration>>) -> Self {
        let timeout = timeout.into();
        self.with_options(|o| o.wait_timeout = Some(timeout))
    }
}

/// `options` from the MySQL fields of `config`.
pub(super) fn apply_config(options: &mut MysqlOptions, config: &FacadeConfig) {
    if let Some(mode) = &config.mysql_sql_mode {
        options.sql_mode = (!mode.is_empty()).then(|| mode.clone());
    }
    if let Some(level) = config.wsrep_sync_wait {
        options.wsrep_sync_wait = Some(level);
    }
    if let Some(secs) = config.mysql_wait_timeout {
        options.wait_timeout = Some(Some(Duration::from_secs(secs)));
    }
}

/// `sql_mode` is sent inside a quoted string, so it may only hold the
/// characters of mode names; the other two must be in the server's range.
pub(super) fn validate(options: &MysqlOptions) -> Result<(), Error> {
    if let Some(mode) = &options.sql_mode {
        if !mode
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ',')
        {
            return Err(Error::config(format!(
                "mysql_sql_mode `{mode}` may only contain letters, digits, '_' and ','"
            )));
        }
    }
    if let Some(Some(timeout)) = options.wait_timeout {
        // The server's own range for the session `wait_timeout`.
        if !(1..=MAX_WAIT_TIMEOUT_SECS).contains(&timeout.as_secs()) {
            return Err(Error::config(format!(
                "mysql_wait_timeout must be between 1 second and \
                 {MAX_WAIT_TIMEOUT_SECS} seconds (365 days), not {timeout:?}"
            )));
        }
    }
    if let Some(level) = options.wsrep_sync_wait {
        if level > 15 {
            return Err(Error::config(format!(
                "wsrep_sync_wait must be between 0 and 15, not {level}"
            )));
        }
    }
    Ok(())
}
