//! Unit tests of the implicit-commit reading.

use super::{
    changes_the_session, commits_apart_from_unread_sql, commits_implicitly, is_one_kept_statement,
    rolls_back, runs_unread_sql,
};

#[test]
fn the_quick_read_agrees_with_both_checks() {
    let statements = [
        "SELECT 1",
        "  select * from t where a = 'x;y'",
        "SELECT 1; DROP TABLE t",
        "SELECT ';' FROM t",
        "/* c */ INSERT INTO t VALUES (1)",
        "/*! DROP TABLE t */ SELECT 1",
        "/*M!100000 DROP TABLE t */",
        "-- c\nUPDATE t SET a = 1",
        "#c\nDELETE FROM t",
        "SET autocommit = 1",
        "SET @x = 1",
        "SET STATEMENT max_statement_time = 1 FOR DROP TABLE t",
        "SET SESSION TRANSACTION READ ONLY",
        "CREATE TABLE t (a INT)",
        "WITH x AS (SELECT 1) SELECT * FROM x",
        "REPLACE INTO t VALUES (1)",
        "PREPARE s FROM 'DROP TABLE t'",
        "EXECUTE s",
        "CALL p()",
        "ROLLBACK",
        "RELEASE SAVEPOINT a",
        "SAVEPOINT a",
        "SELECTED",
        "SELECT1",
        "",
        "   ",
        "/* unterminated",
        "UPDATE diesel_facade_guard SET armed = 0",
        "LOCK TABLES t WRITE",
    ];
    for sql in statements {
        for complete in [true, false] {
            if is_one_kept_statement(sql, complete) {
                assert!(!commits_implicitly(sql, complete), "{sql:?} {complete}");
                assert!(!changes_the_session(sql), "{sql:?} {complete}");
            }
        }
    }
    // And it does read the usual ones.
    for sql in [
        "SELECT 1",
        "/* c */ INSERT INTO t VALUES (1)",
        "DELETE FROM t",
    ] {
        assert!(is_one_kept_statement(sql, true), "{sql:?}");
    }
    for sql in [
        "SELECT 1; DROP TABLE t",
        "/*! DROP TABLE t */ SELECT 1",
        "SET @x = 1",
    ] {
        assert!(!is_one_kept_statement(sql, true), "{sql:?}");
    }
    assert!(!is_one_kept_statement("SELECT 1", false));
}

proptest::proptest! {
    /// Whatever SQL-like text it is given (comments, executable
    /// comments, quotes, `;`, statements that commit), the quick read
    /// never says "kept" where either check it skips would say more.
    #[test]
    fn the_quick_read_never_hides_what_the_checks_see(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "SELECT", "select", "INSERT", "UPDATE", "DELETE", "WITH", "DO", "SET",
                "autocommit", "SESSION", "STATEMENT", "FOR", "DROP TABLE t", "COMMIT",
                "ROLLBACK", "CALL p()", "@x", "@@x", "=", "1", "x", " ", "\n", "/*", "*/",
                "/*!", "/*M!100000", "--", "-- ", "#", "'", "\"", "`", ";", "\\", ",",
            ]),
            0..14,
        ),
        complete in proptest::bool::ANY,
    ) {
        let sql = parts.concat();
        if is_one_kept_statement(&sql, complete) {
            proptest::prop_assert!(!commits_implicitly(&sql, complete), "{:?}", sql);
            proptest::prop_assert!(!changes_the_session(&sql), "{:?}", sql);
        }
    }
}

