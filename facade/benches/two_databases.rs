//! A `#[writer]` that writes to two databases of one context (the default
//! `main` and a named `api`, issue 10) against the same work written by
//! hand with two r2d2 pools.
//!
//! ```sh
//! scripts/test-servers start && source target/test-servers/env
//! cargo bench -p diesel-facade --features postgres,mysql --bench two_databases
//! ```
//!
//! Pairs (each skipped with a line saying so when its variables are unset
//! or its server does not answer):
//! - `pg+pg`: main and api are two databases of the `FACADE_TEST_PG_URL`
//!   server;
//! - `mariadb+pg`: main on `FACADE_TEST_MYSQL_URL`, api on PostgreSQL.
//!
//! One call, facade: `#[writer] bump_both` increments main's counter and
//! calls `#[writer(db = api)] bump_api`, which begins api's own transaction
//! inside main's; both commit when `bump_both` returns (main first, then
//! api). By hand: a connection from each pool, `BEGIN` on main, the update,
//! `BEGIN` on api, the update, `COMMIT` on api, `COMMIT` on main (the
//! workloads' hand-written transaction, nested). The same statements in
//! another order of the two COMMITs, but for r2d2's checkout pings on the
//! hand-written side (`test_on_check_out`; the facade pings only a
//! connection idle for 500 ms or more). Single-threaded; pools of 4 on both sides.
//!
//! Method as in `workloads`: `FACADE_BENCH_PAIRS` (21) pairs of
//! back-to-back blocks of about `FACADE_BENCH_BLOCK_MS` (40) ms per side,
//! alternating which side goes first; calls/s from each side's median block
//! and the ratio as the median over pairs of facade time / baseline time.
//! The counters are checked afterwards: each side's increments all landed
//! on both databases.

mod common;

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::{MysqlConnection, PgConnection};
use diesel_facade::{writer, Facade, TransactionContext};

use common::{env_u64, in_transaction, median, redact};

diesel::table! {
    counters (id) {
        id -> Text,
        value -> Integer,
    }
}

const POOL_SIZE: u32 = 4;
const MAIN_DB: &str = "bench_two_main";
const API_DB: &str = "bench_two_api";

macro_rules! pair {
    ($module:ident, $Main:ty, $Api:ty) => {
        mod $module {
            use super::*;

            #[derive(TransactionContext)]
            pub struct Ctx {
                #[facade]
                pub main: Facade<$Main>,
                #[facade(api)]
                pub api: Facade<$Api>,
            }

            #[writer(db = api)]
            fn bump_api(ctx: &mut Ctx, side: &str) -> QueryResult<()> {
                diesel::update(counters::table.find(side))
                    .set(counters::value.eq(counters::value + 1))
                    .execute(ctx.conn())
                    .map(drop)
            }

            #[writer]
            pub fn bump_both(ctx: &mut Ctx, side: &str) -> QueryResult<()> {
                diesel::update(counters::table.find(side))
                    .set(counters::value.eq(counters::value + 1))
                    .execute(ctx.conn())?;
                bump_api(ctx, side)
            }

            pub fn base_bump_both(
                main: &Pool<ConnectionManager<$Main>>,
                api: &Pool<ConnectionManager<$Api>>,
                side: &str,
            ) -> QueryResult<()> {
                let mut main = main.get().expect("a main connection");
                let mut api = api.get().expect("an api connection");
                in_transaction(&mut *main, "BEGIN", |main| {
                    diesel::update(counters::table.find(side))
                        .set(counters::value.eq(counters::value + 1))
                        .execute(main)?;
                    in_transaction(&mut *api, "BEGIN", |api| {
                        diesel::update(counters::table.find(side))
                            .set(counters::value.eq(counters::value + 1))
                            .execute(api)
                            .map(drop)
                    })
                })
            }

            /// Runs the pair and returns (facade ns/call blocks, baseline
            /// ns/call blocks), checking every increment landed.
            pub fn run(main_url: &str, api_url: &str) -> (Vec<f64>, Vec<f64>) {
                let ctx = Ctx {
                    main: Facade::<$Main>::builder()
                        .writer(main_url)
                        .max_pool_size(POOL_SIZE)
                        .build()
                        .expect("the main facade"),
                    api: Facade::<$Api>::builder()
                        .writer(api_url)
                        .max_pool_size(POOL_SIZE)
                        .build()
                        .expect("the api facade"),
                };
                let main_pool = Pool::builder()
                    .max_size(POOL_SIZE)
                    .build(ConnectionManager::<$Main>::new(main_url))
                    .expect("the main pool");
                let api_pool = Pool::builder()
                    .max_size(POOL_SIZE)
                    .build(ConnectionManager::<$Api>::new(api_url))
                    .expect("the api pool");
                let mut facade_calls = 0u64;
                let mut base_calls = 0u64;
                let mut facade = |n: u64| {
                    for _ in 0..n {
                        bump_both(
                            &mut Ctx {
                                main: ctx.main.clone(),
                                api: ctx.api.clone(),
                            },
                            "facade",
                        )
                        .expect("bump_both");
                    }
                    facade_calls += n;
                };
                let mut base = |n: u64| {
                    for _ in 0..n {
                        base_bump_both(&main_pool, &api_pool, "base").expect("base_bump_both");
                    }
                    base_calls += n;
                };
                let blocks = super::measure(&mut facade, &mut base);
                let read = |side: &str| -> (i32, i32) {
                    let m = counters::table
                        .find(side)
                        .select(counters::value)
                        .first(&mut main_pool.get().expect("main"))
                        .expect("main counter");
                    let a = counters::table
                        .find(side)
                        .select(counters::value)
                        .first(&mut api_pool.get().expect("api"))
                        .expect("api counter");
                    (m, a)
                };
                let f = facade_calls as i32;
                let b = base_calls as i32;
                assert_eq!(read("facade"), (f, f), "every facade call landed on both");
                assert_eq!(
                    read("base"),
                    (b, b),
                    "every hand-written call landed on both"
                );
                blocks
            }
        }
    };
}

