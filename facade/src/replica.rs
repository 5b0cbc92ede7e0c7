//! Read-your-writes: where a context's last commit is kept, how it is
//! carried across requests, and how a carried position is checked before
//! anything trusts it.
//!
//! After a writer commits (and the facade has replicas), the facade asks the
//! primary for its position (PostgreSQL `pg_current_wal_insert_lsn()` after
//! COMMIT, MariaDB `@@last_gtid`, Galera `wsrep_last_committed`) and stores
//! it in the context's [`ReadPosition`]. A later `#[reader(replica)]` on the
//! same context first waits, up to `replica_wait_timeout`, until the replica
//! has applied that position, and reads from the primary if it has not.
//! Contexts that never wrote read replicas without waiting.
//!
//! # Where the position lives
//!
//! Every [`Facade`](crate::Facade) handle carries a `ReadPosition`, and a
//! context without a `#[read_position]` field uses its facade's. That makes
//! read-your-writes the default: a context has no other state of its own,
//! and the handle is the one thing every context owns. `Facade::clone`
//! copies the current position into a fresh cell, so each context built with
//! `db.clone()` tracks its own writes from then on, and contexts never wait
//! for each other's. A context that never writes pays one uncontended lock
//! per replica read to find the cell empty; a facade without replicas never
//! records a position at all. A `#[read_position]` field is only needed to
//! keep the position apart from the handle, e.g. to hand it to the next
//! request.
//!
//! # Tokens are untrusted input
//!
//! A token comes back from a cookie, so it is parsed strictly
//! ([`ReadPosition::from_token`]): a PostgreSQL LSN is two hex numbers that
//! each fit 32 bits, a MariaDB GTID list is `domain-server-seq` triples of
//! decimal numbers (32, 32 and 64 bits), a Galera seqno a 64-bit number;
//! anything else is an [`ErrorKind::Config`] error that quotes at most a
//! short, escaped prefix of the token. A parsed token is still unverified:
//! the first replica read that finds the replica behind it asks the primary
//! whether the position exists at all, and drops a position from the future
//! (ahead of the primary) instead of waiting for it, and a replica that
//! rejects a token's position is not marked down (the token is dropped).

use std::fmt;
use std::sync::Mutex;

use crate::error::{Error, ErrorKind};

/// The longest token [`ReadPosition::from_token`] looks at. A GTID triple is
/// at most 42 characters, so this leaves room for a few dozen domains.
const MAX_TOKEN_LEN: usize = 1024;

/// At most this many characters of a rejected token are quoted in the error.
const QUOTED_CHARS: usize = 24;

/// A position in the primary's history a replica must reach before serving
/// this context. Built only from validated input: a parsed token or the
/// primary's own answer.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A PostgreSQL WAL position in canonical `pg_lsn` text (`16/B374D848`).
    PgLsn(String),
    /// A MariaDB GTID list in canonical text (`0-1-42,1-2-7`).
    Gtid(String),
    /// A Galera cluster-wide seqno (`wsrep_last_committed`), the same on
    /// every node once it has applied that write-set.
    GaleraSeqno(u64),
    /// The context wrote, but its position could not be read: its replica
    /// reads go to the primary until it writes again.
    Written,
}

/// What a replica said about a position it was asked to wait for.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// It has applied the position.
    Yes,
    /// Not (yet) within the time it was given.
    NotYet,
    /// It cannot check this kind of position (another backend's).
    Foreign,
}

/// One `domain-server-seq` of a MariaDB GTID list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GtidTriple {
    pub(crate) domain: u32,
    pub(crate) server: u32,
    pub(crate) seq: u64,
}

