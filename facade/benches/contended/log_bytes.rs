//! What each lock costs per take in log bytes: server-wide byte counters
//! read before and after a run of single-threaded takes.

use std::cell::RefCell;
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Unsigned};
use diesel::{MysqlConnection, PgConnection};

use crate::common::median;
use crate::methods::{Method, Role, Worker};
use crate::sweep::Settings;

/// A server-wide byte counter (WAL position, binlog position, redo LSN,
/// replicated write-set bytes). `read` returns an epoch tag with the value:
/// two readings are comparable only with the same tag (a binlog file name).
pub struct Meter<'a> {
    pub name: &'static str,
    pub read: Box<dyn Fn() -> QueryResult<(String, u64)> + 'a>,
}

/// Bytes per take of each method, per meter: the minimum over repetitions
/// (other clients of the same server only ever add bytes), and the median.
pub struct LogBytes {
    pub meters: Vec<&'static str>,
    pub rows: Vec<LogRow>,
}

pub struct LogRow {
    pub method: &'static str,
    pub role: Role,
    /// `(min, median)` bytes per take, per meter.
    pub cells: Vec<(f64, f64)>,
    /// Median microseconds per take, single-threaded and uncontended.
    pub micros: f64,
}

pub fn per_take(methods: &[Method<'_>], meters: &[Meter<'_>], settings: &Settings) -> LogBytes {
    let mut samples: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); meters.len()]; methods.len()];
    let mut micros: Vec<Vec<f64>> = vec![Vec::new(); methods.len()];
    let mut workers: Vec<Worker<'_>> = methods.iter().map(|m| (m.worker)()).collect();
    for worker in &mut workers {
        worker().expect("log-bytes warm-up");
    }
    for _ in 0..settings.wal_reps {
        for (m, worker) in workers.iter_mut().enumerate() {
            let before: Vec<_> = meters
                .iter()
                .map(|meter| (meter.read)().expect("read a log position"))
                .collect();
            let started = Instant::now();
            for _ in 0..settings.wal_takes {
                worker().expect("log-bytes take");
            }
            micros[m].push(started.elapsed().as_secs_f64() * 1e6 / settings.wal_takes as f64);
            for (k, meter) in meters.iter().enumerate() {
                let after = (meter.read)().expect("read a log position");
                // A rotated binlog makes this repetition unusable.
                if after.0 == before[k].0 {
                    samples[m][k].push((after.1 - before[k].1) as f64 / settings.wal_takes as f64);
                }
            }
        }
    }
    LogBytes {
        meters: meters.iter().map(|m| m.name).collect(),
        rows: methods
            .iter()
            .zip(samples)
            .zip(micros)
            .map(|((method, per_meter), micros)| {
                let cells = per_meter
                    .iter()
                    .map(|s| {
                        if s.is_empty() {
                            (f64::NAN, f64::NAN)
                        } else {
                            (s.iter().copied().fold(f64::INFINITY, f64::min), median(s))
                        }
                    })
                    .collect();
                LogRow {
                    method: method.name,
                    role: method.role,
                    cells,
                    micros: median(&micros),
                }
            })
            .collect(),
    }
}

#[derive(QueryableByName)]
pub struct BigIntValue {
    #[diesel(sql_type = BigInt)]
    pub value: i64,
}

#[derive(QueryableByName)]
pub struct TextValue {
    #[diesel(sql_type = Text)]
    pub value: String,
}

#[derive(QueryableByName)]
pub struct MasterStatus {
    #[diesel(sql_type = Text, column_name = "File")]
    pub file: String,
    #[diesel(sql_type = Unsigned<BigInt>, column_name = "Position")]
    pub position: u64,
}

pub fn pg_wal_meter(url: &str) -> Meter<'static> {
    let conn = RefCell::new(PgConnection::establish(url).expect("connect for the WAL position"));
    Meter {
        name: "WAL bytes",
        // The insert position, not pg_current_wal_lsn() (the write
        // position, which can trail records already inserted).
        read: Box::new(move || {
            diesel::sql_query(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint AS value",
            )
            .get_result::<BigIntValue>(&mut *conn.borrow_mut())
            .map(|v| (String::new(), v.value as u64))
        }),
    }
}

pub fn mysql_status_meter(url: &str, name: &'static str, variable: &'static str) -> Meter<'static> {
    let conn = RefCell::new(MysqlConnection::establish(url).expect("connect for SHOW STATUS"));
    Meter {
        name,
        read: Box::new(move || {
            diesel::sql_query(
                "SELECT VARIABLE_VALUE AS value FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = ?",
            )
            .bind::<Text, _>(variable)
            .get_result::<TextValue>(&mut *conn.borrow_mut())
            .map(|v| (String::new(), v.value.parse().expect("a byte count")))
        }),
    }
}

/// `None` when binary logging is off on that server.
pub fn mysql_binlog_meter(url: &str) -> Option<Meter<'static>> {
    let mut conn = MysqlConnection::establish(url).expect("connect for SHOW MASTER STATUS");
    let status = diesel::sql_query("SHOW MASTER STATUS")
        .load::<MasterStatus>(&mut conn)
        .expect("SHOW MASTER STATUS");
    if status.is_empty() {
        return None;
    }
    let conn = RefCell::new(conn);
    Some(Meter {
        name: "binlog bytes",
        read: Box::new(move || {
            let status = diesel::sql_query("SHOW MASTER STATUS")
                .get_result::<MasterStatus>(&mut *conn.borrow_mut())?;
            Ok((status.file, status.position))
        }),
    })
}
