//! Replica routing and read-your-writes on real replicas started by
//! `scripts/test-servers`: a PostgreSQL streaming replica, a MariaDB GTID
//! replica, and Galera nodes used as replicas.
//!
//! Each scenario pauses and resumes replication on its replica, so the
//! scenarios of one server kind run in one test, in order.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use diesel::{MysqlConnection, PgConnection};
use diesel_facade::__private::Position;
use diesel_facade::{
    reader, writer, Context, ErrorKind, Facade, ReadOnlyConnection, ReadPosition,
    SupportedConnection, TransactionContext,
};
use diesel_facade_tests::scenarios::TypedQueries;
use diesel_facade_tests::schema::items;
use diesel_facade_tests::{galera_urls, server_env};

/// The tests run one at a time: several pause and resume replay on the
/// same replica, and one that pauses it would fail another's reads.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `ft<prefix>_<base>`, with `FACADE_TEST_DB_PREFIX`, so that checkouts
/// sharing the servers do not drop each other's databases.
fn db_name(kind: &str, base: &str) -> String {
    let prefix = std::env::var("FACADE_TEST_DB_PREFIX").unwrap_or_default();
    let prefix: String = prefix.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{kind}{prefix}_{base}")
}

/// Tokens a cookie can carry that must be rejected at parse; the first ones
/// passed the old character check and reached the server.
fn hostile_tokens() -> Vec<String> {
    let mut tokens: Vec<String> = [
        "pg:FFFFFFFFF/0",
        "pg:0/1FFFFFFFF",
        "gtid:-",
        "gtid:0-1-",
        "gtid:0-1-18446744073709551616",
        "gtid:4294967296-1-1",
        "gtid:0-1-1,,",
        "gtid:0-1-1,0-1-1",
        "galera:18446744073709551616",
        "pg:0/1\u{0}",
        "gtid:\u{663}-1-2",
        "pg:１/2",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    tokens.push(format!("gtid:{}", "0-1-1,".repeat(5000)));
    tokens.push(format!("pg:{}/0", "0".repeat(100_000)));
    tokens
}

fn with_db(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("URL");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

/// Connect to `url`, retrying while the database is still being replicated.
fn connect_eventually<C: Connection>(url: &str) -> C {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match C::establish(url) {
            Ok(conn) => return conn,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(err) => panic!("cannot connect to {url}: {err}"),
        }
    }
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = Bool)]
    flag: bool,
}

/// A backend with a streaming replica: how [`replica_scenarios`] tells the
/// replica from the primary, holds it back, and forges positions.
trait Replicated: TypedQueries {
    /// SQL whose BOOLEAN `flag` says whether the server answering is a
    /// replica, in the server's own view.
    const ON_REPLICA_SQL: &'static str;
    /// Pause the replica's replay (run on the replica).
    const PAUSE_SQL: &'static str;
    /// Resume it.
    const RESUME_SQL: &'static str;
    /// Well-formed tokens ahead of any position the primary will reach.
    const FUTURE_TOKENS: &'static [&'static str];
    /// A position that skipped validation and that the replica rejects.
    fn rejected_position() -> Position;
}

impl Replicated for PgConnection {
    const ON_REPLICA_SQL: &'static str = "SELECT pg_is_in_recovery() AS flag";
    const PAUSE_SQL: &'static str = "SELECT pg_wal_replay_pause()";
    const RESUME_SQL: &'static str = "SELECT pg_wal_replay_resume()";
    const FUTURE_TOKENS: &'static [&'static str] = &["pg:FFFFFFFF/FFFFFFFF"];
    fn rejected_position() -> Position {
        Position::PgLsn("FFFFFFFFF/0".into())
    }
}

impl Replicated for MysqlConnection {
    const ON_REPLICA_SQL: &'static str = "SELECT @@server_id <> 1 AS flag";
    const PAUSE_SQL: &'static str = "STOP SLAVE SQL_THREAD";
    const RESUME_SQL: &'static str = "START SLAVE SQL_THREAD";
    const FUTURE_TOKENS: &'static [&'static str] =
        &["gtid:0-1-18446744073709551615", "gtid:4242-1-1"];
    fn rejected_position() -> Position {
        Position::Gtid("-".into())
    }
}

