//! `custos bench trace`: how fast a leaked file is attributed to staff. The script
//! `bench/trace-speed.sh` runs it next to DuckDB doing the equivalent join and count.
//!
//! 1. **Generate** (skipped with `--reuse`): a fresh SQLite store and master key in
//!    `--dir`, filled directly through the store (not through the gateway): `--customers`
//!    customers, each with opaque sealed bytes and the real phone blind index of a
//!    distinct Chinese mobile number, and `--records` access records (views and, 30% of
//!    the time, reveals by `--staff` people of 20 organisations over 30 days, customers
//!    drawn with a skew: a few are looked at often, most rarely). Then a leaked file of
//!    `--leak-rows` phone numbers, 70% of distinct customers of the vault and 30% of
//!    numbers it does not hold, in several spellings. With `--export`, the same data
//!    goes to CSV for the DuckDB anchor: `customers.csv` (id, phone blind index),
//!    `access.csv` (staff, customer, action, time) and `leak_idx.csv` (the blind index
//!    of each leaked row's normalised number: what matching computes before its lookups).
//! 2. **Trace** `--runs` times: [`custos_trace::trace`] on the leaked file's bytes, the
//!    whole window, timing each [`Step`] as the progress callback hears of it: read
//!    (parse and normalise), match (blind indexes and lookups), gather (who was exposed
//!    to the matched customers and the holdings of the people exposed, from the access
//!    index's summaries) and rank; what follows ranking (the listed suspects' evidence
//!    entries and the report) is `report_s`.
//! 3. **Breakdown** (once, after the runs): the match step's keyed hashes and its
//!    lookups ([`Store::customers_by_indexes`]), and the gather step's two reads
//!    ([`Store::exposures`] and [`Store::holdings`]), each timed on its own.
//!
//! Output: one JSON line per run and one summary line (medians) on stdout, appended to
//! `target/bench/results.jsonl`. No phone number is ever printed.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use custos_crypto::{IndexKind, Keyring, MasterKey, normalize_phone};
use custos_store::{AccessRecord, CustomerRecord, Store};
use custos_trace::{Step, TraceOptions};
use custos_types::calendar::DAY_MS;
use custos_types::{Action, Decision, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::Failure;

/// Customers inserted per transaction.
/// How this harness names itself on standard error.
const HARNESS: &str = "trace";
const CUSTOMER_BATCH: usize = 10_000;
/// Access records appended per statement.
const ACCESS_BATCH: usize = 50_000;
/// Organisations the staff belong to.
const ORGS: usize = 20;
/// The generated log ends here (2026-11-01T00:00:00Z) and spans 30 days before it.
const LOG_END: i64 = 1_793_491_200_000;
const LOG_SPAN: i64 = 30 * DAY_MS;
/// Share of leaked rows that name a customer of the vault.
const IN_VAULT: f64 = 0.7;
/// Share of accesses that reveal a field.
const REVEAL: f64 = 0.3;
/// Describes the generated data set, kept beside the store for `--reuse`.
const META_FILE: &str = "bench-meta.json";
const LEAK_FILE: &str = "leak.csv";

/// Options of `custos bench trace`.
#[derive(clap::Args)]
pub struct TraceBenchArgs {
    /// Directory of the generated store, master key and leaked file (created; must not
    /// hold a store unless `--reuse`).
    #[arg(long)]
    dir: PathBuf,
    /// Trace the store already generated in `--dir` instead of generating one.
    #[arg(long)]
    reuse: bool,
    /// Customers in the vault.
    #[arg(long, default_value_t = 2_000_000)]
    customers: u64,
    /// Access records in the log.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Staff who made them.
    #[arg(long, default_value_t = 2_000)]
    staff: u64,
    /// Rows of the leaked file.
    #[arg(long, default_value_t = 1_000_000)]
    leak_rows: u64,
    /// Traces measured (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Also write the generated data as CSV here, for the DuckDB anchor.
    #[arg(long)]
    export: Option<PathBuf>,
    /// Skip the separate timing of the gather step's two access-log reads.
    #[arg(long)]
    no_breakdown: bool,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

fn io_fatal(path: &Path) -> impl Fn(std::io::Error) -> Failure + '_ {
    move |e| Failure::new("bench_io", format!("{}: {e}", path.display()))
}

/// The 1, 5 and 15 minute load averages (Linux), to show whether the machine was shared.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The detector's median, 0 for no runs.
fn median(mut v: Vec<f64>) -> f64 {
    custos_detector::baseline::median(&mut v).unwrap_or(0.0)
}

/// The 11-digit mobile number of customer (or outsider) `i`: distinct for every `i`
/// below 10^9 (7,919 is prime to 10^9), all in 130–139.
fn mobile(i: u64) -> u64 {
    13_000_000_000 + (i % 1_000_000_000) * 7_919 % 1_000_000_000
}

/// The E.164 form `normalize_phone` gives a Chinese mobile number.
fn e164(number: u64) -> String {
    format!("+86{number}")
}

fn customer_id(i: u64) -> String {
    format!("c{i:010}")
}

fn staff_id(i: u64) -> String {
    format!("s{i:05}")
}

/// Runs `custos bench trace`: generates (unless `--reuse`), traces `--runs` times, prints
/// and records the results.
/// Runs the benchmark (generating its store first if needed), printing JSON lines.
pub async fn run(args: TraceBenchArgs) -> Result<(), Failure> {
    if args.runs == 0 || args.staff == 0 || args.customers == 0 {
        return Err(Failure::new(
            "bench_args",
            "--runs, --staff and --customers must be positive",
        ));
    }
    if args.customers >= 500_000_000 || args.leak_rows >= 500_000_000 {
        return Err(Failure::new(
            "bench_args",
            "--customers and --leak-rows must stay below 500 million (distinct numbers)",
        ));
    }
    std::fs::create_dir_all(&args.dir).map_err(io_fatal(&args.dir))?;
    let db = args.dir.join("custos.db");
    let key_path = args.dir.join("master.key");
    if args.reuse {
        if !db.is_file() || !key_path.is_file() || !args.dir.join(LEAK_FILE).is_file() {
            return Err(Failure::new(
                "bench_reuse",
                format!(
                    "{} holds no generated store: run without --reuse first",
                    args.dir.display()
                ),
            ));
        }
    } else if db.exists() || key_path.exists() {
        return Err(Failure::new(
            "bench_dir",
            format!(
                "{} already holds a store: use --reuse, or remove it",
                args.dir.display()
            ),
        ));
    }
    let (master, _) =
        MasterKey::load_or_create(&key_path).map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let keyring = Keyring::new(&master);
    let store = Store::open_sqlite(&db)
        .await
        .map_err(|e| Failure::new(e.code(), format!("cannot open the store: {e}")))?;
    let result = bench(&args, &store, &keyring).await;
    store.close().await;
    result
}

async fn bench(args: &TraceBenchArgs, store: &Store, keyring: &Keyring) -> Result<(), Failure> {
    let meta_path = args.dir.join(META_FILE);
    let meta = if args.reuse {
        let text = std::fs::read(&meta_path).map_err(io_fatal(&meta_path))?;
        serde_json::from_slice::<Value>(&text)
            .map_err(|e| Failure::new("bench_reuse", e.to_string()))?
    } else {
        let meta = generate(args, store, keyring).await?;
        std::fs::write(&meta_path, meta.to_string()).map_err(io_fatal(&meta_path))?;
        meta
    };
    let leak_path = args.dir.join(LEAK_FILE);
    let file = std::fs::read(&leak_path).map_err(io_fatal(&leak_path))?;
    let db_bytes = std::fs::metadata(args.dir.join("custos.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    super::emit(&json!({
        "bench": "trace", "measure": "setup", "data": meta, "leak_bytes": file.len(),
        "db_bytes": db_bytes,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "loadavg": loadavg(),
    }))?;

    let options = TraceOptions {
        since: 0,
        until: i64::MAX,
        default_region: "CN".into(),
        top: 20,
        p_elsewhere: 0.3,
    };
    let names = ["read", "match", "gather", "rank"];
    let mut totals = Vec::new();
    let mut steps: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut reports = Vec::new();
    let mut counts = Value::Null;
    for run in 1..=args.runs {
        let marks: Mutex<Vec<(Step, Instant)>> = Mutex::new(Vec::new());
        let progress = |step: Step| {
            if let Ok(mut m) = marks.lock() {
                m.push((step, Instant::now()));
            }
        };
        let start = Instant::now();
        let traced = custos_trace::trace(store, keyring, &file, &options, &progress)
            .await
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let total = start.elapsed();
        let marks = marks.into_inner().unwrap_or_default();
        let mut previous = start;
        let mut line =
            json!({"bench": "trace", "measure": "run", "run": run, "total_s": secs(total)});
        for (k, (step, at)) in marks.iter().enumerate() {
            let took = secs(at.duration_since(previous));
            previous = *at;
            if let Some(name) = names.get(k) {
                line[format!("{name}_s")] = json!(took);
                steps[k].push(took);
            }
            match step {
                Step::Read(n) => line["rows_with_identifier"] = json!(n),
                Step::Matched(n) => line["customers_matched"] = json!(n),
                Step::Gathered(n) => line["exposed_pairs"] = json!(n),
                Step::Ranked => {}
            }
        }
        // What is left after ranking: the evidence entries and the report.
        let report_s = secs(start.elapsed() - previous.duration_since(start));
        line["report_s"] = json!(report_s);
        reports.push(report_s);
        let r = &traced.report;
        counts = json!({
            "rows": r.rows, "matched": r.matched, "unmatched": r.unmatched,
            "customers": r.customers, "suspects_listed": r.suspects.len(),
            "top_suspect_records": r.suspects.first().map(|s| s.records),
        });
        line["report"] = counts.clone();
        super::emit(&line)?;
        totals.push(secs(total));
    }
    let mut summary = json!({
        "bench": "trace", "measure": "summary", "runs": args.runs, "data": meta,
        "median_total_s": median(totals), "median_report_s": median(reports),
        "report": counts, "loadavg": loadavg(),
    });
    for (k, name) in names.iter().enumerate() {
        summary[format!("median_{name}_s")] = json!(median(steps[k].clone()));
    }

    if !args.no_breakdown {
        let leak = custos_trace::input::read_leak(&file, "CN")
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let matched = custos_trace::matching::match_rows(store, keyring, &leak.rows)
            .await
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        // The match step's two parts: the keyed hashes, and the lookups.
        let t = Instant::now();
        let mut seen = std::collections::HashSet::new();
        let indexes: Vec<String> = custos_trace::matching::hash_rows(keyring, &leak.rows)
            .into_iter()
            .flat_map(|[phones, _, _]| phones)
            .filter(|h| seen.insert(h.clone()))
            .collect();
        let hash_s = secs(t.elapsed());
        let t = Instant::now();
        let found = store
            .customers_by_indexes(custos_store::IndexColumn::Phone, &indexes)
            .await
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let lookup_s = secs(t.elapsed());
        summary["match_breakdown"] = json!({
            "hash_s": hash_s, "indexes": indexes.len(),
            "lookup_s": lookup_s, "found": found.len(),
        });
        let t = Instant::now();
        let exposures = store
            .exposures(&matched.customers, 0, i64::MAX)
            .await
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let exposures_s = secs(t.elapsed());
        let t = Instant::now();
        // The staff exposed to the leaked customers, whose holdings the trace reads.
        let mut exposed: Vec<String> = exposures.iter().map(|e| e.staff_id.clone()).collect();
        exposed.sort_unstable();
        exposed.dedup();
        let holdings = store
            .holdings(&exposed, i64::MAX)
            .await
            .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let holdings_s = secs(t.elapsed());
        summary["gather_breakdown"] = json!({
            "exposures_s": exposures_s, "exposed_pairs": exposures.len(),
            "holdings_s": holdings_s, "holdings_staff": holdings.len(),
        });
    }
    super::emit(&summary)?;
    Ok(())
}

