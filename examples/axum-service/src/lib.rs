//! An axum service on diesel-facade, written to be copied.
//!
//! - [`context`]: a middleware builds a [`RequestContext`] per request
//!   (request id, user, the facade, the read position from the `db_pos`
//!   cookie) and sets the cookie again from where the context ended.
//! - [`store`]: the data-access functions, plain `#[reader]`/`#[writer]`
//!   functions that know nothing about HTTP.
//! - [`routes`]: handlers call them through [`diesel_facade::run_blocking`],
//!   which runs them on tokio's blocking pool and hands the context back.
//! - [`error`]: database errors become HTTP statuses without leaking SQL,
//!   values or URLs.
//!
//! `main.rs` reads `DATABASE_URL` and `DATABASE_REPLICA_URLS`
//! ([`Facade::from_env`]), runs [`migrate`], and [`serve`]s [`router`] until
//! SIGINT or SIGTERM.

use std::future::Future;

use diesel::PgConnection;
use diesel_facade::Facade;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub mod context;
pub mod error;
pub mod routes;
pub mod store;

pub use context::RequestContext;
pub use error::ApiError;
pub use routes::router;

/// This service's own migrations (`migrations/`), compiled in.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The lock that keeps two instances starting at once from running the
/// same migrations twice.
const MIGRATION_LOCK: &str = "axum-service migrations";

/// Bring the database up to date: diesel-facade's own migrations (the
/// `locks` table), then this service's, in one transaction under a lock, so
/// instances that start together run them once. Blocking: call it before
/// serving, or on the blocking pool.
pub fn migrate(db: &Facade<PgConnection>) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    db.run_migrations()?;
    diesel_facade::write(&mut db.context(), |ctx| {
        ctx.lock(MIGRATION_LOCK)?;
        let applied = ctx.conn().run_pending_migrations(MIGRATIONS)?;
        for version in &applied {
            tracing::info!(%version, "applied migration");
        }
        Ok(())
    })
}

/// Serve `app` on `listener` until `shutdown` completes; then stop
/// accepting connections and return once the requests in flight have
/// been answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
