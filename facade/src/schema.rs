//! The diesel schema of the tables diesel-facade's migrations create.
//!
//! The same definition fits every backend: the migrations make `id` a
//! `VARCHAR(50)` and `ts` a `TIMESTAMP` (`DATETIME` on MySQL/MariaDB, which
//! diesel reads as the same Rust type). CI checks it against
//! `diesel print-schema` on each backend.
//!
//! ```
//! use diesel::prelude::*;
//! use diesel_facade::schema::locks;
//!
//! # fn main() -> Result<(), diesel_facade::Error> {
//! let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
//! db.run_migrations()?;
//! let names: Vec<String> = diesel_facade::write(&mut db.context(), |ctx| {
//!     ctx.lock("report")?;
//!     Ok::<_, diesel_facade::Error>(locks::table.select(locks::id).load(ctx.conn())?)
//! })?;
//! assert_eq!(names, ["report"]);
//! # Ok(()) }
//! ```

diesel::table! {
    /// One row per lock name ever taken; `ts` is when it was last taken
    /// (UTC, by the database clock).
    locks (id) {
        /// The lock name, 1 to 50 characters.
        #[max_length = 50]
        id -> Varchar,
        /// When the lock was last taken.
        ts -> Timestamp,
    }
}