/// Fills the store, writes the leaked file (and the CSV export); returns what was made.
async fn generate(
    args: &TraceBenchArgs,
    store: &Store,
    keyring: &Keyring,
) -> Result<Value, Failure> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    // The generated numbers normalise as `normalize_phone` does: check a sample.
    for i in (0..args.customers).step_by((args.customers / 1000).max(1) as usize) {
        let n = mobile(i);
        let normalized = normalize_phone(&n.to_string(), "CN").map_err(|e| {
            Failure::new(
                "bench_generate",
                format!("a generated number did not normalise: {e}"),
            )
        })?;
        if normalized != e164(n) {
            return Err(Failure::new(
                "bench_generate",
                "a generated number normalises unexpectedly",
            ));
        }
    }
    let export = match &args.export {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io_fatal(dir))?;
            Some(dir.clone())
        }
        None => None,
    };
    let csv = |name: &str| -> Result<Option<BufWriter<std::fs::File>>, Failure> {
        match &export {
            Some(dir) => {
                let path = dir.join(name);
                let f = std::fs::File::create(&path).map_err(io_fatal(&path))?;
                Ok(Some(BufWriter::with_capacity(1 << 20, f)))
            }
            None => Ok(None),
        }
    };
    let write_err = |e: std::io::Error| Failure::new("bench_export", e.to_string());

    // Customers.
    let t = Instant::now();
    let mut out = csv("customers.csv")?;
    if let Some(w) = out.as_mut() {
        writeln!(w, "id,phone_idx").map_err(write_err)?;
    }
    let bar = crate::progress::bar(args.customers as usize, "customers", args.quiet);
    let mut batch = Vec::with_capacity(CUSTOMER_BATCH);
    for i in 0..args.customers {
        let idx = keyring
            .blind_index(IndexKind::Phone, &e164(mobile(i)))
            .to_hex();
        let id = customer_id(i);
        if let Some(w) = out.as_mut() {
            writeln!(w, "{id},{idx}").map_err(write_err)?;
        }
        let mut sealed = [0u8; 48];
        rng.fill(&mut sealed[..]);
        batch.push(CustomerRecord {
            id,
            wrapped_key: sealed[..40].to_vec(),
            name: sealed[8..].to_vec(),
            phone: Some(sealed[..36].to_vec()),
            email: None,
            account_id: None,
            attributes: None,
            phone_idx: Some(idx),
            email_idx: None,
            account_idx: None,
            created_at: LOG_END - LOG_SPAN - DAY_MS,
            index_version: keyring.index_version().0,
        });
        if batch.len() == CUSTOMER_BATCH || i + 1 == args.customers {
            store
                .insert_customers(&batch)
                .await
                .map_err(|e| Failure::new(e.code(), e.to_string()))?;
            bar.inc(batch.len() as u64);
            batch.clear();
        }
    }
    bar.finish_and_clear();
    if let Some(mut w) = out.take() {
        w.flush().map_err(write_err)?;
    }
    let customers_s = secs(t.elapsed());
    super::note(
        HARNESS,
        &format!("{} customers in {customers_s} s", args.customers),
    );

    // Access records: customers drawn as floor(N * u^2), so the first are looked at
    // often and the last rarely; the leak below samples customers uniformly.
    let t = Instant::now();
    let mut out = csv("access.csv")?;
    if let Some(w) = out.as_mut() {
        writeln!(w, "staff_id,customer_id,action,at").map_err(write_err)?;
    }
    let staff: Vec<String> = (0..args.staff).map(staff_id).collect();
    let orgs: Vec<String> = (0..ORGS).map(|o| format!("org-{o:02}")).collect();
    let bar = crate::progress::bar(args.records as usize, "records", args.quiet);
    let mut batch = Vec::with_capacity(ACCESS_BATCH);
    let mut line = String::new();
    for seq in 0..args.records {
        let s = rng.random_range(0..args.staff);
        let u: f64 = rng.random();
        let c = ((args.customers as f64 * u * u) as u64).min(args.customers - 1);
        let reveal = rng.random_bool(REVEAL);
        // Times increase with the ledger index, with some jitter.
        let at = LOG_END - LOG_SPAN
            + (LOG_SPAN as f64 * (seq as f64 / args.records.max(1) as f64)) as i64
            + rng.random_range(0..1000);
        let customer = customer_id(c);
        let action = if reveal { Action::Reveal } else { Action::View };
        if let Some(w) = out.as_mut() {
            line.clear();
            let _ = writeln!(line, "{},{customer},{action},{at}", staff[s as usize]);
            w.write_all(line.as_bytes()).map_err(write_err)?;
        }
        batch.push(AccessRecord {
            seq: seq as i64,
            request_id: format!("r{seq}"),
            at,
            staff_id: staff[s as usize].clone(),
            org: orgs[s as usize % ORGS].clone(),
            role: Role::Support.into(),
            action,
            customer_id: Some(customer),
            fields: if reveal {
                vec!["phone".into()]
            } else {
                Vec::new()
            },
            case_id: None,
            target: None,
            decision: Decision::Allow,
            reason_code: "ok".into(),
            client: None,
        });
        if batch.len() == ACCESS_BATCH || seq + 1 == args.records {
            store
                .append_access(&batch)
                .await
                .map_err(|e| Failure::new(e.code(), e.to_string()))?;
            bar.inc(batch.len() as u64);
            batch.clear();
        }
    }
    bar.finish_and_clear();
    if let Some(mut w) = out.take() {
        w.flush().map_err(write_err)?;
    }
    let records_s = secs(t.elapsed());
    super::note(
        HARNESS,
        &format!("{} access records in {records_s} s", args.records),
    );

    // The leaked file: distinct customers of the vault and numbers it does not hold,
    // shuffled, in several spellings.
    let in_vault = ((args.leak_rows as f64 * IN_VAULT) as u64).min(args.customers);
    let outside = args.leak_rows - in_vault;
    let mut numbers: Vec<u64> =
        rand::seq::index::sample(&mut rng, args.customers as usize, in_vault as usize)
            .into_iter()
            .map(|i| mobile(i as u64))
            .chain((0..outside).map(|k| mobile(args.customers + k)))
            .collect();
    rand::seq::SliceRandom::shuffle(numbers.as_mut_slice(), &mut rng);
    let leak_path = args.dir.join(LEAK_FILE);
    let f = std::fs::File::create(&leak_path).map_err(io_fatal(&leak_path))?;
    let mut leak = BufWriter::with_capacity(1 << 20, f);
    let mut out = csv("leak_idx.csv")?;
    if let Some(w) = out.as_mut() {
        writeln!(w, "phone_idx").map_err(write_err)?;
    }
    let leak_err = io_fatal(&leak_path);
    writeln!(leak, "name,phone").map_err(&leak_err)?;
    for (k, n) in numbers.iter().enumerate() {
        let d = n.to_string();
        let spelled = match k % 5 {
            0 | 1 => d.clone(),
            2 => format!("+86 {} {} {}", &d[..3], &d[3..7], &d[7..]),
            3 => format!("{}-{}-{}", &d[..3], &d[3..7], &d[7..]),
            _ => format!("+86-{d}"),
        };
        writeln!(leak, "user{k},{spelled}").map_err(&leak_err)?;
        if let Some(w) = out.as_mut() {
            let idx = keyring.blind_index(IndexKind::Phone, &e164(*n)).to_hex();
            writeln!(w, "{idx}").map_err(write_err)?;
        }
    }
    leak.flush().map_err(&leak_err)?;
    if let Some(mut w) = out.take() {
        w.flush().map_err(write_err)?;
    }
    Ok(json!({
        "customers": args.customers, "records": args.records, "staff": args.staff,
        "leak_rows": args.leak_rows, "leak_in_vault": in_vault, "seed": args.seed,
        "generate_customers_s": customers_s, "generate_records_s": records_s,
    }))
}
