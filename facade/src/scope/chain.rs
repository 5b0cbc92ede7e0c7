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
//!
//! The root's list does not name the context type: a deferred transaction
//! keeps its context's type in a function pointer, and the root only lets
//! in transactions deferred for its own context type ([`Pending`]). The
//! list's code (finding, committing, rolling back, the messages) is then
//! compiled once, in this crate, instead of once per context type in every
//! crate that declares one (docs/performance.md, "Eighth pass").

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
    fn defer(&mut self, pending: Pending<T>);
}

/// The end of every chain, owned by the outermost call: the writers'
/// transactions that began inside another database's and wait for its end.
/// They stay joinable until then (each database has one transaction per
/// outermost call). A slot is empty only while its transaction is lent, or
/// after a panic inside a call that joined it was caught: then the
/// transaction was rolled back, and the outermost call must not commit.
#[doc(hidden)]
pub struct Root<T: ?Sized> {
    deferred: List,
    context: PhantomData<fn(&T) -> &T>,
}

impl<T: ?Sized> Root<T> {
    pub(crate) fn new() -> Self {
        Root {
            deferred: List::default(),
            context: PhantomData,
        }
    }
}

impl<T: ?Sized> Frames<T> for Root<T> {
    fn split(&mut self, db: TypeId, f: &mut dyn FnMut(FoundTx<'_>, &mut dyn Frames<T>)) {
        let Some((slot, mut pending)) = self.deferred.lend(db) else {
            f(None, self);
            return;
        };
        f(Some((pending.tx(), OpenKind::Write)), self);
        self.deferred.give_back(slot, pending);
    }

    fn defer(&mut self, pending: Pending<T>) {
        self.deferred.push(pending.deferred);
    }
}

/// The root's deferred transactions, in the order their calls returned;
/// a slot is empty while its transaction is lent (or after it was lost to
/// a caught panic). Not generic: its code is compiled once, here.
#[derive(Default)]
struct List(Vec<(TypeId, Option<Box<dyn Deferred>>)>);

impl List {
    fn push(&mut self, pending: Box<dyn Deferred>) {
        self.0.push((pending.db(), Some(pending)));
    }

    /// Database `db`'s deferred transaction, taken out of its slot.
    fn lend(&mut self, db: TypeId) -> Option<(usize, Box<dyn Deferred>)> {
        self.0
            .iter_mut()
            .enumerate()
            .find(|(_, (id, pending))| *id == db && pending.is_some())
            .and_then(|(slot, (_, pending))| Some((slot, pending.take()?)))
    }

