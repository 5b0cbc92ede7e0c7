//! The reliability figures the fault suites measure, in one line format, so
//! docs/reliability.md can be checked against the suites' own output.
//!
//! Each fault test calls [`reliability`] once per fault and backend. The
//! line goes to stderr and, when `FACADE_RELIABILITY_LOG` names a file (as
//! `scripts/test` sets it), is appended there too, where cargo's output
//! capture cannot hide it.

use std::io::Write;

/// What one fault run measured.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The fault, e.g. `proxy: COMMIT sent, reply dropped`.
    pub fault: String,
    /// The backend, e.g. `postgres`, `mariadb`, `galera`.
    pub backend: String,
    /// Calls made.
    pub runs: u64,
    /// Calls that returned `Ok`.
    pub ok: u64,
    /// Calls that returned `CommitUnknown`.
    pub unknown: u64,
    /// Calls that returned any other error.
    pub failed: u64,
    /// Rows (or increments) found on the server afterwards.
    pub rows: u64,
    /// `Ok` calls whose row is missing (must be 0).
    pub lost: u64,
    /// Failed (not unknown) calls whose row is present (must be 0).
    pub false_commits: u64,
    /// Anything else worth printing (`key=value` pairs).
    pub extra: String,
}

impl Outcome {
    /// The report line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "reliability | {} | {} | runs={} ok={} unknown={} failed={} rows={} lost={} false_commits={}",
            self.fault,
            self.backend,
            self.runs,
            self.ok,
            self.unknown,
            self.failed,
            self.rows,
            self.lost,
            self.false_commits
        );
        if !self.extra.is_empty() {
            line.push(' ');
            line.push_str(&self.extra);
        }
        line
    }
}

/// Print `outcome` and append it to `$FACADE_RELIABILITY_LOG` when set.
pub fn reliability(outcome: &Outcome) {
    let line = outcome.line();
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("FACADE_RELIABILITY_LOG") {
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = written {
            panic!("cannot append to FACADE_RELIABILITY_LOG {path:?}: {e}");
        }
    }
}
