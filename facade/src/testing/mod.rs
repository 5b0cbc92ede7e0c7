//! Throw-away databases for tests (feature `testing`), as oslo.db's test
//! fixtures provision them: [`TestDatabase`] creates a uniquely named
//! database on a PostgreSQL or MySQL/MariaDB server (a temporary file for
//! SQLite), runs diesel-facade's migrations and the application's, and
//! drops it again when it goes out of scope, also while a test panics.
//!
//! Its [`transactional_facade`](TestDatabase::transactional_facade) hands
//! each test a [`Facade`] whose one connection lives inside a test
//! transaction that is never committed: the facade's outermost `BEGIN`
//! becomes a `SAVEPOINT`, its `COMMIT` a `RELEASE SAVEPOINT` and its
//! `ROLLBACK` a `ROLLBACK TO SAVEPOINT`, and everything is rolled back when
//! the facade's last clone is dropped. Tests running in parallel on one
//! database then never see each other's writes. `docs/testing.md` lists
//! what behaves differently in that mode.
//!
//! Invariants: a database name is generated here (a validated prefix, the
//! process id, a counter and a random part) and never comes from user text
//! unchecked; dropping never panics (a failure is logged with `tracing`);
//! the admin URL's password appears in no error, `Debug` output or log.
//! Each backend's SQL is in its own file (`sqlite.rs`, `pg.rs`,
//! `mysql.rs`), behind [`Provision`].

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use diesel::migration::MigrationSource;

use crate::backend::SupportedConnection;
use crate::builder::FacadeBuilder;
use crate::error::{Error, ErrorKind};
use crate::facade::Facade;
use crate::redact::{redact_url, Secrets};

pub use builder::TestDatabaseBuilder;

mod builder;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

/// How the facade sends its own `BEGIN` and `COMMIT` statements on
/// MySQL/MariaDB: each as a cached prepared statement while `prepared`
/// holds, and from the first one the server will not prepare, the rest as
/// one batch (clearing `prepared`). For the test suite; not a public API.
#[doc(hidden)]
#[cfg(feature = "mysql")]
pub fn mysql_control_statements(
    conn: &mut diesel::MysqlConnection,
    prepared: &mut bool,
    statements: &[&'static str],
) -> diesel::QueryResult<()> {
    crate::backend::mysql::control::run(conn, prepared, statements)
}

/// The prefix of generated database names unless
/// [`TestDatabaseBuilder::name_prefix`] sets another.
///
/// ```
/// assert_eq!(diesel_facade::testing::DEFAULT_NAME_PREFIX, "facade_test");
/// ```
pub const DEFAULT_NAME_PREFIX: &str = "facade_test";

/// The longest name prefix: the generated part adds at most 30 characters,
/// and PostgreSQL names hold 63.
const MAX_PREFIX_CHARS: usize = 30;

/// A backend on which [`TestDatabase`] can create and drop databases:
/// `SqliteConnection`, `PgConnection` and `MysqlConnection` (with their
/// features). The methods are for [`TestDatabase`] only.
///
/// ```
/// fn provisions<C: diesel_facade::testing::Provision>() {}
/// provisions::<diesel::SqliteConnection>();
/// ```
#[diagnostic::on_unimplemented(
    message = "diesel-facade cannot create test databases for `{Self}`",
    note = "use `diesel::SqliteConnection`, `diesel::PgConnection` or `diesel::MysqlConnection`"
)]
pub trait Provision: SupportedConnection {
    /// Create the database `name` (already validated: ASCII lower-case
    /// letters, digits and `_`) where `admin` says, and return its URL.
    #[doc(hidden)]
    fn create_test_database(admin: &str, name: &str) -> Result<String, Error>;

    /// Drop it, closing any session still connected to it. `Ok` if it is
    /// already gone.
    #[doc(hidden)]
    fn drop_test_database(admin: &str, name: &str, url: &str) -> Result<(), Error>;

    /// Run `migrations` on `conn`, naming each one that ran.
    #[doc(hidden)]
    fn run_migration_source<M: MigrationSource<Self::Backend>>(
        conn: &mut Self,
        migrations: M,
    ) -> Result<Vec<String>, Error>;
}

