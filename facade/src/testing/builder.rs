//! [`TestDatabaseBuilder`]: the options of a test database, and its
//! generated name.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};

use super::{Provision, TestDatabase, DEFAULT_NAME_PREFIX, MAX_PREFIX_CHARS};
use crate::error::Error;
use crate::redact::redact_url;

/// Configures a [`TestDatabase`]; see [`TestDatabase::builder`].
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::testing::TestDatabase;
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = TestDatabase::<SqliteConnection>::builder("")
///     .name_prefix("orders")
///     .without_facade_migrations()
///     .create()?;
/// assert!(db.name().starts_with("orders_"));
/// # Ok(()) }
/// ```
pub struct TestDatabaseBuilder<C: Provision> {
    admin: String,
    prefix: String,
    facade_migrations: bool,
    _conn: PhantomData<fn() -> C>,
}

impl<C: Provision> fmt::Debug for TestDatabaseBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabaseBuilder")
            .field("backend", &C::NAME)
            .field("admin", &redact_url(&self.admin))
            .field("prefix", &self.prefix)
            .field("facade_migrations", &self.facade_migrations)
            .finish()
    }
}

impl<C: Provision> TestDatabaseBuilder<C> {
    pub(super) fn new(admin: String) -> Self {
        TestDatabaseBuilder {
            admin,
            prefix: DEFAULT_NAME_PREFIX.to_owned(),
            facade_migrations: true,
            _conn: PhantomData,
        }
    }

    /// Start generated names with `prefix` (default
    /// [`DEFAULT_NAME_PREFIX`]): 1 to 30 ASCII lower-case letters, digits
    /// and `_`, beginning with a letter. Anything else is an
    /// [`ErrorKind::Config`](crate::ErrorKind::Config) error at [`create`](Self::create); it is never
    /// quoted into SQL as it is.
    ///
    /// ```
    /// use diesel_facade::{testing::TestDatabase, ErrorKind};
    /// let err = TestDatabase::<diesel::SqliteConnection>::builder("")
    ///     .name_prefix("x; DROP DATABASE prod")
    ///     .create()
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Config);
    /// ```
    pub fn name_prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// Do not run diesel-facade's own migrations (the `locks` table), for
    /// an application that ships them in its own migrations.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::builder("")
    ///     .without_facade_migrations()
    ///     .create()?;
    /// # Ok(()) }
    /// ```
    pub fn without_facade_migrations(mut self) -> Self {
        self.facade_migrations = false;
        self
    }

    /// Create the database and run diesel-facade's migrations on it. On
    /// failure nothing is left behind: a database already created is
    /// dropped again.
    ///
    /// Errors: [`ErrorKind::Config`](crate::ErrorKind::Config) for a bad admin URL or name prefix, or
    /// a server that refuses the credentials; `Disconnected` for a server
    /// that does not answer; the server's error if it cannot create the
    /// database. No message contains the admin URL's password.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::builder("")
    ///     .create()?;
    /// assert!(std::path::Path::new(db.url()).exists());
    /// # Ok(()) }
    /// ```
    pub fn create(self) -> Result<TestDatabase<C>, Error> {
        let name = unique_name(&self.prefix)?;
        let url = C::create_test_database(&self.admin, &name)?;
        tracing::debug!(database = %name, backend = C::NAME, "created a test database");
        let db = TestDatabase {
            admin: self.admin,
            name,
            url,
            _conn: PhantomData,
        };
        if self.facade_migrations {
            let mut conn = db.connect()?;
            C::run_embedded_migrations(&mut conn).map_err(|e| db.migration_error(&e))?;
        }
        Ok(db)
    }
}

/// Check `prefix` and add the process id, a per-process counter and a
/// random part.
fn unique_name(prefix: &str) -> Result<String, Error> {
    let valid = (1..=MAX_PREFIX_CHARS).contains(&prefix.len())
        && prefix.starts_with(|c: char| c.is_ascii_lowercase())
        && prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(Error::config(format!(
            "test database name prefix {prefix:?} is not 1 to {MAX_PREFIX_CHARS} ASCII \
             lower-case letters, digits and `_` beginning with a letter"
        )));
    }
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(format!(
        "{prefix}_{}_{n}_{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_fit_every_server() {
        let longest = "a".repeat(MAX_PREFIX_CHARS);
        let a = unique_name(&longest).unwrap();
        let b = unique_name(&longest).unwrap();
        assert_ne!(a, b);
        // PostgreSQL keeps 63 bytes of a name, MySQL 64: with the largest
        // pid and counter the name still fits.
        let worst = format!("{longest}_{}_{}_{:08x}", u32::MAX, u32::MAX, u32::MAX);
        assert!(worst.len() <= 63, "{}", worst.len());
        assert!(a.starts_with(&format!("{longest}_{}_", std::process::id())));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
    }

    #[test]
    fn prefixes_that_are_not_plain_identifiers_are_refused() {
        let too_long = "a".repeat(MAX_PREFIX_CHARS + 1);
        for bad in [
            "", "1st", "_x", "Test", "a-b", "a b", "a\"b", "a`b", "é", &too_long,
        ] {
            let err = unique_name(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad:?}");
        }
        assert!(unique_name("a").is_ok());
        assert!(unique_name("orders_v2").is_ok());
    }
}
