//! The service on 127.0.0.1 (an ephemeral port) with a fresh PostgreSQL
//! database, driven by a real HTTP client.
//!
//! Needs `FACADE_TEST_PG_URL` (an admin URL of the test server) and, for the
//! replica test, `FACADE_TEST_PG_REPLICA_URL` (its streaming replica, which
//! follows the primary's databases by itself). Without them a test says
//! SKIPPED and passes, except under `CI=true`, where it fails.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum_service::routes::DB_SERVER;
use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::{Connection, PgConnection};
use diesel_facade::Facade;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set under CI=true: these tests need the PostgreSQL test servers")
        }
        _ => {
            eprintln!(
                "SKIPPED: {var} is not set; start the test servers with scripts/test-servers"
            );
            None
        }
    }
}

fn with_database(url: &str, db: &str) -> String {
    let mut url = url::Url::parse(url).expect("test server URL parses");
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// A new, empty database for `test` on the test server: its URL, and the
/// same database's URL on the replica if `replica_var` names one.
fn fresh_database(test: &str, replica_var: Option<&str>) -> Option<(String, Option<String>)> {
    let admin = server_url("FACADE_TEST_PG_URL")?;
    let replica = match replica_var {
        Some(var) => Some(server_url(var)?),
        None => None,
    };
    let prefix = std::env::var("FACADE_TEST_DB_PREFIX").unwrap_or_default();
    let db = format!("ft{prefix}_axum_{test}").to_ascii_lowercase();
    let mut conn = PgConnection::establish(&admin).expect("connect to the test server");
    // One statement per call: DROP DATABASE refuses to run in a transaction.
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .expect("drop the old test database");
    conn.batch_execute(&format!("CREATE DATABASE {db}"))
        .expect("create the test database");
    let replica = replica.map(|url| {
        // The replica replays the CREATE DATABASE in a moment.
        let url = with_database(&url, &db);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Err(err) = PgConnection::establish(&url) {
            assert!(
                Instant::now() < deadline,
                "the replica never got {db}: {err}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        url
    });
    Some((with_database(&admin, &db), replica))
}

const POOL_SIZE: u32 = 10;

/// How many times a replica was asked whether it has applied a read
/// position (the read-your-writes wait), as diesel's instrumentation sees
/// the queries.
#[derive(Clone, Default)]
struct ReplicaWaits(Arc<AtomicUsize>);

impl ReplicaWaits {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }

    fn factory(&self) -> impl Fn() -> Box<dyn Instrumentation> + Send + Sync + 'static {
        let count = Arc::clone(&self.0);
        move || {
            let count = Arc::clone(&count);
            Box::new(move |event: InstrumentationEvent<'_>| {
                if let InstrumentationEvent::StartQuery { query, .. } = event {
                    if query.to_string().contains("pg_last_wal_replay_lsn() >=") {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        }
    }
}

/// The facade the service would build from `DATABASE_URL` and
/// `DATABASE_REPLICA_URLS`, migrated as at start-up.
fn database(primary: &str, replica: Option<&str>) -> Facade<PgConnection> {
    database_counting(primary, replica, &ReplicaWaits::default())
}

fn database_counting(
    primary: &str,
    replica: Option<&str>,
    waits: &ReplicaWaits,
) -> Facade<PgConnection> {
    let mut builder = Facade::<PgConnection>::builder()
        .writer(primary)
        .max_pool_size(POOL_SIZE)
        .pool_timeout(Duration::from_secs(10))
        .instrumentation(waits.factory());
    if let Some(replica) = replica {
        // Generous on a shared, loaded test machine: the test asserts that
        // the replica (not the primary fallback) answered. A read answered
        // by the primary was seen in one run of five; the likely cause is
        // the default 250 ms replica checkout, which marks the replica down
        // when a connect takes longer on a loaded machine.
        builder = builder
            .replica(replica)
            .replica_wait_timeout(Duration::from_secs(10))
            .replica_timeouts(Duration::from_secs(10), Duration::from_secs(5));
    }
    let db = builder.build().expect("build the facade");
    axum_service::migrate(&db).expect("migrations");
    axum_service::migrate(&db).expect("migrations are idempotent");
    db
}

/// The service, listening on an ephemeral port of 127.0.0.1.
struct Service {
    base: String,
    db: Facade<PgConnection>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Service {
    async fn start(db: Facade<PgConnection>) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(axum_service::serve(
            listener,
            axum_service::router(db.clone()),
            shutdown,
        ));
        Service {
            base,
            db,
            stop,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful shutdown: the server stops and `serve` returns `Ok`.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the server stops within 30 s")
            .expect("the server task did not panic")
            .expect("serve returned Ok");
        let db = self.db;
        tokio::task::spawn_blocking(move || settle(&db))
            .await
            .expect("settle the pool");
    }
}

/// Wait until the writer pool has no connection attempt in flight.
///
/// r2d2 connects on background threads, a few at a time, and a burst of
/// requests can be served by the first connections while the rest are
/// still connecting. If the test process exits then, OpenSSL's exit
/// handler (libpq authenticates with it) frees its locks under those
/// threads and the process dies with SIGSEGV after every test passed.
/// Holding `POOL_SIZE` connections at once means none is pending.
fn settle(db: &Facade<PgConnection>) {
    let barrier = std::sync::Barrier::new(POOL_SIZE as usize);
    std::thread::scope(|s| {
        for _ in 0..POOL_SIZE {
            s.spawn(|| {
                diesel_facade::write(&mut db.context(), |_| {
                    barrier.wait();
                    Ok::<_, diesel_facade::Error>(())
                })
                .expect("a pooled connection");
            });
        }
    });
}

/// A client like a browser: it keeps cookies, and goes straight to
/// 127.0.0.1 whatever the proxy variables say.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn position_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("db_pos="))
        .map(str::to_owned)
}

async fn create(client: &reqwest::Client, service: &Service, name: &str) -> reqwest::Response {
    client
        .post(service.url("/items"))
        .json(&json!({ "name": name, "qty": 1 }))
        .send()
        .await
        .expect("POST /items")
}

#[test]
fn a_write_is_read_back_from_the_replica_through_the_position_cookie() {
    let Some((primary, replica)) = fresh_database("ryw", Some("FACADE_TEST_PG_REPLICA_URL")) else {
        return;
    };
    let waits = ReplicaWaits::default();
    let db = database_counting(&primary, replica.as_deref(), &waits);
    let stats = db.clone();
    runtime().block_on(async {
        let service = Service::start(db).await;
        let client = browser();

        let created = create(&client, &service, "widget").await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let cookie = position_cookie(&created).expect("a write sets the position cookie");
        assert!(cookie.starts_with("db_pos=pg:"), "{cookie}");
        let item: Value = created.json().await.unwrap();
        let id = item["id"].as_i64().unwrap();

        // Each round: a write in one request, a replica read in the next,
        // which is a new context that only has the cookie to go by.
        for round in 2..=11 {
            let restocked = client
                .post(service.url(&format!("/items/{id}/restock")))
                .send()
                .await
                .unwrap();
            assert_eq!(restocked.status(), StatusCode::OK);
            assert!(
                position_cookie(&restocked).is_some(),
                "each write moves the position"
            );

            let waits_before = waits.get();
            let read = client
                .get(service.url(&format!("/items/{id}")))
                .send()
                .await
                .unwrap();
            assert_eq!(read.status(), StatusCode::OK);
            assert_eq!(read.headers()[&DB_SERVER], "replica");
            assert_eq!(
                position_cookie(&read),
                None,
                "a read leaves the position as it is"
            );
            let item: Value = read.json().await.unwrap();
            assert_eq!(
                item["qty"], round,
                "the replica read sees the write before it"
            );
            assert!(
                waits.get() > waits_before,
                "the context restored from the cookie made the replica wait for the write"
            );
        }
        assert_eq!(stats.stats().replica_fallbacks, 0);

        // A user without the cookie has nothing to wait for.
        let stranger = reqwest::Client::builder().no_proxy().build().unwrap();
        let waits_before = waits.get();
        let read = stranger
            .get(service.url(&format!("/items/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(read.headers()[&DB_SERVER], "replica");
        assert_eq!(waits.get(), waits_before, "no position, no wait");

        // A forged position from the future is checked against the primary
        // and dropped: the read goes to the primary at once instead of
        // waiting out replica_wait_timeout (10 s here).
        let forged = reqwest::Client::builder().no_proxy().build().unwrap();
        let started = Instant::now();
        let read = forged
            .get(service.url(&format!("/items/{id}")))
            .header("cookie", "db_pos=pg:FFFFFFFF/FFFFFFFF")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            position_cookie(&read).is_some_and(|c| c.contains("Max-Age=0")),
            "the dropped position's cookie is cleared"
        );

        service.stop().await;
    });
}

#[test]
fn sixty_concurrent_requests_all_succeed_and_lose_no_update() {
    let Some((primary, _)) = fresh_database("concurrent", None) else {
        return;
    };
    let db = database(&primary, None);
    runtime().block_on(async {
        let service = Service::start(db).await;
        let client = browser();
        let created = create(&client, &service, "counter").await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let id = created.json::<Value>().await.unwrap()["id"]
            .as_i64()
            .unwrap();

        // 30 writers on one row and 30 readers, all at once, each with its
        // own request id.
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..60 {
            let client = client.clone();
            let request = if i % 2 == 0 {
                client.post(service.url(&format!("/items/{id}/restock")))
            } else {
                client.get(service.url(&format!("/items/{id}")))
            };
            requests.spawn(async move {
                let response = request
                    .header("x-request-id", format!("req-{i}"))
                    .send()
                    .await
                    .expect("a response");
                let status = response.status();
                let echoed = response.headers()["x-request-id"]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let item: Value = response.json().await.expect("a JSON item");
                (i, status, echoed, item["qty"].as_i64().unwrap())
            });
        }
        let mut restocked = HashSet::new();
        let mut answered = 0;
        while let Some(done) = requests.join_next().await {
            let (i, status, echoed, qty) = done.expect("the request task");
            assert_eq!(status, StatusCode::OK, "request {i}");
            assert_eq!(echoed, format!("req-{i}"));
            if i % 2 == 0 {
                assert!(restocked.insert(qty), "two restocks returned qty {qty}");
            }
            answered += 1;
        }
        assert_eq!(answered, 60);
        assert_eq!(restocked, (2..=31).collect::<HashSet<i64>>());

        let last = client
            .get(service.url(&format!("/items/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(last.json::<Value>().await.unwrap()["qty"], 31);
        service.stop().await;
    });
}

#[test]
fn a_duplicate_is_409_and_a_database_failure_is_an_opaque_500() {
    let Some((primary, _)) = fresh_database("errors", None) else {
        return;
    };
    let db = database(&primary, None);
    runtime().block_on(async {
        let service = Service::start(db).await;
        let client = browser();

        assert_eq!(
            create(&client, &service, "twice").await.status(),
            StatusCode::CREATED
        );
        let duplicate = create(&client, &service, "twice").await;
        assert_eq!(duplicate.status(), StatusCode::CONFLICT);
        let body: Value = duplicate.json().await.unwrap();
        assert_eq!(body["error"], "conflict");

        let missing = client
            .get(service.url("/items/999999"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let invalid = client
            .post(service.url("/items"))
            .json(&json!({ "name": "", "qty": 1 }))
            .send()
            .await
            .unwrap();
        assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);

        // A garbage position cookie is ignored (the request works) and
        // cleared.
        let garbage = reqwest::Client::builder().no_proxy().build().unwrap();
        let read = garbage
            .get(service.url("/items/1"))
            .header("cookie", "db_pos=pg:'%3B DROP TABLE items")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert!(position_cookie(&read).is_some_and(|c| c.contains("Max-Age=0")));

        // Pull the table from under the service: the next query fails with
        // a server message naming it ("relation \"items\" does not exist").
        let mut admin = PgConnection::establish(&primary).unwrap();
        admin
            .batch_execute("ALTER TABLE items RENAME TO items_moved")
            .unwrap();
        let failed = client
            .post(service.url("/items/1/restock"))
            .header("x-request-id", "the-failing-one")
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.headers()["x-request-id"], "the-failing-one");
        let body = failed.text().await.unwrap();
        let url = url::Url::parse(&primary).unwrap();
        let mut secrets = vec![
            "items".to_owned(),
            "relation".to_owned(),
            "UPDATE".to_owned(),
            "postgres".to_owned(),
            url.path().trim_start_matches('/').to_owned(),
            url.port().unwrap().to_string(),
            url.username().to_owned(),
        ];
        secrets.extend(url.password().map(str::to_owned));
        for secret in secrets {
            assert!(
                !body.contains(&secret),
                "{secret:?} leaked into the body {body}"
            );
        }
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({ "error": "internal", "message": "internal error" })
        );

        service.stop().await;
    });
}
