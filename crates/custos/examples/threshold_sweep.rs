//! Threshold sweep: replays the access records of a finished `custos simulate` run through
//! the detector's model under a grid of action thresholds, and prints, per setting, the
//! false findings per 1,000 staff-days, the insiders found (with the hours from their
//! first abuse to the first finding) and those suspended (with the hours to suspension).
//!
//! Exact up to each person's first finding when the run was made with no detector actions
//! (thresholds out of reach, so nothing changed the traffic); after it, an approximation
//! (a restricted person's later traffic would differ). Run:
//!
//! ```sh
//! custos simulate … --config no-actions.toml --data-dir D --report r.json
//! cargo run --release -p custos --example threshold_sweep -- D r.json no-actions.toml
//! ```

use std::collections::HashMap;
use std::path::PathBuf;

use custos_detector::Model;
use custos_detector::model::ORG_RISK;
use custos_service::Config;
use custos_store::{AccessFilter, Store};

/// (step-up, lower quota, suspend) settings tried.
const STEP_UP: [f64; 6] = [4.0, 5.0, 6.0, 7.0, 7.5, 8.0];
const LOWER: [f64; 4] = [6.0, 8.0, 10.0, 12.0];
const SUSPEND: [f64; 4] = [9.0, 10.0, 12.0, 15.0];

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let [_, data_dir, report, config] = &args[..] else {
        return Err("usage: threshold_sweep DATA_DIR REPORT_JSON CONFIG_TOML".into());
    };
    let data_dir = PathBuf::from(data_dir);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(report).map_err(|e| format!("cannot read the report: {e}"))?,
    )
    .map_err(|e| e.to_string())?;
    let staff_days = report["staff_days"].as_f64().ok_or("no staff_days")?;
    let first_abuse: HashMap<String, Option<i64>> = report["insiders"]
        .as_array()
        .ok_or("no insiders")?
        .iter()
        .filter_map(|i| Some((i["id"].as_str()?.to_owned(), i["first_abuse_at"].as_i64())))
        .collect();
    // SWEEP_SHOW="7,8,9" lists the false findings of that setting.
    let show: Option<(f64, f64, f64)> = std::env::var("SWEEP_SHOW").ok().and_then(|v| {
        let t: Vec<f64> = v.split(',').filter_map(|x| x.parse().ok()).collect();
        (t.len() == 3).then(|| (t[0], t[1], t[2]))
    });
    let acted = first_abuse.values().filter(|t| t.is_some()).count();
    let config = Config::load(Some(std::path::Path::new(config))).map_err(|e| e.to_string())?;
    let store = Store::open_sqlite(&data_dir.join("custos.db"))
        .await
        .map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    loop {
        let page = store
            .access_records(&AccessFilter {
                after_seq: records.last().map(|r: &custos_store::AccessRecord| r.seq),
                limit: 200_000,
                ..AccessFilter::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        if page.is_empty() {
            break;
        }
        records.extend(page);
    }
    store.close().await;
    eprintln!(
        "{} records, {} insiders who acted, {staff_days} staff-days",
        records.len(),
        acted
    );
    println!(
        "{:>7} {:>7} {:>7} | {:>9} {:>9} {:>9} {:>9} | {:>8} {:>8} {:>8} | {:>8} {:>8}",
        "step_up",
        "lower",
        "suspend",
        "false/1k",
        "step_up",
        "lower",
        "suspend",
        "found",
        "med.h",
        "p90.h",
        "suspended",
        "med.h"
    );
    for step_up in STEP_UP {
        for lower in LOWER.into_iter().filter(|&l| l >= step_up) {
            for suspend in SUSPEND.into_iter().filter(|&s| s > lower) {
                let mut model_config = config.detector.clone();
                model_config.score.thresholds.step_up = step_up;
                model_config.score.thresholds.lower_quota = lower;
                model_config.score.thresholds.suspend = suspend;
                let mut model = Model::new(model_config);
                let mut false_by_kind: HashMap<&str, u64> = HashMap::new();
                let mut found: HashMap<&str, i64> = HashMap::new();
                let mut suspended: HashMap<&str, i64> = HashMap::new();
                for r in &records {
                    for f in model.observe(r) {
                        if f.kind == ORG_RISK {
                            continue;
                        }
                        match first_abuse.get(&r.staff_id) {
                            Some(Some(first)) if r.at >= *first => {
                                found.entry(r.staff_id.as_str()).or_insert(r.at - first);
                                if f.suspend {
                                    suspended.entry(r.staff_id.as_str()).or_insert(r.at - first);
                                }
                            }
                            _ => {
                                *false_by_kind.entry(f.kind).or_default() += 1;
                                if show == Some((step_up, lower, suspend)) {
                                    println!(
                                        "  false {} {} {} {:?}",
                                        r.staff_id, r.at, f.kind, f.reasons
                                    );
                                }
                            }
                        }
                    }
                }
                let quantile = |found: &HashMap<&str, i64>, q: f64| {
                    let mut hours: Vec<f64> = found.values().map(|&ms| ms as f64 / 3.6e6).collect();
                    hours.sort_by(f64::total_cmp);
                    hours
                        .get(((hours.len() as f64 - 1.0) * q).round() as usize)
                        .copied()
                        .unwrap_or(f64::NAN)
                };
                let total: u64 = false_by_kind.values().sum();
                let kind = |k: &str| false_by_kind.get(k).copied().unwrap_or(0);
                println!(
                    "{step_up:>7.1} {lower:>7.1} {suspend:>7.1} | {:>9.1} {:>9} {:>9} {:>9} | {:>4}/{:<3} {:>8.1} {:>8.1} | {:>8} {:>8.1}",
                    total as f64 * 1000.0 / staff_days,
                    kind("risk_step_up"),
                    kind("risk_lower_quota"),
                    kind("risk_suspend"),
                    found.len(),
                    acted,
                    quantile(&found, 0.5),
                    quantile(&found, 0.9),
                    suspended.len(),
                    quantile(&suspended, 0.5)
                );
            }
        }
    }
    Ok(())
}
