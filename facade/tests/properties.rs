//! Property tests of the three places where untrusted text meets the facade:
//! read-position tokens (they come back from cookies), database URLs (they
//! carry passwords into `Debug`, `Display` and error messages) and lock
//! names. Only the public API is used; where a database is needed it is an
//! in-memory SQLite one.
//!
//! Each property is checked against a small reference model written here
//! from the rules the code documents, so a disagreement shows up as a
//! concrete, shrunk input. Inputs that once failed are kept as plain
//! `#[test]`s at the end of their section.

#![cfg(feature = "sqlite")]

use std::time::Duration;

use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::schema::locks;
use diesel_facade::{
    writer, Context, Error, ErrorKind, Facade, FacadeConfig, ReadPosition, MAX_LOCK_NAME_CHARS,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Moderate case counts: the whole file runs in a few seconds in debug.
/// `PROPTEST_CASES=20000` runs a deeper search.
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        // Failures are kept below as named regression tests instead.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Everything a caller can see of an error: `Display`, `Debug` and the
/// `Display` of every source in its chain.
fn visible(err: &Error) -> String {
    let mut shown = format!("{err}\n{err:?}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        shown.push('\n');
        shown.push_str(&cause.to_string());
        source = cause.source();
    }
    shown
}

// ---------------------------------------------------------------------------
// Read-position tokens
//
// What `ReadPosition::from_token` accepts (replica.rs), stated precisely:
//
// - at most 1024 bytes, and then exactly one of
// - `written`;
// - `pg:HI/LO`, HI and LO each 1 to 8 ASCII hex digits of either case;
// - `galera:N`, N 1 to 20 ASCII decimal digits with a value < 2^64;
// - `gtid:T[,T..]`, at least one triple `D-S-N` of 1 to 20 ASCII decimal
//   digits each, D and S < 2^32, N < 2^64, no domain D twice.
//
// Leading zeros are accepted (hence "1 to 8 digits", not "fits 32 bits":
// `000000001` fits but is refused). `token()` prints the canonical form:
// upper-case hex and decimal without leading zeros, triples in input order.
// ---------------------------------------------------------------------------

/// A position as the reference model sees it.
#[derive(Debug, Clone, PartialEq)]
enum Model {
    Written,
    Pg(u32, u32),
    Gtid(Vec<(u32, u32, u64)>),
    Galera(u64),
}

impl Model {
    fn canonical(&self) -> String {
        match self {
            Model::Written => "written".to_owned(),
            Model::Pg(hi, lo) => format!("pg:{hi:X}/{lo:X}"),
            Model::Gtid(list) => {
                let parts: Vec<String> = list
                    .iter()
                    .map(|(d, s, n)| format!("{d}-{s}-{n}"))
                    .collect();
                format!("gtid:{}", parts.join(","))
            }
            Model::Galera(n) => format!("galera:{n}"),
        }
    }

    /// The reference parser: the rules above, written independently of
    /// replica.rs.
    fn parse(token: &str) -> Option<Model> {
        fn digits(text: &str, max: usize, radix: u32) -> Option<u128> {
            let ok = (1..=max).contains(&text.len())
                && text.chars().all(|c| c.is_ascii() && c.is_digit(radix));
            ok.then(|| u128::from_str_radix(text, radix).ok())?
        }
        fn dec<T: TryFrom<u128>>(text: &str) -> Option<T> {
            T::try_from(digits(text, 20, 10)?).ok()
        }
        if token.len() > 1024 {
            return None;
        }
        if token == "written" {
            return Some(Model::Written);
        }
        if let Some(lsn) = token.strip_prefix("pg:") {
            let (hi, lo) = lsn.split_once('/')?;
            let hex = |t: &str| u32::try_from(digits(t, 8, 16)?).ok();
            return Some(Model::Pg(hex(hi)?, hex(lo)?));
        }
        if let Some(seqno) = token.strip_prefix("galera:") {
            return Some(Model::Galera(dec(seqno)?));
        }
        let list = token.strip_prefix("gtid:")?;
        let mut triples: Vec<(u32, u32, u64)> = Vec::new();
        for part in list.split(',') {
            let fields: Vec<&str> = part.split('-').collect();
            let [d, s, n] = fields[..] else {
                return None;
            };
            let triple = (dec(d)?, dec(s)?, dec(n)?);
            if triples.iter().any(|t| t.0 == triple.0) {
                return None;
            }
            triples.push(triple);
        }
        Some(Model::Gtid(triples))
    }
}

/// `value` in `radix`, padded with leading zeros to between its own width
/// and `max` digits, upper- or lower-case.
fn spelled(value: u128, radix: u32, max: usize) -> impl Strategy<Value = String> {
    let bare = match radix {
        16 => format!("{value:x}"),
        _ => value.to_string(),
    };
    let width = bare.len();
    (width..=max.max(width), any::<bool>()).prop_map(move |(padded, upper)| {
        let text = format!("{}{bare}", "0".repeat(padded - width));
        if upper {
            text.to_ascii_uppercase()
        } else {
            text
        }
    })
}

/// Numbers that like the edges: 0, 1, the maximum, and anything between.
fn edgy_u64() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(u64::MAX), any::<u64>()]
}

