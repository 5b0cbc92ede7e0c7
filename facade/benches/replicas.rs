//! Replica reads: W1 (one item by primary key, docs/performance.md) through
//! `#[reader]` on the primary vs `#[reader(replica)]` on a replica, for a
//! context that never wrote (no wait) and for one that did (the
//! read-your-writes check: one `pg_last_wal_replay_lsn()` poll on
//! PostgreSQL, one `MASTER_GTID_WAIT` on MariaDB), in the same run.
//!
//! ```sh
//! scripts/test-servers start && source target/test-servers/env
//! taskset -c 0 cargo bench -p diesel-facade --features postgres,mysql --bench replicas
//! ```
//!
//! Needs `FACADE_TEST_PG_URL` + `FACADE_TEST_PG_REPLICA_URL` and/or
//! `FACADE_TEST_MYSQL_URL` + `FACADE_TEST_MYSQL_REPLICA_URL`; a pair that is
//! not set is skipped with a line saying so. Each variant runs in
//! `FACADE_BENCH_PAIRS` (default 15) rounds of `FACADE_BENCH_BLOCK_MS`
//! (default 40) ms, interleaved; the table shows median calls/s and the
//! median of the per-round ratios to the primary reader's time per call.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::{MysqlConnection, PgConnection};
use diesel_facade::{
    reader, writer, Facade, ReadPosition, SupportedConnection, TransactionContext,
};

diesel::table! {
    items (id) {
        id -> Integer,
        name -> Text,
        qty -> Integer,
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = items)]
#[allow(dead_code)]
struct Item {
    id: i32,
    name: String,
    qty: i32,
}

macro_rules! workloads {
    ($module:ident, $conn:ty) => {
        mod $module {
            use super::*;

            #[derive(TransactionContext)]
            pub struct Req {
                #[facade]
                pub db: Facade<$conn>,
                #[read_position]
                pub position: ReadPosition,
            }

            #[reader]
            pub fn primary(ctx: &mut Req, id: i32) -> QueryResult<Item> {
                items::table
                    .find(id)
                    .select(Item::as_select())
                    .first(ctx.conn())
            }

            #[reader(replica)]
            pub fn replica(ctx: &mut Req, id: i32) -> QueryResult<(Item, bool)> {
                let item = items::table
                    .find(id)
                    .select(Item::as_select())
                    .first(ctx.conn())?;
                Ok((item, ctx.on_replica()))
            }

            #[writer]
            pub fn touch(ctx: &mut Req) -> QueryResult<usize> {
                diesel::update(items::table.find(1))
                    .set(items::qty.eq(items::qty + 1))
                    .execute(ctx.conn())
            }
        }
    };
}

workloads!(pg, PgConnection);
workloads!(mysql, MysqlConnection);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn with_db(url: &str, db: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("URL parses");
    parsed.set_path(&format!("/{db}"));
    parsed.to_string()
}

/// Time `call` for about `block` and return calls per second.
fn block(block: Duration, mut call: impl FnMut(i32)) -> f64 {
    let started = Instant::now();
    let mut calls = 0u32;
    while started.elapsed() < block {
        call(1 + (calls % 1000) as i32);
        calls += 1;
    }
    f64::from(calls) / started.elapsed().as_secs_f64()
}

struct Variant<'a> {
    name: &'static str,
    call: Box<dyn FnMut(i32) + 'a>,
}

fn measure(backend: &str, mut variants: Vec<Variant<'_>>) {
    let pairs = env_u64("FACADE_BENCH_PAIRS", 15).max(1);
    let block_len = Duration::from_millis(env_u64("FACADE_BENCH_BLOCK_MS", 40));
    for v in &mut variants {
        block(Duration::from_millis(200), &mut v.call); // warm the pools
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..pairs {
        let mut this_round = vec![0.0; variants.len()];
        // Rotate the order so no variant always runs first.
        for k in 0..variants.len() {
            let i = (k + round as usize) % variants.len();
            this_round[i] = block(block_len, &mut variants[i].call);
        }
        for i in 0..variants.len() {
            rates[i].push(this_round[i]);
            // time per call relative to the primary reader (variant 0)
            ratios[i].push(this_round[0] / this_round[i]);
        }
    }
    println!("\n{backend}: W1 read, {pairs} interleaved rounds of {block_len:?}");
    println!("| variant | calls/s | time per call vs #[reader] |");
    println!("|---|---:|---:|");
    for (i, v) in variants.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.3} |",
            v.name,
            median(&mut rates[i]),
            median(&mut ratios[i])
        );
    }
}

