//! Scenarios of issue 7 ("Trust"): error kinds that row data cannot steer,
//! databases that refuse connections failing fast instead of being retried,
//! and one definition of a lock name on every backend. Plain generic
//! functions; `tests/tests/hostile.rs` runs each on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::Text;
use diesel_facade::{writer, Context, Error, ErrorKind, Facade};

use crate::{server_url, EventLog, TestBackend};

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Read strings with plain SQL (diesel's typed DSL needs the concrete
/// backend).
pub trait ReadsStrings: TestBackend {
    /// The `name` column of every row `sql` returns.
    fn strings(conn: &mut Self, sql: &str) -> Vec<String>;
}

impl<C> ReadsStrings for C
where
    C: TestBackend,
    for<'q> SqlQuery: LoadQuery<'q, C, Name>,
{
    fn strings(conn: &mut Self, sql: &str) -> Vec<String> {
        diesel::sql_query(sql)
            .load::<Name>(conn)
            .expect("read strings")
            .into_iter()
            .map(|row| row.name)
            .collect()
    }
}

fn strings<C: ReadsStrings>(db: &Facade<C>, sql: &str) -> Vec<String> {
    diesel_facade::write(&mut db.context(), |ctx| {
        Ok::<_, Error>(C::strings(ctx.conn(), sql))
    })
    .expect("read")
}

/// Values that spell, in some server's words, a deadlock, a lock timeout or
/// a lost connection. At most 50 characters, so they fit a `VARCHAR(50)` key.
pub const HOSTILE_VALUES: &[&str] = &[
    "deadlock detected",
    "Deadlock found when trying to get lock",
    "Lost connection to server during query",
    "broken pipe",
    "server has gone away",
    "Server has gone away",
    "database is locked",
    "Lock wait timeout exceeded",
    "canceling statement due to lock timeout",
    "WSREP has not yet prepared node",
    "Record has changed since last read in table",
    "terminating connection",
];

/// A backend's statements that fail with a message quoting a value.
pub trait QuotesValues: ReadsStrings {
    /// How many different statements `fail_quoting` knows.
    const WAYS: usize;
    /// The kind such a failure must have.
    const KIND: ErrorKind;
    /// Run statement number `way`, which fails quoting `value`.
    fn fail_quoting(conn: &mut Self, value: &str, way: usize) -> diesel::result::Error;
}

fn expect_failure(result: QueryResult<usize>) -> diesel::result::Error {
    result.expect_err("the statement must fail")
}

impl QuotesValues for diesel::SqliteConnection {
    const WAYS: usize = 1;
    const KIND: ErrorKind = ErrorKind::Other;
    fn fail_quoting(conn: &mut Self, value: &str, _: usize) -> diesel::result::Error {
        // "JSON path error near '<value>'"
        expect_failure(
            diesel::sql_query("SELECT json_extract('{}', ?)")
                .bind::<Text, _>(value)
                .execute(conn),
        )
    }
}

impl QuotesValues for diesel::PgConnection {
    const WAYS: usize = 1;
    const KIND: ErrorKind = ErrorKind::Other;
    fn fail_quoting(conn: &mut Self, value: &str, _: usize) -> diesel::result::Error {
        // invalid input syntax for type integer: "<value>"
        expect_failure(
            diesel::sql_query("SELECT CAST($1 AS INTEGER)")
                .bind::<Text, _>(value)
                .execute(conn),
        )
    }
}

impl QuotesValues for diesel::MysqlConnection {
    /// A duplicate key through a prepared statement (diesel says
    /// `UniqueViolation`) and through `batch_execute` (`Unknown`).
    const WAYS: usize = 2;
    const KIND: ErrorKind = ErrorKind::UniqueViolation;
    fn fail_quoting(conn: &mut Self, value: &str, way: usize) -> diesel::result::Error {
        // Duplicate entry '<value>' for key 'PRIMARY'
        diesel::sql_query("INSERT IGNORE INTO counters (id, value) VALUES (?, 0)")
            .bind::<Text, _>(value)
            .execute(conn)
            .expect("the first row");
        if way == 0 {
            expect_failure(
                diesel::sql_query("INSERT INTO counters (id, value) VALUES (?, 0)")
                    .bind::<Text, _>(value)
                    .execute(conn),
            )
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "''");
            expect_failure(
                conn.batch_execute(&format!(
                    "INSERT INTO counters (id, value) VALUES ('{quoted}', 0)"
                ))
                .map(|()| 0),
            )
        }
    }
}

#[writer(savepoint)]
fn fail_in_savepoint<C: QuotesValues>(
    ctx: &mut Context<C>,
    value: &str,
    way: usize,
) -> QueryResult<()> {
    Err(C::fail_quoting(ctx.conn(), value, way))
}

