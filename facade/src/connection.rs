//! A pooled connection as the facade holds it (`Managed`: the diesel
//! connection, the backend's session state, a "do not reuse" flag) and the
//! diesel instrumentation through which the facade watches it.
//!
//! The instrumentation is how the facade sees what the server said during
//! a transaction, whatever error type the body returns and even when the
//! body handled the error: the first retryable error (which `retry` acts
//! on), the first error of any kind (which may have aborted a PostgreSQL
//! transaction), and, where the backend needs it, how many statements made
//! the server commit implicitly. Every event also goes on to the
//! application's own instrumentation (`FacadeBuilder::instrumentation`).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use diesel::connection::{Instrumentation, InstrumentationEvent};

use crate::backend::{Implicit, ImplicitCheck, SupportedConnection};
use crate::classify::classify;
use crate::error::ErrorKind;

/// A factory for a per-connection diesel [`Instrumentation`], see
/// [`FacadeBuilder::instrumentation`](crate::FacadeBuilder::instrumentation).
///
/// ```
/// use diesel::connection::{Instrumentation, InstrumentationEvent};
/// let factory: diesel_facade::InstrumentationFactory = std::sync::Arc::new(|| {
///     Box::new(|_event: InstrumentationEvent<'_>| {}) as Box<dyn Instrumentation>
/// });
/// # let _ = factory;
/// ```
pub type InstrumentationFactory = Arc<dyn Fn() -> Box<dyn Instrumentation> + Send + Sync>;

/// The instrumentation the facade installs on each connection: it remembers
/// the first retryable error a transaction hit (so that `retry` works for any
/// error type the body returns) and forwards every event to the
/// application's own instrumentation.
pub(crate) struct FacadeInstrumentation {
    user: Option<Box<dyn Instrumentation>>,
    /// The first retryable error of this transaction.
    pub(crate) doomed: Option<(ErrorKind, String)>,
    /// The first error of any kind of this transaction: on PostgreSQL it
    /// may have aborted the transaction even though the body handled it.
    pub(crate) first_error: Option<(ErrorKind, String)>,
    /// The backend's test for statements that commit implicitly, where it
    /// matters; see `SupportedConnection::implicit_commit_check`.
    pub(crate) implicit_check: Option<ImplicitCheck>,
    /// How many such statements ran since the transaction began.
    pub(crate) implicit_commits: u32,
    /// How many of them ran SQL the facade cannot read (`Implicit::Unread`).
    pub(crate) unread: u32,
    /// Whether a statement changed the session (`Implicit::ChangesSession`)
    /// since the transaction began.
    pub(crate) session_changed: bool,
}

impl FacadeInstrumentation {
    /// A fresh instrumentation, forwarding to a new instance of the
    /// application's own (if it installed a factory).
    pub(crate) fn new(
        factory: Option<&InstrumentationFactory>,
        implicit_check: Option<ImplicitCheck>,
    ) -> Self {
        FacadeInstrumentation {
            user: factory.map(|f| f()),
            doomed: None,
            first_error: None,
            implicit_check,
            implicit_commits: 0,
            unread: 0,
            session_changed: false,
        }
    }

    /// Forget what the previous transaction hit.
    pub(crate) fn reset(&mut self) {
        self.doomed = None;
        self.first_error = None;
        self.implicit_commits = 0;
        self.unread = 0;
        self.session_changed = false;
    }
}

