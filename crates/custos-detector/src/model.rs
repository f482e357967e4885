//! The statistical model: features, baselines and scores tied together and driven one
//! ledger record at a time.
//!
//! Determinism: the model's only input is the sequence of records (time comes from
//! `record.at`), so replaying the ledger from the start rebuilds the same state and
//! raises the same findings ([`Model::replay`]). A [`Snapshot`] saves the state to skip
//! most of that replay.
//!
//! The clock: the model's day is the local day of the latest record seen. When a record
//! of a later day arrives, the previous day is closed: every active person's day is
//! learnt into their self baseline, the peer groups' long-run baselines are recomputed,
//! and the organisations' days are learnt. A record a little older than the model's day
//! (ledger order is not exactly time order) counts in the current day.
//!
//! Cases: the origins of open cases ([`CaseOrigins`]) are taken from every record,
//! including those of roles the person model ignores (the system's own canary cases),
//! and expire when a day closes.

use std::collections::HashMap;

use custos_access::AccessRecord;
use custos_types::RecordedRole;
use serde::{Deserialize, Serialize};

use crate::Finding;
use crate::baseline::{Ewma, PeerBaseline, Robust, SelfBaseline};
use crate::features::{
    CaseOrigins, DayValues, FastBuild, Feature, FeatureConfig, N_FEATURES, N_ORG_FEATURES, OrgDay,
    OrgFeature, PersonDay, Shape,
};
use crate::score::{Action, Assessment, ScoreConfig, Severity, assess, team_surge, workload_surge};

/// How often a group's peer baselines (current values and surge) are recomputed: the
/// medians cost O(members). Every 5 minutes cut the simulator's false alerts by a sixth
/// (67.9 → 55.8 per 1,000 staff-days, BENCHMARKS.md) but the replay rate by a third
/// (1.16M → 0.76M records/s, below the 1M target): an incremental median would give both.
pub const REFRESH_MS: i64 = 60 * 60_000;

/// The finding kind of an organisation-level anomaly.
pub const ORG_RISK: &str = "org_risk";

/// Everything the model is configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Clock and feature settings.
    pub features: FeatureConfig,
    /// Scoring settings and thresholds.
    pub score: ScoreConfig,
    /// EWMA smoothing of the self baselines (per active day).
    pub ewma_alpha: f64,
    /// A member counts in their peer group's baseline while last active within this
    /// many days (people who left or are on leave drop out).
    pub peer_window_days: i64,
    /// Whether a day on which a person raised a finding is learnt into their own
    /// baseline. Off by default: an insider must not teach the model that harvesting is
    /// their normal.
    pub learn_flagged_days: bool,
    /// Roles that are not people being watched (services, the detector itself).
    pub ignore_roles: Vec<RecordedRole>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            features: FeatureConfig::default(),
            score: ScoreConfig::default(),
            ewma_alpha: 0.2,
            peer_window_days: 7,
            learn_flagged_days: false,
            // `customer`: customers reading their own accesses (access transparency).
            // Integrations and admins are watched like people: a stolen CRM token is
            // the first thing a harvester would use.
            ignore_roles: vec![RecordedRole::System, RecordedRole::Customer],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Person {
    id: String,
    group: usize,
    org: usize,
    today: PersonDay,
    /// The values of the person's last closed active day.
    last: Option<(i64, DayValues)>,
    own: SelfBaseline,
    /// The highest action already raised on `flag_day` (one finding per rule per day).
    flag_day: i64,
    flag: Action,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Group {
    /// `role/org`, for the reasons.
    name: String,
    role: RecordedRole,
    org: String,
    members: Vec<usize>,
    /// Baseline of the members' current values, refreshed every [`REFRESH_MS`].
    current: PeerBaseline,
    /// How much busier than usual the group is today ([`team_surge`]), refreshed with
    /// `current`.
    surge: [f64; N_FEATURES],
    /// The refresh slot (`at / REFRESH_MS`) `current` and `surge` were computed in.
    refreshed_slot: i64,
    /// The usual medians of the members' values so far at each local hour of the day
    /// (learnt when a day closes): what [`team_surge`] compares today's medians with.
    usual_by_hour: Vec<UsualAtHour>,
    /// Today's medians of the active members' values so far, taken at the group's first
    /// refresh in each local hour (the same moment [`Group::usual_by_hour`] learns from,
    /// so that like is compared with like).
    today_by_hour: Vec<Option<MediansAtHour>>,
    /// Baseline of the long-run levels of members with enough history, per day.
    levels: PeerBaseline,
}

/// What a group's active members usually have done by one local hour of the day: an
/// EWMA over days of the median of each feature and of the workload
/// ([`crate::features::PersonDay::cases_worked`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct UsualAtHour {
    features: [Ewma; N_FEATURES],
    workload: Ewma,
}

