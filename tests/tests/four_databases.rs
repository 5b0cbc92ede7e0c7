//! Four databases on one context (main and `a` on PostgreSQL, `b` on
//! MariaDB, `c` on SQLite), nested in several orders: the deferred COMMITs'
//! order and hooks, transactions joined again and again while others are
//! lent, caught panics at several depths, a COMMIT that fails after others
//! succeeded, retry around it all, and hand-written contexts (one with a
//! lifetime). Each pool has one connection, so a leak shows as a timeout.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

use diesel::{MysqlConnection, PgConnection, QueryResult, SqliteConnection};
use diesel_facade::{reader, writer, ErrorKind, Facade, ReadOnlyConnection, TransactionContext};
use diesel_facade_tests::scenarios::TypedQueries;

#[derive(TransactionContext)]
pub struct Ctx {
    #[facade]
    pub main: Facade<PgConnection>,
    #[facade(a)]
    pub a: Facade<PgConnection>,
    #[facade(b)]
    pub b: Facade<MysqlConnection>,
    #[facade(c)]
    pub c: Facade<SqliteConnection>,
}

fn small<C: diesel_facade_tests::TestBackend>(
    b: diesel_facade::FacadeBuilder<C>,
) -> diesel_facade::FacadeBuilder<C> {
    b.max_pool_size(1).pool_timeout(Duration::from_secs(3))
}

fn setup(test: &str) -> Ctx {
    Ctx {
        main: diesel_facade_tests::facade::<PgConnection>(&format!("{test}_m"), small),
        a: diesel_facade_tests::facade::<PgConnection>(&format!("{test}_a"), small),
        b: diesel_facade_tests::facade::<MysqlConnection>(&format!("{test}_b"), small),
        c: diesel_facade_tests::facade::<SqliteConnection>(&format!("{test}_c"), small),
    }
}

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
fn log(s: &str) {
    LOG.lock().unwrap().push(s.to_owned());
}
fn take_log() -> Vec<String> {
    std::mem::take(&mut *LOG.lock().unwrap())
}
// Tests share LOG: serialize them.
static SERIAL: Mutex<()> = Mutex::new(());
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[writer]
fn ins_m(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    let tag = format!("m{id}");
    ctx.on_commit(move || log(&tag));
    PgConnection::insert_item(ctx.conn(), id, format!("m-{id}"), 1)
}
#[writer(db = a)]
fn ins_a(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    let tag = format!("a{id}");
    ctx.on_commit(move || log(&tag));
    PgConnection::insert_item(ctx.conn(), id, format!("a-{id}"), 1)
}
#[writer(db = b)]
fn ins_b(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    let tag = format!("b{id}");
    ctx.on_commit(move || log(&tag));
    MysqlConnection::insert_item(ctx.conn(), id, format!("b-{id}"), 1)
}
#[writer(db = c)]
fn ins_c(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    let tag = format!("c{id}");
    ctx.on_commit(move || log(&tag));
    SqliteConnection::insert_item(ctx.conn(), id, format!("c-{id}"), 1)
}
#[reader]
fn has_m(ctx: &mut Ctx, id: i32) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<PgConnection> = ctx.conn();
    PgConnection::item_exists(conn, id)
}
#[reader(db = a)]
fn has_a(ctx: &mut Ctx, id: i32) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<PgConnection> = ctx.conn();
    PgConnection::item_exists(conn, id)
}
#[reader(db = b)]
fn has_b(ctx: &mut Ctx, id: i32) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<MysqlConnection> = ctx.conn();
    MysqlConnection::item_exists(conn, id)
}
#[reader(db = c)]
fn has_c(ctx: &mut Ctx, id: i32) -> QueryResult<bool> {
    let conn: &mut ReadOnlyConnection<SqliteConnection> = ctx.conn();
    SqliteConnection::item_exists(conn, id)
}

fn all(ctx: &mut Ctx, id: i32) -> [bool; 4] {
    [
        has_m(ctx, id).unwrap(),
        has_a(ctx, id).unwrap(),
        has_b(ctx, id).unwrap(),
        has_c(ctx, id).unwrap(),
    ]
}

