//! `custos bench`: the benchmarks behind BENCHMARKS.md.
//!
//! * `custos bench lookup` — protected lookups over HTTP against a server loaded by
//!   `custos demo` ([`lookup`]; run by `bench/protected-lookup.sh`).
//! * `custos bench ledger` — durable appends with group commit, in-process, next to raw
//!   append + fsync and PostgreSQL batch inserts of the same records, and proof times
//!   ([`ledger`]; run by `bench/ledger-append.sh`).
//! * `custos bench trace` — leak attribution speed on a generated store, with the data
//!   exported for DuckDB doing the equivalent join and count ([`trace`]; run by
//!   `bench/trace-speed.sh`).
//! * `custos bench soak` — the demo company under a steady mixed load for minutes or
//!   hours ([`soak`]; run by `bench/soak.sh`).
//! * `custos bench export` — the SIEM export's events per second to a syslog receiver
//!   over TLS ([`export`]; run by `bench/export.sh`).

use custos_sim::Failure;
use custos_sim::bench::{export, ledger, lookup, soak, trace};

/// The benchmarks.
#[derive(clap::Subcommand)]
pub(crate) enum BenchCommand {
    /// Measure protected lookups over HTTP against a freshly loaded server.
    Lookup(lookup::LookupArgs),
    /// Measure durable ledger appends (group commit) against raw append + fsync and
    /// PostgreSQL batch inserts, and Merkle proof generation.
    Ledger(ledger::LedgerArgs),
    /// Measure leak attribution (`custos trace`) on a generated store of customers and
    /// access records, and export the same data for a DuckDB comparison.
    Trace(trace::TraceBenchArgs),
    /// Measure the SIEM export's events per second to a syslog receiver over TLS, next
    /// to the wire alone and the OCSF mapping alone.
    Export(export::ExportBenchArgs),
    /// Hold a server loaded by `custos demo` under a steady mixed load (views, reveals,
    /// searches, cases, traces, ledger reads, console pages) and report latency,
    /// refusals by code, server errors and resident memory over time.
    Soak(soak::SoakArgs),
}

/// Runs one benchmark.
pub(crate) async fn run(command: BenchCommand) -> Result<(), Failure> {
    match command {
        BenchCommand::Lookup(args) => lookup::run(args).await,
        BenchCommand::Ledger(args) => ledger::run(args).await,
        BenchCommand::Trace(args) => trace::run(args).await,
        BenchCommand::Export(args) => export::run(args).await,
        BenchCommand::Soak(args) => soak::run(args).await,
    }
}