/// A statement's SQL (a batch's, or a prepared statement's without its
/// binds), for the backend's checks.
///
/// It is read from the statement's `Debug` form, where diesel prints the
/// SQL as a Rust string literal: alone for a batch (`"SQL"`), or as the
/// `sql` field of `Query { sql: "SQL", binds: [..] }` for a prepared
/// statement. Unescaping that literal gives the SQL exactly, whatever text
/// it holds (the `Display` form, `SQL -- binds: [..]`, cannot tell the
/// marker from the same text in the SQL or in a bind), and formatting stops
/// at the literal's end, so the binds are never formatted or read. The
/// whole SQL is read (leading space or a long comment cannot push a
/// statement out of sight) up to [`StatementHead::LIMIT`] bytes.
struct StatementHead {
    /// The literal's escaped text, or (if none was found) the start of the
    /// text as it came.
    text: Vec<u8>,
    scan: Scan,
    /// Whether a literal was found.
    literal: bool,
    /// Whether the whole SQL is in `text`.
    complete: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Scan {
    /// Before the literal's opening quote.
    Before,
    /// Inside it; `escaped` after a backslash.
    Inside { escaped: bool },
    /// Past its closing quote (or given up).
    Done,
}

impl fmt::Write for StatementHead {
    // Runs of plain bytes are copied at once (this is called for every
    // statement of a MySQL/MariaDB transaction).
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut bytes = s.as_bytes();
        while !bytes.is_empty() {
            match self.scan {
                Scan::Before => {
                    let quote = bytes.iter().position(|&b| b == b'"');
                    self.keep(&bytes[..quote.unwrap_or(bytes.len())], Self::BEFORE_LIMIT)?;
                    let Some(quote) = quote else { break };
                    self.text.clear();
                    self.literal = true;
                    self.scan = Scan::Inside { escaped: false };
                    bytes = &bytes[quote + 1..];
                }
                Scan::Inside { escaped: true } => {
                    self.keep(&bytes[..1], Self::LIMIT)?;
                    self.scan = Scan::Inside { escaped: false };
                    bytes = &bytes[1..];
                }
                Scan::Inside { escaped: false } => {
                    let special = bytes.iter().position(|&b| b == b'"' || b == b'\\');
                    self.keep(&bytes[..special.unwrap_or(bytes.len())], Self::LIMIT)?;
                    let Some(at) = special else { break };
                    if bytes[at] == b'"' {
                        self.scan = Scan::Done;
                        self.complete = true;
                        return Err(fmt::Error); // stop formatting: the SQL is all here
                    }
                    self.keep(b"\\", Self::LIMIT)?;
                    self.scan = Scan::Inside { escaped: true };
                    bytes = &bytes[at + 1..];
                }
                Scan::Done => return Err(fmt::Error),
            }
        }
        Ok(())
    }
}

impl StatementHead {
    /// The longest SQL read (escaped); a longer statement is read this far
    /// and said to be cut short.
    const LIMIT: usize = 1 << 20;
    /// How far to look for the literal.
    const BEFORE_LIMIT: usize = 512;

    /// Appends `bytes` to `text` as far as `limit` allows; stops the
    /// formatting (`Done`) where a byte would go past it.
    fn keep(&mut self, bytes: &[u8], limit: usize) -> fmt::Result {
        let room = limit.saturating_sub(self.text.len());
        if bytes.len() > room {
            self.text.extend_from_slice(&bytes[..room]);
            self.scan = Scan::Done;
            return Err(fmt::Error);
        }
        self.text.extend_from_slice(bytes);
        Ok(())
    }

    fn of(query: &dyn fmt::Debug) -> Self {
        let mut head = StatementHead {
            text: Vec::new(),
            scan: Scan::Before,
            literal: false,
            complete: false,
        };
        let formatted = fmt::write(&mut head, format_args!("{query:?}")).is_ok();
        if head.literal {
            head.unescape();
        } else {
            // Text with no literal is taken as it is.
            head.complete = formatted;
        }
        head
    }