#[test]
fn an_allowlist_decides_what_keeps_the_transaction() {
    for keeps in [
        "SELECT 1",
        "  insert into t values (1)",
        "/* c */ UPDATE t SET a = 1",
        "-- c\nDELETE FROM t",
        "SET @x = 1; SELECT @x",
        "SAVEPOINT a; RELEASE SAVEPOINT a; ROLLBACK TO SAVEPOINT a",
        "",
        "SET STATEMENT max_statement_time = 10 FOR SELECT 1",
        "set statement max_statement_time = 10, sql_mode = 'x' for update t set a = 1",
    ] {
        assert!(!commits_implicitly(keeps, true), "{keeps}");
    }
    for commits in [
        "CREATE TABLE t (a INT)",
        "/* c */ DROP TABLE t",
        "# c\nALTER TABLE t ADD b INT",
        "SELECT 1; TRUNCATE t",
        "FLUSH TABLES",
        "SET autocommit = 1",
        "COMMIT",
        "ROLLBACK",
        "LOCK TABLES t WRITE",
        "CALL p()",
        "SET STATEMENT max_statement_time = 0 FOR COMMIT",
        "set /* c */ statement max_statement_time = 0 for create table t (a int)",
        "SET STATEMENT max_statement_time = 0 /* for select */ FOR COMMIT",
        "SET STATEMENT sql_mode = 'for select' FOR DROP TABLE t",
        "SET STATEMENT max_statement_time = 0",
        "SET STATEMENT max_statement_time = 0 FOR SELECT 1; COMMIT",
        "SET @x = ';SELECT 1', autocommit = 1",
        "SET @x = 1 /*;SELECT*/, autocommit = 1",
        "SET PASSWORD = PASSWORD('x')",
    ] {
        assert!(commits_implicitly(commits, true), "{commits}");
    }
    // Cut short: what follows is unknown.
    assert!(commits_implicitly("SELECT 1; SELECT", false));
    assert!(commits_implicitly("SELECT 1;   ", false));
    assert!(!commits_implicitly("SELECT 1;   ", true));
    // MariaDB runs executable comments.
    for executed in [
        "/*! CREATE TABLE t (a INT) */",
        "/*M!100000 DROP TABLE t */",
        "/*!40101 ROLLBACK */",
        "SELECT 1; /*!COMMIT*/",
    ] {
        assert!(commits_implicitly(executed, true), "{executed}");
    }
    assert!(!commits_implicitly("/*!40101 SELECT 1 */", true));
    assert!(super::changes_the_session("/*!40101 SET NAMES utf8 */"));
    assert!(rolls_back("/*! ROLLBACK */"));
    assert!(rolls_back("/*M!100000 rollback work */"));
    // A word in a comment is no `TO SAVEPOINT`.
    assert!(commits_implicitly("ROLLBACK /* savepoint */", true));
    assert!(!commits_implicitly("rollback work to savepoint a", true));
}

#[test]
fn a_set_of_the_session_is_told_apart() {
    for changes in [
        "SET SESSION TRANSACTION READ ONLY",
        "set @@session.transaction_read_only = 1",
        "SET sql_mode = ''",
        "SET @x = 1, SESSION sql_mode = ''",
        "SELECT 1; SET NAMES latin1",
        "SET SESSION innodb_lock_wait_timeout_x = 1",
        "SET STATEMENT max_statement_time = 1 FOR SET sql_mode = ''",
        "SET STATEMENT max_statement_time = 1",
        // A body's own: nothing restores them.
        "SET SESSION innodb_lock_wait_timeout = 3",
        "SET SESSION max_statement_time = 0.000001",
        "SET SESSION max_statement_time = DEFAULT",
        // The facade's mark does not cover other settings.
        "SET SESSION sql_mode = '' /* diesel_facade restores this setting */",
        "USE other_db",
        "SELECT 1; use `other db`",
    ] {
        assert!(super::changes_the_session(changes), "{changes}");
    }
    for keeps in [
        "SET @x = 1",
        "set @a = 1, @b = 2",
        "SET SESSION innodb_lock_wait_timeout = 3 /* diesel_facade restores this setting */",
        "SET SESSION max_statement_time = 0.500000 /* diesel_facade restores this setting */",
        "SET SESSION max_statement_time = DEFAULT /* diesel_facade restores this setting */",
        "SET STATEMENT max_statement_time = 1 FOR SELECT 1",
        "SELECT 'SET sql_mode'",
        "INSERT INTO t VALUES (1)",
    ] {
        assert!(!super::changes_the_session(keeps), "{keeps}");
    }
}

#[test]
fn a_rollback_of_the_whole_transaction_is_told_apart() {
    for whole in [
        "ROLLBACK",
        "rollback work",
        "ROLLBACK /* savepoint */",
        "SELECT 1; /* c */ ROLLBACK AND NO CHAIN",
        "SET STATEMENT max_statement_time = 0 FOR ROLLBACK",
        "set statement max_statement_time = 0 for /* c */ rollback work",
        "--\nROLLBACK",
        "--\r\nROLLBACK",
        "SELECT 1; --\nROLLBACK",
    ] {
        assert!(rolls_back(whole), "{whole}");
    }
    for not in [
        "ROLLBACK TO SAVEPOINT a",
        "ROLLBACK WORK TO a",
        "rollback /* c */ to savepoint a",
        "COMMIT",
        "CREATE TABLE t (a INT)",
        "SELECT 'ROLLBACK'",
        "SET STATEMENT max_statement_time = 0 FOR ROLLBACK TO SAVEPOINT a",
        "SET @rollback = 1",
        "--ROLLBACK",
    ] {
        assert!(!rolls_back(not), "{not}");
    }
}

