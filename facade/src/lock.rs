//! The lock guard: an exclusive, transaction-scoped lock taken by upserting
//! a row of the `locks` table.
//!
//! Holding the row's write lock until the transaction ends blocks every
//! other transaction that upserts the same name on PostgreSQL, MySQL and a
//! single Galera node; across Galera nodes the write-sets conflict and one
//! side fails certification at COMMIT (a deadlock error, which `retry`
//! re-runs). Names are always bound parameters and never truncated.

use std::time::Duration;

use crate::backend::SupportedConnection;
use crate::error::{Error, ErrorKind};
use crate::facade::check_wait;

/// The longest lock name the `locks.id VARCHAR(50)` column holds, in
/// characters.
///
/// ```
/// assert_eq!(diesel_facade::MAX_LOCK_NAME_CHARS, 50);
/// ```
pub const MAX_LOCK_NAME_CHARS: usize = 50;

pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err(Error::new(
            ErrorKind::InvalidLockName,
            "a lock name must not be empty",
        ));
    }
    if chars > MAX_LOCK_NAME_CHARS {
        return Err(Error::new(
            ErrorKind::InvalidLockName,
            format!(
                "lock name is {chars} characters long; the limit is {MAX_LOCK_NAME_CHARS} \
                 (names are never truncated, so two long names cannot merge into one lock)"
            ),
        ));
    }
    Ok(())
}

fn lock_error<C: SupportedConnection>(err: diesel::result::Error, name: &str) -> Error {
    if C::is_missing_table(&err) {
        return Error::new(
            ErrorKind::MissingLocksTable,
            format!(
                "cannot take lock `{name}`: the `locks` table does not exist. Run \
                 `Facade::run_migrations()` or `diesel migration run --migration-dir \
                 migrations/{}` first",
                C::NAME
            ),
        )
        .with_source(err);
    }
    Error::from(err)
}

pub(crate) fn lock<C: SupportedConnection>(
    conn: &mut C,
    name: &str,
    timeout: Option<Duration>,
) -> Result<(), Error> {
    validate_name(name)?;
    if let Some(timeout) = timeout {
        // Checked before anything reaches the server: PostgreSQL would
        // abort the transaction over an out-of-range `lock_timeout`.
        check_wait("lock_timeout", timeout, true).map_err(|err| {
            err.with_kind(
                ErrorKind::Config,
                &format!(
                    "cannot take lock `{name}` (use lock(name) for the server's default wait)"
                ),
            )
        })?;
    }
    tracing::debug!(lock = name, ?timeout, "taking lock");
    C::upsert_lock(conn, name, timeout).map_err(|e| {
        let err = lock_error::<C>(e, name);
        match (err.kind(), timeout) {
            (ErrorKind::LockTimeout, Some(timeout)) => err.with_kind(
                ErrorKind::LockTimeout,
                &format!("lock `{name}` was not free within {timeout:?}"),
            ),
            _ => err,
        }
    })
}

pub(crate) fn try_lock<C: SupportedConnection>(conn: &mut C, name: &str) -> Result<bool, Error> {
    validate_name(name)?;
    C::try_upsert_lock(conn, name).map_err(|e| lock_error::<C>(e, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_to_fifty_characters() {
        assert_eq!(
            validate_name("").unwrap_err().kind(),
            ErrorKind::InvalidLockName
        );
        assert!(validate_name(&"a".repeat(50)).is_ok());
        assert_eq!(
            validate_name(&"a".repeat(51)).unwrap_err().kind(),
            ErrorKind::InvalidLockName
        );
        // Characters, not bytes: 50 three-byte characters fit.
        assert!(validate_name(&"錠".repeat(50)).is_ok());
        assert!(validate_name(&"錠".repeat(51)).is_err());
    }
}
