//! The evaluation: what the detector caught, how fast, what the insiders took with the
//! protections on and what the same plan would have given them with none.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use custos_types::calendar::HOUR_MS;

use super::company::day_of;
use super::drive::Outcome;
use super::plan::{Plan, Work};

/// An alert as the evaluation needs it.
#[derive(Clone, Debug)]
pub struct RaisedAlert {
    /// The person, or `org:<name>`.
    pub subject: String,
    /// The rule, e.g. `risk_suspend`, `canary_hit`, `org_risk`.
    pub kind: String,
    /// Whether the person was suspended on it.
    pub suspended: bool,
    /// Simulated time of the ledger entry that raised it.
    pub at: i64,
    /// The ledger entries it cites (for a person's day: their records of the day up to
    /// the one that raised it).
    pub entries: Vec<u64>,
}

/// One insider's line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct InsiderReport {
    /// Staff id.
    pub id: String,
    /// Scenario name.
    pub scenario: String,
    /// Organisation.
    pub org: String,
    /// Whether they made an abusive access at all (an insider whose start falls after
    /// the run's end never does, and is left out of the detection figures).
    pub acted: bool,
    /// Simulated time of the first abusive access (unix ms; null: never acted).
    pub first_abuse_at: Option<i64>,
    /// Whether an alert on them cites one of their abusive accesses.
    pub detected: bool,
    /// Hours from the first abusive access to the first alert citing an abusive access
    /// (null: not detected).
    pub hours_to_detect: Option<f64>,
    /// Hours from the first abusive access to suspension (null: not suspended).
    pub hours_to_suspend: Option<f64>,
    /// Real customers revealed to them in abusive contacts (all before suspension:
    /// a suspended person gets nothing).
    pub records_revealed_before_suspension: u64,
    /// What the same plan revealed with no protections.
    pub records_revealed_unprotected: u64,
    /// Canary customers they tried to open.
    pub canaries_touched: u32,
    /// Canaries Custos allocated to them whose fields they revealed.
    pub allocated_canaries_revealed: u64,
    /// The kinds of alert raised on them.
    pub alert_kinds: Vec<String>,
}

/// One scenario's line.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ScenarioReport {
    /// Insiders in the scenario who acted within the run.
    pub insiders: u32,
    /// Insiders planned whose start fell after the run's end (not counted).
    pub not_acted: u32,
    /// Of them detected.
    pub detected: u32,
    /// detected / insiders.
    pub detection_rate: f64,
    /// Median hours to detect, over the detected.
    pub median_hours_to_detect: Option<f64>,
    /// Median records revealed before suspension.
    pub median_records_revealed: Option<f64>,
    /// Records revealed by its insiders, protections on.
    pub records_revealed: u64,
    /// Records revealed by its insiders, protections off.
    pub records_revealed_unprotected: u64,
}

/// Canary figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CanaryReport {
    /// Insiders who touched at least one canary.
    pub insiders_touching: u32,
    /// Of them with a `canary_hit` alert.
    pub caught: u32,
    /// `canary_hit` alerts on honest staff.
    pub false_alerts: u32,
}