#[test]
fn sql_the_facade_cannot_read_is_told_apart() {
    for head in [
        "CALL archive_old_rows()",
        "call p",
        "EXECUTE IMMEDIATE 'ROLLBACK'",
        "execute stmt USING @x",
        "SELECT 1; CALL p()",
        "/* why */ CALL p()",
        "BEGIN NOT ATOMIC ROLLBACK; END",
        "IF 1 THEN ROLLBACK; END IF",
        "CASE WHEN 1 THEN ROLLBACK; END CASE",
        "lbl: LOOP LEAVE lbl; END LOOP",
        "lbl : BEGIN NOT ATOMIC END",
        "WHILE 0 DO SELECT 1; END WHILE",
        "REPEAT SELECT 1; UNTIL 1 END REPEAT",
        "FOR i IN 1..2 DO SELECT 1; END FOR",
        "--\nCALL p()",
        "--\r\nEXECUTE IMMEDIATE 'ROLLBACK'",
        "--\t\nCALL p()",
        "SET STATEMENT max_statement_time = 1 FOR CALL p()",
    ] {
        assert!(runs_unread_sql(head), "{head}");
    }
    for head in [
        "BEGIN",
        "BEGIN WORK",
        "CREATE TABLE t (id INT)",
        "SELECT 'CALL p()'",
        "UPDATE t SET x = 1 -- CALL p()",
        "INSERT INTO t VALUES (1)",
        "SET @x = 1",
        "ROLLBACK",
        "",
    ] {
        assert!(!runs_unread_sql(head), "{head}");
    }
}

#[test]
fn a_batch_of_unread_sql_may_commit_apart_from_it() {
    for alone in [
        "CALL p()",
        "EXECUTE IMMEDIATE 'ROLLBACK'",
        "SELECT 1; CALL p(); UPDATE t SET a = 1",
        "IF 0 THEN ROLLBACK; END IF",
        "IF 1 THEN SELECT 1; ELSE SELECT 2; END IF",
        "REPEAT SELECT 1; UNTIL 1 END REPEAT",
        "BEGIN NOT ATOMIC ROLLBACK; END",
        "PREPARE s FROM 'ROLLBACK'; EXECUTE s",
    ] {
        assert!(!commits_apart_from_unread_sql(alone, true), "{alone}");
    }
    for with in [
        "EXECUTE IMMEDIATE 'ROLLBACK'; START TRANSACTION",
        "CALL p(); BEGIN",
        "CREATE TABLE t (a INT); CALL p()",
        "CALL p(); SET autocommit = 0",
    ] {
        assert!(commits_apart_from_unread_sql(with, true), "{with}");
    }
}

#[test]
fn a_semicolon_in_a_string_or_comment_ends_no_statement() {
    for (batch, hidden) in [
        ("SELECT 'a;#'; ROLLBACK", "ROLLBACK"),
        ("SELECT 1 AS `;-- `; ROLLBACK", "ROLLBACK"),
        ("SET @x = 'a;#'; ROLLBACK", "ROLLBACK"),
        ("SELECT \"a;#\"; ROLLBACK", "ROLLBACK"),
        ("SELECT 'it''s;#'; ROLLBACK", "ROLLBACK"),
        ("SELECT 'a\\';#'; ROLLBACK", "ROLLBACK"),
        ("SELECT 1 /* ; # */; ROLLBACK", "ROLLBACK"),
        ("SELECT 'a;/*'; ROLLBACK; SELECT '*/'", "ROLLBACK"),
        ("SELECT 1 -- ;\n; ROLLBACK", "ROLLBACK"),
    ] {
        assert!(rolls_back(batch), "{batch} hides its {hidden}");
        assert!(commits_implicitly(batch, true), "{batch}");
    }
    for batch in [
        "SELECT 'a;/*'; CALL p(); SELECT '*/'",
        "SELECT 'a;#'; CALL p()",
        "SELECT 1 AS `;-- `; EXECUTE IMMEDIATE 'ROLLBACK'",
    ] {
        assert!(runs_unread_sql(batch), "{batch}");
    }
    for keeps in [
        "SELECT 'CREATE TABLE t;'",
        "SELECT 1; SELECT ';ROLLBACK'",
        "UPDATE t SET a = 'x;y' WHERE b = \"p;q\"",
        "SELECT `a;b` FROM t",
    ] {
        assert!(!commits_implicitly(keeps, true), "{keeps}");
        assert!(!rolls_back(keeps), "{keeps}");
    }
}

#[test]
fn use_keeps_the_transaction_and_changes_the_session() {
    // MariaDB does not commit at `USE`: the Galera guard stays in force.
    assert!(!super::commits_implicitly("USE other_db", true));
    assert!(!super::commits_implicitly(
        "/* c */ use `other db`; SELECT 1",
        true
    ));
    assert!(!super::is_one_kept_statement("USE other_db", true));
    assert!(super::changes_the_session("USE other_db"));
}
