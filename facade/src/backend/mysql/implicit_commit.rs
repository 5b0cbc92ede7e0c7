//! Which statements make MariaDB commit the open transaction implicitly.
//!
//! Galera's armed guard is committed with the transaction an implicit
//! commit ends, and every `#[writer(savepoint)]` vanishes with it, so the
//! outermost commit (`checked_commit`) must know
//! whether one ran (see the module docs of `backend/mysql`). The facade's
//! instrumentation runs this test on the head of every statement of a
//! MySQL/MariaDB transaction.

/// The statements that leave the transaction open, by their first word.
const KEEPS_THE_TRANSACTION: [&str; 15] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "REPLACE",
    "WITH",
    "VALUES",
    "TABLE",
    "SHOW",
    "DESCRIBE",
    "EXPLAIN",
    "DO",
    "SAVEPOINT",
    // Prepare or drop a statement without running it (`EXECUTE` runs
    // it: see `runs_unread_sql`).
    "PREPARE",
    "DEALLOCATE",
];

/// Whether the SQL text `head` (a statement or a batch, possibly cut short)
/// may make MariaDB commit the open transaction implicitly: DDL, `LOCK`,
/// `FLUSH`, `SET autocommit`, `BEGIN`, ... (see "Statements That Cause an
/// Implicit Commit" in the MariaDB manual). An allowlist, so anything it
/// does not know counts as committing: every statement of a batch is
/// checked, comments are skipped, and text that was cut short counts too.
/// A false "yes" only costs the transaction its abort guard; a false "no"
/// could report a commit as a deadlock (a savepoint the implicit commit
/// removed).
pub(super) fn commits_implicitly(head: &str, complete: bool) -> bool {
    commits_implicitly_with(head, complete, false)
}

/// Whether `head` is one whole statement (no `;` anywhere in it) that
/// starts with a word of [`KEEPS_THE_TRANSACTION`]: then neither
/// [`commits_implicitly`] nor [`changes_the_session`] can say yes, and the
/// instrumentation, which asks them about every statement, skips both.
/// (The usual statement of a transaction reads this way at the cost of one
/// search for `;`, instead of a read of its quotes and comments per check.)
pub(super) fn is_one_kept_statement(head: &str, complete: bool) -> bool {
    complete && !head.contains(';') && {
        let word = first_word(skip_space_and_comments(head));
        KEEPS_THE_TRANSACTION
            .iter()
            .any(|kw| word.eq_ignore_ascii_case(kw))
    }
}

/// Whether `head` (a batch that [`runs_unread_sql`]) also holds a statement
/// the facade reads as committing, apart from the SQL it cannot read (and
/// the `END`, `ELSE`, .. of compound statements).
pub(super) fn commits_apart_from_unread_sql(head: &str, complete: bool) -> bool {
    commits_implicitly_with(head, complete, true)
}

fn commits_implicitly_with(head: &str, complete: bool, unread_keeps: bool) -> bool {
    /// The parts of a compound statement after a `;` inside it.
    const COMPOUND_PARTS: [&str; 5] = ["END", "ELSE", "ELSEIF", "WHEN", "UNTIL"];
    let mut rest = head;
    loop {
        rest = skip_space_and_comments(rest);
        if rest.is_empty() {
            // Text cut short may go on with anything.
            return !complete;
        }
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let statement_end = statement_end(rest);
        let statement = &rest[..statement_end.unwrap_or(rest.len())];
        if word.eq_ignore_ascii_case("SET") && is_set_statement(rest) {
            // `SET STATEMENT .. FOR <statement>`: that statement decides,
            // and everything after it.
            return match set_statement_body(rest) {
                Some(body) => commits_implicitly_with(body, complete, unread_keeps),
                None => true,
            };
        }
        let keeps = if word.eq_ignore_ascii_case("SET") {
            set_keeps_the_transaction(rest)
        } else if word.eq_ignore_ascii_case("ROLLBACK") {
            // `ROLLBACK [WORK] TO [SAVEPOINT] x` keeps it; a bare `ROLLBACK`
            // ends it (a word in a comment does not count).
            rolls_back_to_a_savepoint(statement)
        } else if word.eq_ignore_ascii_case("RELEASE") {
            // `RELEASE SAVEPOINT` keeps it.
            statement.to_ascii_lowercase().contains("savepoint")
        } else if word.eq_ignore_ascii_case("USE") {
            // `USE db` keeps it (and changes the session: see
            // `changes_the_session`).
            true
        } else if unread_keeps
            && (runs_unread_sql(statement)
                || COMPOUND_PARTS
                    .iter()
                    .any(|kw| word.eq_ignore_ascii_case(kw)))
        {
            true
        } else {
            KEEPS_THE_TRANSACTION
                .iter()
                .any(|kw| word.eq_ignore_ascii_case(kw))
        };
        if !keeps {
            return true;
        }
        match statement_end {
            // A statement cut short may still be followed by anything.
            None => return !complete,
            Some(end) => rest = &rest[end + 1..],
        }
    }
}

