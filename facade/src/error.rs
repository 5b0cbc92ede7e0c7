//! The one error type of diesel-facade: [`Error`] and its [`ErrorKind`].
//!
//! How a diesel error is given its kind (diesel's codes first, then the
//! raising backend's fixed wordings) is `crate::classify`'s job; this
//! module only defines the types and their conversions back into diesel's
//! error, and depends on no other module of the crate.

use std::fmt;

use diesel::result::Error as DieselError;

/// What went wrong, in terms an application can act on.
///
/// ```
/// use diesel_facade::{Error, ErrorKind};
///
/// let err = Error::from(diesel::result::Error::NotFound);
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert!(!err.kind().is_retryable());
/// assert!(ErrorKind::Deadlock.is_retryable());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The server chose this transaction as a deadlock victim (PostgreSQL
    /// 40P01, MySQL/MariaDB 1213, including Galera certification failures).
    Deadlock,
    /// A serialization failure (SQLSTATE 40001) or MariaDB's
    /// "Record has changed since last read" (1020).
    SerializationFailure,
    /// Waiting for a row or table lock timed out (PostgreSQL 55P03,
    /// MySQL 1205, SQLite `BUSY`), or a lock guard's own timeout expired.
    LockTimeout,
    /// A unique or primary key constraint was violated.
    UniqueViolation,
    /// A foreign key constraint was violated.
    ForeignKeyViolation,
    /// A write reached the database inside a read-only transaction or on a
    /// read-only server (PostgreSQL 25006, MySQL 1792/1290, SQLite
    /// `SQLITE_READONLY`).
    ReadOnlyViolation,
    /// The connection to the server was lost, or a Galera node is not ready
    /// (1047). Retried when it happens before `COMMIT` was sent.
    Disconnected,
    /// The connection was lost while `COMMIT` was in flight, or the function
    /// ended the transaction itself (a `COMMIT` or `ROLLBACK` statement of
    /// its own): the transaction may or may not have been committed. Never
    /// retried.
    CommitUnknown,
    /// No pooled connection became free within `pool_timeout`.
    PoolTimeout,
    /// A lock name was not 1 to 50 characters, contained a control
    /// character, or began or ended with whitespace (see
    /// [`MAX_LOCK_NAME_CHARS`](crate::MAX_LOCK_NAME_CHARS) and docs/locks.md).
    InvalidLockName,
    /// The `locks` table does not exist: run the migrations.
    MissingLocksTable,
    /// The facade's configuration (a URL, a pool or backend option) is
    /// unusable, or the server refused to connect (wrong user or password,
    /// unknown database): not retried.
    Config,
    /// A function returned `Ok` but left diesel transactions of its own open
    /// (say a `conn.transaction(..)` whose panic was caught): its level was
    /// rolled back instead of committed. Fix the code; never retried.
    UnbalancedTransaction,
    /// `lock(name)` inside a `#[writer(savepoint)]` for a lock the
    /// transaction does not hold yet: a savepoint's rollback would release
    /// it early. Take the lock before the savepoint.
    LockInSavepoint,
    /// A call with transactions open on several databases of its context
    /// (`#[facade(NAME)]`, `db = NAME`) committed some of them and then
    /// failed to commit another: there is no two-phase commit. The message
    /// names the databases that committed, the one whose COMMIT failed (its
    /// error is the [`source`](std::error::Error::source)) and those rolled
    /// back; see docs/databases.md for the order. Never retried.
    PartiallyCommitted,
    /// A call that the nesting table forbids, reached through a function of
    /// another database of the context, where only the run time can see it
    /// (a `#[writer]` of `main` inside an `api` reader inside a `main`
    /// reader, say); nothing ran. See docs/databases.md. Never retried.
    WrongNesting,
    /// A query expected a row and found none.
    NotFound,
    /// Anything else: see the message and [`std::error::Error::source`].
    Other,
}

impl ErrorKind {
    /// Whether a whole transaction that failed with this kind may be re-run:
    /// deadlocks, serialization failures and connections lost before `COMMIT`.
    ///
    /// ```
    /// use diesel_facade::ErrorKind;
    /// assert!(ErrorKind::SerializationFailure.is_retryable());
    /// assert!(!ErrorKind::CommitUnknown.is_retryable());
    /// ```
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Deadlock | ErrorKind::SerializationFailure | ErrorKind::Disconnected
        )
    }

    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Deadlock => "deadlock",
            ErrorKind::SerializationFailure => "serialization failure",
            ErrorKind::LockTimeout => "lock timeout",
            ErrorKind::UniqueViolation => "unique violation",
            ErrorKind::ForeignKeyViolation => "foreign key violation",
            ErrorKind::ReadOnlyViolation => "write in a read-only transaction",
            ErrorKind::Disconnected => "connection lost",
            ErrorKind::CommitUnknown => "commit outcome unknown",
            ErrorKind::PoolTimeout => "connection pool timeout",
            ErrorKind::InvalidLockName => "invalid lock name",
            ErrorKind::MissingLocksTable => "missing locks table",
            ErrorKind::Config => "configuration error",
            ErrorKind::UnbalancedTransaction => "unbalanced nested transaction",
            ErrorKind::LockInSavepoint => "lock taken inside a savepoint",
            ErrorKind::PartiallyCommitted => "committed on some databases only",
            ErrorKind::WrongNesting => "call not allowed in the open transaction",
            ErrorKind::NotFound => "not found",
            ErrorKind::Other => "database error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The error of every diesel-facade operation.
