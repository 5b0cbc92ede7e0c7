//! `#[reader(..)]` / `#[writer(..)]` arguments.

use super::{messages, pointed_at, tokens};
use crate::attr::{parse_args, ReadRoute, Retry, Role, Transaction, WriteMode};

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

/// The messages and the text each points at, plus what was still accepted.
fn rejected(role: Role, source: &str) -> (Vec<String>, Vec<String>, Transaction) {
    let args = parse_args(role, tokens(source));
    let error = args
        .error
        .unwrap_or_else(|| panic!("{source} was accepted"));
    (
        pointed_at(source, &error),
        messages(error),
        args.transaction,
    )
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
    let (at, messages, accepted) = rejected(Role::Writer, "independent, savepoint");
    assert_eq!(at, ["savepoint"]);
    assert!(messages[0].starts_with("`independent` and `savepoint` cannot be combined"));
    assert!(matches!(
        accepted,
        Transaction::Write {
            mode: WriteMode::Independent,
            retry: None
        }
    ));

    let (at, messages, accepted) = rejected(Role::Reader, "replica, allow_replica");
    assert_eq!(at, ["allow_replica"]);
    assert!(messages[0].starts_with("`replica` and `allow_replica` cannot be combined"));
    assert!(matches!(accepted, Transaction::Read(ReadRoute::Replica)));
}

#[test]
fn duplicates_point_at_the_repeat() {
    let source = "retry, savepoint, retry = 2";
    let error = parse_args(Role::Writer, tokens(source)).error.unwrap();
    assert_eq!(messages(error.clone()), ["duplicate argument `retry`"]);
    assert_eq!(error.span().start().column, source.rfind("retry").unwrap());

    let (at, messages, _) = rejected(Role::Reader, "replica, replica");
    assert_eq!(at, ["replica"]);
    assert_eq!(messages, ["duplicate argument `replica`"]);
}

#[test]
fn unknown_arguments_list_the_accepted_ones() {
    let (at, messages, _) = rejected(Role::Writer, "retyr");
    assert_eq!(at, ["retyr"]);
    assert_eq!(
        messages,
        ["unknown `#[writer]` argument `retyr`: expected `savepoint`, `independent`, `retry` or `retry = N`"]
    );
    let (_, messages, _) = rejected(Role::Reader, "move");
    assert_eq!(
        messages,
        ["unknown `#[reader]` argument `move`: expected `replica` or `allow_replica`"]
    );
}

#[test]
fn every_bad_argument_is_reported() {
    let (at, messages, accepted) = rejected(Role::Writer, "foo, savepoint, bar");
    assert_eq!(at, ["foo", "bar"]);
    assert_eq!(messages.len(), 2);
    assert!(matches!(
        accepted,
        Transaction::Write {
            mode: WriteMode::Savepoint,
            ..
        }
    ));
}

#[test]
fn retry_on_a_reader_explains_why() {
    let (at, messages, accepted) = rejected(Role::Reader, "replica, retry = 3");
    assert_eq!(at, ["retry = 3"]);
    assert!(
        messages[0].starts_with("`retry` is a `#[writer]` argument: readers are not retried"),
        "{messages:?}"
    );
    assert!(matches!(accepted, Transaction::Read(ReadRoute::Replica)));
}

#[test]
fn arguments_of_the_other_attribute_say_where_they_belong() {
    let (at, messages, _) = rejected(Role::Reader, "savepoint");
    assert_eq!(at, ["savepoint"]);
    assert!(messages[0].starts_with("`savepoint` is a `#[writer]` argument"));

    let (at, messages, _) = rejected(Role::Writer, "allow_replica");
    assert_eq!(at, ["allow_replica"]);
    assert!(messages[0].starts_with("`allow_replica` is a `#[reader]` argument"));
}

#[test]
fn retry_counts_must_be_u32_literals() {
    let cases = [
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
    ];
    for (source, expected_at, expected) in cases {
        let (at, messages, accepted) = rejected(Role::Writer, source);
        assert_eq!(at, [expected_at], "{source}");
        assert!(messages[0].starts_with(expected), "{source}: {messages:?}");
        assert!(
            matches!(accepted, Transaction::Write { retry: None, .. }),
            "{source}"
        );
    }
    assert!(matches!(
        write("retry = 4294967295"),
        (_, Some(Retry::Retries(u32::MAX, _)))
    ));
}

#[test]
fn flags_take_no_value() {
    let (at, messages, accepted) = rejected(Role::Writer, "savepoint = true");
    assert_eq!(at, ["savepoint = true"]);
    assert_eq!(messages, ["`savepoint` takes no value"]);
    assert!(matches!(
        accepted,
        Transaction::Write {
            mode: WriteMode::Savepoint,
            ..
        }
    ));
}

#[test]
fn a_syntax_error_keeps_the_arguments_before_it() {
    let (at, _, accepted) = rejected(Role::Writer, "savepoint, retry 3");
    assert_eq!(at, ["3"]);
    assert!(matches!(
        accepted,
        Transaction::Write {
            mode: WriteMode::Savepoint,
            retry: Some(Retry::DefaultAttempts)
        }
    ));
}
