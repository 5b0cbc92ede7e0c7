//! Cell scenarios, run on each server backend by `tests/tests/cells.rs`:
//! targeting a context at cell databases, a cell map whose cell is down at
//! start-up, and scatter-gather with a dead and a slow cell.
//!
//! Each cell is a database of its own on the backend's test server
//! (`<test>_cell<N>`), with the suites' schema and an item 1 whose `qty`
//! tells the cells apart.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use diesel_facade::{
    reader, writer, CellMap, CellOutcome, ErrorKind, Facade, FacadeConfig, SupportedConnection,
    TargetCell, TransactionContext,
};

use crate::proxy::{Proxied, Proxy};
use crate::scenarios::TypedQueries;
use crate::{server_url, Item, TestBackend};

/// A request context of the application's own, as scatter-gather needs it:
/// `Clone`, with a field besides its facade.
#[derive(TransactionContext)]
pub struct CellReq<C: SupportedConnection> {
    pub request_id: String,
    #[facade]
    pub db: Facade<C>,
}

// By hand: `#[derive(Clone)]` would ask for `C: Clone`.
impl<C: SupportedConnection> Clone for CellReq<C> {
    fn clone(&self) -> Self {
        CellReq {
            request_id: self.request_id.clone(),
            db: self.db.clone(),
        }
    }
}

#[reader]
fn get_item<C: TypedQueries>(ctx: &mut CellReq<C>, id: i32) -> QueryResult<Item> {
    let _ = &ctx.request_id;
    C::get_item(ctx.conn(), id)
}

#[writer]
fn add_item<C: TypedQueries>(
    ctx: &mut CellReq<C>,
    id: i32,
    name: &str,
    qty: i32,
) -> QueryResult<Item> {
    C::insert_item(ctx.conn(), id, name.to_owned(), qty)?;
    get_item(ctx, id) // joins: reads the row it just wrote
}

/// What a cell backend needs besides the suites' own: a way to make a
/// plain read of `items` wait, and to see that wait on the server.
pub trait CellBackend: TypedQueries + Proxied {
    /// SQL, run on its own connection to a cell, after which a read-only
    /// transaction's `SELECT` from `items` waits until [`Self::RELEASE`].
    const HOLD: &'static str;
    /// Ends [`Self::HOLD`].
    const RELEASE: &'static str;
    /// How many sessions of the current database wait for a table lock,
    /// as `n`.
    const WAITING: &'static str;
    /// This session's server-side statement time limit in milliseconds
    /// (0: none), as `n`.
    const STATEMENT_LIMIT: &'static str;
}

impl CellBackend for diesel::PgConnection {
    // A READ ONLY transaction's plain SELECT does not wait for row locks;
    // ACCESS EXCLUSIVE conflicts with its ACCESS SHARE.
    const HOLD: &'static str = "BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE";
    const RELEASE: &'static str = "COMMIT";
    const WAITING: &'static str = "SELECT COUNT(*)::bigint AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'";
    const STATEMENT_LIMIT: &'static str = "SELECT (EXTRACT(EPOCH FROM \
         current_setting('statement_timeout')::interval) * 1000)::bigint AS n";
}

impl CellBackend for diesel::MysqlConnection {
    // InnoDB's consistent reads take no row locks; a WRITE table lock makes
    // every other session's read of the table wait (for `lock_wait_timeout`,
    // a day by default).
    const HOLD: &'static str = "LOCK TABLES items WRITE";
    const RELEASE: &'static str = "UNLOCK TABLES";
    const WAITING: &'static str = "SELECT CAST(COUNT(*) AS SIGNED) AS n \
         FROM information_schema.PROCESSLIST \
         WHERE DB = DATABASE() AND STATE LIKE 'Waiting for table metadata lock%'";
    const STATEMENT_LIMIT: &'static str =
        "SELECT CAST(@@SESSION.max_statement_time * 1000 AS SIGNED) AS n";
}

/// A fresh cell database `<test>_cell<n>` with the schema and item 1 of
/// quantity `qty`; its URL.
fn cell_database<C: TestBackend>(test: &str, n: usize, qty: i32) -> String {
    let url = C::create_database(&server_url::<C>(), &format!("{test}_cell{n}"));
    let mut conn = C::establish(&url).expect("connect to the cell database");
    conn.batch_execute(C::SCHEMA).expect("create the schema");
    conn.batch_execute(&format!(
        "INSERT INTO items (id, name, qty) VALUES (1, 'cell{n}', {qty})"
    ))
    .expect("seed the cell");
    url
}

