//! Named databases on one context (`#[facade(api)]`, `db = api`), with the
//! default and the api database on different backends.

use diesel::{MysqlConnection, PgConnection, SqliteConnection};
use diesel_facade_tests::named;

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn sqlite_main_postgres_api_each_function_uses_the_database_it_names() {
    named::each_function_uses_the_database_it_names::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn sqlite_main_postgres_api_nests_like_the_default() {
    named::a_named_database_nests_like_the_default::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn mariadb_main_postgres_api_each_function_uses_the_database_it_names() {
    named::each_function_uses_the_database_it_names::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn mariadb_main_postgres_api_nests_like_the_default() {
    named::a_named_database_nests_like_the_default::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn postgres_main_mariadb_api_each_function_uses_the_database_it_names() {
    named::each_function_uses_the_database_it_names::<PgConnection, MysqlConnection>();
}