///
/// It converts from and into [`diesel::result::Error`], so functions returning
/// [`diesel::QueryResult`] can be annotated with `#[reader]`/`#[writer]`
/// unchanged, and an error that crossed such a function keeps its [`kind`](Error::kind).
///
/// ```
/// use diesel_facade::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::PoolTimeout, "no connection within 5s");
/// let diesel_err: diesel::result::Error = err.into();
/// let back = Error::from(diesel_err);
/// assert_eq!(back.kind(), ErrorKind::PoolTimeout);
/// assert!(back.to_string().contains("no connection within 5s"));
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a message that says what happened and, where it
    /// can, what to do about it.
    ///
    /// ```
    /// let err = diesel_facade::Error::new(diesel_facade::ErrorKind::Other, "the report is empty");
    /// # let _ = err;
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying cause.
    ///
    /// ```
    /// use diesel_facade::{Error, ErrorKind};
    /// let err = Error::new(ErrorKind::Other, "loading items")
    ///     .with_source(diesel::result::Error::NotFound);
    /// assert!(std::error::Error::source(&err).is_some());
    /// ```
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    ///
    /// ```
    /// use diesel_facade::{Error, ErrorKind};
    /// assert_eq!(Error::new(ErrorKind::LockTimeout, "x").kind(), ErrorKind::LockTimeout);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind prefix [`Display`](fmt::Display) adds.
    ///
    /// ```
    /// use diesel_facade::{Error, ErrorKind};
    /// let err = Error::new(ErrorKind::Config, "max_pool_size must be at least 1");
    /// assert_eq!(err.message(), "max_pool_size must be at least 1");
    /// assert_eq!(err.to_string(), "configuration error: max_pool_size must be at least 1");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The diesel error this was classified from, if any.
    ///
    /// ```
    /// use diesel_facade::Error;
    /// let err = Error::from(diesel::result::Error::NotFound);
    /// assert!(matches!(err.diesel_error(), Some(diesel::result::Error::NotFound)));
    /// ```
    pub fn diesel_error(&self) -> Option<&DieselError> {
        self.source.as_ref()?.downcast_ref::<DieselError>()
    }

    /// A configuration error.
    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// Classify a diesel error with a backend's message rules.
    pub(crate) fn classify_with(err: DieselError, kind: ErrorKind) -> Self {
        Error {
            kind,
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }

    /// Re-label an error (e.g. a lost connection during COMMIT becomes
    /// `CommitUnknown`), keeping its source.
    pub(crate) fn with_kind(mut self, kind: ErrorKind, context: &str) -> Self {
        self.kind = kind;
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl From<Error> for DieselError {
    fn from(err: Error) -> Self {
        // A classification of a diesel error converts back into that error,
        // so `match`es on diesel's variants in application code keep working.
        let derived_from_diesel = matches!(
            err.kind,
            ErrorKind::Deadlock
                | ErrorKind::SerializationFailure
                | ErrorKind::LockTimeout
                | ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::ReadOnlyViolation
                | ErrorKind::Disconnected
                | ErrorKind::NotFound
                | ErrorKind::Other
        );
        if derived_from_diesel
            && err
                .source
                .as_ref()
                .is_some_and(|s| s.downcast_ref::<DieselError>().is_some())
        {
            if let Some(source) = err.source {
                if let Ok(diesel_err) = source.downcast::<DieselError>() {
                    return *diesel_err;
                }
            }
            unreachable_source()
        } else {
            DieselError::QueryBuilderError(Box::new(err))
        }
    }
}

#[cold]
fn unreachable_source() -> DieselError {
    // The branch above checked the downcast; keep a total function anyway.
    DieselError::QueryBuilderError("diesel-facade: lost error source".into())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<diesel::ConnectionError> for Error {
    fn from(err: diesel::ConnectionError) -> Self {
        let kind = match &err {
            diesel::ConnectionError::InvalidConnectionUrl(_) => ErrorKind::Config,
            _ => ErrorKind::Disconnected,
        };
        Error {
            kind,
            message: err.to_string(),
            source: Some(Box::new(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::classify::test_support::database_error;
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    #[test]
    fn diesel_round_trip_keeps_the_original_variant() {
        let err = Error::from(DieselError::NotFound);
        let back: DieselError = err.into();
        assert!(matches!(back, DieselError::NotFound));
    }

    #[test]
    fn facade_errors_survive_a_query_result() {
        for kind in [
            ErrorKind::PoolTimeout,
            ErrorKind::InvalidLockName,
            ErrorKind::MissingLocksTable,
            ErrorKind::CommitUnknown,
            ErrorKind::Config,
        ] {
            let through: DieselError = Error::new(kind, "x").into();
            assert_eq!(Error::from(through).kind(), kind);
        }
    }

    #[test]
    fn relabelled_errors_keep_their_new_kind() {
        let lost = Error::from(database_error(
            DatabaseErrorKind::ClosedConnection,
            "server closed the connection unexpectedly",
        ))
        .with_kind(ErrorKind::CommitUnknown, "connection lost during COMMIT");
        let through: DieselError = lost.into();
        let back = Error::from(through);
        assert_eq!(back.kind(), ErrorKind::CommitUnknown);
        assert!(back.message().contains("during COMMIT"));
    }
}