/// Digits only (no sign, no spaces, no `_`), then the number must fit.
fn decimal<T: std::str::FromStr>(text: &str) -> Option<T> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn hex32(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 8 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// `HI/LO` as PostgreSQL prints a `pg_lsn`, each half fitting 32 bits.
pub(crate) fn parse_pg_lsn(text: &str) -> Option<u64> {
    let (hi, lo) = text.split_once('/')?;
    Some(u64::from(hex32(hi)?) << 32 | u64::from(hex32(lo)?))
}

pub(crate) fn format_pg_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// A comma-separated list of `domain-server-seq`, each domain at most once
/// (the empty list is no position and is rejected).
pub(crate) fn parse_gtid_list(text: &str) -> Option<Vec<GtidTriple>> {
    let mut list: Vec<GtidTriple> = Vec::new();
    for part in text.split(',') {
        let mut fields = part.split('-');
        let triple = GtidTriple {
            domain: decimal(fields.next()?)?,
            server: decimal(fields.next()?)?,
            seq: decimal(fields.next()?)?,
        };
        if fields.next().is_some() || list.iter().any(|t| t.domain == triple.domain) {
            return None;
        }
        list.push(triple);
    }
    Some(list)
}

pub(crate) fn format_gtid_list(list: &[GtidTriple]) -> String {
    let parts: Vec<String> = list
        .iter()
        .map(|t| format!("{}-{}-{}", t.domain, t.server, t.seq))
        .collect();
    parts.join(",")
}

/// At most [`QUOTED_CHARS`] characters of untrusted `text`, escaped, for an
/// error message.
fn quote(text: &str) -> String {
    let mut quoted: String = text
        .chars()
        .take(QUOTED_CHARS)
        .flat_map(char::escape_default)
        .collect();
    if text.chars().nth(QUOTED_CHARS).is_some() {
        quoted.push('…');
    }
    quoted
}

impl Position {
    fn token(&self) -> String {
        match self {
            Position::PgLsn(lsn) => format!("pg:{lsn}"),
            Position::Gtid(gtid) => format!("gtid:{gtid}"),
            Position::GaleraSeqno(seqno) => format!("galera:{seqno}"),
            Position::Written => "written".to_owned(),
        }
    }

    fn parse(token: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::Config,
                format!(
                    "`{}` is not a read position token ({why}; expected pg:HI/LO, \
                     gtid:DOMAIN-SERVER-SEQ[,..], galera:SEQNO or written)",
                    quote(token)
                ),
            )
        };
        if token.len() > MAX_TOKEN_LEN {
            return Err(bad("too long"));
        }
        if token == "written" {
            return Ok(Position::Written);
        }
        let (kind, value) = token.split_once(':').ok_or_else(|| bad("no kind"))?;
        match kind {
            "pg" => parse_pg_lsn(value)
                .map(|lsn| Position::PgLsn(format_pg_lsn(lsn)))
                .ok_or_else(|| bad("not two 32-bit hex numbers")),
            "gtid" => parse_gtid_list(value)
                .map(|list| Position::Gtid(format_gtid_list(&list)))
                .ok_or_else(|| bad("not a list of 32-32-64-bit decimal triples")),
            "galera" => decimal(value)
                .map(Position::GaleraSeqno)
                .ok_or_else(|| bad("not a 64-bit decimal number")),
            _ => Err(bad("unknown kind")),
        }
    }
}

/// A recorded position and whether it can be trusted to exist: positions
/// from this process's own commits are; positions from tokens are not until
/// the primary confirmed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) position: Position,
    pub(crate) verified: bool,
}