fn edgy_u32() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(1), Just(u32::MAX), any::<u32>()]
}

/// Every valid position, each spelled in one of its accepted ways.
fn valid_token() -> impl Strategy<Value = (Model, String)> {
    let pg = (edgy_u32(), edgy_u32()).prop_flat_map(|(hi, lo)| {
        (spelled(hi.into(), 16, 8), spelled(lo.into(), 16, 8))
            .prop_map(move |(h, l)| (Model::Pg(hi, lo), format!("pg:{h}/{l}")))
    });
    let galera = edgy_u64().prop_flat_map(|n| {
        spelled(n.into(), 10, 20).prop_map(move |s| (Model::Galera(n), format!("galera:{s}")))
    });
    let triple = (edgy_u32(), edgy_u32(), edgy_u64()).prop_flat_map(|(d, s, n)| {
        (
            spelled(d.into(), 10, 20),
            spelled(s.into(), 10, 20),
            spelled(n.into(), 10, 20),
        )
            .prop_map(move |(ds, ss, ns)| ((d, s, n), format!("{ds}-{ss}-{ns}")))
    });
    // Up to 24 triples: long lists cross the 1024-byte limit sometimes.
    let gtid = prop::collection::vec(triple, 1..24).prop_map(|triples| {
        let mut seen = Vec::new();
        let mut model = Vec::new();
        let mut text = Vec::new();
        for (value, spelling) in triples {
            if !seen.contains(&value.0) {
                seen.push(value.0);
                model.push(value);
                text.push(spelling);
            }
        }
        (Model::Gtid(model), format!("gtid:{}", text.join(",")))
    });
    prop_oneof![
        Just((Model::Written, "written".to_owned())),
        pg,
        galera,
        gtid,
    ]
}

/// Strings near the token grammar (its prefixes, digits, separators and
/// look-alikes), so that most inputs fail late rather than at the kind.
fn near_token() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            "pg:", "gtid:", "galera:", "written", "/", "-", ",", ":", "0", "1", "9", "a", "F",
            "ffffffff", "FFFFFFFFF", "4294967295", "4294967296", "18446744073709551615",
            "18446744073709551616", "00000000000000000000", "+", " ", "\n", "\u{0}", "٣",
            "１", "\u{1b}[31m", "Written", "PG:",
        ])
        .prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

