//! Read-your-writes: where a context's last commit is kept, and how it is
//! carried across requests.
//!
//! After a writer commits on a context that has a [`ReadPosition`] (and the
//! facade has replicas), the facade asks the primary for its position
//! (PostgreSQL `pg_current_wal_insert_lsn()` after COMMIT, MariaDB
//! `@@last_gtid`, Galera `wsrep_last_committed`) and stores it there. A later `#[reader(replica)]` on the
//! same context first waits, up to `replica_wait_timeout`, until the replica
//! has applied that position, and reads from the primary if it has not.
//! Contexts that never wrote read replicas without waiting.

use std::fmt;
use std::sync::Mutex;

use crate::error::{Error, ErrorKind};

/// A position in the primary's history a replica must reach before serving
/// this context.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// A PostgreSQL WAL position (`pg_lsn` text, e.g. `16/B374D848`).
    PgLsn(String),
    /// A MariaDB GTID list (e.g. `0-1-42`).
    Gtid(String),
    /// A Galera cluster-wide seqno (`wsrep_last_committed`), the same on
    /// every node once it has applied that write-set.
    GaleraSeqno(u64),
    /// The context wrote, but its position could not be read: its replica
    /// reads go to the primary until it writes again.
    Written,
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
        let bad = || {
            Error::new(
                ErrorKind::Config,
                format!(
                    "`{token}` is not a read position token (expected pg:…, gtid:… or written)"
                ),
            )
        };
        if token == "written" {
            return Ok(Position::Written);
        }
        let (kind, value) = token.split_once(':').ok_or_else(bad)?;
        let valid = match kind {
            "pg" => value.split_once('/').is_some_and(|(hi, lo)| {
                !hi.is_empty()
                    && !lo.is_empty()
                    && hi.chars().chain(lo.chars()).all(|c| c.is_ascii_hexdigit())
            }),
            "galera" => !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()),
            "gtid" => {
                !value.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == '-' || c == ',')
            }
            _ => false,
        };
        if !valid {
            return Err(bad());
        }
        Ok(match kind {
            "pg" => Position::PgLsn(value.to_owned()),
            "galera" => Position::GaleraSeqno(value.parse().map_err(|_| bad())?),
            _ => Position::Gtid(value.to_owned()),
        })
    }
}

/// Where a context keeps the position of its last commit, so its replica
/// reads see its own writes. Put one in your context and mark it
/// `#[read_position]`; [`Context`](crate::Context) has one.
///
/// The position can travel with the user between requests, e.g. in a
/// session cookie: [`token`](Self::token) after the request,
/// [`from_token`](Self::from_token) at the start of the next.
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
    position: Mutex<Option<Position>>,
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

    /// Restore a position saved with [`token`](Self::token). A malformed
    /// token is an [`ErrorKind::Config`] error.
    ///
    /// ```
    /// let position = diesel_facade::ReadPosition::from_token("pg:0/16B3740").unwrap();
    /// assert!(diesel_facade::ReadPosition::from_token("pg:0/16B3740'; --").is_err());
    /// # let _ = position;
    /// ```
    pub fn from_token(token: &str) -> Result<Self, Error> {
        Ok(ReadPosition {
            position: Mutex::new(Some(Position::parse(token)?)),
        })
    }

    /// The position as a short string (`pg:16/B374D848`, `gtid:0-1-42`,
    /// `written`), or `None` if this context has not written.
    ///
    /// ```
    /// let position = diesel_facade::ReadPosition::from_token("written").unwrap();
    /// assert_eq!(position.token().as_deref(), Some("written"));
    /// ```
    pub fn token(&self) -> Option<String> {
        self.get().map(|p| p.token())
    }

    /// Forget the position: replica reads stop waiting.
    ///
    /// ```
    /// let position = diesel_facade::ReadPosition::from_token("gtid:0-1-42").unwrap();
    /// position.clear();
    /// assert_eq!(position.token(), None);
    /// ```
    pub fn clear(&self) {
        self.set(None);
    }

    pub(crate) fn get(&self) -> Option<Position> {
        match self.position.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(crate) fn set(&self, position: Option<Position>) {
        match self.position.lock() {
            Ok(mut guard) => *guard = position,
            Err(poisoned) => *poisoned.into_inner() = position,
        }
    }
}

impl Clone for ReadPosition {
    fn clone(&self) -> Self {
        ReadPosition {
            position: Mutex::new(self.get()),
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
            "gtid:0-1-42",
            "gtid:0-1-42,1-2-3",
            "written",
        ] {
            assert_eq!(
                ReadPosition::from_token(token).unwrap().token().as_deref(),
                Some(token)
            );
        }
        for bad in [
            "",
            "pg:",
            "pg:zz/1",
            "gtid:a",
            "mysql:1",
            "pg:1/2/3",
            "galera:-1",
            "galera:99999999999999999999999",
        ] {
            let err = ReadPosition::from_token(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }
}