fn config(url: String) -> FacadeConfig {
    FacadeConfig {
        connection: url,
        max_pool_size: Some(4),
        // So that a dead cell's pool gives up within a scatter-gather's timeout.
        pool_timeout: Some(1.0),
        ..FacadeConfig::default()
    }
}

/// Three cells and a main database: rows written with the context targeted
/// at a cell land in that cell only, the context comes back to main after
/// each `target`, nested targets stack, and a reader joined inside a
/// targeted writer reads the cell's uncommitted row.
pub fn target_moves_reads_and_writes_to_each_cell<C: CellBackend>() {
    let test = "target_moves";
    let main = crate::facade::<C>(test, |b| b);
    let cells = CellMap::<C>::from_configs((0..3).map(|n| {
        (
            format!("cell{n}"),
            config(cell_database::<C>(test, n, 10 * n as i32)),
        )
    }))
    .expect("build the cells");
    let mut ctx = CellReq {
        request_id: "r1".into(),
        db: main.clone(),
    };
    for (n, id) in ["cell0", "cell1", "cell2"].into_iter().enumerate() {
        let cell = cells.get(id).unwrap();
        let written = ctx
            .target(cell, |ctx| {
                add_item(ctx, 2, &format!("new in {id}"), n as i32)
            })
            .expect("write in the cell");
        assert_eq!(written.name, format!("new in {id}"));
        assert_eq!(ctx.facade().writer_url(), main.writer_url());
    }
    for (n, id) in ["cell0", "cell1", "cell2"].into_iter().enumerate() {
        let (seed, new) = ctx
            .target(cells.get(id).unwrap(), |ctx| {
                Ok::<_, diesel::result::Error>((get_item(ctx, 1)?, get_item(ctx, 2)?))
            })
            .expect("read in the cell");
        assert_eq!((seed.name, seed.qty), (format!("cell{n}"), 10 * n as i32));
        assert_eq!((new.name, new.qty), (format!("new in {id}"), n as i32));
    }
    // Main has neither row; a nested target reads cell2 from inside cell0.
    assert_eq!(
        get_item(&mut ctx, 2).unwrap_err(),
        diesel::result::Error::NotFound
    );
    let nested = ctx.target(cells.get("cell0").unwrap(), |ctx| {
        let inner = ctx.target(cells.get("cell2").unwrap(), |ctx| get_item(ctx, 1));
        (inner.map(|i| i.qty), get_item(ctx, 1).map(|i| i.qty))
    });
    assert_eq!(nested, (Ok(20), Ok(0)));
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    listener.local_addr().unwrap().port()
}

/// A cell whose server does not answer fails the map's build, naming the
/// cell and not its password: `Facade::build` connects once to the writer.
pub fn a_cell_down_at_start_up_fails_the_map_by_name<C: CellBackend>() {
    let test = "cell_down";
    let good = cell_database::<C>(test, 0, 1);
    let mut down = url::Url::parse(&good).unwrap();
    down.set_port(Some(closed_port())).unwrap();
    down.set_password(Some("s3cret-cell-pw")).unwrap();
    let err = CellMap::<C>::from_configs([("up", config(good)), ("down", config(down.into()))])
        .expect_err("a cell is down");
    assert!(err.message().starts_with("cell `down`: "), "{err}");
    assert!(!err.to_string().contains("s3cret-cell-pw"), "{err}");
    assert!(!format!("{err:?}").contains("s3cret-cell-pw"), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Disconnected, "{err}");
}

/// What one scatter-gather of `get_item(1)` returned, and how long it took.
type Gathered = (
    std::collections::BTreeMap<String, CellOutcome<Item, diesel_facade::Error>>,
    Duration,
);

fn gather<C: CellBackend>(cells: &CellMap<C>, ctx: &CellReq<C>, timeout: Duration) -> Gathered {
    let started = Instant::now();
    let outcomes = cells.scatter_gather(ctx, timeout, |ctx| {
        get_item(ctx, 1).map_err(diesel_facade::Error::from)
    });
    (outcomes, started.elapsed())
}

/// How many sessions on `url`'s database wait for a table lock.
fn waiting<C: CellBackend>(url: &str) -> i64 {
    let mut conn = C::establish(url).expect("connect to watch the cell");
    C::query_n(&mut conn, C::WAITING).expect("count the waiting sessions")
}