#[derive(TransactionContext)]
struct Req<C: SupportedConnection> {
    #[facade]
    db: Facade<C>,
    #[read_position]
    position: ReadPosition,
}

fn req<C: SupportedConnection>(db: &Facade<C>) -> Req<C> {
    Req {
        db: db.clone(),
        position: ReadPosition::new(),
    }
}

#[writer]
fn add<C: Replicated>(ctx: &mut Req<C>, id: i32) -> QueryResult<()> {
    C::insert_item(ctx.conn(), id, "r".to_owned(), 0).map(drop)
}

/// (is the row visible, did a replica answer according to the server
/// itself, did the facade say it ran on a replica)
#[reader(replica)]
fn look<C: Replicated>(ctx: &mut Req<C>, id: i32) -> QueryResult<(bool, bool, bool)> {
    let (visible, server_is_replica) = probe(ctx.conn(), id)?;
    Ok((visible, server_is_replica, ctx.on_replica()))
}

/// A context with no `#[read_position]` field.
#[derive(TransactionContext)]
struct Plain<C: SupportedConnection> {
    #[facade]
    db: Facade<C>,
}

/// (is the row visible, did a replica answer according to the server itself)
fn probe<C: Replicated>(conn: &mut ReadOnlyConnection<C>, id: i32) -> QueryResult<(bool, bool)> {
    let visible = C::item_exists(conn, id)?;
    let server_is_replica = C::read_flag(conn, C::ON_REPLICA_SQL)?;
    Ok((visible, server_is_replica))
}

#[writer]
fn add_plain<C: Replicated>(ctx: &mut Plain<C>, id: i32) -> QueryResult<()> {
    C::insert_item(ctx.conn(), id, "p".to_owned(), 0).map(drop)
}

#[reader(replica)]
fn look_plain<C: Replicated>(ctx: &mut Plain<C>, id: i32) -> QueryResult<(bool, bool, bool)> {
    let (visible, server_is_replica) = probe(ctx.conn(), id)?;
    Ok((visible, server_is_replica, ctx.on_replica()))
}

#[writer]
fn add_ctx<C: Replicated>(ctx: &mut Context<C>, id: i32) -> QueryResult<()> {
    C::insert_item(ctx.conn(), id, "c".to_owned(), 0).map(drop)
}

#[reader(replica)]
fn look_ctx<C: Replicated>(ctx: &mut Context<C>, id: i32) -> QueryResult<(bool, bool, bool)> {
    let (visible, server_is_replica) = probe(ctx.conn(), id)?;
    Ok((visible, server_is_replica, ctx.on_replica()))
}

/// Resumes the replica's replay when dropped, even if the test panics.
struct Resume<'a, C: Replicated> {
    conn: &'a std::cell::RefCell<C>,
}

impl<C: Replicated> Drop for Resume<'_, C> {
    fn drop(&mut self) {
        let _ = self.conn.borrow_mut().batch_execute(C::RESUME_SQL);
    }
}

