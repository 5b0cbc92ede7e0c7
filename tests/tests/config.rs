//! Configuration errors and secrets: bad URLs and options are clear
//! `Config` errors (never panics), and passwords never show up in `Debug`,
//! `Display` or error messages.

use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_facade::{ErrorKind, Facade, FacadeConfig, SupportedConnection};
use diesel_facade_tests::{server_url, TestBackend};

fn build_err<C: SupportedConnection>(url: &str) -> diesel_facade::Error {
    Facade::<C>::builder()
        .writer(url)
        .build()
        .expect_err("this URL must not build")
}

fn with_password(url: &str, password: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    parsed.set_password(Some(password)).unwrap();
    parsed.to_string()
}

#[test]
fn sqlite_bad_urls_are_config_errors() {
    let err = build_err::<SqliteConnection>("postgres://u:secret@host/db");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("SQLite"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    let err = build_err::<SqliteConnection>("");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let err = build_err::<SqliteConnection>("/nonexistent-dir/for/sure/app.db");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

#[test]
fn server_urls_with_the_wrong_shape_are_config_errors() {
    for url in [
        "mysql://u:secret@127.0.0.1/db",
        "not a url",
        "postgres://",
        "sqlite.db",
    ] {
        let err = build_err::<PgConnection>(url);
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(!format!("{err} {err:?}").contains("secret"), "{err}");
    }
    // White space around a URL: the url crate forgives it, libpq and
    // libmariadb do not; and the password stays hidden.
    for url in [
        " postgres://u:secret@127.0.0.1/db",
        "postgres://u:secret@127.0.0.1/db ",
    ] {
        let err = build_err::<PgConnection>(url);
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(!format!("{err} {err:?}").contains("secret"), "{err}");
    }
    for url in [
        "postgres://u:secret@127.0.0.1/db",
        "garbage",
        "mysql://",
        " mysql://u:secret@h/db",
    ] {
        let err = build_err::<MysqlConnection>(url);
        assert_eq!(err.kind(), ErrorKind::Config, "{url}: {err}");
        assert!(!format!("{err} {err:?}").contains("secret"), "{err}");
    }
}

#[test]
fn unreachable_servers_are_disconnected_not_a_panic() {
    let err = build_err::<PgConnection>("postgres://u:secret@127.0.0.1:1/db");
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    assert!(!err.to_string().contains("secret"));
    let err = build_err::<MysqlConnection>("mysql://u:secret@127.0.0.1:1/db");
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
    assert!(!err.to_string().contains("secret"));
}

#[test]
fn bad_options_are_config_errors() {
    let err = Facade::<SqliteConnection>::builder()
        .writer(":memory:")
        .max_pool_size(0)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let err = Facade::<SqliteConnection>::builder().build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("writer"), "{err}");
    // r2d2 reserves room for every connection up front: a huge pool is a
    // Config error, not an allocation failure that aborts the process.
    for size in [u32::MAX, 10_001] {
        let err = Facade::<SqliteConnection>::builder()
            .writer("big.db")
            .max_pool_size(size)
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    }
    let err = Facade::<MysqlConnection>::builder()
        .writer("mysql://u:p@127.0.0.1:1/db")
        .mysql_sql_mode(Some("TRADITIONAL'; DROP TABLE x; --"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let err = Facade::<MysqlConnection>::builder()
        .writer("mysql://u:p@127.0.0.1:1/db")
        .wsrep_sync_wait(200)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
}

fn wrong_password_is_config_and_never_printed<C: TestBackend>() {
    let admin = server_url::<C>();
    let url = with_password(&admin, "Wr0ngPassw0rd");
    let err = build_err::<C>(&url);
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let shown = format!("{err} | {err:?}");
    assert!(!shown.contains("Wr0ngPassw0rd"), "{shown}");
    assert!(shown.contains("***"), "the URL is shown redacted: {shown}");
}

fn debug_never_shows_the_password<C: TestBackend>() {
    let admin = server_url::<C>();
    let password = url::Url::parse(&admin)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    let db = Facade::<C>::builder()
        .writer(admin.clone())
        .replica(admin.clone())
        .build()
        .unwrap();
    for shown in [
        format!("{db:?}"),
        format!("{:?}", db.context()),
        db.writer_url().to_owned(),
        format!("{:?}", Facade::<C>::builder().writer(admin.clone())),
        format!(
            "{:?}",
            FacadeConfig {
                connection: admin.clone(),
                replica_connections: vec![admin.clone()],
                ..Default::default()
            }
        ),
    ] {
        assert!(!shown.contains(&password), "password leaked: {shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_wrong_password_is_config_and_never_printed() {
    wrong_password_is_config_and_never_printed::<PgConnection>();
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mysql_wrong_password_is_config_and_never_printed() {
    wrong_password_is_config_and_never_printed::<MysqlConnection>();
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_debug_never_shows_the_password() {
    debug_never_shows_the_password::<PgConnection>();
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mysql_debug_never_shows_the_password() {
    debug_never_shows_the_password::<MysqlConnection>();
}

#[test]
fn config_deserializes_and_rejects_unknown_fields() {
    let config: FacadeConfig = serde_json_from(r#"{"connection": ":memory:", "max_pool_size": 3}"#);
    assert_eq!(config.max_pool_size, Some(3));
    Facade::<SqliteConnection>::from_config(&config).unwrap();
}

fn serde_json_from(text: &str) -> FacadeConfig {
    serde_json::from_str(text).expect("valid config")
}

#[test]
fn unknown_config_fields_are_rejected() {
    let err =
        serde_json::from_str::<FacadeConfig>(r#"{"connection": "x", "max_pool": 3}"#).unwrap_err();
    assert!(err.to_string().contains("max_pool"), "{err}");
}

/// Durations that used to panic (in r2d2's builder, at checkout, or in
/// `Instant + Duration`) are `Config` errors at `build`, naming the option.
#[test]
fn out_of_range_durations_are_config_errors_not_panics() {
    use std::time::Duration;
    type Builder = diesel_facade::FacadeBuilder<SqliteConnection>;
    type Case = (&'static str, fn(Builder) -> Builder);
    let cases: Vec<Case> = vec![
        ("pool_timeout", |b| b.pool_timeout(Duration::ZERO)),
        ("pool_timeout", |b| b.pool_timeout(Duration::MAX)),
        ("pool_timeout", |b| {
            b.pool_timeout(Duration::from_secs(86_401))
        }),
        ("connection_recycle_time", |b| {
            b.connection_recycle_time(Duration::ZERO)
        }),
        ("replica_wait_timeout", |b| {
            b.replica_wait_timeout(Duration::MAX)
        }),
        ("replica_timeouts", |b| {
            b.replica_timeouts(Duration::MAX, Duration::from_secs(1))
        }),
        ("replica_timeouts", |b| {
            b.replica_timeouts(Duration::from_secs(1), Duration::MAX)
        }),
        ("sqlite_busy_timeout", |b| {
            b.sqlite_busy_timeout(Duration::MAX)
        }),
        ("retry_backoff", |b| {
            b.retry_backoff(Duration::from_millis(1), Duration::MAX)
        }),
    ];
    for (option, configure) in cases {
        let builder = configure(Facade::<SqliteConnection>::builder().writer(":memory:"));
        let shown = format!("{builder:?}");
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| builder.build()))
            .unwrap_or_else(|_| panic!("{shown} panicked"))
            .expect_err("must not build");
        assert_eq!(err.kind(), ErrorKind::Config, "{option}: {err}");
        assert!(err.message().contains(option), "{option}: {err}");
        let range = ["at most", "greater than 0"];
        assert!(
            range.iter().any(|r| err.message().contains(r)),
            "names the range: {err}"
        );
    }
    // The edges of the accepted ranges still build.
    Facade::<SqliteConnection>::builder()
        .writer(":memory:")
        .pool_timeout(Duration::from_secs(86_400))
        .connection_recycle_time(None)
        .replica_wait_timeout(Duration::ZERO)
        .sqlite_busy_timeout(Duration::ZERO)
        .build()
        .unwrap();
    let err = Facade::<MysqlConnection>::builder()
        .writer("mysql://u:p@127.0.0.1:1/db")
        .mysql_wait_timeout(Duration::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("mysql_wait_timeout"), "{err}");
}

#[test]
fn out_of_range_config_durations_are_config_errors_not_panics() {
    for (json, option) in [
        (
            r#"{"connection": ":memory:", "pool_timeout": 0}"#,
            "pool_timeout",
        ),
        (
            r#"{"connection": ":memory:", "pool_timeout": 0.0000000001}"#,
            "pool_timeout",
        ),
        (
            r#"{"connection": ":memory:", "pool_timeout": -1}"#,
            "pool_timeout",
        ),
        (
            r#"{"connection": ":memory:", "pool_timeout": 1e300}"#,
            "pool_timeout",
        ),
        (
            r#"{"connection": ":memory:", "pool_timeout": 86401}"#,
            "pool_timeout",
        ),
        (
            r#"{"connection": ":memory:", "sqlite_busy_timeout_ms": 18446744073709551615}"#,
            "sqlite_busy_timeout",
        ),
        (
            r#"{"connection": "mysql://u:p@127.0.0.1:1/db", "mysql_wait_timeout": 18446744073709551615}"#,
            "mysql_wait_timeout",
        ),
    ] {
        let config = serde_json_from(json);
        let built = std::panic::catch_unwind(|| {
            if option == "mysql_wait_timeout" {
                Facade::<MysqlConnection>::from_config(&config).map(drop)
            } else {
                Facade::<SqliteConnection>::from_config(&config).map(drop)
            }
        })
        .unwrap_or_else(|_| panic!("{json} panicked"));
        let err = built.expect_err(json);
        assert_eq!(err.kind(), ErrorKind::Config, "{json}: {err}");
        assert!(err.message().contains(option), "{json}: {err}");
    }
    // `connection_recycle_time: 0` means "never recycle", and huge values
    // are fine (a connection older than that is never seen).
    for json in [
        r#"{"connection": ":memory:", "connection_recycle_time": 0}"#,
        r#"{"connection": ":memory:", "connection_recycle_time": 18446744073709551615}"#,
        r#"{"connection": ":memory:", "pool_timeout": 2.5}"#,
    ] {
        Facade::<SqliteConnection>::from_config(&serde_json_from(json)).unwrap();
    }
}

/// `lock_timeout` with any duration either takes the lock or fails cleanly:
/// never a panic, never an aborted PostgreSQL transaction.
fn lock_timeout_out_of_range_is_config_and_the_transaction_goes_on<C: TestBackend>() {
    use std::time::Duration;
    let db = diesel_facade_tests::facade::<C>("lock_timeout_range", |b| b);
    let mut ctx = db.context();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        diesel_facade::write(&mut ctx, |ctx| {
            let err = ctx
                .lock_timeout("huge", Duration::MAX)
                .expect_err("a wait above 24 hours is rejected");
            assert_eq!(err.kind(), ErrorKind::Config, "{err}");
            assert!(err.message().contains("lock_timeout"), "{err}");
            // Nothing reached the server: the transaction is still usable.
            ctx.lock_timeout("day", Duration::from_secs(86_400))?;
            ctx.lock_timeout("zero", Duration::ZERO)?;
            ctx.lock_timeout("sub-ms", Duration::from_nanos(1))
        })
    }));
    result
        .unwrap_or_else(|_| panic!("{}: lock_timeout panicked", C::NAME))
        .unwrap();
}

#[test]
fn sqlite_lock_timeout_out_of_range_is_config() {
    lock_timeout_out_of_range_is_config_and_the_transaction_goes_on::<SqliteConnection>();
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_lock_timeout_out_of_range_is_config() {
    lock_timeout_out_of_range_is_config_and_the_transaction_goes_on::<PgConnection>();
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mysql_lock_timeout_out_of_range_is_config() {
    lock_timeout_out_of_range_is_config_and_the_transaction_goes_on::<MysqlConnection>();
}

/// Everything the tracing subscriber of this test binary wrote.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl tracing_subscriber::fmt::MakeWriter<'_> for Captured {
    type Writer = Captured;
    fn make_writer(&self) -> Captured {
        self.clone()
    }
}

fn captured_logs() -> String {
    static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();
    let captured = CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .init();
        captured
    });
    let bytes = captured.0.lock().expect("capture").clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// One URL form: the URL, and fragments of its password that must never be
/// shown (several where a naive redaction would show part of it).
struct Form {
    url: String,
    secrets: &'static [&'static str],
}

/// Every URL form the driver of `C` accepts (and some it rejects), each
/// with a password that is wrong or that cannot be used.
fn forms<C: TestBackend>(admin: &str) -> Vec<Form> {
    let parsed = url::Url::parse(admin).unwrap();
    let host = parsed.host_str().unwrap().to_owned();
    let port = parsed.port().unwrap();
    let user = parsed.username().to_owned();
    let db = parsed.path().trim_start_matches('/').to_owned();
    let scheme = parsed.scheme().to_owned();
    let form = |url: String, secrets: &'static [&'static str]| Form { url, secrets };
    let mut forms = vec![
        form(
            format!("{scheme}://{user}:Wr0ngPassw0rd@{host}:{port}/{db}"),
            &["Wr0ngPassw0rd"],
        ),
        // libpq repeats a password it cannot percent-decode.
        form(
            format!("{scheme}://{user}:Bad%zzPerc3nt@{host}:{port}/{db}"),
            &["Bad%zzPerc3nt", "zzPerc3nt"],
        ),
        form(
            format!("{scheme}://{user}:p%40Enc0ded%20pw@{host}:{port}/{db}"),
            &["p%40Enc0ded", "p@Enc0ded", "Enc0ded"],
        ),
        // A typo in the port: the URL does not parse.
        form(
            format!("{scheme}://{user}:P0rtTypo@{host}:54x2/{db}"),
            &["P0rtTypo"],
        ),
        form(
            format!("{scheme}://{user}:Sl4sh/InPw@{host}:{port}/{db}"),
            &["Sl4sh", "InPw"],
        ),
        form(
            format!("{scheme}://{user}:Tw0@Ats@{host}:{port}/{db}"),
            &["Tw0", "Ats@"],
        ),
        form(
            format!("{scheme}://{user}@{host}:{port}/{db}?password=Qu3ryPw"),
            &["Qu3ryPw"],
        ),
        form(
            format!("{scheme}://{user}@{host}:{port}/{db}?sslmode=disable&password=Qu3ryPw2"),
            &["Qu3ryPw2"],
        ),
        form(
            format!("{scheme}://{user}:Unr3achable@127.0.0.1:1/{db}"),
            &["Unr3achable"],
        ),
        form(
            format!("{scheme}://{user}:N0Host@nonexistent.invalid:{port}/{db}"),
            &["N0Host"],
        ),
    ];
    if C::NAME == "postgres" {
        forms.extend([
            form(
                format!("host={host} port={port} user={user} password='Sp4ce pw' dbname={db}"),
                &["Sp4ce", "pw'"],
            ),
            form(
                format!("host={host} port={port} user={user} password = Eq5paces dbname={db}"),
                &["Eq5paces"],
            ),
            form(
                format!(r"host={host} port={port} user={user} password='Esc\'Qu0te' dbname={db}"),
                &["Esc", "Qu0te"],
            ),
            form(
                format!("host={host} port={port} user={user} password='Unterm1nated dbname={db}"),
                &["Unterm1nated"],
            ),
            form(
                format!("dbname='postgresql://{user}:N3sted@{host}:{port}/{db}'"),
                &["N3sted"],
            ),
            form(
                format!("postgresql://{user}:Mult1Host@{host}:{port},{host}:{port}/{db}"),
                &["Mult1Host"],
            ),
        ]);
    }
    forms
}

/// The password of any URL form is absent from `Debug` of the builder and
/// the config, from the error (`Display` and `Debug`) of building against the
/// real server, and from every log line, whatever went wrong.
fn no_url_form_shows_its_password<C: TestBackend>() {
    let admin = server_url::<C>();
    for Form { url, secrets } in forms::<C>(&admin) {
        let builder = Facade::<C>::builder()
            .writer(url.clone())
            .replica(url.clone());
        let config = FacadeConfig {
            connection: url.clone(),
            replica_connections: vec![url.clone()],
            ..Default::default()
        };
        let mut shown = vec![format!("{builder:?}"), format!("{config:?}")];
        for built in [builder.build(), Facade::<C>::from_config(&config)] {
            match built {
                Err(err) => {
                    assert!(
                        matches!(err.kind(), ErrorKind::Config | ErrorKind::Disconnected),
                        "{url}: {err}"
                    );
                    shown.push(format!("{err} | {err:?}"));
                }
                Ok(db) => shown.push(format!("{db:?} {}", db.writer_url())),
            }
        }
        for text in shown.iter().chain([&captured_logs()]) {
            for secret in secrets {
                assert!(!text.contains(secret), "`{secret}` of {url} leaked: {text}");
            }
        }
    }
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_no_url_form_shows_its_password() {
    no_url_form_shows_its_password::<PgConnection>();
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mysql_no_url_form_shows_its_password() {
    no_url_form_shows_its_password::<MysqlConnection>();
}

/// A replica with a wrong password fails lazily, in the pool's worker
/// threads and on replica reads: those errors go to the log, scrubbed.
fn replica_errors_in_the_log_never_show_the_password<C: TestBackend>() {
    let admin = server_url::<C>();
    captured_logs();
    // A password in the query, badly percent-encoded: the pool logs the
    // URL, and libpq repeats the token in its own message.
    let mut bad = url::Url::parse(&admin).unwrap();
    bad.set_password(None).unwrap();
    // Per backend: the two tests share this binary's log.
    let secret = format!("zzRepl1ca{}", C::NAME);
    let bad = format!("{bad}?password=Bad%{secret}");
    let db = Facade::<C>::builder()
        .writer(admin)
        .replica(bad)
        .build()
        .unwrap();
    let mut ctx = db.context();
    diesel_facade::read_replica(&mut ctx, |_| Ok::<_, diesel_facade::Error>(())).unwrap();
    let logs = captured_logs();
    assert!(logs.contains("replica"), "the failure is logged: {logs}");
    assert!(!logs.contains(&secret), "{logs}");
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn postgres_replica_errors_in_the_log_never_show_the_password() {
    replica_errors_in_the_log_never_show_the_password::<PgConnection>();
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn mysql_replica_errors_in_the_log_never_show_the_password() {
    replica_errors_in_the_log_never_show_the_password::<MysqlConnection>();
}

#[test]
fn a_sqlite_writer_path_with_a_comma_is_one_path() {
    let dir = std::env::temp_dir().join(format!("facade-comma-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("a,b.db");
    let db = Facade::<SqliteConnection>::builder()
        .writer(path.to_str().expect("UTF-8 path"))
        .build()
        .expect("a path with a comma");
    db.run_migrations().expect("migrations");
    assert!(path.exists(), "the database is the file {path:?}");
    assert!(!dir.join("a").exists(), "the path was not split");
    drop(db);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_mysql_writer_list_checks_every_url() {
    let err = build_err::<MysqlConnection>("mysql://u:pw1@127.0.0.1:1/db,postgres://u:pw2@h/db");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("pw1") && !text.contains("pw2"), "{text}");
}

#[test]
fn several_urls_where_one_was_expected_hide_every_password() {
    let list = "postgres://u:pw_one@127.0.0.1:1/db,postgres://u:pw_two@127.0.0.1:1/db";
    let err = build_err::<PgConnection>(list);
    let builder = Facade::<PgConnection>::builder().writer(list).replica(list);
    let text = format!("{err} {err:?} {builder:?}");
    assert!(
        !text.contains("pw_one") && !text.contains("pw_two"),
        "{text}"
    );
}
