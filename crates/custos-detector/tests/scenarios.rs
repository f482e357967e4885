//! Constructed traffic: 50 support agents at two partner companies over 10 days, four of
//! them insiders. Deterministic (a fixed-seed generator), no I/O.

use std::collections::BTreeMap;

use custos_access::AccessRecord;
use custos_detector::features::Feature;
use custos_detector::{Finding, Model, ModelConfig};
use custos_types::{Action, Decision, Role};

/// 2024-01-01 00:00 UTC.
const T0: i64 = 1_704_067_200_000;
const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const MIN: i64 = 60_000;
const DAYS: i64 = 10;

const BULK_NIGHT: &str = "a03";
const SLOW: &str = "a10";
const HUGGER: &str = "a30";
const SCRIPTED: &str = "a40";
const INSIDERS: [&str; 4] = [BULK_NIGHT, SLOW, HUGGER, SCRIPTED];
/// The day the bulk-night harvest happens, and the slow and scripted ones start.
const BULK_DAY: i64 = 7;
const SLOW_FROM: i64 = 6;
const SCRIPT_FROM: i64 = 5;

/// SplitMix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Gen {
    rng: Rng,
    records: Vec<AccessRecord>,
    case: u64,
}

impl Gen {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        at: i64,
        staff: &str,
        org: &str,
        role: Role,
        action: Action,
        customer: Option<&str>,
        fields: &[&str],
        case: Option<&str>,
        decision: Decision,
    ) {
        self.records.push(AccessRecord {
            seq: 0,
            request_id: String::new(),
            at,
            staff_id: staff.to_owned(),
            org: org.to_owned(),
            role: role.into(),
            action,
            customer_id: customer.map(str::to_owned),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            case_id: case.map(str::to_owned),
            target: None,
            decision,
            reason_code: "ok".to_owned(),
            client: None,
        });
    }

    /// One ordinary contact: the CRM opens a case, the agent sometimes searches, views,
    /// sometimes reveals the phone for a call-back, closes. `own_case`: the agent opened
    /// the case themselves (a pretext).
    fn contact(&mut self, at: i64, staff: &str, org: &str, reveal_p: f64, own_case: bool) {
        self.case += 1;
        let case = format!("case_{}", self.case);
        let customer = format!("cus_{}", self.rng.below(2_000_000));
        let (opener, opener_role) = if own_case {
            (staff, Role::Support)
        } else {
            ("crm", Role::Integration)
        };
        self.push(
            at - MIN,
            opener,
            org,
            opener_role,
            Action::CreateCase,
            Some(&customer),
            &[],
            Some(&case),
            Decision::Allow,
        );
        if self.rng.unit() < 0.1 {
            self.push(
                at - 30_000,
                staff,
                org,
                Role::Support,
                Action::Search,
                Some(&customer),
                &["phone"],
                None,
                Decision::Allow,
            );
        }
        let denied = self.rng.unit() < 0.02;
        self.push(
            at,
            staff,
            org,
            Role::Support,
            Action::View,
            Some(&customer),
            &[],
            Some(&case),
            if denied {
                Decision::Deny
            } else {
                Decision::Allow
            },
        );
        if !denied && self.rng.unit() < reveal_p {
            let delay = self.rng.range(20.0, 120.0) as i64 * 1000;
            self.push(
                at + delay,
                staff,
                org,
                Role::Support,
                Action::Reveal,
                Some(&customer),
                &["phone"],
                Some(&case),
                Decision::Allow,
            );
        }
        self.push(
            at + 5 * MIN,
            staff,
            org,
            Role::Support,
            Action::CloseCase,
            Some(&customer),
            &[],
            Some(&case),
            Decision::Allow,
        );
    }

    /// `n` contacts at random times within the working day (09:00–17:30).
    fn honest_day(&mut self, day: i64, staff: &str, org: &str, n: u32) {
        let start = T0 + day * DAY + 9 * HOUR;
        let mut times: Vec<i64> = (0..n)
            .map(|_| start + self.rng.range(0.0, 8.5 * HOUR as f64) as i64)
            .collect();
        times.sort_unstable();
        for t in times {
            self.contact(t, staff, org, 0.3, false);
        }
    }
}

fn org_of(i: usize) -> &'static str {
    if i < 25 { "acme" } else { "bpo" }
}