/// The replica scenarios, in order, on the primary `primary` and its
/// replica `replica` (admin URLs).
fn replica_scenarios<C: Replicated>(primary: &str, replica: &str) {
    let db_name = db_name("ft", "replica_routing");
    {
        let mut admin: C = connect_eventually(primary);
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {db_name}"))
            .expect("create database");
    }
    let primary_url = with_db(primary, &db_name);
    let replica_url = with_db(replica, &db_name);
    let mut setup: C = connect_eventually(&primary_url);
    setup
        .batch_execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL)",
        )
        .expect("create table");
    // The replica's own connection, to pause and resume replay.
    let replica_admin = std::cell::RefCell::new(connect_eventually::<C>(&replica_url));

    let wait = Duration::from_millis(400);
    let db = Facade::<C>::builder()
        .writer(primary_url.clone())
        .replica(replica_url.clone())
        .replica_wait_timeout(wait)
        .build()
        .expect("facade with a replica");
    // Wait for the table to reach the replica.
    let deadline = Instant::now() + Duration::from_secs(20);
    while look(&mut req(&db), 0).is_err() {
        assert!(
            Instant::now() < deadline,
            "the table never reached the replica"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // 1. A context that wrote reads its write from the replica once
    //    the replica has applied it: the wait succeeds.
    let mut writer_ctx = req(&db);
    add(&mut writer_ctx, 1).unwrap();
    assert!(
        writer_ctx.position.token().is_some(),
        "commit position recorded"
    );
    let fallbacks = db.stats().replica_fallbacks;
    assert_eq!(look(&mut writer_ctx, 1).unwrap(), (true, true, true));
    assert_eq!(
        db.stats().replica_fallbacks,
        fallbacks,
        "no fallback needed"
    );

    // 2. Replay paused: the writer still reads its own write (from
    //    the primary, after the bounded wait); a context that did not
    //    write reads the replica's stale data without waiting.
    replica_admin
        .borrow_mut()
        .batch_execute(C::PAUSE_SQL)
        .expect("pause replay");
    let resume = Resume {
        conn: &replica_admin,
    };
    add(&mut writer_ctx, 2).unwrap();
    let started = Instant::now();
    assert_eq!(
        look(&mut writer_ctx, 2).unwrap(),
        (true, false, false),
        "fell back to the primary"
    );
    assert!(
        started.elapsed() >= wait,
        "waited {:?} first",
        started.elapsed()
    );
    assert_eq!(db.stats().replica_fallbacks, fallbacks + 1);
    let mut bystander = req(&db);
    let started = Instant::now();
    assert_eq!(
        look(&mut bystander, 2).unwrap(),
        (false, true, true),
        "a context that did not write reads the stale replica"
    );
    assert!(started.elapsed() < wait, "and does not wait");

    // 2b. The same without a `#[read_position]` field: the context's
    //     facade handle keeps the position, so it reads its own write
    //     (from the primary, replay being paused), and so does a
    //     `Facade::context()`.
    let mut plain = Plain { db: db.clone() };
    add_plain(&mut plain, 20).unwrap();
    assert_eq!(
        look_plain(&mut plain, 20).unwrap(),
        (true, false, false),
        "a context without #[read_position] reads its own write"
    );
    assert!(
        plain.db.read_position().token().is_some(),
        "position on the handle"
    );
    let mut derived = Plain {
        db: plain.db.clone(),
    };
    assert_eq!(
        look_plain(&mut derived, 20).unwrap(),
        (true, false, false),
        "a handle cloned after the write carries its position"
    );
    let mut script = db.context();
    add_ctx(&mut script, 21).unwrap();
    assert_eq!(look_ctx(&mut script, 21).unwrap(), (true, false, false));
    let started = Instant::now();
    assert_eq!(
        look_plain(&mut Plain { db: db.clone() }, 20).unwrap(),
        (false, true, true),
        "a fresh clone of the shared facade did not write: no wait, stale replica"
    );
    assert!(started.elapsed() < wait, "and does not wait");
    assert_eq!(
        db.read_position().token(),
        None,
        "the shared handle never wrote"
    );

    // 3. The position travels as a token (e.g. in a session cookie).
    let token = writer_ctx.position.token().expect("token");
    let mut next_request = Req {
        db: db.clone(),
        position: ReadPosition::from_token(&token).unwrap(),
    };
    assert_eq!(look(&mut next_request, 2).unwrap(), (true, false, false));

    // 4. Replay resumes: the wait succeeds on the replica.
    drop(resume);
    let fallbacks = db.stats().replica_fallbacks;
    assert_eq!(look(&mut writer_ctx, 2).unwrap(), (true, true, true));
    assert_eq!(look(&mut next_request, 2).unwrap(), (true, true, true));
    assert_eq!(look_plain(&mut plain, 20).unwrap(), (true, true, true));
    assert_eq!(look_ctx(&mut script, 21).unwrap(), (true, true, true));
    assert_eq!(db.stats().replica_fallbacks, fallbacks);

    // 4b. Hostile tokens are rejected before anything uses them.
    for bad in hostile_tokens() {
        let err = ReadPosition::from_token(&bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().len() < 300, "the token is not echoed whole");
    }

    // 4c. A position the replica rejects (one that skipped
    //     validation) is the token's fault: that read goes to the
    //     primary and drops it, and the replica stays in use.
    let mut hostile = Req {
        db: db.clone(),
        position: ReadPosition::__unvalidated(C::rejected_position()),
    };
    assert_eq!(look(&mut hostile, 1).unwrap(), (true, false, false));
    assert_eq!(
        hostile.position.token(),
        None,
        "the rejected position is dropped"
    );
    assert_eq!(
        look(&mut req(&db), 1).unwrap(),
        (true, true, true),
        "the replica was not marked down"
    );
    assert_eq!(look(&mut hostile, 1).unwrap(), (true, true, true));

    // 4d. A token from the future (ahead of the primary) is dropped
    //     instead of waited for, on every request that sends it.
    let patient = Facade::<C>::builder()
        .writer(primary_url.clone())
        .replica(replica_url.clone())
        .replica_wait_timeout(Duration::from_secs(5))
        .build()
        .expect("facade with a replica");
    for future in C::FUTURE_TOKENS {
        for request in 0..2 {
            let mut ctx = Req {
                db: patient.clone(),
                position: ReadPosition::from_token(future).expect("well-formed"),
            };
            let started = Instant::now();
            assert_eq!(look(&mut ctx, 1).unwrap(), (true, false, false), "{future}");
            assert_eq!(
                ctx.position.token(),
                None,
                "{future} dropped (request {request})"
            );
            assert!(
                started.elapsed() < Duration::from_secs(4),
                "{future}: no full wait ({:?})",
                started.elapsed()
            );
        }
    }
    // A real token the replica has applied still reads the replica.
    let mut returning = Req {
        db: patient.clone(),
        position: ReadPosition::from_token(&token).unwrap(),
    };
    assert_eq!(look(&mut returning, 2).unwrap(), (true, true, true));
    assert_eq!(returning.position.token(), Some(token.clone()));

    // 5. Raw SQL cannot write through a replica read.
    let err = diesel_facade::read_replica(&mut req(&db), |ctx| {
        C::execute_sql(
            ctx.conn().database_enforced(),
            "INSERT INTO items (id, name, qty) VALUES (99, 'x', 0)",
        )
    })
    .map_err(diesel_facade::Error::from)
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReadOnlyViolation, "{err}");

    // 6. Inside a writer, a replica reader joins the writer's
    //    transaction on the primary and sees uncommitted rows.
    diesel_facade::write(&mut req(&db), |ctx| {
        add(ctx, 3)?;
        assert_eq!(look(ctx, 3)?, (true, false, false));
        Ok::<_, diesel::result::Error>(())
    })
    .unwrap();

    // 7. A replica that is down: reads still succeed, from the
    //    primary, and the dead replica is skipped.
    let with_dead = Facade::<C>::builder()
        .writer(primary_url.clone())
        .replica(with_port(&replica_url, 1))
        .build()
        .unwrap();
    assert_eq!(look(&mut req(&with_dead), 1).unwrap(), (true, false, false));
    assert_eq!(look(&mut req(&with_dead), 1).unwrap(), (true, false, false));
    assert!(with_dead.stats().replica_fallbacks >= 2);

    // 8. A lagging replica is skipped when max_replica_lag is set.
    let strict = Facade::<C>::builder()
        .writer(primary_url.clone())
        .replica(replica_url.clone())
        .max_replica_lag(Duration::from_millis(200))
        .build()
        .unwrap();
    replica_admin
        .borrow_mut()
        .batch_execute(C::PAUSE_SQL)
        .expect("pause replay");
    let resume = Resume {
        conn: &replica_admin,
    };
    add(&mut req(&db), 4).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        look(&mut req(&strict), 4).unwrap(),
        (true, false, false),
        "the lagging replica is skipped"
    );
    drop(resume);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = look(&mut req(&strict), 4).unwrap();
        if seen == (true, true, true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica never caught up: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(setup);
}

