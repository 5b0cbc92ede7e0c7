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
    for url in ["postgres://u:secret@127.0.0.1/db", "garbage", "mysql://"] {
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
    let Some(admin) = server_url::<C>() else {
        return;
    };
    let url = with_password(&admin, "Wr0ngPassw0rd");
    let err = build_err::<C>(&url);
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    let shown = format!("{err} | {err:?}");
    assert!(!shown.contains("Wr0ngPassw0rd"), "{shown}");
    assert!(shown.contains("***"), "the URL is shown redacted: {shown}");
}

fn debug_never_shows_the_password<C: TestBackend>() {
    let Some(admin) = server_url::<C>() else {
        return;
    };
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
fn postgres_wrong_password_is_config_and_never_printed() {
    wrong_password_is_config_and_never_printed::<PgConnection>();
}

#[test]
fn mysql_wrong_password_is_config_and_never_printed() {
    wrong_password_is_config_and_never_printed::<MysqlConnection>();
}

#[test]
fn postgres_debug_never_shows_the_password() {
    debug_never_shows_the_password::<PgConnection>();
}

#[test]
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
