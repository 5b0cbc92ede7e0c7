//! `#[reader(..)]` / `#[writer(..)]` arguments.

use super::{messages, pointed_at, tokens};
use crate::args::{parse_args, ReadRoute, Retry, Role, Transaction, WriteMode};

fn read(source: &str) -> ReadRoute {
    let args = parse_args(Role::Reader, tokens(source));
    assert!(args.error.is_none(), "{source}: {:?}", args.error);
    match args.transaction {
        Transaction::Read(route) => route,
        other => panic!("{source}: {other:?}"),
    }
}

fn write(source: &str) -> (WriteMode, Option<Retry>) {
    let args = parse_args(Role::Writer, tokens(source));
    assert!(args.error.is_none(), "{source}: {:?}", args.error);
    match args.transaction {
        Transaction::Write { mode, retry } => (mode, retry),
        other => panic!("{source}: {other:?}"),
    }
}

/// What a transaction reads as in these tests: `read replica`,
/// `write savepoint retry(2)`.
fn describe(transaction: &Transaction) -> String {
    match transaction {
        Transaction::Read(route) => format!("read {route:?}").to_lowercase(),
        Transaction::Write { mode, retry } => {
            let retry = match retry {
                None => String::new(),
                Some(Retry::DefaultAttempts) => " retry".to_owned(),
                Some(Retry::Retries(count, _)) => format!(" retry({count})"),
            };
            format!("write {mode:?}{retry}").to_lowercase()
        }
    }
}

/// Asserts that `source` is rejected with errors pointing at `at`, the
/// first of which starts with `message`, and that what was still accepted
/// reads as `accepted`.
fn assert_rejected(role: Role, source: &str, at: &[&str], message: &str, accepted: &str) {
    let args = parse_args(role, tokens(source));
    let error = args
        .error
        .unwrap_or_else(|| panic!("{source} was accepted"));
    assert_eq!(pointed_at(source, &error), at, "{source}");
    let messages = messages(error);
    assert!(messages[0].starts_with(message), "{source}: {messages:?}");
    assert_eq!(describe(&args.transaction), accepted, "{source}");
}

#[test]
fn reader_forms() {
    assert_eq!(read(""), ReadRoute::Primary);
    assert_eq!(read("replica"), ReadRoute::Replica);
    assert_eq!(read("allow_replica"), ReadRoute::AllowReplica);
    assert_eq!(read("replica,"), ReadRoute::Replica);
}

#[test]
fn writer_forms() {
    assert!(matches!(write(""), (WriteMode::Join, None)));
    assert!(matches!(write("savepoint"), (WriteMode::Savepoint, None)));
    assert!(matches!(
        write("independent"),
        (WriteMode::Independent, None)
    ));
    assert!(matches!(
        write("retry"),
        (WriteMode::Join, Some(Retry::DefaultAttempts))
    ));
    assert!(matches!(
        write("retry = 3"),
        (WriteMode::Join, Some(Retry::Retries(3, _)))
    ));
    assert!(matches!(
        write("retry = 0"),
        (WriteMode::Join, Some(Retry::Retries(0, _)))
    ));
    assert!(matches!(
        write("retry = 7u32"),
        (WriteMode::Join, Some(Retry::Retries(7, _)))
    ));
    assert!(matches!(
        write("savepoint, retry = 2"),
        (WriteMode::Savepoint, Some(Retry::Retries(2, _)))
    ));
    assert!(matches!(
        write("retry, independent,"),
        (WriteMode::Independent, Some(Retry::DefaultAttempts))
    ));
}

#[test]
fn conflicting_modes_point_at_the_second_and_keep_the_first() {
    assert_rejected(
        Role::Writer,
        "independent, savepoint",
        &["savepoint"],
        "`independent` and `savepoint` cannot be combined: ",
        "write independent",
    );
    assert_rejected(
        Role::Reader,
        "replica, allow_replica",
        &["allow_replica"],
        "`replica` and `allow_replica` cannot be combined: ",
        "read replica",
    );
}

#[test]
fn duplicates_point_at_the_repeat() {
    let source = "retry, savepoint, retry = 2";
    let error = parse_args(Role::Writer, tokens(source)).error.unwrap();
    assert_eq!(messages(error.clone()), ["duplicate argument `retry`"]);
    assert_eq!(error.span().start().column, source.rfind("retry").unwrap());

    assert_rejected(
        Role::Reader,
        "replica, replica",
        &["replica"],
        "duplicate argument `replica`",
        "read replica",
    );
}

