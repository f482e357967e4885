//! `custos bench lookup`: a closed-loop load generator for protected lookups. Each request is a
//! full masked view — token check, Cedar decision, quota, fetch, unseal, mask and a
//! durable access record — against a gateway loaded by `custos demo`. The script
//! `bench/protected-lookup.sh` runs it on both stores next to `pgbench -S`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_client::{Client, Http};

use crate::Failure;
use crate::demo::load;

/// Options of `custos bench lookup`.
#[derive(clap::Args)]
pub struct LookupArgs {
    /// The `demo-tokens.json` written by `custos demo` (holds the URL, tokens and cases).
    #[arg(long)]
    tokens: PathBuf,
    /// Requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Unmeasured seconds before.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
}

/// One (token, case, customer) triple that a view is allowed for.
struct Target {
    token: String,
    case: String,
    customer: String,
}

/// Runs the benchmark and prints its JSON line.
pub async fn run(args: LookupArgs) -> Result<(), Failure> {
    let loaded = load::read_tokens(&args.tokens).ok_or_else(|| {
        Failure::new(
            "bench_tokens",
            format!("cannot read {}", args.tokens.display()),
        )
    })?;
    let targets: Arc<Vec<Target>> = Arc::new(
        loaded
            .staff
            .iter()
            .flat_map(|s| {
                s.cases.iter().map(|(case, customer)| Target {
                    token: s.token.clone(),
                    case: case.clone(),
                    customer: customer.clone(),
                })
            })
            .collect(),
    );
    if targets.is_empty() {
        return Err(Failure::new(
            "bench_tokens",
            "no open cases in the tokens file",
        ));
    }
    let pool = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| Failure::new("bench_client", e.to_string()))?;
    let client = Client::new(Http::with_client(pool, &loaded.url));
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.duration);
    let workers: Vec<_> = (0..args.concurrency)
        .map(|w| {
            let client = client.clone();
            let targets = targets.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut i = w;
                loop {
                    let t = &targets[i % targets.len()];
                    i += 7;
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let ok = client
                        .view(&t.token, &t.customer, &t.case)
                        .await
                        .is_ok_and(|answer| answer.is_success());
                    if sent >= measure_from {
                        if ok {
                            latencies.push(sent.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for w in workers {
        let (l, e) = w.await.map_err(|e| Failure::new("bench", e.to_string()))?;
        latencies.extend(l);
        errors += e;
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let rate = latencies.len() as f64 / args.duration as f64;
    let report = serde_json::json!({
        "requests": latencies.len(), "errors": errors, "concurrency": args.concurrency,
        "seconds": args.duration, "req_per_s": rate.round(),
        "p50_ms": pct(0.50) as f64 / 1000.0, "p99_ms": pct(0.99) as f64 / 1000.0,
    });
    crate::outln!("{report}")?;
    if errors > 0 {
        return Err(Failure::new(
            "bench_errors",
            format!("{errors} requests failed"),
        ));
    }
    Ok(())
}
