//! The risk score: how far a person's day deviates from their own past and from their
//! peers, which features drove it (in plain words), and what to do about it.
//!
//! # Formula
//!
//! For each feature `f` with current-day value `x` (direction `d` = +1 when more is
//! suspicious, −1 when less is, e.g. timing variation), `g` the team's surge for counts
//! ([`team_surge`]: how much busier than usual the team is at this time of day, beyond
//! the ordinary weekly swing; 1 for ratios) and a spread floor
//! `s_f = max(g·floor_f, rel_floor · |level|)`:
//!
//! - self z: `z_self = d · (x − g·μ) / max(g·σ, s_f)`, with `μ, σ` the person's EWMA
//!   mean and standard deviation of `f` (needs `warmup.min_days` learnt days). On a
//!   launch day when the whole team handles three times the usual, a person at three
//!   times their own usual is expected, not an outlier against their past; someone alone
//!   at three times is still one;
//! - peer z: `z_peer = d · (x − median) / (1.4826 · max(MAD, s_f / 1.4826))` over the
//!   peer group's current values (needs `warmup.min_peers` members). The floor grows
//!   with the surge, as the self z's does: it is the noise of a count on a usual day, and
//!   on a day of three times the work a busy agent's lead over the median triples with
//!   it. Without that, an agent who always works at a few times the median, judged
//!   against peers only (in their first days), turns into an outlier on a launch day;
//! - chronic z: `z_chronic = d · (μ − median(μ_peers)) / (1.4826 · max(MAD(μ_peers), …))`:
//!   the person's *long-run level* against the long-run levels of peers with history.
//!   This is what finds someone who has been just under the quota since day one: every
//!   day looks like their own past, yet their past is unlike anyone else's. It counts
//!   as `min(z_chronic⁺, z_peer⁺)`: only on a day the person is at it again.
//!
//! The acute deviation asks for both views to agree, so that a busy day for the whole
//! team (peer z small) or a person who is always busy (self z small) is not an alarm:
//! `acute = sqrt(z_self⁺ · z_peer⁺)` (geometric mean of the positive parts) when both
//! baselines are warm; with only one warm, that z⁺ times `single_view_factor`.
//!
//! Feature contribution: `c_f = w_f · min(z_cap, max(acute, z_chronic⁺))`.
//!
//! **Score** `= max_f c_f + tail_weight · (Σ_f c_f − max_f c_f)`: the strongest signal
//! decides, the others add a little (several moderate anomalies at once are worth more
//! than one), and the cap per feature keeps one absurd value from being everything.
//!
//! Actions: `score ≥ suspend` → suspend, `≥ lower_quota` → lower the quota,
//! `≥ step_up` → require a step-up reason, else none ([`Thresholds`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::baseline::{MAD_SCALE, PeerBaseline, Robust, SelfBaseline};
use crate::features::{DayValues, Direction, Feature, N_FEATURES};

/// What to do about a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing.
    None,
    /// Require a step-up reason on the next sensitive request.
    StepUp,
    /// Lower the person's quota.
    LowerQuota,
    /// Suspend the person.
    Suspend,
}

impl Action {
    /// The finding kind for the action, one rule per action level.
    pub fn kind(self) -> &'static str {
        match self {
            Action::None => "risk_none",
            Action::StepUp => "risk_step_up",
            Action::LowerQuota => "risk_lower_quota",
            Action::Suspend => "risk_suspend",
        }
    }
}

/// Alert severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Look at it today.
    Medium,
    /// Look at it now.
    High,
    /// Acted on automatically.
    Critical,
}