    /// Unescapes `text` (a literal's escaped interior) in place:
    /// unescaping never lengthens it. Stops at an escape that was cut short.
    fn unescape(&mut self) {
        let buf = &mut self.text;
        let (mut read, mut write) = (0, 0);
        while read < buf.len() {
            let byte = buf[read];
            if byte != b'\\' {
                buf[write] = byte;
                write += 1;
                read += 1;
                continue;
            }
            let Some(&escaped) = buf.get(read + 1) else {
                self.complete = false;
                break; // cut inside an escape
            };
            let simple = match escaped {
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'0' => Some(0),
                b'\\' | b'"' | b'\'' => Some(escaped),
                _ => None,
            };
            if let Some(unescaped) = simple {
                buf[write] = unescaped;
                write += 1;
                read += 2;
                continue;
            }
            // `\u{HEX}`, the only other escape `Debug` writes.
            let Some(close) = buf[read..].iter().position(|&b| b == b'}') else {
                self.complete = false;
                break; // cut inside the escape
            };
            let decoded = std::str::from_utf8(&buf[read..read + close])
                .ok()
                .and_then(|text| text.strip_prefix("\\u{"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .and_then(char::from_u32);
            let Some(decoded) = decoded else {
                self.complete = false;
                break; // not Debug's output: stop where it stops making sense
            };
            let mut utf8 = [0; 4];
            for &b in decoded.encode_utf8(&mut utf8).as_bytes() {
                buf[write] = b;
                write += 1;
            }
            read += close + 1;
        }
        buf.truncate(write);
    }

    /// The SQL text, and whether it is all there.
    fn sql(&self) -> (&str, bool) {
        match std::str::from_utf8(&self.text) {
            Ok(s) => (s, self.complete),
            // Cut inside a multibyte character: keep the valid prefix.
            Err(e) => (
                std::str::from_utf8(&self.text[..e.valid_up_to()]).unwrap_or_default(),
                false,
            ),
        }
    }
}

impl Instrumentation for FacadeInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let (Some(check), InstrumentationEvent::StartQuery { query, .. }) =
            (self.implicit_check, &event)
        {
            let head = StatementHead::of(query);
            let (sql, complete) = head.sql();
            match check(sql, complete) {
                Implicit::Keeps => {}
                Implicit::ChangesSession => self.session_changed = true,
                Implicit::Commits => self.implicit_commits += 1,
                Implicit::Unread => {
                    self.implicit_commits += 1;
                    self.unread += 1;
                }
                Implicit::UnreadAndCommits => {
                    self.implicit_commits += 2;
                    self.unread += 1;
                }
                Implicit::RollsBack => {
                    self.implicit_commits += 1;
                    if self.doomed.is_none() {
                        self.doomed = Some((
                            ErrorKind::UnbalancedTransaction,
                            "the function ran a `ROLLBACK` statement of its own, which rolled \
                             the transaction back on the server: it was not committed (on \
                             MySQL/MariaDB with autocommit, statements after the `ROLLBACK` \
                             committed on their own). Return an error to roll back instead"
                                .to_owned(),
                        ));
                    }
                }
            }
        }
        if let InstrumentationEvent::FinishQuery {
            error: Some(err), ..
        } = &event
        {
            let kind = classify(err);
            if kind.is_retryable() && self.doomed.is_none() {
                self.doomed = Some((kind, err.to_string()));
            }
            if self.first_error.is_none() {
                self.first_error = Some((kind, err.to_string()));
            }
        }
        if let Some(user) = &mut self.user {
            user.on_connection_event(event);
        }
    }
}

/// A pooled connection with the facade's per-connection state.
pub(crate) struct Managed<C: SupportedConnection> {
    pub(crate) conn: C,
    pub(crate) session: C::Session,
    /// Set when the connection must not be reused (a failed rollback, a lost
    /// connection, a Galera node that is not ready).
    pub(crate) broken: bool,
    /// diesel's transaction depth when no transaction of the facade is
    /// open: 0, or 1 on a transactional test pool's connection, which
    /// stays inside its test transaction (see `pool.rs`).
    pub(crate) base_depth: u32,
    /// When the connection was made or last came back to the pool: a
    /// checkout pings it only after it sat idle that long (see
    /// `pool::PING_AFTER_IDLE`).
    pub(crate) idle_since: Instant,
    /// Whether this checkout proved the connection alive (it answered a
    /// ping). A `BEGIN` that finds an unproven connection lost is retried
    /// on another one: nothing of the caller's was sent yet. A new
    /// connection is unproven too: the pool may have opened it long before
    /// its first checkout.
    pub(crate) proven: bool,
    /// Reinstalls the facade's instrumentation if a body replaced it.
    factory: Option<InstrumentationFactory>,
    implicit_check: Option<ImplicitCheck>,
}

