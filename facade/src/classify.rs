//! How a diesel error gets its [`ErrorKind`].
//!
//! diesel exposes neither SQLSTATEs nor server error numbers (see
//! docs/internals.md, "What diesel reports"), so the kind of a database
//! error comes, in this order, from:
//!
//! 1. diesel's [`DatabaseErrorKind`], which diesel derived from the
//!    server's codes (unique, foreign key, read-only, closed connection):
//!    no message text can change these;
//! 2. the rules of the backend that raised the error, in its own file
//!    (`backend/{pg,mysql,sqlite}.rs`, `SupportedConnection::read_error`):
//!    the server's fixed wording, matched whole or from the start of the
//!    message, never as a substring. Servers put parameters, which may be
//!    row data (`Duplicate entry 'deadlock' for key ...`, `invalid input
//!    syntax for type integer: "lost connection"`), after a fixed start, so
//!    data can never steer the kind.
//!
//! `Error::from(diesel::result::Error)` does not know which backend raised
//! the error (diesel's error carries no backend), so it consults every
//! enabled backend's rules. That is sound because each backend's rules
//! match only its own server's wordings and no two servers share one (a
//! unit test below checks each backend's wordings against the others'
//! rules); so the facade's own paths and an application's `Error::from`
//! always agree, and converting an [`Error`] into a [`diesel::result::Error`]
//! and back keeps its [`ErrorKind`], which is what lets `QueryResult<T>`
//! functions pass facade errors through unchanged.
//!
//! The wordings are English. MySQL/MariaDB sessions are set to
//! `lc_messages = 'en_US'`; PostgreSQL's `lc_messages` can only be changed
//! by a superuser, so on a server configured for another language the
//! message-derived kinds degrade to `Other` (see docs/guide.md).

use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error as DieselError};

use crate::backend::{self, ServerSays};
use crate::error::{Error, ErrorKind};

/// The kind of a diesel error, by the rules of the module docs.
pub(crate) fn classify(err: &DieselError) -> ErrorKind {
    match err {
        DieselError::NotFound => ErrorKind::NotFound,
        DieselError::DatabaseError(kind, info) => match read_database(*kind, &**info) {
            ServerSays::Kind(kind) => kind,
            ServerSays::ConnectionLost => ErrorKind::Disconnected,
            ServerSays::SavepointGone | ServerSays::NoTransaction => ErrorKind::Other,
        },
        DieselError::RollbackErrorOnCommit { commit_error, .. } => classify(commit_error),
        DieselError::BrokenTransactionManager => ErrorKind::Disconnected,
        _ => ErrorKind::Other,
    }
}

fn read_database(kind: DatabaseErrorKind, info: &dyn DatabaseErrorInformation) -> ServerSays {
    // diesel derived these from SQLSTATEs and error numbers: no message can
    // change them.
    let exact = match kind {
        DatabaseErrorKind::UniqueViolation => Some(ErrorKind::UniqueViolation),
        DatabaseErrorKind::ForeignKeyViolation => Some(ErrorKind::ForeignKeyViolation),
        DatabaseErrorKind::ReadOnlyTransaction => Some(ErrorKind::ReadOnlyViolation),
        DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
            return ServerSays::ConnectionLost
        }
        _ => None,
    };
    if let Some(kind) = exact {
        return ServerSays::Kind(kind);
    }
    // The rest by the backends' fixed wordings (MySQL's 1213 also arrives as
    // `SerializationFailure` and is a deadlock).
    if let Some(says) = backend::read_error_any(kind, info) {
        return says;
    }
    ServerSays::Kind(match kind {
        DatabaseErrorKind::SerializationFailure => ErrorKind::SerializationFailure,
        _ => ErrorKind::Other,
    })
}

/// Whether `err` means the connection dropped (so a COMMIT in flight has an
/// unknown outcome). A Galera node that is not ready (1047) did not commit:
/// that is retryable, not lost.
pub(crate) fn is_connection_lost(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(kind, info) => {
            read_database(*kind, &**info) == ServerSays::ConnectionLost
        }
        DieselError::RollbackErrorOnCommit { commit_error, .. } => is_connection_lost(commit_error),
        _ => false,
    }
}

