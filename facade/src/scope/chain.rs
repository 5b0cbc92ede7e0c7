//! The transactions open on a context's other databases, as a scope sees
//! them at run time: a chain of frames on the stack, each lending one open
//! transaction (type-erased, found by its database's `TypeId`), ending in
//! the [`Root`] that the outermost call owns. The types in `state` say what
//! the chain holds; this module only finds it.
//!
//! The root also collects the transactions that began inside another
//! database's transaction ([`Deferred`]): their COMMIT waits for the end of
//! the outermost call, which commits its own transaction first and then
//! those, in the order their calls returned (see docs/databases.md).

use std::any::{Any, TypeId};
use std::marker::PhantomData;

use crate::context::{Database, TransactionContext};
use crate::error::{Error, ErrorKind};
use crate::transaction::runtime;
use crate::transaction::{caught_panic, run_hooks, Begun, CommitHook, Ended};

/// What kind of transaction a frame lends: what may join it.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenKind {
    /// A writer's: readers and writers join.
    Write,
    /// A primary reader's (or a writer's joined by a reader): readers join.
    Read,
    /// A replica reader's: only replica readers join.
    Replica,
}

/// The transaction open on a database, as found in a chain.
pub type FoundTx<'a> = Option<(&'a mut dyn Any, OpenKind)>;

