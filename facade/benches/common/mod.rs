//! Helpers shared by the benches (a module of each, not a bench target):
//! the hand-written transaction of the baselines, environment switches,
//! medians and URLs without passwords.

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::prelude::*;

/// The hand-written transaction of the baseline: `begin` through
/// `AnsiTransactionManager::begin_transaction_sql`, the body, then
/// `commit_transaction` (or `rollback_transaction` on error).
pub fn in_transaction<C, R>(
    conn: &mut C,
    begin: &str,
    body: impl FnOnce(&mut C) -> QueryResult<R>,
) -> QueryResult<R>
where
    C: Connection<TransactionManager = AnsiTransactionManager>,
{
    AnsiTransactionManager::begin_transaction_sql(conn, begin)?;
    match body(conn) {
        Ok(value) => {
            <AnsiTransactionManager as TransactionManager<C>>::commit_transaction(conn)?;
            Ok(value)
        }
        Err(err) => {
            let _ = <AnsiTransactionManager as TransactionManager<C>>::rollback_transaction(conn);
            Err(err)
        }
    }
}

pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