/// Whether `head` (as for [`commits_implicitly`]) holds a statement that
/// rolls the whole transaction back: a `ROLLBACK` that is not `ROLLBACK TO`
/// a savepoint.
pub(super) fn rolls_back(head: &str) -> bool {
    let mut rest = head;
    loop {
        rest = skip_space_and_comments(rest);
        if rest.is_empty() {
            return false;
        }
        let statement_end = statement_end(rest);
        let statement = &rest[..statement_end.unwrap_or(rest.len())];
        let word = first_word(statement);
        if word.eq_ignore_ascii_case("ROLLBACK") && !rolls_back_to_a_savepoint(statement) {
            return true;
        }
        if word.eq_ignore_ascii_case("SET") && is_set_statement(rest) {
            return set_statement_body(rest).is_some_and(rolls_back);
        }
        match statement_end {
            None => return false,
            Some(end) => rest = &rest[end + 1..],
        }
    }
}

/// Whether `head` (as for [`commits_implicitly`]) holds a statement that
/// runs SQL the facade cannot read, which may commit the transaction or
/// roll it back: `CALL` (a procedure may `COMMIT` or `ROLLBACK`),
/// `EXECUTE` and `EXECUTE IMMEDIATE` (dynamic SQL), and MariaDB's compound
/// statements outside stored programs (`BEGIN NOT ATOMIC .. END`, `IF`,
/// `CASE`, `LOOP`, `WHILE`, `REPEAT`, `FOR`, or one of them behind a
/// label), whose inner statements this test does not follow.
pub(super) fn runs_unread_sql(head: &str) -> bool {
    const UNREAD: [&str; 8] = [
        "CALL", "EXECUTE", "IF", "CASE", "LOOP", "WHILE", "REPEAT", "FOR",
    ];
    let mut rest = head;
    loop {
        rest = skip_space_and_comments(rest);
        if rest.is_empty() {
            return false;
        }
        if first_word(rest).eq_ignore_ascii_case("SET") && is_set_statement(rest) {
            return set_statement_body(rest).is_some_and(runs_unread_sql);
        }
        let statement_end = statement_end(rest);
        let statement = &rest[..statement_end.unwrap_or(rest.len())];
        let word = first_word(statement);
        let after = skip_space_and_comments(&statement[word.len()..]);
        let unread = UNREAD.iter().any(|kw| word.eq_ignore_ascii_case(kw))
            // `BEGIN NOT ATOMIC`, not `BEGIN [WORK]`.
            || (word.eq_ignore_ascii_case("BEGIN")
                && first_word(after).eq_ignore_ascii_case("NOT"))
            // `label: LOOP ..` (and the like).
            || (!word.is_empty() && after.starts_with(':'));
        if unread {
            return true;
        }
        match statement_end {
            None => return false,
            Some(end) => rest = &rest[end + 1..],
        }
    }
}

/// The comment that ends the facade's own `SET SESSION` of the two
/// settings it restores itself (see [`changes_the_session`]).
pub(crate) const FACADE_RESTORES: &str = "/* diesel_facade restores this setting */";

/// Whether `head` (as for [`commits_implicitly`], which said no) holds a
/// `SET` that changes the session for later transactions: anything but
/// user variables (`SET @x = ..`) and the facade's own `SET SESSION` of
/// the two settings it restores itself (`innodb_lock_wait_timeout` for
/// `lock_timeout`, `max_statement_time` for a bounded cell read), which
/// end with [`FACADE_RESTORES`]. The same settings set by a body are a
/// change like any other: nothing would restore them. `SET SESSION
/// TRANSACTION READ ONLY`, say, would make every later writer on the
/// connection fail. A false "yes" only costs the connection.
pub(crate) fn changes_the_session(head: &str) -> bool {
    let mut rest = head;
    loop {
        rest = skip_space_and_comments(rest);
        if rest.is_empty() {
            return false;
        }
        if first_word(rest).eq_ignore_ascii_case("SET") && is_set_statement(rest) {
            // Its settings last for its one statement.
            return set_statement_body(rest).is_none_or(changes_the_session);
        }
        let statement_end = statement_end(rest);
        let statement = &rest[..statement_end.unwrap_or(rest.len())];
        if first_word(statement).eq_ignore_ascii_case("SET") && set_changes_the_session(statement) {
            return true;
        }
        if first_word(statement).eq_ignore_ascii_case("USE") {
            // Later transactions on the connection would use that database.
            return true;
        }
        match statement_end {
            None => return false,
            Some(end) => rest = &rest[end + 1..],
        }
    }
}

fn set_changes_the_session(statement: &str) -> bool {
    let lower = statement.to_ascii_lowercase();
    let restored_by_the_facade = lower.trim_end().ends_with(FACADE_RESTORES);
    let lower = lower.trim_end().trim_end_matches(FACADE_RESTORES);
    let assignments = lower.get(3..).unwrap_or("");
    let own: &[&str] = if restored_by_the_facade {
        &["innodb_lock_wait_timeout", "max_statement_time"]
    } else {
        &[]
    };
    !assignments.split(',').all(|assignment| {
        let target = skip_space_and_comments(assignment);
        (target.starts_with('@') && !target.starts_with("@@"))
            || own.iter().any(|name| {
                target
                    .strip_prefix("session ")
                    .map(str::trim_start)
                    .is_some_and(|t| {
                        t.starts_with(name)
                            && !t[name.len()..]
                                .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    })
            })
    })
}

