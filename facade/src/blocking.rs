//! The bridge from async code to `#[reader]`/`#[writer]` functions.
//!
//! diesel is synchronous, so every call that touches the database blocks its
//! thread: on an async runtime it belongs on the blocking pool, not on a
//! worker that other requests share. [`run_blocking`] moves the request
//! context to the blocking pool, runs the call there and hands the context
//! back, so the context (and the read position it carries) stays the
//! caller's across calls.
//!
//! Invariants: the closure always runs to its end once started, even if the
//! awaiting future is dropped (a client that disconnects cannot leave a
//! transaction half-run; its outcome is whatever the closure returned), and
//! a panic in it reaches the awaiting task as the same panic, never as a
//! future that does not complete.

use std::panic;

/// Run `f` with the context on tokio's blocking pool and hand both back.
///
/// `f` typically calls `#[reader]`/`#[writer]` functions, which check a
/// connection out of the pool, run their transaction and commit or roll
/// back before `f` returns. The async task awaits the result without
/// blocking its worker thread.
///
/// - **Panics** in `f` are re-raised in the awaiting task with their
///   original payload (the transaction has already rolled back by then; see
///   the guide's nesting rules). Catch them where you catch panics of
///   handlers (a web framework's catch-panic layer, say).
/// - **Cancellation**: dropping the returned future does not stop `f`. It
///   runs to its end on the blocking pool (its transaction commits or rolls
///   back as `f` decides), and the context is then dropped with the result.
/// - **Tracing**: `f` runs inside the caller's current span, so the
///   facade's `diesel_facade.transaction` spans nest under, say, the
///   request's span.
///
/// It must be called from within a tokio runtime (like
/// [`tokio::task::spawn_blocking`], which it uses). If the runtime shuts
/// down before `f` starts, `f` never runs and this panics saying so.
///
/// ```
/// use diesel::prelude::*;
/// use diesel::SqliteConnection;
/// use diesel_facade::{reader, run_blocking, Facade, TransactionContext};
///
/// #[derive(TransactionContext)]
/// struct RequestContext {
///     request_id: String,
///     #[facade]
///     db: Facade<SqliteConnection>,
/// }
///
/// #[reader]
/// fn answer(ctx: &mut RequestContext) -> QueryResult<i32> {
///     diesel::select(42.into_sql::<diesel::sql_types::Integer>()).get_result(ctx.conn())
/// }
///
/// async fn handler(ctx: RequestContext) -> Result<String, diesel_facade::Error> {
///     let (ctx, answer) = run_blocking(ctx, |ctx| answer(ctx)).await;
///     Ok(format!("{}: {}", ctx.request_id, answer?))
/// }
///
/// # fn main() -> Result<(), diesel_facade::Error> {
/// let db = Facade::<SqliteConnection>::builder().writer(":memory:").build()?;
/// let ctx = RequestContext { request_id: "req-1".into(), db };
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// assert_eq!(runtime.block_on(handler(ctx))?, "req-1: 42");
/// # Ok(()) }
/// ```
pub async fn run_blocking<Ctx, R, F>(ctx: Ctx, f: F) -> (Ctx, R)
where
    Ctx: Send + 'static,
    R: Send + 'static,
    F: FnOnce(&mut Ctx) -> R + Send + 'static,
{
    let span = tracing::Span::current();
    let task = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let mut ctx = ctx;
        let result = f(&mut ctx);
        (ctx, result)
    });
    match task.await {
        Ok(done) => done,
        Err(err) if err.is_panic() => panic::resume_unwind(err.into_panic()),
        // The task is never aborted (this future keeps no handle to it
        // after this point), so the only way to get here is a runtime
        // shutting down before the closure started.
        Err(err) => panic!(
            "diesel_facade::run_blocking: the blocking task did not run (the tokio runtime \
             is shutting down): {err}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    }

    #[test]
    fn hands_the_context_back_with_the_result() {
        let (ctx, len) = runtime().block_on(run_blocking(String::from("ctx"), |ctx| {
            ctx.push('!');
            ctx.len()
        }));
        assert_eq!((ctx.as_str(), len), ("ctx!", 4));
    }

    #[test]
    fn runs_off_the_calling_thread() {
        let caller = std::thread::current().id();
        let (_, ran_on) = runtime().block_on(run_blocking((), |_| std::thread::current().id()));
        assert_ne!(ran_on, caller);
    }

    #[test]
    fn the_closure_runs_in_the_callers_span() {
        let dispatch = tracing::Dispatch::new(tracing_subscriber::fmt().finish());
        let inner = dispatch.clone();
        tracing::dispatcher::with_default(&dispatch, || {
            let request = tracing::info_span!("request");
            let _entered = request.enter();
            let (_, current) = runtime().block_on(run_blocking((), move |_| {
                // The blocking thread has no default subscriber of its own.
                tracing::dispatcher::with_default(&inner, || tracing::Span::current().id())
            }));
            assert_eq!(current, request.id());
            assert!(current.is_some());
        });
    }

    #[test]
    fn a_panic_in_the_closure_resurfaces_with_its_payload() {
        let rt = runtime();
        let caught = panic::catch_unwind(panic::AssertUnwindSafe(|| {
            rt.block_on(run_blocking((), |_| -> () {
                panic!("boom in the closure")
            }))
        }));
        let payload = caught.expect_err("the panic reaches the awaiting task");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in the closure"));
    }

    #[test]
    fn a_dropped_future_does_not_stop_the_closure() {
        let rt = runtime();
        let finished = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let flag = Arc::clone(&finished);
        rt.block_on(async move {
            let call = run_blocking((), move |_| {
                started_tx.send(()).expect("the test waits");
                std::thread::sleep(std::time::Duration::from_millis(50));
                flag.store(true, Ordering::SeqCst);
            });
            // Poll once so the blocking task is spawned, then drop the call.
            let mut call = Box::pin(call);
            std::future::poll_fn(|cx| {
                let _ = call.as_mut().poll(cx);
                std::task::Poll::Ready(())
            })
            .await;
        });
        started_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("the closure started");
        drop(rt); // waits for blocking tasks that are running
        assert!(finished.load(Ordering::SeqCst));
    }
}
