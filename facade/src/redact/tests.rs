//! Redaction cases: every URL shape and hostile password the facade must
//! never show.

use super::*;

/// (input, what must be shown, the secret that must never be shown)
const CASES: &[(&str, &str, &str)] = &[
    // A list of URLs, or several given where one was expected: every
    // one's password is hidden.
    (
        "mysql://u:pw1@n1/db,mysql://u:pw2@n2/db, mysql://u:pw3@n3/db",
        "mysql://u:***@n1/db,mysql://u:***@n2/db, mysql://u:***@n3/db",
        "pw2",
    ),
    (
        "postgres://u:pw1@h/db,postgres://u:pw2@h/db",
        "postgres://u:***@h/db,postgres://u:***@h/db",
        "pw2",
    ),
    (
        "postgres://app:s3cret@db:5432/app",
        "postgres://app:***@db:5432/app",
        "s3cret",
    ),
    (
        "postgresql://app:s3cret@db/app?sslmode=require",
        "postgresql://app:***@db/app?sslmode=require",
        "s3cret",
    ),
    (
        "mysql://root:hunter2@127.0.0.1/x",
        "mysql://root:***@127.0.0.1/x",
        "hunter2",
    ),
    (
        "mariadb://root:hunter2@[::1]:3306/x?ssl_mode=required",
        "mariadb://root:***@[::1]:3306/x?ssl_mode=required",
        "hunter2",
    ),
    // A typo in the port: the URL does not parse.
    (
        "postgres://u:hunter2@host:54x2/db",
        "postgres://u:***@host:54x2/db",
        "hunter2",
    ),
    // Unencoded `@`, `/`, `#` and `?` in the password.
    (
        "postgres://u:hun@ter2@host/db",
        "postgres://u:***@host/db",
        "ter2",
    ),
    (
        "postgres://u:hun/ter2@host/db",
        "postgres://u:***@host/db",
        "ter2",
    ),
    (
        "mysql://u:hun#ter2@host/db",
        "mysql://u:***@host/db",
        "ter2",
    ),
    (
        "mysql://u:hun?ter2@host/db",
        "mysql://u:***@host/db",
        "ter2",
    ),
    // Unencoded `@` followed by `/`, `?` or `#` in the password.
    (
        "postgres://u:hu@n/ter2@host/db",
        "postgres://u:***@host/db",
        "ter2",
    ),
    ("postgres://a:Q7@/X9@a/a", "postgres://a:***@a/a", "X9"),
    (
        "mysql://u:hu@n?ter2@host/db?ssl_mode=required",
        "mysql://u:***@host/db?ssl_mode=required",
        "ter2",
    ),
    (
        "mysql://u:hu@n#ter2@host/db",
        "mysql://u:***@host/db",
        "ter2",
    ),
    (
        "postgres://u:p%40ss%20word@host/db",
        "postgres://u:***@host/db",
        "p@ss word",
    ),
    (
        "postgres://u:hunter%zz2@host/db",
        "postgres://u:***@host/db",
        "hunter%zz2",
    ),
    // `?name=` in the password, with no `@` before it.
    ("postgres://a:Q7?a=X9@a/a", "postgres://a:***@a/a", "X9"),
    // An `@` in a secret parameter of a URL without a user.
    (
        "postgresql://host/db?password=hun@ter2",
        "postgresql://host/db?password=***",
        "ter2",
    ),
    (
        "postgresql://u@host/db?password=hunter2",
        "postgresql://u@host/db?password=***",
        "hunter2",
    ),
    (
        "postgresql://host/db?sslmode=disable&password=hunter2&application_name=x",
        "postgresql://host/db?sslmode=disable&password=***&application_name=x",
        "hunter2",
    ),
    (
        "postgresql:///db?host=/var/run/postgresql&PASSWORD=hunter2",
        "postgresql:///db?host=/var/run/postgresql&PASSWORD=***",
        "hunter2",
    ),
    (
        "postgresql://u@host/db?sslpassword=hunter2#frag",
        "postgresql://u@host/db?sslpassword=***#frag",
        "hunter2",
    ),
    (
        "postgresql://u:hunter2@h1:5432,h2:5433/db",
        "postgresql://u:***@h1:5432,h2:5433/db",
        "hunter2",
    ),
    (
        "postgres://u:pw@host/db?application_name=a@b",
        "postgres://u:***@host/db?application_name=a@b",
        "pw@",
    ),
    (
        "host=db user=app password=s3cret dbname=app",
        "host=db user=app password=*** dbname=app",
        "s3cret",
    ),
    (
        "host=db password='hunter 2' dbname=app",
        "host=db password=*** dbname=app",
        "hunter",
    ),
    (
        "host=db password = hunter2 dbname=app",
        "host=db password = *** dbname=app",
        "hunter2",
    ),
    (
        r"host=db password='hun\'ter 2' dbname=app",
        "host=db password=*** dbname=app",
        "ter 2",
    ),
    (
        r"host=db password=hun\ ter2 dbname=app",
        "host=db password=*** dbname=app",
        "ter2",
    ),
    (
        "host=db password='hunter 2",
        "host=db password=***",
        "hunter",
    ),
    (
        "host=db password hunter2",
        "host=db password ***",
        "hunter2",
    ),
    (
        "host=db PassWord=hunter2",
        "host=db PassWord=***",
        "hunter2",
    ),
    (
        "dbname='postgresql://u:hunter2@h/db' user=x",
        "dbname='postgresql://u:***@h/db' user=x",
        "hunter2",
    ),
    (
        "file:app.db?mode=ro&password=hunter2",
        "file:app.db?mode=ro&password=***",
        "hunter2",
    ),
    ("app.db", "app.db", "\u{0}"),
    (":memory:", ":memory:", "\u{0}"),
    ("/tmp/my dir/app.db", "/tmp/my dir/app.db", "\u{0}"),
];

