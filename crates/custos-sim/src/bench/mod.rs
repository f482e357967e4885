//! The harnesses behind BENCHMARKS.md (run by `custos bench …` and the scripts in bench/).
//!
//! * [`lookup`] — protected lookups over HTTP against a server loaded by `custos demo`
//!   (run by `bench/protected-lookup.sh`).
//! * [`ledger`] — durable appends with group commit, in-process, next to raw append +
//!   fsync and PostgreSQL batch inserts of the same records, and proof times (run by
//!   `bench/ledger-append.sh`).
//! * [`export`] — the SIEM export's events per second to a real syslog receiver over
//!   TLS, next to the wire alone and the mapping alone (run by `bench/export.sh`).
//! * [`soak`] — the demo company under a steady mixed load for minutes or hours, with
//!   latency, refusals and the server's memory over time (run by `bench/soak.sh`).
//! * [`trace`] — leak attribution speed on a generated store, with the data exported for
//!   DuckDB doing the equivalent join and count (run by `bench/trace-speed.sh`).

pub mod export;
pub mod ledger;
pub mod lookup;
pub mod soak;
pub mod trace;

use std::io::Write;
use std::path::Path;

use crate::Failure;

/// Prints a result line and appends it to `target/bench/results.jsonl`, where runs of
/// the scripts in bench/ collect.
pub(crate) fn emit(line: &serde_json::Value) -> Result<(), Failure> {
    crate::outln!("{line}")?;
    let dir = Path::new("target/bench");
    if std::fs::create_dir_all(dir).is_ok()
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("results.jsonl"))
    {
        let _ = writeln!(f, "{line}");
    }
    Ok(())
}

/// Progress of a harness on standard error, `bench <harness>: <message>`.
pub(crate) fn note(harness: &str, message: &str) {
    crate::stdout::note(format_args!("bench {harness}: {message}"));
}
