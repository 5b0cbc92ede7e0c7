//! Running a method on some threads for a while, checking the counter
//! after every run, and the paired rounds of one sweep; also the statement
//! count of one increment.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel_facade::{Facade, FacadeBuilder, SupportedConnection};

use crate::common::{env_u64, median};
use crate::methods::Method;
use crate::POOL_SIZE;

/// The outcome of one run of one method on some threads.
#[derive(Debug, Default)]
pub struct Run {
    pub committed: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Run {
    pub fn per_second(&self) -> f64 {
        self.committed as f64 / self.elapsed.as_secs_f64()
    }
}

/// Run `method` on `threads` threads for `duration`, all released together;
/// the wall time runs from the release to the last thread's last commit.
/// Panics if the counter did not grow by exactly the committed increments.
pub fn run(
    backend: &str,
    method: &Method<'_>,
    counter: &dyn Fn() -> i64,
    threads: usize,
    duration: Duration,
) -> Run {
    let before = counter();
    let barrier = Barrier::new(threads + 1);
    let mut total = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut increment = (method.worker)();
                    let mut mine = Run::default();
                    barrier.wait();
                    let deadline = Instant::now() + duration;
                    while Instant::now() < deadline {
                        match increment() {
                            Ok(()) => mine.committed += 1,
                            Err(err) => {
                                mine.failed += 1;
                                mine.first_error.get_or_insert(err);
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut total = Run::default();
        for handle in handles {
            let mine = handle.join().expect("bench thread");
            total.committed += mine.committed;
            total.failed += mine.failed;
            if total.first_error.is_none() {
                total.first_error = mine.first_error;
            }
        }
        total.elapsed = start.elapsed();
        total
    });
    let grown = counter() - before;
    assert_eq!(
        grown, total.committed as i64,
        "{backend}, {}, {threads} threads: LOST UPDATES: {} increments committed but the \
         counter grew by {grown}",
        method.name, total.committed,
    );
    total.first_error = total.first_error.map(|e| one_line(&e));
    total
}

pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One thread count of one backend: increments/s per method per round.
pub struct Point {
    pub threads: usize,
    /// `rates[m][round]`, methods in the backend's sweep order.
    pub rates: Vec<Vec<f64>>,
    pub failed: Vec<u64>,
    pub first_error: Vec<Option<String>>,
}

impl Point {
    pub fn rate(&self, m: usize) -> f64 {
        median(&self.rates[m])
    }

    /// Median over rounds of method `a`'s throughput / method `b`'s.
    pub fn ratio(&self, a: usize, b: usize) -> f64 {
        let ratios: Vec<f64> = self.rates[a]
            .iter()
            .zip(&self.rates[b])
            .map(|(x, y)| x / y)
            .collect();
        median(&ratios)
    }
}

pub struct Settings {
    pub threads: Vec<usize>,
    pub rounds: usize,
    pub point: Duration,
    pub warm_up: Duration,
    pub wal_takes: u64,
    pub wal_reps: usize,
}

impl Settings {
    pub fn from_env() -> Self {
        let threads = std::env::var("FACADE_BENCH_THREADS")
            .ok()
            .map(|list| {
                list.split(',')
                    .map(|t| t.trim().parse().expect("FACADE_BENCH_THREADS: numbers"))
                    .collect()
            })
            .unwrap_or_else(|| vec![1, 2, 4, 8, 16]);
        let point = Duration::from_millis(env_u64("FACADE_BENCH_POINT_MS", 500).max(1));
        Settings {
            threads,
            rounds: env_u64("FACADE_BENCH_ROUNDS", 5).max(1) as usize,
            point,
            warm_up: point.min(Duration::from_millis(150)),
            wal_takes: env_u64("FACADE_BENCH_WAL_TAKES", 200).max(1),
            wal_reps: env_u64("FACADE_BENCH_WAL_REPS", 5).max(1) as usize,
        }
    }
}

pub fn points(
    backend: &str,
    methods: &[&Method<'_>],
    counter: &dyn Fn() -> i64,
    settings: &Settings,
) -> Vec<Point> {
    let mut points = Vec::new();
    for &threads in &settings.threads {
        assert!(
            threads as u32 <= POOL_SIZE,
            "at most {POOL_SIZE} threads (the pool size)"
        );
        // Untimed: grow each pool to `threads` live connections.
        for method in methods {
            run(backend, method, counter, threads, settings.warm_up);
        }
        let mut point = Point {
            threads,
            rates: vec![Vec::new(); methods.len()],
            failed: vec![0; methods.len()],
            first_error: vec![None; methods.len()],
        };
        for round in 0..settings.rounds {
            for k in 0..methods.len() {
                let m = (k + round) % methods.len();
                let result = run(backend, methods[m], counter, threads, settings.point);
                point.rates[m].push(result.per_second());
                point.failed[m] += result.failed;
                if point.first_error[m].is_none() {
                    point.first_error[m] = result.first_error;
                }
            }
        }
        let rates: Vec<String> = (0..methods.len())
            .map(|m| format!("{} {:.0}", methods[m].name, point.rate(m)))
            .collect();
        println!("  {backend}, {threads} threads: {}", rates.join(", "));
        points.push(point);
    }
    points
}

/// Counts the statements diesel sends (every `StartQuery`, which includes
/// `BEGIN`, `COMMIT` and r2d2's checkout ping).
#[derive(Debug, Default)]
pub struct StatementCounter {
    pub count: AtomicUsize,
}

impl StatementCounter {
    pub fn instrumentation(self: &Arc<Self>) -> Box<dyn Instrumentation> {
        let me = Arc::clone(self);
        Box::new(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { .. } = event {
                me.count.fetch_add(1, Ordering::Relaxed);
            }
        })
    }

    pub fn take(&self) -> usize {
        self.count.swap(0, Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub struct Counted(Arc<StatementCounter>);

impl<C: Connection> CustomizeConnection<C, diesel::r2d2::Error> for Counted {
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        conn.set_instrumentation(self.0.instrumentation());
        Ok(())
    }
}

/// A facade and a baseline pool of one connection each, both counting
/// statements, and the counter they share.
pub struct CountedSides<C: SupportedConnection + diesel::r2d2::R2D2Connection> {
    pub db: Facade<C>,
    pub pool: Pool<ConnectionManager<C>>,
    pub counter: Arc<StatementCounter>,
}

pub fn counted_sides<C>(url: &str) -> CountedSides<C>
where
    C: SupportedConnection + diesel::r2d2::R2D2Connection,
{
    let counter = Arc::new(StatementCounter::default());
    CountedSides {
        db: counted_facade(url, &counter, |b| b),
        pool: Pool::builder()
            .max_size(1)
            .connection_customizer(Box::new(Counted(Arc::clone(&counter))))
            .build(ConnectionManager::<C>::new(url))
            .expect("build the counted pool"),
        counter,
    }
}

/// A facade of one connection, configured by `configure`, whose statements
/// `counter` counts.
pub fn counted_facade<C: SupportedConnection>(
    url: &str,
    counter: &Arc<StatementCounter>,
    configure: impl FnOnce(FacadeBuilder<C>) -> FacadeBuilder<C>,
) -> Facade<C> {
    let counter = Arc::clone(counter);
    configure(Facade::<C>::builder().writer(url).max_pool_size(1))
        .instrumentation(move || counter.instrumentation())
        .build()
        .expect("build the counted facade")
}

/// Statements one increment of each method sends (after one uncounted
/// increment, so connecting is not counted).
pub fn statements(methods: &[Method<'_>], counter: &StatementCounter) -> Vec<f64> {
    const TAKES: usize = 10;
    methods
        .iter()
        .map(|method| {
            let mut worker = (method.worker)();
            worker().expect("counted increment");
            counter.take();
            for _ in 0..TAKES {
                worker().expect("counted increment");
            }
            counter.take() as f64 / TAKES as f64
        })
        .collect()
}