fn setup<C: SupportedConnection>(
    primary_admin: &str,
    replica_admin: &str,
    db_name: &str,
    seed: &str,
) -> Facade<C> {
    let mut admin = C::establish(primary_admin).expect("connect to the primary");
    let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {db_name}"))
        .expect("create the bench database");
    let primary = with_db(primary_admin, db_name);
    let replica = with_db(replica_admin, db_name);
    C::establish(&primary)
        .expect("connect to the bench database")
        .batch_execute(seed)
        .expect("seed 1000 items");
    // Wait until the replica has the rows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut conn) = C::establish(&replica) {
            if conn
                .batch_execute("SELECT qty FROM items WHERE id = 1000")
                .is_ok()
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the replica never received the bench rows"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Facade::<C>::builder()
        .writer(primary)
        .replica(replica)
        .max_pool_size(4)
        .build()
        .expect("facade with a replica")
}

fn seed_sql(insert_rows: &str) -> String {
    format!(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(64) NOT NULL, qty INTEGER NOT NULL); {insert_rows}"
    )
}

fn rows_sql() -> String {
    let values: Vec<String> = (1..=1000)
        .map(|i| format!("({i}, 'item {i}', {})", i % 17))
        .collect();
    format!(
        "INSERT INTO items (id, name, qty) VALUES {};",
        values.join(", ")
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let rows = rows_sql();
    let pg_urls = (
        std::env::var("FACADE_TEST_PG_URL"),
        std::env::var("FACADE_TEST_PG_REPLICA_URL"),
    );
    if let (Ok(primary), Ok(replica)) = pg_urls {
        let db = setup::<PgConnection>(
            &primary,
            &replica,
            "facade_bench_replicas",
            &seed_sql(&rows),
        );
        let fresh = || pg::Req {
            db: db.clone(),
            position: ReadPosition::new(),
        };
        let mut reader_ctx = fresh();
        let mut replica_ctx = fresh();
        let mut ryw_ctx = fresh();
        pg::touch(&mut ryw_ctx).expect("a write records a position");
        assert!(ryw_ctx.position.token().is_some());
        // The last seeded row on the replica: it has caught up.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(pg::replica(&mut replica_ctx, 1000), Ok((_, true))) {
            assert!(
                Instant::now() < deadline,
                "the replica never served the bench rows"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        measure(
            "PostgreSQL (streaming replica)",
            vec![
                Variant {
                    name: "#[reader] (primary)",
                    call: Box::new(move |id| {
                        pg::primary(&mut reader_ctx, id).expect("read");
                    }),
                },
                Variant {
                    name: "#[reader(replica)], context did not write",
                    call: Box::new(move |id| {
                        pg::replica(&mut replica_ctx, id).expect("read");
                    }),
                },
                Variant {
                    name: "#[reader(replica)], context wrote (read-your-writes check)",
                    call: Box::new(move |id| {
                        pg::replica(&mut ryw_ctx, id).expect("read");
                    }),
                },
            ],
        );
        println!(
            "replica fallbacks during the run: {}",
            db.stats().replica_fallbacks
        );
    } else {
        println!("PostgreSQL: SKIPPED, FACADE_TEST_PG_URL / FACADE_TEST_PG_REPLICA_URL not set");
    }

    let mysql_urls = (
        std::env::var("FACADE_TEST_MYSQL_URL"),
        std::env::var("FACADE_TEST_MYSQL_REPLICA_URL"),
    );
    if let (Ok(primary), Ok(replica)) = mysql_urls {
        let db = setup::<MysqlConnection>(
            &primary,
            &replica,
            "facade_bench_replicas",
            &seed_sql(&rows),
        );
        let fresh = || mysql::Req {
            db: db.clone(),
            position: ReadPosition::new(),
        };
        let mut reader_ctx = fresh();
        let mut replica_ctx = fresh();
        let mut ryw_ctx = fresh();
        mysql::touch(&mut ryw_ctx).expect("a write records a position");
        assert!(ryw_ctx.position.token().is_some());
        // The last seeded row on the replica: it has caught up.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(mysql::replica(&mut replica_ctx, 1000), Ok((_, true))) {
            assert!(
                Instant::now() < deadline,
                "the replica never served the bench rows"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        measure(
            "MariaDB (GTID replica)",
            vec![
                Variant {
                    name: "#[reader] (primary)",
                    call: Box::new(move |id| {
                        mysql::primary(&mut reader_ctx, id).expect("read");
                    }),
                },
                Variant {
                    name: "#[reader(replica)], context did not write",
                    call: Box::new(move |id| {
                        mysql::replica(&mut replica_ctx, id).expect("read");
                    }),
                },
                Variant {
                    name: "#[reader(replica)], context wrote (read-your-writes check)",
                    call: Box::new(move |id| {
                        mysql::replica(&mut ryw_ctx, id).expect("read");
                    }),
                },
            ],
        );
        println!(
            "replica fallbacks during the run: {}",
            db.stats().replica_fallbacks
        );
    } else {
        println!("MariaDB: SKIPPED, FACADE_TEST_MYSQL_URL / FACADE_TEST_MYSQL_REPLICA_URL not set");
    }
}
