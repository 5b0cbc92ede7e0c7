//! The capability traits with the body's result type erased, so that an
//! annotated function can take `&mut dyn DynRead<C>` (or one of the
//! others) and is compiled once, in its own crate, whatever its callers
//! pass: a request context begins, a scope joins, through the trait
//! object's table. Each is implemented for every type with the capability
//! (the capability traits themselves have generic methods, so they cannot
//! be trait objects).
//!
//! The body is handed over as `&mut dyn Body<Scope>`: its `run` runs the
//! function's body, keeps the result where the function's own code
//! (`__private::read` and its siblings) can take it back, and says whether
//! it was `Ok`. (A trait of its own rather than `dyn FnMut`, whose table
//! would also carry a `call_once` shim for every annotated function.) The
//! entry point answers with the facade's error when that
//! replaced the body's result (`BEGIN` or `COMMIT` failed), or `None` when
//! the body's own result stands.

use crate::context::{Database, Main, TransactionContext};
use crate::error::Error;
use crate::scope::{
    IndependentAccess, ReadAccess, ReaderScope, ReplicaReadAccess, ReplicaScope, WriteAccess,
    WriterScope,
};
use crate::transaction::{RetryPolicy, Route};

/// [`ReadAccess`] as a trait object.
// The capability's own messages: rustc reports this trait, not the
// capability it stands for.
#[diagnostic::on_unimplemented(
    message = "a `#[reader]` cannot be called with `{Self}`",
    label = "not a request context, a writer scope or a primary reader scope",
    note = "inside a `#[reader(replica)]` or `#[reader(allow_replica)]` the transaction may run on a replica: mark the callee `#[reader(allow_replica)]` if it can read replica data, or make the caller a plain `#[reader]` so it reads the primary"
)]
pub trait DynRead<C: TransactionContext, D: Database<C> = Main> {
    /// `ReadAccess::__read` with the body's result erased.
    fn __read_erased(
        &mut self,
        body: &mut dyn for<'s> Body<ReaderScope<'s, C, D>>,
    ) -> Option<Error>;
}

impl<S, D> DynRead<S::Context, D> for S
where
    S: ReadAccess<D>,
    D: Database<S::Context>,
{
    fn __read_erased(
        &mut self,
        body: &mut dyn for<'s> Body<ReaderScope<'s, S::Context, D>>,
    ) -> Option<Error> {
        Erased::outcome(self.__read(|scope| Erased::of(body.run(scope))))
    }
}

/// [`ReplicaReadAccess`] as a trait object.
// The capability's own messages: rustc reports this trait, not the
// capability it stands for.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot start or join a read-only transaction",
    label = "not a request context or a transaction scope",
    note = "pass the request context or the `ctx` of the enclosing #[reader]/#[writer]"
)]
pub trait DynReplicaRead<C: TransactionContext, D: Database<C> = Main> {
    /// `ReplicaReadAccess::__read_replica` with the body's result erased.
    fn __read_replica_erased(
        &mut self,
        route: Route,
        body: &mut dyn for<'s> Body<ReplicaScope<'s, C, D>>,
    ) -> Option<Error>;
}

impl<S, D> DynReplicaRead<S::Context, D> for S
where
    S: ReplicaReadAccess<D>,
    D: Database<S::Context>,
{
    fn __read_replica_erased(
        &mut self,
        route: Route,
        body: &mut dyn for<'s> Body<ReplicaScope<'s, S::Context, D>>,
    ) -> Option<Error> {
        Erased::outcome(self.__read_replica(route, |scope| Erased::of(body.run(scope))))
    }
}

/// [`WriteAccess`] as a trait object.
// The capability's own messages: rustc reports this trait, not the
// capability it stands for.
#[diagnostic::on_unimplemented(
    message = "a `#[writer]` cannot run inside `{Self}`: that transaction is read-only",
    label = "read-only scope: cannot start or join a read-write transaction here",
    note = "make the calling function `#[writer]` so the whole transaction can write, or mark the callee `#[writer(independent)]` to commit it separately on its own connection"
)]
pub trait DynWrite<C: TransactionContext, D: Database<C> = Main> {
    /// The four `WriteAccess` entry points, chosen by `how`, with the
    /// body's result erased.
    fn __write_erased(
        &mut self,
        how: WriteHow,
        body: &mut dyn for<'s> Body<WriterScope<'s, C, D>>,
    ) -> Option<Error>;
}