/// A chain of open transactions (see the module's documentation).
#[doc(hidden)]
pub trait Frames<T: ?Sized> {
    /// Call `f` with the open transaction of database `db` (if a frame
    /// holds one) and the rest of the chain without it.
    fn split(&mut self, db: TypeId, f: &mut dyn FnMut(FoundTx<'_>, &mut dyn Frames<T>));

    /// Leave `pending` to the outermost call to commit or roll back.
    fn defer(&mut self, pending: Box<dyn Deferred<T>>);
}

/// The end of every chain, owned by the outermost call: the writers'
/// transactions that began inside another database's and wait for its end.
/// They stay joinable until then (each database has one transaction per
/// outermost call). A slot is empty only while its transaction is lent, or
/// after a panic inside a call that joined it was caught: then the
/// transaction was rolled back, and the outermost call must not commit.
#[doc(hidden)]
pub struct Root<T: ?Sized> {
    pub(crate) deferred: Vec<(TypeId, Slot<T>)>,
}

/// A deferred transaction, or nothing while it is lent (or after it was
/// lost to a caught panic).
pub(crate) type Slot<T> = Option<Box<dyn Deferred<T>>>;

impl<T: ?Sized> Root<T> {
    pub(crate) fn new() -> Self {
        Root {
            deferred: Vec::new(),
        }
    }
}

impl<T: ?Sized> Frames<T> for Root<T> {
    fn split(&mut self, db: TypeId, f: &mut dyn FnMut(FoundTx<'_>, &mut dyn Frames<T>)) {
        let slot = self
            .deferred
            .iter()
            .position(|(id, pending)| *id == db && pending.is_some());
        let Some(slot) = slot else {
            f(None, self);
            return;
        };
        let mut pending = self.deferred[slot].1.take();
        if let Some(pending) = pending.as_mut() {
            f(Some((pending.tx(), OpenKind::Write)), self);
        }
        self.deferred[slot].1 = pending;
    }

    fn defer(&mut self, pending: Box<dyn Deferred<T>>) {
        self.deferred.push((pending.db(), Some(pending)));
    }
}

/// One open transaction lent to the scopes inside it.
pub(crate) struct Frame<'a, T: ?Sized> {
    pub(crate) db: TypeId,
    pub(crate) kind: OpenKind,
    pub(crate) tx: &'a mut dyn Any,
    pub(crate) up: &'a mut dyn Frames<T>,
}

impl<T: ?Sized> Frames<T> for Frame<'_, T> {
    fn split(&mut self, db: TypeId, f: &mut dyn FnMut(FoundTx<'_>, &mut dyn Frames<T>)) {
        if self.db == db {
            f(Some((&mut *self.tx, self.kind)), &mut *self.up);
            return;
        }
        // Rebuild this frame on top of the rest of the chain, so the callee
        // still finds it.
        let (own, kind) = (self.db, self.kind);
        let tx = &mut *self.tx;
        self.up.split(db, &mut |found, rest| {
            let mut frame = Frame {
                db: own,
                kind,
                tx: &mut *tx,
                up: rest,
            };
            f(found, &mut frame);
        });
    }

    fn defer(&mut self, pending: Box<dyn Deferred<T>>) {
        self.up.defer(pending);
    }
}

/// A transaction that began inside another database's transaction and
/// whose body returned `Ok`: committed (or rolled back) when the outermost
/// call ends.
#[doc(hidden)]
pub trait Deferred<T: ?Sized> {
    /// The database's name (`""` for the default one).
    fn name(&self) -> &'static str;

    /// The database's marker type.
    fn db(&self) -> TypeId;

    /// The open transaction, to join.
    fn tx(&mut self) -> &mut dyn Any;

    /// Whether a call that joined it panicked (see `Transaction::panicked`).
    fn panicked(&self) -> bool;

    /// COMMIT (`commit`) or ROLLBACK; `Err` if the COMMIT failed. The
    /// hooks of a committed transaction are returned, not run: they run
    /// once every transaction of the call has ended.
    fn finish(self: Box<Self>, ctx: &T, commit: bool) -> Result<Vec<CommitHook>, Error>;
}

pub(crate) struct DeferredTx<D, C: crate::SupportedConnection> {
    pub(crate) begun: Begun<C>,
    pub(crate) db: PhantomData<fn() -> D>,
}

impl<T: TransactionContext, D: Database<T>> Deferred<T> for DeferredTx<D, D::Connection> {
    fn name(&self) -> &'static str {
        D::NAME
    }

    fn db(&self) -> TypeId {
        TypeId::of::<D>()
    }

    fn tx(&mut self) -> &mut dyn Any {
        &mut self.begun.tx
    }

    fn panicked(&self) -> bool {
        self.begun.tx.panicked
    }

    fn finish(self: Box<Self>, ctx: &T, commit: bool) -> Result<Vec<CommitHook>, Error> {
        match (runtime::<D::Connection>().end_outermost_keeping_hooks)(
            self.begun,
            D::facade(ctx),
            D::read_position(ctx),
            commit,
        ) {
            (Ended::Stands(_), hooks) => Ok(hooks),
            (Ended::Replaced(err), _) => Err(err),
        }
    }
}

/// An outermost call's open transaction and the root of its chain: what the
/// shell of a request context's `__read`/`__write` holds while the body runs.
/// One value, so that the shell (compiled once per annotated function) has
/// one thing to drop when the body panics: the transaction rolls back (see
/// `Begun`), and so does every deferred one (their own `Drop`).
pub(crate) struct Opened<T: TransactionContext, D: Database<T>> {
    pub(crate) begun: Begun<D::Connection>,
    pub(crate) root: Root<T>,
}

impl<T: TransactionContext, D: Database<T>> Opened<T, D> {
    /// Check out a connection of `D` and `BEGIN` a transaction of `mode`.
    #[inline(never)]
    pub(crate) fn open(
        ctx: &T,
        mode: crate::backend::TxMode,
        route: crate::transaction::Route,
    ) -> Result<Self, crate::transaction::NotBegun> {
        let begun = (runtime::<D::Connection>().begin_outermost)(
            D::facade(ctx),
            D::read_position(ctx),
            mode,
            route,
        )?;
        Ok(Opened {
            begun,
            root: Root::new(),
        })
    }

