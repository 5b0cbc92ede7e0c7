//! Where a builder's settings come from besides its methods: nowhere
//! (`Facade::builder`), the environment (`Facade::from_env`) or a
//! deserialized [`FacadeConfig`] (`Facade::from_config`), whose
//! backend-specific fields each backend reads itself
//! (`SupportedConnection::apply_config`).

use std::time::Duration;

use super::FacadeBuilder;
use crate::backend::SupportedConnection;
use crate::config::{split_url_list, FacadeConfig, MAX_WAIT};
use crate::error::Error;
use crate::facade::Facade;

impl<C: SupportedConnection> Facade<C> {
    /// Start configuring a facade.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn builder() -> FacadeBuilder<C> {
        FacadeBuilder::default()
    }

    /// Build from `DATABASE_URL` and, if set, `DATABASE_REPLICA_URLS`
    /// (comma-separated), with default options.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// std::env::set_var("DATABASE_URL", ":memory:");
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::from_env()?;
    /// # Ok(()) }
    /// ```
    pub fn from_env() -> Result<Self, Error> {
        let writer = std::env::var("DATABASE_URL").map_err(|_| {
            Error::config(
                "DATABASE_URL is not set (or not UTF-8): set it to the writer database's URL",
            )
        })?;
        let mut builder = Facade::builder().writer(writer);
        if let Ok(replicas) = std::env::var("DATABASE_REPLICA_URLS") {
            for url in split_url_list(&replicas) {
                builder = builder.replica(url);
            }
        }
        builder.build()
    }

    /// Build from a deserialized [`FacadeConfig`].
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let config = diesel_facade::FacadeConfig {
    ///     connection: ":memory:".into(),
    ///     ..Default::default()
    /// };
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::from_config(&config)?;
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &FacadeConfig) -> Result<Self, Error> {
        FacadeBuilder::from_config(config)?.build()
    }
}

impl<C: SupportedConnection> FacadeBuilder<C> {
    fn from_config(config: &FacadeConfig) -> Result<Self, Error> {
        let mut builder = FacadeBuilder::default().writer(config.connection.clone());
        for replica in &config.replica_connections {
            builder = builder.replica(replica.clone());
        }
        if let Some(size) = config.max_pool_size {
            builder = builder.max_pool_size(size);
        }
        if let Some(secs) = config.pool_timeout {
            // Negative, NaN and out-of-range numbers do not convert; zero
            // and values above the maximum are rejected by `build`.
            builder.pool.pool_timeout = Duration::try_from_secs_f64(secs).map_err(|_| {
                Error::config(format!(
                    "pool_timeout must be a number of seconds greater than 0 and at most {}, \
                     not {secs}",
                    MAX_WAIT.as_secs()
                ))
            })?;
        }
        if let Some(secs) = config.connection_recycle_time {
            builder.pool.connection_recycle_time = (secs > 0).then(|| Duration::from_secs(secs));
        }
        if let Some(field) = config
            .backend_fields_set()
            .find(|field| !C::CONFIG_FIELDS.contains(field))
        {
            return Err(Error::config(format!(
                "the configuration sets `{field}`, which is not an option of this facade's \
                 backend ({}): remove it, or give it to a facade of the backend it belongs to",
                C::NAME
            )));
        }
        C::apply_config(&mut builder.options, config);
        if let Some(n) = config.max_retries {
            builder.retry.max_retries = n;
        }
        if let Some(secs) = config.max_retry_duration {
            builder.retry.max_duration = Duration::try_from_secs_f64(secs).map_err(|_| {
                Error::config(format!(
                    "max_retry_duration must be a number of seconds from 0 to {}, not {secs}",
                    MAX_WAIT.as_secs()
                ))
            })?;
        }
        Ok(builder)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::config::RetrySettings;
    use crate::error::ErrorKind;

    /// A configuration may only set the backend-specific fields of the
    /// facade's own backend.
    #[test]
    fn another_backends_config_field_is_a_config_error() {
        for json in [
            r#"{"connection": ":memory:", "application_name": "x"}"#,
            r#"{"connection": ":memory:", "wsrep_sync_wait": 1}"#,
            r#"{"connection": ":memory:", "mysql_wait_timeout": 5}"#,
            r#"{"connection": ":memory:", "mysql_sql_mode": ""}"#,
            r#"{"connection": ":memory:", "pg_lock_stamp": false}"#,
        ] {
            let config: FacadeConfig = serde_json::from_str(json).unwrap();
            let err = Facade::<diesel::SqliteConnection>::from_config(&config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{json}: {err}");
            assert!(err.message().contains("sqlite"), "{json}: {err}");
        }
        let own: FacadeConfig = serde_json::from_str(
            r#"{"connection": ":memory:", "sqlite_wal": false, "sqlite_foreign_keys": false,
                "sqlite_busy_timeout_ms": 100}"#,
        )
        .unwrap();
        Facade::<diesel::SqliteConnection>::from_config(&own).unwrap();
    }

    /// Every backend-specific field of `FacadeConfig` belongs to exactly one
    /// backend.
    #[cfg(all(feature = "postgres", feature = "mysql"))]
    #[test]
    fn each_backend_specific_config_field_has_one_backend() {
        use diesel::{MysqlConnection, PgConnection, SqliteConnection};
        let every: FacadeConfig = serde_json::from_str(
            r#"{"connection": "", "sqlite_foreign_keys": true, "sqlite_wal": true,
                "sqlite_busy_timeout_ms": 1, "mysql_sql_mode": "", "wsrep_sync_wait": 0,
                "mysql_wait_timeout": 1, "application_name": "", "pg_lock_stamp": false}"#,
        )
        .unwrap();
        let mut owned: Vec<&str> = [
            SqliteConnection::CONFIG_FIELDS,
            PgConnection::CONFIG_FIELDS,
            MysqlConnection::CONFIG_FIELDS,
        ]
        .concat();
        let mut set: Vec<&str> = every.backend_fields_set().collect();
        owned.sort_unstable();
        set.sort_unstable();
        assert_eq!(owned, set);
        let err = Facade::<PgConnection>::from_config(&FacadeConfig {
            connection: "postgres://u:p@127.0.0.1:1/db".into(),
            sqlite_wal: Some(false),
            ..FacadeConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(err.message().contains("`sqlite_wal`"), "{err}");
    }

    #[test]
    fn max_retry_duration_comes_from_the_config() {
        let config = FacadeConfig {
            connection: ":memory:".into(),
            max_retry_duration: Some(0.5),
            ..FacadeConfig::default()
        };
        let builder = FacadeBuilder::<diesel::SqliteConnection>::from_config(&config)
            .expect("a valid config");
        assert_eq!(builder.retry.max_duration, Duration::from_millis(500));
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            let config = FacadeConfig {
                connection: ":memory:".into(),
                max_retry_duration: Some(bad),
                ..FacadeConfig::default()
            };
            let err = match FacadeBuilder::<diesel::SqliteConnection>::from_config(&config) {
                Ok(builder) => builder.build().map(drop).expect_err("out of range"),
                Err(err) => err,
            };
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}: {err}");
        }
        assert_eq!(
            RetrySettings::default().max_duration,
            Duration::from_secs(60)
        );
    }
}