/// The medians of one day at one local hour, learnt into [`UsualAtHour`] when the day
/// closes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct MediansAtHour {
    features: [Option<f64>; N_FEATURES],
    workload: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Org {
    name: String,
    today: OrgDay,
    own: [Ewma; N_ORG_FEATURES],
    days: u32,
    flag_day: i64,
}

/// The model's whole state: serialisable, restorable with [`Model::restore`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    config: ModelConfig,
    day: Option<i64>,
    /// The latest record time seen (ledger order is not exactly time order).
    now: i64,
    last_seq: i64,
    people: Vec<Person>,
    groups: Vec<Group>,
    orgs: Vec<Org>,
    cases: CaseOrigins,
}

impl Snapshot {
    /// The ledger index of the last record observed: replay resumes after it.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }
}

/// Features, baselines and scores for everyone in the ledger.
#[derive(Clone, Debug)]
pub struct Model {
    state: Snapshot,
    people: HashMap<String, usize, FastBuild>,
    groups: HashMap<(RecordedRole, String), usize, FastBuild>,
    orgs: HashMap<String, usize, FastBuild>,
}

impl Model {
    /// An empty model.
    pub fn new(config: ModelConfig) -> Model {
        Model::restore(Snapshot {
            config,
            day: None,
            now: i64::MIN,
            last_seq: -1,
            people: Vec::new(),
            groups: Vec::new(),
            orgs: Vec::new(),
            cases: CaseOrigins::default(),
        })
    }