    /// Commit or roll back (see [`end_all`]): `None` if the body's result
    /// stands, else the error that replaces it.
    pub(crate) fn close(self, ctx: &T, body_ok: bool) -> Option<Error> {
        match end_all::<T, D>(self.begun, ctx, self.root, body_ok) {
            Ended::Stands(_) => None,
            Ended::Replaced(err) => Some(err),
        }
    }
}

/// End the outermost call of `ctx` on database `D`: its own transaction
/// first (COMMIT if `body_ok`, else ROLLBACK), then the deferred ones in
/// the order their calls returned. If its own transaction does not commit,
/// the deferred ones roll back. If a deferred COMMIT fails after others
/// succeeded, the result is [`ErrorKind::PartiallyCommitted`] and the rest
/// roll back.
pub(crate) fn end_all<T: TransactionContext, D: Database<T>>(
    begun: Begun<D::Connection>,
    ctx: &T,
    root: Root<T>,
    body_ok: bool,
) -> Ended {
    if root.deferred.is_empty() {
        return (runtime::<D::Connection>().end_outermost)(
            begun,
            D::facade(ctx),
            D::read_position(ctx),
            body_ok,
        );
    }
    // Lost to a panic that unwound through the root, or joined by a call
    // that panicked (caught further out).
    let lost = root
        .deferred
        .iter()
        .any(|(_, pending)| pending.as_ref().is_none_or(|pending| pending.panicked()));
    let deferred: Vec<Box<dyn Deferred<T>>> = root
        .deferred
        .into_iter()
        .filter_map(|(_, pending)| pending)
        .collect();
    // The hooks of every transaction that committed run once all have
    // ended, in commit order: a hook that panics must not keep a later
    // COMMIT from running (the body returned `Ok`).
    let (ended, mut hooks) = (runtime::<D::Connection>().end_outermost_keeping_hooks)(
        begun,
        D::facade(ctx),
        D::read_position(ctx),
        body_ok && !lost,
    );
    if !body_ok || lost || matches!(ended, Ended::Replaced(_)) {
        for pending in deferred {
            let name = pending.name();
            if let Err(err) = pending.finish(ctx, false) {
                tracing::debug!(database = name, error = %err, "rollback of a deferred transaction failed");
            }
        }
        if lost && body_ok {
            return Ended::Replaced(caught_panic());
        }
        return ended;
    }
    let mut committed = vec![D::NAME];
    let mut rest = deferred.into_iter();
    while let Some(pending) = rest.next() {
        let name = pending.name();
        match pending.finish(ctx, true) {
            Ok(more) => {
                committed.push(name);
                hooks.extend(more);
            }
            Err(err) => {
                let rolled_back: Vec<&str> = rest
                    .map(|pending| {
                        let other = pending.name();
                        let _ = pending.finish(ctx, false);
                        other
                    })
                    .collect();
                let err = partially_committed(&committed, name, &rolled_back, err);
                tracing::warn!(error = %err, "committed on some databases only");
                run_hooks(hooks);
                return Ended::Replaced(err);
            }
        }
    }
    run_hooks(hooks);
    ended
}

/// A database's name in messages.
fn shown(name: &str) -> String {
    if name.is_empty() {
        "the default database".to_owned()
    } else {
        format!("`{name}`")
    }
}

/// `message`, the error of database `name`'s own transaction, with what it
/// says was or was not committed or rolled back narrowed to that database:
/// inside a [`ErrorKind::PartiallyCommitted`] error, "nothing was
/// committed" would deny the COMMITs that succeeded.
fn of_one_database(message: &str, name: &str) -> String {
    let on = shown(name);
    message
        .replace(
            "everything was rolled back",
            &format!("everything on {on} was rolled back"),
        )
        .replace(
            "nothing was committed",
            &format!("nothing was committed on {on}"),
        )
        .replace(
            "it was not committed",
            &format!("it was not committed on {on}"),
        )
}

fn partially_committed(
    committed: &[&str],
    failed: &str,
    rolled_back: &[&str],
    err: Error,
) -> Error {
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| shown(n))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut message = format!(
        "committed on {}, then the COMMIT on {} failed ({}: {})",
        list(committed),
        shown(failed),
        err.kind(),
        of_one_database(err.message(), failed),
    );
    if !rolled_back.is_empty() {
        message.push_str(&format!("; rolled back on {}", list(rolled_back)));
    }
    message.push_str(". There is no two-phase commit across databases: the committed writes stand");
    Error::new(ErrorKind::PartiallyCommitted, message).with_source(err)
}