/// What must hold for any input: `from_token` agrees with the model, a
/// rejection is a short `Config` error without raw control characters, and
/// an accepted token re-serialises to the canonical spelling, which parses
/// back to itself.
fn check_token(token: &str) -> Result<(), TestCaseError> {
    match (ReadPosition::from_token(token), Model::parse(token)) {
        (Ok(position), Some(model)) => {
            let canonical = model.canonical();
            prop_assert_eq!(position.token(), Some(canonical.clone()), "{:?}", token);
            let again = ReadPosition::from_token(&canonical);
            prop_assert_eq!(
                again.ok().and_then(|p| p.token()),
                Some(canonical),
                "the canonical token of {:?} parses back to itself",
                token
            );
        }
        (Err(err), None) => {
            prop_assert_eq!(err.kind(), ErrorKind::Config, "{:?}", token);
            prop_assert!(
                !err.to_string().chars().any(char::is_control),
                "raw control character in {:?}",
                err.to_string()
            );
            // The kind prefix, the fixed explanation, and at most 24
            // quoted characters, each escaped to at most 10.
            prop_assert!(err.message().len() < 400, "{}", err.message());
        }
        (Ok(position), None) => {
            prop_assert!(false, "{:?} was accepted as {:?}", token, position.token());
        }
        (Err(err), Some(model)) => {
            prop_assert!(false, "{:?} ({:?}) was rejected: {}", token, model, err);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn every_valid_position_round_trips((model, token) in valid_token()) {
        // The generator and the reference parser agree on what is valid.
        let expected = (token.len() <= 1024).then_some(model);
        prop_assert_eq!(Model::parse(&token), expected);
        check_token(&token)?;
    }

    #[test]
    fn near_tokens_parse_exactly_when_the_rules_say(token in near_token()) {
        check_token(&token)?;
    }

    #[test]
    fn arbitrary_strings_parse_or_give_a_config_error(token in any::<String>()) {
        check_token(&token)?;
    }
}

#[test]
fn token_edges() {
    for token in [
        "pg:00000000/0",
        "pg:000000000/0",
        "pg:ffffffff/0",
        "galera:00000000000000000001",
        "galera:000000000000000000001",
        "gtid:0-0-0,1-0-0",
        "gtid:0-0-0,00-0-0",
        &format!("gtid:{}", vec!["0-0-0"; 200].join(",")),
    ] {
        check_token(token).unwrap();
    }
}

// ---------------------------------------------------------------------------
// URL redaction
//
// Public reach: `Debug` of `FacadeBuilder` and `FacadeConfig` (writer and
// replicas), `Debug` of a built `Facade`, and the errors `build()` returns
// (SQLite's check of a server URL, and a SQLite URI that cannot be opened).
//
// Every generated password is `Q7…X9`: the sentinels cannot occur in any
// other part of the generated URLs (lower-case names) nor in the facade's own
// text, so a leak of the start or the end of a password (a span cut short at
// an `@`, `&` or quote inside it) shows the sentinel. The whole password is
// also looked for, raw, as the URL spells it, and as `Debug` escapes it.
// ---------------------------------------------------------------------------

const OPEN: &str = "Q7";
const CLOSE: &str = "X9";

/// Characters a password may hold, weighted towards those that delimit
/// something in one of the URL forms.
fn password_char(hostile: &'static [char]) -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(hostile),
        2 => prop::char::range('a', 'z'),
        1 => prop::sample::select(vec!['é', '密', '🔑', '\u{202e}', 'ß', 'Ω']),
    ]
}

/// `@ : / ? # = ,` space, quotes, backslash and friends; `%` too where the
/// form encodes it.
const ALL_HOSTILE: &[char] = &[
    '@', ':', '/', '?', '#', '=', ',', ' ', '&', ';', '\'', '"', '\\', '+', '%', '[', ']', '*',
];
/// In a URL's userinfo, unencoded: all but `%`, which would start an escape.
const USERINFO_HOSTILE: &[char] = &[
    '@', ':', '/', '?', '#', '=', ',', ' ', '&', ';', '\'', '"', '\\', '+', '[', ']', '*',
];
/// Unencoded in a query value: all but `&`, `;` and `#`, which end a query
/// parameter by the URL's own syntax (so the "password" would be shorter),
/// and `%`.
const QUERY_HOSTILE: &[char] = &[
    '@', ':', '/', '?', '=', ',', ' ', '\'', '"', '\\', '+', '[', ']', '*',
];

fn password(hostile: &'static [char]) -> impl Strategy<Value = String> {
    prop::collection::vec(password_char(hostile), 0..16)
        .prop_map(|chars| format!("{OPEN}{}{CLOSE}", chars.into_iter().collect::<String>()))
}

/// Whether `password` holds an `@` followed later by `?name=`. Unencoded in
/// a URL's userinfo (`u:a@b?c=d@host`), the url crate and libpq both read
/// that as the password `a` and the query `c=d@host`, and so does
/// redaction, which hides more than the password only where it cannot tell
/// a password from the parameter `?application_name=a@b`.
fn at_then_parameter(password: &str) -> bool {
    let Some(at) = password.find('@') else {
        return false;
    };
    password[at..].match_indices('?').any(|(i, _)| {
        let after = &password[at + i + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .unwrap_or(after.len());
        name_len > 0 && after[name_len..].starts_with('=')
    })
}

/// Every byte but the unreserved ones as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn name() -> impl Strategy<Value = String> {
    "[a-z]{1,8}"
}

fn server_scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["postgres", "postgresql", "mysql", "mariadb"])
}

