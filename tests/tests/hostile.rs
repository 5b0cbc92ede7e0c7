//! Issue 7 ("Trust") on every backend: hostile values cannot steer error
//! kinds, refused connections fail fast, lock names mean the same everywhere.
use diesel_facade_tests::hostile as trust;

mod sqlite {
    use super::trust;
    type Conn = diesel::SqliteConnection;

    #[test]
    fn handled_errors_quoting_hostile_values_commit_once() {
        trust::handled_errors_quoting_hostile_values_commit_once::<Conn>();
    }

    #[test]
    fn an_unopenable_database_fails_fast_and_is_not_retried() {
        trust::a_dropped_database_fails_fast_and_is_not_retried::<Conn>();
    }

    #[test]
    fn lock_names_have_one_definition() {
        trust::lock_names_have_one_definition::<Conn>();
    }
}

mod postgres {
    use super::trust;
    type Conn = diesel::PgConnection;

    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn handled_errors_quoting_hostile_values_commit_once() {
        trust::handled_errors_quoting_hostile_values_commit_once::<Conn>();
    }

    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn a_dropped_database_fails_fast_and_is_not_retried() {
        trust::a_dropped_database_fails_fast_and_is_not_retried::<Conn>();
    }

    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn a_wrong_password_at_checkout_fails_fast_and_is_not_retried() {
        trust::a_wrong_password_at_checkout_fails_fast_and_is_not_retried::<Conn>();
    }

    #[test]
    #[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
    fn lock_names_have_one_definition() {
        trust::lock_names_have_one_definition::<Conn>();
    }
}

mod mysql {
    use super::trust;
    type Conn = diesel::MysqlConnection;

    #[test]
    #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
    fn handled_duplicates_of_hostile_values_commit_once() {
        trust::handled_errors_quoting_hostile_values_commit_once::<Conn>();
    }

    #[test]
    #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
    fn a_dropped_database_fails_fast_and_is_not_retried() {
        trust::a_dropped_database_fails_fast_and_is_not_retried::<Conn>();
    }

    #[test]
    #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
    fn a_wrong_password_at_checkout_fails_fast_and_is_not_retried() {
        trust::a_wrong_password_at_checkout_fails_fast_and_is_not_retried::<Conn>();
    }

    #[test]
    #[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
    fn lock_names_have_one_definition() {
        trust::lock_names_have_one_definition::<Conn>();
    }
}