/// A context whose api database (`#[facade(api)]`) has the replica, beside
/// a default database without one.
#[derive(TransactionContext)]
struct TwoDatabases<A: SupportedConnection> {
    #[facade]
    main: Facade<diesel::SqliteConnection>,
    #[facade(api)]
    api: Facade<A>,
}

#[writer(db = api)]
fn add_api<A: Replicated>(ctx: &mut TwoDatabases<A>, id: i32) -> QueryResult<()> {
    A::insert_item(ctx.conn(), id, "a".to_owned(), 0).map(drop)
}

#[reader(db = api, replica)]
fn look_api<A: Replicated>(ctx: &mut TwoDatabases<A>, id: i32) -> QueryResult<(bool, bool, bool)> {
    let (visible, server_is_replica) = probe(ctx.conn(), id)?;
    Ok((visible, server_is_replica, ctx.on_replica()))
}

/// Read-your-writes holds on a named database: its commits record the
/// position in its own facade, and its replica reads wait for it (or fall
/// back to its primary).
fn named_database_reads_its_writes_on_its_replica<A: Replicated>(primary: &str, replica: &str) {
    let db_name = db_name("ft", "replica_named");
    {
        let mut admin: A = connect_eventually(primary);
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name}"));
        admin
            .batch_execute(&format!("CREATE DATABASE {db_name}"))
            .expect("create database");
    }
    let primary_url = with_db(primary, &db_name);
    let replica_url = with_db(replica, &db_name);
    connect_eventually::<A>(&primary_url)
        .batch_execute(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL)",
        )
        .expect("create table");
    let replica_admin = std::cell::RefCell::new(connect_eventually::<A>(&replica_url));
    let mut ctx = TwoDatabases {
        main: Facade::builder().writer(":memory:").build().expect("main"),
        api: Facade::<A>::builder()
            .writer(primary_url)
            .replica(replica_url)
            .replica_wait_timeout(Duration::from_millis(400))
            .build()
            .expect("api facade with a replica"),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while look_api(&mut ctx, 0).is_err() {
        assert!(
            Instant::now() < deadline,
            "the table never reached the replica"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    add_api(&mut ctx, 1).unwrap();
    assert!(
        ctx.api.read_position().token().is_some(),
        "api position recorded"
    );
    assert_eq!(ctx.main.read_position().token(), None, "main untouched");
    assert_eq!(look_api(&mut ctx, 1).unwrap(), (true, true, true));

    replica_admin
        .borrow_mut()
        .batch_execute(A::PAUSE_SQL)
        .expect("pause replay");
    let resume = Resume {
        conn: &replica_admin,
    };
    add_api(&mut ctx, 2).unwrap();
    let fallbacks = ctx.api.stats().replica_fallbacks;
    let (visible, server_is_replica, on_replica) = look_api(&mut ctx, 2).unwrap();
    assert!(visible, "the api writer reads its own write");
    assert!(!server_is_replica && !on_replica, "from the api primary");
    assert_eq!(ctx.api.stats().replica_fallbacks, fallbacks + 1);
    drop(resume);
}

#[test]
#[cfg_attr(
    not(all(pg_server, pg_replica)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_PG_REPLICA_URL"
)]
fn postgres_replica_of_a_named_database_reads_its_writes() {
    let _serial = serial();
    named_database_reads_its_writes_on_its_replica::<PgConnection>(
        &server_env("FACADE_TEST_PG_URL"),
        &server_env("FACADE_TEST_PG_REPLICA_URL"),
    );
}

fn with_port(url: &str, port: u16) -> String {
    let mut parsed = url::Url::parse(url).expect("URL");
    parsed.set_port(Some(port)).expect("port");
    parsed.to_string()
}

#[test]
#[cfg_attr(
    not(all(pg_server, pg_replica)),
    ignore = "needs FACADE_TEST_PG_URL and FACADE_TEST_PG_REPLICA_URL"
)]
fn postgres_streaming_replica() {
    let _serial = serial();
    replica_scenarios::<PgConnection>(
        &server_env("FACADE_TEST_PG_URL"),
        &server_env("FACADE_TEST_PG_REPLICA_URL"),
    );
    a_position_at_a_wal_page_boundary_is_reached(
        &server_env("FACADE_TEST_PG_URL"),
        &server_env("FACADE_TEST_PG_REPLICA_URL"),
    );
}