/// A `#[writer(retry)]` body that meets errors quoting hostile values,
/// handles them and returns `Ok` commits exactly once: the values decide
/// neither the kind nor a retry.
pub fn handled_errors_quoting_hostile_values_commit_once<C: QuotesValues>() {
    let db = crate::facade::<C>("hostile_values", |b| b);
    let attempts = AtomicUsize::new(0);
    let seen = Mutex::new(Vec::new());

    #[writer(retry)]
    fn handle_all<C: QuotesValues>(
        ctx: &mut Context<C>,
        attempts: &AtomicUsize,
        seen: &Mutex<Vec<(String, ErrorKind, bool)>>,
    ) -> Result<(), Error> {
        attempts.fetch_add(1, Ordering::SeqCst);
        for value in HOSTILE_VALUES {
            for way in 0..C::WAYS {
                let err = Error::from(fail_in_savepoint(ctx, value, way).unwrap_err());
                let lost = err.kind() == ErrorKind::Disconnected;
                seen.lock()
                    .unwrap()
                    .push((err.message().to_owned(), err.kind(), lost));
            }
        }
        ctx.conn()
            .batch_execute("INSERT INTO items (id, name, qty) VALUES (1, 'handled', 0)")?;
        Ok(())
    }

    let before = db.stats();
    handle_all(&mut db.context(), &attempts, &seen).expect("the body handled every error");
    let after = db.stats();
    for (message, kind, _) in seen.lock().unwrap().iter() {
        assert_eq!(*kind, C::KIND, "{message}");
        assert!(
            HOSTILE_VALUES.iter().any(|v| message.contains(v)),
            "the message quotes the value: {message}"
        );
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        HOSTILE_VALUES.len() * C::WAYS * attempts.load(Ordering::SeqCst)
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "never retried");
    assert_eq!(after.retries - before.retries, 0);
    assert_eq!(after.commits - before.commits, 1);
    assert_eq!(after.rollbacks - before.rollbacks, 0);
    assert_eq!(
        strings(&db, "SELECT name FROM items"),
        vec!["handled".to_owned()]
    );
}

/// Dropping a test database and locking a user out, per backend.
pub trait Refuses: TestBackend {
    /// Make `url` (from `create_database`) refer to a database that no
    /// longer exists or cannot be opened.
    fn drop_database(admin_url: &str, url: &str);
}

impl Refuses for diesel::SqliteConnection {
    fn drop_database(_: &str, url: &str) {
        // SQLite creates a missing file, but not a missing directory.
        let dir = std::path::Path::new(url).parent().expect("a directory");
        std::fs::remove_dir_all(dir).expect("remove the database's directory");
    }
}

fn database_name(url: &str) -> String {
    url::Url::parse(url)
        .expect("a URL")
        .path()
        .trim_start_matches('/')
        .to_owned()
}

impl Refuses for diesel::PgConnection {
    fn drop_database(admin_url: &str, url: &str) {
        let mut admin = Self::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!(
                "DROP DATABASE {} WITH (FORCE)",
                database_name(url)
            ))
            .expect("drop the database");
    }
}

impl Refuses for diesel::MysqlConnection {
    fn drop_database(admin_url: &str, url: &str) {
        let mut admin = Self::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!("DROP DATABASE {}", database_name(url)))
            .expect("drop the database");
    }
}

#[writer(retry)]
fn count_attempt<C: TestBackend>(
    ctx: &mut Context<C>,
    attempts: &AtomicUsize,
) -> Result<(), Error> {
    let _ = ctx.conn();
    attempts.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// A `#[writer(retry)]` on a database dropped after start-up fails at once
/// with `Config` and is not retried (it used to take 11 × `pool_timeout`).
pub fn a_dropped_database_fails_fast_and_is_not_retried<C: Refuses>() {
    let admin = server_url::<C>();
    let test = "dropped_database";
    let url = if C::URL_VAR.is_empty() {
        // A directory of its own, so that removing it makes the path unopenable.
        let path = C::create_database(&admin, test);
        let dir = std::path::Path::new(&path)
            .parent()
            .expect("a directory")
            .join(format!("dropped-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        dir.join("app.db").to_str().expect("utf-8").to_owned()
    } else {
        C::create_database(&admin, test)
    };
    let pool_timeout = Duration::from_secs(10);
    let db: Facade<C> = Facade::builder()
        .writer(url.clone())
        .pool_timeout(pool_timeout)
        .build()
        .expect("the database exists at start-up");
    C::drop_database(&admin, &url);

    let attempts = AtomicUsize::new(0);
    let started = Instant::now();
    let err = count_attempt(&mut db.context(), &attempts).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(!err.kind().is_retryable());
    assert_eq!(attempts.load(Ordering::SeqCst), 0, "no body ran");
    assert_eq!(db.stats().retries, 0, "{err}");
    assert!(
        took < pool_timeout / 2,
        "failed after {took:?}, pool_timeout is {pool_timeout:?}"
    );
    let shown = format!("{err} {err:?}");
    if let Some(password) = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        assert!(!shown.contains(&password), "{shown}");
    }
}

/// Server backends: a login whose password changes after start-up.
pub trait Logins: TestBackend {
    /// Create login `user` with `password`, allowed on the database of `url`.
    fn create_login(admin_url: &str, url: &str, user: &str, password: &str);
    /// Change `user`'s password.
    fn set_password(admin_url: &str, user: &str, password: &str);
}

impl Logins for diesel::PgConnection {
    fn create_login(admin_url: &str, url: &str, user: &str, password: &str) {
        let mut admin = Self::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {user}; CREATE ROLE {user} LOGIN PASSWORD '{password}'; \
                 GRANT ALL ON DATABASE {} TO {user}",
                database_name(url)
            ))
            .expect("create the login");
    }
    fn set_password(admin_url: &str, user: &str, password: &str) {
        let mut admin = Self::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!("ALTER ROLE {user} PASSWORD '{password}'"))
            .expect("change the password");
    }
}