impl Severity {
    /// The wire form used by [`crate::Finding::severity`].
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// Score thresholds and the alert severity of each action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Score from which a step-up reason is required.
    pub step_up: f64,
    /// Score from which the quota is lowered.
    pub lower_quota: f64,
    /// Score from which the person is suspended.
    pub suspend: f64,
    /// Severity of a step-up finding.
    pub step_up_severity: Severity,
    /// Severity of a lower-quota finding.
    pub lower_quota_severity: Severity,
    /// Severity of a suspension finding.
    pub suspend_severity: Severity,
    /// Organisation score (max z of its totals against its own past) from which an
    /// `org_risk` finding is raised.
    pub org_alert: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            step_up: 4.0,
            lower_quota: 6.0,
            suspend: 9.0,
            step_up_severity: Severity::Medium,
            lower_quota_severity: Severity::High,
            suspend_severity: Severity::Critical,
            org_alert: 6.0,
        }
    }
}

impl Thresholds {
    /// The action for a score.
    pub fn action(&self, score: f64) -> Action {
        if score >= self.suspend {
            Action::Suspend
        } else if score >= self.lower_quota {
            Action::LowerQuota
        } else if score >= self.step_up {
            Action::StepUp
        } else {
            Action::None
        }
    }

    /// The severity of an action's finding.
    pub fn severity(&self, action: Action) -> Severity {
        match action {
            Action::None => Severity::Low,
            Action::StepUp => self.step_up_severity,
            Action::LowerQuota => self.lower_quota_severity,
            Action::Suspend => self.suspend_severity,
        }
    }
}

/// How much history comes before anyone is scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Warmup {
    /// Active days a person's own baseline needs.
    pub min_days: u32,
    /// Members with a value a peer group needs.
    pub min_peers: u32,
}

impl Default for Warmup {
    fn default() -> Self {
        Warmup {
            min_days: 3,
            min_peers: 5,
        }
    }
}

/// Scoring settings (see the module docs for the formula).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Score → action.
    pub thresholds: Thresholds,
    /// Minimum history.
    pub warmup: Warmup,
    /// Per-feature weight `w_f` (features not named keep their default).
    pub weights: BTreeMap<Feature, f64>,
    /// Per-feature absolute spread floor `floor_f`, in the feature's unit.
    pub floors: BTreeMap<Feature, f64>,
    /// Relative spread floor: a spread is never taken below this share of the level.
    pub rel_floor: f64,
    /// Cap on one feature's z.
    pub z_cap: f64,
    /// Weight of the non-leading contributions.
    pub tail_weight: f64,
    /// Factor on the z when only one of self and peers is warm.
    pub single_view_factor: f64,
    /// Contributions below this are not named in the reasons.
    pub reason_min: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            thresholds: Thresholds::default(),
            warmup: Warmup::default(),
            weights: BTreeMap::new(),
            floors: BTreeMap::new(),
            rel_floor: 0.1,
            z_cap: 12.0,
            tail_weight: 0.25,
            single_view_factor: 0.6,
            reason_min: 1.5,
        }
    }
}

impl ScoreConfig {
    /// The weight of a feature.
    pub fn weight(&self, f: Feature) -> f64 {
        self.weights.get(&f).copied().unwrap_or(match f {
            Feature::DistinctCustomers => 1.0,
            Feature::Reveals
            | Feature::SelfOpenedCases
            | Feature::AccessRequests
            | Feature::Approvals
            | Feature::RelayContacts => 0.9,
            Feature::PeakHourCustomers | Feature::SearchBreadth | Feature::TimingCv => 0.8,
            // Working at night, or working through outbound cases (a call-back campaign
            // is honest work), is a reason to ask, not on its own to suspend: the
            // contribution (at most 0.6 · z_cap) stays below the default suspend score.
            // A pretext the person asked for themselves also counts as SelfOpenedCases.
            Feature::OffShiftShare
            | Feature::NoContactCases
            | Feature::RevealsPerCase
            | Feature::Searches
            | Feature::Denials => 0.6,
        })
    }