#[derive(QueryableByName)]
struct Lsn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    lsn: String,
}

fn insert_lsn(conn: &mut PgConnection) -> u64 {
    let text = diesel::sql_query("SELECT pg_current_wal_insert_lsn()::text AS lsn")
        .get_result::<Lsn>(conn)
        .expect("insert position")
        .lsn;
    let (hi, lo) = text.split_once('/').expect("an LSN");
    u64::from_str_radix(hi, 16).expect("hex") << 32 | u64::from_str_radix(lo, 16).expect("hex")
}

/// Write a WAL record of about `bytes` (a non-transactional logical
/// message, which any `wal_level` logs).
fn emit_wal(conn: &mut PgConnection, bytes: u64) {
    conn.batch_execute(&format!(
        "SELECT pg_logical_emit_message(false, 'diesel-facade', repeat('x', {bytes}))"
    ))
    .expect("emit a WAL record");
}

#[writer]
fn write_nothing(ctx: &mut Req<PgConnection>) -> QueryResult<()> {
    let _ = ctx.conn();
    Ok(())
}

/// (did a replica answer according to the server itself, did the facade
/// say it ran on a replica)
#[reader(replica)]
fn where_read(ctx: &mut Req<PgConnection>) -> QueryResult<(bool, bool)> {
    let server_is_replica = PgConnection::read_flag(ctx.conn(), PgConnection::ON_REPLICA_SQL)?;
    Ok((server_is_replica, ctx.on_replica()))
}

