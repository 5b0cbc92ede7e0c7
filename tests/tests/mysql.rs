//! The shared scenarios on the MariaDB primary of `scripts/test-servers`.
diesel_facade_tests::backend_suite!(diesel::MysqlConnection, single_writer = false);
diesel_facade_tests::server_suite!();

mod trust {
    diesel_facade_tests::trust_tests!(server: diesel::MysqlConnection);
    diesel_facade_tests::trust_tests!(diesel::MysqlConnection;
        a_handled_error_then_ok_commits_the_rest,
    );
}
