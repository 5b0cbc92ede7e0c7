//! SQLite test databases: a new file in a directory (the "admin URL"; empty
//! for the system's temporary directory), deleted with its `-wal`, `-shm`
//! and `-journal` companions.

use std::fs::OpenOptions;
use std::io::ErrorKind as IoErrorKind;
use std::path::PathBuf;

use diesel::migration::MigrationSource;
use diesel::sqlite::Sqlite;
use diesel::SqliteConnection;

use super::Provision;
use crate::error::{Error, ErrorKind};

fn path_of(dir: &str, name: &str) -> PathBuf {
    let dir = if dir.is_empty() {
        std::env::temp_dir()
    } else {
        PathBuf::from(dir)
    };
    dir.join(format!("{name}.db"))
}

/// The file and the companions SQLite may leave beside it.
fn files(path: &str) -> [String; 4] {
    ["", "-wal", "-shm", "-journal"].map(|suffix| format!("{path}{suffix}"))
}

impl Provision for SqliteConnection {
    fn create_test_database(dir: &str, name: &str) -> Result<String, Error> {
        let path = path_of(dir, name);
        let Some(text) = path.to_str() else {
            return Err(Error::config(format!(
                "the test database path {} is not UTF-8, which diesel needs",
                path.display()
            )));
        };
        // `create_new`: the name is ours alone, never an existing file's.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                Error::new(
                    ErrorKind::Config,
                    format!("could not create the test database file {text}: {e}"),
                )
            })?;
        Ok(text.to_owned())
    }

    fn drop_test_database(_dir: &str, _name: &str, path: &str) -> Result<(), Error> {
        let mut failures = Vec::new();
        for file in files(path) {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == IoErrorKind::NotFound => {}
                Err(e) => failures.push(format!("{file}: {e}")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Other,
                format!(
                    "could not delete the test database: {}",
                    failures.join("; ")
                ),
            ))
        }
    }

    fn run_migration_source<M: MigrationSource<Sqlite>>(
        conn: &mut Self,
        migrations: M,
    ) -> Result<Vec<String>, Error> {
        super::run_source(conn, migrations)
    }
}
