//! `Facade::from_env()`: `DATABASE_URL` and `DATABASE_REPLICA_URLS`.

use diesel::SqliteConnection;
use diesel_facade::{ErrorKind, Facade};

#[test]
fn from_env_reads_database_url_and_replicas() {
    // Alone in its test binary: changing the environment while another
    // thread's libpq/libmysqlclient reads it would be a data race.
    std::env::remove_var("DATABASE_URL");
    let err = Facade::<SqliteConnection>::from_env().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("DATABASE_URL"), "{err}");
    std::env::set_var("DATABASE_URL", ":memory:");
    std::env::set_var("DATABASE_REPLICA_URLS", ":memory:, :memory:");
    let db = Facade::<SqliteConnection>::from_env().unwrap();
    assert_eq!(db.replica_count(), 2);
    std::env::remove_var("DATABASE_URL");
    std::env::remove_var("DATABASE_REPLICA_URLS");
}
