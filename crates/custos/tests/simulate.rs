//! `custos simulate` end to end: a small company with one bulk-night insider, driven
//! through the real gateway in process; the report must show the insider caught and
//! held to far less than the unprotected run, and a leak cut from what they took must
//! trace back to them.

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
fn a_bulk_night_insider_is_caught_held_below_the_quota_and_traced() {
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
        .args(["--cut-leak", "night", "--rows", "40", "--noise", "0.3"])
        .arg("--out")
        .arg(dir.path().join("leak.csv"))
        .arg("--truth")
        .arg(dir.path().join("truth.json"))
        .args(["--trace-eval", "--leaks-per-insider", "2"])
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

    // The evaluation traced leaks of every size the insider's take allows, and named them.
    let single = r["trace"]["single"].as_array().unwrap();
    assert_eq!(single.len(), 3, "{}", r["trace"]);
    for size in single {
        let evaluated = size["insiders"].as_u64().unwrap();
        assert_eq!(evaluated + size["insiders_too_small"].as_u64().unwrap(), 1);
        assert_eq!(size["leaks"].as_u64().unwrap(), 2 * evaluated, "{size}");
        if evaluated == 1 {
            assert!(size["top1"].as_u64().unwrap() >= 1, "{size}");
        }
    }
    assert_eq!(single[1]["rows"], 10);
    assert_eq!(
        single[1]["top1"], 2,
        "10 rows name the insider: {}",
        single[1]
    );

    // The cut leak: its truth adds up, and tracing it names the insider.
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    let rows = truth["rows"].as_u64().unwrap();
    let from_source = truth["from_source"].as_u64().unwrap();
    // 30% of 40 from elsewhere; up to 28 of what the insider took.
    assert_eq!(
        (
            truth["from_elsewhere"].as_u64(),
            truth["not_in_vault"].as_u64()
        ),
        (Some(6), Some(6)),
        "{truth}"
    );
    assert_eq!(rows, from_source + 12, "{truth}");
    assert!((1..=28).contains(&from_source), "{truth}");
    let traced = dir.path().join("trace.json");
    let out = custos()
        .arg("trace")
        .arg(dir.path().join("leak.csv"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--report")
        .arg(&traced)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_success(&out);
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&traced).unwrap()).unwrap();
    assert_eq!(t["rows"].as_u64(), Some(rows), "{t}");
    assert_eq!(t["suspects"][0]["staff"], truth["staff"][0], "{t}");
    assert!(
        t["suspects"][0]["records"].as_u64().unwrap() >= from_source,
        "{t}"
    );
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
