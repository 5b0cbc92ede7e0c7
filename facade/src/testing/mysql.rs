//! MySQL/MariaDB test databases: `CREATE DATABASE ... utf8mb4` on the admin
//! URL's server. `DROP DATABASE` waits for the metadata locks of open
//! transactions on its tables, so dropping first kills the sessions still
//! connected to the database, and bounds the wait (`lock_wait_timeout`).

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::mysql::Mysql;
use diesel::sql_types::{BigInt, Text};
use diesel::{MysqlConnection, RunQueryDsl};

use super::{admin_connection, on_server, url_of_database, Provision, DROP_LOCK_WAIT};
use crate::error::Error;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

impl Provision for MysqlConnection {
    fn create_test_database(admin: &str, name: &str) -> Result<String, Error> {
        let url = url_of_database(admin, name)?;
        let mut conn = admin_connection::<Self>(admin)?;
        // `name` is validated (lower-case letters, digits, `_`); quoted all
        // the same.
        conn.batch_execute(&format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .map_err(|e| on_server(admin, "creating the test database", e))?;
        Ok(url)
    }

    fn drop_test_database(admin: &str, name: &str, _url: &str) -> Result<(), Error> {
        let mut conn = admin_connection::<Self>(admin)?;
        conn.batch_execute(&format!(
            "SET SESSION lock_wait_timeout = {}",
            DROP_LOCK_WAIT.as_secs()
        ))
        .map_err(|e| on_server(admin, "preparing to drop the test database", e))?;
        let sessions = diesel::sql_query(
            "SELECT CAST(ID AS SIGNED) AS id FROM information_schema.PROCESSLIST \
             WHERE DB = ? AND ID <> CONNECTION_ID()",
        )
        .bind::<Text, _>(name)
        .load::<Id>(&mut conn)
        .map_err(|e| on_server(admin, "listing the test database's sessions", e))?;
        for session in sessions {
            // It may have ended on its own in the meantime.
            if let Err(err) = conn.batch_execute(&format!("KILL {}", session.id)) {
                tracing::debug!(error = %err, "killing a session of the test database");
            }
        }
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"))
            .map_err(|e| on_server(admin, "dropping the test database", e))
    }

    fn run_migration_source<M: MigrationSource<Mysql>>(
        conn: &mut Self,
        migrations: M,
    ) -> Result<Vec<String>, Error> {
        super::run_source(conn, migrations)
    }
}