    /// A model rebuilt by observing `records` from the start (findings discarded: they
    /// were raised the first time).
    pub fn replay<'a>(
        config: ModelConfig,
        records: impl IntoIterator<Item = &'a AccessRecord>,
    ) -> Model {
        let mut model = Model::new(config);
        for record in records {
            model.observe(record);
        }
        model
    }

    /// A copy of the state.
    pub fn snapshot(&self) -> Snapshot {
        self.state.clone()
    }

    /// The model a [`Snapshot`] was taken of.
    pub fn restore(state: Snapshot) -> Model {
        let people = state
            .people
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.clone(), i))
            .collect();
        let groups = state
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| ((g.role, g.org.clone()), i))
            .collect();
        let orgs = state
            .orgs
            .iter()
            .enumerate()
            .map(|(i, o)| (o.name.clone(), i))
            .collect();
        Model {
            state,
            people,
            groups,
            orgs,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.state.config
    }

    /// The ledger index of the last record observed (−1 before any).
    pub fn last_seq(&self) -> i64 {
        self.state.last_seq
    }

    /// Number of people known.
    pub fn people(&self) -> usize {
        self.state.people.len()
    }

    /// Number of open cases whose origin is held (the bounded memory, for tests and
    /// metrics).
    pub fn case_origins(&self) -> usize {
        self.state.cases.len()
    }

    /// Observes one ledger record and returns what it gives rise to.
    ///
    /// Findings of the `risk_*` rules ([`Action::kind`]) concern the record's person
    /// (`record.staff_id`); an [`ORG_RISK`] finding concerns the record's organisation
    /// (`record.org`). Each person raises at most one finding per rule per day, and
    /// only a higher action than already raised that day (so at most three a day);
    /// each organisation at most one [`ORG_RISK`] a day.
    ///
    /// A record with a ledger index at or below [`Model::last_seq`] was seen already
    /// (a consumer re-reading a batch after a crash) and is ignored.
    pub fn observe(&mut self, record: &AccessRecord) -> Vec<Finding> {
        if record.seq <= self.state.last_seq {
            return Vec::new();
        }
        self.state.last_seq = record.seq;
        // Before the role filter: the system opens canary cases, and it is an ignored role.
        self.state
            .cases
            .observe(record, &self.state.config.features);
        if self.state.config.ignore_roles.contains(&record.role) {
            return Vec::new();
        }
        self.state.now = self.state.now.max(record.at);
        let config = &self.state.config.features;
        let record_day = config.day_of(record.at);
        let day = match self.state.day {
            Some(d) if record_day > d => {
                self.close_day(d);
                self.state.cases.expire(record_day);
                record_day
            }
            Some(d) => d,
            None => record_day,
        };
        self.state.day = Some(day);

        let p = self.person(record);
        let person = &mut self.state.people[p];
        let was_active = person.today.day == day && person.today.is_active();
        if person.today.day != day {
            person.today.reset(day);
        }
        let delta = person
            .today
            .observe(record, &self.state.config.features, &self.state.cases);
        let org = &mut self.state.orgs[person.org];
        if org.today.day != day {
            org.today = OrgDay {
                day,
                ..OrgDay::default()
            };
        }
        org.today.add(&delta);
        if !was_active && person.today.is_active() {
            org.today.active_staff += 1;
        }
        let org_index = person.org;
        if delta == Default::default() {
            return Vec::new();
        }

        let mut findings = Vec::new();
        let group = self.state.people[p].group;
        self.refresh_group(group, record.at, day);
        let g = &self.state.groups[group];
        let assessment = self.assess_with(p, &g.current, &g.surge);
        let person = &mut self.state.people[p];
        if person.flag_day != day {
            person.flag_day = day;
            person.flag = Action::None;
        }
        if assessment.action > person.flag {
            person.flag = assessment.action;
            let thresholds = &self.state.config.score.thresholds;
            let threshold = match assessment.action {
                Action::Suspend => thresholds.suspend,
                Action::LowerQuota => thresholds.lower_quota,
                _ => thresholds.step_up,
            };
            let mut reasons = vec![format!(
                "risk score {:.1} reached the {} threshold {threshold}",
                assessment.score,
                assessment.action.kind().trim_start_matches("risk_")
            )];
            reasons.extend(assessment.reasons);
            findings.push(Finding {
                kind: assessment.action.kind(),
                severity: thresholds.severity(assessment.action).as_str(),
                reasons,
                suspend: assessment.action == Action::Suspend,
                day_start: Some(self.state.config.features.day_start(day)),
            });
        }
        if let Some(f) = self.org_finding(org_index, day) {
            findings.push(f);
        }
        findings
    }

    /// The current assessment of a person, or `None` if unknown. (Computed afresh: the
    /// one used by [`Model::observe`] may be up to [`REFRESH_MS`] older for the peers.)
    pub fn assessment(&self, staff_id: &str) -> Option<Assessment> {
        let &p = self.people.get(staff_id)?;
        let group = self.state.people[p].group;
        let day = self.state.day?;
        let current = self.group_current(group, day);
        let (surge, _) = self.group_surge(group, day, self.state.now);
        Some(self.assess_with(p, &current, &surge))
    }

    /// A person's current-day values, or `None` if unknown.
    pub fn person_values(&self, staff_id: &str) -> Option<DayValues> {
        let &p = self.people.get(staff_id)?;
        let person = &self.state.people[p];
        (Some(person.today.day) == self.state.day)
            .then(|| person.today.values(&self.state.config.features))
    }

    /// The model's current local day (`None` before any record).
    pub fn day(&self) -> Option<i64> {
        self.state.day
    }

    /// Every person active in the current day, with their values so far (for exporting
    /// features to other methods, e.g. the simulator's Isolation Forest baseline).
    pub fn active_people(&self) -> Vec<(&str, DayValues)> {
        let config = &self.state.config.features;
        self.state
            .people
            .iter()
            .filter(|p| Some(p.today.day) == self.state.day && p.today.is_active())
            .map(|p| (p.id.as_str(), p.today.values(config)))
            .collect()
    }

    /// An organisation's current-day totals, or `None` if unknown.
    pub fn org_values(&self, org: &str) -> Option<[f64; N_ORG_FEATURES]> {
        let &o = self.orgs.get(org)?;
        let today = &self.state.orgs[o].today;
        (Some(today.day) == self.state.day).then(|| today.values())
    }

    fn assess_with(
        &self,
        p: usize,
        current: &PeerBaseline,
        surge: &[f64; N_FEATURES],
    ) -> Assessment {
        let person = &self.state.people[p];
        let group = &self.state.groups[person.group];
        assess(
            &person.today.values(&self.state.config.features),
            &person.own,
            current,
            &group.levels,
            surge,
            &group.name,
            &self.state.config.score,
        )
    }

    /// The person's index, created (or moved to a new group) as needed.
    fn person(&mut self, record: &AccessRecord) -> usize {
        let known = self.people.get(record.staff_id.as_str()).copied();
        if let Some(p) = known {
            // The common case, without allocating: same role and organisation as before.
            let g = &self.state.groups[self.state.people[p].group];
            if g.role == record.role && g.org == record.org {
                return p;
            }
        }
        let org = self.org(&record.org);
        let group = self.group(record.role, &record.org);
        if let Some(p) = known {
            // Role or organisation changed: the person now belongs to the new peers.
            let person = &mut self.state.people[p];
            let old = person.group;
            person.group = group;
            person.org = org;
            self.state.groups[old].members.retain(|&m| m != p);
            self.state.groups[group].members.push(p);
            return p;
        }
        let p = self.state.people.len();
        self.state.people.push(Person {
            id: record.staff_id.clone(),
            group,
            org,
            today: PersonDay::new(i64::MIN),
            last: None,
            own: SelfBaseline::default(),
            flag_day: i64::MIN,
            flag: Action::None,
        });
        self.state.groups[group].members.push(p);
        self.people.insert(record.staff_id.clone(), p);
        p
    }

    fn group(&mut self, role: RecordedRole, org: &str) -> usize {
        if let Some(&g) = self.groups.get(&(role, org.to_owned())) {
            return g;
        }
        let g = self.state.groups.len();
        self.state.groups.push(Group {
            name: format!("{role}/{org}"),
            role,
            org: org.to_owned(),
            members: Vec::new(),
            current: PeerBaseline::default(),
            surge: [1.0; N_FEATURES],
            refreshed_slot: i64::MIN,
            usual_by_hour: vec![UsualAtHour::default(); 24],
            today_by_hour: vec![None; 24],
            levels: PeerBaseline::default(),
        });
        self.groups.insert((role, org.to_owned()), g);
        g
    }

    fn org(&mut self, name: &str) -> usize {
        if let Some(&o) = self.orgs.get(name) {
            return o;
        }
        let o = self.state.orgs.len();
        self.state.orgs.push(Org {
            name: name.to_owned(),
            today: OrgDay::default(),
            own: [Ewma::default(); N_ORG_FEATURES],
            days: 0,
            flag_day: i64::MIN,
        });
        self.orgs.insert(name.to_owned(), o);
        o
    }

    /// The value a member contributes to their group's current baseline: for counts,
    /// the larger of today-so-far and their last full day (so that early in the morning
    /// the peers are not all at zero, yet a day on which the whole team is busy raises
    /// the median with it); for ratios, today's once defined, else the last day's.
    fn peer_value(&self, p: usize, day: i64) -> Option<DayValues> {
        let person = &self.state.people[p];
        let window = self.state.config.peer_window_days;
        let today = (person.today.day == day && person.today.is_active())
            .then(|| person.today.values(&self.state.config.features));
        let last = person
            .last
            .filter(|(d, _)| day - d <= window)
            .map(|(_, v)| v);
        let (mut out, last) = match (today, last) {
            (None, None) => return None,
            (Some(t), None) => return Some(t),
            (None, Some(l)) => return Some(l),
            (Some(t), Some(l)) => (t, l),
        };
        for f in Feature::ALL {
            let i = f.index();
            out.0[i] = match (f.shape(), out.0[i], last.0[i]) {
                (Shape::Count, Some(a), Some(b)) => Some(a.max(b)),
                (_, Some(a), _) => Some(a),
                (_, None, b) => b,
            };
        }
        Some(out)
    }

    fn group_current(&self, g: usize, day: i64) -> PeerBaseline {
        let members = &self.state.groups[g].members;
        let values: Vec<DayValues> = members
            .iter()
            .filter_map(|&m| self.peer_value(m, day))
            .collect();
        let mut baseline = PeerBaseline::of(&values);
        // For the warm-up, only members with a full day behind them count: on the very
        // first day everyone's values are partial, and whoever starts early would stand
        // out against a median of people who have barely begun.
        let window = self.state.config.peer_window_days;
        baseline.members = members
            .iter()
            .filter(|&&m| {
                self.state.people[m]
                    .last
                    .is_some_and(|(d, _)| day - d <= window)
            })
            .count() as u32;
        baseline
    }

    /// The group's surge at `at` ([`team_surge`]): its active members' median values so
    /// far against the medians usual at that local hour (against the members' long-run
    /// levels while the hour's history is shorter than the warm-up), and those medians
    /// of today.
    ///
    /// The workload's usual needs only one learnt day: it is the median of a whole
    /// team's cases, large and steady, and the surge's dead zone covers the weekly
    /// swing; so a launch day is seen from the team's second day on, while its members
    /// are still judged against peers only.
    fn group_surge(&self, g: usize, day: i64, at: i64) -> ([f64; N_FEATURES], MediansAtHour) {
        let config = &self.state.config;
        let group = &self.state.groups[g];
        let active: Vec<&PersonDay> = group
            .members
            .iter()
            .map(|&m| &self.state.people[m].today)
            .filter(|t| t.day == day && t.is_active())
            .collect();
        let today = PeerBaseline::of(
            &active
                .iter()
                .map(|t| t.values(&config.features))
                .collect::<Vec<_>>(),
        );
        let workload = Robust::of(&mut active.iter().map(|t| t.cases_worked()).collect::<Vec<_>>());
        let warm = &config.score.warmup;
        let by_hour = &group.usual_by_hour[local_hour(&config.features, at)];
        let levels = group.levels.medians(warm.min_peers);
        let usual = std::array::from_fn(|i| {
            let hour = by_hour.features[i];
            if hour.n >= warm.min_days {
                Some(hour.mean)
            } else {
                levels[i]
            }
        });
        let usual_workload = (by_hour.workload.n >= 1).then_some(by_hour.workload.mean);
        let surge = team_surge(
            &today,
            &usual,
            workload_surge(workload, usual_workload, warm.min_peers),
            warm.min_peers,
        );
        let medians = MediansAtHour {
            features: today.medians(1),
            workload: workload.map(|w| w.median),
        };
        (surge, medians)
    }

    /// Recomputes a group's current baseline and surge once per [`REFRESH_MS`]: the
    /// medians cost O(members) and need not be fresher than that.
    fn refresh_group(&mut self, g: usize, at: i64, day: i64) {
        let slot = at.div_euclid(REFRESH_MS);
        if self.state.groups[g].refreshed_slot == slot {
            return;
        }
        let current = self.group_current(g, day);
        let (surge, today) = self.group_surge(g, day, at);
        let hour = local_hour(&self.state.config.features, at);
        let group = &mut self.state.groups[g];
        group.current = current;
        group.surge = surge;
        group.refreshed_slot = slot;
        group.today_by_hour[hour].get_or_insert(today);
    }

    /// Closes `day`: learns every active person's and organisation's day, recomputes
    /// the groups' long-run baselines.
    fn close_day(&mut self, day: i64) {
        let config = &self.state.config;
        for person in &mut self.state.people {
            if person.today.day != day || !person.today.is_active() {
                continue;
            }
            let values = person.today.values(&config.features);
            let flagged = person.flag_day == day && person.flag > Action::None;
            if config.learn_flagged_days || !flagged {
                person.own.learn(&values, config.ewma_alpha);
            }
            person.last = Some((day, values));
            person.today.reset(day + 1);
        }
        let min_days = config.score.warmup.min_days;
        let window = config.peer_window_days;
        for group in &mut self.state.groups {
            let levels: Vec<DayValues> = group
                .members
                .iter()
                .map(|&m| &self.state.people[m])
                .filter(|p| {
                    p.own.days >= min_days && p.last.is_some_and(|(d, _)| day - d <= window)
                })
                .map(|p| p.own.levels())
                .collect();
            group.levels = PeerBaseline::of(&levels);
            // Force a refresh of the current baseline on the new day.
            group.refreshed_slot = i64::MIN;
            for (usual, today) in group.usual_by_hour.iter_mut().zip(&mut group.today_by_hour) {
                let Some(today) = today.take() else { continue };
                let learnt = usual.features.iter_mut().chain([&mut usual.workload]);
                for (series, x) in learnt.zip(today.features.into_iter().chain([today.workload])) {
                    if let Some(x) = x {
                        series.update(x, config.ewma_alpha);
                    }
                }
            }
        }
        for org in &mut self.state.orgs {
            if org.today.day != day || org.today.accesses == 0 {
                continue;
            }
            let flagged = org.flag_day == day;
            if config.learn_flagged_days || !flagged {
                for (series, x) in org.own.iter_mut().zip(org.today.values()) {
                    series.update(x, config.ewma_alpha);
                }
                org.days += 1;
            }
            org.today = OrgDay {
                day: day + 1,
                ..OrgDay::default()
            };
        }
    }

    /// The organisation's finding, if its totals so far are far above its own past
    /// (a ring of colleagues each taking a modest share) and none was raised today.
    /// Organisations are compared with their own past only: there are too few of them
    /// for a robust peer baseline.
    fn org_finding(&mut self, o: usize, day: i64) -> Option<Finding> {
        let config = &self.state.config;
        let org = &self.state.orgs[o];
        if org.flag_day == day || org.days < config.score.warmup.min_days {
            return None;
        }
        let values = org.today.values();
        let mut best: Option<(f64, usize)> = None;
        for (i, (series, x)) in org.own.iter().zip(values).enumerate() {
            // Same spread floors as for people, scaled by a typical team size of 10.
            let spread = series
                .std()
                .max(config.score.rel_floor * series.mean.abs())
                .max(5.0);
            let z = (x - series.mean) / spread;
            if best.is_none_or(|(b, _)| z > b) {
                best = Some((z, i));
            }
        }
        let (z, i) = best?;
        if z < config.score.thresholds.org_alert {
            return None;
        }
        let feature = OrgFeature::ALL[i];
        let mean = org.own[i].mean;
        let name = org.name.clone();
        self.state.orgs[o].flag_day = day;
        Some(Finding {
            kind: ORG_RISK,
            severity: if z >= 2.0 * config.score.thresholds.org_alert {
                Severity::High
            } else {
                Severity::Medium
            }
            .as_str(),
            reasons: vec![format!(
                "partner company {name}: {}; its own average {mean:.0} (z {z:.1})",
                feature.describe(values[i])
            )],
            suspend: false,
            day_start: None,
        })
    }
}