#[test]
fn unknown_arguments_list_the_accepted_ones() {
    assert_rejected(
        Role::Writer,
        "retyr",
        &["retyr"],
        "unknown `#[writer]` argument `retyr`: \
         expected `db = NAME`, `savepoint`, `independent`, `retry` or `retry = N`",
        "write join",
    );
    assert_rejected(
        Role::Reader,
        "move",
        &["move"],
        "unknown `#[reader]` argument `move`: expected `db = NAME`, `replica` or `allow_replica`",
        "read primary",
    );
}

#[test]
fn every_bad_argument_is_reported() {
    assert_rejected(
        Role::Writer,
        "foo, savepoint, bar",
        &["foo", "bar"],
        "unknown `#[writer]` argument `foo`",
        "write savepoint",
    );
}

#[test]
fn retry_on_a_reader_explains_why() {
    assert_rejected(
        Role::Reader,
        "replica, retry = 3",
        &["retry = 3"],
        "`retry` is a `#[writer]` argument: readers are not retried, because",
        "read replica",
    );
}

#[test]
fn arguments_of_the_other_attribute_say_where_they_belong() {
    assert_rejected(
        Role::Reader,
        "savepoint",
        &["savepoint"],
        "`savepoint` is a `#[writer]` argument; `#[reader]` accepts `db = NAME`, `replica` or `allow_replica`",
        "read primary",
    );
    assert_rejected(
        Role::Writer,
        "allow_replica",
        &["allow_replica"],
        "`allow_replica` is a `#[reader]` argument: writes always go to the primary",
        "write join",
    );
}

#[test]
fn retry_counts_must_be_u32_literals() {
    for (source, at, message) in [
        ("retry = -1", "-1", "the retry count cannot be negative"),
        ("retry = 3i64", "3i64", "the retry count is a `u32`"),
        (
            "retry = 4294967296",
            "4294967296",
            "the retry count must fit in a `u32`",
        ),
        ("retry = n", "n", "expected an integer literal"),
        ("retry = \"3\"", "\"3\"", "expected an integer literal"),
        ("retry(3)", "(3)", "write the retry count as `retry = N`"),
    ] {
        assert_rejected(Role::Writer, source, &[at], message, "write join");
    }
    assert_eq!(
        describe(&parse_args(Role::Writer, tokens("retry = 4294967295")).transaction),
        "write join retry(4294967295)"
    );
}

#[test]
fn flags_take_no_value() {
    assert_rejected(
        Role::Writer,
        "savepoint = true",
        &["savepoint = true"],
        "`savepoint` takes no value",
        "write savepoint",
    );
}

#[test]
fn a_syntax_error_keeps_the_arguments_before_it() {
    assert_rejected(
        Role::Writer,
        "savepoint, retry 3",
        &["3"],
        "expected `,`",
        "write savepoint retry",
    );
}

fn database(role: Role, source: &str) -> Option<String> {
    let args = parse_args(role, tokens(source));
    assert!(args.error.is_none(), "{source}: {:?}", args.error);
    args.database.map(|name| name.to_string())
}

#[test]
fn db_names_a_database_beside_the_other_arguments() {
    assert_eq!(database(Role::Reader, ""), None);
    assert_eq!(database(Role::Reader, "db = api"), Some("api".into()));
    assert_eq!(
        database(Role::Reader, "db = api, replica"),
        Some("api".into())
    );
    assert_eq!(
        database(Role::Writer, "retry = 2, db = api"),
        Some("api".into())
    );
    let args = parse_args(Role::Writer, tokens("db = api, savepoint, retry"));
    assert_eq!(describe(&args.transaction), "write savepoint retry");
}

#[test]
fn db_needs_one_identifier() {
    for (source, at) in [
        ("db", "db"),
        ("db(api)", "db(api)"),
        ("db = \"api\"", "db = \"api\""),
        ("db = a::b", "db = a::b"),
    ] {
        assert_rejected(
            Role::Reader,
            source,
            &[at],
            "write the database as `db = NAME`",
            "read primary",
        );
    }
    assert_rejected(
        Role::Writer,
        "db = api, db = main, retry",
        &["db"],
        "duplicate argument `db`",
        "write join retry",
    );
}
