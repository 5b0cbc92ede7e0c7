//! # diesel-facade
//!
//! Request-scoped transactions for [diesel], in the manner of OpenStack
//! oslo.db's *enginefacade*: data-access functions take a request context
//! instead of a connection, and `#[reader]` / `#[writer]` make each call join
//! the transaction already open on that context or open one, committing or
//! rolling back when the outermost call returns.
//!
//! ```
//! use diesel::prelude::*;
//! use diesel::SqliteConnection;
//! use diesel_facade::{reader, writer, Facade, TransactionContext};
//!
//! diesel::table! { items (id) { id -> Integer, qty -> Integer } }
//!
//! #[derive(TransactionContext)]
//! struct RequestContext {
//!     #[facade]
//!     db: Facade<SqliteConnection>,
//! }
//!
//! #[reader]
//! fn qty(ctx: &mut RequestContext, id: i32) -> QueryResult<i32> {
//!     items::table.find(id).select(items::qty).first(ctx.conn())
//! }
//!
//! #[writer]
//! fn restock(ctx: &mut RequestContext, id: i32) -> QueryResult<i32> {
//!     let before = qty(ctx, id)?; // joins this transaction
//!     diesel::update(items::table.find(id))
//!         .set(items::qty.eq(before + 1))
//!         .execute(ctx.conn())?;
//!     qty(ctx, id)
//! }
//!
//! # fn main() -> Result<(), diesel_facade::Error> {
//! let db = Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
//! let mut ctx = RequestContext { db };
//! diesel_facade::write(&mut ctx, |ctx| {
//!     diesel::sql_query("CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER NOT NULL)")
//!         .execute(ctx.conn())?;
//!     diesel::sql_query("INSERT INTO items VALUES (1, 0)").execute(ctx.conn())
//! })?;
//! assert_eq!(restock(&mut ctx, 1)?, 1);
//! # Ok(()) }
//! ```
//!
//! * **Read-only by construction.** In a `#[reader]`, `ctx.conn()` is a
//!   [`ReadOnlyConnection`], on which `.execute(..)`, `... RETURNING` and
//!   `.for_update()` do not compile; calling a `#[writer]` from a reader
//!   does not compile; and the database runs the transaction READ ONLY too.
//! * **Nesting is checked by types**: see the table in [`scope`](crate::Scope)
//!   and `docs/guide.md`.
//! * **Retries at the outermost transaction only**: `#[writer(retry)]`.
//! * **A lock that works on Galera**: [`WriterScope::lock`].
//! * **Replica routing**: `#[reader(replica)]`.
//!
//! ## Why diesel's third-party-backend feature is enabled
//!
//! diesel 2.3 keeps `LoadQuery::internal_load` private unless the feature
//! `i-implement-a-third-party-backend-and-opt-into-breaking-changes` is on.
//! [`ReadOnlyConnection`] needs it to forward `SELECT`s to the real
//! connection while not being a diesel `Connection` itself (that is what
//! makes writes fail to compile). The feature allows breaking changes in
//! diesel's minor releases, so this crate pins diesel to `~2.3`.
//!
//! ## Features
//!
//! `sqlite` (default), `postgres`, `mysql`: one per backend. `tokio`:
//! `run_blocking`, to call `#[reader]`/`#[writer]` functions from async
//! code (see `examples/axum-service`). `testing`: `testing::TestDatabase`,
//! throw-away databases and transactional test facades (`docs/testing.md`).

#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly) labels feature-gated items with their feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
// With no backend feature, nothing implements `SupportedConnection`, and
// the runtime, reached only through the tables `transaction::runtime`
// builds for each enabled backend, is never used: it still builds, without
// a warning per item.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports, unused_mut)
)]

mod backend;
#[cfg(feature = "tokio")]
mod blocking;
mod builder;
mod cells;
mod classify;
mod config;
mod connection;
mod context;
mod entry;
mod error;
mod facade;
mod joins;
mod lock;
mod pool;
mod read_only;
mod redact;
mod replica;
mod routing;
pub mod schema;
mod scope;
mod stats;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod transaction;

pub use backend::{ConcurrentWriters, SupportedConnection, GALERA_DEFAULT_WAIT_TIMEOUT};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use blocking::run_blocking;
pub use builder::FacadeBuilder;
pub use cells::{CellMap, CellOutcome, Retarget, TargetCell};
pub use config::FacadeConfig;
pub use connection::InstrumentationFactory;
pub use context::{database_id, Context, Database, Main, Named, TransactionContext};
pub use diesel_facade_macros::{reader, writer, TransactionContext};
pub use entry::{read, read_in, read_replica, read_replica_in, write, write_in};
pub use error::{Error, ErrorKind};
pub use facade::Facade;
pub use lock::MAX_LOCK_NAME_CHARS;
pub use read_only::{ReadOnlyConnection, ReadOnlyQuery};
pub use replica::ReadPosition;
pub use scope::{
    IndependentAccess, ReadAccess, ReaderScope, ReplicaReadAccess, ReplicaScope, Scope,
    WriteAccess, WriterScope,
};
pub use stats::FacadeStats;

#[doc(hidden)]
#[path = "macro_abi.rs"]
pub mod __private;
