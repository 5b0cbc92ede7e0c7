//! What diesel-facade tells a tracing subscriber: one span per outermost
//! transaction with its mode, backend, server, joins and outcome, and a
//! `warn` event for every retry with the attempt number and the error.

use std::io::Write;
use std::sync::{Arc, Barrier, Mutex, OnceLock};

use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_facade::{reader, writer, Facade, TransactionContext};
use diesel_facade_tests::schema::items;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::fmt::MakeWriter;

/// Everything the subscriber wrote, for all tests of this binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("capture").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing_subscriber::filter::LevelFilter::DEBUG)
            .with_span_events(FmtSpan::CLOSE)
            .init();
        captured
    })
}

fn lines_with(needle: &str) -> Vec<String> {
    let bytes = captured().0.lock().expect("capture").clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[derive(TransactionContext)]
struct Sqlite {
    #[facade]
    db: Facade<SqliteConnection>,
}

#[reader]
fn count(ctx: &mut Sqlite) -> QueryResult<i64> {
    items::table.count().get_result(ctx.conn())
}

#[writer]
fn add_and_count(ctx: &mut Sqlite, id: i32) -> QueryResult<i64> {
    diesel::insert_into(items::table)
        .values((items::id.eq(id), items::name.eq("traced"), items::qty.eq(0)))
        .execute(ctx.conn())?;
    count(ctx)?;
    count(ctx)
}

#[test]
fn each_outermost_transaction_is_one_span_with_its_outcome() {
    captured();
    let db = diesel_facade_tests::facade::<SqliteConnection>("traced", |b| b);
    let mut ctx = Sqlite { db };
    add_and_count(&mut ctx, 4242).unwrap();
    assert!(add_and_count(&mut ctx, 4242).is_err(), "duplicate key");

    let closed = lines_with("diesel_facade.transaction");
    let committed = closed
        .iter()
        .find(|l| l.contains("joins=2") && l.contains("outcome=\"committed\""))
        .unwrap_or_else(|| panic!("no committed writer span with 2 joins: {closed:#?}"));
    assert!(committed.contains("mode=Write"), "{committed}");
    assert!(committed.contains("backend=\"sqlite\""), "{committed}");
    assert!(committed.contains("server=\"primary\""), "{committed}");
    assert!(committed.contains("duration_us="), "{committed}");
    assert!(
        closed.iter().any(|l| l.contains("outcome=\"rolled back\"")),
        "the failed writer's span says it rolled back: {closed:#?}"
    );
}

#[derive(TransactionContext)]
struct Pg {
    #[facade]
    db: Facade<PgConnection>,
}

#[writer(retry = 10)]
fn take_both(
    ctx: &mut Pg,
    first: &str,
    second: &str,
    barrier: &Barrier,
    meetings: &Mutex<u32>,
) -> Result<(), diesel_facade::Error> {
    ctx.lock(first)?;
    let meet = {
        let mut n = meetings.lock().expect("meetings");
        *n += 1;
        *n <= 2
    };
    if meet {
        barrier.wait();
    }
    ctx.lock(second)
}

#[test]
#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]
fn every_retry_is_a_warning_with_its_attempt_and_error() {
    captured();
    let db = diesel_facade_tests::facade::<PgConnection>("traced_retry", |b| b);
    let barrier = Barrier::new(2);
    let meetings = Mutex::new(0);
    std::thread::scope(|s| {
        for (a, b) in [("A", "B"), ("B", "A")] {
            let db = db.clone();
            let (barrier, meetings) = (&barrier, &meetings);
            s.spawn(move || take_both(&mut Pg { db }, a, b, barrier, meetings).unwrap());
        }
    });
    assert!(db.stats().retries >= 1);
    let retries = lines_with("retrying transaction");
    let line = retries
        .iter()
        .find(|l| l.contains("error_kind=Deadlock"))
        .unwrap_or_else(|| panic!("no deadlock retry event: {retries:#?}"));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("attempt=2"), "{line}");
    assert!(
        line.contains("deadlock detected"),
        "the server's error: {line}"
    );
}

#[derive(TransactionContext)]
struct TwoSqlite {
    #[facade]
    main: Facade<SqliteConnection>,
    #[facade(api)]
    api: Facade<SqliteConnection>,
}

#[writer]
fn add_main(ctx: &mut TwoSqlite, id: i32) -> QueryResult<usize> {
    diesel::insert_into(items::table)
        .values((items::id.eq(id), items::name.eq("main"), items::qty.eq(0)))
        .execute(ctx.conn())
}

#[writer(db = api)]
fn api_then_main(ctx: &mut TwoSqlite) -> QueryResult<()> {
    add_main(ctx, 7)?; // begins main's transaction; its COMMIT waits for this call
    tracing::info!("back in the api writer, marker-7f3a");
    Ok(())
}

/// A transaction that began inside another database's and waits for its
/// COMMIT is not the current span meanwhile: what the outermost call does
/// next is recorded in its own transaction's span only. Both spans close
/// committed.
#[test]
fn a_transaction_waiting_for_another_databases_call_is_not_the_current_span() {
    captured();
    let mut ctx = TwoSqlite {
        main: diesel_facade_tests::facade::<SqliteConnection>("traced_main", |b| b),
        api: diesel_facade_tests::facade::<SqliteConnection>("traced_api", |b| b),
    };
    api_then_main(&mut ctx).unwrap();
    let marker = lines_with("marker-7f3a");
    assert_eq!(marker.len(), 1, "{marker:#?}");
    assert_eq!(
        marker[0].matches("diesel_facade.transaction").count(),
        1,
        "only the api transaction's span is current: {}",
        marker[0]
    );
    assert_eq!(ctx.main.stats().commits, 1);
    assert_eq!(ctx.api.stats().commits, 1);
}