/// Four cells: two healthy, one whose server is gone (its connections cut
/// and its port closed, after it had answered), one whose `items` table is
/// locked by another session. Scatter-gather returns by the timeout (plus a
/// margin) with the healthy cells' exact values, an error for the dead one
/// and `TimedOut` for the slow one; the slow cell's query is then
/// cancelled by its server, and once the lock is gone the cell answers
/// again.
pub fn scatter_gather_returns_by_the_timeout_despite_a_dead_and_a_slow_cell<C: CellBackend>() {
    let test = "scatter";
    let urls: Vec<String> = (0..4)
        .map(|n| cell_database::<C>(test, n, 100 + n as i32))
        .collect();
    let proxy = Proxy::start(C::PROTOCOL, &urls[3]).expect("start the proxy");
    let cells = CellMap::<C>::from_configs([
        ("a", config(urls[0].clone())),
        ("b", config(urls[1].clone())),
        ("slow", config(urls[2].clone())),
        ("dead", config(C::through(&urls[3], proxy.addr()))),
    ])
    .expect("build the cells");
    let ctx = CellReq {
        request_id: "r1".into(),
        db: cells.get("a").unwrap().clone(),
    };
    let timeout = Duration::from_secs(3);

    // All four answer while everything is up.
    let (all, _) = gather(&cells, &ctx, timeout);
    let qty = |o: &CellOutcome<Item, _>| o.value().map(|item| item.qty);
    let expect = [("a", 100), ("b", 101), ("dead", 103), ("slow", 102)];
    for (id, q) in expect {
        assert_eq!(qty(&all[id]), Some(q), "{id}: {:?}", all[id]);
    }

    // Kill the dead cell's "server" and lock the slow cell's table.
    drop(proxy);
    let mut holder = C::establish(&urls[2]).expect("connect the lock holder");
    holder.batch_execute(C::HOLD).expect("lock the table");

    // Meanwhile, a watcher sees the slow cell's read wait for the lock.
    let watched = urls[2].clone();
    let watcher = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(2);
        let mut most = 0;
        while Instant::now() < until {
            most = most.max(waiting::<C>(&watched));
            std::thread::sleep(Duration::from_millis(50));
        }
        most
    });
    let (out, elapsed) = gather(&cells, &ctx, timeout);
    assert_eq!(watcher.join().unwrap(), 1, "the slow cell's read waited");
    println!(
        "cells {}: scatter-gather over 4 cells (1 dead, 1 slow), {timeout:?} timeout: returned in {elapsed:?}",
        C::NAME
    );
    assert!(
        elapsed < timeout + Duration::from_secs(2),
        "took {elapsed:?}"
    );
    assert_eq!(qty(&out["a"]), Some(100), "{:?}", out["a"]);
    assert_eq!(qty(&out["b"]), Some(101), "{:?}", out["b"]);
    assert!(out["slow"].is_timed_out(), "{:?}", out["slow"]);
    // Timed out means the call waited the whole timeout.
    assert!(elapsed >= timeout, "took {elapsed:?}");
    let dead = out["dead"]
        .error()
        .unwrap_or_else(|| panic!("dead: {:?}", out["dead"]));
    assert_eq!(dead.kind(), ErrorKind::Disconnected, "{dead}");

    // The slow cell's query does not wait for the lock past the deadline:
    // its server cancels it, while the lock is still held.
    let cancelled_by = Instant::now() + Duration::from_secs(5);
    while waiting::<C>(&urls[2]) > 0 {
        assert!(
            Instant::now() < cancelled_by,
            "the slow cell's query still waits"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    holder.batch_execute(C::RELEASE).expect("release the lock");
    let (again, elapsed) = gather(&cells, &ctx, timeout);
    assert_eq!(qty(&again["slow"]), Some(102), "{:?}", again["slow"]);
    assert_eq!(qty(&again["a"]), Some(100));
    assert!(again["dead"].error().is_some(), "{:?}", again["dead"]);
    println!(
        "cells {}: all but the dead cell answering: {elapsed:?}",
        C::NAME
    );
    assert!(elapsed < timeout, "took {elapsed:?}");
}

/// The server-side statement limit of a scatter-gather read is the time
/// left until its deadline (plus a moment), and it is gone from the
/// connection afterwards (MariaDB's is a session setting), after a read
/// that answered and after one the server cancelled.
pub fn scatter_gather_bounds_statements_only_inside_its_reads<C: CellBackend>() {
    let test = "bound";
    let url = cell_database::<C>(test, 0, 7);
    // One connection, so every read below uses the one the reads used.
    let cells = CellMap::<C>::from_configs([(
        "a",
        FacadeConfig {
            max_pool_size: Some(1),
            ..config(url.clone())
        },
    )])
    .expect("build the cell");
    let ctx = CellReq {
        request_id: "r1".into(),
        db: cells.get("a").unwrap().clone(),
    };
    let limit_after = || {
        diesel_facade::read(&mut cells.get("a").unwrap().context(), |ctx| {
            C::query_n(ctx.conn().database_enforced(), C::STATEMENT_LIMIT)
        })
        .expect("read the limit")
    };
    assert_eq!(limit_after(), 0);

    let out = cells.scatter_gather(&ctx, Duration::from_secs(5), |ctx| {
        C::query_n(ctx.conn().database_enforced(), C::STATEMENT_LIMIT)
    });
    let inside = *out["a"].value().unwrap_or_else(|| panic!("{:?}", out["a"]));
    assert!(
        (4_000..=5_100).contains(&inside),
        "limit inside: {inside} ms"
    );
    assert_eq!(limit_after(), 0);

    // A read the server cancels: the limit is lifted after it too.
    let mut holder = C::establish(&url).expect("connect the lock holder");
    holder.batch_execute(C::HOLD).expect("lock the table");
    let out = cells.scatter_gather(&ctx, Duration::from_millis(500), |ctx| get_item(ctx, 1));
    assert!(out["a"].is_timed_out(), "{:?}", out["a"]);
    let cancelled_by = Instant::now() + Duration::from_secs(5);
    while waiting::<C>(&url) > 0 {
        assert!(Instant::now() < cancelled_by, "the read still waits");
        std::thread::sleep(Duration::from_millis(50));
    }
    holder.batch_execute(C::RELEASE).expect("release the lock");
    assert_eq!(limit_after(), 0);

    // And after a read that panicked (the panic reaches the caller).
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cells.scatter_gather(&ctx, Duration::from_secs(5), |ctx| -> QueryResult<i64> {
            let _ = C::query_n(ctx.conn().database_enforced(), C::STATEMENT_LIMIT)?;
            panic!("a bug in the read")
        })
    }));
    assert!(caught.is_err());
    assert_eq!(limit_after(), 0);
}

