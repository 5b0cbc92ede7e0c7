//! Which test servers are configured, as cfgs the suites gate their tests
//! on: `#[cfg_attr(not(pg_server), ignore = "needs FACADE_TEST_PG_URL")]`
//! marks a test ignored, with the variable it needs, when that variable is
//! unset or empty. Under `CI=true` nothing is ignored: a test whose server
//! is missing runs and fails, naming the variable (see `src/lib.rs`).
//!
//! Cargo rebuilds the suites when one of these variables changes, so what
//! is ignored always matches the environment of the build.

/// Each cfg and the environment variable that sets it.
const SERVERS: [(&str, &str); 6] = [
    ("pg_server", "FACADE_TEST_PG_URL"),
    ("pg_replica", "FACADE_TEST_PG_REPLICA_URL"),
    ("mysql_server", "FACADE_TEST_MYSQL_URL"),
    ("mysql_replica", "FACADE_TEST_MYSQL_REPLICA_URL"),
    ("galera_cluster", "FACADE_TEST_GALERA_URLS"),
    // The second set of servers the kill -9 suite may crash (scripts/test).
    ("fault_servers", "FACADE_FAULT_SERVERS_DIR"),
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CI");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for (cfg, var) in SERVERS {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
        println!("cargo:rerun-if-env-changed={var}");
        if ci || std::env::var(var).is_ok_and(|v| !v.is_empty()) {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
