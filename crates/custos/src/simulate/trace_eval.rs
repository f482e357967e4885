//! Leak attribution measured on a run: leaks cut from what each insider (and each ring)
//! revealed, mixed with rows from elsewhere ([`leak`](super::leak)), traced through the
//! real [`custos_trace::trace`] against the run's store, and scored against the truth.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use custos_gateway::SharedApp;
use custos_store::AccessFilter;
use custos_trace::TraceOptions;
use serde::Serialize;

use super::drive::Outcome;
use super::leak::{self, Source};
use super::plan::Plan;
use super::rng;

/// Leaked rows of the single-insider leaks evaluated.
pub const SIZES: [usize; 3] = [3, 10, 50];
/// Rows of a ring's leak.
pub const RING_ROWS: usize = 1000;
/// How far down the ranking a ring's members are looked for.
pub const RING_TOP: usize = 20;

/// The evaluation (`"trace"` in the simulation report).
#[derive(Clone, Debug, Serialize)]
pub struct TraceEvaluation {
    /// Share of each leak's rows from elsewhere.
    pub noise: f64,
    /// Leaks cut per insider and size.
    pub leaks_per_insider: u32,
    /// Per size of single-insider leaks.
    pub single: Vec<SizeResult>,
    /// Per ring scenario.
    pub rings: Vec<RingResult>,
    /// Median wall-clock milliseconds of one trace.
    pub median_trace_ms: f64,
}

/// Single-insider leaks of one size.
#[derive(Clone, Debug, Serialize)]
pub struct SizeResult {
    /// Rows per leak.
    pub rows: usize,
    /// Insiders who revealed enough customers for a leak of this size.
    pub insiders: u32,
    /// Insiders who revealed too few.
    pub insiders_too_small: u32,
    /// Leaks traced.
    pub leaks: u32,
    /// Leaks whose first suspect was the insider.
    pub top1: u32,
    /// `top1 / leaks`.
    pub top1_rate: Option<f64>,
}

/// One ring's leak.
#[derive(Clone, Debug, Serialize)]
pub struct RingResult {
    /// The scenario.
    pub scenario: String,
    /// Members who revealed anything.
    pub members: usize,
    /// Rows of the leak.
    pub rows: usize,
    /// Members among the first [`RING_TOP`] suspects.
    pub members_in_top: usize,
    /// `members_in_top / members`.
    pub fraction: f64,
}

/// Cuts and traces the leaks.
pub async fn evaluate(
    app: &SharedApp,
    plan: &Plan,
    outcome: &Outcome,
    seed: u64,
    noise: f64,
    leaks_per_insider: u32,
) -> Result<TraceEvaluation, String> {
    let mut rng = rng::stream(seed, "trace-eval", 0);
    let mut times = Vec::new();
    let mut single = Vec::new();
    let numbers = customer_numbers(outcome);
    let mut sources = Vec::with_capacity(plan.insiders.len());
    for i in 0..plan.insiders.len() {
        sources.push(source(app, plan, outcome, &numbers, &[i]).await?);
    }
    for rows in SIZES {
        let needed = rows - ((rows as f64) * noise).round() as usize;
        let mut result = SizeResult {
            rows,
            insiders: 0,
            insiders_too_small: 0,
            leaks: 0,
            top1: 0,
            top1_rate: None,
        };
        for source in &sources {
            if source.revealed.len() < needed.max(1) {
                result.insiders_too_small += 1;
                continue;
            }
            result.insiders += 1;
            for _ in 0..leaks_per_insider {
                let cut = leak::cut(source, rows, noise, &mut rng);
                let (suspects, ms) = trace(app, &cut.bytes, 1).await?;
                times.push(ms);
                result.leaks += 1;
                result.top1 += u32::from(suspects.first() == source.staff.first());
            }
        }
        result.top1_rate =
            (result.leaks > 0).then(|| f64::from(result.top1) / f64::from(result.leaks));
        single.push(result);
    }
    let mut rings = Vec::new();
    for (s, scenario) in plan.scenarios.iter().enumerate() {
        if scenario.rings.is_none() {
            continue;
        }
        let members: Vec<usize> = (0..plan.insiders.len())
            .filter(|&i| plan.insiders[i].scenario == s && !outcome.insiders[i].revealed.is_empty())
            .collect();
        if members.len() < 2 {
            continue;
        }
        let source = source(app, plan, outcome, &numbers, &members).await?;
        let cut = leak::cut(&source, RING_ROWS, noise, &mut rng);
        let (suspects, ms) = trace(app, &cut.bytes, RING_TOP).await?;
        times.push(ms);
        let wanted: HashSet<&String> = source.staff.iter().collect();
        let found = suspects.iter().filter(|s| wanted.contains(s)).count();
        rings.push(RingResult {
            scenario: scenario.name.clone(),
            members: members.len(),
            rows: cut.truth.rows,
            members_in_top: found,
            fraction: found as f64 / members.len() as f64,
        });
    }
    times.sort_by(f64::total_cmp);
    Ok(TraceEvaluation {
        noise,
        leaks_per_insider,
        single,
        rings,
        median_trace_ms: times.get(times.len() / 2).copied().unwrap_or(0.0),
    })
}

/// The plan's customer number of each customer id of the run's vault.
pub fn customer_numbers(outcome: &Outcome) -> HashMap<&str, u32> {
    outcome
        .vault
        .ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n as u32))
        .collect()
}

/// The leak source made of the insiders `insiders` (indexes into [`Plan::insiders`]):
/// what they revealed abusively, and every customer they held in any way (`numbers`:
/// [`customer_numbers`]).
pub async fn source<'a>(
    app: &SharedApp,
    plan: &Plan,
    outcome: &'a Outcome,
    numbers: &HashMap<&str, u32>,
    insiders: &[usize],
) -> Result<Source<'a>, String> {
    let mut staff = Vec::new();
    let mut revealed: Vec<u32> = Vec::new();
    let mut held = HashSet::new();
    for &i in insiders {
        let id = &outcome.staff_ids[plan.insiders[i].staff];
        staff.push(id.clone());
        revealed.extend(outcome.insiders[i].revealed.iter().copied());
        let records = app
            .store
            .access_records(&AccessFilter {
                staff_id: Some(id.clone()),
                decision: Some("allow".to_owned()),
                ..AccessFilter::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        held.extend(
            records
                .iter()
                .filter_map(|r| r.customer_id.as_deref())
                .filter_map(|c| numbers.get(c).copied()),
        );
    }
    revealed.sort_unstable();
    revealed.dedup();
    Ok(Source {
        staff,
        people: &outcome.vault.people,
        revealed,
        held,
        real: plan.vault.customers,
    })
}

/// Traces `file` over the whole run: the first `top` suspects' staff ids, and the
/// milliseconds it took.
async fn trace(app: &SharedApp, file: &[u8], top: usize) -> Result<(Vec<String>, f64), String> {
    let options = TraceOptions {
        since: 0,
        until: i64::MAX,
        default_region: "CN".to_owned(),
        top,
        p_elsewhere: 0.3,
    };
    let started = Instant::now();
    let traced = custos_trace::trace(&app.store, &app.keyring, file, &options, &|_| {})
        .await
        .map_err(|e| format!("{}: {e}", e.code()))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok((
        traced
            .report
            .suspects
            .into_iter()
            .map(|s| s.staff)
            .collect(),
        ms,
    ))
}
