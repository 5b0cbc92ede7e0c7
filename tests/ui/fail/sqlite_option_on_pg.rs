//! A backend's own options are methods of that backend's builder only: a
//! PostgreSQL facade cannot be given a SQLite option (it would do nothing).
use diesel::PgConnection;
use diesel_facade::Facade;

fn main() {
    let _ = Facade::<PgConnection>::builder()
        .writer("postgres://app@localhost/app")
        .sqlite_wal(false)
        .build();
}