    /// The absolute spread floor of a feature.
    pub fn floor(&self, f: Feature) -> f64 {
        self.floors.get(&f).copied().unwrap_or(match f {
            Feature::DistinctCustomers | Feature::Reveals => 3.0,
            Feature::PeakHourCustomers
            | Feature::Searches
            | Feature::SearchBreadth
            | Feature::Denials
            // Outbound work comes in batches: a handful more than usual is noise.
            | Feature::NoContactCases => 2.0,
            // Honest work asks for access and approves rarely: one more is noise, a
            // handful more is not.
            Feature::SelfOpenedCases | Feature::AccessRequests => 1.0,
            Feature::Approvals | Feature::RelayContacts => 3.0,
            Feature::RevealsPerCase | Feature::TimingCv => 0.1,
            Feature::OffShiftShare => 0.05,
        })
    }

    /// `s_f` of the module docs: the absolute floor in units of a usual day (times the
    /// team's `surge`), or the relative one.
    fn spread_floor(&self, f: Feature, level: f64, surge: f64) -> f64 {
        (surge * self.floor(f)).max(self.rel_floor * level.abs())
    }
}

/// One feature's part in a score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Contribution {
    /// The feature.
    pub feature: Feature,
    /// Today's value.
    pub value: f64,
    /// The person's own average (EWMA mean), if warm.
    pub own_mean: Option<f64>,
    /// Self z, if warm.
    pub z_self: Option<f64>,
    /// Peers' median, if warm.
    pub peer_median: Option<f64>,
    /// Peer robust z, if warm.
    pub z_peer: Option<f64>,
    /// Peers' median long-run level and the chronic z, if both are warm.
    pub chronic: Option<(f64, f64)>,
    /// `c_f` of the module docs.
    pub score: f64,
}

impl Contribution {
    /// The plain-language reason, e.g. "viewed 412 distinct customers today; peers'
    /// median 38 (robust z 9.1); own average 35 (z 20.3)".
    pub fn reason(&self) -> String {
        let f = self.feature;
        let mut s = f.describe(self.value);
        if let (Some(m), Some(z)) = (self.peer_median, self.z_peer) {
            s += &format!("; peers' median {} (robust z {z:.1})", f.format_value(m));
        }
        if let (Some(m), Some(z)) = (self.own_mean, self.z_self) {
            s += &format!("; own average {} (z {z:.1})", f.format_value(m));
        }
        if let (Some((m, z)), Some(own)) = (self.chronic, self.own_mean)
            && z >= 2.0
        {
            s += &format!(
                "; own long-run average {} against peers' {} (robust z {z:.1}) every day, not just today",
                f.format_value(own),
                f.format_value(m)
            );
        }
        s
    }
}

/// A person's score, its action, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assessment {
    /// The score of the module docs (0 when not scored).
    pub score: f64,
    /// What the thresholds say to do.
    pub action: Action,
    /// Every scored feature, strongest first.
    pub contributions: Vec<Contribution>,
    /// Plain-language reasons: the strongest features, then any warm-up notes.
    pub reasons: Vec<String>,
    /// Whether the person could be scored at all (see [`Warmup`]).
    pub scored: bool,
}

impl Assessment {
    /// The feature that drove the score, if any contributed.
    pub fn leading(&self) -> Option<Feature> {
        self.contributions
            .first()
            .filter(|c| c.score > 0.0)
            .map(|c| c.feature)
    }
}

/// An ordinary week moves a team's day by up to about a fifth (busy Mondays, quiet
/// Sundays); only a rise beyond that is taken as a surge, so that on ordinary days the
/// self baseline keeps its full sensitivity.
const SURGE_DEAD_ZONE: f64 = 1.25;

/// How much busier than usual a group is by one measure: `now`, the median of the active
/// members' values so far today, over `usual`, the median usual at this moment, divided
/// by [`SURGE_DEAD_ZONE`] and at least 1 (a quiet day does not make anyone more suspect);
/// `None` without `min_peers` active members, or when the usual median is below one (a
/// ratio of near zeros is noise, not a surge).
fn surge_of(now: Option<Robust>, usual: Option<f64>, min_peers: u32) -> Option<f64> {
    match (now, usual) {
        (Some(now), Some(usual)) if now.n >= min_peers && usual >= 1.0 => {
            Some((now.median / usual / SURGE_DEAD_ZONE).max(1.0))
        }
        _ => None,
    }
}

