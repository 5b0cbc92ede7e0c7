//! Cells on real servers: three cell databases per backend targeted in
//! turn, a cell map with a cell down at start-up, and scatter-gather with a
//! dead and a slow cell (see `tests/src/cells.rs`).

mod postgres {
    diesel_facade_tests::backend_tests! {
        #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
        diesel::PgConnection => cells {
            target_moves_reads_and_writes_to_each_cell,
            a_cell_down_at_start_up_fails_the_map_by_name,
            scatter_gather_returns_by_the_timeout_despite_a_dead_and_a_slow_cell,
            scatter_gather_bounds_statements_only_inside_its_reads,
            scatter_gather_on_a_transactional_facade_leaves_no_bound,
        }
    }
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn pg_scatter_gather_keeps_a_shorter_statement_timeout() {
    diesel_facade_tests::cells::pg_scatter_gather_keeps_a_shorter_statement_timeout();
}

mod mysql {
    diesel_facade_tests::backend_tests! {
        #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
        diesel::MysqlConnection => cells {
            target_moves_reads_and_writes_to_each_cell,
            a_cell_down_at_start_up_fails_the_map_by_name,
            scatter_gather_returns_by_the_timeout_despite_a_dead_and_a_slow_cell,
            scatter_gather_bounds_statements_only_inside_its_reads,
            scatter_gather_on_a_transactional_facade_leaves_no_bound,
        }
    }
}