impl Logins for diesel::MysqlConnection {
    fn create_login(admin_url: &str, url: &str, user: &str, password: &str) {
        let mut admin = Self::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!(
                "DROP USER IF EXISTS '{user}'@'%'; CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; \
                 GRANT ALL ON {}.* TO '{user}'@'%'",
                database_name(url)
            ))
            .expect("create the login");
    }
    fn set_password(admin_url: &str, user: &str, password: &str) {
        let mut admin = Self::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!(
                "ALTER USER '{user}'@'%' IDENTIFIED BY '{password}'"
            ))
            .expect("change the password");
    }
}

/// A password changed after start-up: `#[writer(retry)]` fails at once with
/// `Config`, is not retried, and neither password shows in the error.
pub fn a_wrong_password_at_checkout_fails_fast_and_is_not_retried<C: Logins>() {
    let admin = server_url::<C>();
    let url = C::create_database(&admin, "wrong_password");
    let prefix = std::env::var("FACADE_TEST_DB_PREFIX").unwrap_or_default();
    let user: String = format!("ft{prefix}_login")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
        + "_u";
    C::create_login(&admin, &url, &user, "Old0Passw0rd");
    let mut login_url = url::Url::parse(&url).expect("a URL");
    login_url.set_username(&user).expect("a user");
    login_url
        .set_password(Some("Old0Passw0rd"))
        .expect("a password");
    let pool_timeout = Duration::from_secs(10);
    let db: Facade<C> = Facade::builder()
        .writer(login_url.to_string())
        .pool_timeout(pool_timeout)
        .build()
        .expect("the login works at start-up");
    C::set_password(&admin, &user, "New0Passw0rd");

    let attempts = AtomicUsize::new(0);
    let started = Instant::now();
    let err = count_attempt(&mut db.context(), &attempts).unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(attempts.load(Ordering::SeqCst), 0);
    assert_eq!(db.stats().retries, 0, "{err}");
    assert!(took < pool_timeout / 2, "failed after {took:?}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("Old0Passw0rd") && !shown.contains("New0Passw0rd"),
        "{shown}"
    );
    assert!(shown.contains(&user), "the error names the login: {shown}");
}

/// The same lock names are valid on every backend, and an invalid one is
/// refused before any SQL reaches the server.
pub fn lock_names_have_one_definition<C: ReadsStrings>() {
    let log = EventLog::default();
    let factory = log.factory();
    let db = crate::facade::<C>("lock_name_rules", |b| b.instrumentation(factory));
    let mut ctx = db.context();
    let bad = [
        String::new(),
        "report ".to_owned(),
        " report".to_owned(),
        "report\t".to_owned(),
        "\0x".to_owned(),
        "x\0".to_owned(),
        "a\nb".to_owned(),
        "\u{7f}".to_owned(),
        "錠".repeat(51),
    ];
    for name in &bad {
        log.clear();
        let taken = diesel_facade::write(&mut ctx, |ctx| ctx.lock(name)).unwrap_err();
        let tried = diesel_facade::write(&mut ctx, |ctx| ctx.try_lock(name)).unwrap_err();
        let timed = diesel_facade::write(&mut ctx, |ctx| {
            ctx.lock_timeout(name, Duration::from_millis(100))
        })
        .unwrap_err();
        for err in [taken, tried, timed] {
            assert_eq!(err.kind(), ErrorKind::InvalidLockName, "{name:?}: {err}");
        }
        let sql: Vec<String> = log
            .all()
            .into_iter()
            .filter(|e| e.starts_with("query") && e.contains("locks"))
            .collect();
        assert!(sql.is_empty(), "{name:?} reached the server: {sql:?}");
    }
    let multibyte = "錠".repeat(50);
    for name in ["report", "monthly report", multibyte.as_str()] {
        diesel_facade::write(&mut ctx, |ctx| ctx.lock(name)).expect(name);
        assert!(diesel_facade::write(&mut ctx, |ctx| ctx.try_lock(name)).expect(name));
    }
    let mut stored = strings(&db, "SELECT id AS name FROM locks");
    let mut expected = vec!["monthly report".to_owned(), "report".to_owned(), multibyte];
    expected.sort();
    stored.sort();
    assert_eq!(stored, expected);
}
