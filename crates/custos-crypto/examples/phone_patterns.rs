//! Phone normalisation's rate with the phone parser's own pattern cache (100 compiled
//! patterns, phonenumber 0.3.10) and with Custos's ([`PHONE_PATTERNS_CACHED`]), in the
//! same process, on three sets of numbers: Chinese mobiles, Chinese landlines and the
//! numbers of forty countries in turn. Run by `bench/phones.sh`; BENCHMARKS.md "Phone
//! normalisation" holds the figures.
//!
//! ```text
//! cargo run --release -p custos-crypto --example phone_patterns -- [NUMBERS] [RUNS]
//! ```
//!
//! First, what a compiled pattern costs: the resident memory that numbers under every
//! country code (+1 to +999) add with no bound on the cache, over the patterns they
//! compile. Then one JSON line per run, setting and set, and the median numbers a second
//! of each set under each setting. The Chinese mobiles are the anchor: one region's few
//! patterns, which either cache holds.

use std::time::Instant;

use custos_crypto::{PHONE_PATTERNS_CACHED, normalize_phone};

/// The parser's own cache size, which `normalize_phone` widens on first use.
const PARSER_OWN: usize = 100;

const COUNTRIES: [u16; 40] = [
    1, 44, 49, 33, 81, 82, 61, 91, 7, 55, 52, 34, 39, 31, 46, 47, 45, 41, 43, 32, 27, 20, 234, 254,
    62, 63, 66, 84, 60, 65, 90, 971, 966, 972, 48, 420, 36, 40, 30, 351,
];

fn sets(n: u64) -> Vec<(&'static str, Vec<String>)> {
    let area = [10, 21, 755, 571, 28];
    vec![
        (
            "cn_mobile",
            (0..n)
                .map(|i| format!("138{:08}", i * 7919 % 100_000_000))
                .collect(),
        ),
        (
            "cn_landline",
            (0..n)
                .map(|i| format!("(0{}) {}", area[(i % 5) as usize], 61_234_567 + i))
                .collect(),
        ),
        (
            "forty_countries",
            (0..n)
                .map(|i| {
                    let cc = COUNTRIES[(i % 40) as usize];
                    format!("+{cc} {}", 2_025_550_100 + i * 13)
                })
                .collect(),
        ),
    ]
}

fn set_cache(capacity: usize) {
    phonenumber::metadata::DATABASE
        .cache()
        .lock()
        .expect("no parse panicked")
        .set_capacity(capacity);
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let numbers: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let sets = sets(numbers.max(1));

    // The first call widens the cache; each step below then sets it explicitly.
    let _ = normalize_phone("13800138000", "CN");
    set_cache(usize::MAX);
    let before = resident_kib();
    for code in 1..=999 {
        let _ = normalize_phone(&format!("+{code} 2025550123"), "CN");
    }
    let held = phonenumber::metadata::DATABASE
        .cache()
        .lock()
        .expect("no parse panicked")
        .len();
    let grown = resident_kib().saturating_sub(before);
    println!(
        r#"{{"measure":"phone_patterns_memory","patterns":{held},"resident_kib_added":{grown},"kib_per_pattern":{}}}"#,
        grown / held.max(1) as u64
    );
    let settings = [
        ("parser_own", PARSER_OWN),
        ("custos", PHONE_PATTERNS_CACHED),
    ];
    let mut rates = vec![vec![Vec::new(); sets.len()]; settings.len()];
    for run in 1..=runs.max(1) {
        for (s, (setting, capacity)) in settings.iter().enumerate() {
            set_cache(*capacity);
            for (k, (set, numbers)) in sets.iter().enumerate() {
                let start = Instant::now();
                let valid = numbers
                    .iter()
                    .filter(|n| normalize_phone(n, "CN").is_ok())
                    .count();
                let rate = numbers.len() as f64 / start.elapsed().as_secs_f64();
                rates[s][k].push(rate);
                println!(
                    r#"{{"measure":"phones","run":{run},"cache":"{setting}","capacity":{capacity},"set":"{set}","numbers":{},"valid":{valid},"per_s":{rate:.0}}}"#,
                    numbers.len()
                );
            }
        }
    }
    for (s, (setting, capacity)) in settings.iter().enumerate() {
        for (k, (set, _)) in sets.iter().enumerate() {
            let r = &mut rates[s][k];
            r.sort_by(f64::total_cmp);
            println!(
                r#"{{"measure":"phones_summary","cache":"{setting}","capacity":{capacity},"set":"{set}","runs":{},"per_s_median":{:.0}}}"#,
                r.len(),
                r[r.len() / 2]
            );
        }
    }
}
