//! Leak attribution measured on a run: leaks cut from what each insider (and each ring)
//! revealed, mixed with rows from elsewhere ([`leak`](super::leak)), traced through the
//! real [`custos_trace::trace`] against the run's store, and scored against the truth.
//!
//! Each leak is scored twice from the same trace: by our ranking (the report's order,
//! by the mixture score) and by the anchor, the same suspects ranked by
//! Papadimitriou & Garcia-Molina's guilt estimate alone (`pgm_guilt`, highest first;
//! equal guilt broken by staff id, and such ties at the cut counted).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use custos_service::startup::Opened;
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
    /// Leaks whose first suspect by P&GM guilt alone (the anchor) was the insider.
    pub top1_anchor: u32,
    /// `top1_anchor / leaks`.
    pub top1_anchor_rate: Option<f64>,
    /// Leaks where the anchor's first place was shared by suspects of equal guilt
    /// (broken by staff id).
    pub anchor_top1_ties: u32,
    /// Leaks carrying at least one canary the insider revealed (one allocated to them).
    pub with_canary: u32,
    /// Of those, leaks whose first suspect was the insider.
    pub with_canary_top1: u32,
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
    /// Members among the first [`RING_TOP`] suspects by P&GM guilt alone (the anchor).
    pub members_in_top_anchor: usize,
    /// `members_in_top_anchor / members`.
    pub fraction_anchor: f64,
    /// Suspects whose guilt equals the anchor's [`RING_TOP`]th (1: no tie at the cut).
    pub anchor_tied_at_cut: usize,
    /// Staff ids of the members not among our first [`RING_TOP`] suspects.
    pub missed: Vec<String>,
    /// Staff ids of the members not among the anchor's first [`RING_TOP`].
    pub missed_anchor: Vec<String>,
}

