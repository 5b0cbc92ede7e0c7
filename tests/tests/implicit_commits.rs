//! Statements that make MariaDB commit the open transaction implicitly
//! (DDL, `FLUSH`, `SET autocommit`, ...) inside writers, on one MariaDB
//! server and on a Galera node. The promise (docs/locks.md): a writer with
//! such statements behaves as on one server, whatever their spelling
//! (comments, later in a batch), and one inside a `#[writer(savepoint)]`,
//! where the savepoint cannot survive, is `CommitUnknown`, never a
//! retryable deadlock.

use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::connection::SimpleConnection;
use diesel::{Connection, MysqlConnection};
use diesel_facade::{writer, Context, Error, ErrorKind, Facade};
use diesel_facade_tests::TestBackend;

/// A facade on a fresh database: the MariaDB primary, or Galera node 1.
fn target(test: &str, galera: bool) -> Facade<MysqlConnection> {
    if !galera {
        return diesel_facade_tests::facade::<MysqlConnection>(test, |b| b);
    }
    let node = diesel_facade_tests::galera_urls().swap_remove(0);
    let url = MysqlConnection::create_database(&node, &format!("g_{test}"));
    let mut conn = MysqlConnection::establish(&url).expect("connect");
    conn.batch_execute(MysqlConnection::SCHEMA)
        .expect("test schema");
    Facade::builder()
        .writer(url)
        .build()
        .expect("facade on Galera node 1")
}

fn counter(db: &Facade<MysqlConnection>) -> i64 {
    diesel_facade::write(&mut db.context(), |ctx| {
        MysqlConnection::query_n(
            ctx.conn(),
            "SELECT CAST(value AS SIGNED) AS n FROM counters WHERE id = 'c'",
        )
    })
    .expect("read the counter")
}

#[writer(retry = 3)]
fn bump_around(
    ctx: &mut Context<MysqlConnection>,
    statement: &str,
    attempts: &AtomicUsize,
) -> Result<(), Error> {
    attempts.fetch_add(1, Ordering::SeqCst);
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 1 WHERE id = 'c'")?;
    ctx.conn().batch_execute(statement)?;
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 10 WHERE id = 'c'")?;
    Ok(())
}

const SPELLINGS: [(&str, &str); 8] = [
    (
        "plain",
        "CREATE TABLE t1 (id INT PRIMARY KEY) ENGINE=InnoDB",
    ),
    (
        "block_comment",
        "/* why */ CREATE TABLE t2 (id INT PRIMARY KEY) ENGINE=InnoDB",
    ),
    (
        "line_comment",
        "-- why\nCREATE TABLE t3 (id INT PRIMARY KEY) ENGINE=InnoDB",
    ),
    (
        "later_in_a_batch",
        "SELECT 1; CREATE TABLE t4 (id INT PRIMARY KEY) ENGINE=InnoDB",
    ),
    (
        "after_a_set",
        "SET @x = 1; ALTER TABLE items ADD COLUMN extra INT NULL",
    ),
    ("flush", "FLUSH TABLES"),
    ("set_autocommit", "SET autocommit = 1"),
    ("truncate", "TRUNCATE TABLE items"),
];