/// A context whose last write left the primary's insert position just past
/// a WAL page header (its last record ended at a page boundary) reads from
/// the replica. The replica's replay position stops at the boundary until
/// more WAL comes, so a wait for the insert position itself never ended:
/// the read waited out `replica_wait_timeout` and fell back to the primary
/// (a rare failure of the example service's replica test in CI).
fn a_position_at_a_wal_page_boundary_is_reached(primary: &str, replica: &str) {
    let db = Facade::<PgConnection>::builder()
        .writer(primary)
        .replica(replica)
        .replica_wait_timeout(Duration::from_secs(5))
        .build()
        .expect("facade with a replica");
    let mut side: PgConnection = connect_eventually(primary);
    // The server writes WAL of its own now and then (autovacuum after the
    // scenarios' writes, checkpoints, standby snapshots), which moves the
    // position between our steps: try for a while, pausing after a miss.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut tries, mut crossed, mut missed, mut overtaken) = (0, 0, 0, 0);
    while Instant::now() < deadline {
        tries += 1;
        if tries > 1 {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Bring the insert position to 24 bytes past a page boundary: one
        // record to learn a message's overhead, one sized to end there.
        // Both carry 256 bytes or more, so their headers are the same size
        // (a record's data length takes 1 byte below 256, 4 from there).
        let before = insert_lsn(&mut side);
        let probe = 300;
        emit_wal(&mut side, probe);
        let after = insert_lsn(&mut side);
        if before / 8192 != (after - 1) / 8192 {
            // The probe crossed a page boundary, and its size includes the
            // next page's header: it would size the next record 24 bytes
            // short, to end 24 bytes before the following boundary, where
            // the next probe crosses one again (every try failed so in CI).
            crossed += 1;
            continue;
        }
        let overhead = (after - before).saturating_sub(probe);
        let to_boundary = 8192 - after % 8192;
        if to_boundary < overhead + 256 {
            continue;
        }
        emit_wal(&mut side, to_boundary - overhead);
        let at = insert_lsn(&mut side);
        if at % 8192 != 24 {
            missed += 1;
            continue;
        }
        // A writer that writes no WAL records the position as it is.
        let mut ctx = req(&db);
        write_nothing(&mut ctx).expect("an empty writer");
        if insert_lsn(&mut side) != at {
            overtaken += 1;
            continue; // something else wrote meanwhile
        }
        let fallbacks = db.stats().replica_fallbacks;
        let (server_is_replica, on_replica) = where_read(&mut ctx).expect("a replica read");
        assert!(
            server_is_replica && on_replica,
            "a position at a page boundary is read on the replica"
        );
        assert_eq!(db.stats().replica_fallbacks, fallbacks);
        return;
    }
    panic!(
        "could not bring the primary's insert position to a page boundary in {tries} tries \
         over 60 s ({crossed} probes crossed a boundary, {missed} missed it, {overtaken} were \
         overtaken by other WAL)"
    );
}

#[test]
#[cfg_attr(
    not(all(mysql_server, mysql_replica)),
    ignore = "needs FACADE_TEST_MYSQL_URL and FACADE_TEST_MYSQL_REPLICA_URL"
)]
fn mariadb_gtid_replica() {
    let _serial = serial();
    replica_scenarios::<MysqlConnection>(
        &server_env("FACADE_TEST_MYSQL_URL"),
        &server_env("FACADE_TEST_MYSQL_REPLICA_URL"),
    );
}