/// Whether the `SET` statement at the start of `text` keeps the
/// transaction. `text` runs to the end of the head, past the statement's
/// apparent end: a `;` inside a string or comment (`SET @x = ';SELECT 1',
/// autocommit = 1`) must not hide the rest of it.
/// - `SET autocommit = 1` commits (and changes the session);
/// - `SET PASSWORD` writes the `mysql` schema, which commits.
fn set_keeps_the_transaction(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    !lower.contains("autocommit") && !lower.contains("password")
}

/// Whether `text` (starting with `SET`) is MariaDB's `SET STATEMENT
/// var = value [, ..] FOR <statement>`, which runs any statement (`COMMIT`,
/// DDL, `ROLLBACK`).
fn is_set_statement(text: &str) -> bool {
    let after_set = skip_space_and_comments(text.get(3..).unwrap_or(""));
    first_word(after_set).eq_ignore_ascii_case("STATEMENT")
}

/// The statement a `SET STATEMENT .. FOR` at the start of `text` runs (and
/// whatever follows it in `text`): what follows the first `FOR` outside
/// quotes and comments. `None` if there is none (the text was cut short, or
/// ended at a `;`).
fn set_statement_body(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let word_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' {
                i += 1;
            } else if b == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        let rest = text.get(i..)?;
        if matches!(b, b'\'' | b'"' | b'`') {
            quote = Some(b);
        } else if rest.starts_with("/*") || rest.starts_with("-- ") || rest.starts_with('#') {
            let skipped = skip_space_and_comments(rest);
            i = bytes.len() - skipped.len();
            continue;
        } else if b == b';' {
            return None;
        } else if (i == 0 || !word_byte(bytes[i - 1]))
            && rest.len() >= 3
            && rest.as_bytes()[..3].eq_ignore_ascii_case(b"for")
            && !rest.as_bytes().get(3).is_some_and(|&next| word_byte(next))
        {
            return rest.get(3..);
        }
        i += 1;
    }
    None
}

/// The leading ASCII letters of `text`.
fn first_word(text: &str) -> &str {
    let end = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    &text[..end]
}

/// Whether the `ROLLBACK` statement `statement` (comments skipped) is
/// `ROLLBACK [WORK] TO ...`.
fn rolls_back_to_a_savepoint(statement: &str) -> bool {
    let mut rest = skip_space_and_comments(statement);
    let mut word = first_word(rest);
    // Past `ROLLBACK`, then an optional `WORK`.
    for skip in ["ROLLBACK", "WORK"] {
        if word.eq_ignore_ascii_case(skip) {
            rest = skip_space_and_comments(&rest[word.len()..]);
            word = first_word(rest);
        }
    }
    word.eq_ignore_ascii_case("TO")
}

/// `text` without leading white space and `/* */`, `-- ` and `#` comments.
/// MariaDB's executable comments (`/*! .. */`, `/*M!100000 .. */`) are
/// SQL the server runs: what is returned starts at their content (the
/// version number skipped; the closing `*/` is left as trailing text).
/// `#`, or `--` followed by a space or a control character (a new line,
/// a tab, ..), as MariaDB reads them: a comment to the end of the line.
fn is_line_comment(text: &str) -> bool {
    text.starts_with('#')
        || text
            .strip_prefix("--")
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c == ' ' || c.is_control())
}

/// Where the first statement of `text` ends: the byte index of the first
/// `;` outside strings, quoted names and comments (`None`: it runs to the
/// end). Read as MariaDB reads it with its default `sql_mode`: a backslash
/// escapes the next character in a string, a doubled quote is a quote, and
/// the text of an executable comment (`/*! .. */`, `/*M!NNNNN .. */`) is
/// SQL. Splitting at every `;` let a `;` inside a string or a comment
/// (`SELECT 'a;#'; ROLLBACK`) hide the statements after it.
fn statement_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    // Quoted names (backticks) have no backslash escapes.
                    if bytes[i] == b'\\' && quote != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b';' => return Some(i),
            b'*' if bytes.get(i + 1) == Some(&b'/') => i += 2,
            b'/' | b'#' | b'-' => {
                let rest = &text[i..];
                let skipped = skip_space_and_comments(rest);
                if skipped.len() == rest.len() {
                    i += 1;
                } else {
                    i = bytes.len() - skipped.len();
                }
            }
            _ => i += 1,
        }
    }
    None
}

fn skip_space_and_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text
            .strip_prefix("/*!")
            .or_else(|| text.strip_prefix("/*M!"))
        {
            return rest
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
        }
        if let Some(rest) = text.strip_prefix("/*") {
            text = rest.find("*/").map_or("", |end| &rest[end + 2..]);
        } else if is_line_comment(text) {
            text = text.find('\n').map_or("", |end| &text[end + 1..]);
        } else {
            return text;
        }
    }
}

#[cfg(test)]
mod tests;
