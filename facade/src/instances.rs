//! The runtime's code for every backend this build enables, compiled once,
//! here.
//!
//! Most of the runtime (checkout, BEGIN, COMMIT, rollback, the replica
//! routing) is generic over the connection type only. Called directly from
//! the code an annotated function instantiates, all of it would be compiled
//! again in the application's crate, for its connection type. So that code
//! calls it through [`Runtime`], whose implementations for the three
//! connection types are ordinary, non-generic functions of this crate:
//! compiled here once, and linked by the application's crate in every
//! profile (`#[inline(never)]` keeps release builds from pulling their
//! bodies across). What remains generic over the connection only (drop
//! glue, small helpers) is named in [`shared_instances`], so that debug
//! builds, which share generic code between crates (rustc's
//! `share-generics`, on by default at `opt-level` 0 and 1), link this
//! crate's copy too. Measured with `scripts/compile-bench`
//! (docs/performance.md).

use crate::backend::{SupportedConnection, TxMode};
use crate::error::Error;
use crate::facade::Facade;
use crate::replica::ReadPosition;
use crate::transaction::{self, Begun, CommitHook, Ended, NotBegun, Route, Transaction};

/// The runtime's entry points for one connection type (see the module
/// docs). Implemented for each backend below, by forwarding to the generic
/// functions of `transaction`.
pub trait Runtime: Sized {
    /// [`transaction::begin_outermost`].
    fn begin_outermost(
        facade: &Facade<Self>,
        position: Option<&ReadPosition>,
        mode: TxMode,
        route: Route,
    ) -> Result<Begun<Self>, NotBegun>
    where
        Self: SupportedConnection;

    /// [`transaction::end_outermost`].
    fn end_outermost(
        begun: Begun<Self>,
        facade: &Facade<Self>,
        position: Option<&ReadPosition>,
        body_ok: bool,
    ) -> Ended
    where
        Self: SupportedConnection;

    /// [`transaction::end_outermost_keeping_hooks`].
    fn end_outermost_keeping_hooks(
        begun: Begun<Self>,
        facade: &Facade<Self>,
        position: Option<&ReadPosition>,
        body_ok: bool,
    ) -> (Ended, Vec<CommitHook>)
    where
        Self: SupportedConnection;

    /// [`transaction::end_once`].
    fn end_once(
        begun: Begun<Self>,
        facade: &Facade<Self>,
        position: Option<&ReadPosition>,
        body_ok: bool,
    ) -> Option<Error>
    where
        Self: SupportedConnection;

    /// What dropping a [`Begun`] that did not end does: roll back.
    fn abandon(begun: &mut Begun<Self>)
    where
        Self: SupportedConnection;

    /// [`Transaction::note_join`].
    fn note_join(tx: &mut Transaction<Self>, kind: &'static str)
    where
        Self: SupportedConnection;
}

macro_rules! runtime {
    ($($feature:literal => $conn:ty),* $(,)?) => {$(
        #[cfg(feature = $feature)]
        impl Runtime for $conn {
            #[inline(never)]
            fn begin_outermost(
                facade: &Facade<Self>,
                position: Option<&ReadPosition>,
                mode: TxMode,
                route: Route,
            ) -> Result<Begun<Self>, NotBegun> {
                transaction::begin_outermost(facade, position, mode, route)
            }

            #[inline(never)]
            fn end_outermost(
                begun: Begun<Self>,
                facade: &Facade<Self>,
                position: Option<&ReadPosition>,
                body_ok: bool,
            ) -> Ended {
                transaction::end_outermost(begun, facade, position, body_ok)
            }

            #[inline(never)]
            fn end_outermost_keeping_hooks(
                begun: Begun<Self>,
                facade: &Facade<Self>,
                position: Option<&ReadPosition>,
                body_ok: bool,
            ) -> (Ended, Vec<CommitHook>) {
                transaction::end_outermost_keeping_hooks(begun, facade, position, body_ok)
            }

            #[inline(never)]
            fn end_once(
                begun: Begun<Self>,
                facade: &Facade<Self>,
                position: Option<&ReadPosition>,
                body_ok: bool,
            ) -> Option<Error> {
                transaction::end_once(begun, facade, position, body_ok)
            }

            #[inline(never)]
            fn abandon(begun: &mut Begun<Self>) {
                begun.abandon();
            }

            #[inline(never)]
            fn note_join(tx: &mut Transaction<Self>, kind: &'static str) {
                tx.note_join(kind);
            }
        }
    )*};
}

runtime! {
    "sqlite" => diesel::SqliteConnection,
    "postgres" => diesel::PgConnection,
    "mysql" => diesel::MysqlConnection,
}

/// The drop glue of the runtime's values for connection type `C`.
fn drop_glue<C: SupportedConnection>() -> [*const (); 2] {
    [
        std::ptr::drop_in_place::<Begun<C>> as *const (),
        std::ptr::drop_in_place::<Transaction<C>> as *const (),
    ]
}

/// What stays generic over the connection type for every enabled backend:
/// naming it compiles it here, for debug builds to share (see the module
/// docs). Not meant to be called.
pub fn shared_instances() -> Vec<*const ()> {
    let mut all = Vec::new();
    #[cfg(feature = "sqlite")]
    all.extend(drop_glue::<diesel::SqliteConnection>());
    #[cfg(feature = "postgres")]
    all.extend(drop_glue::<diesel::PgConnection>());
    #[cfg(feature = "mysql")]
    all.extend(drop_glue::<diesel::MysqlConnection>());
    all
}
