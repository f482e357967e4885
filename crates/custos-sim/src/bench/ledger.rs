//! `custos bench ledger`: durable ledger appends with group commit, in-process, next to
//! the two anchors the issue asks for, measured in the same run on the same disk:
//!
//! * **group commit** — for each writer count W: a fresh [`Ledger`] with a fresh
//!   [`LedgerKey`], an [`AccessLog`] on it (with its SQLite access index running, as in
//!   production) and W tasks that loop `AccessLog::record` on realistic records. An entry
//!   counts when its `record()` returns `Ok` (it is durable) inside the measured window.
//!   Batches are counted from the sequencer's own `custos_ledger_batch_entries`
//!   histogram (one sample per `Ledger::append`), read through an in-process Prometheus
//!   recorder at the start and end of the window.
//! * **raw append + fsync** — the physical limit: one thread, one append-only file,
//!   `write_all` of the bytes of the mean measured batch (the same encoded entries) and
//!   `sync_data` per batch.
//! * **PostgreSQL** — the same records, in batches of the same mean size, inserted into a
//!   fresh `access_records` table (the production schema, created by the store's own
//!   migrations in a fresh database) with the production batch INSERT
//!   (`Store::append_access`: one `jsonb_array_elements` statement, one transaction per
//!   batch), from min(W, 16) connections.
//!
//! Then proofs on a ledger of `--proof-entries` entries: inclusion, consistency and C2SP
//! tlog-proof generation time.

use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use custos_access::{AccessLog, AccessRecord};
use custos_ledger::{Ledger, LedgerKey};
use custos_store::{AccessFilter, Store};
use custos_types::clock::now_millis;
use custos_types::{Action, Decision, Role};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rand::Rng;
use serde_json::{Value, json};

use crate::Failure;

/// How this harness names itself on standard error.
const HARNESS: &str = "ledger";
const ORIGIN: &str = "custos.bench/ledger";
const BATCH_METRIC: &str = "custos_ledger_batch_entries";
/// Connections used for the PostgreSQL anchor at most.
const MAX_PG_CONNECTIONS: usize = 16;
/// Entries per `append` call while building the proof ledger.
const BUILD_CHUNK: usize = 10_000;

/// Options of `custos bench ledger`.
#[derive(clap::Args)]
pub struct LedgerArgs {
    /// Directory to work in (a fresh subdirectory is made and removed). Default: ./target
    /// if it exists, else the system temp dir. Put it on the disk you want to measure.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Measured seconds per measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Unmeasured seconds before each measurement.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// Concurrent writers, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 16, 256])]
    writers: Vec<usize>,
    /// PostgreSQL server for the batch-INSERT anchor (a database `custos_bench_ledger_w<W>`
    /// is created and dropped with `psql`). Skipped with a note when unreachable.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Skip the PostgreSQL anchor.
    #[arg(long)]
    no_postgres: bool,
    /// Entries of the ledger the proofs are generated on.
    #[arg(long, default_value_t = 1_000_000)]
    proof_entries: u64,
    /// Inclusion and consistency proofs generated (tlog-proofs: a tenth of this).
    #[arg(long, default_value_t = 100_000)]
    proofs: usize,
}

/// Removes the work directory when the benchmark ends, however it ends.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fatal(code: &'static str) -> impl Fn(String) -> Failure {
    move |m| Failure::new(code, m)
}