/// Whether `err` is a `COMMIT` that found no transaction open, because the
/// body ended it with a statement of its own (see `ServerSays::NoTransaction`).
pub(crate) fn is_no_transaction(err: &DieselError) -> bool {
    matches!(err, DieselError::DatabaseError(kind, info)
        if read_database(*kind, &**info) == ServerSays::NoTransaction)
}

/// After a Galera or InnoDB deadlock the server has already rolled the whole
/// transaction back, so the savepoint is gone (MySQL 1305, "SAVEPOINT ...
/// does not exist"): report that as the deadlock it is.
pub(crate) fn savepoint_failure(err: DieselError) -> Error {
    let gone = matches!(&err, DieselError::DatabaseError(kind, info)
        if read_database(*kind, &**info) == ServerSays::SavepointGone);
    if gone {
        return Error::new(
            ErrorKind::Deadlock,
            format!("the server rolled the transaction back (its savepoint is gone: {err})"),
        )
        .with_source(err);
    }
    Error::from(err)
}

impl From<DieselError> for Error {
    fn from(err: DieselError) -> Self {
        // A facade error that travelled through a `QueryResult` comes back as
        // itself, kind and message intact.
        if let DieselError::QueryBuilderError(inner) = err {
            return match inner.downcast::<Error>() {
                Ok(facade) => *facade,
                Err(other) => {
                    let err = DieselError::QueryBuilderError(other);
                    Error::classify_with(err, ErrorKind::Other)
                }
            };
        }
        let kind = classify(&err);
        Error::classify_with(err, kind)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Database errors as a server would report them, for unit tests.
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    struct Info(&'static str, Option<&'static str>);
    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            self.1
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    /// A `DatabaseError` of `kind` with the server message `message`.
    pub(crate) fn database_error(kind: DatabaseErrorKind, message: &'static str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(Info(message, None)))
    }

    /// A `DatabaseError` with a DETAIL, as PostgreSQL reports them.
    #[cfg_attr(
        not(all(feature = "sqlite", feature = "postgres", feature = "mysql")),
        allow(dead_code)
    )]
    pub(crate) fn database_error_with_details(
        kind: DatabaseErrorKind,
        message: &'static str,
        details: &'static str,
    ) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(Info(message, Some(details))))
    }
}