/// The local hour of the day (0–23) of a time.
fn local_hour(config: &FeatureConfig, at: i64) -> usize {
    config.hour_of(at).rem_euclid(24) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::CASE_ORIGIN_DAYS;
    use custos_types::calendar::{DAY_MS as DAY, HOUR_MS};
    use custos_types::{Action as RecordAction, Decision, Role};

    /// 2024-01-01 10:00 UTC.
    const T: i64 = 1_704_067_200_000 + 10 * HOUR_MS;

    fn rec(
        seq: i64,
        at: i64,
        staff: &str,
        role: Role,
        action: RecordAction,
        case: &str,
    ) -> AccessRecord {
        AccessRecord {
            seq,
            request_id: String::new(),
            at,
            staff_id: staff.into(),
            org: "acme".into(),
            role: role.into(),
            action,
            customer_id: Some(format!("cus_{case}")),
            fields: Vec::new(),
            case_id: Some(format!("case_{case}")),
            target: None,
            decision: Decision::Allow,
            reason_code: "ok".into(),
            client: None,
        }
    }

    /// The CRM opens case `case` for alice with these facts.
    fn opened(seq: i64, at: i64, case: &str, facts: &[&str]) -> AccessRecord {
        AccessRecord {
            fields: facts.iter().map(|f| (*f).to_owned()).collect(),
            target: Some("alice".into()),
            ..rec(
                seq,
                at,
                "crm",
                Role::Integration,
                RecordAction::CreateCase,
                case,
            )
        }
    }

    fn value(model: &Model, staff: &str, f: Feature) -> Option<f64> {
        model.person_values(staff).and_then(|v| v.get(f))
    }

    fn traffic() -> Vec<AccessRecord> {
        vec![
            opened(
                1,
                T,
                "pretext",
                &["channel:phone", "contact:none", "requested_by:alice"],
            ),
            opened(2, T, "call", &["channel:phone", "contact:inbound"]),
            rec(
                3,
                T + 1000,
                "alice",
                Role::Support,
                RecordAction::View,
                "pretext",
            ),
            rec(
                4,
                T + 2000,
                "alice",
                Role::Support,
                RecordAction::View,
                "call",
            ),
            rec(
                5,
                T + 3000,
                "alice",
                Role::Support,
                RecordAction::CloseCase,
                "call",
            ),
        ]
    }

    #[test]
    fn case_facts_from_the_crm_drive_the_case_features() {
        let mut model = Model::new(ModelConfig::default());
        for r in &traffic() {
            model.observe(r);
        }
        // The CRM is watched like a person (its own day: opening cases reads no one),
        // and the facts of its cases were kept for the assignees.
        assert_eq!(value(&model, "crm", Feature::DistinctCustomers), Some(0.0));
        assert_eq!(
            value(&model, "alice", Feature::DistinctCustomers),
            Some(2.0)
        );
        // Only the pretext case counts, in both features.
        assert_eq!(value(&model, "alice", Feature::SelfOpenedCases), Some(1.0));
        assert_eq!(value(&model, "alice", Feature::NoContactCases), Some(1.0));
        let org = model.org_values("acme").unwrap();
        let at = |f: OrgFeature| org[OrgFeature::ALL.iter().position(|&g| g == f).unwrap()];
        assert_eq!(at(OrgFeature::SelfOpenedCases), 1.0);
        assert_eq!(at(OrgFeature::NoContactCases), 1.0);
        // Only the pretext is held: the CRM's own inbound case counts in nothing.
        assert_eq!(model.case_origins(), 1);
        model.observe(&rec(
            6,
            T + 4000,
            "crm",
            Role::Integration,
            RecordAction::CloseCase,
            "pretext",
        ));
        assert_eq!(model.case_origins(), 0);
    }

    #[test]
    fn case_facts_expire_when_days_close() {
        let mut model = Model::new(ModelConfig::default());
        model.observe(&opened(1, T, "old", &["contact:none"]));
        model.observe(&rec(2, T, "alice", Role::Support, RecordAction::View, "x"));
        for (seq, day) in (3..).zip(1..=CASE_ORIGIN_DAYS) {
            model.observe(&rec(
                seq,
                T + day * DAY,
                "alice",
                Role::Support,
                RecordAction::View,
                "x",
            ));
            assert_eq!(model.case_origins(), 1, "day {day}");
        }
        model.observe(&rec(
            100,
            T + (CASE_ORIGIN_DAYS + 1) * DAY,
            "alice",
            Role::Support,
            RecordAction::View,
            "x",
        ));
        assert_eq!(model.case_origins(), 0);
    }

    #[test]
    fn snapshot_round_trip_keeps_the_case_facts() {
        let records = traffic();
        let mut model = Model::new(ModelConfig::default());
        for r in &records[..3] {
            model.observe(r);
        }
        let json = serde_json::to_string(&model.snapshot()).unwrap();
        let restored: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(restored, model.snapshot());
        let mut restored = Model::restore(restored);
        assert_eq!(restored.case_origins(), 1);
        for r in &records[3..] {
            assert_eq!(restored.observe(r), model.observe(r));
        }
        assert_eq!(restored.snapshot(), model.snapshot());
        // Replaying the ledger from the start gives the same state.
        assert_eq!(
            Model::replay(ModelConfig::default(), &records).snapshot(),
            model.snapshot()
        );
    }

    /// A team whose agents each view `rate(agent)` new customers an hour from 08:00 to
    /// 16:00 (UTC, the default clock), for `days` days from `first_day`; `until` cuts
    /// the last day short (hour of day, exclusive).
    fn team_days(
        seq: &mut i64,
        first_day: i64,
        days: i64,
        until: i64,
        rate: impl Fn(usize, i64) -> i64,
    ) -> Vec<AccessRecord> {
        let midnight = T - 10 * HOUR_MS;
        let mut out = Vec::new();
        for d in first_day..first_day + days {
            let end = if d == first_day + days - 1 { until } else { 16 };
            for h in 8..end {
                for agent in 0..6 {
                    let n = rate(agent, d);
                    for k in 0..n {
                        *seq += 1;
                        let at = midnight + d * DAY + h * HOUR_MS + k * HOUR_MS / n;
                        let case = format!("{agent}-{d}-{h}-{k}");
                        out.push(rec(
                            *seq,
                            at,
                            &format!("a{agent}"),
                            Role::Support,
                            RecordAction::View,
                            &case,
                        ));
                    }
                }
            }
        }
        out
    }

    fn z_self_customers(model: &Model, staff: &str) -> f64 {
        let a = model.assessment(staff).unwrap();
        a.contributions
            .iter()
            .find(|c| c.feature == Feature::DistinctCustomers)
            .and_then(|c| c.z_self)
            .unwrap()
    }

    #[test]
    fn a_launch_day_is_seen_at_the_same_time_of_day() {
        // Five ordinary days, agents from 4 to 9 customers an hour; then a launch day on
        // which everyone handles three times as many, observed at 14:00. Counts so far
        // (18 hours' worth) are already past a full ordinary day (8 hours' worth): only
        // a comparison with what is usual *at 14:00* sees that the team is at 3×, not
        // 2.25×, so that an agent at three times their own usual is expected.
        let ordinary = |agent: usize, _day: i64| 4 + agent as i64;
        // a5's self z at 14:00 of day 5, when `tripled(agent)` work at three times.
        let z_at_two = |tripled: &dyn Fn(usize) -> bool| {
            let mut seq = 0;
            let mut records = team_days(&mut seq, 0, 5, 16, ordinary);
            records.extend(team_days(&mut seq, 5, 1, 14, |a, d| {
                if tripled(a) {
                    3 * ordinary(a, d)
                } else {
                    ordinary(a, d)
                }
            }));
            records.push(rec(
                seq + 1,
                T + 5 * DAY + 4 * HOUR_MS,
                "a5",
                Role::Support,
                RecordAction::View,
                "last",
            ));
            z_self_customers(&Model::replay(ModelConfig::default(), &records), "a5")
        };
        let z = z_at_two(&|_| true);
        assert!(
            z <= 0.0,
            "a launch day judged against a full day: z_self {z}"
        );

        // The control: the same agent alone at three times, the team as usual.
        let z = z_at_two(&|a| a == 5);
        assert!(z > 3.0, "alone at three times: z_self {z}");
    }
}
