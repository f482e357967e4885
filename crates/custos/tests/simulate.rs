//! `custos simulate` end to end: a small company with one bulk-night insider, driven
//! through the real gateway in process; the report must show the insider caught and
//! held to far less than the unprotected run; and with the detector's actions out of
//! reach, leaks cut from what the insider took must trace back to them.

use std::process::Command;

fn custos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_custos"))
}

fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const BULK_NIGHT: &str = r#"
name = "night"
insiders = 1
org = "partner"
start_day = [1, 1]
active_days = [1, 1]
customers_per_day = [400, 400]
hours = "night"
reveal = ["name", "phone"]
"#;

#[test]
fn a_bulk_night_insider_is_caught_and_held_below_the_quota() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("night.toml");
    std::fs::write(&scenario, BULK_NIGHT).unwrap();
    let report = dir.path().join("report.json");
    let out = custos()
        .args([
            "simulate",
            "--staff",
            "60",
            "--days",
            "5",
            "--customers",
            "3000",
        ])
        .args(["--canaries", "0", "--seed", "5", "--quiet", "--scenario"])
        .arg(&scenario)
        .arg("--report")
        .arg(&report)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("night"), "{stdout}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(
        (r["staff"].as_u64(), r["days"].as_u64(), r["seed"].as_u64()),
        (Some(60), Some(5), Some(5))
    );
    assert_eq!(r["scenarios"]["night"]["insiders"], 1);
    let insider = &r["insiders"][0];
    assert_eq!(insider["scenario"], "night");
    assert_eq!(insider["detected"], true, "{insider}");
    assert!(
        insider["hours_to_detect"].as_f64().unwrap() < 5.0,
        "{insider}"
    );
    // The default quota (80 customers a day) bounds the night; the plan asked for 400.
    let taken = insider["records_revealed_before_suspension"]
        .as_u64()
        .unwrap();
    let planned = insider["records_revealed_unprotected"].as_u64().unwrap();
    assert!(taken <= 80 && planned > 300, "{taken} of {planned}");
    assert!(r["harvest_ratio"].as_f64().unwrap() < 0.3);
    assert!(r["false_alerts_per_1000_staff_days"].as_f64().is_some());
    assert!(r["false_alert_person_days"].as_u64().unwrap() <= r["false_alerts"].as_u64().unwrap());
    assert!(r["requests"].as_u64().unwrap() > 1000);
    // The run's ledger is marked simulated: its records cannot pass for real ones.
    let checkpoint = std::fs::read_to_string(dir.path().join("data/ledger/checkpoint")).unwrap();
    assert!(
        checkpoint.lines().next().unwrap().ends_with("/simulated"),
        "{checkpoint}"
    );
}

/// The detector sees everything but does nothing, and the quotas are out of reach: the
/// insider takes their whole plan, whatever the machine's speed.
const NO_ACTIONS: &str = "
[detector.score.thresholds]
step_up = 1e9
lower_quota = 1e9
suspend = 1e9

[quota.support]
customers_per_day = 1000
reveals_per_hour = 1000
";

/// An agent who harvests the customers they legitimately serve: every caller's name and
/// phone, on the verified cases the contact centre opens, all week. The one harvest the
/// default policy still lets through (pretext cases show nothing in full).
const CALLERS: &str = r#"
name = "night"
insiders = 1
org = "company"
start_day = [0, 0]
active_days = [5, 5]
cases = "callers"
reveal = ["name", "phone"]
"#;