/// How much busier than usual the group's workload is today ([`crate::features::PersonDay::cases_worked`]:
/// every case worked, whatever its provenance): the median of the active members'
/// workload so far (`now`) over the median usual at the same time of day (`usual`), as
/// [`team_surge`] takes it; 1 where either is not known.
///
/// The features themselves leave out the customers a channel vouches for, so most of
/// them are near zero at most hours and cannot show a launch day; the workload can.
pub fn workload_surge(now: Option<Robust>, usual: Option<f64>, min_peers: u32) -> f64 {
    surge_of(now, usual, min_peers).unwrap_or(1.0)
}

/// Per feature, how much busier the peer group is today than usual: for a count, the
/// median of the members' values so far today (`today`: only members active today) over
/// `usual`, the median that is usual at this moment (the same time of day, see
/// [`crate::Model`]; `None` where not yet learnt), divided by [`SURGE_DEAD_ZONE`], at
/// least 1, and at least the team's `workload` surge ([`workload_surge`]): a launch day
/// brings more of every kind of work, also of the kinds too rare to measure a surge of
/// their own (cases a person asks for themselves, say: most people have none); 1 for
/// ratios. Comparing at the same time of day is what makes a launch day visible in its
/// first hour: at 09:00 the team's counts so far are far below a full day's, yet already
/// three times what is usual at 09:00. (Only the median moves the surge, so a ring of a
/// few members cannot raise it.)
pub fn team_surge(
    today: &PeerBaseline,
    usual: &[Option<f64>; N_FEATURES],
    workload: f64,
    min_peers: u32,
) -> [f64; N_FEATURES] {
    let mut surge = [1.0; N_FEATURES];
    for f in Feature::ALL {
        if f.shape() == crate::features::Shape::Count {
            let i = f.index();
            surge[i] = surge_of(today.stats[i], usual[i], min_peers)
                .map_or(workload, |own| own.max(workload));
        }
    }
    surge
}

