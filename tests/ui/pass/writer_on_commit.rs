//! `ctx.on_commit(FnOnce)` in a writer: the hook may own data (`'static`).
use diesel::prelude::*;
use diesel::SqliteConnection;
use diesel_facade::{writer, Facade, TransactionContext};

#[derive(TransactionContext)]
struct Ctx {
    #[facade]
    db: Facade<SqliteConnection>,
}

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[writer]
fn notify(ctx: &mut Ctx, sent: Arc<AtomicBool>) -> QueryResult<()> {
    let message = String::from("committed");
    ctx.on_commit(move || {
        sent.store(true, Ordering::SeqCst);
        drop(message);
    });
    ctx.on_commit(|| ());
    Ok(())
}

#[writer(retry)]
fn notify_retried(ctx: &mut Ctx, sent: Arc<AtomicBool>) -> QueryResult<()> {
    let sent = sent.clone(); // a retried body is FnMut: clone what a hook keeps
    ctx.on_commit(move || sent.store(true, Ordering::SeqCst));
    Ok(())
}

fn main() {}