/// PostgreSQL: a session `statement_timeout` shorter than the time left is
/// kept; a longer one is lowered to the time left.
pub fn pg_scatter_gather_keeps_a_shorter_statement_timeout() {
    type C = diesel::PgConnection;
    for (session_ms, expected) in [(1_500, 1_500..=1_500), (60_000, 4_000..=5_100)] {
        let mut url = url::Url::parse(&cell_database::<C>("pg_shorter", session_ms, 1)).unwrap();
        // libpq decodes `%20`, not `+`.
        url.set_query(Some(&format!(
            "options=-c%20statement_timeout%3D{session_ms}"
        )));
        let cells = CellMap::<C>::from_configs([("a", config(url.into()))]).unwrap();
        let ctx = CellReq {
            request_id: "r1".into(),
            db: cells.get("a").unwrap().clone(),
        };
        let out = cells.scatter_gather(&ctx, Duration::from_secs(5), |ctx| {
            C::query_n(ctx.conn().database_enforced(), C::STATEMENT_LIMIT)
        });
        let inside = *out["a"].value().unwrap_or_else(|| panic!("{:?}", out["a"]));
        assert!(
            expected.contains(&inside),
            "session {session_ms} ms: {inside} ms inside"
        );
    }
}

/// A scatter-gather over a transactional test facade (whose outermost
/// transactions are savepoints of the test transaction) leaves no
/// statement bound behind: the rest of the test runs with the limit it had
/// before. On PostgreSQL the transaction-local bound outlived the reader's
/// `RELEASE SAVEPOINT` and cancelled the test's later statements.
pub fn scatter_gather_on_a_transactional_facade_leaves_no_bound<C: CellBackend>() {
    let db = crate::test_database::<C>("sg_test_tx").create().unwrap();
    let facade = db.transactional_facade().unwrap();
    let mut cells = CellMap::<C>::new();
    cells.insert("a", facade.clone()).unwrap();
    let mut ctx = CellReq {
        request_id: "r1".into(),
        db: facade,
    };
    let limit = |ctx: &mut CellReq<C>| -> i64 {
        diesel_facade::read(ctx, |ctx| {
            C::query_n(ctx.conn().database_enforced(), C::STATEMENT_LIMIT)
        })
        .unwrap()
    };
    let before = limit(&mut ctx);
    let out = cells.scatter_gather(&ctx, Duration::from_secs(2), |ctx| {
        C::query_n(ctx.conn().database_enforced(), C::STATEMENT_LIMIT)
    });
    let inside = *out["a"].value().unwrap_or_else(|| panic!("{:?}", out["a"]));
    assert!((1..=2_100).contains(&inside), "{inside} ms inside");
    assert_eq!(
        limit(&mut ctx),
        before,
        "the bound outlived the scatter-gather"
    );
}