impl<S, D> DynWrite<S::Context, D> for S
where
    S: WriteAccess<D>,
    D: Database<S::Context>,
{
    fn __write_erased(
        &mut self,
        how: WriteHow,
        body: &mut dyn for<'s> Body<WriterScope<'s, S::Context, D>>,
    ) -> Option<Error> {
        let body = |scope: &mut WriterScope<'_, S::Context, D>| Erased::of(body.run(scope));
        Erased::outcome(match (how.savepoint, how.retry) {
            (false, None) => self.__write(body),
            (true, None) => self.__write_savepoint(body),
            (false, Some(policy)) => self.__write_retry(policy, body),
            (true, Some(policy)) => self.__write_savepoint_retry(policy, body),
        })
    }
}

/// [`IndependentAccess`] as a trait object.
// The capability's own messages: rustc reports this trait, not the
// capability it stands for.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot start an independent transaction",
    label = "not a request context or a transaction scope, or a writer on SQLite",
    note = "pass the request context or the `ctx` of the enclosing #[reader]/#[writer]",
    note = "inside a `#[writer]` on SQLite (see `diesel_facade::ConcurrentWriters`), which allows one writer at a time, an independent writer would wait for its own caller and could never commit: call it before or after the writer, or from a `#[reader]`"
)]
pub trait DynIndependent<C: TransactionContext, D: Database<C> = Main> {
    /// `IndependentAccess::__independent_context`.
    fn __independent_context(&mut self) -> Result<(&C, bool), Error>;
}

impl<S, D> DynIndependent<S::Context, D> for S
where
    S: IndependentAccess<D>,
    D: Database<S::Context>,
{
    fn __independent_context(&mut self) -> Result<(&S::Context, bool), Error> {
        IndependentAccess::__independent_context(self)
    }
}

/// A function's body as the erased entry points take it: `run` runs it on
/// `scope`, keeps its result for the function's own code, and says whether
/// it was `Ok`.
pub trait Body<S> {
    /// Run the body on `scope`; whether its result is `Ok`.
    fn run(&mut self, scope: &mut S) -> bool;
}

/// A body that runs at most once (an `FnOnce`, taken from its `Option`
/// when it runs), and where its result goes. It holds both by reference, so
/// that it has no drop code of its own. (Built with a struct literal and
/// run in one method: each is one more instance per annotated function in
/// a debug build.)
pub struct Once<'a, F, R, E> {
    pub(crate) f: &'a mut Option<F>,
    pub(crate) kept: &'a mut Kept<R, E>,
}

impl<S, F, R, E> Body<S> for Once<'_, F, R, E>
where
    F: FnOnce(&mut S) -> Result<R, E>,
    E: From<Error>,
{
    fn run(&mut self, scope: &mut S) -> bool {
        match self.f.take() {
            Some(f) => self.kept.keep(f(scope)),
            None => self.kept.ran_twice(),
        }
    }
}

/// A body that may run again (an `FnMut`, for `retry`), and where its last
/// result goes.
pub struct Again<'a, F, R, E> {
    pub(crate) f: &'a mut F,
    pub(crate) kept: &'a mut Kept<R, E>,
}

impl<S, F, R, E> Body<S> for Again<'_, F, R, E>
where
    F: FnMut(&mut S) -> Result<R, E>,
    E: From<Error>,
{
    fn run(&mut self, scope: &mut S) -> bool {
        self.kept.keep((self.f)(scope))
    }
}

/// How a writer enters: in a savepoint when joined or not, and with which
/// retry policy when it begins.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct WriteHow {
    /// `#[writer(savepoint)]`: a joined call runs in a savepoint.
    pub savepoint: bool,
    /// `#[writer(retry)]`: a transaction it begins is re-run per the policy.
    pub retry: Option<RetryPolicy>,
}

/// The error type of an erased call of the generic entry points: the body
/// failed (its error is kept by the caller), or the facade's error replaced
/// the body's result.
pub(crate) enum Erased {
    Body,
    Facade(Error),
}

