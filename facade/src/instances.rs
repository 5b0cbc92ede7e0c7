//! The runtime's code for every backend this build enables, compiled once,
//! here.
//!
//! Most of the runtime (checkout, BEGIN, COMMIT, rollback, the replica
//! routing) is generic over the connection type only, and an application's
//! crate would otherwise compile its own copy of all of it for its
//! connection type. Debug builds share generic code between crates
//! (rustc's `share-generics`, on by default at `opt-level` 0 and 1): an
//! instance compiled in an upstream crate is linked, not compiled again.
//! So this module names the runtime's entry points for each enabled
//! backend, which makes this crate compile them (and everything they call)
//! once. Release builds do not share generics and compile their own
//! copies, as before. Measured with `scripts/compile-bench`
//! (docs/performance.md).

use crate::backend::SupportedConnection;
use crate::transaction::{
    begin_outermost, end_once, end_outermost, end_outermost_keeping_hooks, Begun, Transaction,
};

/// The entry points of the runtime for connection type `C`.
fn entry_points<C: SupportedConnection>() -> [*const (); 7] {
    [
        begin_outermost::<C> as *const (),
        end_outermost::<C> as *const (),
        end_outermost_keeping_hooks::<C> as *const (),
        end_once::<C> as *const (),
        Transaction::<C>::note_join as *const (),
        std::ptr::drop_in_place::<Begun<C>> as *const (),
        std::ptr::drop_in_place::<Transaction<C>> as *const (),
    ]
}

/// The runtime's entry points for every enabled backend: naming them is
/// what compiles them here (see the module docs). Not meant to be called.
pub fn shared_instances() -> Vec<*const ()> {
    let mut all = Vec::new();
    #[cfg(feature = "sqlite")]
    all.extend(entry_points::<diesel::SqliteConnection>());
    #[cfg(feature = "postgres")]
    all.extend(entry_points::<diesel::PgConnection>());
    #[cfg(feature = "mysql")]
    all.extend(entry_points::<diesel::MysqlConnection>());
    all
}