#[test]
fn malformed_urls_never_show_the_password() {
    for raw in [
        " postgres://u:hunter2@h/db",
        " mysql://u:hunter2@h/db",
        "postgres ://u:hunter2@h/db",
        "post_gres://u:hunter2@h/db",
        "my_sql://u:hunter2@h/db",
        "postgres:/u:hunter2@h/db",
        "postgres:u:hunter2@h/db",
        "sqlite:u:hunter2@h/db",
        "file:app.db?key=hunter2",
        "app.db?key=hunter2",
    ] {
        let shown = redact_url(raw);
        assert!(!shown.contains("hunter2"), "{raw} -> {shown}");
        assert!(
            !Secrets::of(raw)
                .scrub(&format!("driver said: {raw}"))
                .contains("hunter2"),
            "{raw}"
        );
    }
}

#[test]
fn every_form_is_redacted() {
    for (raw, shown, secret) in CASES {
        let redacted = redact_url(raw);
        assert_eq!(&redacted, shown, "{raw}");
        assert!(!redacted.contains(secret), "{raw} -> {redacted}");
    }
}

#[test]
fn scrubbing_removes_every_spelling_of_the_secret() {
    // A driver that echoes the whole connection string.
    for (raw, _, secret) in CASES {
        let scrubbed = Secrets::of(raw).scrub(&format!("cannot use \"{raw}\""));
        assert!(!scrubbed.contains(secret), "{raw}: {scrubbed}");
    }
    // libpq's message for a bad percent-encoding repeats the raw token.
    let secrets = Secrets::of("postgres://u:hunter%zz2@host/db");
    let scrubbed = secrets.scrub("invalid percent-encoded token: \"hunter%zz2\"");
    assert_eq!(scrubbed, "invalid percent-encoded token: \"***\"");
    // The decoded form is scrubbed too.
    let secrets = Secrets::of("postgres://u:p%40ss@host/db");
    assert_eq!(
        secrets.scrub("user u, password p@ss"),
        "user u, password ***"
    );
    let secrets = Secrets::of(r"password='it\'s'");
    assert_eq!(secrets.scrub("password it's"), "password ***");
}

#[test]
fn urls_without_secrets_are_left_alone() {
    for raw in [
        "postgres://app@db/app",
        "postgres://db:5432/app?sslmode=require",
        "host=db user=app",
    ] {
        assert_eq!(redact_url(raw), raw);
        assert_eq!(Secrets::of(raw).scrub(raw), raw);
    }
}