impl From<Error> for Erased {
    fn from(err: Error) -> Self {
        Erased::Facade(err)
    }
}

impl Erased {
    /// The erased body's answer as the generic entry points want it.
    pub(crate) fn of(ok: bool) -> Result<(), Erased> {
        if ok {
            Ok(())
        } else {
            Err(Erased::Body)
        }
    }

    /// The entry point's outcome as the erased methods return it.
    pub(crate) fn outcome(result: Result<(), Erased>) -> Option<Error> {
        match result {
            Ok(()) | Err(Erased::Body) => None,
            Err(Erased::Facade(err)) => Some(err),
        }
    }
}

/// The result of an erased body's last run, taken back by the annotated
/// function after the transaction ended.
#[doc(hidden)]
pub struct Kept<R, E> {
    result: Option<Result<R, E>>,
}

impl<R, E: From<Error>> Kept<R, E> {
    /// Nothing kept yet.
    pub fn new() -> Self {
        Kept { result: None }
    }

    /// Keep a run's result; whether it is `Ok`.
    pub fn keep(&mut self, result: Result<R, E>) -> bool {
        // A pattern rather than `is_ok()`: no copy of `is_ok` per result
        // type.
        #[allow(clippy::redundant_pattern_matching)]
        let ok = matches!(result, Ok(_));
        self.result = Some(result);
        ok
    }

    /// A body that may run once was asked to run again. No entry point
    /// does that (they take it as `FnOnce`); if one did, the function
    /// fails rather than report the first run's result for a transaction
    /// that then rolled back.
    fn ran_twice(&mut self) -> bool {
        self.keep(Err(E::from(ran_twice())))
    }

    /// The function's result: the facade's error if one replaced the
    /// body's result, else the body's last result.
    pub fn finish(self, failed: Option<Error>) -> Result<R, E> {
        match (failed, self.result) {
            (Some(err), _) => Err(E::from(err)),
            (None, Some(result)) => result,
            // Every entry point runs the body or reports why it did not.
            (None, None) => Err(E::from(never_ran())),
        }
    }
}

// The two errors no entry point should cause, built once here rather than
// in every annotated function's copy of `Kept` (release builds inline it).
#[cold]
#[inline(never)]
fn ran_twice() -> Error {
    Error::new(
        crate::ErrorKind::Other,
        "the function's body was asked to run twice in one transaction",
    )
}

#[cold]
#[inline(never)]
fn never_ran() -> Error {
    Error::new(
        crate::ErrorKind::Other,
        "the transaction ended without running the function's body",
    )
}

impl<R, E: From<Error>> Default for Kept<R, E> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Kept;
    use crate::{Error, ErrorKind};

    #[test]
    fn the_facades_error_replaces_the_bodys_result() {
        let mut kept = Kept::<i32, Error>::new();
        assert!(kept.keep(Ok(1)));
        let err = Error::new(ErrorKind::Deadlock, "commit refused");
        let result = kept.finish(Some(err));
        assert_eq!(result.map_err(|e| e.kind()), Err(ErrorKind::Deadlock));
    }

    #[test]
    fn the_bodys_last_result_stands_without_a_facade_error() {
        let mut kept = Kept::<i32, Error>::new();
        assert!(!kept.keep(Err(Error::new(ErrorKind::Deadlock, "first attempt"))));
        assert!(kept.keep(Ok(2)));
        assert_eq!(kept.finish(None).map_err(|e| e.kind()), Ok(2));
    }

    #[test]
    fn a_body_run_twice_or_never_is_an_error_not_a_result() {
        use super::{Body, Once};
        let mut kept = Kept::<i32, Error>::new();
        let mut body = Some(|_: &mut ()| Ok(1));
        let mut once = Once {
            f: &mut body,
            kept: &mut kept,
        };
        assert!(once.run(&mut ()));
        assert!(!once.run(&mut ()));
        assert_eq!(
            kept.finish(None).map_err(|e| e.kind()),
            Err(ErrorKind::Other)
        );
        let never = Kept::<i32, Error>::new();
        assert_eq!(
            never.finish(None).map_err(|e| e.kind()),
            Err(ErrorKind::Other)
        );
    }
}
