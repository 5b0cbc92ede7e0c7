//! The shared scenarios on the PostgreSQL primary of `scripts/test-servers`.
diesel_facade_tests::backend_suite!(diesel::PgConnection, single_writer = false);
diesel_facade_tests::server_suite!();