mod galera {
    use super::*;

    #[derive(TransactionContext)]
    pub struct Req {
        #[facade]
        pub db: Facade<MysqlConnection>,
        #[read_position]
        pub position: ReadPosition,
    }

    #[derive(QueryableByName)]
    pub struct Port {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pub port: i32,
    }

    /// A context with no `#[read_position]` field.
    #[derive(TransactionContext)]
    pub struct Plain {
        #[facade]
        pub db: Facade<MysqlConnection>,
    }

    #[writer]
    pub fn add_plain(ctx: &mut Plain, id: i32) -> QueryResult<()> {
        diesel::insert_into(items::table)
            .values((items::id.eq(id), items::name.eq("p"), items::qty.eq(0)))
            .execute(ctx.conn())
            .map(drop)
    }

    /// (visible, answered by a node other than node 1, facade says replica)
    #[reader(replica)]
    pub fn look_plain(
        ctx: &mut Plain,
        id: i32,
        writer_port: i32,
    ) -> QueryResult<(bool, bool, bool)> {
        let visible =
            diesel::select(diesel::dsl::exists(items::table.find(id))).get_result(ctx.conn())?;
        let other = diesel::sql_query(format!("SELECT @@port <> {writer_port} AS flag"))
            .get_result::<Flag>(ctx.conn())?
            .flag;
        Ok((visible, other, ctx.on_replica()))
    }

    /// Which node answered.
    #[reader(replica)]
    pub fn answering_port(ctx: &mut Req) -> QueryResult<i32> {
        diesel::sql_query("SELECT CAST(@@port AS SIGNED) AS port")
            .get_result::<Port>(ctx.conn())
            .map(|p| p.port)
    }

    #[writer]
    pub fn add(ctx: &mut Req, id: i32) -> QueryResult<()> {
        diesel::insert_into(items::table)
            .values((items::id.eq(id), items::name.eq("g"), items::qty.eq(0)))
            .execute(ctx.conn())
            .map(drop)
    }

    /// (visible, answered by a node other than node 1, facade says replica)
    #[reader(replica)]
    pub fn look(ctx: &mut Req, id: i32, writer_port: i32) -> QueryResult<(bool, bool, bool)> {
        let visible =
            diesel::select(diesel::dsl::exists(items::table.find(id))).get_result(ctx.conn())?;
        let other = diesel::sql_query(format!("SELECT @@port <> {writer_port} AS flag"))
            .get_result::<Flag>(ctx.conn())?
            .flag;
        Ok((visible, other, ctx.on_replica()))
    }
}

#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn galera_nodes_as_replicas_read_their_writes() {
    let _serial = serial();
    let urls = galera_urls();
    let db_name = db_name("ftg", "replicas");
    let mut admin: MysqlConnection = connect_eventually(&urls[0]);
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {db_name}; CREATE DATABASE {db_name}; USE {db_name};
             CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL);"
        ))
        .expect("create the database on node 1");
    let writer_port = url::Url::parse(&urls[0]).unwrap().port().unwrap() as i32;
    let db = Facade::<MysqlConnection>::builder()
        .writer(with_db(&urls[0], &db_name))
        .replica(with_db(&urls[1], &db_name))
        .replica(with_db(&urls[2], &db_name))
        .build()
        .unwrap();
    let mut ctx = galera::Req {
        db: db.clone(),
        position: ReadPosition::new(),
    };
    for id in 1..=20 {
        galera::add(&mut ctx, id).unwrap();
        assert!(ctx.position.token().is_some());
        // Every read right after the write, on node 2 or 3, sees it.
        assert_eq!(
            galera::look(&mut ctx, id, writer_port).unwrap(),
            (true, true, true)
        );
    }
    assert_eq!(db.stats().replica_fallbacks, 0);
    // Healthy replicas are used in turn.
    let mut ports: Vec<i32> = (0..6)
        .map(|_| galera::answering_port(&mut ctx).unwrap())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let replica_ports: Vec<i32> = urls[1..]
        .iter()
        .map(|u| i32::from(url::Url::parse(u).unwrap().port().unwrap()))
        .collect();
    assert_eq!(
        ports, replica_ports,
        "both replicas served reads, the writer none"
    );
}

