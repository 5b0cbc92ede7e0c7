//! The shared scenarios on SQLite (a temporary file per test).
diesel_facade_tests::backend_suite!(diesel::SqliteConnection, single_writer = true);