/// Cuts and traces the leaks.
pub async fn evaluate(
    opened: &Opened,
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
        sources.push(source(opened, plan, outcome, &numbers, &[i]).await?);
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
            top1_anchor: 0,
            top1_anchor_rate: None,
            anchor_top1_ties: 0,
            with_canary: 0,
            with_canary_top1: 0,
        };
        for source in &sources {
            if source.revealed.len() < needed.max(1) {
                result.insiders_too_small += 1;
                continue;
            }
            result.insiders += 1;
            for _ in 0..leaks_per_insider {
                let cut = leak::cut(source, rows, noise, &mut rng);
                let (ranked, ms) = trace(opened, &cut.bytes).await?;
                times.push(ms);
                result.leaks += 1;
                let insider = source.staff.first();
                let top1 = ranked.ours(1).first().copied() == insider;
                result.top1 += u32::from(top1);
                if cut.truth.canaries > 0 {
                    result.with_canary += 1;
                    result.with_canary_top1 += u32::from(top1);
                }
                result.top1_anchor += u32::from(ranked.anchor(1).first().copied() == insider);
                result.anchor_top1_ties += u32::from(ranked.anchor_tied_at(1) > 1);
            }
        }
        let rate = |n: u32| (result.leaks > 0).then(|| f64::from(n) / f64::from(result.leaks));
        result.top1_rate = rate(result.top1);
        result.top1_anchor_rate = rate(result.top1_anchor);
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
        let source = source(opened, plan, outcome, &numbers, &members).await?;
        let cut = leak::cut(&source, RING_ROWS, noise, &mut rng);
        let (ranked, ms) = trace(opened, &cut.bytes).await?;
        times.push(ms);
        let ours: HashSet<&String> = ranked.ours(RING_TOP).into_iter().collect();
        let anchor: HashSet<&String> = ranked.anchor(RING_TOP).into_iter().collect();
        let not_in = |top: &HashSet<&String>| -> Vec<String> {
            source
                .staff
                .iter()
                .filter(|s| !top.contains(s))
                .cloned()
                .collect()
        };
        let (missed, missed_anchor) = (not_in(&ours), not_in(&anchor));
        let found = members.len() - missed.len();
        let found_anchor = members.len() - missed_anchor.len();
        rings.push(RingResult {
            scenario: scenario.name.clone(),
            members: members.len(),
            rows: cut.truth.rows,
            members_in_top: found,
            fraction: found as f64 / members.len() as f64,
            members_in_top_anchor: found_anchor,
            fraction_anchor: found_anchor as f64 / members.len() as f64,
            anchor_tied_at_cut: ranked.anchor_tied_at(RING_TOP),
            missed,
            missed_anchor,
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
/// what they revealed abusively (allocated canaries included), and every customer they held in any way (`numbers`:
/// [`customer_numbers`]).
pub async fn source<'a>(
    opened: &Opened,
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
        revealed.extend(outcome.insiders[i].allocated_revealed.iter().copied());
        let records = opened
            .direct
            .store(&opened.app)
            .access_records(&AccessFilter {
                staff_id: Some(id.clone()),
                decision: Some(custos_types::Decision::Allow),
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

/// Every suspect of a trace: staff id and P&GM guilt, in our ranking's order.
struct Ranked {
    ours: Vec<(String, f64)>,
    /// Indexes into `ours`, by guilt (highest first), then staff id.
    by_guilt: Vec<usize>,
}

impl Ranked {
    fn new(ours: Vec<(String, f64)>) -> Self {
        let mut by_guilt: Vec<usize> = (0..ours.len()).collect();
        by_guilt.sort_by(|&a, &b| {
            ours[b]
                .1
                .total_cmp(&ours[a].1)
                .then_with(|| ours[a].0.cmp(&ours[b].0))
        });
        Ranked { ours, by_guilt }
    }

    /// Our first `top` suspects.
    fn ours(&self, top: usize) -> Vec<&String> {
        self.ours.iter().take(top).map(|(s, _)| s).collect()
    }

    /// The anchor's first `top` suspects.
    fn anchor(&self, top: usize) -> Vec<&String> {
        self.by_guilt
            .iter()
            .take(top)
            .map(|&i| &self.ours[i].0)
            .collect()
    }

    /// How many suspects share the guilt of the anchor's `place`th (1-based); 0 when
    /// there are fewer suspects.
    fn anchor_tied_at(&self, place: usize) -> usize {
        let Some(&at) = place.checked_sub(1).and_then(|p| self.by_guilt.get(p)) else {
            return 0;
        };
        let guilt = self.ours[at].1;
        self.ours.iter().filter(|(_, g)| *g == guilt).count()
    }
}

/// Traces `file` over the whole run: every suspect, and the milliseconds it took.
async fn trace(opened: &Opened, file: &[u8]) -> Result<(Ranked, f64), String> {
    let options = TraceOptions {
        since: 0,
        until: i64::MAX,
        default_region: "CN".to_owned(),
        top: usize::MAX,
        p_elsewhere: 0.3,
    };
    let started = Instant::now();
    let traced = custos_trace::trace(
        opened.direct.store(&opened.app),
        opened.direct.keyring(&opened.app),
        file,
        &options,
        &|_| {},
    )
    .await
    .map_err(|e| format!("{}: {e}", e.code()))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let suspects = traced
        .report
        .suspects
        .into_iter()
        .map(|s| (s.staff, s.pgm_guilt))
        .collect();
    Ok((Ranked::new(suspects), ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_ranks_by_guilt_alone_and_counts_ties() {
        let ranked = Ranked::new(vec![
            ("s3".to_owned(), 0.5),
            ("s2".to_owned(), 0.9),
            ("s9".to_owned(), 1.0),
            ("s1".to_owned(), 1.0),
        ]);
        assert_eq!(ranked.ours(2), ["s3", "s2"]);
        // Guilt first; equal guilt by staff id.
        assert_eq!(ranked.anchor(3), ["s1", "s9", "s2"]);
        assert_eq!(ranked.anchor(9).len(), 4);
        assert_eq!(ranked.anchor_tied_at(1), 2);
        assert_eq!(ranked.anchor_tied_at(3), 1);
        assert_eq!(ranked.anchor_tied_at(5), 0);
        assert_eq!(ranked.anchor_tied_at(0), 0);
    }
}
