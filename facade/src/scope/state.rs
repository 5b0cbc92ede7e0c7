//! Which database a call goes to, as types: the part of the nesting
//! decision the compiler makes.
//!
//! A scope of database `D` and kind `K` (`W`, `R` or `Rep`: its own type,
//! [`WriterScope`](super::WriterScope), [`ReaderScope`](super::ReaderScope)
//! or [`ReplicaScope`](super::ReplicaScope)) finds, for a call of a function
//! of database `D2`, either its own transaction (`Here<K>`, `D2` is `D`),
//! where the nesting table applies at compile time, or `Elsewhere`: the
//! callee's database is another one, whose transaction (if one is open
//! further out) the scope only knows at run time (`chain`). Whether two
//! databases are the same is [`SameDb`]: `Main` is `Main` for every
//! context, and the derive states it for each pair of a context's
//! databases. Everything here is zero-sized and only ever named in types.

use std::marker::PhantomData;

use crate::context::Main;

/// The kind of a writer's transaction.
#[doc(hidden)]
pub struct W;
/// The kind of a primary reader's transaction.
#[doc(hidden)]
pub struct R;
/// The kind of a replica reader's transaction.
#[doc(hidden)]
pub struct Rep;

#[doc(hidden)]
pub struct True;
#[doc(hidden)]
pub struct False;

/// Whether `Self` and `D2` are the same database of the context `T`
/// (`Eq` is [`True`] or [`False`]). `#[derive(TransactionContext)]`
/// implements it for each pair of the context's databases.
#[doc(hidden)]
pub trait SameDb<D2, T: ?Sized> {
    type Eq;
}

impl<T: ?Sized> SameDb<Main, T> for Main {
    type Eq = True;
}

/// The scope's own database, with its kind.
#[doc(hidden)]
pub struct Here<K>(PhantomData<K>);
/// Another database of the context.
#[doc(hidden)]
pub struct Elsewhere;

/// What a scope of database `Self.0` and kind `Self.1` finds for a call of
/// database `D2`.
#[doc(hidden)]
pub trait Found<D2, T: ?Sized> {
    type Found;
}

impl<D, K, D2, T: ?Sized> Found<D2, T> for (D, K)
where
    D: SameDb<D2, T>,
    (D::Eq, K): Pick,
{
    type Found = <(D::Eq, K) as Pick>::Found;
}

#[doc(hidden)]
pub trait Pick {
    type Found;
}

impl<K> Pick for (True, K) {
    type Found = Here<K>;
}
impl<K> Pick for (False, K) {
    type Found = Elsewhere;
}