fn every_spelling_behaves_as_on_one_server(galera: bool) {
    let mut wrong = Vec::new();
    for (name, statement) in SPELLINGS {
        let db = target(&format!("implicit_{name}"), galera);
        let attempts = AtomicUsize::new(0);
        let result = bump_around(&mut db.context(), statement, &attempts);
        let value = counter(&db);
        let tried = attempts.load(Ordering::SeqCst);
        if result.is_err() || value != 11 || tried != 1 {
            wrong.push(format!(
                "{name}: {result:?}, counter {value}, attempts {tried}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn implicit_commits_in_a_writer_behave_as_on_one_server_on_mariadb() {
    every_spelling_behaves_as_on_one_server(false);
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn implicit_commits_in_a_writer_behave_as_on_one_server_on_galera() {
    every_spelling_behaves_as_on_one_server(true);
}

#[writer(savepoint)]
fn ddl_in_a_savepoint(ctx: &mut Context<MysqlConnection>) -> Result<(), Error> {
    ctx.conn()
        .batch_execute("CREATE TABLE t_sp (id INT PRIMARY KEY) ENGINE=InnoDB")?;
    Ok(())
}

#[writer(retry = 3)]
fn bump_around_a_savepoint_with_ddl(
    ctx: &mut Context<MysqlConnection>,
    attempts: &AtomicUsize,
) -> Result<(), Error> {
    attempts.fetch_add(1, Ordering::SeqCst);
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 1 WHERE id = 'c'")?;
    ddl_in_a_savepoint(ctx)?;
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 10 WHERE id = 'c'")?;
    Ok(())
}

fn ddl_in_a_savepoint_is_commit_unknown(galera: bool) {
    let db = target("implicit_in_savepoint", galera);
    let attempts = AtomicUsize::new(0);
    let err = bump_around_a_savepoint_with_ddl(&mut db.context(), &attempts)
        .expect_err("the savepoint cannot survive the implicit commit");
    assert_eq!(err.kind(), ErrorKind::CommitUnknown, "{err}");
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "never retried");
    assert_eq!(
        counter(&db),
        1,
        "what ran before the DDL was committed, once"
    );
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn ddl_in_a_savepoint_is_commit_unknown_on_mariadb() {
    ddl_in_a_savepoint_is_commit_unknown(false);
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn ddl_in_a_savepoint_is_commit_unknown_on_galera() {
    ddl_in_a_savepoint_is_commit_unknown(true);
}

#[writer]
fn write_then_roll_back(ctx: &mut Context<MysqlConnection>, rollback: &str) -> Result<(), Error> {
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 1 WHERE id = 'c'")?;
    ctx.conn().batch_execute(rollback)?;
    Ok(())
}

/// A writer that runs `ROLLBACK` itself (however spelt) and returns `Ok`
/// is never reported as committed: the server rolled its write back. It
/// was `Ok` on MariaDB and Galera (PostgreSQL already said
/// `UnbalancedTransaction`).
fn own_rollback_is_never_a_commit(galera: bool) {
    let spellings = [
        "ROLLBACK".to_owned(),
        "rollback work".to_owned(),
        "ROLLBACK /* not to a savepoint */".to_owned(),
        "SELECT 1; ROLLBACK".to_owned(),
        "SET STATEMENT max_statement_time = 0 FOR ROLLBACK".to_owned(),
        format!("{}ROLLBACK", " ".repeat(600)),
        format!("/* {} */ ROLLBACK", "y".repeat(600)),
        "/*! ROLLBACK */".to_owned(),
        "/*M!100000 ROLLBACK */".to_owned(),
        "--\nROLLBACK".to_owned(),
        "--\r\nROLLBACK".to_owned(),
        // A `;` inside a string or a quoted name ends no statement.
        "SELECT 'a;#'; ROLLBACK".to_owned(),
        "SELECT 'a;/*'; ROLLBACK; SELECT '*/'".to_owned(),
        "SELECT 1 AS `;-- `; ROLLBACK".to_owned(),
    ];
    let mut wrong = Vec::new();
    for (n, rollback) in spellings.iter().enumerate() {
        let db = target(&format!("own_rollback_{n}"), galera);
        let result = write_then_roll_back(&mut db.context(), rollback);
        let value = counter(&db);
        let kind = result.as_ref().err().map(Error::kind);
        if kind != Some(ErrorKind::UnbalancedTransaction) || value != 0 {
            wrong.push(format!("{rollback:?}: {result:?}, counter {value}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn own_rollback_is_never_a_commit_on_mariadb() {
    own_rollback_is_never_a_commit(false);
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn own_rollback_is_never_a_commit_on_galera() {
    own_rollback_is_never_a_commit(true);
}

/// Spellings of an implicit commit that start like a statement that keeps
/// the transaction: MariaDB's `SET STATEMENT .. FOR <statement>` runs any
/// statement (`COMMIT`, DDL), `SET PASSWORD` writes the `mysql` schema, and
/// a `;` inside a string or comment must not hide what follows it.
const HIDDEN: [(&str, &str); 3] = [
    (
        "set_statement_for_ddl",
        "SET STATEMENT max_statement_time = 0 FOR CREATE TABLE t_hidden (id INT PRIMARY KEY) ENGINE=InnoDB",
    ),
    (
        "set_statement_for_commit",
        "SET STATEMENT max_statement_time = 0 FOR COMMIT",
    ),
    (
        "set_autocommit_after_a_semicolon_in_a_string",
        "SET @x = ';SELECT 1', autocommit = 1",
    ),
];

#[writer(savepoint)]
fn hidden_in_a_savepoint(ctx: &mut Context<MysqlConnection>, statement: &str) -> Result<(), Error> {
    ctx.conn().batch_execute(statement)?;
    Ok(())
}

#[writer(retry = 3)]
fn bump_around_a_savepoint_with(
    ctx: &mut Context<MysqlConnection>,
    statement: &str,
    attempts: &AtomicUsize,
) -> Result<(), Error> {
    attempts.fetch_add(1, Ordering::SeqCst);
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 1 WHERE id = 'c'")?;
    hidden_in_a_savepoint(ctx, statement)?;
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 10 WHERE id = 'c'")?;
    Ok(())
}

/// However the implicit commit is spelt, one inside a savepoint is
/// `CommitUnknown`, run once: never a retried deadlock that repeats what
/// the implicit commit already committed.
fn hidden_implicit_commits_in_a_savepoint_are_commit_unknown(galera: bool) {
    let mut wrong = Vec::new();
    let ddl = "CREATE TABLE t_hidden (id INT PRIMARY KEY) ENGINE=InnoDB";
    // Behind a prefix longer than the facade once read of a statement.
    let behind_long_prefixes = [
        ("ddl_after_spaces", format!("{}{ddl}", " ".repeat(600))),
        ("ddl_after_new_lines", format!("{}{ddl}", "\n".repeat(300))),
        (
            "ddl_after_a_long_comment",
            format!("/* {} */ {ddl}", "x".repeat(600)),
        ),
        // MariaDB runs an executable comment.
        ("ddl_in_an_executable_comment", format!("/*! {ddl} */")),
    ];
    let statements = HIDDEN
        .iter()
        .map(|(name, statement)| (*name, (*statement).to_owned()))
        .chain(behind_long_prefixes);
    for (name, statement) in statements {
        let db = target(&format!("hidden_{name}"), galera);
        let attempts = AtomicUsize::new(0);
        let result = bump_around_a_savepoint_with(&mut db.context(), &statement, &attempts);
        let value = counter(&db);
        let tried = attempts.load(Ordering::SeqCst);
        let kind = result.as_ref().err().map(Error::kind);
        // 0 where the session already had autocommit on (one MariaDB
        // server): `SET autocommit = 1` then commits nothing.
        if kind != Some(ErrorKind::CommitUnknown) || value > 1 || tried != 1 {
            wrong.push(format!(
                "{name}: {result:?}, counter {value}, attempts {tried}"
            ));
        }
    }
    // A `SET STATEMENT .. FOR` a statement that keeps the transaction
    // keeps it: the savepoint and the whole writer go on.
    let db = target("hidden_set_statement_select", galera);
    let attempts = AtomicUsize::new(0);
    let result = bump_around_a_savepoint_with(
        &mut db.context(),
        "SET STATEMENT max_statement_time = 10 FOR SELECT 1",
        &attempts,
    );
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(counter(&db), 11);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn hidden_implicit_commits_in_a_savepoint_are_commit_unknown_on_mariadb() {
    hidden_implicit_commits_in_a_savepoint_are_commit_unknown(false);
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn hidden_implicit_commits_in_a_savepoint_are_commit_unknown_on_galera() {
    hidden_implicit_commits_in_a_savepoint_are_commit_unknown(true);
}

#[writer]
fn change_the_session(
    ctx: &mut Context<MysqlConnection>,
    statement: &str,
    fail: bool,
) -> Result<(), Error> {
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 1 WHERE id = 'c'")?;
    ctx.conn().batch_execute(statement)?;
    if fail {
        return Err(Error::new(ErrorKind::Other, "the body's own error"));
    }
    Ok(())
}

/// A writer that ran a statement changing the session (dropping the Galera
/// guard's temporary table, `SET autocommit = 1`, `SET SESSION TRANSACTION
/// READ ONLY`) does not put that session back into the pool, whether it
/// then returns `Err` or `Ok`: before, every later writer on the connection
/// failed (1146, the guard table is gone; 1792, READ ONLY transaction), and
/// the connection was never replaced.
fn a_writer_that_changed_the_session_does_not_poison_the_pool(galera: bool, statements: &[&str]) {
    let url = if galera {
        let node = diesel_facade_tests::galera_urls().swap_remove(0);
        MysqlConnection::create_database(&node, "g_poison")
    } else {
        let server = std::env::var("FACADE_TEST_MYSQL_URL").expect("FACADE_TEST_MYSQL_URL");
        MysqlConnection::create_database(&server, "m_poison")
    };
    let mut conn = MysqlConnection::establish(&url).expect("connect");
    conn.batch_execute(MysqlConnection::SCHEMA)
        .expect("test schema");
    let db = Facade::<MysqlConnection>::builder()
        .writer(url)
        .max_pool_size(1)
        .build()
        .expect("facade");
    db.run_migrations().expect("the locks table");
    let connection_id = || {
        diesel_facade::write(&mut db.context(), |ctx| {
            MysqlConnection::query_n(ctx.conn(), "SELECT CAST(CONNECTION_ID() AS SIGNED) AS n")
        })
        .expect("the connection's id")
    };
    // An ordinary writer, failed or not, keeps its connection, also one
    // that sets user variables or takes a lock with a timeout.
    let before = connection_id();
    change_the_session(&mut db.context(), "SET @x = 1", true).unwrap_err();
    change_the_session(&mut db.context(), "SET @x = 1", false).unwrap();
    diesel_facade::write(&mut db.context(), |ctx| {
        ctx.lock_timeout("poison", std::time::Duration::from_secs(1))
    })
    .unwrap();
    assert_eq!(
        connection_id(),
        before,
        "ordinary writers kept the connection"
    );
    for &statement in statements {
        for fail in [true, false] {
            let result = change_the_session(&mut db.context(), statement, fail);
            assert_eq!(result.is_err(), fail, "{statement}: {result:?}");
            for _ in 0..3 {
                let bumped = bump_around(&mut db.context(), "SELECT 1", &AtomicUsize::new(0));
                assert!(
                    bumped.is_ok(),
                    "after {statement} (fail: {fail}): {bumped:?}"
                );
            }
        }
    }
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_writer_that_changed_the_session_does_not_poison_the_pool_on_galera() {
    a_writer_that_changed_the_session_does_not_poison_the_pool(
        true,
        &[
            "DROP TEMPORARY TABLE diesel_facade_guard",
            "SET autocommit = 1",
            "SET SESSION TRANSACTION READ ONLY",
        ],
    );
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn a_writer_that_changed_the_session_does_not_poison_the_pool_on_mariadb() {
    a_writer_that_changed_the_session_does_not_poison_the_pool(
        false,
        &[
            "SET SESSION TRANSACTION READ ONLY",
            "SET @@session.tx_read_only = 1",
        ],
    );
}

/// A body that deletes the Galera guard's row (or otherwise writes its
/// table) and commits does not leave the guard switched off for the
/// session's later transactions: the connection is replaced.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn a_writer_that_deleted_the_guard_row_does_not_switch_the_guard_off_on_galera() {
    let node = diesel_facade_tests::galera_urls().swap_remove(0);
    let url = MysqlConnection::create_database(&node, "g_guard_row");
    let db = Facade::<MysqlConnection>::builder()
        .writer(url)
        .max_pool_size(1)
        .build()
        .expect("facade on Galera node 1");
    let armed = || {
        diesel_facade::write(&mut db.context(), |ctx| {
            MysqlConnection::query_n(
                ctx.conn(),
                "SELECT COUNT(*) AS n FROM diesel_facade_guard WHERE armed",
            )
        })
        .expect("read the guard")
    };
    assert_eq!(armed(), 1, "a writer runs armed");
    diesel_facade::write(&mut db.context(), |ctx| {
        ctx.conn().batch_execute("DELETE FROM diesel_facade_guard")
    })
    .expect("the body's delete commits");
    assert_eq!(armed(), 1, "the next writer runs armed again");
}

#[writer]
fn bump_around_once(ctx: &mut Context<MysqlConnection>, batches: &[&str]) -> Result<(), Error> {
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 1 WHERE id = 'c'")?;
    for batch in batches {
        ctx.conn().batch_execute(batch)?;
    }
    ctx.conn()
        .batch_execute("UPDATE counters SET value = value + 10 WHERE id = 'c'")?;
    Ok(())
}

/// A target with the procedures the next test calls.
fn target_with_procedures(test: &str, galera: bool) -> Facade<MysqlConnection> {
    let db = target(test, galera);
    diesel_facade::write(&mut db.context(), |ctx| {
        ctx.conn().batch_execute(
            "CREATE PROCEDURE facade_rollback() ROLLBACK; \
             CREATE PROCEDURE facade_commit() COMMIT; \
             CREATE PROCEDURE facade_nothing() BEGIN END",
        )?;
        Ok::<_, Error>(())
    })
    .expect("create the procedures");
    db
}

/// What a writer that adds 1, runs some batches and adds 10 must report,
/// on one server and on Galera: its error kind (`None`: `Ok`) and the
/// counter after it.
struct Unread {
    batches: Vec<String>,
    one_server: (Option<ErrorKind>, i64),
    galera: (Option<ErrorKind>, i64),
}

fn unread(
    batches: &[&str],
    one_server: (Option<ErrorKind>, i64),
    galera: (Option<ErrorKind>, i64),
) -> Unread {
    Unread {
        batches: batches.iter().map(|b| (*b).to_owned()).collect(),
        one_server,
        galera,
    }
}

/// SQL the facade cannot read (a procedure, dynamic SQL, a compound
/// statement, text past the 1 MiB it reads) that rolls the transaction
/// back is never reported as a commit. On one server, with autocommit, the
/// statement after it committed on its own and the outcome is
/// `CommitUnknown`; on Galera, without autocommit, the guard refuses the
/// commit and nothing is committed. All were `Ok`, with the first write
/// rolled back. Such SQL that keeps the transaction commits as usual; one
/// that commits is `CommitUnknown` on one server (a commit and a rollback
/// look alike there) and `Ok` on Galera (the committed guard says which);
/// with a statement that commits beside it, nothing says what was
/// committed: `CommitUnknown` on both.
fn unread_sql_that_ends_the_transaction_is_never_a_false_commit(galera: bool) {
    use ErrorKind::{CommitUnknown, Deadlock};
    let rolled_back = (Some(CommitUnknown), 10);
    let refused = (Some(Deadlock), 0);
    let kept = (None, 11);
    let padding = format!("/* {} */", "x".repeat(1 << 20));
    let behind_padding = format!("SELECT 1; {padding} CALL facade_rollback()");
    let cases = [
        unread(&["CALL facade_rollback()"], rolled_back, refused),
        unread(&["EXECUTE IMMEDIATE 'ROLLBACK'"], rolled_back, refused),
        unread(
            &["PREPARE s FROM 'ROLLBACK'; EXECUTE s"],
            rolled_back,
            refused,
        ),
        unread(
            &["PREPARE s FROM 'ROLLBACK'", "EXECUTE s"],
            rolled_back,
            refused,
        ),
        unread(&["BEGIN NOT ATOMIC ROLLBACK; END"], rolled_back, refused),
        unread(&["IF 1 THEN ROLLBACK; END IF"], rolled_back, refused),
        unread(
            &["SET STATEMENT max_statement_time = 0 FOR CALL facade_rollback()"],
            rolled_back,
            refused,
        ),
        unread(&["--\nCALL facade_rollback()"], rolled_back, refused),
        unread(
            &["SELECT 'a;#'; CALL facade_rollback()"],
            rolled_back,
            refused,
        ),
        unread(
            &["SELECT 'a;/*'; CALL facade_rollback(); SELECT '*/'"],
            rolled_back,
            refused,
        ),
        unread(
            &["SELECT 1 AS `;-- `; EXECUTE IMMEDIATE 'ROLLBACK'"],
            rolled_back,
            refused,
        ),
        unread(&[&behind_padding], rolled_back, refused),
        // A transaction opened again after the rollback, by the body or
        // by switching autocommit off first.
        unread(
            &["EXECUTE IMMEDIATE 'ROLLBACK'", "START TRANSACTION"],
            (Some(CommitUnknown), 0),
            (Some(CommitUnknown), 0),
        ),
        unread(
            &["EXECUTE IMMEDIATE 'ROLLBACK'; START TRANSACTION"],
            (Some(CommitUnknown), 0),
            (Some(CommitUnknown), 0),
        ),
        unread(
            &[
                "EXECUTE IMMEDIATE 'SET autocommit = 0'",
                "EXECUTE IMMEDIATE 'ROLLBACK'",
            ],
            (Some(CommitUnknown), 0),
            refused,
        ),
        // A statement counted as committing, then a rollback.
        unread(
            &[
                "CREATE TEMPORARY TABLE tmp_x (x INT)",
                "CALL facade_rollback()",
            ],
            (Some(CommitUnknown), 10),
            (Some(CommitUnknown), 0),
        ),
        unread(
            &[
                "CREATE TABLE t_ddl (id INT PRIMARY KEY) ENGINE=InnoDB",
                "UPDATE counters SET value = value + 100 WHERE id = 'c'",
                "CALL facade_rollback()",
            ],
            (Some(CommitUnknown), 111),
            (Some(CommitUnknown), 1),
        ),
        unread(&["CALL facade_nothing()"], kept, kept),
        unread(&["EXECUTE IMMEDIATE 'DO 1'"], kept, kept),
        unread(&["IF 0 THEN ROLLBACK; END IF"], kept, kept),
        unread(&["PREPARE s FROM 'DO 1'", "EXECUTE s"], kept, kept),
        unread(&["CALL facade_commit()"], (Some(CommitUnknown), 11), kept),
        unread(
            &["EXECUTE IMMEDIATE 'COMMIT'"],
            (Some(CommitUnknown), 11),
            kept,
        ),
    ];
    let mut wrong = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let db = target_with_procedures(&format!("unread_{n}"), galera);
        let (kind, value) = if galera { case.galera } else { case.one_server };
        let batches: Vec<&str> = case.batches.iter().map(String::as_str).collect();
        let result = bump_around_once(&mut db.context(), &batches);
        let after = counter(&db);
        if result.as_ref().err().map(Error::kind) != kind || after != value {
            let shown: Vec<String> = batches
                .iter()
                .map(|b| b.chars().take(60).collect())
                .collect();
            wrong.push(format!(
                "{shown:?}: {result:?}, counter {after} (expected {kind:?}, {value})"
            ));
        }
        // The connection that ran it is not reused: the next writer works.
        let next = bump_around_once(&mut db.context(), &["DO 1"]);
        if next.is_err() || counter(&db) != after + 11 {
            wrong.push(format!("case {n}: the next writer: {next:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
#[cfg_attr(not(mysql_server), ignore = "needs FACADE_TEST_MYSQL_URL")]
fn unread_sql_that_ends_the_transaction_is_never_a_false_commit_on_mariadb() {
    unread_sql_that_ends_the_transaction_is_never_a_false_commit(false);
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn unread_sql_that_ends_the_transaction_is_never_a_false_commit_on_galera() {
    unread_sql_that_ends_the_transaction_is_never_a_false_commit(true);
}