impl<C: SupportedConnection> Managed<C> {
    /// A new connection, already watched by the facade's instrumentation,
    /// with the session state `after_connect` returned.
    pub(crate) fn new(
        conn: C,
        session: C::Session,
        factory: Option<InstrumentationFactory>,
    ) -> Self {
        let implicit_check = C::implicit_commit_check(&session);
        let mut managed = Managed {
            conn,
            session,
            broken: false,
            base_depth: 0,
            idle_since: Instant::now(),
            proven: false,
            factory,
            implicit_check,
        };
        if let Some(i) = managed.instrumentation() {
            i.implicit_check = implicit_check;
        }
        managed
    }

    fn instrumentation(&mut self) -> Option<&mut FacadeInstrumentation> {
        self.conn
            .instrumentation()
            .downcast_mut::<FacadeInstrumentation>()
    }

    fn install_instrumentation(&mut self) {
        self.conn.set_instrumentation(FacadeInstrumentation::new(
            self.factory.as_ref(),
            self.implicit_check,
        ));
    }

    /// Start watching a new transaction: forget the last one's errors and
    /// implicit commits, and put the facade's instrumentation back if an
    /// earlier body replaced it.
    pub(crate) fn begin_watching(&mut self) {
        match self.instrumentation() {
            Some(i) => i.reset(),
            None => self.install_instrumentation(),
        }
    }

    /// Whether the facade still watches this connection (a body may have
    /// replaced its instrumentation with `set_instrumentation`).
    pub(crate) fn watched(&mut self) -> bool {
        self.instrumentation().is_some()
    }

    /// The retryable error this transaction hit, if any.
    pub(crate) fn doomed(&mut self) -> Option<(ErrorKind, String)> {
        self.instrumentation().and_then(|i| i.doomed.clone())
    }

    pub(crate) fn set_doomed(&mut self, value: Option<(ErrorKind, String)>) {
        if let Some(i) = self.instrumentation() {
            i.doomed = value;
        }
    }

    /// The first error of any kind this transaction hit.
    pub(crate) fn first_error(&mut self) -> Option<(ErrorKind, String)> {
        self.instrumentation().and_then(|i| i.first_error.clone())
    }

    /// Start counting implicit commits and session changes afresh (after
    /// the facade's own BEGIN).
    pub(crate) fn forget_implicit_commits(&mut self) {
        if let Some(i) = self.instrumentation() {
            i.implicit_commits = 0;
            i.unread = 0;
            i.session_changed = false;
        }
    }

    /// How many statements that commit implicitly ran in this transaction,
    /// and how many of them ran SQL the facade cannot read.
    pub(crate) fn implicit_commits(&mut self) -> (u32, u32) {
        self.instrumentation()
            .map_or((0, 0), |i| (i.implicit_commits, i.unread))
    }

