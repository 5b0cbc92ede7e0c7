//! What a `#[writer]` body can do that a reader's cannot: the read-write
//! connection, commit hooks and locks (on a reader's scope the same
//! methods are compile errors that say so: `WriterOnly` in `scope`).

use std::time::Duration;

use super::WriterScope;
use crate::context::{Database, TransactionContext};
use crate::error::Error;
use crate::lock;

impl<T: TransactionContext, D: Database<T>> WriterScope<'_, T, D> {
    /// The connection, inside the open read-write transaction.
    ///
    /// ```
    /// use diesel::prelude::*;
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     let conn: &mut diesel::SqliteConnection = ctx.conn();
    ///     diesel::sql_query("CREATE TABLE t (x INTEGER)").execute(conn)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn conn(&mut self) -> &mut D::Connection {
        self.tx.connection()
    }

    /// Run `hook` after the outermost transaction commits (and its connection
    /// is back in the pool). Never runs if it rolls back; a hook registered
    /// inside a `#[writer(savepoint)]` that rolls back is dropped.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// let sent = Arc::new(AtomicBool::new(false));
    /// let flag = sent.clone();
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     ctx.on_commit(move || flag.store(true, Ordering::SeqCst));
    ///     Ok::<_, diesel_facade::Error>(())
    /// })?;
    /// assert!(sent.load(Ordering::SeqCst));
    /// # Ok(()) }
    /// ```
    pub fn on_commit(&mut self, hook: impl FnOnce() + 'static) {
        self.tx.on_commit.push(Box::new(hook));
    }

    /// Take the exclusive lock `name` by upserting its row in the `locks`
    /// table; held until the outermost transaction ends. A name is 1 to 50
    /// characters, without control characters or whitespace at either end;
    /// anything else is `ErrorKind::InvalidLockName`, before any SQL.
    /// Waits as long as the server's lock wait allows. Inside a
    /// `#[writer(savepoint)]` only a lock the transaction already holds may
    /// be taken (it returns at once); any other name is
    /// [`ErrorKind::LockInSavepoint`](crate::ErrorKind::LockInSavepoint),
    /// since the savepoint's rollback would release it early.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// db.run_migrations()?;
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     ctx.lock("nightly-report")?;
    ///     ctx.lock("nightly-report")?; // taking it again is fine
    ///     Ok::<_, diesel_facade::Error>(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn lock(&mut self, name: &str) -> Result<(), Error> {
        self.take_lock(name, None)
    }

    fn take_lock(&mut self, name: &str, timeout: Option<Duration>) -> Result<(), Error> {
        if self.tx.check_lock_level(name)? {
            return Ok(()); // already held until the outermost transaction ends
        }
        lock::lock(&mut self.tx.conn, name, timeout)?;
        self.tx.note_lock(name);
        Ok(())
    }

    /// Like [`lock`](Self::lock), but fail with
    /// [`ErrorKind::LockTimeout`](crate::ErrorKind::LockTimeout) after
    /// `timeout` (MySQL/MariaDB round it up to whole seconds).
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// # db.run_migrations()?;
    /// diesel_facade::write(&mut db.context(), |ctx| {
    ///     ctx.lock_timeout("import", std::time::Duration::from_secs(2))
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn lock_timeout(&mut self, name: &str, timeout: Duration) -> Result<(), Error> {
        self.take_lock(name, Some(timeout))
    }

    /// Take the lock if no other transaction holds it, without waiting:
    /// `Ok(false)` if it is taken. The transaction stays usable either way.
    ///
    /// ```
    /// # fn main() -> Result<(), diesel_facade::Error> {
    /// # let db = diesel_facade::Facade::<diesel::SqliteConnection>::builder().writer(":memory:").build()?;
    /// # db.run_migrations()?;
    /// let took = diesel_facade::write(&mut db.context(), |ctx| ctx.try_lock("cleanup"))?;
    /// assert!(took);
    /// # Ok(()) }
    /// ```
    pub fn try_lock(&mut self, name: &str) -> Result<bool, Error> {
        if self.tx.check_lock_level(name)? {
            return Ok(true);
        }
        let took = lock::try_lock(&mut self.tx.conn, name)?;
        if took {
            self.tx.note_lock(name);
        }
        Ok(took)
    }
}