/// Runs the benchmark, printing one JSON line per measurement and a summary.
pub async fn run(args: LedgerArgs) -> Result<(), Failure> {
    if args.writers.is_empty() || args.writers.contains(&0) || args.seconds == 0 {
        return Err(Failure::new(
            "bench_args",
            "--writers needs positive counts and --seconds must be positive",
        ));
    }
    let (base, why) = match &args.dir {
        Some(d) => (d.clone(), "--dir"),
        None if Path::new("target").is_dir() => (PathBuf::from("target"), "./target (default)"),
        None => (
            std::env::temp_dir(),
            "system temp dir (default; no ./target)",
        ),
    };
    let work = base.join(format!(
        "custos-bench-ledger-{}-{}",
        std::process::id(),
        now_millis()
    ));
    std::fs::create_dir_all(&work)
        .map_err(|e| Failure::new("bench_dir", format!("{}: {e}", work.display())))?;
    let work = WorkDir(work.canonicalize().unwrap_or(work));
    let (fs_type, device) = filesystem_of(&work.0);
    super::emit(&json!({
        "measure": "setup", "work_dir": work.0.display().to_string(), "work_dir_from": why,
        "filesystem": fs_type, "device": device, "seconds": args.seconds, "warmup": args.warmup,
        "entry_bytes_mean": mean_entry_len(), "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
    }))?;

    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(BATCH_METRIC.to_owned()),
            &[
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
            ],
        )
        .and_then(|b| b.install_recorder())
        .map_err(|e| Failure::new("bench_metrics", e.to_string()))?;

    let pg = if args.no_postgres {
        super::note(HARNESS, "PostgreSQL anchor skipped (--no-postgres)");
        None
    } else {
        postgres_probe(&args.postgres_url)
    };

    let mut rows = Vec::new();
    let mut errors = 0u64;
    for &w in &args.writers {
        let gc = group_commit(&work.0, w, &args, &metrics).await?;
        errors += gc.errors;
        super::emit(&gc.json)?;
        let raw = raw_append(&work.0, w, gc.mean_batch, &args).await?;
        super::emit(&raw)?;
        super::emit(&ledger_direct(&work.0, w, gc.mean_batch, &args).await?)?;
        let pgv = match &pg {
            Some(settings) => {
                let v =
                    postgres_insert(&args.postgres_url, w, gc.mean_batch, &args, settings).await;
                match v {
                    Ok(v) => {
                        super::emit(&v)?;
                        Some(v)
                    }
                    Err(e) => {
                        super::note(
                            HARNESS,
                            &format!("PostgreSQL anchor for W={w} failed: {}", e.message()),
                        );
                        None
                    }
                }
            }
            None => None,
        };
        rows.push((w, gc.json, raw, pgv));
    }

    let proofs = proofs(&work.0, &args).await?;
    for p in &proofs {
        super::emit(p)?;
    }

    summary(&rows, &proofs)?;
    if errors > 0 {
        return Err(Failure::new(
            "bench_errors",
            format!("{errors} records were not acknowledged"),
        ));
    }
    Ok(())
}

// ----- records -----

/// A realistic access record: a support agent revealing one customer's phone on a case.
pub(crate) fn record(n: u64) -> AccessRecord {
    let mut rng = rand::rng();
    AccessRecord {
        seq: 0,
        request_id: format!("req_{}", hex::encode(rng.random::<[u8; 12]>())),
        at: now_millis(),
        staff_id: format!("support-{:04}", n % 243),
        org: "custos".to_owned(),
        role: Role::Support.into(),
        action: Action::Reveal,
        customer_id: Some(format!("cus_{}", hex::encode(rng.random::<[u8; 8]>()))),
        fields: vec!["phone".to_owned()],
        case_id: Some(format!("case_{}", hex::encode(rng.random::<[u8; 8]>()))),
        target: None,
        decision: Decision::Allow,
        reason_code: "call-back".to_owned(),
        client: Some(format!(
            "10.{}.{}.{}",
            rng.random::<u8>(),
            rng.random::<u8>(),
            rng.random::<u8>()
        )),
    }
}

fn mean_entry_len() -> f64 {
    let n = 1000;
    let total: usize = (0..n)
        .map(|i| custos_access::entry::encode(&record(i)).len())
        .sum();
    total as f64 / n as f64
}

// ----- statistics -----