/// Runs the callers' harvester among `staff` people for `days` days on 3,000 customers,
/// with no detector action and `extra` arguments, in `dir`; the report.
fn simulate_night(
    dir: &std::path::Path,
    staff: &str,
    days: &str,
    extra: &[&str],
) -> serde_json::Value {
    let scenario = dir.join("night.toml");
    std::fs::write(&scenario, CALLERS).unwrap();
    let config = dir.join("no-actions.toml");
    std::fs::write(&config, NO_ACTIONS).unwrap();
    let report = dir.join("report.json");
    let out = custos()
        .args(["simulate", "--staff", staff, "--days", days])
        .args(["--customers", "3000", "--canaries", "0", "--seed", "5"])
        .arg("--quiet")
        .arg("--scenario")
        .arg(&scenario)
        .arg("--config")
        .arg(&config)
        .arg("--report")
        .arg(&report)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(extra)
        .output()
        .unwrap();
    assert_success(&out);
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

#[test]
fn a_leak_cut_from_what_an_insider_took_traces_back_to_them() {
    let dir = tempfile::tempdir().unwrap();
    let leak = dir.path().join("leak.csv");
    let truth = dir.path().join("truth.json");
    let r = simulate_night(
        dir.path(),
        "60",
        "5",
        &[
            "--cut-leak",
            "night",
            "--rows",
            "40",
            "--noise",
            "0.3",
            "--out",
            leak.to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
            "--trace-eval",
            "--leaks-per-insider",
            "2",
        ],
    );
    let taken = r["insiders"][0]["records_revealed_before_suspension"]
        .as_u64()
        .unwrap();
    assert!(
        taken >= 35,
        "the quota, not the detector, bounded the night: {taken}"
    );

    // Every size was evaluated on this insider, and named them each time.
    let single = r["trace"]["single"].as_array().unwrap();
    let sizes: Vec<u64> = single.iter().map(|s| s["rows"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [3, 10, 50], "{}", r["trace"]);
    for size in single {
        assert_eq!(
            (size["insiders"].as_u64(), size["leaks"].as_u64()),
            (Some(1), Some(2)),
            "{size}"
        );
        assert_eq!(size["top1"], 2, "{size}");
    }

    // The cut leak: 28 of the insider's customers and 12 from elsewhere, and tracing it
    // with `custos trace` names the insider.
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
    assert_eq!(
        (
            truth["rows"].as_u64(),
            truth["from_source"].as_u64(),
            truth["from_elsewhere"].as_u64(),
            truth["not_in_vault"].as_u64()
        ),
        (Some(40), Some(28), Some(6), Some(6)),
        "{truth}"
    );
    let traced = dir.path().join("trace.json");
    let out = custos()
        .arg("trace")
        .arg(&leak)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--report")
        .arg(&traced)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_success(&out);
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&traced).unwrap()).unwrap();
    assert_eq!(t["rows"], 40, "{t}");
    assert_eq!(t["suspects"][0]["staff"], truth["staff"][0], "{t}");
    assert_eq!(t["suspects"][0]["records"], 28, "{t}");
}

/// Canary allocation in a run: the insider's queue gets canaries with their cases, they
/// take them with the rest and are not flagged for it, and every leak that carries one
/// names them.
#[test]
fn allocated_canaries_ride_along_in_a_harvest_and_name_the_insider() {
    let dir = tempfile::tempdir().unwrap();
    let r = simulate_night(
        dir.path(),
        "40",
        "2",
        &[
            "--allocation-pool",
            "3000",
            "--allocation-rate",
            "0.3",
            "--trace-eval",
            "--leaks-per-insider",
            "4",
        ],
    );
    let insider = &r["insiders"][0];
    let allocated = insider["allocated_canaries_revealed"].as_u64().unwrap();
    let taken = insider["records_revealed_before_suspension"]
        .as_u64()
        .unwrap();
    // About 3 canaries per 10 cases, the pool being ample for everyone's cases.
    assert!(
        allocated * 10 >= taken && allocated <= taken,
        "{allocated} canaries with {taken} customers"
    );
    let kinds = insider["alert_kinds"].as_array().unwrap();
    assert!(!kinds.iter().any(|k| k == "canary_hit"), "{kinds:?}");
    let mut carried = 0;
    for size in r["trace"]["single"].as_array().unwrap() {
        assert_eq!(size["with_canary_top1"], size["with_canary"], "{size}");
        carried += size["with_canary"].as_u64().unwrap();
    }
    assert!(carried > 0, "{}", r["trace"]);
}

