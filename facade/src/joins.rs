//! What a scope does when a data-access function is called with it.
//!
//! - The callee's database is the scope's own (`Here`): it joins (or
//!   opens a savepoint), and the nesting table is checked by the compiler:
//!   the rule traits below are implemented only for the allowed cells.
//! - Another database of the context (`Elsewhere`): the scope looks for a
//!   transaction of that database open further out (`scope::chain`); if
//!   there is one it joins it, where the nesting table allows, else it
//!   fails with [`ErrorKind::WrongNesting`]; if there is none it begins one,
//!   whose COMMIT waits for the outermost call. This is decided at run time:
//!   a function is compiled once for every caller, so whether its caller
//!   has that other database open is not known where the call is written.
//!
//! Each capability trait is implemented once per scope type and dispatches
//! on `Here`/`Elsewhere` through a rule trait. `do_not_recommend` makes
//! rustc report the capability's own message rather than the rule's.

use std::any::TypeId;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::backend::{ConcurrentWriters, SupportedConnection, TxMode};
use crate::context::{Database, TransactionContext};
use crate::error::{Error, ErrorKind};
use crate::scope::{
    DeferredTx, Elsewhere, Found, Frame, Frames, Here, IndependentAccess, OpenKind, ReadAccess,
    ReaderScope, Rep, ReplicaReadAccess, ReplicaScope, WriteAccess, WriterScope, R, W,
};
use crate::transaction::{begin_outermost, end_once, savepoint, RetryPolicy, Route, Transaction};

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
fn same_pools<T: TransactionContext, D: Database<T>, D2: Database<T>>(ctx: &T) -> bool {
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
    let mut begun = match begin_outermost(facade, position, mode, route) {
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
        rest.defer(Box::new(DeferredTx::<D2, D2::Connection> {
            begun,
            db: PhantomData,
        }));
    } else if let Some(err) = end_once(begun, facade, position, result.is_ok()) {
        return Err(E::from(err));
    }
    result
}

/// What a scope kind lends to the calls inside it.
#[doc(hidden)]
pub trait ScopeKind {
    const OPEN: OpenKind;
}
impl ScopeKind for W {
    const OPEN: OpenKind = OpenKind::Write;
}
impl ScopeKind for R {
    const OPEN: OpenKind = OpenKind::Read;
}
impl ScopeKind for Rep {
    const OPEN: OpenKind = OpenKind::Replica;
}

/// A reader's rule for what its scope finds.
#[doc(hidden)]
pub trait ReadRule<T: TransactionContext, D: Database<T>, K, D2: Database<T>> {
    fn read<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReaderScope<'_, T, D2>) -> Result<Res, E>;
}

/// A replica reader's rule for what its scope finds.
#[doc(hidden)]
pub trait ReplicaRule<T: TransactionContext, D: Database<T>, K, D2: Database<T>> {
    fn read_replica<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        route: Route,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReplicaScope<'_, T, D2>) -> Result<Res, E>;
}

/// A writer's rule for what its scope finds.
#[doc(hidden)]
pub trait WriteRule<T: TransactionContext, D: Database<T>, K, D2: Database<T>> {
    fn write<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        in_savepoint: bool,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, T, D2>) -> Result<Res, E>;
}

/// An independent writer's rule for what its scope finds.
#[doc(hidden)]
pub trait IndependentRule<T: TransactionContext, D: Database<T>, K, D2: Database<T>> {
    /// Whether a transaction of `D2` is open around the call, after the
    /// backend's check that a second one can commit beside it.
    fn nested(
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
    ) -> Result<bool, Error>;
}

fn check_independent<C: SupportedConnection>(tx: &Transaction<C>) -> Result<bool, Error> {
    C::check_independent(tx.mode, &tx.conn.session)
        .map_err(|why| Error::new(ErrorKind::Config, why))?;
    Ok(true)
}

// Here: the callee's database is the scope's own (the rules exist only for
// `D2 = D`, and only for the cells of the nesting table that allow it).