/// Scores one person.
///
/// `today` are their current values, `own` their self baseline, `peers` the group's
/// current values' baseline, `peer_levels` the baseline of the long-run levels of the
/// group's members with enough history, `surge` the group's [`team_surge`], `group` a
/// name for the reasons.
pub fn assess(
    today: &DayValues,
    own: &SelfBaseline,
    peers: &PeerBaseline,
    peer_levels: &PeerBaseline,
    surge: &[f64; N_FEATURES],
    group: &str,
    config: &ScoreConfig,
) -> Assessment {
    let warm = &config.warmup;
    let self_warm = own.days >= warm.min_days;
    let peers_warm = peers.members >= warm.min_peers;
    let levels_warm = self_warm && peer_levels.members >= warm.min_peers;
    let mut notes = Vec::new();
    if !self_warm {
        notes.push(format!(
            "warm-up: {} of {} days of own history; {}",
            own.days,
            warm.min_days,
            if peers_warm {
                "scored against peers only"
            } else {
                "not compared with own past"
            }
        ));
    }
    if !peers_warm {
        notes.push(format!(
            "warm-up: peer group {group} has {} of {} members needed; {}",
            peers.members,
            warm.min_peers,
            if self_warm {
                "scored against own past only"
            } else {
                "not compared with peers"
            }
        ));
    }
    if !self_warm && !peers_warm {
        notes.push("not scored until there is enough history".to_owned());
        return Assessment {
            score: 0.0,
            action: Action::None,
            contributions: Vec::new(),
            reasons: notes,
            scored: false,
        };
    }

    let mut contributions = Vec::with_capacity(N_FEATURES);
    for f in Feature::ALL {
        let i = f.index();
        let Some(x) = today.0[i] else { continue };
        let sign = match f.direction() {
            Direction::High => 1.0,
            Direction::Low => -1.0,
        };
        let series = &own.series[i];
        let g = surge[i];
        let (own_mean, z_self) = if self_warm && series.n > 0 {
            let expected = g * series.mean;
            let spread = (g * series.std()).max(config.spread_floor(f, expected, g));
            (Some(series.mean), Some(sign * (x - expected) / spread))
        } else {
            (None, None)
        };
        let (peer_median, z_peer) = match peers.stats[i] {
            Some(r) if peers_warm && r.n >= warm.min_peers => {
                let floor = config.spread_floor(f, r.median, g) / MAD_SCALE;
                (Some(r.median), Some(sign * r.z(x, floor)))
            }
            _ => (None, None),
        };
        let chronic = match (peer_levels.stats[i], own_mean) {
            (Some(r), Some(level)) if levels_warm && r.n >= warm.min_peers => {
                // Long-run levels against long-run levels: no surge today scales them.
                let floor = config.spread_floor(f, r.median, 1.0) / MAD_SCALE;
                Some((r.median, sign * r.z(level, floor)))
            }
            _ => None,
        };
        let acute = match (z_self, z_peer) {
            (Some(s), Some(p)) => (s.max(0.0) * p.max(0.0)).sqrt(),
            (Some(z), None) | (None, Some(z)) => z.max(0.0) * config.single_view_factor,
            (None, None) => 0.0,
        };
        // A habitual deviation counts only on a day the person is at it again: early in
        // the morning (today still below the peers) it says nothing about today.
        let chronic_z =
            chronic.map_or(0.0, |(_, z)| z.max(0.0).min(z_peer.unwrap_or(0.0).max(0.0)));
        let score = config.weight(f) * acute.max(chronic_z).min(config.z_cap);
        contributions.push(Contribution {
            feature: f,
            value: x,
            own_mean,
            z_self,
            peer_median,
            z_peer,
            chronic,
            score,
        });
    }
    // Strongest first; ties keep the feature order (a stable sort), so the leading
    // reason is deterministic.
    contributions.sort_by(|a, b| b.score.total_cmp(&a.score));
    let total: f64 = contributions.iter().map(|c| c.score).sum();
    let top = contributions.first().map_or(0.0, |c| c.score);
    let score = top + config.tail_weight * (total - top);
    let action = config.thresholds.action(score);
    let mut reasons: Vec<String> = contributions
        .iter()
        .filter(|c| c.score >= config.reason_min)
        .take(4)
        .map(Contribution::reason)
        .collect();
    reasons.extend(notes);
    Assessment {
        score,
        action,
        contributions,
        reasons,
        scored: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::Ewma;

    fn day(distinct: f64) -> DayValues {
        let mut v = DayValues::default();
        v.0[Feature::DistinctCustomers.index()] = Some(distinct);
        v
    }

    fn own(mean: f64, std: f64, days: u32) -> SelfBaseline {
        let mut b = SelfBaseline {
            days,
            ..SelfBaseline::default()
        };
        b.series[0] = Ewma {
            mean,
            var: std * std,
            n: days,
        };
        b
    }

    fn peers(values: &[f64]) -> PeerBaseline {
        let days: Vec<DayValues> = values.iter().map(|&x| day(x)).collect();
        PeerBaseline::of(&days)
    }

    #[test]
    fn thresholds_deserialize_strictly() {
        let t: Thresholds = serde_json::from_str(r#"{"suspend": 20}"#).unwrap();
        assert_eq!((t.step_up, t.suspend), (4.0, 20.0));
        assert!(serde_json::from_str::<Thresholds>(r#"{"suspnd": 20}"#).is_err());
        let c: ScoreConfig = serde_json::from_str(r#"{"weights": {"timing_cv": 2}}"#).unwrap();
        assert_eq!(c.weight(Feature::TimingCv), 2.0);
        assert!(serde_json::from_str::<ScoreConfig>(r#"{"weights": {"nope": 2}}"#).is_err());
        assert_eq!(t.action(3.9), Action::None);
        assert_eq!(t.action(4.0), Action::StepUp);
        assert_eq!(t.action(6.5), Action::LowerQuota);
        assert_eq!(t.action(25.0), Action::Suspend);
    }

    #[test]
    fn bulk_day_is_explained_in_plain_words() {
        let group: Vec<f64> = (0..20).map(|i| 30.0 + f64::from(i)).collect();
        let a = assess(
            &day(412.0),
            &own(35.0, 5.0, 10),
            &peers(&group),
            &PeerBaseline::default(),
            &[1.0; N_FEATURES],
            "support/acme",
            &ScoreConfig::default(),
        );
        assert_eq!(a.action, Action::Suspend);
        assert_eq!(a.leading(), Some(Feature::DistinctCustomers));
        assert!(
            a.reasons[0]
                .starts_with("viewed 412 distinct customers today; peers' median 40 (robust z"),
            "{:?}",
            a.reasons
        );
        assert!(a.reasons[0].contains("own average 35"), "{:?}", a.reasons);
    }

    #[test]
    fn a_busy_team_day_or_an_always_busy_person_is_not_an_alarm() {
        let config = ScoreConfig::default();
        // Everyone doubled: peer z is small, so the geometric mean is small.
        let busy: Vec<f64> = (0..20).map(|i| 70.0 + f64::from(i)).collect();
        let a = assess(
            &day(85.0),
            &own(40.0, 5.0, 10),
            &peers(&busy),
            &PeerBaseline::default(),
            &[1.0; N_FEATURES],
            "g",
            &config,
        );
        assert_eq!(a.action, Action::None, "{a:?}");
    }

    #[test]
    fn a_launch_day_is_judged_against_the_team_surge() {
        let config = ScoreConfig::default();
        // A team spread as people are (20 to 80 a day), and a busy member of it.
        let usual: Vec<f64> = (0..20).map(|i| 20.0 + 3.0 * f64::from(i)).collect();
        let launch: Vec<f64> = usual.iter().map(|x| 3.0 * x).collect();
        let heavy = own(95.0, 10.0, 10);
        // A busy agent at three times their usual, on a day the whole team is at three
        // times theirs: expected.
        let surge = team_surge(&peers(&launch), &peers(&usual).medians(5), 1.0, 5);
        let a = assess(
            &day(285.0),
            &heavy,
            &peers(&launch),
            &peers(&usual),
            &surge,
            "g",
            &config,
        );
        assert_eq!(a.action, Action::None, "{a:?}");
        // The same day alone, while the team works as usual: an alarm.
        let b = assess(
            &day(285.0),
            &heavy,
            &peers(&usual),
            &peers(&usual),
            &team_surge(&peers(&usual), &peers(&usual).medians(5), 1.0, 5),
            "g",
            &config,
        );
        assert!(b.action >= Action::LowerQuota, "{b:?}");
    }

    #[test]
    fn a_rare_kind_of_work_takes_the_workload_surge() {
        // A launch day: three times the usual cases worked and customers; cases people
        // ask for themselves are rare (usual median 0), so their own ratio would be noise.
        let team = |customers: f64, self_opened: f64| -> Vec<DayValues> {
            (0..10)
                .map(|i| {
                    let mut v = day(customers + f64::from(i));
                    v.0[Feature::SelfOpenedCases.index()] = Some(self_opened);
                    v
                })
                .collect()
        };
        let usual = PeerBaseline::of(&team(40.0, 0.0)).medians(5);
        let mut cases: Vec<f64> = (0..10).map(|i| 60.0 + f64::from(i)).collect();
        let workload = workload_surge(Robust::of(&mut cases), Some(30.0), 5);
        assert!(
            (workload - 64.5 / 30.0 / SURGE_DEAD_ZONE).abs() < 1e-9,
            "{workload}"
        );
        let surge = team_surge(&PeerBaseline::of(&team(120.0, 1.0)), &usual, workload, 5);
        let own = surge[Feature::DistinctCustomers.index()];
        assert!((own - 124.5 / 44.5 / SURGE_DEAD_ZONE).abs() < 1e-9, "{own}");
        assert_eq!(surge[Feature::SelfOpenedCases.index()], workload);
        // A feature's own surge below the workload's takes the workload's.
        let flat = team_surge(&PeerBaseline::of(&team(44.5, 1.0)), &usual, workload, 5);
        assert_eq!(flat[Feature::DistinctCustomers.index()], workload);
        // Ratios never surge.
        assert_eq!(surge[Feature::OffShiftShare.index()], 1.0);
        // An ordinary day: no surge anywhere.
        let mut cases: Vec<f64> = (0..10).map(|i| 28.0 + f64::from(i)).collect();
        let workload = workload_surge(Robust::of(&mut cases), Some(30.0), 5);
        let calm = team_surge(&PeerBaseline::of(&team(42.0, 0.0)), &usual, workload, 5);
        assert_eq!(calm, [1.0; N_FEATURES]);
        // Too few active, or no usual learnt yet: no workload surge.
        let mut few = [90.0, 95.0, 99.0];
        assert_eq!(workload_surge(Robust::of(&mut few), Some(30.0), 5), 1.0);
        assert_eq!(workload_surge(Robust::of(&mut cases), None, 5), 1.0);
    }

    #[test]
    fn the_peer_floor_grows_with_the_team_surge() {
        // Customers no channel vouched for: a handful a day (median 2). A busy newcomer,
        // judged against peers only, at four times the median.
        let config = ScoreConfig::default();
        let usual: Vec<f64> = (0..20).map(|i| f64::from(i % 5)).collect();
        let launch: Vec<f64> = usual.iter().map(|x| 3.0 * x).collect();
        let z_peer = |x: f64, team: &[f64], g: f64| {
            let mut surge = [1.0; N_FEATURES];
            surge[Feature::DistinctCustomers.index()] = g;
            let a = assess(
                &day(x),
                &own(0.0, 0.0, 1),
                &peers(team),
                &PeerBaseline::default(),
                &surge,
                "g",
                &config,
            );
            a.contributions[0].z_peer.unwrap()
        };
        let ordinary = z_peer(8.0, &usual, 1.0);
        assert!((ordinary - 2.0).abs() < 1e-9, "{ordinary}");
        // The launch day: everyone at three times. Against a floor of an ordinary day's
        // noise the same agent would double their z; against the surge's, they do not.
        let unscaled = z_peer(24.0, &launch, 1.0);
        let scaled = z_peer(24.0, &launch, 3.0 / SURGE_DEAD_ZONE);
        assert!(unscaled > 1.9 * ordinary, "{unscaled}");
        assert!(scaled <= ordinary * SURGE_DEAD_ZONE + 1e-9, "{scaled}");
        // The same count alone, on an ordinary day: far out.
        assert!(z_peer(24.0, &usual, 1.0) > 3.0 * ordinary);
    }

    #[test]
    fn warm_up_is_said() {
        let a = assess(
            &day(400.0),
            &own(0.0, 0.0, 1),
            &peers(&[40.0, 41.0]),
            &PeerBaseline::default(),
            &[1.0; N_FEATURES],
            "support/acme",
            &ScoreConfig::default(),
        );
        assert!(!a.scored);
        assert_eq!(a.action, Action::None);
        assert!(a.reasons.iter().any(|r| r.contains("1 of 3 days")));
        assert!(a.reasons.iter().any(|r| r.contains("2 of 5 members")));
        // Peers warm, own history not: scored on peers only, and said so.
        let group: Vec<f64> = (0..10).map(|i| 35.0 + f64::from(i)).collect();
        let a = assess(
            &day(400.0),
            &own(0.0, 0.0, 1),
            &peers(&group),
            &PeerBaseline::default(),
            &[1.0; N_FEATURES],
            "support/acme",
            &ScoreConfig::default(),
        );
        assert!(a.scored && a.action == Action::Suspend);
        assert!(
            a.reasons
                .iter()
                .any(|r| r.contains("scored against peers only"))
        );
    }
}
