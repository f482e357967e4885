//! Micro-benchmark: feeds 2,000,000 synthetic ledger records through `Model::observe`
//! on one thread and prints records per second (the median of three runs, each on a
//! fresh model). The records are built before the clock starts.
//!
//! `CARGO_TARGET_DIR=/work/target-wt cargo run --release -p custos-detector --example replay`

use std::hint::black_box;
use std::time::Instant;

use custos_access::AccessRecord;
use custos_detector::{Model, ModelConfig};
use custos_types::calendar::{DAY_MS, HOUR_MS};
use custos_types::{Action, Decision, Role};

const RECORDS: usize = 2_000_000;
const STAFF: u64 = 5_000;
const T0: i64 = 1_704_067_200_000;

fn main() {
    let records = synthetic();
    let mut rates = Vec::new();
    for run in 1..=3 {
        let mut model = Model::new(ModelConfig::default());
        let mut findings = 0usize;
        let start = Instant::now();
        for r in &records {
            findings += black_box(model.observe(r)).len();
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = records.len() as f64 / secs;
        println!(
            "run {run}: {} records in {secs:.3} s = {:.0} records/s ({findings} findings, {} people)",
            records.len(),
            rate,
            model.people()
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!("median: {:.0} records/s", rates[1]);
}

/// 5,000 staff (two roles, ten partner companies), 60 records each per working day,
/// in time order: views, reveals, searches, case creation by the CRM.
fn synthetic() -> Vec<AccessRecord> {
    let mut state = 0x1234_5678_u64;
    let mut next = move || {
        // SplitMix64.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut records = Vec::with_capacity(RECORDS);
    let mut seq = 0;
    'days: for day in 0.. {
        for slot in 0..60i64 {
            for staff in 0..STAFF {
                if records.len() == RECORDS {
                    break 'days;
                }
                let r = next();
                let (action, fields) = match r % 100 {
                    0..=59 => (Action::View, vec![]),
                    60..=84 => (Action::Reveal, vec!["phone".to_owned()]),
                    85..=94 => (Action::Search, vec!["phone".to_owned()]),
                    _ => (Action::CreateCase, vec![]),
                };
                let (staff_id, role) = if action == Action::CreateCase {
                    ("crm".to_owned(), Role::Integration)
                } else {
                    (
                        format!("s{staff}"),
                        if staff % 5 == 0 {
                            Role::Sales
                        } else {
                            Role::Support
                        },
                    )
                };
                seq += 1;
                records.push(AccessRecord {
                    seq,
                    request_id: String::new(),
                    at: T0 + day * DAY_MS + 9 * HOUR_MS + slot * 480_000 + (staff as i64) * 90,
                    staff_id,
                    org: format!("org{}", staff % 10),
                    role: role.into(),
                    action,
                    customer_id: Some(format!("cus_{}", (r >> 8) % 10_000_000)),
                    fields,
                    case_id: Some(format!("case_{}", r >> 20)),
                    target: None,
                    decision: if r % 97 == 0 {
                        Decision::Deny
                    } else {
                        Decision::Allow
                    },
                    reason_code: "ok".to_owned(),
                    client: None,
                });
            }
        }
    }
    records
}