    /// Whether this transaction ran a statement that commits implicitly or
    /// changes the session: the connection must not be reused. A test
    /// pool's connection keeps its test transaction: a session setting
    /// there ends with the test (on PostgreSQL, with the test transaction).
    pub(crate) fn session_changed(&mut self) -> bool {
        let in_a_test_transaction = self.base_depth > 0;
        self.instrumentation().is_some_and(|i| {
            i.implicit_commits > 0 || (i.session_changed && !in_a_test_transaction)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::StatementHead;

    /// What the check is given for a statement whose `Debug` form is `debug`.
    fn sql_of(debug: &dyn std::fmt::Debug) -> (String, bool) {
        let head = StatementHead::of(debug);
        let (sql, complete) = head.sql();
        (sql.to_owned(), complete)
    }

    /// A batch: diesel's instrumentation prints its text as a string.
    #[test]
    fn a_batch_is_its_text_whatever_it_holds() {
        for text in [
            "SET SESSION autocommit = 1",
            "SELECT 1 -- binds: x\n; SET SESSION check_constraint_checks = 0",
            "UPDATE t SET s = 'a \"quoted\" \\\\ word'\t-- é ∑ \u{7f}",
        ] {
            assert_eq!(sql_of(&text), (text.to_owned(), true), "{text:?}");
        }
    }

    /// A prepared statement: its SQL exactly, none of its binds.
    #[cfg(feature = "sqlite")]
    #[test]
    fn a_prepared_statement_is_its_sql_without_the_binds() {
        use diesel::sql_types::Text;
        let sql = "UPDATE /* -- binds: */ diesel_facade_guard SET armed = ? -- binds: ";
        let query = diesel::sql_query(sql).bind::<Text, _>("x\" -- binds: DROP TABLE t; \n");
        let debug = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query);
        assert_eq!(sql_of(&debug), (sql.to_owned(), true));
    }

    /// The whole SQL is read: leading space, new lines (two bytes each in
    /// the `Debug` form) or a long comment hide nothing.
    #[test]
    fn what_follows_a_long_prefix_is_read() {
        for text in [
            format!("{}CREATE TABLE t (id INT)", " ".repeat(600)),
            format!("{}CREATE TABLE t (id INT)", "\n".repeat(300)),
            format!("/* {} */ ROLLBACK", "x".repeat(5000)),
        ] {
            assert_eq!(sql_of(&text.as_str()), (text.clone(), true));
        }
    }

    /// SQL longer than the limit is read that far and says it was cut,
    /// also where the cut falls inside an escape.
    #[test]
    fn a_statement_over_the_limit_is_cut_and_says_so() {
        let limit = StatementHead::LIMIT;
        let text = format!("{}\n", "x".repeat(limit));
        assert_eq!(sql_of(&text.as_str()), ("x".repeat(limit), false));
        let text = format!("{}\n", "x".repeat(limit - 1));
        assert_eq!(sql_of(&text.as_str()), ("x".repeat(limit - 1), false));
    }

    /// `sql`, read exactly from `debug`.
    fn assert_read_back(debug: &dyn std::fmt::Debug, sql: &str) -> Result<(), String> {
        let (read, complete) = sql_of(debug);
        match complete && read == sql {
            true => Ok(()),
            false => Err(format!("read {read:?} (complete: {complete}) for {sql:?}")),
        }
    }

    proptest::proptest! {
        /// Any batch text is read back exactly: quotes, backslashes,
        /// control and non-ASCII characters included.
        #[test]
        fn any_batch_text_is_read_back_exactly(text in "(?s).{0,400}") {
            let checked = assert_read_back(&text.as_str(), &text);
            proptest::prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
        }

        /// Any prepared statement's SQL is read back exactly and none of
        /// its binds, whatever either holds.
        #[cfg(feature = "sqlite")]
        #[test]
        fn any_prepared_sql_is_read_back_without_its_binds(
            sql in "(?s).{0,400}",
            bind in "(?s).{0,400}",
        ) {
            use diesel::sql_types::Text;
            let query = diesel::sql_query(sql.clone()).bind::<Text, _>(bind);
            let debug = diesel::debug_query::<diesel::sqlite::Sqlite, _>(&query);
            let checked = assert_read_back(&debug, &sql);
            proptest::prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
        }
    }

    /// A form without a string literal is taken as it is (as far as the
    /// literal is looked for).
    #[test]
    fn text_without_a_literal_is_kept() {
        struct Plain;
        impl std::fmt::Debug for Plain {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("COMMIT")
            }
        }
        assert_eq!(sql_of(&Plain), ("COMMIT".to_owned(), true));
    }

    /// ... and only that far: past it, the text is said to be cut short,
    /// however it arrives (one piece or many).
    #[test]
    fn text_without_a_literal_is_read_as_far_as_one_is_looked_for() {
        struct Plain(usize, usize);
        impl std::fmt::Debug for Plain {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                for _ in 0..self.0 {
                    f.write_str(&"x".repeat(self.1))?;
                }
                Ok(())
            }
        }
        let limit = StatementHead::BEFORE_LIMIT;
        assert_eq!(sql_of(&Plain(1, limit)), ("x".repeat(limit), true));
        assert_eq!(sql_of(&Plain(limit, 1)), ("x".repeat(limit), true));
        assert_eq!(sql_of(&Plain(1, limit + 1)), ("x".repeat(limit), false));
        assert_eq!(sql_of(&Plain(limit + 1, 1)), ("x".repeat(limit), false));
        assert_eq!(sql_of(&Plain(3, limit / 2)), ("x".repeat(limit), false));
    }
}