pair!(pg_pg, PgConnection, PgConnection);
pair!(mariadb_pg, MysqlConnection, PgConnection);

/// Calibrate, then `FACADE_BENCH_PAIRS` pairs of blocks, alternating which
/// side goes first; per-call nanoseconds of each block.
fn measure(facade: &mut dyn FnMut(u64), base: &mut dyn FnMut(u64)) -> (Vec<f64>, Vec<f64>) {
    let target = Duration::from_millis(env_u64("FACADE_BENCH_BLOCK_MS", 40));
    // Warm both sides' pools and statement caches, then size the blocks.
    facade(50);
    base(50);
    let start = Instant::now();
    base(100);
    let per_call = start.elapsed().as_secs_f64() / 100.0;
    let calls = ((target.as_secs_f64() / per_call) as u64).clamp(20, 100_000);
    let time = |run: &mut dyn FnMut(u64)| {
        let start = Instant::now();
        run(calls);
        start.elapsed().as_nanos() as f64 / calls as f64
    };
    let (mut f, mut b) = (Vec::new(), Vec::new());
    for pair in 0..env_u64("FACADE_BENCH_PAIRS", 21).max(1) {
        if pair % 2 == 0 {
            f.push(time(facade));
            b.push(time(base));
        } else {
            b.push(time(base));
            f.push(time(facade));
        }
    }
    (f, b)
}

/// A fresh database `name` on the server of `admin` (its URL then), with
/// the two counter rows.
fn fresh_database(admin: &str, name: &str, postgres: bool) -> Result<String, String> {
    let setup = |sql: &[String], url: &str| -> Result<(), String> {
        if postgres {
            let mut conn = PgConnection::establish(url).map_err(|e| e.to_string())?;
            for s in sql {
                diesel::connection::SimpleConnection::batch_execute(&mut conn, s)
                    .map_err(|e| e.to_string())?;
            }
        } else {
            let mut conn = MysqlConnection::establish(url).map_err(|e| e.to_string())?;
            for s in sql {
                diesel::connection::SimpleConnection::batch_execute(&mut conn, s)
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    };
    let drop = if postgres {
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    } else {
        format!("DROP DATABASE IF EXISTS {name}")
    };
    setup(&[drop, format!("CREATE DATABASE {name}")], admin)?;
    let mut url = url::Url::parse(admin).map_err(|e| e.to_string())?;
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    setup(
        &[
            "CREATE TABLE counters (id VARCHAR(20) PRIMARY KEY, value INTEGER NOT NULL)".to_owned(),
            "INSERT INTO counters (id, value) VALUES ('facade', 0), ('base', 0)".to_owned(),
        ],
        &url,
    )?;
    Ok(url)
}

fn report(label: &str, (f, b): (Vec<f64>, Vec<f64>)) {
    let ratios: Vec<f64> = f.iter().zip(&b).map(|(f, b)| f / b).collect();
    println!(
        "{label:<12} {:>14.0} {:>16.0} {:>7.3}",
        1e9 / median(&f),
        1e9 / median(&b),
        median(&ratios)
    );
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|ns| format!("{:.1}", ns / 1000.0))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "  per-block µs/call, facade | baseline: {} | {}",
        fmt(&f),
        fmt(&b)
    );
}

fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let pg = std::env::var("FACADE_TEST_PG_URL").ok();
    let mysql = std::env::var("FACADE_TEST_MYSQL_URL").ok();
    println!("== a #[writer] on two databases vs hand-written diesel + two r2d2 pools ==");
    println!(
        "calls/s = 1 / median per-call time over {} block pairs; ratio = median of facade / baseline",
        env_u64("FACADE_BENCH_PAIRS", 21).max(1)
    );
    println!(
        "{:<12} {:>14} {:>16} {:>7}",
        "pair", "facade call/s", "baseline call/s", "ratio"
    );
    let Some(pg) = pg else {
        println!("pg+pg, mariadb+pg: SKIPPED, FACADE_TEST_PG_URL is not set");
        return;
    };
    let databases = fresh_database(&pg, MAIN_DB, true)
        .and_then(|main| fresh_database(&pg, API_DB, true).map(|api| (main, api)));
    match databases {
        Ok((main, api)) => report("pg+pg", pg_pg::run(&main, &api)),
        Err(err) => println!("pg+pg: SKIPPED, {} ({err})", redact(&pg)),
    }
    let Some(mysql) = mysql else {
        println!("mariadb+pg: SKIPPED, FACADE_TEST_MYSQL_URL is not set");
        return;
    };
    let databases = fresh_database(&mysql, MAIN_DB, false)
        .and_then(|main| fresh_database(&pg, API_DB, true).map(|api| (main, api)));
    match databases {
        Ok((main, api)) => report("mariadb+pg", mariadb_pg::run(&main, &api)),
        Err(err) => println!("mariadb+pg: SKIPPED, {} ({err})", redact(&mysql)),
    }
}