/// `host`, `host:port`, `[::1]:port` or two libpq hosts.
fn authority_host() -> impl Strategy<Value = String> {
    prop_oneof![
        name(),
        (name(), 1..65535u16).prop_map(|(h, p)| format!("{h}:{p}")),
        (1..65535u16).prop_map(|p| format!("[::1]:{p}")),
        (name(), name()).prop_map(|(a, b)| format!("{a}:5432,{b}:5433")),
    ]
}

/// A query without secrets to put around (or instead of) the secret one.
fn plain_params() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(vec![
            "sslmode=require",
            "application_name=app",
            "connect_timeout=5",
            "ssl_mode=required",
        ])
        .prop_map(str::to_owned),
        0..3,
    )
}

fn query(params: &[String]) -> String {
    if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    }
}

/// How a URL holds its password, for the properties that treat forms
/// differently.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    /// `scheme://…`: SQLite's `build()` refuses it before connecting.
    Server,
    /// libpq `key=value`: only shown, never built (SQLite would create a
    /// file of that name).
    Conninfo,
    /// `file:` URI: built, in memory or in a directory that does not exist.
    Sqlite,
}

/// `(url, password, form)` for every supported way of writing a password.
fn url_with_password() -> impl Strategy<Value = (String, String, Form)> {
    let userinfo_raw = (
        server_scheme(),
        name(),
        password(USERINFO_HOSTILE).prop_filter(
            "an unencoded `@` and then `?name=` (read as password and query by every parser)",
            |pw| !at_then_parameter(pw),
        ),
        authority_host(),
        name(),
        plain_params(),
    )
        .prop_map(|(scheme, user, pw, host, db, params)| {
            let url = format!("{scheme}://{user}:{pw}@{host}/{db}{}", query(&params));
            (url, pw, Form::Server)
        });
    let userinfo_encoded = (
        server_scheme(),
        name(),
        password(ALL_HOSTILE),
        authority_host(),
        name(),
        plain_params(),
    )
        .prop_map(|(scheme, user, pw, host, db, params)| {
            let url = format!(
                "{scheme}://{user}:{}@{host}/{db}{}",
                percent_encode(&pw),
                query(&params)
            );
            (url, pw, Form::Server)
        });
    let in_query = (
        server_scheme(),
        prop::option::of(name()),
        authority_host(),
        name(),
        prop::sample::select(vec!["password", "PASSWORD", "sslpassword", "Password"]),
        prop_oneof![
            password(ALL_HOSTILE).prop_map(|pw| (percent_encode(&pw), pw)),
            password(QUERY_HOSTILE).prop_map(|pw| (pw.clone(), pw)),
        ],
        plain_params(),
        0..3usize,
    )
        .prop_map(
            |(scheme, user, host, db, key, (spelt, pw), mut params, at)| {
                let user = user.map(|u| format!("{u}@")).unwrap_or_default();
                params.insert(at.min(params.len()), format!("{key}={spelt}"));
                let url = format!("{scheme}://{user}{host}/{db}{}", query(&params));
                (url, pw, Form::Server)
            },
        );
    let conninfo = (
        name(),
        name(),
        name(),
        prop::sample::select(vec!["password", "sslpassword", "PassWord"]),
        password(ALL_HOSTILE),
        prop::sample::select(vec!["=", " = ", "= ", " ="]),
        any::<bool>(),
        0..4usize,
    )
        .prop_map(|(host, user, db, key, pw, equals, quote, at)| {
            let bare_ok = !pw.contains([' ', '\'', '\\']);
            let value = if quote || !bare_ok {
                format!("'{}'", pw.replace('\\', "\\\\").replace('\'', "\\'"))
            } else {
                pw.clone()
            };
            let mut pairs = vec![
                format!("host={host}"),
                format!("user={user}"),
                format!("dbname={db}"),
            ];
            pairs.insert(at.min(pairs.len()), format!("{key}{equals}{value}"));
            (pairs.join(" "), pw, Form::Conninfo)
        });
    let sqlite_uri = (
        name(),
        prop::sample::select(vec!["key", "password", "hexkey"]),
        password(ALL_HOSTILE),
        any::<bool>(),
    )
        .prop_map(|(file, key, pw, in_memory)| {
            let url = if in_memory {
                format!(
                    "file:{file}?mode=memory&cache=shared&{key}={}",
                    percent_encode(&pw)
                )
            } else {
                format!(
                    "file:/nonexistent-diesel-facade-dir/{file}.db?{key}={}",
                    percent_encode(&pw)
                )
            };
            (url, pw, Form::Sqlite)
        });
    prop_oneof![
        userinfo_raw,
        userinfo_encoded,
        in_query,
        conninfo,
        sqlite_uri
    ]
}