/// A connection to a test server's admin URL, with a password-free error
/// when there is none.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
fn admin_connection<C: SupportedConnection>(admin: &str) -> Result<C, Error> {
    let secrets = Secrets::of(admin);
    C::check_url(admin)
        .map_err(|why| Error::config(format!("bad test server URL: {}", secrets.scrub(&why))))?;
    C::establish(admin).map_err(|e| {
        let refused = C::connect_refused(&e);
        let cause = Error::from(e);
        let message = format!(
            "could not connect to the test server {}: {}",
            redact_url(admin),
            secrets.scrub(cause.message().trim_end())
        );
        if refused {
            Error::config(message)
        } else {
            Error::new(cause.kind(), message)
        }
    })
}

/// `err`, with what the facade was doing on the test server `admin` and no
/// secret of its URL.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
fn on_server(admin: &str, doing: &str, err: diesel::result::Error) -> Error {
    let err = Error::from(err);
    Error::new(
        err.kind(),
        format!(
            "{doing} on the test server {} failed: {}",
            redact_url(admin),
            Secrets::of(admin).scrub(err.message())
        ),
    )
}

/// Run `migrations` on `conn`: each backend's
/// [`Provision::run_migration_source`].
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code)
)]
fn run_source<C, M>(conn: &mut C, migrations: M) -> Result<Vec<String>, Error>
where
    C: diesel_migrations::MigrationHarness<C::Backend> + diesel::Connection,
    M: MigrationSource<C::Backend>,
{
    conn.run_pending_migrations(migrations)
        .map(|done| done.iter().map(ToString::to_string).collect())
        .map_err(|e| Error::new(ErrorKind::Other, format!("a migration failed: {e}")))
}

/// `url` (an admin URL) with its database replaced by `name`. A `dbname`
/// query parameter goes too: libpq would read it over the path, and the
/// tests would use the admin URL's database instead of their own. The other
/// parameters are kept as they are spelt (libpq decodes `%20`, not `+`).
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn url_of_database(admin: &str, name: &str) -> Result<String, Error> {
    let mut url = url::Url::parse(admin)
        .map_err(|e| Error::config(format!("bad test server URL `{}`: {e}", redact_url(admin))))?;
    url.set_path(&format!("/{name}"));
    if let Some(query) = url.query() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                !url::form_urlencoded::parse(key.as_bytes()).any(|(key, _)| key == "dbname")
            })
            .collect();
        let kept = kept.join("&");
        url.set_query((!kept.is_empty()).then_some(kept.as_str()));
    }
    Ok(url.to_string())
}

/// A database that exists for the lifetime of this value: created on a
/// test server (or as a temporary SQLite file) with a unique name, with
/// diesel-facade's migrations run, and dropped in [`Drop`], also when the
/// test panics. Sessions still connected to it (a facade's pool) do not
/// keep it from being dropped: PostgreSQL drops it `WITH (FORCE)`,
/// MySQL/MariaDB kills them first.
///
/// The server is named by an admin URL (a user that may create and drop
/// databases), whose database part is replaced by the generated name; for
/// SQLite the argument is the directory of the file (`""`: the system's
/// temporary directory).
///
/// ```
/// use diesel::prelude::*;
/// use diesel::SqliteConnection;
/// use diesel_facade::testing::TestDatabase;
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let path;
/// {
///     let db = TestDatabase::<SqliteConnection>::create("")?;
///     let facade = db.facade()?;
///     diesel_facade::write(&mut facade.context(), |ctx| ctx.lock("ready"))?;
///     path = db.url().to_owned();
///     assert!(std::path::Path::new(&path).exists());
/// }
/// assert!(!std::path::Path::new(&path).exists()); // dropped with `db`
/// # Ok(()) }
/// ```
pub struct TestDatabase<C: Provision> {
    admin: String,
    name: String,
    url: String,
    _conn: PhantomData<fn() -> C>,
}

impl<C: Provision> fmt::Debug for TestDatabase<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &C::NAME)
            .field("name", &self.name)
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

