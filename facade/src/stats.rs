//! What a facade has done since it was built: the counters the transaction,
//! pool and replica code bump, and the [`FacadeStats`] snapshot that
//! [`Facade::stats`](crate::Facade::stats) returns. Every clone of a facade
//! shares one set of counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of what a facade has done since it was built, for metrics and
/// tests. See [`Facade::stats`](crate::Facade::stats).
///
/// ```
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
///     .writer(":memory:")
///     .build()?;
/// let mut ctx = db.context();
/// diesel_facade::read(&mut ctx, |_| Ok::<_, diesel_facade::Error>(()))?;
/// let stats = db.stats();
/// assert_eq!(stats.transactions, 1);
/// assert_eq!(stats.commits, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FacadeStats {
    /// Connections checked out of any pool.
    pub checkouts: u64,
    /// Outermost transactions begun (each retry attempt counts).
    pub transactions: u64,
    /// Outermost transactions committed.
    pub commits: u64,
    /// Outermost transactions rolled back.
    pub rollbacks: u64,
    /// Whole-transaction retries by `#[writer(retry)]`.
    pub retries: u64,
    /// Replica reads that fell back to the primary.
    pub replica_fallbacks: u64,
}

/// The live counters behind [`FacadeStats`], shared by every clone of a
/// facade.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) checkouts: AtomicU64,
    pub(crate) transactions: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) rollbacks: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) replica_fallbacks: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now. Each is exact; together they are not one instant.
    pub(crate) fn snapshot(&self) -> FacadeStats {
        FacadeStats {
            checkouts: self.checkouts.load(Ordering::Relaxed),
            transactions: self.transactions.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            rollbacks: self.rollbacks.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            replica_fallbacks: self.replica_fallbacks.load(Ordering::Relaxed),
        }
    }
}