/// The whole traffic, in time order with ledger indexes.
fn traffic(seed: u64) -> Vec<AccessRecord> {
    let mut g = Gen {
        rng: Rng(seed),
        records: Vec::new(),
        case: 0,
    };
    let means: Vec<f64> = (0..50).map(|_| g.rng.range(30.0, 50.0)).collect();
    for day in 0..DAYS {
        for (i, mean) in means.iter().enumerate() {
            let staff = format!("a{i:02}");
            let org = org_of(i);
            let n = (mean * g.rng.range(0.85, 1.15)).round() as u32;
            match staff.as_str() {
                HUGGER => {
                    // Just under an 80/day ceiling, every day from day one.
                    let n = 77 + g.rng.below(3) as u32;
                    g.honest_day(day, &staff, org, n);
                }
                SLOW if day >= SLOW_FROM => g.honest_day(day, &staff, org, n + 25),
                SCRIPTED if day >= SCRIPT_FROM => {
                    // A script: one customer every 12 minutes, to the second.
                    let start = T0 + day * DAY + 9 * HOUR;
                    for k in 0..n {
                        let jitter = g.rng.below(2000) as i64;
                        g.contact(
                            start + i64::from(k) * 12 * MIN + jitter,
                            &staff,
                            org,
                            0.0,
                            false,
                        );
                    }
                }
                BULK_NIGHT if day == BULK_DAY => {
                    // Hundreds of customers between 02:00 and 03:00, every phone
                    // revealed (the cases come through the CRM: pretext cases are
                    // another scenario).
                    let start = T0 + day * DAY + 2 * HOUR + MIN;
                    for k in 0..400 {
                        let t = start + k * 8_000 + g.rng.below(4000) as i64;
                        g.contact(t, &staff, org, 1.0, false);
                    }
                    g.honest_day(day, &staff, org, n);
                }
                _ => g.honest_day(day, &staff, org, n),
            }
        }
    }
    let mut records = g.records;
    records.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.staff_id.cmp(&b.staff_id)));
    for (i, r) in records.iter_mut().enumerate() {
        r.seq = i as i64 + 1;
    }
    records
}

/// Findings with the record that raised them.
fn run(model: &mut Model, records: &[AccessRecord]) -> Vec<(i64, String, String, Finding)> {
    let mut out = Vec::new();
    for r in records {
        for f in model.observe(r) {
            out.push((r.seq, r.staff_id.clone(), r.org.clone(), f));
        }
    }
    out
}

fn day_of(records: &[AccessRecord], seq: i64) -> i64 {
    (records[seq as usize - 1].at - T0) / DAY
}

/// The feature a finding's first reason line (after the score line) describes.
fn leading(f: &Finding) -> &str {
    f.reasons.get(1).map_or("", String::as_str)
}

#[test]
fn insiders_are_found_and_honest_agents_are_not() {
    let records = traffic(42);
    let mut model = Model::new(ModelConfig::default());
    let findings = run(&mut model, &records);

    let mut by_person: BTreeMap<&str, Vec<&(i64, String, String, Finding)>> = BTreeMap::new();
    for f in &findings {
        if f.3.kind.starts_with("risk_") {
            by_person.entry(f.1.as_str()).or_default().push(f);
        }
    }
    for (who, fs) in &by_person {
        for (seq, _, _, f) in fs {
            eprintln!(
                "{who} day {} {} {}: {:?}",
                day_of(&records, *seq),
                f.kind,
                f.severity,
                f.reasons
            );
        }
    }
    let org_findings: Vec<_> = findings.iter().filter(|f| f.3.kind == "org_risk").collect();
    for (seq, _, org, f) in &org_findings {
        eprintln!("org {org} day {}: {:?}", day_of(&records, *seq), f.reasons);
    }

    // Honest agents: no finding at all over 46 × 10 staff-days.
    let false_findings: usize = by_person
        .iter()
        .filter(|(who, _)| !INSIDERS.contains(who))
        .map(|(_, fs)| fs.len())
        .sum();
    eprintln!("false findings: {false_findings} over 460 honest staff-days");
    assert_eq!(false_findings, 0);

    // (a) Bulk night: suspended during the night itself. At that moment (a few dozen
    // customers in) what stands out is the hour; by the end of the night, the volume.
    let bulk = &by_person[BULK_NIGHT];
    let suspend = bulk
        .iter()
        .find(|f| f.3.kind == "risk_suspend")
        .expect("bulk-night harvester suspended");
    let at = records[suspend.0 as usize - 1].at;
    assert_eq!(day_of(&records, suspend.0), BULK_DAY);
    assert!(
        at < T0 + BULK_DAY * DAY + 3 * HOUR,
        "suspended only at {at}"
    );
    assert!(suspend.3.suspend && suspend.3.severity == "critical");
    assert!(
        leading(&suspend.3).contains("outside working hours"),
        "{:?}",
        suspend.3.reasons
    );
    let night_end = T0 + BULK_DAY * DAY + 3 * HOUR;
    let night = Model::replay(
        ModelConfig::default(),
        records.iter().take_while(|r| r.at < night_end),
    );
    let a = night.assessment(BULK_NIGHT).unwrap();
    assert_eq!(
        a.leading(),
        Some(Feature::DistinctCustomers),
        "{:?}",
        a.reasons
    );
    // 400 contacts, 2% of views refused.
    assert!(
        a.reasons[0].starts_with("viewed 39") && a.reasons[0].contains("peers' median"),
        "{:?}",
        a.reasons
    );
    let night_share = a
        .contributions
        .iter()
        .find(|c| c.feature == Feature::OffShiftShare)
        .unwrap();
    assert!(night_share.value > 0.95 && night_share.score > 7.0);

    // (b) Slow harvester: found on the first day of the harvest, for the extra
    // customers — or for the extra reveals that come with them: the agent reveals at
    // the usual rate, and reveals are the noisier-relative count, so either can lead.
    let slow = by_person.get(SLOW).expect("slow harvester found");
    assert!(slow.iter().all(|f| day_of(&records, f.0) >= SLOW_FROM));
    assert_eq!(day_of(&records, slow[0].0), SLOW_FROM);
    let lead = leading(&slow[0].3);
    assert!(
        lead.contains("distinct customers today") || lead.starts_with("revealed"),
        "{:?}",
        slow[0].3.reasons
    );
    assert!(
        slow[0]
            .3
            .reasons
            .iter()
            .any(|r| r.contains("distinct customers today")),
        "{:?}",
        slow[0].3.reasons
    );

    // (c) Quota hugger: found once warm, for being far above peers every day.
    let hugger = by_person.get(HUGGER).expect("quota hugger found");
    assert!(
        leading(&hugger[0].3).starts_with("viewed") && leading(&hugger[0].3).contains("peers"),
        "{:?}",
        hugger[0].3.reasons
    );

    // (d) Scripted agent: found for its regular timing.
    let scripted = by_person.get(SCRIPTED).expect("scripted agent found");
    assert!(
        scripted
            .iter()
            .all(|f| day_of(&records, f.0) >= SCRIPT_FROM)
    );
    assert!(
        leading(&scripted[0].3).starts_with("accessed records at machine-regular intervals"),
        "{:?}",
        scripted[0].3.reasons
    );

    // No floods: at most one finding per person per rule per day.
    let mut seen = std::collections::HashSet::new();
    for (seq, who, org, f) in &findings {
        let subject = if f.kind == "org_risk" { org } else { who };
        assert!(
            seen.insert((subject.clone(), f.kind, day_of(&records, *seq))),
            "second {} for {subject} on one day",
            f.kind
        );
    }
}