/// Every pool hands out its one connection again (no leak).
fn pools_usable(ctx: &mut Ctx, id: i32) {
    ins_m(ctx, id).unwrap();
    ins_a(ctx, id).unwrap();
    ins_b(ctx, id).unwrap();
    ins_c(ctx, id).unwrap();
    assert_eq!(all(ctx, id), [true; 4]);
    take_log();
}

// ---- 1. three/four databases nested in various orders ----

#[writer(db = b)]
fn b_then_c(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_b(ctx, id)?;
    ins_c(ctx, id)?; // begins c inside b: returns first, deferred first
    Ok(())
}
#[writer(db = a)]
fn a_then_b_then_c(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_a(ctx, id)?;
    b_then_c(ctx, id)?;
    // back into b and c: join the deferred ones
    ins_b(ctx, id + 1)?;
    ins_c(ctx, id + 1)?;
    assert!(has_c(ctx, id)?);
    Ok(())
}
#[writer]
fn m_nest(ctx: &mut Ctx, id: i32, fail: bool) -> QueryResult<()> {
    ins_m(ctx, id)?;
    a_then_b_then_c(ctx, id)?;
    ins_a(ctx, id + 2)?;
    if fail {
        return Err(diesel::result::Error::RollbackTransaction);
    }
    Ok(())
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn nested_four_commit_order_and_hooks() {
    let _g = serial();
    let mut ctx = setup("four_n4");
    take_log();
    let before = [
        ctx.main.stats(),
        ctx.a.stats(),
        ctx.b.stats(),
        ctx.c.stats(),
    ];
    m_nest(&mut ctx, 1, false).unwrap();
    let after = [
        ctx.main.stats(),
        ctx.a.stats(),
        ctx.b.stats(),
        ctx.c.stats(),
    ];
    for i in 0..4 {
        assert_eq!(after[i].transactions - before[i].transactions, 1, "db {i}");
        assert_eq!(after[i].commits - before[i].commits, 1, "db {i}");
    }
    let l = take_log();
    // main first, then deferred in order their calls returned: c, b, a
    assert_eq!(l, ["m1", "c1", "c2", "b1", "b2", "a1", "a3"], "{l:?}");
    assert_eq!(all(&mut ctx, 1), [true; 4]);
    assert_eq!(all(&mut ctx, 2), [false, false, true, true]);
    assert_eq!(all(&mut ctx, 3), [false, true, false, false]);

    // body error after deferred pushed: nothing commits, no hooks
    m_nest(&mut ctx, 10, true).unwrap_err();
    assert!(take_log().is_empty());
    for id in [10, 11, 12] {
        assert_eq!(all(&mut ctx, id), [false; 4], "id {id}");
    }
    pools_usable(&mut ctx, 100);
}

// ---- 2. lend and give back repeatedly, nested lends of two deferred ----

#[writer(db = a)]
fn a_calls_b(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_a(ctx, id)?; // joins deferred a (lent from the root)
    ins_b(ctx, id)?; // joins deferred b (lent from the root while a is lent)
    ins_c(ctx, id)?; // new deferred c, pushed while a is lent
    Ok(())
}
#[writer(db = b)]
fn b_calls_a_calls_b(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_b(ctx, id + 1000)?;
    a_calls_b(ctx, id)?;
    Ok(())
}
#[reader]
fn m_reader_lends(ctx: &mut Ctx, id: i32) -> Result<(), diesel_facade::Error> {
    ins_a(ctx, id)?; // deferred a
    ins_b(ctx, id)?; // deferred b
    for k in 1..5 {
        a_calls_b(ctx, id + 10 * k)?;
        b_calls_a_calls_b(ctx, id + 100 * k)?;
    }
    Ok(())
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn repeated_and_nested_lends() {
    let _g = serial();
    let mut ctx = setup("four_lend");
    take_log();
    let before = [ctx.a.stats(), ctx.b.stats(), ctx.c.stats()];
    m_reader_lends(&mut ctx, 1).unwrap();
    let after = [ctx.a.stats(), ctx.b.stats(), ctx.c.stats()];
    for i in 0..3 {
        assert_eq!(after[i].transactions - before[i].transactions, 1, "db {i}");
        assert_eq!(after[i].commits - before[i].commits, 1, "db {i}");
    }
    assert_eq!(all(&mut ctx, 41), [false, true, true, true]);
    assert_eq!(all(&mut ctx, 1401), [false, false, true, false]);
    pools_usable(&mut ctx, 9000);
}

// ---- 3. panics caught at various depths ----

#[writer(db = a)]
fn a_panics(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_a(ctx, id)?;
    panic!("four: a panics");
}
#[writer(db = b)]
fn b_catches_a_panic(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_b(ctx, id)?;
    let r = catch_unwind(AssertUnwindSafe(|| a_panics(ctx, id + 1)));
    assert!(r.is_err());
    ins_c(ctx, id)?;
    Ok(())
}
#[writer]
fn m_panic_depth(ctx: &mut Ctx, id: i32, depth: u8) -> QueryResult<()> {
    ins_m(ctx, id)?;
    ins_a(ctx, id)?; // deferred a
    match depth {
        0 => {
            // panic in a joined deferred a, caught right here
            let r = catch_unwind(AssertUnwindSafe(|| a_panics(ctx, id + 1)));
            assert!(r.is_err());
        }
        1 => {
            // caught inside b (a new deferred), a is lent through b's frame
            b_catches_a_panic(ctx, id)?;
        }
        2 => {
            // panic inside c begun inside b, caught in main: c's begin_inside unwinds
            let r = catch_unwind(AssertUnwindSafe(|| b_calls_c_panics(ctx, id)));
            assert!(r.is_err());
        }
        _ => {
            // panic in a brand-new (not yet deferred) b, caught here
            let r = catch_unwind(AssertUnwindSafe(|| b_panics_fresh(ctx, id)));
            assert!(r.is_err());
        }
    }
    Ok(())
}
#[writer(db = c)]
fn c_panics(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_c(ctx, id)?;
    panic!("four: c panics");
}
#[writer(db = b)]
fn b_calls_c_panics(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_b(ctx, id)?;
    c_panics(ctx, id)?;
    Ok(())
}
#[writer(db = b)]
fn b_panics_fresh(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_b(ctx, id)?;
    panic!("four: fresh b panics");
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn caught_panics_at_depths() {
    let _g = serial();
    let mut ctx = setup("four_panic");
    take_log();
    for depth in 0..4u8 {
        let id = 100 * (depth as i32 + 1);
        let res = m_panic_depth(&mut ctx, id, depth);
        let l = take_log();
        eprintln!("depth {depth}: {res:?} hooks {l:?}");
        let rows: Vec<[bool; 4]> = (id..id + 2).map(|i| all(&mut ctx, i)).collect();
        eprintln!("depth {depth}: rows {rows:?}");
        if depth < 2 {
            let err = res.unwrap_err();
            assert!(
                format!("{err}").contains("a panic inside this call was caught"),
                "{err}"
            );
            assert!(l.is_empty(), "{l:?}");
            assert!(rows.iter().all(|r| *r == [false; 4]), "{rows:?}");
        } else {
            // fresh b panicked in its own transaction: rolled back there;
            // m and a (not joined by the panicking call) commit
            res.unwrap();
            assert_eq!(rows[0], [true, true, false, false]);
            assert_eq!(rows[1], [false; 4]);
        }
        pools_usable(&mut ctx, 5000 + depth as i32);
    }
}

// ---- 4. failed COMMIT on a deferred PG db (deferred constraint) ----

#[writer(db = a)]
fn a_ddl(ctx: &mut Ctx) -> QueryResult<usize> {
    PgConnection::execute_sql(
        ctx.conn(),
        "CREATE TABLE IF NOT EXISTS four_dc (id INT PRIMARY KEY, r INT REFERENCES four_dc(id) DEFERRABLE INITIALLY DEFERRED)",
    )
}
#[writer(db = a)]
fn a_bad_fk(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    ins_a(ctx, id)?;
    PgConnection::execute_sql(
        ctx.conn(),
        &format!("INSERT INTO four_dc VALUES ({id}, 999999)"),
    )
}
#[writer(retry)]
fn m_fail_commit(ctx: &mut Ctx, id: i32) -> Result<(), diesel_facade::Error> {
    log("body");
    ins_m(ctx, id)?;
    ins_b(ctx, id)?; // deferred 1
    a_bad_fk(ctx, id)?; // deferred 2, fails at COMMIT
    ins_c(ctx, id)?; // deferred 3
    ins_b(ctx, id + 1)?; // rejoin b
    Ok(())
}
#[writer(db = b, retry)]
fn b_outer_fail_commit(ctx: &mut Ctx, id: i32) -> Result<(), diesel_facade::Error> {
    ins_b(ctx, id)?;
    ins_c(ctx, id)?;
    a_bad_fk(ctx, id)?; // fails
    ins_m(ctx, id)?;
    Ok(())
}
#[writer(db = a, retry)]
fn a_outer_fail_commit(ctx: &mut Ctx, id: i32) -> Result<(), diesel_facade::Error> {
    ins_m(ctx, id)?;
    a_bad_fk(ctx, id)?; // own commit fails: everything rolls back
    ins_c(ctx, id)?;
    Ok(())
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn failed_deferred_commit() {
    let _g = serial();
    let mut ctx = setup("four_fail");
    a_ddl(&mut ctx).unwrap();
    take_log();
    let retries = ctx.main.stats().retries;
    let err = m_fail_commit(&mut ctx, 1).unwrap_err();
    let l = take_log();
    eprintln!("{err}\nhooks {l:?}");
    assert_eq!(err.kind(), ErrorKind::PartiallyCommitted, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("committed on the default database, `b`, then the COMMIT on `a` failed"),
        "{msg}"
    );
    assert!(msg.contains("rolled back on `c`"), "{msg}");
    assert_eq!(
        ctx.main.stats().retries,
        retries,
        "no retry of a partial commit"
    );
    assert_eq!(l, ["body", "m1", "b1", "b2"], "{l:?}");
    assert_eq!(all(&mut ctx, 1), [true, false, true, false]);
    assert_eq!(all(&mut ctx, 2), [false, false, true, false]);
    pools_usable(&mut ctx, 500);

    let err = b_outer_fail_commit(&mut ctx, 20).unwrap_err();
    let l = take_log();
    eprintln!("{err}\nhooks {l:?}");
    assert_eq!(err.kind(), ErrorKind::PartiallyCommitted, "{err}");
    assert!(
        err.to_string()
            .contains("committed on `b`, `c`, then the COMMIT on `a` failed"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("rolled back on the default database"),
        "{err}"
    );
    assert_eq!(all(&mut ctx, 20), [false, false, true, true]);
    assert_eq!(l, ["b20", "c20"], "{l:?}");
    pools_usable(&mut ctx, 501);

    let err = a_outer_fail_commit(&mut ctx, 30).unwrap_err();
    let l = take_log();
    eprintln!("{err}\nhooks {l:?}");
    assert_ne!(err.kind(), ErrorKind::PartiallyCommitted, "{err}");
    assert!(l.is_empty(), "{l:?}");
    assert_eq!(all(&mut ctx, 30), [false; 4]);
    pools_usable(&mut ctx, 502);
}

// ---- 5. a context with a lifetime parameter ----

pub struct LCtx<'x> {
    pub main: Facade<PgConnection>,
    pub a: Facade<PgConnection>,
    pub tag: &'x str,
}
type ADb = diesel_facade::Named<{ diesel_facade::database_id("a") }>;
impl<'x> diesel_facade::Database<LCtx<'x>> for ADb {
    type Connection = PgConnection;
    const NAME: &'static str = "a";
    fn facade<'c>(ctx: &'c LCtx<'x>) -> &'c Facade<PgConnection> {
        &ctx.a
    }
}
impl<'x> diesel_facade::__private::SameDb<ADb, LCtx<'x>> for diesel_facade::Main {
    type Eq = diesel_facade::__private::False;
}
impl<'x> diesel_facade::__private::SameDb<diesel_facade::Main, LCtx<'x>> for ADb {
    type Eq = diesel_facade::__private::False;
}
impl<'x> diesel_facade::__private::SameDb<ADb, LCtx<'x>> for ADb {
    type Eq = diesel_facade::__private::True;
}
impl<'x> TransactionContext for LCtx<'x> {
    type Connection = PgConnection;
    fn facade(&self) -> &Facade<PgConnection> {
        &self.main
    }
}
impl<'x> diesel_facade::Retarget for LCtx<'x> {
    fn facade_mut(&mut self) -> &mut Facade<PgConnection> {
        &mut self.main
    }
}

#[writer(db = a)]
fn l_ins_a<'x>(ctx: &mut LCtx<'x>, id: i32) -> QueryResult<usize> {
    let t = ctx.tag.len();
    let _ = (ctx.conn(), id, t);
    Ok(0)
}
#[writer]
fn l_ins_m(ctx: &mut LCtx<'_>, id: i32) -> QueryResult<usize> {
    PgConnection::insert_item(ctx.conn(), id, format!("l-{id}"), 1)
}
#[writer]
fn l_outer<'x>(ctx: &mut LCtx<'x>, id: i32) -> QueryResult<()> {
    l_ins_a(ctx, id)?;
    l_ins_m(ctx, id)?;
    l_ins_a(ctx, id + 1)?;
    Ok(())
}
#[reader(db = a)]
fn l_has_a(ctx: &mut LCtx<'_>, id: i32) -> QueryResult<bool> {
    let _ = (ctx, id);
    Ok(true)
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn lifetime_context() {
    let _g = serial();
    let main = diesel_facade_tests::facade::<PgConnection>("four_life_m", small);
    let a = diesel_facade_tests::facade::<PgConnection>("four_life_a", small);
    let s = String::from("tag");
    let mut ctx = LCtx { main, a, tag: &s };
    l_outer(&mut ctx, 1).unwrap();
    let st = ctx.a.stats();
    assert_eq!((st.transactions, st.commits), (1, 1), "{st:?}");
    let st = ctx.main.stats();
    assert_eq!((st.transactions, st.commits), (1, 1), "{st:?}");
    assert!(l_has_a(&mut ctx, 2).unwrap());
    let mut plain = Ctx {
        main: ctx.main.clone(),
        a: ctx.a.clone(),
        b: diesel_facade_tests::facade::<MysqlConnection>("four_life_b", small),
        c: diesel_facade_tests::facade::<SqliteConnection>("four_life_c", small),
    };
    assert_eq!(all(&mut plain, 1), [true, false, false, false]);
    assert_eq!(ctx.tag, "tag");
}

// ---- 5b. the same, hand-written, without a lifetime ----
pub struct HCtx {
    pub main: Facade<PgConnection>,
    pub a: Facade<PgConnection>,
}
impl diesel_facade::Database<HCtx> for ADb {
    type Connection = PgConnection;
    const NAME: &'static str = "a";
    fn facade(ctx: &HCtx) -> &Facade<PgConnection> {
        &ctx.a
    }
}
impl diesel_facade::__private::SameDb<ADb, HCtx> for diesel_facade::Main {
    type Eq = diesel_facade::__private::False;
}
impl diesel_facade::__private::SameDb<diesel_facade::Main, HCtx> for ADb {
    type Eq = diesel_facade::__private::False;
}
impl diesel_facade::__private::SameDb<ADb, HCtx> for ADb {
    type Eq = diesel_facade::__private::True;
}
impl TransactionContext for HCtx {
    type Connection = PgConnection;
    fn facade(&self) -> &Facade<PgConnection> {
        &self.main
    }
}
impl diesel_facade::Retarget for HCtx {
    fn facade_mut(&mut self) -> &mut Facade<PgConnection> {
        &mut self.main
    }
}
#[writer(db = a)]
fn h_ins_a(ctx: &mut HCtx, id: i32) -> QueryResult<usize> {
    PgConnection::insert_item(ctx.conn(), id, format!("h-{id}"), 1)
}
#[writer]
fn h_ins_m(ctx: &mut HCtx, id: i32) -> QueryResult<usize> {
    PgConnection::insert_item(ctx.conn(), id, format!("h-{id}"), 1)
}
#[writer]
fn h_outer(ctx: &mut HCtx, id: i32) -> QueryResult<()> {
    h_ins_a(ctx, id)?;
    h_ins_m(ctx, id)?;
    h_ins_a(ctx, id + 1)?;
    Ok(())
}
#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn handwritten_context() {
    let _g = serial();
    let main = diesel_facade_tests::facade::<PgConnection>("four_hand_m", small);
    let a = diesel_facade_tests::facade::<PgConnection>("four_hand_a", small);
    let mut ctx = HCtx { main, a };
    h_outer(&mut ctx, 1).unwrap();
    let st = ctx.a.stats();
    eprintln!("main {:?}", ctx.main.stats());
    assert_eq!((st.transactions, st.commits), (1, 1), "{st:?}");
}

// ---- 6. retry around deferred ones; a panicking hook ----
static ATTEMPT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

#[writer(retry)]
fn m_retry(ctx: &mut Ctx, base: i32) -> QueryResult<()> {
    let n = ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let id = base + n;
    ins_m(ctx, id)?;
    ins_a(ctx, id)?;
    b_then_c(ctx, id)?;
    ins_a(ctx, id + 50)?;
    if n == 0 {
        PgConnection::execute_sql(
            ctx.conn(),
            "DO $$ BEGIN RAISE EXCEPTION 'four' USING ERRCODE = '40001'; END $$",
        )?;
        unreachable!();
    }
    Ok(())
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn retry_around_deferred() {
    let _g = serial();
    let mut ctx = setup("four_retry");
    take_log();
    ATTEMPT.store(0, std::sync::atomic::Ordering::SeqCst);
    let before = [
        ctx.main.stats(),
        ctx.a.stats(),
        ctx.b.stats(),
        ctx.c.stats(),
    ];
    m_retry(&mut ctx, 10).unwrap();
    let after = [
        ctx.main.stats(),
        ctx.a.stats(),
        ctx.b.stats(),
        ctx.c.stats(),
    ];
    eprintln!("{:?}\n{:?}", before, after);
    assert_eq!(ATTEMPT.load(std::sync::atomic::Ordering::SeqCst), 2);
    for i in 0..4 {
        assert_eq!(after[i].transactions - before[i].transactions, 2, "db {i}");
        assert_eq!(after[i].commits - before[i].commits, 1, "db {i}");
        assert_eq!(after[i].rollbacks - before[i].rollbacks, 1, "db {i}");
    }
    let l = take_log();
    assert_eq!(l, ["m11", "a11", "a61", "c11", "b11"], "{l:?}");
    assert_eq!(all(&mut ctx, 10), [false; 4]);
    assert_eq!(all(&mut ctx, 11), [true; 4]);
    pools_usable(&mut ctx, 700);
}

#[writer(db = a)]
fn a_hook_panics(ctx: &mut Ctx, id: i32) -> QueryResult<usize> {
    ctx.on_commit(|| panic!("four: hook panics"));
    ins_a(ctx, id)
}
#[writer]
fn m_hook_panic(ctx: &mut Ctx, id: i32) -> QueryResult<()> {
    ins_m(ctx, id)?;
    a_hook_panics(ctx, id)?;
    ins_b(ctx, id)?;
    Ok(())
}

#[test]
#[cfg_attr(
    not(all(pg_server, mysql_server)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_MYSQL_URL"
)]
fn panicking_hook_of_a_deferred() {
    let _g = serial();
    let mut ctx = setup("four_hook");
    take_log();
    let r = catch_unwind(AssertUnwindSafe(|| m_hook_panic(&mut ctx, 1)));
    assert!(r.is_err(), "the hook's panic resumes");
    let l = take_log();
    assert_eq!(l, ["m1", "a1", "b1"], "{l:?}");
    assert_eq!(all(&mut ctx, 1), [true, true, true, false]);
    pools_usable(&mut ctx, 800);
}
