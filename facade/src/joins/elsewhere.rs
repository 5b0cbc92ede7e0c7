//! The rules for a call into another database of the context than the
//! scope's own (`Elsewhere`), decided at run time: join that database's
//! transaction if one is open further out and the nesting table allows it,
//! fail with [`ErrorKind::WrongNesting`] if it does not, begin one if there
//! is none (its COMMIT waits for the outermost call).

use std::any::TypeId;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::{check_independent, IndependentRule, ReadRule, ReplicaRule, ScopeKind, WriteRule};
use crate::backend::{SupportedConnection, TxMode};
use crate::context::{Database, TransactionContext};
use crate::error::{Error, ErrorKind};
use crate::scope::{
    Elsewhere, Frame, Frames, OpenKind, Pending, ReaderScope, ReplicaScope, WriterScope,
};
use crate::transaction::{runtime, savepoint, Route, Transaction};

/// What `f` is given for the callee's database `D2`: its transaction open
/// further out, with its kind, or `None`.
type Lent<'a, C> = Option<(&'a mut Transaction<C>, OpenKind)>;

/// Run `f` with the transaction of `D2` open further out (if any), and the
/// chain with the caller's own transaction (of `D`, lent as `kind`) on top.
/// `None` only if the chain did not call back, which its implementations
/// always do.
fn with_other<T, D, D2, Res, F>(
    tx: &mut Transaction<D::Connection>,
    kind: OpenKind,
    outer: &mut dyn Frames<T>,
    f: F,
) -> Option<Res>
where
    T: TransactionContext,
    D: Database<T>,
    D2: Database<T>,
    F: FnOnce(Lent<'_, D2::Connection>, &mut dyn Frames<T>) -> Res,
{
    let mut f = Some(f);
    let mut result = None;
    let mut frame = Frame {
        db: TypeId::of::<D>(),
        kind,
        tx,
        up: outer,
    };
    frame.split(TypeId::of::<D2>(), &mut |found, rest| {
        // A frame of `D2` always lends a `Transaction<D2::Connection>`.
        let found = found.and_then(|(tx, kind)| {
            tx.downcast_mut::<Transaction<D2::Connection>>()
                .map(|tx| (tx, kind))
        });
        if let Some(f) = f.take() {
            result = Some(f(found, rest));
        }
    });
    result
}

/// Run `f` in `tx`, a transaction of another database that the caller
/// joins through the chain. If `f` panics, the transaction is marked: a
/// caller further out may catch the panic and return `Ok`, and the
/// half-done work of the panicking call must not commit (its owner then
/// fails, and a transaction waiting for the outermost call makes the whole
/// call commit nothing).
fn joined<C: SupportedConnection, Res>(
    tx: &mut Transaction<C>,
    f: impl FnOnce(&mut Transaction<C>) -> Res,
) -> Res {
    match catch_unwind(AssertUnwindSafe(|| f(&mut *tx))) {
        Ok(res) => res,
        Err(panic) => {
            tx.panicked = true;
            resume_unwind(panic)
        }
    }
}

/// For the `None` of [`with_other`].
fn not_called_back() -> Error {
    Error::new(
        ErrorKind::Other,
        "internal error: the chain of open transactions did not answer; nothing ran",
    )
}

/// The error for a call that the nesting table forbids on the callee's
/// database, found open further out with `kind`.
fn wrong_nesting<T, D2: Database<T>>(callee: &str, kind: OpenKind) -> Error {
    let open = match kind {
        OpenKind::Write => "a writer's",
        OpenKind::Read => "a read-only",
        OpenKind::Replica => "a replica reader's",
    };
    Error::new(
        ErrorKind::WrongNesting,
        format!(
            "a {callee} of {} cannot join {open} transaction of that database, which an \
             enclosing call has open (reached through a function of another database, so the \
             compiler could not see it): call it outside that transaction, or change the \
             enclosing function's attribute",
            shown::<T, D2>(),
        ),
    )
}

fn shown<T, D: Database<T>>() -> String {
    if D::NAME.is_empty() {
        "the default database".to_owned()
    } else {
        format!("database `{}`", D::NAME)
    }
}

/// Whether the context's databases `D` and `D2` are the same `Facade` (two
/// fields holding clones of it): the same pools, the same database.
pub(super) fn same_pools<T: TransactionContext, D: Database<T>, D2: Database<T>>(ctx: &T) -> bool {
    std::ptr::addr_eq(
        std::sync::Arc::as_ptr(&D2::facade(ctx).inner),
        std::sync::Arc::as_ptr(&D::facade(ctx).inner),
    )
}

/// Begin a transaction on `D2` inside the caller's transaction on `D`, run
/// `f` in it, and leave its COMMIT to the outermost call (a body error
/// rolls it back at once).
fn begin_inside<T, D, D2, Res, E, F>(
    ctx: &T,
    rest: &mut dyn Frames<T>,
    mode: TxMode,
    route: Route,
    f: F,
) -> Result<Res, E>
where
    T: TransactionContext,
    D: Database<T>,
    D2: Database<T>,
    E: From<Error>,
    F: FnOnce(&mut Transaction<D2::Connection>, &mut dyn Frames<T>) -> Result<Res, E>,
{
    let facade = D2::facade(ctx);
    if same_pools::<T, D, D2>(ctx) {
        // A second transaction on the caller's own pools: it would wait
        // forever for a row lock its caller holds.
        return Err(E::from(Error::new(
            ErrorKind::Config,
            format!(
                "{} and {} are the same `Facade` (the same pools), and a transaction of the \
                 first is open: a second transaction on it would not see that one's writes, \
                 and would wait forever for a row lock that one holds. Give each field its \
                 own Facade, or use one field for that database; nothing ran",
                shown::<T, D2>(),
                shown::<T, D>(),
            ),
        )));
    }
    let position = D2::read_position(ctx);
    let mut begun =
        match (runtime::<D2::Connection>().begin_outermost)(facade, position, mode, route) {
            Ok(begun) => begun,
            Err(not_begun) => return Err(E::from(not_begun.into_error())),
        };
    tracing::debug!(
        database = D2::NAME,
        inside = D::NAME,
        "began inside another database's transaction; its COMMIT waits for the outermost call"
    );
    let result = f(&mut begun.tx, &mut *rest);
    // A read-only transaction has nothing to commit: it ends here. A
    // writer's waits for the outermost call, and stays joinable until then.
    if result.is_ok() && mode == TxMode::Write {
        begun.suspend_span();
        rest.defer(Pending::new::<D2>(begun));
    } else if let Some(err) =
        (runtime::<D2::Connection>().end_once)(begun, facade, position, result.is_ok())
    {
        return Err(E::from(err));
    }
    result
}

// Elsewhere: another database of the context, decided at run time.

impl<T: TransactionContext, D: Database<T>, K: ScopeKind, D2: Database<T>> ReadRule<T, D, K, D2>
    for Elsewhere
{
    fn read<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReaderScope<'_, T, D2>) -> Result<Res, E>,
    {
        with_other::<T, D, D2, _, _>(tx, K::OPEN, outer, |found, rest| match found {
            Some((tx, OpenKind::Write | OpenKind::Read)) => {
                (runtime().note_join)(tx, "reader");
                joined(tx, |tx| f(&mut ReaderScope::new(ctx, tx, rest)))
            }
            Some((_, kind)) => Err(E::from(wrong_nesting::<T, D2>("`#[reader]`", kind))),
            None => begin_inside::<T, D, D2, _, _, _>(
                ctx,
                rest,
                TxMode::Read,
                Route::Primary,
                |tx, rest| f(&mut ReaderScope::new(ctx, tx, rest)),
            ),
        })
        .unwrap_or_else(|| Err(E::from(not_called_back())))
    }
}

impl<T: TransactionContext, D: Database<T>, K: ScopeKind, D2: Database<T>> ReplicaRule<T, D, K, D2>
    for Elsewhere
{
    fn read_replica<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        route: Route,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReplicaScope<'_, T, D2>) -> Result<Res, E>,
    {
        with_other::<T, D, D2, _, _>(tx, K::OPEN, outer, |found, rest| match found {
            Some((tx, _)) => {
                (runtime().note_join)(tx, "replica reader");
                joined(tx, |tx| f(&mut ReplicaScope::new(ctx, tx, rest)))
            }
            None => {
                begin_inside::<T, D, D2, _, _, _>(ctx, rest, TxMode::Read, route, |tx, rest| {
                    f(&mut ReplicaScope::new(ctx, tx, rest))
                })
            }
        })
        .unwrap_or_else(|| Err(E::from(not_called_back())))
    }
}

// A savepoint writer that begins is a plain writer, as outermost.
impl<T: TransactionContext, D: Database<T>, K: ScopeKind, D2: Database<T>> WriteRule<T, D, K, D2>
    for Elsewhere
{
    fn write<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        in_savepoint: bool,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, T, D2>) -> Result<Res, E>,
    {
        with_other::<T, D, D2, _, _>(tx, K::OPEN, outer, |found, rest| match found {
            Some((tx, OpenKind::Write)) if in_savepoint => {
                (runtime().note_join)(tx, "savepoint writer");
                joined(tx, |tx| {
                    savepoint(tx, |tx| f(&mut WriterScope::new(ctx, tx, rest)))
                })
            }
            Some((tx, OpenKind::Write)) => {
                (runtime().note_join)(tx, "writer");
                joined(tx, |tx| f(&mut WriterScope::new(ctx, tx, rest)))
            }
            Some((_, kind)) => Err(E::from(wrong_nesting::<T, D2>("`#[writer]`", kind))),
            None => begin_inside::<T, D, D2, _, _, _>(
                ctx,
                rest,
                TxMode::Write,
                Route::Primary,
                |tx, rest| f(&mut WriterScope::new(ctx, tx, rest)),
            ),
        })
        .unwrap_or_else(|| Err(E::from(not_called_back())))
    }
}

impl<T: TransactionContext, D: Database<T>, K: ScopeKind, D2: Database<T>>
    IndependentRule<T, D, K, D2> for Elsewhere
{
    fn nested(
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
    ) -> Result<bool, Error> {
        with_other::<T, D, D2, _, _>(tx, K::OPEN, outer, |found, _| match found {
            Some((tx, _)) => check_independent(tx),
            None => Ok(false),
        })
        .unwrap_or_else(|| Err(not_called_back()))
    }
}
