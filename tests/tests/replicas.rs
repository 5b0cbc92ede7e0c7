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
use diesel_facade::{reader, writer, ErrorKind, Facade, ReadPosition, TransactionContext};
use diesel_facade_tests::schema::items;

fn env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set under CI=true: start scripts/test-servers")
        }
        _ => {
            eprintln!("SKIPPED: {var} is not set");
            None
        }
    }
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

macro_rules! replica_scenarios {
    (
        conn = $conn:ty,
        on_replica_sql = $on_replica_sql:expr,
        pause_sql = $pause:expr,
        resume_sql = $resume:expr,
    ) => {
        type Conn = $conn;

        #[derive(TransactionContext)]
        struct Req {
            #[facade]
            db: Facade<Conn>,
            #[read_position]
            position: ReadPosition,
        }

        fn req(db: &Facade<Conn>) -> Req {
            Req { db: db.clone(), position: ReadPosition::new() }
        }

        #[writer]
        fn add(ctx: &mut Req, id: i32) -> QueryResult<()> {
            diesel::insert_into(items::table)
                .values((items::id.eq(id), items::name.eq("r"), items::qty.eq(0)))
                .execute(ctx.conn())
                .map(drop)
        }

        /// (is the row visible, did a replica answer according to the server
        /// itself, did the facade say it ran on a replica)
        #[reader(replica)]
        fn look(ctx: &mut Req, id: i32) -> QueryResult<(bool, bool, bool)> {
            let visible = diesel::select(diesel::dsl::exists(items::table.find(id)))
                .get_result(ctx.conn())?;
            let server_is_replica = diesel::sql_query($on_replica_sql)
                .get_result::<Flag>(ctx.conn())?
                .flag;
            Ok((visible, server_is_replica, ctx.on_replica()))
        }

        struct Resume<'a> {
            conn: &'a std::cell::RefCell<Conn>,
        }
        impl Drop for Resume<'_> {
            fn drop(&mut self) {
                let _ = self.conn.borrow_mut().batch_execute($resume);
            }
        }

        pub fn run(primary: &str, replica: &str) {
            let db_name = "ft_replica_routing";
            {
                let mut admin: Conn = connect_eventually(primary);
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name}"));
                admin
                    .batch_execute(&format!("CREATE DATABASE {db_name}"))
                    .expect("create database");
            }
            let primary_url = with_db(primary, db_name);
            let replica_url = with_db(replica, db_name);
            let mut setup: Conn = connect_eventually(&primary_url);
            setup
                .batch_execute(
                    "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL)",
                )
                .expect("create table");
            // The replica's own connection, to pause and resume replay.
            let replica_admin = std::cell::RefCell::new(connect_eventually::<Conn>(&replica_url));

            let wait = Duration::from_millis(400);
            let db = Facade::<Conn>::builder()
                .writer(primary_url.clone())
                .replica(replica_url.clone())
                .replica_wait_timeout(wait)
                .build()
                .expect("facade with a replica");
            // Wait for the table to reach the replica.
            let deadline = Instant::now() + Duration::from_secs(20);
            while look(&mut req(&db), 0).is_err() {
                assert!(Instant::now() < deadline, "the table never reached the replica");
                std::thread::sleep(Duration::from_millis(50));
            }

            // 1. A context that wrote reads its write from the replica once
            //    the replica has applied it: the wait succeeds.
            let mut writer_ctx = req(&db);
            add(&mut writer_ctx, 1).unwrap();
            assert!(writer_ctx.position.token().is_some(), "commit position recorded");
            let fallbacks = db.stats().replica_fallbacks;
            assert_eq!(look(&mut writer_ctx, 1).unwrap(), (true, true, true));
            assert_eq!(db.stats().replica_fallbacks, fallbacks, "no fallback needed");

            // 2. Replay paused: the writer still reads its own write (from
            //    the primary, after the bounded wait); a context that did not
            //    write reads the replica's stale data without waiting.
            replica_admin.borrow_mut().batch_execute($pause).expect("pause replay");
            let resume = Resume { conn: &replica_admin };
            add(&mut writer_ctx, 2).unwrap();
            let started = Instant::now();
            assert_eq!(
                look(&mut writer_ctx, 2).unwrap(),
                (true, false, false),
                "fell back to the primary"
            );
            assert!(started.elapsed() >= wait, "waited {:?} first", started.elapsed());
            assert_eq!(db.stats().replica_fallbacks, fallbacks + 1);
            let mut bystander = req(&db);
            let started = Instant::now();
            assert_eq!(
                look(&mut bystander, 2).unwrap(),
                (false, true, true),
                "a context that did not write reads the stale replica"
            );
            assert!(started.elapsed() < wait, "and does not wait");

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
            assert_eq!(db.stats().replica_fallbacks, fallbacks);

            // 5. Raw SQL cannot write through a replica read.
            let err = diesel_facade::read_replica(&mut req(&db), |ctx| {
                diesel::sql_query("INSERT INTO items (id, name, qty) VALUES (99, 'x', 0)")
                    .execute(ctx.conn().database_enforced())
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
            let with_dead = Facade::<Conn>::builder()
                .writer(primary_url.clone())
                .replica(with_port(&replica_url, 1))
                .build()
                .unwrap();
            assert_eq!(look(&mut req(&with_dead), 1).unwrap(), (true, false, false));
            assert_eq!(look(&mut req(&with_dead), 1).unwrap(), (true, false, false));
            assert!(with_dead.stats().replica_fallbacks >= 2);

            // 8. A lagging replica is skipped when max_replica_lag is set.
            let strict = Facade::<Conn>::builder()
                .writer(primary_url.clone())
                .replica(replica_url.clone())
                .max_replica_lag(Duration::from_millis(200))
                .build()
                .unwrap();
            replica_admin.borrow_mut().batch_execute($pause).expect("pause replay");
            let resume = Resume { conn: &replica_admin };
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
                assert!(Instant::now() < deadline, "replica never caught up: {seen:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
            drop(setup);
        }
    };
}

