//! Procedural macros of [diesel-facade]: `#[reader]`, `#[writer]` and
//! `#[derive(TransactionContext)]`.
//!
//! Use them through `diesel_facade`, which re-exports them next to the
//! runtime they expand to. The generated code is thin: the function body
//! becomes a closure handed to one function of `diesel_facade::__private`,
//! where all transaction logic lives as ordinary Rust.
//!
//! Each macro goes through layers, each using only those before it:
//!
//! - `errors`: the accumulator every phase reports into;
//! - `args` (the arguments of `#[reader(..)]` / `#[writer(..)]`) and `attr`
//!   (the derive's `#[facade]` / `#[read_position]` markers): parsing that
//!   records a bad argument or marker and goes on;
//! - `ast`: a typed model of the item the macro is applied to;
//! - `valid`: checks of that model, spanned on the offending tokens;
//! - `runtime`: what each kind of transaction calls in the runtime crate;
//! - `fast`: the usual function (no arguments, no generics, a plain context
//!   type) rewritten from its tokens, without syn, into what `expand`
//!   writes for it: tried first, since every build expands every annotated
//!   function again, in an unoptimised macro crate;
//! - `expand`: code generation for every form, which runs the phases and
//!   emits either the code or every error at once.
//!
//! The entry points below only convert token streams, so every phase runs
//! on `proc_macro2` and is unit-tested without a compiler.
//!
//! [diesel-facade]: https://docs.rs/diesel-facade

mod args;
mod ast;
mod attr;
mod database;
mod derive;
mod errors;
mod expand;
mod fast;
mod runtime;
mod valid;

#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Runs a data-access function in a read-only transaction on its context:
/// joins the transaction already open on it, or begins one (and ends it
/// when the call returns).
///
/// ```ignore
/// use diesel_facade::reader;
///
/// #[reader]
/// fn get_item(ctx: &mut RequestContext, id: i32) -> QueryResult<Item> {
///     items::table.find(id).select(Item::as_select()).first(ctx.conn())
/// }
/// ```
///
/// # Forms
///
/// | attribute                  | scope in the body | an outermost call begins a read-only transaction on |
/// |----------------------------|-------------------|-----------------------------------------------------|
/// | `#[reader]`                | `ReaderScope`     | the primary                                         |
/// | `#[reader(allow_replica)]` | `ReplicaScope`    | the primary                                         |
/// | `#[reader(replica)]`       | `ReplicaScope`    | a replica (the primary if none is configured)       |
///
/// `allow_replica` and `replica` both accept being called inside a replica
/// reader; they differ only in where an outermost call begins.
///
/// # The function
///
/// The context is the first parameter after any receiver (`&self` methods
/// work) and must be `&mut C` where `C: diesel_facade::TransactionContext`;
/// a generic `C` is fine, `impl TransactionContext` is not (the macro needs
/// a name for it). The function must return `Result<T, E>` with
/// `E: From<diesel_facade::Error>`; `QueryResult<T>` qualifies.
///
/// Callers pass any context or scope that may start or join this reader.
/// Inside the body the parameter's name is bound to the scope, which derefs
/// (shared) to the context; `ctx.conn()` is a `ReadOnlyConnection` on which
/// `.execute(..)`, `RETURNING` and `.for_update()` do not compile.
///
#[doc = include_str!("../doc/nesting.md")]
///
/// # Compile errors
///
/// Spanned on the offending token: an unknown or repeated argument,
/// `replica` together with `allow_replica`, a writer argument (`retry`,
/// `savepoint`, `independent`); an `async`, `const` or `extern` function; a
/// missing context parameter, one that is not `&mut`, or `&mut impl Trait`;
/// a missing return type or one that is not a `Result`.
#[proc_macro_attribute]
pub fn reader(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::data_access_fn(args::Role::Reader, args.into(), item.into()).into()
}