/// The whole report (`--report FILE`).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Staff simulated.
    pub staff: u32,
    /// Days simulated.
    pub days: u32,
    /// The seed.
    pub seed: u64,
    /// Real customers in the vault.
    pub customers: u32,
    /// Canary customers planted.
    pub canaries: u32,
    /// Person alerts that cite no abusive access of the person (on honest staff, and on
    /// insiders when what they cite is honest work) per 1,000 staff-days worked.
    pub false_alerts_per_1000_staff_days: f64,
    /// Those alerts.
    pub false_alerts: u64,
    /// Those alerts by rule.
    pub false_alerts_by_kind: BTreeMap<String, u64>,
    /// Distinct person-days with at least one false alert (a day can raise up to three:
    /// step-up, lower quota, suspend), comparable with methods that flag person-days.
    pub false_alert_person_days: u64,
    /// Honest people suspended at least once.
    pub honest_suspended: u64,
    /// Staff-days worked by people who handle contacts.
    pub staff_days: u64,
    /// Records revealed by insiders with protections on ÷ off.
    pub harvest_ratio: f64,
    /// Records revealed by insiders, protections on.
    pub harvest_protected: u64,
    /// Records revealed by insiders, protections off.
    pub harvest_unprotected: u64,
    /// detected ÷ insiders who acted, over all scenarios.
    pub detection_rate: f64,
    /// Median hours to detect over the detected.
    pub median_hours_to_detect: Option<f64>,
    /// 90th percentile of hours to detect over the detected.
    pub p90_hours_to_detect: Option<f64>,
    /// Median records revealed before suspension, over the insiders who acted.
    pub median_records_revealed_before_suspension: Option<f64>,
    /// Per scenario.
    pub scenarios: BTreeMap<String, ScenarioReport>,
    /// Per insider.
    pub insiders: Vec<InsiderReport>,
    /// Canaries.
    pub canary: CanaryReport,
    /// Organisation alerts (partner companies), with hours since the run started.
    pub org_alerts: Vec<(String, f64)>,
    /// Requests sent through the gateway.
    pub requests: u64,
    /// Honest contacts worked.
    pub honest_contacts: u64,
    /// Cases on allocated canaries that honest work came across (what allocation costs
    /// honest queues, against `honest_contacts`).
    pub honest_canary_cases: u64,
    /// Honest requests refused (quotas, policy, suspension).
    pub honest_refused: u64,
    /// Share of honest contacts in which the person asked for a field in full (a
    /// reveal, or an access request for one): what the relays and verified contacts
    /// leave of reveals.
    pub honest_reveal_share: f64,
    /// Honest contacts in which the customer was reached through the relay.
    pub honest_relay_contacts: u64,
    /// Honest access requests made, and approved.
    pub honest_access_requests: (u64, u64),
    /// Wall-clock seconds of the protected run.
    pub wall_seconds: f64,
    /// Whether the run was made with the detector's actions out of reach
    /// (`--no-actions`): its person alerts are then those of a replay of the run's ledger
    /// under the configured thresholds, and the insiders took their whole plan (so the
    /// records revealed are not what the protections allow).
    pub no_actions: bool,
    /// Leak attribution on leaks cut from the run (`--trace-eval`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<super::trace_eval::TraceEvaluation>,
}

/// Per insider: real customers revealed by the plan with nothing in the way.
pub fn unprotected_harvest(plan: &Plan) -> Vec<u64> {
    let mut sets = vec![HashSet::new(); plan.insiders.len()];
    let all_days: HashSet<u32> = plan
        .insiders
        .iter()
        .flat_map(|i| i.active_days.iter().copied())
        .collect();
    let mut days: Vec<u32> = all_days.into_iter().collect();
    days.sort_unstable();
    for day in days {
        for script in plan.day(day) {
            if let (Some(i), Work::Contact(c)) = (script.insider, &script.work)
                && !c.reveal.is_empty()
                && c.customer < plan.vault.customers
            {
                sets[i].insert(c.customer);
            }
        }
    }
    sets.iter().map(|s| s.len() as u64).collect()
}

fn hours(from: i64, to: i64) -> f64 {
    ((to - from) as f64 / HOUR_MS as f64 * 100.0).round() / 100.0
}

fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// Builds the report.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    plan: &Plan,
    seed: u64,
    outcome: &Outcome,
    alerts: &[RaisedAlert],
    unprotected: &[u64],
    run_start: i64,
    wall_seconds: f64,
) -> Report {
    let mut insiders = Vec::new();
    let mut canary = CanaryReport::default();
    let mut insider_ids = HashSet::new();
    let mut false_alerts = 0u64;
    let mut false_by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut false_days: HashSet<(String, i64)> = HashSet::new();
    for (i, insider) in plan.insiders.iter().enumerate() {
        let person = &plan.company.staff[insider.staff];
        insider_ids.insert(person.id.as_str());
        let o = &outcome.insiders[i];
        // A detection is an alert citing an abusive access of theirs; any other alert on
        // them judged honest work, and is false.
        let (citing, honest): (Vec<&RaisedAlert>, Vec<&RaisedAlert>) = alerts
            .iter()
            .filter(|a| a.subject == person.id)
            .partition(|a| a.entries.iter().any(|e| o.abusive_entries.contains(e)));
        for wrong in &honest {
            false_alerts += 1;
            *false_by_kind.entry(wrong.kind.clone()).or_default() += 1;
            false_days.insert((wrong.subject.clone(), day_of(wrong.at)));
        }
        let first = o.first_abuse.unwrap_or(0);
        let detect = citing.iter().map(|a| a.at).min();
        // Any suspension stops the harvest, whatever it cited.
        let suspend = citing
            .iter()
            .chain(&honest)
            .filter(|a| a.suspended && o.first_abuse.is_some_and(|f| a.at >= f))
            .map(|a| a.at)
            .min();
        if o.canaries_touched > 0 {
            canary.insiders_touching += 1;
            if citing.iter().any(|a| a.kind == "canary_hit") {
                canary.caught += 1;
            }
        }
        let mut kinds: Vec<String> = citing.iter().map(|a| a.kind.clone()).collect();
        kinds.sort();
        kinds.dedup();
        insiders.push(InsiderReport {
            id: person.id.clone(),
            scenario: plan.scenarios[insider.scenario].name.clone(),
            org: plan.company.org_of(person).name.to_owned(),
            acted: o.first_abuse.is_some(),
            first_abuse_at: o.first_abuse,
            detected: detect.is_some(),
            hours_to_detect: detect.map(|t| hours(first, t)),
            hours_to_suspend: suspend.map(|t| hours(first, t)),
            records_revealed_before_suspension: o.revealed.len() as u64,
            allocated_canaries_revealed: o.allocated_revealed.len() as u64,
            records_revealed_unprotected: unprotected[i],
            canaries_touched: o.canaries_touched,
            alert_kinds: kinds,
        });
    }
    let mut honest_suspended = HashSet::new();
    let mut org_alerts = Vec::new();
    for a in alerts {
        if let Some(org) = a.subject.strip_prefix("org:") {
            org_alerts.push((org.to_owned(), hours(run_start, a.at)));
        } else if !insider_ids.contains(a.subject.as_str()) {
            false_alerts += 1;
            *false_by_kind.entry(a.kind.clone()).or_default() += 1;
            false_days.insert((a.subject.clone(), day_of(a.at)));
            if a.kind == "canary_hit" {
                canary.false_alerts += 1;
            }
            if a.suspended {
                honest_suspended.insert(a.subject.as_str());
            }
        }
    }
    let mut scenarios: BTreeMap<String, ScenarioReport> = BTreeMap::new();
    for scenario in &plan.scenarios {
        let (of, not_acted): (Vec<&InsiderReport>, Vec<&InsiderReport>) = insiders
            .iter()
            .filter(|i| i.scenario == scenario.name)
            .partition(|i| i.acted);
        let detected = of.iter().filter(|i| i.detected).count() as u32;
        let hours: Vec<f64> = of.iter().filter_map(|i| i.hours_to_detect).collect();
        let records: Vec<f64> = of
            .iter()
            .map(|i| i.records_revealed_before_suspension as f64)
            .collect();
        scenarios.insert(
            scenario.name.clone(),
            ScenarioReport {
                insiders: of.len() as u32,
                not_acted: not_acted.len() as u32,
                detected,
                detection_rate: f64::from(detected) / of.len().max(1) as f64,
                median_hours_to_detect: quantile(&hours, 0.5),
                median_records_revealed: quantile(&records, 0.5),
                records_revealed: of
                    .iter()
                    .map(|i| i.records_revealed_before_suspension)
                    .sum(),
                records_revealed_unprotected: of
                    .iter()
                    .map(|i| i.records_revealed_unprotected)
                    .sum(),
            },
        );
    }
    let acted: Vec<&InsiderReport> = insiders.iter().filter(|i| i.acted).collect();
    let detected = acted.iter().filter(|i| i.detected).count();
    let hours_all: Vec<f64> = acted.iter().filter_map(|i| i.hours_to_detect).collect();
    let records_all: Vec<f64> = acted
        .iter()
        .map(|i| i.records_revealed_before_suspension as f64)
        .collect();
    let on: u64 = insiders
        .iter()
        .map(|i| i.records_revealed_before_suspension)
        .sum();
    let off: u64 = unprotected.iter().sum();
    Report {
        staff: plan.company.staff.len() as u32,
        days: plan.company.days,
        seed,
        customers: plan.vault.customers,
        canaries: plan.vault.canaries,
        false_alerts_per_1000_staff_days: false_alerts as f64 * 1000.0
            / outcome.staff_days.max(1) as f64,
        false_alerts,
        false_alerts_by_kind: false_by_kind,
        false_alert_person_days: false_days.len() as u64,
        honest_suspended: honest_suspended.len() as u64,
        staff_days: outcome.staff_days,
        harvest_ratio: if off == 0 {
            0.0
        } else {
            on as f64 / off as f64
        },
        harvest_protected: on,
        harvest_unprotected: off,
        detection_rate: detected as f64 / acted.len().max(1) as f64,
        median_hours_to_detect: quantile(&hours_all, 0.5),
        p90_hours_to_detect: quantile(&hours_all, 0.9),
        median_records_revealed_before_suspension: quantile(&records_all, 0.5),
        scenarios,
        insiders,
        canary,
        org_alerts,
        requests: outcome.requests,
        honest_contacts: outcome.honest_contacts,
        honest_canary_cases: outcome.honest_canary_cases,
        honest_refused: outcome.honest_refused,
        honest_reveal_share: outcome.honest_reveal_contacts as f64
            / outcome.honest_contacts.max(1) as f64,
        honest_relay_contacts: outcome.honest_relay_contacts,
        honest_access_requests: outcome.honest_requests,
        wall_seconds,
        no_actions: false,
        trace: None,
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

impl Report {
    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<20} {:>8} {:>8} {:>6} {:>10} {:>10} {:>12}\n",
            "scenario", "insiders", "detected", "rate", "med.hours", "med.recs", "recs on/off"
        );
        for (name, s) in &self.scenarios {
            out += &format!(
                "{:<20} {:>8} {:>8} {:>5.0}% {:>10} {:>10} {:>12}\n",
                name,
                s.insiders,
                s.detected,
                s.detection_rate * 100.0,
                opt(s.median_hours_to_detect),
                opt(s.median_records_revealed),
                format!("{}/{}", s.records_revealed, s.records_revealed_unprotected),
            );
        }
        out += &format!(
            "\noverall detection {:.1}%  median {} h, p90 {} h to detect  median {} records before suspension\n\
             false alerts {} ({:.2} per 1,000 staff-days of {}), honest staff suspended {}\n\
             harvest ratio {:.4}% ({} protected / {} unprotected)  canaries: {} of {} insiders caught, {} false\n\
             {} requests in {:.0} s ({:.0}/s); {} honest contacts, {} honest requests refused\n\
             honest contacts asking for a field in full {:.2}%, through the relay {}; honest access requests {} ({} approved)\n",
            self.detection_rate * 100.0,
            opt(self.median_hours_to_detect),
            opt(self.p90_hours_to_detect),
            opt(self.median_records_revealed_before_suspension),
            self.false_alerts,
            self.false_alerts_per_1000_staff_days,
            self.staff_days,
            self.honest_suspended,
            self.harvest_ratio * 100.0,
            self.harvest_protected,
            self.harvest_unprotected,
            self.canary.caught,
            self.canary.insiders_touching,
            self.canary.false_alerts,
            self.requests,
            self.wall_seconds,
            self.requests as f64 / self.wall_seconds.max(0.001),
            self.honest_contacts,
            self.honest_refused,
            self.honest_reveal_share * 100.0,
            self.honest_relay_contacts,
            self.honest_access_requests.0,
            self.honest_access_requests.1,
        );
        if self.no_actions {
            out += "detector actions were out of reach: alerts are a replay under the configured thresholds; records are the whole plans\n";
        }
        if let Some(t) = &self.trace {
            out += &format!(
                "\nleak attribution ({:.0}% rows from elsewhere; median {:.0} ms a trace)\n",
                t.noise * 100.0,
                t.median_trace_ms
            );
            let pct =
                |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0));
            for s in &t.single {
                out += &format!(
                    "  {:>4} rows: first suspect right in {} of {} leaks ({}); P&GM guilt alone {} ({}{}) from {} insiders ({} revealed too few)\n",
                    s.rows,
                    s.top1,
                    s.leaks,
                    pct(s.top1_rate),
                    s.top1_anchor,
                    pct(s.top1_anchor_rate),
                    if s.anchor_top1_ties > 0 {
                        format!(", {} first places tied", s.anchor_top1_ties)
                    } else {
                        String::new()
                    },
                    s.insiders,
                    s.insiders_too_small
                );
            }
            for r in &t.rings {
                out += &format!(
                    "  ring {}: {} of {} members in the first {} suspects of a {}-row leak; P&GM guilt alone {}{}\n",
                    r.scenario,
                    r.members_in_top,
                    r.members,
                    super::trace_eval::RING_TOP,
                    r.rows,
                    r.members_in_top_anchor,
                    if r.anchor_tied_at_cut > 1 {
                        format!(" ({} tied at the cut)", r.anchor_tied_at_cut)
                    } else {
                        String::new()
                    },
                );
                if !r.missed.is_empty() {
                    out += &format!("    missed: {}\n", r.missed.join(", "));
                }
                if !r.missed_anchor.is_empty() {
                    out += &format!("    missed by P&GM: {}\n", r.missed_anchor.join(", "));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::simulate::company::{Company, EPOCH_MS};
    use crate::simulate::drive::InsiderOutcome;
    use crate::simulate::plan::{Vault, World};
    use crate::simulate::scenario::Scenario;

    const TWO: &str = "name = \"two\"\ninsiders = 2\nstart_day = [1, 1]\nactive_days = [1, 1]\ncustomers_per_day = [5, 5]\n";

    /// A plan with two insiders, the first of whom acted at `first` with ledger entries
    /// 10 and 11, the second never; and an honest person's id.
    fn setup(first: i64) -> (Plan, Outcome, String) {
        let plan = Plan::new(
            Company::generate(100, 5, 3),
            Vault {
                customers: 1_000,
                canaries: 0,
                allocation_pool: 0,
            },
            vec![Scenario::parse(TWO).unwrap()],
            HashMap::new(),
            World::default(),
            3,
        )
        .unwrap();
        let outcome = Outcome {
            insiders: vec![
                InsiderOutcome {
                    first_abuse: Some(first),
                    abusive_entries: HashSet::from([10, 11]),
                    ..InsiderOutcome::default()
                },
                InsiderOutcome::default(),
            ],
            staff_days: 500,
            ..Outcome::default()
        };
        let staff: HashSet<usize> = plan.insiders.iter().map(|i| i.staff).collect();
        let honest = (0..plan.company.staff.len())
            .find(|s| !staff.contains(s))
            .map(|s| plan.company.staff[s].id.clone())
            .unwrap();
        (plan, outcome, honest)
    }

    fn alert(subject: &str, at: i64, entries: &[u64]) -> RaisedAlert {
        RaisedAlert {
            subject: subject.to_owned(),
            kind: "risk_step_up".to_owned(),
            suspended: false,
            at,
            entries: entries.to_vec(),
        }
    }

    fn id(plan: &Plan, insider: usize) -> String {
        plan.company.staff[plan.insiders[insider].staff].id.clone()
    }

    #[test]
    fn only_an_alert_citing_an_abusive_entry_detects() {
        let first = EPOCH_MS + 30 * HOUR_MS;
        let (plan, outcome, honest) = setup(first);
        let acted = id(&plan, 0);
        let alerts = [
            // After the first abuse, but on honest work only: false.
            alert(&acted, first + HOUR_MS, &[5, 6]),
            // Cites an abusive entry: the detection, two hours in.
            alert(&acted, first + 2 * HOUR_MS, &[6, 11]),
            // An abusive entry of someone else does not make an honest person's alert true.
            alert(&honest, first, &[10]),
        ];
        let report = evaluate(&plan, 3, &outcome, &alerts, &[0, 0], EPOCH_MS, 1.0);
        let me = &report.insiders[0];
        assert!(me.detected);
        assert_eq!(me.hours_to_detect, Some(2.0));
        assert_eq!(report.false_alerts, 2);
        assert_eq!(report.false_alerts_per_1000_staff_days, 4.0);
        assert_eq!(report.detection_rate, 1.0);
    }

    #[test]
    fn an_alert_on_an_insider_citing_honest_work_alone_is_false() {
        let first = EPOCH_MS + 30 * HOUR_MS;
        let (plan, outcome, _) = setup(first);
        let acted = id(&plan, 0);
        let alerts = [alert(&acted, first + HOUR_MS, &[5, 6, 7])];
        let report = evaluate(&plan, 3, &outcome, &alerts, &[0, 0], EPOCH_MS, 1.0);
        assert!(!report.insiders[0].detected);
        assert_eq!(report.insiders[0].hours_to_detect, None);
        assert_eq!(report.false_alerts, 1);
        assert_eq!(report.false_alerts_by_kind["risk_step_up"], 1);
        assert_eq!(report.detection_rate, 0.0);
    }

    #[test]
    fn an_insider_who_never_acted_is_not_counted() {
        let first = EPOCH_MS + 30 * HOUR_MS;
        let (plan, outcome, _) = setup(first);
        let idle = id(&plan, 1);
        let acted = id(&plan, 0);
        let alerts = [
            alert(&acted, first, &[10]),
            // The idle one draws an alert on honest work: false, and no detection.
            alert(&idle, first, &[3]),
        ];
        let report = evaluate(&plan, 3, &outcome, &alerts, &[0, 0], EPOCH_MS, 1.0);
        let scenario = &report.scenarios["two"];
        assert_eq!((scenario.insiders, scenario.not_acted), (1, 1));
        assert_eq!(scenario.detected, 1);
        assert_eq!(report.detection_rate, 1.0);
        assert!(!report.insiders[1].acted);
        assert!(!report.insiders[1].detected);
        assert_eq!(report.false_alerts, 1);
    }
}