fn with_port(url: &str, port: u16) -> String {
    let mut parsed = url::Url::parse(url).expect("URL");
    parsed.set_port(Some(port)).expect("port");
    parsed.to_string()
}

mod pg {
    use super::*;
    replica_scenarios! {
        conn = PgConnection,
        on_replica_sql = "SELECT pg_is_in_recovery() AS flag",
        pause_sql = "SELECT pg_wal_replay_pause()",
        resume_sql = "SELECT pg_wal_replay_resume()",
    }
}

mod mariadb {
    use super::*;
    replica_scenarios! {
        conn = MysqlConnection,
        on_replica_sql = "SELECT @@server_id <> 1 AS flag",
        pause_sql = "STOP SLAVE SQL_THREAD",
        resume_sql = "START SLAVE SQL_THREAD",
    }
}

#[test]
fn postgres_streaming_replica() {
    let (Some(primary), Some(replica)) =
        (env("FACADE_TEST_PG_URL"), env("FACADE_TEST_PG_REPLICA_URL"))
    else {
        return;
    };
    pg::run(&primary, &replica);
}

#[test]
fn mariadb_gtid_replica() {
    let (Some(primary), Some(replica)) = (
        env("FACADE_TEST_MYSQL_URL"),
        env("FACADE_TEST_MYSQL_REPLICA_URL"),
    ) else {
        return;
    };
    mariadb::run(&primary, &replica);
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
fn galera_nodes_as_replicas_read_their_writes() {
    let Some(urls) = env("FACADE_TEST_GALERA_URLS") else {
        return;
    };
    let urls: Vec<&str> = urls.split(',').collect();
    let db_name = "ftg_replicas";
    let mut admin: MysqlConnection = connect_eventually(urls[0]);
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {db_name}; CREATE DATABASE {db_name}; USE {db_name};
             CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL);"
        ))
        .expect("create the database on node 1");
    let writer_port = url::Url::parse(urls[0]).unwrap().port().unwrap() as i32;
    let db = Facade::<MysqlConnection>::builder()
        .writer(with_db(urls[0], db_name))
        .replica(with_db(urls[1], db_name))
        .replica(with_db(urls[2], db_name))
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