    fn give_back(&mut self, slot: usize, pending: Box<dyn Deferred>) {
        if let Some((_, empty)) = self.0.get_mut(slot) {
            *empty = Some(pending);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a transaction was lost to a panic that unwound through the
    /// root, or joined by a call that panicked (caught further out).
    fn lost(&self) -> bool {
        self.0
            .iter()
            .any(|(_, pending)| pending.as_ref().is_none_or(|pending| pending.panicked()))
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

    fn defer(&mut self, pending: Pending<T>) {
        self.up.defer(pending);
    }
}

/// A transaction that began inside another database's transaction and
/// whose body returned `Ok`: committed (or rolled back) when the outermost
/// call ends. Its context's type is erased (see the module's
/// documentation); [`Pending`] keeps it.
#[doc(hidden)]
pub trait Deferred {
    /// The database's name (`""` for the default one).
    fn name(&self) -> &'static str;

    /// The database's marker type.
    fn db(&self) -> TypeId;

    /// The open transaction, for the calls that join it.
    fn tx(&mut self) -> &mut dyn Any;

    /// Whether a call that joined it panicked (it was rolled back).
    fn panicked(&self) -> bool;

    /// COMMIT (`commit`) or ROLLBACK; `Err` if the COMMIT failed. The
    /// hooks of a committed transaction are returned, not run: they run
    /// once every transaction of the call has ended.
    ///
    /// # Safety
    ///
    /// `ctx` points to a live value of the context type the transaction
    /// was deferred for: the type `T` of the [`Pending<T>`] it came in.
    unsafe fn finish(
        self: Box<Self>,
        ctx: *const (),
        commit: bool,
    ) -> Result<Vec<CommitHook>, Error>;
}

/// A deferred transaction of a context of type `T`: the only way into a
/// `Root<T>`, so that every transaction a root holds was deferred for the
/// root's own context type. Both are invariant in `T` (`fn(&T) -> &T`), so
/// not even a lifetime inside `T` can differ between the two.
#[doc(hidden)]
pub struct Pending<T: ?Sized> {
    deferred: Box<dyn Deferred>,
    context: PhantomData<fn(&T) -> &T>,
}

impl<T: TransactionContext> Pending<T> {
    /// `begun`, a transaction of database `D` of a `T`, deferred.
    pub(crate) fn new<D: Database<T>>(begun: Begun<D::Connection>) -> Self {
        Pending {
            deferred: Box::new(DeferredTx {
                begun,
                name: D::NAME,
                db: TypeId::of::<D>(),
                finish: finish::<T, D>,
            }),
            context: PhantomData,
        }
    }
}

/// `Begun::finish` for database `D` of a context of type `T`, with the
/// context behind an untyped pointer: what a [`DeferredTx`] keeps of `T`
/// and `D`.
type Finish<C> = unsafe fn(Begun<C>, *const (), bool) -> Result<Vec<CommitHook>, Error>;

/// # Safety
///
/// `ctx` points to a live `T`.
unsafe fn finish<T: TransactionContext, D: Database<T>>(
    begun: Begun<D::Connection>,
    ctx: *const (),
    commit: bool,
) -> Result<Vec<CommitHook>, Error> {
    // SAFETY: the caller's promise.
    let ctx = unsafe { &*ctx.cast::<T>() };
    match (runtime::<D::Connection>().end_outermost_keeping_hooks)(
        begun,
        D::facade(ctx),
        D::read_position(ctx),
        commit,
    ) {
        (Ended::Stands(_), hooks) => Ok(hooks),
        (Ended::Replaced(err), _) => Err(err),
    }
}

/// A deferred transaction on a connection of type `C` (compiled once per
/// backend, here).
struct DeferredTx<C: crate::SupportedConnection> {
    begun: Begun<C>,
    name: &'static str,
    db: TypeId,
    finish: Finish<C>,
}

impl<C: crate::SupportedConnection> Deferred for DeferredTx<C> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn db(&self) -> TypeId {
        self.db
    }

    fn tx(&mut self) -> &mut dyn Any {
        &mut self.begun.tx
    }

    fn panicked(&self) -> bool {
        self.begun.tx.panicked
    }

    unsafe fn finish(
        self: Box<Self>,
        ctx: *const (),
        commit: bool,
    ) -> Result<Vec<CommitHook>, Error> {
        // SAFETY: the caller's promise is `finish`'s: `self.finish` was
        // made for the context type `ctx` points to.
        unsafe { (self.finish)(self.begun, ctx, commit) }
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
    let lost = root.deferred.lost();
    // The hooks of every transaction that committed run once all have
    // ended, in commit order: a hook that panics must not keep a later
    // COMMIT from running (the body returned `Ok`).
    let own = (runtime::<D::Connection>().end_outermost_keeping_hooks)(
        begun,
        D::facade(ctx),
        D::read_position(ctx),
        body_ok && !lost,
    );
    // SAFETY: `root` is a `Root<T>`, so each of its transactions was
    // deferred for a `T` (`Pending<T>`), and `ctx` is alive for the call.
    unsafe {
        end_deferred(
            root.deferred,
            std::ptr::from_ref(ctx).cast(),
            D::NAME,
            own,
            body_ok,
            lost,
        )
    }
}

/// The rest of [`end_all`] once the outermost call's own transaction has
/// ended (`own`), with the context's type erased.
///
/// # Safety
///
/// `ctx` points to a live value of the context type every transaction in
/// `deferred` was deferred for.
unsafe fn end_deferred(
    deferred: List,
    ctx: *const (),
    own_name: &'static str,
    own: (Ended, Vec<CommitHook>),
    body_ok: bool,
    lost: bool,
) -> Ended {
    let (ended, mut hooks) = own;
    let deferred = deferred.0.into_iter().filter_map(|(_, pending)| pending);
    if !body_ok || lost || matches!(ended, Ended::Replaced(_)) {
        for pending in deferred {
            let name = pending.name();
            // SAFETY: the caller's promise.
            if let Err(err) = unsafe { pending.finish(ctx, false) } {
                tracing::debug!(database = name, error = %err, "rollback of a deferred transaction failed");
            }
        }
        if lost && body_ok {
            return Ended::Replaced(caught_panic());
        }
        return ended;
    }
    let mut committed = vec![own_name];
    let mut rest = deferred;
    while let Some(pending) = rest.next() {
        let name = pending.name();
        // SAFETY: the caller's promise.
        match unsafe { pending.finish(ctx, true) } {
            Ok(more) => {
                committed.push(name);
                hooks.extend(more);
            }
            Err(err) => {
                let rolled_back: Vec<&str> = rest
                    .map(|pending| {
                        let other = pending.name();
                        // SAFETY: the caller's promise.
                        let _ = unsafe { pending.finish(ctx, false) };
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
