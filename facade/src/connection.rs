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
            session_changed: false,
        }
    }

    /// Forget what the previous transaction hit.
    pub(crate) fn reset(&mut self) {
        self.doomed = None;
        self.first_error = None;
        self.implicit_commits = 0;
        self.session_changed = false;
    }
}

/// The beginning of a statement's text (a batch's, or a prepared
/// statement's SQL without its binds): enough to classify it, without
/// formatting all of a large statement.
struct StatementHead {
    buf: [u8; 512],
    len: usize,
    cut: bool,
}

impl fmt::Write for StatementHead {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.len == self.buf.len() {
                self.cut = true;
                return Err(fmt::Error); // stop formatting: we have enough
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
        Ok(())
    }
}

impl StatementHead {
    fn of(query: &dyn fmt::Display) -> Self {
        let mut head = StatementHead {
            buf: [0; 512],
            len: 0,
            cut: false,
        };
        let _ = fmt::write(&mut head, format_args!("{query}"));
        head
    }

    /// The SQL text, and whether it is all there.
    fn sql(&self) -> (&str, bool) {
        let bytes = &self.buf[..self.len];
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s,
            // Cut inside a multibyte character: keep the valid prefix.
            Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
        };
        // diesel prints a prepared statement as `SQL -- binds: [..]`.
        match text.find(" -- binds: ") {
            Some(end) => (&text[..end], true),
            None => (text, !self.cut),
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
            i.session_changed = false;
        }
    }

    /// How many statements that commit implicitly ran in this transaction.
    pub(crate) fn implicit_commits(&mut self) -> u32 {
        self.instrumentation().map_or(0, |i| i.implicit_commits)
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