/// Where a context keeps the position of its last commit, so its replica
/// reads see its own writes.
///
/// Every [`Facade`](crate::Facade) handle has one (see
/// [`Facade::read_position`](crate::Facade::read_position)), and a context
/// uses its facade's unless a field is marked `#[read_position]`: mark one
/// only to keep the position apart from the handle, e.g. to carry it to the
/// user's next request, in a session cookie: [`token`](Self::token) after
/// the request, [`from_token`](Self::from_token) at the start of the next.
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::{Facade, ReadPosition, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct RequestContext {
///     #[facade]
///     db: Facade<SqliteConnection>,
///     #[read_position]
///     position: ReadPosition,
/// }
///
/// let restored = ReadPosition::from_token("pg:16/B374D848").unwrap();
/// assert_eq!(restored.token().as_deref(), Some("pg:16/B374D848"));
/// assert!(ReadPosition::from_token("pg:'; DROP").is_err());
/// assert!(ReadPosition::from_token("galera:1234").is_ok());
/// assert_eq!(ReadPosition::default().token(), None);
/// ```
#[derive(Default)]
pub struct ReadPosition {
    state: Mutex<Option<Recorded>>,
}

impl ReadPosition {
    /// An empty position: replica reads do not wait.
    ///
    /// ```
    /// assert_eq!(diesel_facade::ReadPosition::new().token(), None);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Restore a position saved with [`token`](Self::token).
    ///
    /// The token is untrusted input and is parsed strictly: `pg:HI/LO` (two
    /// hex numbers of at most 32 bits), `gtid:D-S-N[,D-S-N..]` (decimal,
    /// 32/32/64 bits, each domain once), `galera:N` (64 bits) or `written`,
    /// at most 1024 bytes. Anything else is an [`ErrorKind::Config`] error
    /// whose message quotes only a short, escaped prefix of the token.
    ///
    /// A token that parses can still name a position the primary has never
    /// reached (a forged or stale-cluster cookie). The first replica read
    /// that finds the replica behind it checks the position against the
    /// primary, and drops one from the future (that read goes to the
    /// primary) instead of waiting `replica_wait_timeout` for it.
    ///
    /// ```
    /// use diesel_facade::{ErrorKind, ReadPosition};
    /// let position = ReadPosition::from_token("pg:0/16B3740").unwrap();
    /// # let _ = position;
    /// for bad in ["pg:0/16B3740'; --", "pg:FFFFFFFFF/0", "gtid:-", "gtid:0-1-", "galera:-1"] {
    ///     assert_eq!(ReadPosition::from_token(bad).unwrap_err().kind(), ErrorKind::Config);
    /// }
    /// ```
    pub fn from_token(token: &str) -> Result<Self, Error> {
        Ok(ReadPosition {
            state: Mutex::new(Some(Recorded {
                position: Position::parse(token)?,
                verified: false,
            })),
        })
    }

    /// The position as a short string (`pg:16/B374D848`, `gtid:0-1-42`,
    /// `galera:1234`, `written`), or `None` if this context has not written
    /// (or its restored position was dropped as invalid).
    ///
    /// ```
    /// let position = diesel_facade::ReadPosition::from_token("written").unwrap();
    /// assert_eq!(position.token().as_deref(), Some("written"));
    /// ```
    pub fn token(&self) -> Option<String> {
        self.recorded().map(|r| r.position.token())
    }

    /// Forget the position: replica reads stop waiting.
    ///
    /// ```
    /// let position = diesel_facade::ReadPosition::from_token("gtid:0-1-42").unwrap();
    /// position.clear();
    /// assert_eq!(position.token(), None);
    /// ```
    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// Tests only: a position that skipped validation, to prove that a
    /// value the server rejects is handled like the bad token it is.
    #[doc(hidden)]
    pub fn __unvalidated(position: Position) -> Self {
        ReadPosition {
            state: Mutex::new(Some(Recorded {
                position,
                verified: false,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Recorded>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn recorded(&self) -> Option<Recorded> {
        self.lock().clone()
    }

    /// Record the position of a commit this process made (trusted).
    pub(crate) fn set(&self, position: Option<Position>) {
        *self.lock() = position.map(|position| Recorded {
            position,
            verified: true,
        });
    }

    /// The primary has reached `position`: it is real, only not yet replayed.
    pub(crate) fn mark_verified(&self, position: &Position) {
        if let Some(recorded) = self.lock().as_mut() {
            if recorded.position == *position {
                recorded.verified = true;
            }
        }
    }

    /// Drop `position` as invalid, unless the context recorded a newer one
    /// in the meantime.
    pub(crate) fn forget(&self, position: &Position) {
        let mut guard = self.lock();
        if guard.as_ref().is_some_and(|r| r.position == *position) {
            *guard = None;
        }
    }
}

impl Clone for ReadPosition {
    fn clone(&self) -> Self {
        ReadPosition {
            state: Mutex::new(self.recorded()),
        }
    }
}

impl fmt::Debug for ReadPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadPosition").field(&self.token()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        for token in [
            "pg:0/16B3740",
            "pg:FFFFFFFF/FFFFFFFF",
            "gtid:0-1-42",
            "gtid:0-1-42,1-2-3",
            "gtid:4294967295-4294967295-18446744073709551615",
            "galera:18446744073709551615",
            "written",
        ] {
            assert_eq!(
                ReadPosition::from_token(token).unwrap().token().as_deref(),
                Some(token)
            );
        }
        let long = format!("gtid:{}", "1".repeat(5000));
        let many = format!(
            "gtid:{}",
            (0..40)
                .map(|d| format!("{d}-1-1"))
                .collect::<Vec<_>>()
                .join(",")
        );
        for bad in [
            "",
            "pg:",
            "pg:zz/1",
            "pg:FFFFFFFFF/0",
            "pg:0/FFFFFFFFF",
            "pg:/0",
            "pg:0/",
            "pg:+1/0",
            "pg:1/2/3",
            "pg: 1/2",
            "gtid:",
            "gtid:-",
            "gtid:--",
            "gtid:0-1-",
            "gtid:-1-2",
            "gtid:0--2",
            "gtid:0-1-2-3",
            "gtid:0-1-2,",
            "gtid:,0-1-2",
            "gtid:0-1-2,,1-1-1",
            "gtid:0-1-2,0-2-3",
            "gtid:4294967296-1-1",
            "gtid:0-4294967296-1",
            "gtid:0-1-18446744073709551616",
            "gtid:0-1-+2",
            "gtid:٣-1-2",
            "gtid:0-1-2\n",
            "galera:",
            "galera:-1",
            "galera:+1",
            "galera:99999999999999999999999",
            "galera:１",
            "mysql:1",
            "Written",
            "pg:0/1\u{0}",
            long.as_str(),
        ] {
            let err = ReadPosition::from_token(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad:?}");
            assert!(
                err.to_string().len() < 400,
                "quotes at most a prefix: {err}"
            );
        }
        assert!(ReadPosition::from_token(&many).is_ok(), "40 domains fit");
    }

    #[test]
    fn rejected_tokens_are_quoted_short_and_escaped() {
        let hostile = format!("gtid:\u{1b}[31m\n{}", "x".repeat(10_000));
        let message = ReadPosition::from_token(&hostile).unwrap_err().to_string();
        assert!(
            !message.contains('\u{1b}') && !message.contains('\n'),
            "{message}"
        );
        assert!(!message.contains(&"x".repeat(QUOTED_CHARS)), "{message}");
    }

    #[test]
    fn a_forgotten_position_stays_forgotten_unless_replaced() {
        let cell = ReadPosition::from_token("galera:5").unwrap();
        let old = cell.recorded().unwrap().position;
        cell.set(Some(Position::GaleraSeqno(6)));
        cell.forget(&old);
        assert_eq!(
            cell.token().as_deref(),
            Some("galera:6"),
            "newer write kept"
        );
        cell.forget(&Position::GaleraSeqno(6));
        assert_eq!(cell.token(), None);
    }
}
