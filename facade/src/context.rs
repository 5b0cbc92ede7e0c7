//! The request context: whatever the application passes to its data-access
//! functions instead of a connection.
//!
//! A context only has to hand out its [`Facade`]. The transaction in progress
//! is not stored in the context: it lives in the scope value a `#[reader]` or
//! `#[writer]` creates, and nested calls receive that scope. That is what
//! lets the compiler check the nesting rules, and it keeps contexts plain
//! data (`Send`, `Clone` if the application wants).
//!
//! [`Facade::context`] is defined here, beside the [`Context`] it returns,
//! so that `facade.rs` needs nothing from this module.

use std::fmt;

use crate::backend::SupportedConnection;
use crate::facade::Facade;
use crate::replica::ReadPosition;

/// A request context: any type that can hand out its [`Facade`].
///
/// Usually derived: mark the field that holds the facade with `#[facade]`.
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::{Facade, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct RequestContext {
///     request_id: String,
///     #[facade]
///     db: Facade<SqliteConnection>,
/// }
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
/// let ctx = RequestContext { request_id: "req-1".into(), db };
/// assert_eq!(ctx.facade().writer_url(), ":memory:");
/// # Ok(()) }
/// ```
///
/// Implementing it by hand is one method:
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::{Facade, TransactionContext};
///
/// struct Job { db: Facade<SqliteConnection> }
///
/// impl TransactionContext for Job {
///     type Connection = SqliteConnection;
///     fn facade(&self) -> &Facade<SqliteConnection> { &self.db }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a request context",
    label = "expected a type implementing `TransactionContext`",
    note = "add `#[derive(diesel_facade::TransactionContext)]` to it and mark its `Facade` field with `#[facade]`, or use `Facade::context()`"
)]
pub trait TransactionContext {
    /// The diesel connection type of this context's database.
    type Connection: SupportedConnection;

    /// The facade whose pools this context's transactions use.
    fn facade(&self) -> &Facade<Self::Connection>;

    /// Where this context keeps the position of its last commit, for
    /// read-your-writes on replicas (see [`ReadPosition`]).
    ///
    /// By default, the position its [`Facade`] handle carries
    /// ([`Facade::read_position`]), so every context sees its own writes on
    /// replicas without asking for it. The derive returns the field marked
    /// `#[read_position]` instead, if there is one. Returning `None` opts
    /// out: replica reads then never wait for this context's writes (and
    /// may not see them).
    ///
    /// ```
    /// use diesel::SqliteConnection;
    /// use diesel_facade::{Facade, TransactionContext};
    ///
    /// struct Job { db: Facade<SqliteConnection> }
    ///
    /// impl TransactionContext for Job {
    ///     type Connection = SqliteConnection;
    ///     fn facade(&self) -> &Facade<SqliteConnection> { &self.db }
    /// }
    ///
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let job = Job { db: Facade::builder().writer(":memory:").build()? };
    /// assert!(std::ptr::eq(job.read_position().unwrap(), job.db.read_position()));
    /// # Ok(()) }
    /// ```
    fn read_position(&self) -> Option<&ReadPosition> {
        Some(self.facade().read_position())
    }
}

/// A ready-made context for scripts, jobs and tests; see [`Facade::context`].
///
/// ```
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
///     .writer(":memory:")
///     .build()?;
/// let mut ctx: diesel_facade::Context<_> = db.context();
/// diesel_facade::write(&mut ctx, |_ctx| Ok::<_, diesel_facade::Error>(()))?;
/// # Ok(()) }
/// ```
pub struct Context<C: SupportedConnection> {
    facade: Facade<C>,
}

impl<C: SupportedConnection> Context<C> {
    pub(crate) fn new(facade: Facade<C>) -> Self {
        Context { facade }
    }

    /// This context's read-your-writes position (see [`ReadPosition`]): the
    /// one its facade handle carries, a copy of the position of the facade
    /// it was made from.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// assert_eq!(db.context().position().token(), None);
    /// # Ok(()) }
    /// ```
    pub fn position(&self) -> &ReadPosition {
        self.facade.read_position()
    }

    /// For `Retarget` (in `cells/`, which this module does not import).
    pub(crate) fn facade_mut(&mut self) -> &mut Facade<C> {
        &mut self.facade
    }
}

impl<C: SupportedConnection> Clone for Context<C> {
    fn clone(&self) -> Self {
        Context {
            facade: self.facade.clone(),
        }
    }
}

impl<C: SupportedConnection> fmt::Debug for Context<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("facade", &self.facade)
            .field("position", self.position())
            .finish()
    }
}

impl<C: SupportedConnection> TransactionContext for Context<C> {
    type Connection = C;

