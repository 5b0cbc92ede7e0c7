//! The shared scenarios on the MariaDB primary of `scripts/test-servers`.
diesel_facade_tests::backend_suite!(diesel::MysqlConnection, single_writer = false);
diesel_facade_tests::server_suite!();

mod trust {
    diesel_facade_tests::trust_tests!(diesel::MysqlConnection;
        ok_with_a_nested_transaction_left_open_commits_nothing,
        savepoint_ok_with_a_nested_transaction_left_open_is_rolled_back,
        hooks_of_a_savepoint_that_panicked_never_run,
        a_panicking_hook_runs_the_others_and_the_commit_stands,
        a_lock_first_taken_inside_a_savepoint_is_refused,
        a_lock_survives_a_savepoint_rollback,
        a_deadlock_inside_a_savepoint_is_retried_by_the_outermost_retry,
        independent_commits_while_the_outer_writer_rolls_back,
    );
}