#[test]
fn replay_and_snapshot_give_identical_findings() {
    let records = traffic(7);
    let mut full = Model::new(ModelConfig::default());
    let all = run(&mut full, &records);
    assert!(!all.is_empty());

    for cut in [1, records.len() / 3, records.len() * 2 / 3 + 17] {
        let (before, after) = records.split_at(cut);
        let expected: Vec<_> = all.iter().filter(|f| f.0 > cut as i64).cloned().collect();

        // Stopped, then rebuilt by replaying the ledger from the start.
        let mut first = Model::new(ModelConfig::default());
        run(&mut first, before);
        drop(first);
        let mut rebuilt = Model::replay(ModelConfig::default(), before);
        assert_eq!(run(&mut rebuilt, after), expected, "replay at {cut}");

        // Restored from a serialised snapshot.
        let mut first = Model::new(ModelConfig::default());
        run(&mut first, before);
        let json = serde_json::to_string(&first.snapshot()).unwrap();
        let mut restored = Model::restore(serde_json::from_str(&json).unwrap());
        // A consumer that re-reads its last batch after a crash changes nothing.
        let reread = &before[before.len().saturating_sub(500)..];
        assert!(run(&mut restored, reread).is_empty());
        assert_eq!(run(&mut restored, after), expected, "snapshot at {cut}");
    }
}

#[test]
fn organisation_totals_aggregate_their_people() {
    let records = traffic(3);
    let day0: Vec<_> = records
        .iter()
        .filter(|r| r.at < T0 + DAY)
        .cloned()
        .collect();
    let model = Model::replay(ModelConfig::default(), &day0);
    let mut sum = 0.0;
    for i in 0..25 {
        sum += model
            .person_values(&format!("a{i:02}"))
            .unwrap()
            .get(Feature::DistinctCustomers)
            .unwrap();
    }
    assert_eq!(model.org_values("acme").unwrap()[0], sum);
    // The CRM integration is watched like the people: it has a day of its own.
    assert!(model.person_values("crm").is_some());
    assert_eq!(model.people(), 51);
}

/// The same traffic under other seeds: every insider found, and the false findings
/// counted (measured: 2 in 4,600 honest staff-days; asserted at most 4, < 1 per 1,000).
#[test]
fn other_seeds() {
    let mut false_total = 0;
    for seed in 100..110 {
        let records = traffic(seed);
        let mut model = Model::new(ModelConfig::default());
        let findings = run(&mut model, &records);
        let flagged = |who: &str| {
            findings
                .iter()
                .any(|f| f.1 == who && f.3.kind.starts_with("risk_"))
        };
        for who in INSIDERS {
            assert!(flagged(who), "seed {seed}: {who} not found");
        }
        let false_here = findings
            .iter()
            .filter(|f| f.3.kind.starts_with("risk_") && !INSIDERS.contains(&f.1.as_str()))
            .inspect(|f| eprintln!("seed {seed}: {} {:?}", f.1, f.3.reasons))
            .count();
        false_total += false_here;
    }
    eprintln!("false findings over 10 seeds × 460 honest staff-days: {false_total}");
    assert!(false_total <= 4, "{false_total}");
}