impl<C: Provision> TestDatabase<C> {
    /// A builder for a test database on the server `admin_url` names (for
    /// SQLite: in the directory it names, `""` for the system's temporary
    /// directory).
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::builder("")
    ///     .create()?;
    /// # Ok(()) }
    /// ```
    pub fn builder(admin_url: impl Into<String>) -> TestDatabaseBuilder<C> {
        TestDatabaseBuilder::new(admin_url.into())
    }

    /// A new test database with diesel-facade's migrations:
    /// `builder(admin_url).create()`.
    ///
    /// ```no_run
    /// # #[cfg(feature = "postgres")]
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// use diesel_facade::testing::TestDatabase;
    /// let db = TestDatabase::<diesel::PgConnection>::create("postgres://admin:secret@localhost/postgres")?;
    /// println!("{db:?}"); // the password shows as ***
    /// # Ok(()) }
    /// # #[cfg(not(feature = "postgres"))]
    /// # fn main() {}
    /// ```
    pub fn create(admin_url: impl Into<String>) -> Result<Self, Error> {
        Self::builder(admin_url).create()
    }

    /// Run the application's migrations (an
    /// [`EmbeddedMigrations`](diesel_migrations::EmbeddedMigrations), or
    /// any diesel [`MigrationSource`]). A failing migration is an error
    /// naming it; the database is dropped then.
    ///
    /// ```
    /// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # use diesel_facade::testing::TestDatabase;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// // The application's own migrations; here the crate's, for the example.
    /// const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
    /// let db = TestDatabase::<diesel::SqliteConnection>::builder("")
    ///     .without_facade_migrations()
    ///     .create()?
    ///     .with_migrations(MIGRATIONS)?;
    /// # Ok(()) }
    /// ```
    pub fn with_migrations<M: MigrationSource<C::Backend>>(
        self,
        migrations: M,
    ) -> Result<Self, Error> {
        let mut conn = self.connect()?;
        C::run_migration_source(&mut conn, migrations).map_err(|e| self.migration_error(&e))?;
        drop(conn);
        Ok(self)
    }