/// A context with no `#[read_position]` field reads its own write on a Galera
/// node whose applier is held back (FLUSH TABLES WITH READ LOCK): from the
/// primary after the bounded wait, where it used to read the node's stale
/// data. A token from the future is dropped without waiting.
#[test]
#[cfg_attr(not(galera_cluster), ignore = "needs FACADE_TEST_GALERA_URLS")]
fn galera_node_as_replica_reads_writes_of_a_context_without_read_position() {
    let _serial = serial();
    let urls = galera_urls();
    let db_name = db_name("ftg", "replicas_plain");
    let mut admin: MysqlConnection = connect_eventually(&urls[0]);
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {db_name}; CREATE DATABASE {db_name}; USE {db_name};
             CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL);"
        ))
        .expect("create the database on node 1");
    let writer_port = url::Url::parse(&urls[0]).unwrap().port().unwrap() as i32;
    let wait = Duration::from_millis(400);
    let db = Facade::<MysqlConnection>::builder()
        .writer(with_db(&urls[0], &db_name))
        .replica(with_db(&urls[1], &db_name))
        .replica_wait_timeout(wait)
        .build()
        .unwrap();
    let mut plain = galera::Plain { db: db.clone() };
    // The table has reached node 2 once a write made after it is visible there.
    galera::add_plain(&mut plain, 1).unwrap();
    assert_eq!(
        galera::look_plain(&mut plain, 1, writer_port).unwrap(),
        (true, true, true)
    );

    // Hold node 2's applier back (briefly: other suites share the cluster).
    let node2 = std::cell::RefCell::new(connect_eventually::<MysqlConnection>(&urls[1]));
    struct Unlock<'a>(&'a std::cell::RefCell<MysqlConnection>);
    impl Drop for Unlock<'_> {
        fn drop(&mut self) {
            let _ = self.0.borrow_mut().batch_execute("UNLOCK TABLES");
        }
    }
    node2
        .borrow_mut()
        .batch_execute("FLUSH TABLES WITH READ LOCK")
        .expect("FTWRL on node 2");
    let unlock = Unlock(&node2);
    galera::add_plain(&mut plain, 2).unwrap();
    let seen = galera::look_plain(&mut plain, 2, writer_port).unwrap();
    let bystander = galera::look_plain(&mut galera::Plain { db: db.clone() }, 2, writer_port);
    drop(unlock);
    assert_eq!(
        seen,
        (true, false, false),
        "read its own write, from node 1"
    );
    assert!(plain.db.read_position().token().is_some());
    assert_eq!(
        bystander.unwrap(),
        (false, true, true),
        "node 2 was held back: a context that did not write reads it stale"
    );

    // A seqno from the future is dropped rather than waited for.
    let patient = Facade::<MysqlConnection>::builder()
        .writer(with_db(&urls[0], &db_name))
        .replica(with_db(&urls[1], &db_name))
        .replica_wait_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut future = galera::Req {
        db: patient.clone(),
        position: ReadPosition::from_token("galera:18446744073709551615").unwrap(),
    };
    let started = Instant::now();
    assert_eq!(
        galera::look(&mut future, 1, writer_port).unwrap(),
        (true, false, false)
    );
    assert_eq!(future.position.token(), None);
    assert!(started.elapsed() < Duration::from_secs(4), "no full wait");
}
