//! PostgreSQL test databases: `CREATE DATABASE` on the admin URL's server,
//! `DROP DATABASE ... WITH (FORCE)` (PostgreSQL 13 and later), which ends
//! the sessions still connected to it.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::PgConnection;

use super::{admin_connection, on_server, url_of_database, Provision};
use crate::error::Error;

impl Provision for PgConnection {
    fn create_test_database(admin: &str, name: &str) -> Result<String, Error> {
        let url = url_of_database(admin, name)?;
        let mut conn = admin_connection::<Self>(admin)?;
        // `name` is validated (lower-case letters, digits, `_`); quoted all
        // the same.
        conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .map_err(|e| on_server(admin, "creating the test database", e))?;
        Ok(url)
    }

    fn drop_test_database(admin: &str, name: &str, _url: &str) -> Result<(), Error> {
        let mut conn = admin_connection::<Self>(admin)?;
        conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .map_err(|e| on_server(admin, "dropping the test database", e))
    }

    fn run_migration_source<M: MigrationSource<Pg>>(
        conn: &mut Self,
        migrations: M,
    ) -> Result<Vec<String>, Error> {
        super::run_source(conn, migrations)
    }
}