fn pct(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `(count, sum)` of the batch-size histogram, from the Prometheus text.
fn batch_totals(metrics: &PrometheusHandle) -> (f64, f64) {
    let text = metrics.render();
    let mut count = 0.0;
    let mut sum = 0.0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        if name == format!("{BATCH_METRIC}_count") {
            count = value;
        } else if name == format!("{BATCH_METRIC}_sum") {
            sum = value;
        }
    }
    (count, sum)
}

// ----- group commit -----

struct GroupCommit {
    json: Value,
    mean_batch: f64,
    errors: u64,
}

async fn group_commit(
    work: &Path,
    w: usize,
    args: &LedgerArgs,
    metrics: &PrometheusHandle,
) -> Result<GroupCommit, Failure> {
    super::note(HARNESS, &format!("group commit, {w} writers"));
    let dir = work.join(format!("group-commit-w{w}"));
    std::fs::create_dir_all(&dir).map_err(|e| Failure::new("bench_dir", e.to_string()))?;
    let (key, _) = LedgerKey::load_or_create(&dir.join("ledger.key"), ORIGIN)
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let ledger = Ledger::open(&dir.join("ledger"), ORIGIN, key)
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let store = Store::open_sqlite(&dir.join("custos.db"))
        .await
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let log = AccessLog::start(ledger, store)
        .await
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..w)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = t as u64;
                loop {
                    let r = record(n);
                    n += w as u64;
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let ok = log.record(r).await.is_ok();
                    let done = Instant::now();
                    if done >= measure_from && done < end {
                        if ok {
                            latencies.push((done - sent).as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let (count0, sum0) = batch_totals(metrics);
    let size0 = log.size();
    // The access index's lag behind the ledger, sampled through the window.
    let mut max_lag = 0u64;
    while Instant::now() < end {
        max_lag = max_lag.max(log.size().saturating_sub(log.indexed()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (count1, sum1) = batch_totals(metrics);
    let size1 = log.size();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.map_err(|e| Failure::new("bench", e.to_string()))?;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_unstable();

    // Let the access index catch up before the next measurement uses the disk.
    let caught = Instant::now();
    let filter = AccessFilter {
        limit: 1,
        ..AccessFilter::default()
    };
    let mut index_ok = false;
    while caught.elapsed() < Duration::from_secs(120) {
        if log.read(&filter).await.is_ok() {
            index_ok = true;
            break;
        }
    }
    let index_catch_up = caught.elapsed().as_secs_f64();

    let secs = args.seconds as f64;
    let acked = latencies.len() as u64;
    let batches = count1 - count0;
    let batched_entries = sum1 - sum0;
    let mean_batch = if batches > 0.0 {
        batched_entries / batches
    } else {
        1.0
    };
    let json = json!({
        "measure": "group_commit", "writers": w, "seconds": args.seconds,
        "entries": acked, "errors": errors,
        "entries_per_s": (acked as f64 / secs).round(),
        "appended_per_s": ((size1 - size0) as f64 / secs).round(),
        "p50_us": pct(&latencies, 0.50), "p99_us": pct(&latencies, 0.99),
        "batches": batches, "batches_per_s": round1(batches / secs),
        "mean_batch": round1(mean_batch),
        "access_index": "sqlite", "index_lag_max_entries": max_lag,
        "index_catch_up_s": round3(index_catch_up), "index_caught_up": index_ok,
    });
    // The log's tasks (writer, checkpoints, index) stay parked on their channels: there is
    // no shutdown in AccessLog, and their directory is removed at the end.
    Ok(GroupCommit {
        json,
        mean_batch,
        errors,
    })
}

// ----- raw append + fsync -----

async fn raw_append(
    work: &Path,
    w: usize,
    mean_batch: f64,
    args: &LedgerArgs,
) -> Result<Value, Failure> {
    let batch = mean_batch.round().max(1.0) as usize;
    super::note(
        HARNESS,
        &format!("raw append + fsync, batches of {batch} (W={w}'s mean)"),
    );
    let path = work.join(format!("raw-w{w}.log"));
    let buf: Vec<u8> = (0..batch as u64)
        .flat_map(|i| custos_access::entry::encode(&record(i)))
        .collect();
    let (warmup, seconds) = (args.warmup, args.seconds);
    let (batches, fsyncs) = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let start = Instant::now();
        let measure_from = start + Duration::from_secs(warmup);
        let end = measure_from + Duration::from_secs(seconds);
        let mut batches = 0u64;
        let mut latencies = Vec::new();
        loop {
            let sent = Instant::now();
            if sent >= end {
                break;
            }
            file.write_all(&buf).map_err(|e| e.to_string())?;
            file.sync_data().map_err(|e| e.to_string())?;
            let done = Instant::now();
            if done >= measure_from && done < end {
                batches += 1;
                latencies.push((done - sent).as_micros() as u64);
            }
        }
        latencies.sort_unstable();
        Ok::<_, String>((batches, latencies))
    })
    .await
    .map_err(|e| Failure::new("bench", e.to_string()))?
    .map_err(fatal("bench_raw"))?;
    let secs = args.seconds as f64;
    Ok(json!({
        "measure": "raw_append_fsync", "writers": w, "batch_entries": batch,
        "bytes_per_batch": batch as f64 * mean_entry_len(),
        "entries_per_s": ((batches * batch as u64) as f64 / secs).round(),
        "batches_per_s": round1(batches as f64 / secs),
        "write_fsync_p50_us": pct(&fsyncs, 0.50), "write_fsync_p99_us": pct(&fsyncs, 0.99),
    }))
}

// ----- Ledger::append alone -----

/// A diagnostic between the two: `Ledger::append` of the same batches on a fresh ledger,
/// one thread, without the sequencer, checkpoints or the access index.
async fn ledger_direct(
    work: &Path,
    w: usize,
    mean_batch: f64,
    args: &LedgerArgs,
) -> Result<Value, Failure> {
    let batch = mean_batch.round().max(1.0) as usize;
    super::note(
        HARNESS,
        &format!("Ledger::append alone, batches of {batch} (W={w}'s mean)"),
    );
    let dir = work.join(format!("direct-w{w}"));
    let entries: Vec<Vec<u8>> = (0..batch as u64)
        .map(|i| custos_access::entry::encode(&record(i)))
        .collect();
    let (warmup, seconds) = (args.warmup, args.seconds);
    let (batches, latencies) = tokio::task::spawn_blocking(move || {
        let err = |e: custos_ledger::LedgerError| Failure::new(e.code(), e.to_string());
        std::fs::create_dir_all(&dir).map_err(|e| Failure::new("bench_dir", e.to_string()))?;
        let (key, _) = LedgerKey::load_or_create(&dir.join("ledger.key"), ORIGIN).map_err(err)?;
        let mut ledger = Ledger::open(&dir.join("ledger"), ORIGIN, key).map_err(err)?;
        let start = Instant::now();
        let measure_from = start + Duration::from_secs(warmup);
        let end = measure_from + Duration::from_secs(seconds);
        let mut batches = 0u64;
        let mut latencies = Vec::new();
        loop {
            let sent = Instant::now();
            if sent >= end {
                break;
            }
            ledger.append(&entries).map_err(err)?;
            let done = Instant::now();
            if done >= measure_from && done < end {
                batches += 1;
                latencies.push((done - sent).as_micros() as u64);
            }
        }
        latencies.sort_unstable();
        Ok::<_, Failure>((batches, latencies))
    })
    .await
    .map_err(|e| Failure::new("bench", e.to_string()))??;
    let secs = args.seconds as f64;
    Ok(json!({
        "measure": "ledger_append_direct", "writers": w, "batch_entries": batch,
        "entries_per_s": ((batches * batch as u64) as f64 / secs).round(),
        "batches_per_s": round1(batches as f64 / secs),
        "append_p50_us": pct(&latencies, 0.50), "append_p99_us": pct(&latencies, 0.99),
    }))
}

// ----- PostgreSQL -----

/// `url` with its database name replaced by `db` (query string kept).
fn with_database(url: &str, db: &str) -> Option<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://")? + 3;
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| scheme_end + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

fn psql(url: &str, sql: &[&str]) -> Result<String, String> {
    let mut cmd = std::process::Command::new("psql");
    cmd.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", url]);
    for s in sql {
        cmd.args(["-c", s]);
    }
    let out = cmd.output().map_err(|e| format!("psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The server's durability settings, or `None` (with a note) when it is unreachable.
fn postgres_probe(url: &str) -> Option<Value> {
    match psql(
        url,
        &[
            "SHOW server_version",
            "SHOW fsync",
            "SHOW synchronous_commit",
            "SHOW wal_sync_method",
            "SHOW data_directory",
        ],
    ) {
        Ok(out) => {
            let v: Vec<&str> = out.lines().collect();
            let settings = json!({
                "server_version": v.first(), "fsync": v.get(1), "synchronous_commit": v.get(2),
                "wal_sync_method": v.get(3), "data_directory": v.get(4),
            });
            // A closed output ends the run at the next line it prints.
            let _ = super::emit(&json!({"measure": "postgres_setup", "settings": settings}));
            Some(settings)
        }
        Err(e) => {
            super::note(
                HARNESS,
                &format!("PostgreSQL anchor skipped: cannot reach the server with psql ({e})"),
            );
            let _ = super::emit(&json!({"measure": "postgres_setup", "skipped": e}));
            None
        }
    }
}

async fn postgres_insert(
    url: &str,
    w: usize,
    mean_batch: f64,
    args: &LedgerArgs,
    settings: &Value,
) -> Result<Value, Failure> {
    let batch = mean_batch.round().max(1.0) as usize;
    let connections = w.min(MAX_PG_CONNECTIONS);
    super::note(
        HARNESS,
        &format!("PostgreSQL INSERT, batches of {batch}, {connections} connections"),
    );
    let db = format!("custos_bench_ledger_w{w}");
    let db_url = with_database(url, &db)
        .ok_or_else(|| Failure::new("bench_postgres", "cannot parse --postgres-url"))?;
    psql(
        url,
        &[
            &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            &format!("CREATE DATABASE {db}"),
        ],
    )
    .map_err(fatal("bench_postgres"))?;
    let result = postgres_measure(&db_url, connections, batch, args).await;
    if let Err(e) = psql(
        url,
        &[&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")],
    ) {
        super::note(HARNESS, &format!("could not drop database {db}: {e}"));
    }
    let (rows, errors, mut latencies) = result?;
    latencies.sort_unstable();
    let secs = args.seconds as f64;
    Ok(json!({
        "measure": "postgres_insert", "writers": w, "connections": connections,
        "batch_rows": batch, "rows": rows, "errors": errors,
        "entries_per_s": (rows as f64 / secs).round(),
        "commit_p50_us": pct(&latencies, 0.50), "commit_p99_us": pct(&latencies, 0.99),
        "settings": settings,
    }))
}

async fn postgres_measure(
    db_url: &str,
    connections: usize,
    batch: usize,
    args: &LedgerArgs,
) -> Result<(u64, u64, Vec<u64>), Failure> {
    // The store's own migrations create the production `access_records` table (same
    // columns, indexes and append-only triggers); `append_access` is the production
    // batch INSERT.
    let store = Store::open_postgres(db_url, connections as u32)
        .await
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let seq = Arc::new(AtomicI64::new(0));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let store = store.clone();
            let seq = seq.clone();
            tokio::spawn(async move {
                let mut rows = 0u64;
                let mut errors = 0u64;
                let mut latencies = Vec::new();
                let mut n = c as u64;
                loop {
                    let first = seq.fetch_add(batch as i64, Ordering::Relaxed);
                    let mut records: Vec<AccessRecord> = (0..batch)
                        .map(|_| {
                            n += 1;
                            record(n)
                        })
                        .collect();
                    // In staff order: the holdings trigger updates each person's counts,
                    // and 16 concurrent batches that touch the same people in different
                    // orders deadlock (production has one indexer, so never does).
                    records.sort_by(|a, b| a.staff_id.cmp(&b.staff_id));
                    for (i, r) in records.iter_mut().enumerate() {
                        r.seq = first + i as i64;
                    }
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let ok = store.append_access(&records).await.is_ok();
                    let done = Instant::now();
                    if done >= measure_from && done < end {
                        if ok {
                            rows += batch as u64;
                            latencies.push((done - sent).as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (rows, errors, latencies)
            })
        })
        .collect();
    let mut rows = 0;
    let mut errors = 0;
    let mut latencies = Vec::new();
    for t in tasks {
        let (r, e, l) = t.await.map_err(|e| Failure::new("bench", e.to_string()))?;
        rows += r;
        errors += e;
        latencies.extend(l);
    }
    store.close().await;
    Ok((rows, errors, latencies))
}

// ----- proofs -----

async fn proofs(work: &Path, args: &LedgerArgs) -> Result<Vec<Value>, Failure> {
    let dir = work.join("proofs");
    let (entries, count) = (args.proof_entries.max(2), args.proofs.max(1));
    super::note(
        HARNESS,
        &format!("building a ledger of {entries} entries for proofs"),
    );
    tokio::task::spawn_blocking(move || proofs_blocking(&dir, entries, count))
        .await
        .map_err(|e| Failure::new("bench", e.to_string()))?
}

fn proofs_blocking(dir: &Path, entries: u64, count: usize) -> Result<Vec<Value>, Failure> {
    let err = |e: custos_ledger::LedgerError| Failure::new(e.code(), e.to_string());
    std::fs::create_dir_all(dir).map_err(|e| Failure::new("bench_dir", e.to_string()))?;
    let (key, _) = LedgerKey::load_or_create(&dir.join("ledger.key"), ORIGIN).map_err(err)?;
    let mut ledger = Ledger::open(&dir.join("ledger"), ORIGIN, key).map_err(err)?;
    let mut build = Duration::ZERO;
    let mut n = 0u64;
    while n < entries {
        let chunk = (entries - n).min(BUILD_CHUNK as u64);
        let batch: Vec<Vec<u8>> = (n..n + chunk)
            .map(|i| custos_access::entry::encode(&record(i)))
            .collect();
        let t = Instant::now();
        ledger.append(&batch).map_err(err)?;
        build += t.elapsed();
        n += chunk;
    }
    let t = Instant::now();
    ledger
        .publish_checkpoint(u64::try_from(now_millis()).unwrap_or(0))
        .map_err(err)?;
    let checkpoint = t.elapsed();
    let size = ledger.size();
    let mut out = vec![json!({
        "measure": "proof_ledger_build", "entries": size, "append_batch": BUILD_CHUNK,
        "seconds": round3(build.as_secs_f64()),
        "entries_per_s": (size as f64 / build.as_secs_f64()).round(),
        "checkpoint_ms": round3(checkpoint.as_secs_f64() * 1000.0),
    })];

    let mut rng = rand::rng();
    let mut time =
        |what: &str, n: usize, f: &mut dyn FnMut(&mut rand::rngs::ThreadRng) -> usize| {
            let mut ns = Vec::with_capacity(n);
            let mut hashes = 0usize;
            for _ in 0..n {
                let t = Instant::now();
                hashes += black_box(f(&mut rng));
                ns.push(t.elapsed().as_nanos() as u64);
            }
            ns.sort_unstable();
            json!({
                "measure": what, "tree_size": size, "proofs": n,
                "p50_us": round3(pct(&ns, 0.50) as f64 / 1000.0),
                "p99_us": round3(pct(&ns, 0.99) as f64 / 1000.0),
                "mean_us": round3(ns.iter().sum::<u64>() as f64 / n as f64 / 1000.0),
                "mean_hashes": round1(hashes as f64 / n as f64),
            })
        };
    let ledger = &ledger;
    let mut failed = None;
    out.push(time("inclusion_proof", count, &mut |rng| match ledger
        .inclusion_proof(rng.random_range(0..size), size)
    {
        Ok(p) => p.len(),
        Err(e) => {
            failed = Some(e);
            0
        }
    }));
    out.push(time("consistency_proof", count, &mut |rng| match ledger
        .consistency_proof(rng.random_range(1..size), size)
    {
        Ok(p) => p.len(),
        Err(e) => {
            failed = Some(e);
            0
        }
    }));
    out.push(time(
        "tlog_proof",
        count.div_ceil(10),
        &mut |rng| match ledger.tlog_proof(rng.random_range(0..size)) {
            Ok(p) => p.len(),
            Err(e) => {
                failed = Some(e);
                0
            }
        },
    ));
    if let Some(e) = failed {
        return Err(err(e));
    }
    // "mean_hashes" of a tlog-proof is its length in bytes.
    Ok(out)
}

// ----- the filesystem -----

/// Filesystem type and device of the mount holding `path` (from /proc/self/mounts).
fn filesystem_of(path: &Path) -> (String, String) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 {
            continue;
        }
        let mount = f[1].replace("\\040", " ");
        if path.starts_with(&mount) && best.as_ref().is_none_or(|(l, _, _)| mount.len() > *l) {
            best = Some((mount.len(), f[2].to_owned(), f[0].to_owned()));
        }
    }
    best.map(|(_, t, d)| (t, d))
        .unwrap_or_else(|| ("unknown".into(), "unknown".into()))
}

// ----- summary -----

fn num(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

fn summary(rows: &[(usize, Value, Value, Option<Value>)], proofs: &[Value]) -> Result<(), Failure> {
    crate::outln!()?;
    crate::outln!(
        "Durable appends (entries/s; group commit through AccessLog with its SQLite access index running)"
    )?;
    crate::outln!(
        "{:>7} {:>12} {:>9} {:>9} {:>10} {:>14} {:>9} {:>14} {:>9}",
        "writers",
        "group-commit",
        "p50 µs",
        "p99 µs",
        "mean batch",
        "raw+fsync",
        "raw/gc",
        "PostgreSQL",
        "gc/pg"
    )?;
    for (w, gc, raw, pg) in rows {
        let g = num(gc, "entries_per_s");
        let r = num(raw, "entries_per_s");
        let (pg_rate, pg_ratio) = match pg {
            Some(p) => {
                let p = num(p, "entries_per_s");
                (format!("{p:.0}"), format!("{:.1}×", g / p.max(1.0)))
            }
            None => ("skipped".to_owned(), "-".to_owned()),
        };
        crate::outln!(
            "{:>7} {:>12.0} {:>9} {:>9} {:>10.1} {:>14.0} {:>8.2}× {:>14} {:>9}",
            w,
            g,
            num(gc, "p50_us"),
            num(gc, "p99_us"),
            num(gc, "mean_batch"),
            r,
            r / g.max(1.0),
            pg_rate,
            pg_ratio
        )?;
    }
    crate::outln!("Targets: ≥ 100,000 entries/s; raw/gc ≤ 2×; gc/pg ≥ 10×.")?;
    for p in proofs {
        let m = p.get("measure").and_then(Value::as_str).unwrap_or("");
        if m == "proof_ledger_build" {
            crate::outln!(
                "Proof ledger: {} entries appended in {} s ({} entries/s, batches of {})",
                num(p, "entries"),
                num(p, "seconds"),
                num(p, "entries_per_s"),
                BUILD_CHUNK
            )?;
        } else {
            crate::outln!(
                "{m:>18}: p50 {} µs, p99 {} µs over {} proofs (tree of {})",
                num(p, "p50_us"),
                num(p, "p99_us"),
                num(p, "proofs"),
                num(p, "tree_size")
            )?;
        }
    }
    crate::outln!("Target: inclusion proof ≤ 50 µs.")
}