    fn facade(&self) -> &Facade<C> {
        &self.facade
    }
}

impl<C: SupportedConnection> Facade<C> {
    /// A ready-made request context holding a clone of this facade.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder()
    ///     .writer(":memory:")
    ///     .build()?;
    /// let mut ctx = db.context();
    /// let one: i32 = diesel_facade::read(&mut ctx, |ctx| {
    ///     use diesel::RunQueryDsl;
    ///     diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("1"))
    ///         .get_result(ctx.conn())
    /// })?;
    /// assert_eq!(one, 1);
    /// # Ok(()) }
    /// ```
    pub fn context(&self) -> Context<C> {
        Context::new(self.clone())
    }
}

/// One database of the request context `T`: the default one ([`Main`], the
/// context's [`TransactionContext::facade`]) or one declared with
/// `#[facade(NAME)]` ([`Named`]). A function picks it with `db = NAME` among
/// its `#[reader]`/`#[writer]` arguments; its scope's `conn()` then has this
/// database's connection type.
///
/// `#[derive(TransactionContext)]` implements it for each named field;
/// [`Main`] has it for every context.
///
/// ```
/// use diesel::SqliteConnection;
/// use diesel_facade::{database_id, Database, Facade, Main, Named, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct RequestContext {
///     #[facade]
///     main: Facade<SqliteConnection>,
///     #[facade(api)]
///     api: Facade<SqliteConnection>,
/// }
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let ctx = RequestContext {
///     main: Facade::builder().writer("file:main?mode=memory&cache=shared").build()?,
///     api: Facade::builder().writer("file:api?mode=memory&cache=shared").build()?,
/// };
/// type Api = Named<{ database_id("api") }>;
/// assert_eq!(<Api as Database<RequestContext>>::NAME, "api");
/// assert_eq!(Api::facade(&ctx).writer_url(), "file:api?mode=memory&cache=shared");
/// assert_eq!(<Main as Database<RequestContext>>::facade(&ctx).writer_url(), "file:main?mode=memory&cache=shared");
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "the context `{T}` has no database of the name given in `db = ..`",
    label = "no field of `{T}` is marked `#[facade(..)]` with this name",
    note = "declare the database on the context (`#[facade(NAME)] field: diesel_facade::Facade<C>`), or use one of the names it declares; without `db = ..` a function uses the unnamed `#[facade]` field"
)]
pub trait Database<T: ?Sized>: 'static {
    /// The diesel connection type of this database.
    type Connection: SupportedConnection;

    /// The name it was declared with (`""` for the default database).
    const NAME: &'static str;

    /// Its facade on the context `ctx`.
    fn facade(ctx: &T) -> &Facade<Self::Connection>;

    /// Where `ctx` keeps the position of its last commit to this database,
    /// for read-your-writes on its replicas (see
    /// [`TransactionContext::read_position`]).
    fn read_position(ctx: &T) -> Option<&ReadPosition> {
        Some(Self::facade(ctx).read_position())
    }
}

/// The default database of a context: its unnamed `#[facade]` field
/// ([`TransactionContext::facade`]). Functions without `db = ..` use it.
///
/// ```
/// use diesel_facade::{Database, Main};
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
/// let ctx = db.context();
/// assert_eq!(Main::facade(&ctx).writer_url(), ":memory:");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Main;

impl<T: TransactionContext + ?Sized> Database<T> for Main {
    type Connection = T::Connection;
    const NAME: &'static str = "";

    #[inline]
    fn facade(ctx: &T) -> &Facade<T::Connection> {
        ctx.facade()
    }

    #[inline]
    fn read_position(ctx: &T) -> Option<&ReadPosition> {
        ctx.read_position()
    }
}

/// The database a context declares as `#[facade(NAME)]`, identified by
/// [`database_id`]`("NAME")`: what `db = NAME` selects. The derive
/// implements [`Database`] for it on that context only, so a name the
/// context does not declare does not compile.
///
/// ```
/// use diesel_facade::{database_id, Named};
/// let _api: Named<{ database_id("api") }> = Named;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Named<const ID: u64>;

/// The identifier of the database name `name` in [`Named`]: the 64-bit
/// FNV-1a hash of its UTF-8 bytes (the macros compute the same). Two names
/// of one context that hash alike are rejected by the derive.
///
/// ```
/// use diesel_facade::database_id;
/// // FNV-1a test vectors (the macros' unit tests check the same values).
/// assert_eq!(database_id(""), 0xcbf2_9ce4_8422_2325);
/// assert_eq!(database_id("a"), 0xaf63_dc4c_8601_ec8c);
/// assert_ne!(database_id("api"), database_id("cell0"));
/// ```
pub const fn database_id(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}