#[test]
fn a_broken_scenario_is_named_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("broken.toml");
    std::fs::write(
        &scenario,
        BULK_NIGHT.replace("insiders = 1", "insiders = 0"),
    )
    .unwrap();
    let out = custos()
        .args(["simulate", "--staff", "10", "--days", "1", "--scenario"])
        .arg(&scenario)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scenario_invalid") && err.contains("broken.toml") && err.contains("insiders"),
        "{err}"
    );
    assert!(!dir.path().join("data").exists());
}

/// A scenario whose insiders start after the run's last day is named in a warning, a
/// leak cut from one says why it is empty, and the temporary data directory is removed
/// only after the ledger's writer stopped (no I/O error at the end).
#[test]
fn a_scenario_that_never_acts_is_said_and_the_run_ends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("late.toml");
    std::fs::write(
        &scenario,
        BULK_NIGHT
            .replace("name = \"night\"", "name = \"late\"")
            .replace("start_day = [1, 1]", "start_day = [9, 12]"),
    )
    .unwrap();
    let out = custos()
        .args([
            "simulate",
            "--staff",
            "40",
            "--days",
            "2",
            "--customers",
            "500",
        ])
        .args(["--canaries", "0", "--seed", "3", "--quiet", "--scenario"])
        .arg(&scenario)
        .args(["--cut-leak", "late", "--out"])
        .arg(dir.path().join("leak.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: scenario late") && stderr.contains("never act"),
        "{stderr}"
    );
    assert!(stderr.contains("error[cut_leak_empty]"), "{stderr}");
    assert!(stderr.contains("never acted"), "{stderr}");
    assert!(!stderr.contains("ERROR"), "{stderr}");
    assert!(!stderr.contains("I/O error"), "{stderr}");
}

/// Quotas out of reach, the shipped detector thresholds.
const HIGH_QUOTA: &str = "
[quota.support]
customers_per_day = 1000
reveals_per_hour = 1000
";

#[test]
fn with_no_actions_the_detector_is_judged_by_a_replay_and_the_features_by_the_abuse() {
    let dir = tempfile::tempdir().unwrap();
    // After the detector's warm-up (three learnt days), so that it can judge the harvest
    // (an agent's own callers: the harvest the default policy still shows in full).
    let scenario = dir.path().join("night.toml");
    std::fs::write(
        &scenario,
        CALLERS
            .replace("start_day = [0, 0]", "start_day = [4, 4]")
            .replace("active_days = [5, 5]", "active_days = [4, 4]"),
    )
    .unwrap();
    let config = dir.path().join("high-quota.toml");
    std::fs::write(&config, HIGH_QUOTA).unwrap();
    let report = dir.path().join("report.json");
    let features = dir.path().join("features.csv");
    let out = custos()
        .args(["simulate", "--staff", "60", "--days", "8"])
        .args(["--customers", "3000", "--canaries", "0", "--seed", "5"])
        .args(["--quiet", "--no-actions", "--scenario"])
        .arg(&scenario)
        .arg("--config")
        .arg(&config)
        .arg("--report")
        .arg(&report)
        .arg("--features")
        .arg(&features)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_success(&out);
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["no_actions"], true);
    let insider = &r["insiders"][0];
    // Nothing stopped the harvest, and the replay under the shipped thresholds finds it.
    assert_eq!(insider["detected"], true, "{insider}");
    let taken = insider["records_revealed_before_suspension"]
        .as_u64()
        .unwrap();
    assert!(taken >= 35, "{insider}");
    // The feature table marks the insider's days abusive, and no one else's.
    let table = std::fs::read_to_string(&features).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let (staff, abusive) = (
        header.iter().position(|c| *c == "staff").unwrap(),
        header.iter().position(|c| *c == "abusive").unwrap(),
    );
    let marked: Vec<String> = lines
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>())
        .filter(|row| row[abusive] == "1")
        .map(|row| row[staff].clone())
        .collect();
    assert!(!marked.is_empty());
    assert!(marked.iter().all(|s| *s == insider["id"]), "{marked:?}");
}