macro_rules! here_read {
    ($($kind:ident),*) => {$(
        impl<T: TransactionContext, D: Database<T>> ReadRule<T, D, $kind, D> for Here<$kind> {
            fn read<Res, E, F>(ctx: &T, tx: &mut Transaction<D::Connection>, outer: &mut dyn Frames<T>, f: F) -> Result<Res, E>
            where
                E: From<Error>,
                F: FnOnce(&mut ReaderScope<'_, T, D>) -> Result<Res, E>,
            {
                tx.note_join("reader");
                f(&mut ReaderScope::new(ctx, tx, outer))
            }
        }
    )*};
}
here_read!(W, R);

impl<T: TransactionContext, D: Database<T>, K> ReplicaRule<T, D, K, D> for Here<K> {
    fn read_replica<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        _route: Route,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut ReplicaScope<'_, T, D>) -> Result<Res, E>,
    {
        tx.note_join("replica reader");
        f(&mut ReplicaScope::new(ctx, tx, outer))
    }
}

impl<T: TransactionContext, D: Database<T>> WriteRule<T, D, W, D> for Here<W> {
    fn write<Res, E, F>(
        ctx: &T,
        tx: &mut Transaction<D::Connection>,
        outer: &mut dyn Frames<T>,
        in_savepoint: bool,
        f: F,
    ) -> Result<Res, E>
    where
        E: From<Error>,
        F: FnOnce(&mut WriterScope<'_, T, D>) -> Result<Res, E>,
    {
        if in_savepoint {
            tx.note_join("savepoint writer");
            savepoint(tx, |tx| f(&mut WriterScope::new(ctx, tx, outer)))
        } else {
            tx.note_join("writer");
            f(&mut WriterScope::new(ctx, tx, outer))
        }
    }
}

// SQLite has one writer: an independent writer inside a writer of the same
// database could never commit there, so it does not compile.
impl<T: TransactionContext, D: Database<T>> IndependentRule<T, D, W, D> for Here<W>
where
    D::Connection: ConcurrentWriters,
{
    fn nested(
        tx: &mut Transaction<D::Connection>,
        _outer: &mut dyn Frames<T>,
    ) -> Result<bool, Error> {
        check_independent(tx)
    }
}
macro_rules! here_independent_in_reader {
    ($($kind:ident),*) => {$(
        impl<T: TransactionContext, D: Database<T>> IndependentRule<T, D, $kind, D> for Here<$kind> {
            fn nested(tx: &mut Transaction<D::Connection>, _outer: &mut dyn Frames<T>) -> Result<bool, Error> {
                check_independent(tx)
            }
        }
    )*};
}
here_independent_in_reader!(R, Rep);

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
                tx.note_join("reader");
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
                tx.note_join("replica reader");
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
                tx.note_join("savepoint writer");
                joined(tx, |tx| {
                    savepoint(tx, |tx| f(&mut WriterScope::new(ctx, tx, rest)))
                })
            }
            Some((tx, OpenKind::Write)) => {
                tx.note_join("writer");
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

// The capabilities of each scope type. A joined or begun-inside call is not
// retried: only the outermost transaction can be re-run.

macro_rules! scope_capabilities {
    ($scope:ident, $kind:ident) => {
        #[diagnostic::do_not_recommend]
        impl<'s, T, D, D2> ReadAccess<D2> for $scope<'s, T, D>
        where
            T: TransactionContext,
            D: Database<T>,
            D2: Database<T>,
            (D, $kind): Found<D2, T>,
            <(D, $kind) as Found<D2, T>>::Found: ReadRule<T, D, $kind, D2>,
        {
            fn __read<Res, E, F>(&mut self, f: F) -> Result<Res, E>
            where
                E: From<Error>,
                F: FnOnce(&mut ReaderScope<'_, T, D2>) -> Result<Res, E>,
            {
                <<(D, $kind) as Found<D2, T>>::Found as ReadRule<T, D, $kind, D2>>::read(
                    self.ctx, self.tx, self.outer, f,
                )
            }
        }

        #[diagnostic::do_not_recommend]
        impl<'s, T, D, D2> ReplicaReadAccess<D2> for $scope<'s, T, D>
        where
            T: TransactionContext,
            D: Database<T>,
            D2: Database<T>,
            (D, $kind): Found<D2, T>,
            <(D, $kind) as Found<D2, T>>::Found: ReplicaRule<T, D, $kind, D2>,
        {
            fn __read_replica<Res, E, F>(&mut self, route: Route, f: F) -> Result<Res, E>
            where
                E: From<Error>,
                F: FnOnce(&mut ReplicaScope<'_, T, D2>) -> Result<Res, E>,
            {
                <<(D, $kind) as Found<D2, T>>::Found as ReplicaRule<T, D, $kind, D2>>::read_replica(
                    self.ctx, self.tx, self.outer, route, f,
                )
            }
        }

        #[diagnostic::do_not_recommend]
        impl<'s, T, D, D2> WriteAccess<D2> for $scope<'s, T, D>
        where
            T: TransactionContext,
            D: Database<T>,
            D2: Database<T>,
            (D, $kind): Found<D2, T>,
            <(D, $kind) as Found<D2, T>>::Found: WriteRule<T, D, $kind, D2>,
        {
            fn __write<Res, E, F>(&mut self, f: F) -> Result<Res, E>
            where
                E: From<Error>,
                F: FnOnce(&mut WriterScope<'_, T, D2>) -> Result<Res, E>,
            {
                <<(D, $kind) as Found<D2, T>>::Found as WriteRule<T, D, $kind, D2>>::write(
                    self.ctx, self.tx, self.outer, false, f,
                )
            }

            fn __write_savepoint<Res, E, F>(&mut self, f: F) -> Result<Res, E>
            where
                E: From<Error>,
                F: FnOnce(&mut WriterScope<'_, T, D2>) -> Result<Res, E>,
            {
                <<(D, $kind) as Found<D2, T>>::Found as WriteRule<T, D, $kind, D2>>::write(
                    self.ctx, self.tx, self.outer, true, f,
                )
            }

            fn __write_retry<Res, E, F>(&mut self, _policy: RetryPolicy, mut f: F) -> Result<Res, E>
            where
                E: From<Error>,
                F: FnMut(&mut WriterScope<'_, T, D2>) -> Result<Res, E>,
            {
                <<(D, $kind) as Found<D2, T>>::Found as WriteRule<T, D, $kind, D2>>::write(
                    self.ctx,
                    self.tx,
                    self.outer,
                    false,
                    |scope| f(scope),
                )
            }

            fn __write_savepoint_retry<Res, E, F>(
                &mut self,
                _policy: RetryPolicy,
                mut f: F,
            ) -> Result<Res, E>
            where
                E: From<Error>,
                F: FnMut(&mut WriterScope<'_, T, D2>) -> Result<Res, E>,
            {
                <<(D, $kind) as Found<D2, T>>::Found as WriteRule<T, D, $kind, D2>>::write(
                    self.ctx,
                    self.tx,
                    self.outer,
                    true,
                    |scope| f(scope),
                )
            }
        }

        #[diagnostic::do_not_recommend]
        impl<'s, T, D, D2> IndependentAccess<D2> for $scope<'s, T, D>
        where
            T: TransactionContext,
            D: Database<T>,
            D2: Database<T>,
            (D, $kind): Found<D2, T>,
            <(D, $kind) as Found<D2, T>>::Found: IndependentRule<T, D, $kind, D2>,
        {
            fn __independent_context(&mut self) -> Result<(&T, bool), Error> {
                let nested = <<(D, $kind) as Found<D2, T>>::Found as IndependentRule<
                    T,
                    D,
                    $kind,
                    D2,
                >>::nested(self.tx, self.outer)?;
                // Another field holding the caller's own Facade is the
                // caller's database: its lock waits are bounded as for a
                // nested independent writer of that database.
                let nested = nested || same_pools::<T, D, D2>(self.ctx);
                Ok((self.ctx, nested))
            }
        }
    };
}

scope_capabilities!(WriterScope, W);
scope_capabilities!(ReaderScope, R);
scope_capabilities!(ReplicaScope, Rep);
