//! The runtime's code for every backend this build enables, compiled once,
//! in this crate.
//!
//! Most of the runtime (checkout, BEGIN, COMMIT, rollback, the replica
//! routing) is generic over the connection type only. Called directly from
//! the code an annotated function instantiates, all of it would be compiled
//! again in the application's crate, for its connection type. So that code
//! calls it through [`runtime`]: a table of function pointers per
//! connection type, built here as a `static` for each enabled backend, so
//! its functions are compiled in this crate once and the application's
//! crate links them, in every profile. What stays generic over the
//! connection (drop glue) is named in [`shared_instances`], so that debug
//! builds, which share generic code between crates (rustc's
//! `share-generics`, on by default at `opt-level` 0 and 1), link this
//! crate's copy too. Measured with `scripts/compile-bench`
//! (docs/performance.md, "Third pass").

use std::any::Any;

use super::outermost::{end_once, end_outermost, end_outermost_keeping_hooks, Begun, Ended};
use super::{begin_outermost, CommitHook, NotBegun, Route, Transaction};
use crate::backend::{SupportedConnection, TxMode};
use crate::error::Error;
use crate::facade::Facade;
use crate::replica::ReadPosition;

/// `begin_outermost`'s signature.
type Begin<C> = fn(&Facade<C>, Option<&ReadPosition>, TxMode, Route) -> Result<Begun<C>, NotBegun>;
/// The signature of the functions that end a begun transaction.
type End<C, Out> = fn(Begun<C>, &Facade<C>, Option<&ReadPosition>, bool) -> Out;

/// The runtime's entry points for connection type `C` (see the module
/// docs): each field is the function of the same name in
/// `transaction::outermost`, or the method it names.
pub(crate) struct Runtime<C: SupportedConnection> {
    pub(crate) begin_outermost: Begin<C>,
    pub(crate) end_outermost: End<C, Ended>,
    pub(crate) end_outermost_keeping_hooks: End<C, (Ended, Vec<CommitHook>)>,
    pub(crate) end_once: End<C, Option<Error>>,
    /// `Begun::abandon`: the rollback of a transaction dropped before it
    /// ended.
    pub(crate) abandon: fn(&mut Begun<C>),
    /// `Transaction::note_join`.
    pub(crate) note_join: fn(&mut Transaction<C>, &'static str),
}

impl<C: SupportedConnection> Runtime<C> {
    const ENTRY_POINTS: Runtime<C> = Runtime {
        begin_outermost: begin_outermost::<C>,
        end_outermost: end_outermost::<C>,
        end_outermost_keeping_hooks: end_outermost_keeping_hooks::<C>,
        end_once: end_once::<C>,
        abandon: Begun::<C>::abandon,
        note_join: Transaction::<C>::note_join,
    };
}

#[cfg(feature = "sqlite")]
static SQLITE: Runtime<diesel::SqliteConnection> = Runtime::ENTRY_POINTS;
#[cfg(feature = "postgres")]
static POSTGRES: Runtime<diesel::PgConnection> = Runtime::ENTRY_POINTS;
#[cfg(feature = "mysql")]
static MYSQL: Runtime<diesel::MysqlConnection> = Runtime::ENTRY_POINTS;

/// The runtime compiled in this crate for `C`. Every `SupportedConnection`
/// (a sealed trait, implemented for the three connection types, each with
/// its feature) has one.
#[inline(never)]
pub(crate) fn runtime<C: SupportedConnection>() -> &'static Runtime<C> {
    let tables: [Option<&'static (dyn Any + Send + Sync)>; 3] = [
        #[cfg(feature = "sqlite")]
        Some(&SQLITE),
        #[cfg(not(feature = "sqlite"))]
        None,
        #[cfg(feature = "postgres")]
        Some(&POSTGRES),
        #[cfg(not(feature = "postgres"))]
        None,
        #[cfg(feature = "mysql")]
        Some(&MYSQL),
        #[cfg(not(feature = "mysql"))]
        None,
    ];
    match tables
        .into_iter()
        .flatten()
        .find_map(|table| table.downcast_ref())
    {
        Some(table) => table,
        // `SupportedConnection` is sealed: only the connection types above
        // implement it, and only with their feature.
        None => unreachable!("no runtime for {}", C::NAME),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each enabled backend finds its own table (not another backend's, and
    /// not the `unreachable!` arm).
    #[test]
    fn each_enabled_backend_finds_its_own_table() {
        #[cfg(feature = "sqlite")]
        assert!(std::ptr::eq(runtime::<diesel::SqliteConnection>(), &SQLITE));
        #[cfg(feature = "postgres")]
        assert!(std::ptr::eq(runtime::<diesel::PgConnection>(), &POSTGRES));
        #[cfg(feature = "mysql")]
        assert!(std::ptr::eq(runtime::<diesel::MysqlConnection>(), &MYSQL));
    }
}
