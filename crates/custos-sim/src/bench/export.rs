//! `custos bench export`: how many events per second the SIEM export delivers, in
//! process, to a real syslog receiver over TLS (bench/export.sh starts rsyslogd), next to
//! what the same receiver takes in the same run:
//!
//! * **export** — a ledger of `--entries` realistic records (written first, with group
//!   commit, on SQLite), then the production exporter's rounds (`export::round`: read the
//!   ledger from the cursor, look for alerts, make the OCSF events, send the batch, move
//!   the cursor in the store) from cursor 0 until it reaches the end; events/s = entries
//!   / wall time. Repeated `--runs` times, the cursor put back to 0 in between.
//! * **anchor: the wire** — the same events, made once beforehand, sent in batches of the
//!   same size through the same sink to the same receiver: what the TLS connection and
//!   the receiver allow without Custos's reads, mapping and cursor writes.
//! * **anchor: the mapping** — making the OCSF events of the same records, alone (one
//!   core).

use std::path::PathBuf;
use std::time::Instant;

use custos_access::AccessLog;
use custos_ledger::{Ledger, LedgerKey};
use custos_service::export::{EXPORT, Event, ExportConfig, Sinks, SyslogConfig, round};
use custos_store::Store;
use custos_types::clock::now_millis;
use serde_json::json;

use crate::Failure;

const HARNESS: &str = "export";
const ORIGIN: &str = "custos.bench/export";

/// Options of `custos bench export`.
#[derive(clap::Args)]
pub struct ExportBenchArgs {
    /// The syslog-over-TLS receiver, `host:port`.
    #[arg(long)]
    syslog: String,
    /// PEM file of the CA the receiver's certificate chains to.
    #[arg(long)]
    ca_file: PathBuf,
    /// The name on the receiver's certificate (default: the host of --syslog).
    #[arg(long)]
    server_name: Option<String>,
    /// Ledger entries exported per run.
    #[arg(long, default_value_t = 20_000)]
    entries: u64,
    /// Events per batch (`[export] batch`).
    #[arg(long, default_value_t = 500)]
    batch: u32,
    /// Measured runs of each measurement.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Directory to work in (a fresh subdirectory is made and removed). Default: ./target
    /// if it exists, else the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn fail(code: &'static str) -> impl Fn(String) -> Failure {
    move |message| Failure::new(code, message)
}

/// Runs the benchmark and prints one JSON line per measurement and a summary.
pub async fn run(args: ExportBenchArgs) -> Result<(), Failure> {
    if args.entries == 0 || args.runs == 0 {
        return Err(Failure::new(
            "bench_args",
            "--entries and --runs must be positive",
        ));
    }
    let base = args.dir.clone().unwrap_or_else(|| {
        if std::path::Path::new("target").is_dir() {
            PathBuf::from("target")
        } else {
            std::env::temp_dir()
        }
    });
    let work = base.join(format!(
        "custos-bench-export-{}-{}",
        std::process::id(),
        now_millis()
    ));
    std::fs::create_dir_all(&work).map_err(|e| fail("bench_dir")(e.to_string()))?;
    let outcome = measure(&args, &work).await;
    let _ = std::fs::remove_dir_all(&work);
    outcome
}

async fn measure(args: &ExportBenchArgs, work: &std::path::Path) -> Result<(), Failure> {
    let config = ExportConfig {
        syslog: Some(SyslogConfig {
            address: args.syslog.clone(),
            ca_file: args.ca_file.clone(),
            server_name: args.server_name.clone(),
            hostname: None,
        }),
        https: None,
        batch: args.batch,
    };
    let mut sinks = Sinks::new(&config)
        .map_err(fail("config_invalid"))?
        .ok_or_else(|| Failure::new("config_invalid", "no sink"))?;

    super::note(HARNESS, &format!("writing {} ledger entries", args.entries));
    let (key, _) = LedgerKey::load_or_create(&work.join("ledger.key"), ORIGIN)
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let ledger = Ledger::open(&work.join("ledger"), ORIGIN, key)
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let store = Store::open_sqlite(&work.join("custos.db"))
        .await
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let log = AccessLog::start(ledger, store.clone())
        .await
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let writers: Vec<_> = (0..64u64)
        .map(|w| {
            let log = log.clone();
            let entries = args.entries;
            tokio::spawn(async move {
                let mut n = w;
                while n < entries {
                    log.record(super::ledger::record(n)).await?;
                    n += 64;
                }
                Ok::<(), custos_access::AccessError>(())
            })
        })
        .collect();
    for writer in writers {
        writer
            .await
            .map_err(|e| fail("bench_write")(e.to_string()))?
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    }
    let records = log
        .entries(0, usize::try_from(args.entries).unwrap_or(usize::MAX))
        .await
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;

    let mut export_rates = Vec::new();
    let mut wire_rates = Vec::new();
    let mut mapping_rates = Vec::new();
    for run in 1..=args.runs {
        // The exporter, from cursor 0 to the ledger's end.
        store
            .set_consumer_cursor(EXPORT, 0)
            .await
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < args.entries {
            match round(&log, &store, &mut sinks, args.batch).await {
                Ok(Some(n)) => sent += n as u64,
                Ok(None) => return Err(Failure::new("bench_export", "the ledger shut down")),
                Err(code) => return Err(Failure::new("bench_export", code)),
            }
        }
        let export = sent as f64 / start.elapsed().as_secs_f64();
        export_rates.push(export);

        // The mapping alone.
        let start = Instant::now();
        let events: Vec<Event> = records.iter().map(Event::of_entry).collect();
        let mapping = events.len() as f64 / start.elapsed().as_secs_f64();
        mapping_rates.push(mapping);

        // The wire alone: the same events, the same batches, the same receiver.
        let start = Instant::now();
        for batch in events.chunks(usize::try_from(args.batch).unwrap_or(500)) {
            sinks
                .send(batch)
                .await
                .map_err(|e| Failure::new("bench_export", e.to_string()))?;
        }
        let wire = events.len() as f64 / start.elapsed().as_secs_f64();
        wire_rates.push(wire);
        super::emit(&json!({
            "measure": "export", "run": run, "entries": args.entries, "batch": args.batch,
            "export_events_per_s": export.round(), "wire_events_per_s": wire.round(),
            "mapping_events_per_s": mapping.round(),
        }))?;
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2].round()
    };
    super::emit(&json!({
        "measure": "export_summary", "runs": args.runs, "entries": args.entries,
        "batch": args.batch,
        "export_events_per_s_median": median(&mut export_rates),
        "wire_events_per_s_median": median(&mut wire_rates),
        "mapping_events_per_s_median": median(&mut mapping_rates),
        "event_bytes_mean": records.iter().map(|r| Event::of_entry(r).json.len()).sum::<usize>() / records.len().max(1),
    }))?;
    log.close().await;
    Ok(())
}
