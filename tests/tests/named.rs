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

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_default_writer_inside_an_api_reader_commits_with_the_outermost_call()
{
    named::a_default_writer_inside_an_api_reader_commits_with_the_outermost_call::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_calls_back_into_a_database_join_its_open_transaction() {
    named::calls_back_into_a_database_join_its_open_transaction::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting(
) {
    named::a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_failed_commit_after_another_database_committed_is_partially_committed(
) {
    named::a_failed_commit_after_another_database_committed_is_partially_committed::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_default_writer_inside_an_api_reader_commits_with_the_outermost_call()
{
    named::a_default_writer_inside_an_api_reader_commits_with_the_outermost_call::<
        MysqlConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_calls_back_into_a_database_join_its_open_transaction() {
    named::calls_back_into_a_database_join_its_open_transaction::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting(
) {
    named::a_writer_reached_through_another_database_inside_a_reader_is_wrong_nesting::<
        MysqlConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_failed_commit_after_another_database_committed_is_partially_committed(
) {
    named::a_failed_commit_after_another_database_committed_is_partially_committed::<
        MysqlConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting(
) {
    named::a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting::<SqliteConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(pg_server),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn sqlite_main_postgres_api_a_caught_panic_in_a_joined_other_database_commits_nothing() {
    named::a_caught_panic_in_a_joined_other_database_commits_nothing::<
        SqliteConnection,
        PgConnection,
    >();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting(
) {
    named::a_primary_reader_reached_through_another_database_inside_a_replica_reader_is_wrong_nesting::<MysqlConnection, PgConnection>();
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs the PostgreSQL (and MariaDB) test servers"
)]
fn mariadb_main_postgres_api_a_caught_panic_in_a_joined_other_database_commits_nothing() {
    named::a_caught_panic_in_a_joined_other_database_commits_nothing::<MysqlConnection, PgConnection>(
    );
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn sqlite_independent_writer_reached_through_another_database_inside_a_writer_fails_at_once() {
    named::sqlite_independent_writer_reached_through_another_database_inside_a_writer_fails_at_once::<
        PgConnection,
    >();
}
