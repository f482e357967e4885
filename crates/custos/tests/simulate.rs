//! `custos simulate` end to end: a small company with one bulk-night insider, driven
//! through the real gateway in process; the report must show the insider caught and
//! held to far less than the unprotected run.

use std::process::Command;

fn custos() -> Command {
    Command::new(env!("CARGO_BIN_EXE_custos"))
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
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