/// Runs a data-access function in a read-write transaction on its context:
/// joins the transaction already open on it, or begins one, and commits it
/// on `Ok` or rolls it back on `Err` or a panic when the outermost call
/// returns.
///
/// ```ignore
/// use diesel_facade::writer;
///
/// #[writer(retry)]
/// fn restock(ctx: &mut RequestContext, id: i32) -> QueryResult<Item> {
///     let item = get_item(ctx, id)?; // a #[reader]: joins this transaction
///     diesel::update(items::table.find(id))
///         .set(items::qty.eq(item.qty + 1))
///         .execute(ctx.conn())?;
///     get_item(ctx, id)
/// }
/// ```
///
/// # Forms
///
/// | attribute                 | inside another writer                             |
/// |---------------------------|---------------------------------------------------|
/// | `#[writer]`               | joins it                                          |
/// | `#[writer(savepoint)]`    | runs in a `SAVEPOINT`: an `Err` undoes only this call |
/// | `#[writer(independent)]`  | begins its own transaction on another connection  |
/// | `#[writer(retry)]`        | joins it; an outermost call is re-run on a deadlock, a serialization failure or a Galera certification failure, with the default number of attempts |
/// | `#[writer(retry = N)]`    | the same, re-running at most `N` times (`u32`)    |
///
/// `retry` combines with `savepoint` or `independent` (`#[writer(independent,
/// retry = 3)]`); `savepoint` and `independent` exclude each other. A
/// retried body runs again from the start, so it is an `FnMut` closure: a
/// body that moves an argument out is rejected by the compiler on that line.
///
/// # The function
///
/// The context is the first parameter after any receiver and must be
/// `&mut C` where `C: diesel_facade::TransactionContext` (a named generic
/// `C` is fine, `impl TransactionContext` is not). The function must return
/// `Result<T, E>` with `E: From<diesel_facade::Error>`; `QueryResult<T>`
/// qualifies. Inside the body the parameter's name is bound to a
/// `WriterScope`: `ctx.conn()` is the diesel connection, and `ctx.lock(..)`,
/// `ctx.try_lock(..)` and `ctx.on_commit(..)` are available.
///
/// The rewritten function takes `ctx: &mut dyn DynWrite<C>`, the trait
/// object of `WriteAccess` (`DynIndependent` for `independent`), so it
/// accepts the idle context and, where the table below allows, a scope: a
/// `&mut` to either converts at the call. (`#[reader]` does the same with
/// its own access traits.) The function gets no generic parameter from
/// it, so it is compiled once, in its own crate, whatever its callers
/// pass, and a turbofish names the function's own parameters,
/// `f::<T>(ctx, ..)`. It is marked `#[inline(never)]` unless it has an
/// `inline` attribute of its own: its body is one call that begins or joins
/// a transaction, and a copy of that call in every caller only made release
/// builds slower.
///
/// Because the parameter's type changes, an annotated method cannot
/// implement a trait method declared with `ctx: &mut C` (the signatures
/// differ, E0053): annotate an inherent method or a free function and
/// call it from the trait's implementation.
///
#[doc = include_str!("../doc/nesting.md")]
///
/// # Compile errors
///
/// Spanned on the offending token: an unknown or repeated argument,
/// `savepoint` together with `independent`, a `retry` count that is not a
/// `u32` literal, a reader argument (`replica`, `allow_replica`); an
/// `async` function (diesel is synchronous), a `const` or `extern`
/// function; a missing context parameter, one that is not `&mut`, or
/// `&mut impl Trait`; a missing return type or one that is not a `Result`.
#[proc_macro_attribute]
pub fn writer(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::data_access_fn(args::Role::Writer, args.into(), item.into()).into()
}

/// Implements `diesel_facade::TransactionContext` for a struct by handing out
/// the `Facade` held in one of its fields.
///
/// ```ignore
/// use diesel_facade::{Facade, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct RequestContext {
///     request_id: String,
///     #[facade]
///     db: Facade<SqliteConnection>,
/// }
///
/// #[derive(TransactionContext)]
/// struct Job<C: diesel_facade::SupportedConnection>(#[facade] Facade<C>, u64);
/// ```
///
/// The field is the one marked `#[facade]`; without a marker, the only field
/// whose type is spelled `Facade<..>` (by its last path segment) is used.
/// The field's type may be a type alias: it is read through the
/// `FacadeField` trait, which also yields the context's `Connection` type.
/// Generic parameters and where-clauses of the struct carry over to the
/// impl.
///
/// Every derived context sees its own writes on replicas: by default its
/// `read_position()` is the position its `Facade` field carries. A field
/// marked `#[read_position]` (of type `diesel_facade::ReadPosition`) becomes
/// the context's `read_position()` instead; mark one only to keep the
/// position apart from the handle, e.g. to restore it from the user's
/// session with `ReadPosition::from_token` (see `docs/replicas.md`).
///
/// ```ignore
/// #[derive(TransactionContext)]
/// struct RequestContext {
///     #[facade]
///     db: Facade<PgConnection>,
///     #[read_position]
///     position: ReadPosition,
/// }
/// ```
///
/// The derive also implements `diesel_facade::Retarget` on the same field
/// (and sets the `#[read_position]` field aside meanwhile), so the context
/// can be pointed at another database for a while with
/// `ctx.target(&cell, |ctx| ..)` (see `docs/cells.md`).
///
/// # Compile errors
///
/// Spanned on the offending token, and all reported in one compile: an
/// enum or union; no `#[facade]` field and not exactly one field of type
/// `Facade<..>`; more than one `#[facade]` field; more than one
/// `#[read_position]` field; a marker with arguments (`#[facade(..)]`,
/// `#[read_position = ..]`) or repeated on one field; `#[facade]` on the
/// struct itself. A marked field that holds no `Facade` fails to compile on
/// that field's type.
#[proc_macro_derive(TransactionContext, attributes(facade, read_position))]
pub fn derive_transaction_context(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    derive::derive_transaction_context(&input).into()
}