// These read every backend's messages: they need every backend's rules.
#[cfg(all(test, feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod tests {
    use super::*;

    use super::test_support::database_error;

    fn db(kind: DatabaseErrorKind, msg: &'static str) -> ErrorKind {
        Error::from(database_error(kind, msg)).kind()
    }

    const PG_DEADLOCK_DETAIL: &str = "Process 4242 waits for ShareLock on transaction 812; \
                                      blocked by process 4243.";

    #[test]
    fn classifies_each_backends_messages() {
        use DatabaseErrorKind as K;
        let pg_deadlock = Error::from(super::test_support::database_error_with_details(
            K::Unknown,
            "deadlock detected",
            PG_DEADLOCK_DETAIL,
        ));
        assert_eq!(pg_deadlock.kind(), ErrorKind::Deadlock);
        assert_eq!(
            db(
                K::SerializationFailure,
                "Deadlock found when trying to get lock; try restarting transaction"
            ),
            ErrorKind::Deadlock
        );
        assert_eq!(
            db(
                K::Unknown,
                "Deadlock found when trying to get lock; try restarting transaction"
            ),
            ErrorKind::Deadlock
        );
        assert_eq!(
            db(
                K::SerializationFailure,
                "could not serialize access due to concurrent update"
            ),
            ErrorKind::SerializationFailure
        );
        assert_eq!(
            db(
                K::Unknown,
                "Record has changed since last read in table 'locks'"
            ),
            ErrorKind::SerializationFailure
        );
        assert_eq!(
            db(
                K::Unknown,
                "WSREP has not yet prepared node for application use"
            ),
            ErrorKind::Disconnected
        );
        assert_eq!(
            db(
                K::Unknown,
                "Lock wait timeout exceeded; try restarting transaction"
            ),
            ErrorKind::LockTimeout
        );
        assert_eq!(
            db(K::Unknown, "canceling statement due to lock timeout"),
            ErrorKind::LockTimeout
        );
        assert_eq!(
            db(
                K::Unknown,
                "could not obtain lock on row in relation \"locks\""
            ),
            ErrorKind::LockTimeout
        );
        assert_eq!(db(K::Unknown, "database is locked"), ErrorKind::LockTimeout);
        assert_eq!(
            db(K::Unknown, "attempt to write a readonly database"),
            ErrorKind::ReadOnlyViolation
        );
        assert_eq!(
            db(
                K::ReadOnlyTransaction,
                "cannot execute INSERT in a read-only transaction"
            ),
            ErrorKind::ReadOnlyViolation
        );
        assert_eq!(
            db(
                K::Unknown,
                "Cannot execute statement in a READ ONLY transaction"
            ),
            ErrorKind::ReadOnlyViolation
        );
        assert_eq!(
            db(
                K::Unknown,
                "The MariaDB server is running with the --read-only option so it cannot execute this statement"
            ),
            ErrorKind::ReadOnlyViolation
        );
        assert_eq!(
            db(K::Unknown, "Lost connection to server during query"),
            ErrorKind::Disconnected
        );
        assert_eq!(
            db(K::Unknown, "Server has gone away"),
            ErrorKind::Disconnected
        );
        assert_eq!(
            db(K::Unknown, "Duplicate entry '7' for key 'PRIMARY'"),
            ErrorKind::UniqueViolation
        );
        assert_eq!(
            db(K::UniqueViolation, "duplicate key"),
            ErrorKind::UniqueViolation
        );
        assert_eq!(
            db(K::ForeignKeyViolation, "fk"),
            ErrorKind::ForeignKeyViolation
        );
        assert_eq!(db(K::Unknown, "syntax error"), ErrorKind::Other);
    }

    /// Values inside messages never decide the kind (issue 7, item 2).
    #[test]
    fn data_in_a_message_cannot_steer_the_kind() {
        use DatabaseErrorKind as K;
        // MariaDB duplicates, prepared (UniqueViolation) or batch (Unknown).
        for kind in [K::UniqueViolation, K::Unknown] {
            for message in [
                "Duplicate entry 'deadlock detected' for key 'PRIMARY'",
                "Duplicate entry 'Deadlock found when trying to get lock; try restarting transaction' for key 'PRIMARY'",
                "Duplicate entry 'Lost connection to server during query' for key 'PRIMARY'",
                "Duplicate entry 'broken pipe' for key 'PRIMARY'",
                "Duplicate entry 'database is locked' for key 'PRIMARY'",
            ] {
                assert_eq!(db(kind, message), ErrorKind::UniqueViolation, "{message}");
            }
        }
        // PostgreSQL and SQLite messages that quote a value.
        for message in [
            "invalid input syntax for type integer: \"deadlock detected\"",
            "invalid input syntax for type integer: \"lost connection\"",
            "invalid input syntax for type integer: \"server closed the connection unexpectedly\"",
            "invalid input syntax for type integer: \"canceling statement due to lock timeout\"",
            "JSON path error near 'database is locked'",
            "JSON path error near 'broken pipe'",
            "Incorrect integer value: 'Lost connection to server during query' for column `db`.`items`.`qty` at row 1",
            "Data too long for column 'name' at row 1: deadlock",
        ] {
            assert_eq!(db(K::Unknown, message), ErrorKind::Other, "{message}");
        }
        // An application's own `RAISE EXCEPTION 'deadlock detected'` has no
        // process list in its DETAIL.
        assert_eq!(db(K::Unknown, "deadlock detected"), ErrorKind::Other);
        assert!(!is_connection_lost(&database_error(
            K::UniqueViolation,
            "Duplicate entry 'Lost connection to server during query' for key 'PRIMARY'"
        )));
    }

    /// Each backend's rules recognise only its own server's wordings, which
    /// is what makes consulting them all (when the backend is unknown) sound.
    #[cfg(all(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    #[test]
    fn each_backends_rules_match_only_its_own_wordings() {
        use crate::backend::SupportedConnection;
        use diesel::{MysqlConnection, PgConnection, SqliteConnection};
        use DatabaseErrorKind as K;
        let pg = [
            "deadlock detected",
            "canceling statement due to lock timeout",
            "could not obtain lock on relation \"locks\"",
            "terminating connection due to administrator command",
            "server closed the connection unexpectedly",
            "no connection to the server",
        ];
        let mysql = [
            "Deadlock found when trying to get lock; try restarting transaction",
            "Lock wait timeout exceeded; try restarting transaction",
            "Record has changed since last read in table 'locks'",
            "WSREP has not yet prepared node for application use",
            "Duplicate entry 'x' for key 'PRIMARY'",
            "Cannot execute statement in a READ ONLY transaction",
            "SAVEPOINT diesel_savepoint_1 does not exist",
            "Lost connection to server during query",
            "Server has gone away",
            "Connection was killed",
        ];
        let sqlite = [
            "database is locked",
            "database table is locked: locks",
            "attempt to write a readonly database",
        ];
        type Reader = fn(DatabaseErrorKind, &dyn DatabaseErrorInformation) -> Option<ServerSays>;
        let readers: [(&str, Reader, &[&'static str]); 3] = [
            ("postgres", PgConnection::read_error, &pg),
            ("mysql", MysqlConnection::read_error, &mysql),
            ("sqlite", SqliteConnection::read_error, &sqlite),
        ];
        for (owner, _, wordings) in &readers {
            for wording in *wordings {
                let err = super::test_support::database_error_with_details(
                    K::Unknown,
                    wording,
                    PG_DEADLOCK_DETAIL,
                );
                let DieselError::DatabaseError(kind, info) = &err else {
                    unreachable!()
                };
                for (name, read, _) in &readers {
                    let says = read(*kind, &**info);
                    assert_eq!(
                        says.is_some(),
                        name == owner,
                        "{name} on {owner}'s `{wording}`"
                    );
                }
            }
        }
    }

    #[test]
    fn a_vanished_savepoint_is_the_deadlock_that_removed_it() {
        // MariaDB 1305 after a wsrep abort rolled the whole transaction back.
        let err = savepoint_failure(database_error(
            DatabaseErrorKind::Unknown,
            "SAVEPOINT diesel_savepoint_1 does not exist",
        ));
        assert_eq!(err.kind(), ErrorKind::Deadlock);
        assert!(err.kind().is_retryable());
        let other = savepoint_failure(database_error(DatabaseErrorKind::Unknown, "syntax error"));
        assert_eq!(other.kind(), ErrorKind::Other);
    }

    #[test]
    fn only_a_lost_connection_makes_a_commit_unknown() {
        assert!(is_connection_lost(&database_error(
            DatabaseErrorKind::ClosedConnection,
            "server closed the connection unexpectedly"
        )));
        assert!(is_connection_lost(&database_error(
            DatabaseErrorKind::Unknown,
            "Lost connection to server during query"
        )));
        // A Galera node that is not ready did not commit: retryable, not unknown.
        assert!(!is_connection_lost(&database_error(
            DatabaseErrorKind::Unknown,
            "WSREP has not yet prepared node for application use"
        )));
        // A certification failure at COMMIT is a deadlock, not a lost commit.
        assert!(!is_connection_lost(&database_error(
            DatabaseErrorKind::SerializationFailure,
            "Deadlock found when trying to get lock; try restarting transaction"
        )));
    }
}
