//! The harnesses behind BENCHMARKS.md (run by `custos bench …` and the scripts in bench/).
//!
//! * [`lookup`] — protected lookups over HTTP against a server loaded by `custos demo`
//!   (run by `bench/protected-lookup.sh`).
//! * [`ledger`] — durable appends with group commit, in-process, next to raw append +
//!   fsync and PostgreSQL batch inserts of the same records, and proof times (run by
//!   `bench/ledger-append.sh`).
//! * [`trace`] — leak attribution speed on a generated store, with the data exported for
//!   DuckDB doing the equivalent join and count (run by `bench/trace-speed.sh`).

pub mod ledger;
pub mod lookup;
pub mod trace;