/// The ways `text` may still spell `password`.
fn leaks(text: &str, password: &str) -> Vec<String> {
    let debug = format!("{password:?}");
    let spellings = [
        password.to_owned(),
        percent_encode(password),
        debug[1..debug.len() - 1].to_owned(),
        OPEN.to_owned(),
        CLOSE.to_owned(),
    ];
    spellings
        .into_iter()
        .filter(|s| text.contains(s.as_str()))
        .collect()
}

/// Everything the public API shows of `url` without connecting anywhere:
/// `Debug` of a builder and a config holding it as writer and replica, and
/// for a server URL the error SQLite's `build()` gives for it.
fn shown_without_connecting(url: &str, form: Form) -> Result<Vec<String>, TestCaseError> {
    let builder = Facade::<SqliteConnection>::builder()
        .writer(url)
        .replica(url);
    let mut shown = vec![format!("{builder:?}")];
    let config = FacadeConfig {
        connection: url.to_owned(),
        replica_connections: vec![url.to_owned(), "app.db".to_owned()],
        ..FacadeConfig::default()
    };
    shown.push(format!("{config:?}"));
    if form == Form::Server {
        let err = builder
            .build()
            .expect_err("a server URL on a SQLite facade");
        prop_assert_eq!(err.kind(), ErrorKind::Config, "{}", err);
        shown.push(visible(&err));
    }
    Ok(shown)
}

fn check_redacted(url: &str, password: &str, form: Form) -> Result<(), TestCaseError> {
    let mut shown = shown_without_connecting(url, form)?;
    if form == Form::Sqlite {
        match Facade::<SqliteConnection>::builder()
            .writer(url)
            .max_pool_size(1)
            .build()
        {
            Ok(db) => shown.push(format!("{db:?}")),
            Err(err) => shown.push(visible(&err)),
        }
    }
    for text in shown {
        let found = leaks(&text, password);
        prop_assert!(
            found.is_empty(),
            "{:?} shows {:?} of password {:?} in:\n{}",
            url,
            found,
            password,
            text
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(384))]

    #[test]
    fn passwords_never_shown((url, password, form) in url_with_password()) {
        check_redacted(&url, &password, form)?;
    }
}

