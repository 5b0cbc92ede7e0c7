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
use crate::config::check_wait;
use crate::connection::Managed;
use crate::error::{Error, ErrorKind};

/// The longest lock name the `locks.id VARCHAR(50)` column holds, in
/// characters.
///
/// ```
/// assert_eq!(diesel_facade::MAX_LOCK_NAME_CHARS, 50);
/// ```
pub const MAX_LOCK_NAME_CHARS: usize = 50;

/// The one definition of a lock name, checked before any SQL and identical
/// on every backend: 1 to [`MAX_LOCK_NAME_CHARS`] characters, no control
/// characters (NUL, which PostgreSQL cannot store, newlines, ...) and no
/// whitespace at either end. MySQL/MariaDB's `utf8mb4_bin` collation pads
/// with spaces, so `"report"` and `"report "` would be one lock there and
/// two elsewhere; refusing edge whitespace makes two names the same lock
/// exactly when they are the same string, on every backend.
pub(crate) fn validate_name(name: &str) -> Result<(), Error> {
    let invalid = |why: String| {
        // Quoted with escapes, so invisible characters show; long names cut.
        let mut shown: String = name.chars().take(MAX_LOCK_NAME_CHARS).collect();
        if shown.len() < name.len() {
            shown.push('…');
        }
        Err(Error::new(
            ErrorKind::InvalidLockName,
            format!("lock name {shown:?} {why}"),
        ))
    };
    let chars = name.chars().count();
    if chars == 0 {
        return invalid("is empty; a lock name is 1 to 50 characters".to_owned());
    }
    if chars > MAX_LOCK_NAME_CHARS {
        return invalid(format!(
            "is {chars} characters long; the limit is {MAX_LOCK_NAME_CHARS} \
             (names are never truncated, so two long names cannot merge into one lock)"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return invalid(format!(
            "contains the control character U+{:04X}; lock names may not",
            u32::from(c)
        ));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return invalid(
            "begins or ends with whitespace; MySQL/MariaDB would ignore trailing spaces, \
             so such names are refused on every backend"
                .to_owned(),
        );
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
    managed: &mut Managed<C>,
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
    C::upsert_lock(&mut managed.conn, &managed.session, name, timeout).map_err(|e| {
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

pub(crate) fn try_lock<C: SupportedConnection>(
    managed: &mut Managed<C>,
    name: &str,
) -> Result<bool, Error> {
    validate_name(name)?;
    C::try_upsert_lock(&mut managed.conn, &managed.session, name)
        .map_err(|e| lock_error::<C>(e, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_control_characters_or_edge_whitespace() {
        for bad in [
            "report ",
            " report",
            "report\t",
            "\u{a0}report",
            "\0x",
            "a\0",
            "a\nb",
            "\u{7f}",
            "a\u{85}",
        ] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidLockName, "{bad:?}");
        }
        for good in ["report", "monthly report", "a", "x'); DROP TABLE locks; --"] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }

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