    /// The generated database name (for SQLite, the file's name without
    /// `.db`).
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::create("")?;
    /// assert!(db.name().starts_with(diesel_facade::testing::DEFAULT_NAME_PREFIX));
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL, to connect with (the admin URL's credentials
    /// included: show it only through a redacting `Debug`, such as the
    /// facade's or this type's). For SQLite, the file's path.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::create("")?;
    /// assert!(db.url().ends_with(".db"));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A builder for a facade on this database, its writer set.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::create("")?;
    /// let facade = db.facade_builder().max_pool_size(2).build()?;
    /// # Ok(()) }
    /// ```
    pub fn facade_builder(&self) -> FacadeBuilder<C> {
        Facade::builder().writer(self.url.clone())
    }

    /// A facade on this database, with the default settings. Its
    /// transactions commit for real: use it for tests that need several
    /// connections (`#[writer(independent)]`, concurrent writers, locks
    /// between threads). Drop it before the `TestDatabase` (dropping the
    /// database closes its sessions anyway).
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::create("")?;
    /// let facade = db.facade()?;
    /// diesel_facade::write(&mut facade.context(), |ctx| ctx.lock("x"))?;
    /// # Ok(()) }
    /// ```
    pub fn facade(&self) -> Result<Facade<C>, Error> {
        self.facade_builder().build()
    }

    /// A facade whose one connection lives inside a test transaction that
    /// is rolled back when the facade's last clone is dropped: nothing the
    /// test writes is ever committed, so tests can share one database, in
    /// parallel, without seeing each other's writes.
    ///
    /// The facade's outermost `BEGIN` becomes a `SAVEPOINT`, `COMMIT` a
    /// `RELEASE SAVEPOINT` and `ROLLBACK` a `ROLLBACK TO SAVEPOINT`, so
    /// within the test, commits, rollbacks, savepoints, `on_commit` hooks
    /// and locks behave as usual. What differs (see `docs/testing.md`):
    /// readers are not `READ ONLY` on the server (their types still forbid
    /// writes); a nested `#[writer(independent)]` is an
    /// [`ErrorKind::Config`] error, as it needs a second connection;
    /// `#[reader(replica)]` reads the one connection; a lock row or unique
    /// key that two parallel tests both write makes the second wait for the
    /// first test to end; and if the connection is lost (or, on MySQL, a
    /// deadlock or DDL ends the test transaction) every later call fails
    /// with `Config` instead of going on without the test's earlier writes.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use diesel::SqliteConnection;
    /// use diesel_facade::testing::TestDatabase;
    ///
    /// diesel::table! { locks (id) { id -> Text, ts -> Timestamp } }
    ///
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = TestDatabase::<SqliteConnection>::create("")?;
    /// {
    ///     let facade = db.transactional_facade()?;
    ///     diesel_facade::write(&mut facade.context(), |ctx| ctx.lock("mine"))?; // "commits"
    ///     let seen: i64 = diesel_facade::read(&mut facade.context(), |ctx| {
    ///         locks::table.count().get_result(ctx.conn())
    ///     })?;
    ///     assert_eq!(seen, 1);
    /// } // the test transaction is rolled back here
    /// let seen: i64 = diesel_facade::read(&mut db.facade()?.context(), |ctx| {
    ///     locks::table.count().get_result(ctx.conn())
    /// })?;
    /// assert_eq!(seen, 0);
    /// # Ok(()) }
    /// ```
    pub fn transactional_facade(&self) -> Result<Facade<C>, Error> {
        self.transactional_facade_with(|b| b)
    }

    /// [`transactional_facade`](Self::transactional_facade) with more
    /// settings. The pool holds one connection whatever `max_pool_size`
    /// says; replicas are an [`ErrorKind::Config`] error.
    ///
    /// ```
    /// use std::time::Duration;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::create("")?;
    /// let facade = db.transactional_facade_with(|b| b.pool_timeout(Duration::from_secs(5)))?;
    /// # Ok(()) }
    /// ```
    pub fn transactional_facade_with(
        &self,
        configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
    ) -> Result<Facade<C>, Error> {
        configure(self.facade_builder()).test_transaction().build()
    }

    /// A facade on this database that owns it: the database is dropped
    /// once the facade's last clone is, after its pool has closed. For
    /// helpers that hand a test only a facade.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::testing::TestDatabase::<diesel::SqliteConnection>::create("")?;
    /// let path = db.url().to_owned();
    /// let facade = db.into_facade(|b| b.max_pool_size(2))?;
    /// let clone = facade.clone();
    /// drop(facade);
    /// assert!(std::path::Path::new(&path).exists());
    /// drop(clone);
    /// assert!(!std::path::Path::new(&path).exists());
    /// # Ok(()) }
    /// ```
    pub fn into_facade(
        self,
        configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
    ) -> Result<Facade<C>, Error> {
        let facade = configure(self.facade_builder()).build()?;
        facade.owning(self).map_err(|_db| {
            Error::new(
                ErrorKind::Other,
                "the facade was cloned before it could own its test database",
            )
        })
    }

    fn connect(&self) -> Result<C, Error> {
        C::establish(&self.url).map_err(|e| {
            let cause = Error::from(e);
            Error::new(
                cause.kind(),
                format!(
                    "could not connect to the test database {}: {}",
                    redact_url(&self.url),
                    Secrets::of(&self.url).scrub(cause.message().trim_end())
                ),
            )
        })
    }

    fn migration_error(&self, err: &Error) -> Error {
        Error::new(
            err.kind(),
            format!(
                "migrating the test database {}: {}",
                self.name,
                Secrets::of(&self.url).scrub(err.message())
            ),
        )
    }
}

impl<C: Provision> Drop for TestDatabase<C> {
    /// Drops the database (deletes the SQLite file). Never panics: a
    /// failure is logged (`tracing`, level WARN) with the URL redacted.
    fn drop(&mut self) {
        match C::drop_test_database(&self.admin, &self.name, &self.url) {
            Ok(()) => tracing::debug!(database = %self.name, "dropped the test database"),
            Err(err) => tracing::warn!(
                database = %self.name,
                server = %redact_url(&self.admin),
                error = %err,
                "could not drop the test database"
            ),
        }
    }
}

/// How long dropping a database waits for a lock on a server at most: a
/// session that still holds one is killed first, so this only bounds a
/// server that misbehaves.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
const DROP_LOCK_WAIT: Duration = Duration::from_secs(30);