/// Inputs the property found showing part of a password (fixed in
/// `redact.rs`, `url_spans`).
#[test]
fn passwords_with_an_unencoded_at_then_a_delimiter_are_hidden() {
    for (url, password) in [
        // `@` then `/`: the url crate's authority ends at the `/`, so only
        // `Q7` was hidden and `/X9` shown.
        ("postgres://a:Q7@/X9@a/a", "Q7@/X9"),
        ("mysql://u:Q7@b#cX9@host/db", "Q7@b#cX9"),
        ("mariadb://u:Q7@b?cX9@host/db?ssl_mode=required", "Q7@b?cX9"),
        // `?name=` without an `@` before it (hidden before; a first
        // version of the fix showed it).
        ("postgres://a:Q7?a=X9@a/a", "Q7?a=X9"),
        // An `@` in a secret parameter of a URL without a user: the text
        // after the `@` was taken for the host and the parameter not found.
        ("postgresql://host/db?password=Q7@X9", "Q7@X9"),
    ] {
        check_redacted(url, password, Form::Server).unwrap();
    }
}

/// Strings heavy in the characters redaction splits on.
fn url_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            "postgres://", "mysql://", "file:", "sqlite://", "://", "@", ":", "/", "?", "#",
            "&", ";", "=", "'", "\\", "%", "%4", "%zz", " ", "password", "key", "dbname=",
            "é", "\u{0}", "\n", "a", "1",
        ])
        .prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(config(512))]

    /// `Debug` redacts whatever it is given without panicking.
    #[test]
    fn redaction_never_panics(raw in prop_oneof![url_like(), any::<String>()]) {
        shown_without_connecting(&raw, Form::Conninfo)?;
    }

    /// A server URL with anything after its scheme is a `Config` error from
    /// SQLite's `build()`, never a panic.
    #[test]
    fn server_urls_on_sqlite_are_config_errors(
        scheme in server_scheme(),
        rest in prop_oneof![url_like(), any::<String>()],
    ) {
        shown_without_connecting(&format!("{scheme}://{rest}"), Form::Server)?;
    }
}

// ---------------------------------------------------------------------------
// Lock names
//
// The rule (lock.rs): 1 to MAX_LOCK_NAME_CHARS (50) characters, none of them
// a control character (`char::is_control`, Unicode Cc), and neither the
// first nor the last one whitespace (`char::is_whitespace`). Anything else
// is `ErrorKind::InvalidLockName` from `lock`, `lock_timeout` and
// `try_lock` alike, before any SQL; a valid name is taken, stored whole in
// `locks.id`, and can be taken again in the same transaction.
// ---------------------------------------------------------------------------

fn valid_lock_name_model(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_LOCK_NAME_CHARS).contains(&chars)
        && !name.chars().any(char::is_control)
        && !name.starts_with(char::is_whitespace)
        && !name.ends_with(char::is_whitespace)
}

/// Every `char::is_whitespace` character, and a few that are not.
const WHITESPACE: &[char] = &[
    ' ', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{85}', '\u{a0}', '\u{1680}', '\u{2000}',
    '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}', '\u{205f}', '\u{3000}',
];

fn lock_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => any::<char>().prop_filter("not a control character", |c| !c.is_control()),
        2 => prop::sample::select(vec!['\'', '"', ';', '-', '%', '_', '\\', '錠', '🔒']),
        1 => prop::sample::select(WHITESPACE),
    ]
}

