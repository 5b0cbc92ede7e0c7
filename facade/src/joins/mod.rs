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

use crate::backend::{ConcurrentWriters, SupportedConnection};
use crate::context::{Database, TransactionContext};
use crate::error::{Error, ErrorKind};
use crate::scope::{
    Found, Frames, Here, IndependentAccess, OpenKind, ReadAccess, ReaderScope, Rep,
    ReplicaReadAccess, ReplicaScope, WriteAccess, WriterScope, R, W,
};
use crate::transaction::{runtime, savepoint, RetryPolicy, Route, Transaction};

mod elsewhere;

use elsewhere::same_pools;

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
                (runtime().note_join)(tx, "reader");
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
        (runtime().note_join)(tx, "replica reader");
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
            (runtime().note_join)(tx, "savepoint writer");
            savepoint(tx, |tx| f(&mut WriterScope::new(ctx, tx, outer)))
        } else {
            (runtime().note_join)(tx, "writer");
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