/// Valid names: inner characters may be whitespace, the ends may not.
fn valid_lock_name() -> impl Strategy<Value = String> {
    let end = || lock_char().prop_filter("not whitespace", |c| !c.is_whitespace());
    prop_oneof![
        end().prop_map(String::from),
        (
            end(),
            prop::collection::vec(lock_char(), 0..=MAX_LOCK_NAME_CHARS - 2),
            end()
        )
            .prop_map(|(first, inner, last)| {
                let mut name = String::from(first);
                name.extend(inner);
                name.push(last);
                name
            }),
    ]
}

/// Names that break exactly one rule, or several.
fn invalid_lock_name() -> impl Strategy<Value = String> {
    let control = prop_oneof![
        prop::char::range('\u{0}', '\u{1f}'),
        prop::char::range('\u{7f}', '\u{9f}'),
    ];
    prop_oneof![
        Just(String::new()),
        prop::collection::vec(
            lock_char(),
            MAX_LOCK_NAME_CHARS + 1..MAX_LOCK_NAME_CHARS + 40
        )
        .prop_map(|chars| chars.into_iter().collect()),
        (valid_lock_name(), control, any::<prop::sample::Index>()).prop_map(|(name, c, at)| {
            let mut chars: Vec<char> = name.chars().collect();
            chars.insert(at.index(chars.len() + 1), c);
            chars.into_iter().collect()
        }),
        (
            valid_lock_name(),
            prop::sample::select(WHITESPACE),
            any::<bool>()
        )
            .prop_map(|(name, space, front)| if front {
                format!("{space}{name}")
            } else {
                format!("{name}{space}")
            }),
    ]
}

thread_local! {
    /// One facade per test thread: a private in-memory database (one
    /// connection) with the `locks` table.
    static LOCK_DB: Facade<SqliteConnection> = {
        let db = Facade::<SqliteConnection>::builder()
            .writer(":memory:")
            .build()
            .expect("in-memory SQLite");
        db.run_migrations().expect("migrations");
        db
    };
}

#[derive(Debug, Clone, Copy)]
enum Take {
    Lock,
    LockTimeout,
    TryLock,
}

/// Takes `name` twice the chosen way, then reads back what `locks` holds
/// under it.
#[writer]
fn take_lock(ctx: &mut Context<SqliteConnection>, name: &str, how: Take) -> Result<String, Error> {
    for _ in 0..2 {
        match how {
            Take::Lock => ctx.lock(name)?,
            Take::LockTimeout => ctx.lock_timeout(name, Duration::from_secs(1))?,
            Take::TryLock => assert!(ctx.try_lock(name)?, "no one else holds {name:?}"),
        }
    }
    Ok(locks::table
        .find(name)
        .select(locks::id)
        .first(ctx.conn())?)
}

fn check_lock_name(name: &str) -> Result<(), TestCaseError> {
    let db = LOCK_DB.with(Facade::clone);
    let valid = valid_lock_name_model(name);
    for how in [Take::Lock, Take::LockTimeout, Take::TryLock] {
        match take_lock(&mut db.context(), name, how) {
            Ok(stored) => {
                prop_assert!(valid, "{:?} was accepted by {:?}", name, how);
                prop_assert_eq!(&stored, name, "stored whole");
            }
            Err(err) => {
                prop_assert!(!valid, "{:?} was refused by {:?}: {}", name, how, err);
                prop_assert_eq!(
                    err.kind(),
                    ErrorKind::InvalidLockName,
                    "{:?}: {}",
                    name,
                    err
                );
                let shown = err.to_string();
                prop_assert!(
                    !shown.chars().any(char::is_control),
                    "raw control character in {:?}",
                    shown
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn valid_lock_names_are_taken(name in valid_lock_name()) {
        check_lock_name(&name)?;
    }

    #[test]
    fn invalid_lock_names_are_refused(name in invalid_lock_name()) {
        check_lock_name(&name)?;
    }

    #[test]
    fn arbitrary_lock_names_follow_the_rule(name in any::<String>()) {
        check_lock_name(&name)?;
    }
}
