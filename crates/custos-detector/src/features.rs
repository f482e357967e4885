//! Streaming per-person and per-organisation features over the current day.
//!
//! Everything here is driven by [`AccessRecord`]s alone: time comes only from
//! `record.at` (unix milliseconds), never from a clock, so replaying the ledger gives
//! the same values. A "day" is a calendar day in the configured UTC offset (the shift
//! pattern of the people being watched), and an "hour" a clock hour in that offset.
//!
//! Memory is bounded per person: the sets of distinct customers, cases and search hits
//! hold 64-bit fingerprints of the current day only and are cleared when the day is
//! closed ([`PersonDay::reset`]). Where cases came from ([`CaseOrigins`]) is kept once
//! for everyone, per open case, for at most [`CASE_ORIGIN_DAYS`] days.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use custos_access::AccessRecord;
use custos_types::calendar::{DAY_MS, HOUR_MS};
use custos_types::facts::CaseFacts;
use custos_types::{Action, Decision, Provenance, Role};
use serde::{Deserialize, Serialize};

/// Number of features in [`Feature::ALL`] (the length of a [`DayValues`]).
pub const N_FEATURES: usize = 14;

/// One daily feature of a person.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Distinct customers opened (allowed `view` or `reveal`) today, leaving out those
    /// opened under a case the channel itself vouches for (a recorded provenance of
    /// `verified` or `outbound`): a customer who called from their own number, or whom a
    /// campaign of the company's systems assigned, is no one the person chose, however
    /// busy the day. Nor is one they served so in the last [`FOLLOW_UP_DAYS`] and now
    /// follow up ([`Served`]); the case features leave such follow-ups out too.
    DistinctCustomers,
    /// The most distinct customers first opened within one clock hour today (counted as
    /// [`Feature::DistinctCustomers`]): bulk harvesting concentrates in a few hours,
    /// honest work spreads over the shift.
    PeakHourCustomers,
    /// Fields revealed today (allowed `reveal`, one per field named).
    Reveals,
    /// Fields revealed per distinct case worked today.
    RevealsPerCase,
    /// Searches made today (any decision), leaving out those that found a customer the
    /// channel put on the line for the person (an open case of theirs that the channel
    /// vouches for names the customer).
    Searches,
    /// Distinct customers that the person's searches matched today, leaving out the
    /// customers the channel put on the line for them (as [`Feature::Searches`]).
    SearchBreadth,
    /// Requests refused by policy today (purpose binding, forbidden fields, no case).
    /// Refusals by a ceiling — a quota, or the step-up the detector itself imposed —
    /// are left out: the ceiling already bounds them, and counting them would let a
    /// restriction feed the score that imposed it.
    Denials,
    /// Share of today's accesses made outside the working-hours window.
    OffShiftShare,
    /// Distinct customers opened today under a case the same person asked for (the
    /// case's `requested_by`, or its creator when a person rather than the CRM created
    /// it): a person making their own purpose is how purpose binding is satisfied with
    /// pretexts.
    SelfOpenedCases,
    /// Distinct customers opened today under a case no channel vouches for: neither
    /// `verified` (the contact centre saw the customer's own number or address) nor
    /// `outbound` (a campaign of the company's systems), so an `unverified` contact, a
    /// follow-up or a pretext. Honest work opens records mostly because the customer
    /// called from their own number.
    NoContactCases,
    /// Coefficient of variation of the gaps between successive accesses: a script is
    /// regular (near 0), people are bursty (near 1 or above). Low is suspicious.
    TimingCv,
    /// Access requests and break-glasses the person made today: what stands in for a
    /// channel when none vouches for a case. Honest work needs one rarely, where most
    /// contacts are verified and the relays reach the customer without a reveal.
    AccessRequests,
    /// Access requests the person approved today: an approver colluding with a ring
    /// approves its requests; honest approvers see few.
    Approvals,
    /// Distinct customers the person reached through the relays today (a privacy-number
    /// call, an email or SMS sent by Custos), leaving out those of cases the channel
    /// vouches for (as [`Feature::DistinctCustomers`]): honest agents call back the
    /// customers who called them and the campaigns' customers; reaching many others is
    /// using the company's lines for something else (scam calls, phishing).
    RelayContacts,
}

/// Which side of the baseline is suspicious.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// More than usual is suspicious.
    High,
    /// Less than usual is suspicious.
    Low,
}

/// How a feature grows during a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A count: only grows during the day, so a partial day can be compared with full
    /// days without raising false alarms early in the day.
    Count,
    /// A ratio: defined once there is enough data, can move either way.
    Ratio,
}

impl Feature {
    /// Every feature, in the order of [`DayValues`].
    pub const ALL: [Feature; N_FEATURES] = [
        Feature::DistinctCustomers,
        Feature::PeakHourCustomers,
        Feature::Reveals,
        Feature::RevealsPerCase,
        Feature::Searches,
        Feature::SearchBreadth,
        Feature::Denials,
        Feature::OffShiftShare,
        Feature::SelfOpenedCases,
        Feature::NoContactCases,
        Feature::TimingCv,
        Feature::AccessRequests,
        Feature::Approvals,
        Feature::RelayContacts,
    ];

    /// Position in [`Feature::ALL`] and in [`DayValues`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name (used in configuration and reports).
    pub fn name(self) -> &'static str {
        match self {
            Feature::DistinctCustomers => "distinct_customers",
            Feature::PeakHourCustomers => "peak_hour_customers",
            Feature::Reveals => "reveals",
            Feature::RevealsPerCase => "reveals_per_case",
            Feature::Searches => "searches",
            Feature::SearchBreadth => "search_breadth",
            Feature::Denials => "denials",
            Feature::OffShiftShare => "off_shift_share",
            Feature::SelfOpenedCases => "self_opened_cases",
            Feature::NoContactCases => "no_contact_cases",
            Feature::TimingCv => "timing_cv",
            Feature::AccessRequests => "access_requests",
            Feature::Approvals => "approvals",
            Feature::RelayContacts => "relay_contacts",
        }
    }

    /// Which side of the baseline is suspicious.
    pub fn direction(self) -> Direction {
        match self {
            Feature::TimingCv => Direction::Low,
            _ => Direction::High,
        }
    }

    /// Whether the feature is a count or a ratio.
    pub fn shape(self) -> Shape {
        match self {
            Feature::RevealsPerCase | Feature::OffShiftShare | Feature::TimingCv => Shape::Ratio,
            _ => Shape::Count,
        }
    }

    /// Plain words for a value of the feature, e.g. "viewed 412 distinct customers today".
    pub fn describe(self, value: f64) -> String {
        match self {
            Feature::DistinctCustomers => format!("viewed {value:.0} distinct customers today"),
            Feature::PeakHourCustomers => {
                format!("opened {value:.0} new customers within a single hour today")
            }
            Feature::Reveals => format!("revealed {value:.0} fields today"),
            Feature::RevealsPerCase => format!("revealed {value:.2} fields per case today"),
            Feature::Searches => format!("made {value:.0} searches today"),
            Feature::SearchBreadth => {
                format!("searches matched {value:.0} distinct customers today")
            }
            Feature::Denials => format!("was refused by policy {value:.0} times today"),
            Feature::OffShiftShare => format!(
                "made {:.0}% of today's accesses outside working hours",
                value * 100.0
            ),
            Feature::SelfOpenedCases => {
                format!("viewed {value:.0} customers under cases they asked for themselves today")
            }
            Feature::NoContactCases => {
                format!("viewed {value:.0} customers under cases no channel vouches for today")
            }
            Feature::TimingCv => format!(
                "accessed records at machine-regular intervals today (gap variation {value:.2})"
            ),
            Feature::AccessRequests => {
                format!("asked {value:.0} times for access beyond their cases today")
            }
            Feature::Approvals => format!("approved {value:.0} access requests today"),
            Feature::RelayContacts => {
                format!("reached {value:.0} customers through the relays today")
            }
        }
    }

    /// Plain words for a baseline value (a median or mean) of the feature.
    pub fn format_value(self, value: f64) -> String {
        match self {
            Feature::OffShiftShare => format!("{:.0}%", value * 100.0),
            Feature::RevealsPerCase | Feature::TimingCv => format!("{value:.2}"),
            _ => format!("{value:.0}"),
        }
    }
}

/// One value per [`Feature`]; `None` where a ratio has too little data to mean anything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayValues(pub [Option<f64>; N_FEATURES]);

impl DayValues {
    /// The value of `feature`.
    pub fn get(&self, feature: Feature) -> Option<f64> {
        self.0[feature.index()]
    }
}

/// Clock and data-sufficiency settings of the features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureConfig {
    /// Offset of the watched people's local time from UTC, in minutes (e.g. 480 for
    /// UTC+8). Days and hours are counted in this time.
    pub utc_offset_minutes: i32,
    /// First local hour of the working-hours window (inclusive), 0–23.
    pub shift_start_hour: u8,
    /// Local hour at which the working-hours window ends (exclusive), 1–24.
    pub shift_end_hour: u8,
    /// Gaps between accesses longer than this (seconds) are breaks, not rhythm, and are
    /// left out of [`Feature::TimingCv`].
    pub max_gap_secs: f64,
    /// Gaps needed before [`Feature::TimingCv`] is defined.
    pub min_gaps: u32,
    /// Accesses needed before [`Feature::OffShiftShare`] is defined, and cases before
    /// [`Feature::RevealsPerCase`] is.
    pub min_accesses: u32,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            utc_offset_minutes: 0,
            shift_start_hour: 7,
            shift_end_hour: 21,
            max_gap_secs: 3600.0,
            min_gaps: 20,
            min_accesses: 10,
        }
    }
}

impl FeatureConfig {
    fn local(&self, at: i64) -> i64 {
        at + i64::from(self.utc_offset_minutes) * 60_000
    }

    /// The local day number of a time (days since 1970-01-01 in the configured offset).
    pub fn day_of(&self, at: i64) -> i64 {
        self.local(at).div_euclid(DAY_MS)
    }

    /// When local day `day` begins, unix milliseconds.
    pub fn day_start(&self, day: i64) -> i64 {
        day.saturating_mul(DAY_MS) - i64::from(self.utc_offset_minutes) * 60_000
    }

    /// The local hour number of a time (hours since the epoch in the configured offset).
    pub fn hour_of(&self, at: i64) -> i64 {
        self.local(at).div_euclid(HOUR_MS)
    }

    /// Whether a time falls inside the working-hours window.
    pub fn on_shift(&self, at: i64) -> bool {
        let hour = self.local(at).rem_euclid(DAY_MS) / HOUR_MS;
        let (start, end) = (
            i64::from(self.shift_start_hour),
            i64::from(self.shift_end_hour),
        );
        if start <= end {
            (start..end).contains(&hour)
        } else {
            // A window across midnight, e.g. 22–06.
            hour >= start || hour < end
        }
    }
}

/// A 64-bit fingerprint of an id. The sets keep fingerprints, not strings, to bound
/// memory and to make inserts cheap; two ids colliding (probability ~n²/2⁶⁴) only
/// under-counts by one.
pub fn fingerprint(id: &str) -> u64 {
    // Word-at-a-time multiply-xorshift mixing (in the style of wyhash/murmur finalisers):
    // fast, deterministic across runs and platforms, and well spread for ids that differ
    // in their last digits.
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes = id.as_bytes();
    let mut h = 0xA076_1D64_78BD_642F ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = mix(h ^ u64::from_le_bytes(word) ^ 0xFF);
    }
    mix(h)
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x = (x ^ (x >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    x ^ (x >> 32)
}

/// A hasher for keys that are already well mixed (fingerprints) or short strings: the
/// standard SipHash is DoS-resistant but several times slower, and the keys here are not
/// chosen by an attacker in a way that helps them (ids are assigned by the system).
#[derive(Clone, Copy, Debug, Default)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = mix(self.0 ^ u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, i: u64) {
        // Fingerprints are already mixed: one xor-rotate keeps them spread.
        self.0 = (self.0 ^ i).rotate_left(5);
    }
}

/// Build-hasher for [`FastHasher`].
pub type FastBuild = BuildHasherDefault<FastHasher>;

/// A set of fingerprints.
pub type IdSet = HashSet<u64, FastBuild>;

/// Days a case's origin is kept after the day it was opened, if it is not closed
/// before: a pretext case is used within days, and an abandoned open case must not hold
/// memory for ever.
pub const CASE_ORIGIN_DAYS: i64 = 7;

/// Where one open case came from, as its `create_case` record says (the facts in its
/// `fields`, see [`custos_access::entry`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOrigin {
    /// Fingerprint of the staff member who asked for the case: its `requested_by:` fact,
    /// else its creator unless that is the CRM integration; `None` when the CRM opened it
    /// on its own.
    pub requester: Option<u64>,
    /// Whether a channel vouches for the case: its provenance is `verified` or
    /// `outbound`. A record written before provenance carries none: then whether a
    /// contact the customer started stands behind it (`contact:inbound`, or no
    /// `contact:` fact at all), as the features read such records before.
    pub vouched: bool,
    /// Whether the channel itself vouches for the case: its recorded provenance is
    /// `verified` (the contact centre reported the customer's own identifier, on the
    /// case's opening or later) or `outbound`. Its customer counts in no volume feature.
    pub verified: bool,
    /// The local day the case was opened.
    pub day: i64,
    /// Fingerprints of the staff member the case is assigned to (the record's `target`)
    /// and of its customer, where the record names them.
    #[serde(default)]
    pub on_the_line: Option<(u64, u64)>,
}

/// The origins of the open cases, by case fingerprint, from allowed `create_case`
/// records and the contact centre's `post_contact` records that open or vouch for a
/// case; a case leaves on its allowed `close_case` record, or [`CASE_ORIGIN_DAYS`]
/// after it was opened ([`CaseOrigins::expire`]).
///
/// A case recorded before provenance, opened on its own for an inbound contact, counts
/// in no feature and is not held. Every case with a recorded provenance is: the verified
/// ones leave their customers out of the volume features. Most cases close within
/// the hour, so the table holds the open cases of the last days, not all cases.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseOrigins {
    cases: HashMap<u64, CaseOrigin, FastBuild>,
    /// How many open cases the channel vouches for each (assignee, customer) pair has:
    /// the customers the channel put on the line for each person.
    on_the_line: HashMap<(u64, u64), u32, FastBuild>,
}

impl CaseOrigins {
    /// Takes what a record says about cases: an allowed `create_case` adds its case's
    /// origin, an allowed `close_case` removes it. Any other record is ignored.
    pub fn observe(&mut self, record: &AccessRecord, config: &FeatureConfig) {
        if record.decision != Decision::Allow {
            return;
        }
        let Some(case) = record.case_id.as_deref() else {
            return;
        };
        match record.action {
            Action::CreateCase => {
                let facts = CaseFacts::from_fields(&record.fields);
                let verified = matches!(
                    facts.provenance,
                    Some(Provenance::Verified | Provenance::Outbound)
                );
                let vouched = facts.provenance.map_or(facts.inbound, |_| verified);
                let mut requester = facts.requested_by.map(fingerprint);
                // A case the CRM integration creates on its own was asked for by no
                // person; one a person created directly (an administrator) was asked
                // for by them.
                if requester.is_none() && record.role != Role::Integration {
                    requester = Some(fingerprint(&record.staff_id));
                }
                if requester.is_none() && vouched && !verified {
                    // Counts in no feature (see the type's docs). Case ids are unique, so
                    // there is nothing to replace.
                    return;
                }
                let origin = CaseOrigin {
                    requester,
                    vouched,
                    verified,
                    day: config.day_of(record.at),
                    on_the_line: pair(record),
                };
                tally(&mut self.on_the_line, &origin, true);
                self.cases.insert(fingerprint(case), origin);
            }
            Action::PostContact => {
                // A contact that opened a verified case, or vouched for an open one
                // (which keeps who asked for it).
                if CaseFacts::from_fields(&record.fields).provenance != Some(Provenance::Verified) {
                    return;
                }
                let fresh = CaseOrigin {
                    requester: None,
                    vouched: false,
                    verified: false,
                    day: config.day_of(record.at),
                    on_the_line: pair(record),
                };
                let origin = self.cases.entry(fingerprint(case)).or_insert(fresh);
                if origin.verified {
                    return;
                }
                origin.vouched = true;
                origin.verified = true;
                origin.on_the_line = origin.on_the_line.or(pair(record));
                tally(&mut self.on_the_line, origin, true);
            }
            Action::CloseCase => {
                if let Some(origin) = self.cases.remove(&fingerprint(case)) {
                    tally(&mut self.on_the_line, &origin, false);
                }
            }
            _ => {}
        }
    }

    /// The origin of the case with this fingerprint, if it counts in a feature.
    pub fn get(&self, case: u64) -> Option<&CaseOrigin> {
        self.cases.get(&case)
    }

    /// Whether the channel put `customer` on the line for `staff` (fingerprints): an
    /// open case the channel vouches for, assigned to them, names the customer.
    pub fn on_the_line(&self, staff: u64, customer: u64) -> bool {
        self.on_the_line.contains_key(&(staff, customer))
    }

    /// Forgets cases opened more than [`CASE_ORIGIN_DAYS`] before the local day `today`.
    pub fn expire(&mut self, today: i64) {
        let on_the_line = &mut self.on_the_line;
        self.cases.retain(|_, o| {
            let keep = today - o.day <= CASE_ORIGIN_DAYS;
            if !keep {
                tally(on_the_line, o, false);
            }
            keep
        });
    }

    /// Number of cases held (the bounded memory, for tests and metrics).
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    /// Whether no case is held.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }
}

/// Counts a verified case into (`add`) or out of the (assignee, customer) pairs the
/// channel put on the line ([`CaseOrigins::on_the_line`]).
fn tally(on_the_line: &mut HashMap<(u64, u64), u32, FastBuild>, origin: &CaseOrigin, add: bool) {
    let (true, Some(key)) = (origin.verified, origin.on_the_line) else {
        return;
    };
    if add {
        *on_the_line.entry(key).or_insert(0) += 1;
    } else if let Some(n) = on_the_line.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            on_the_line.remove(&key);
        }
    }
}

/// The (assignee, customer) fingerprints a case record names.
fn pair(record: &AccessRecord) -> Option<(u64, u64)> {
    Some((
        fingerprint(record.target.as_deref()?),
        fingerprint(record.customer_id.as_deref()?),
    ))
}

/// Days a customer a person served under a case the channel vouched for stays theirs to
/// follow up ([`Served`]): a call-back or a follow-up comes within days of the contact.
pub const FOLLOW_UP_DAYS: i64 = 7;

/// The customers a person opened under a case the channel vouched for (`verified` or
/// `outbound`), with the local day they last did, for [`FOLLOW_UP_DAYS`]. A later case of
/// theirs on one of these customers that no channel vouches for (a follow-up they asked
/// for, a call from another number) follows their own contact: it is no customer they
/// chose, so it counts in no volume or case feature. A harvester's pretexts name
/// customers who never reached them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Served(HashMap<u64, i64, FastBuild>);

impl Served {
    fn insert(&mut self, customer: u64, day: i64) {
        let last = self.0.entry(customer).or_insert(day);
        *last = (*last).max(day);
    }

    fn contains(&self, customer: u64) -> bool {
        self.0.contains_key(&customer)
    }

    /// Forgets customers last served more than [`FOLLOW_UP_DAYS`] before the local day
    /// `today`.
    fn expire(&mut self, today: i64) {
        self.0.retain(|_, day| today - *day <= FOLLOW_UP_DAYS);
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// What a record does, for the features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    View,
    Reveal,
    Search,
    /// A contact through a relay.
    Relay,
    /// An access request or a break-glass.
    Request,
    /// An approval of someone's access request.
    Approval,
    Other,
}

/// Whether a refusal's reason is a ceiling (quota, detector-imposed step-up) rather
/// than a policy decision.
fn is_ceiling(reason_code: &str) -> bool {
    matches!(reason_code, "quota_exceeded" | "step_up_required")
}

/// Whether a record is a refusal by policy, which counts as a denial.
fn is_denial(record: &AccessRecord) -> bool {
    record.decision == Decision::Deny && !is_ceiling(&record.reason_code)
}

fn is_access(kind: Kind) -> bool {
    matches!(kind, Kind::View | Kind::Reveal | Kind::Search | Kind::Relay)
}

/// Whether a record counts in its person's features: an access (view, reveal, search,
/// a relay contact), an access request or approval, or a refusal by policy. The others
/// (reading one's own quotas, a ceiling's refusal) say nothing about them.
pub fn counts(record: &AccessRecord) -> bool {
    is_denial(record) || kind(record.action) != Kind::Other
}

fn kind(action: Action) -> Kind {
    match action {
        Action::View => Kind::View,
        Action::Reveal => Kind::Reveal,
        Action::Search => Kind::Search,
        Action::Contact => Kind::Relay,
        Action::RequestAccess | Action::BreakGlass => Kind::Request,
        Action::ApproveAccess => Kind::Approval,
        _ => Kind::Other,
    }
}

/// Streaming accumulator of one person's current day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonDay {
    /// The local day being accumulated.
    pub day: i64,
    customers: IdSet,
    cases: IdSet,
    search_hits: IdSet,
    /// Customers opened under cases this person asked for.
    self_opened: IdSet,
    /// Customers opened under cases no channel vouches for.
    no_contact: IdSet,
    /// Customers reached through the relays.
    relayed: IdSet,
    /// Customers served under vouched cases in the last days: kept across days.
    #[serde(default)]
    served: Served,
    requests: u32,
    approvals: u32,
    hour: i64,
    hour_new: u32,
    peak_hour_new: u32,
    reveals: u32,
    searches: u32,
    denials: u32,
    accesses: u32,
    off_shift: u32,
    last_access: Option<i64>,
    gaps: u32,
    gap_mean: f64,
    gap_m2: f64,
}

impl PersonDay {
    /// Starts an empty accumulator for `day`.
    pub fn new(day: i64) -> PersonDay {
        PersonDay {
            day,
            ..PersonDay::default()
        }
    }

    /// Closes the day and starts `day`: the day's sets are emptied (their memory kept
    /// for reuse), and customers served more than [`FOLLOW_UP_DAYS`] ago forgotten.
    pub fn reset(&mut self, day: i64) {
        self.served.expire(day);
        for set in [
            &mut self.customers,
            &mut self.cases,
            &mut self.search_hits,
            &mut self.self_opened,
            &mut self.no_contact,
            &mut self.relayed,
        ] {
            set.clear();
            // A bulk day leaves a large table behind: give most of it back.
            set.shrink_to(256);
        }
        self.day = day;
        self.hour = 0;
        self.hour_new = 0;
        self.peak_hour_new = 0;
        self.reveals = 0;
        self.requests = 0;
        self.approvals = 0;
        self.searches = 0;
        self.denials = 0;
        self.accesses = 0;
        self.off_shift = 0;
        self.last_access = None;
        self.gaps = 0;
        self.gap_mean = 0.0;
        self.gap_m2 = 0.0;
    }

    /// Whether anything was observed in the day.
    pub fn is_active(&self) -> bool {
        self.accesses > 0 || self.denials > 0 || self.requests > 0 || self.approvals > 0
    }

    /// The day's workload so far: distinct cases worked (a customer viewed or revealed
    /// under it), whatever their provenance. Not a feature (busy is not suspect); it
    /// measures how busy the team is ([`crate::score::workload_surge`]).
    pub fn cases_worked(&self) -> f64 {
        self.cases.len() as f64
    }

    /// Number of fingerprints held (the bounded memory, for tests and metrics).
    pub fn held_ids(&self) -> usize {
        self.customers.len()
            + self.cases.len()
            + self.search_hits.len()
            + self.self_opened.len()
            + self.no_contact.len()
            + self.relayed.len()
            + self.served.len()
    }

    /// Adds one record of this person. The caller has made sure the record belongs to
    /// [`PersonDay::day`]; `origins` says where the cases it names came from. Returns
    /// what it changed, for the organisation's aggregate.
    pub fn observe(
        &mut self,
        record: &AccessRecord,
        config: &FeatureConfig,
        origins: &CaseOrigins,
    ) -> Delta {
        let mut delta = Delta::default();
        let kind = kind(record.action);
        let allowed = record.decision == Decision::Allow;
        if is_denial(record) {
            self.denials += 1;
            delta.denials = 1;
        }
        let customer = record.customer_id.as_deref().map(fingerprint);
        match kind {
            Kind::Request if allowed => self.requests += 1,
            Kind::Approval if allowed => self.approvals += 1,
            _ => {}
        }
        if !is_access(kind) {
            return delta;
        }
        self.accesses += 1;
        delta.accesses = 1;
        if !config.on_shift(record.at) {
            self.off_shift += 1;
            delta.off_shift = 1;
        }
        if let Some(last) = self.last_access {
            // Ledger order may be a few ms out of time order: a negative gap counts as 0.
            let gap = (record.at - last).max(0) as f64 / 1000.0;
            if gap <= config.max_gap_secs {
                // Welford: numerically stable running mean and variance.
                self.gaps += 1;
                let d = gap - self.gap_mean;
                self.gap_mean += d / f64::from(self.gaps);
                self.gap_m2 += d * (gap - self.gap_mean);
            }
        }
        self.last_access = Some(self.last_access.map_or(record.at, |l| l.max(record.at)));
        let for_the_caller = kind == Kind::Search
            && allowed
            && customer.is_some_and(|c| origins.on_the_line(fingerprint(&record.staff_id), c));
        match kind {
            // A search that finds the customer the channel put on the line for the
            // person is for them: it counts in neither search feature.
            Kind::Search if !for_the_caller => {
                self.searches += 1;
                delta.searches = 1;
                if allowed
                    && let Some(c) = customer
                    && self.search_hits.insert(c)
                {
                    delta.search_breadth = 1;
                }
            }
            Kind::View | Kind::Reveal if allowed => {
                let case = record.case_id.as_deref().map(fingerprint);
                if let Some(case) = case {
                    self.cases.insert(case);
                }
                let origin = case.and_then(|case| origins.get(case));
                let verified = origin.is_some_and(|o| o.verified);
                if verified && let Some(c) = customer {
                    self.served.insert(c, self.day);
                }
                let followed_up = !verified && customer.is_some_and(|c| self.served.contains(c));
                let chosen = !verified && !followed_up;
                if let (Some(o), Some(c)) = (origin, customer)
                    && !followed_up
                {
                    if o.requester
                        .is_some_and(|r| r == fingerprint(&record.staff_id))
                        && self.self_opened.insert(c)
                    {
                        delta.self_opened = 1;
                    }
                    if !o.vouched && self.no_contact.insert(c) {
                        delta.no_contact = 1;
                    }
                }
                if kind == Kind::Reveal {
                    let n = record.fields.len().max(1) as u32;
                    self.reveals += n;
                    delta.reveals = n;
                }
                if let Some(c) = customer
                    && chosen
                    && self.customers.insert(c)
                {
                    delta.customers = 1;
                    let hour = config.hour_of(record.at);
                    if hour != self.hour {
                        self.hour = hour;
                        self.hour_new = 0;
                    }
                    self.hour_new += 1;
                    self.peak_hour_new = self.peak_hour_new.max(self.hour_new);
                }
            }
            Kind::Relay if allowed => {
                let case = record.case_id.as_deref().map(fingerprint);
                let verified = case
                    .and_then(|case| origins.get(case))
                    .is_some_and(|o| o.verified);
                if let Some(c) = customer
                    && !verified
                    && !self.served.contains(c)
                {
                    self.relayed.insert(c);
                }
            }
            _ => {}
        }
        delta
    }

    /// The day's feature values so far.
    pub fn values(&self, config: &FeatureConfig) -> DayValues {
        let mut v = [None; N_FEATURES];
        let enough = self.accesses >= config.min_accesses;
        v[Feature::DistinctCustomers.index()] = Some(self.customers.len() as f64);
        v[Feature::PeakHourCustomers.index()] = Some(f64::from(self.peak_hour_new));
        v[Feature::Reveals.index()] = Some(f64::from(self.reveals));
        // A ratio over a handful of cases is noise: it needs as many cases as accesses.
        v[Feature::RevealsPerCase.index()] = (self.cases.len() >= config.min_accesses as usize)
            .then(|| f64::from(self.reveals) / self.cases.len() as f64);
        v[Feature::Searches.index()] = Some(f64::from(self.searches));
        v[Feature::SearchBreadth.index()] = Some(self.search_hits.len() as f64);
        v[Feature::Denials.index()] = Some(f64::from(self.denials));
        v[Feature::OffShiftShare.index()] =
            enough.then(|| f64::from(self.off_shift) / f64::from(self.accesses));
        v[Feature::SelfOpenedCases.index()] = Some(self.self_opened.len() as f64);
        v[Feature::NoContactCases.index()] = Some(self.no_contact.len() as f64);
        v[Feature::TimingCv.index()] = (self.gaps >= config.min_gaps && self.gap_mean > 0.0)
            .then(|| (self.gap_m2 / f64::from(self.gaps)).sqrt() / self.gap_mean);
        v[Feature::AccessRequests.index()] = Some(f64::from(self.requests));
        v[Feature::Approvals.index()] = Some(f64::from(self.approvals));
        v[Feature::RelayContacts.index()] = Some(self.relayed.len() as f64);
        DayValues(v)
    }
}

/// What one record added to a person's day, summed into their organisation's day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// New distinct customers of the person.
    pub customers: u32,
    /// Fields revealed.
    pub reveals: u32,
    /// Searches.
    pub searches: u32,
    /// New distinct customers matched by the person's searches.
    pub search_breadth: u32,
    /// Refusals.
    pub denials: u32,
    /// Accesses.
    pub accesses: u32,
    /// Accesses outside working hours.
    pub off_shift: u32,
    /// New customers opened under cases the person asked for.
    pub self_opened: u32,
    /// New customers opened under cases with no inbound contact.
    pub no_contact: u32,
}

/// The organisation-level features: sums over its people of their per-person counts,
/// per day. (Per-person distinct customers are summed: a ring of colleagues each taking
/// a modest share shows up as a rise of the organisation's total.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgFeature {
    /// Sum of the members' distinct customers.
    Customers,
    /// Fields revealed.
    Reveals,
    /// Sum of the members' distinct search matches.
    SearchBreadth,
    /// Refusals.
    Denials,
    /// Accesses outside working hours.
    OffShiftAccesses,
    /// Customers opened under cases asked for by the same person.
    SelfOpenedCases,
    /// Customers opened under cases with no inbound contact.
    NoContactCases,
}

/// Number of [`OrgFeature`]s.
pub const N_ORG_FEATURES: usize = 7;

impl OrgFeature {
    /// Every organisation feature, in the order of [`OrgDay::values`].
    pub const ALL: [OrgFeature; N_ORG_FEATURES] = [
        OrgFeature::Customers,
        OrgFeature::Reveals,
        OrgFeature::SearchBreadth,
        OrgFeature::Denials,
        OrgFeature::OffShiftAccesses,
        OrgFeature::SelfOpenedCases,
        OrgFeature::NoContactCases,
    ];

    /// Plain words for a value.
    pub fn describe(self, value: f64) -> String {
        match self {
            OrgFeature::Customers => format!("its staff viewed {value:.0} customers today"),
            OrgFeature::Reveals => format!("its staff revealed {value:.0} fields today"),
            OrgFeature::SearchBreadth => {
                format!("its staff's searches matched {value:.0} customers today")
            }
            OrgFeature::Denials => format!("its staff were refused {value:.0} times today"),
            OrgFeature::OffShiftAccesses => {
                format!("its staff made {value:.0} accesses outside working hours today")
            }
            OrgFeature::SelfOpenedCases => {
                format!(
                    "its staff viewed {value:.0} customers under cases they asked for themselves today"
                )
            }
            OrgFeature::NoContactCases => {
                format!(
                    "its staff viewed {value:.0} customers under cases with no inbound contact today"
                )
            }
        }
    }
}

/// One organisation's (partner company's) current day.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OrgDay {
    /// The local day being accumulated.
    pub day: i64,
    /// Sums, in the order of [`OrgFeature::ALL`].
    pub sums: [u64; N_ORG_FEATURES],
    /// Accesses in all.
    pub accesses: u64,
    /// Members seen today.
    pub active_staff: u32,
}

impl OrgDay {
    /// Adds what one record changed for one of the organisation's people.
    pub fn add(&mut self, delta: &Delta) {
        let add = [
            delta.customers,
            delta.reveals,
            delta.search_breadth,
            delta.denials,
            delta.off_shift,
            delta.self_opened,
            delta.no_contact,
        ];
        for (sum, d) in self.sums.iter_mut().zip(add) {
            *sum += u64::from(d);
        }
        self.accesses += u64::from(delta.accesses);
    }

    /// The day's values so far.
    pub fn values(&self) -> [f64; N_ORG_FEATURES] {
        self.sums.map(|s| s as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_704_067_200_000; // 2024-01-01 00:00 UTC

    fn rec(at: i64, action: Action, customer: &str, decision: Decision) -> AccessRecord {
        AccessRecord {
            seq: 1,
            request_id: String::new(),
            at,
            staff_id: "alice".into(),
            org: "acme".into(),
            role: Role::Support.into(),
            action,
            customer_id: Some(customer.into()),
            fields: if action == Action::Reveal {
                vec!["phone".into(), "email".into()]
            } else {
                vec![]
            },
            case_id: Some(format!("case_{customer}")),
            target: None,
            decision,
            reason_code: "ok".into(),
            client: None,
        }
    }

    #[test]
    fn clock_uses_the_configured_offset_and_window() {
        let c = FeatureConfig {
            utc_offset_minutes: 480,
            shift_start_hour: 9,
            shift_end_hour: 18,
            ..FeatureConfig::default()
        };
        // 20:00 UTC on Jan 1 is 04:00 on Jan 2 at UTC+8: next day, off shift.
        let at = T0 + 20 * HOUR_MS;
        assert_eq!(c.day_of(at), c.day_of(T0) + 1);
        assert!(!c.on_shift(at));
        assert!(c.on_shift(T0 + 2 * HOUR_MS)); // 10:00 local
        let night = FeatureConfig {
            shift_start_hour: 22,
            shift_end_hour: 6,
            ..FeatureConfig::default()
        };
        assert!(night.on_shift(T0 + 23 * HOUR_MS) && night.on_shift(T0 + HOUR_MS));
        assert!(!night.on_shift(T0 + 12 * HOUR_MS));
    }

    #[test]
    fn counts_distinct_customers_reveals_denials_and_searches() {
        let c = FeatureConfig::default();
        let none = CaseOrigins::default();
        let mut d = PersonDay::new(c.day_of(T0));
        let base = T0 + 10 * HOUR_MS;
        d.observe(&rec(base, Action::View, "c1", Decision::Allow), &c, &none);
        d.observe(
            &rec(base + 1000, Action::View, "c1", Decision::Allow),
            &c,
            &none,
        );
        d.observe(
            &rec(base + 2000, Action::Reveal, "c1", Decision::Allow),
            &c,
            &none,
        );
        d.observe(
            &rec(base + 3000, Action::View, "c2", Decision::Deny),
            &c,
            &none,
        );
        d.observe(
            &rec(base + 4000, Action::Search, "c3", Decision::Allow),
            &c,
            &none,
        );
        d.observe(
            &rec(base + 5000, Action::Search, "c3", Decision::Allow),
            &c,
            &none,
        );
        let v = d.values(&c);
        assert_eq!(v.get(Feature::DistinctCustomers), Some(1.0));
        assert_eq!(v.get(Feature::Reveals), Some(2.0));
        assert_eq!(v.get(Feature::Denials), Some(1.0));
        // Ceilings are not policy refusals: neither a quota nor a step-up counts.
        for code in ["quota_exceeded", "step_up_required"] {
            let mut capped = rec(base + 3500, Action::View, "c4", Decision::Deny);
            capped.reason_code = code.into();
            d.observe(&capped, &c, &none);
        }
        let v = d.values(&c);
        assert_eq!(v.get(Feature::Denials), Some(1.0));
        assert_eq!(v.get(Feature::Searches), Some(2.0));
        assert_eq!(v.get(Feature::SearchBreadth), Some(1.0));
        // Too little data for the ratios.
        assert_eq!(v.get(Feature::OffShiftShare), None);
        assert_eq!(v.get(Feature::TimingCv), None);
    }

    #[test]
    fn off_shift_and_timing() {
        let c = FeatureConfig::default(); // 07–21 UTC
        let none = CaseOrigins::default();
        let mut d = PersonDay::new(c.day_of(T0));
        // 30 accesses every 60 s from 02:00: all off shift, perfectly regular.
        for k in 0..30 {
            let at = T0 + 2 * HOUR_MS + k * 60_000;
            d.observe(
                &rec(at, Action::View, &format!("c{k}"), Decision::Allow),
                &c,
                &none,
            );
        }
        let v = d.values(&c);
        assert_eq!(v.get(Feature::OffShiftShare), Some(1.0));
        assert_eq!(v.get(Feature::TimingCv), Some(0.0));
        assert_eq!(v.get(Feature::PeakHourCustomers), Some(30.0));
        // Cases of unknown origin count in neither case feature.
        assert_eq!(v.get(Feature::SelfOpenedCases), Some(0.0));
        assert_eq!(v.get(Feature::NoContactCases), Some(0.0));
    }

    /// The CRM's record of opening the case of `customer` (see [`rec`] for its id).
    fn create_case(at: i64, customer: &str, facts: &[&str]) -> AccessRecord {
        AccessRecord {
            staff_id: "crm".into(),
            role: Role::Integration.into(),
            fields: facts.iter().map(|f| (*f).to_owned()).collect(),
            target: Some("alice".into()),
            ..rec(at, Action::CreateCase, customer, Decision::Allow)
        }
    }

    #[test]
    fn case_origins_drive_the_case_features() {
        let c = FeatureConfig::default();
        let mut origins = CaseOrigins::default();
        let at = T0 + 10 * HOUR_MS;
        // Asked for by alice, no inbound contact: a pretext.
        origins.observe(
            &create_case(
                at,
                "c1",
                &["channel:phone", "contact:none", "requested_by:alice"],
            ),
            &c,
        );
        // Opened by the CRM on its own for a call.
        origins.observe(
            &create_case(at, "c2", &["channel:phone", "contact:inbound"]),
            &c,
        );
        // From before the facts were written: inbound, asked for by no one.
        origins.observe(&create_case(at, "c3", &[]), &c);
        // An outbound case asked for by a colleague.
        origins.observe(
            &create_case(
                at,
                "c4",
                &["channel:email", "contact:none", "requested_by:bob"],
            ),
            &c,
        );
        // A refused creation says nothing.
        origins.observe(
            &create_case(at, "c5", &["contact:none", "requested_by:alice"]),
            &c,
        );
        let mut refused = create_case(at, "c6", &["contact:none", "requested_by:alice"]);
        refused.decision = Decision::Deny;
        origins.observe(&refused, &c);
        // An administrator creating a case directly asked for it.
        let admin = AccessRecord {
            staff_id: "alice".into(),
            role: Role::Admin.into(),
            ..create_case(at, "c7", &["channel:store", "contact:inbound"])
        };
        origins.observe(&admin, &c);
        // c1, c4, c5, c7: the CRM's own inbound cases count in nothing and are not held.
        assert_eq!(origins.len(), 4);
        assert!(origins.get(fingerprint("case_c2")).is_none());

        let mut d = PersonDay::new(c.day_of(at));
        let mut deltas = Vec::new();
        for customer in ["c1", "c1", "c2", "c3", "c4", "c6", "c7"] {
            deltas.push(d.observe(
                &rec(at + 1000, Action::View, customer, Decision::Allow),
                &c,
                &origins,
            ));
        }
        // Refused views count in neither.
        d.observe(
            &rec(at + 2000, Action::View, "c5", Decision::Deny),
            &c,
            &origins,
        );
        let v = d.values(&c);
        assert_eq!(v.get(Feature::DistinctCustomers), Some(6.0));
        assert_eq!(v.get(Feature::SelfOpenedCases), Some(2.0)); // c1, c7
        assert_eq!(v.get(Feature::NoContactCases), Some(2.0)); // c1, c4
        // The organisation sees each customer once.
        let sum = |f: fn(&Delta) -> u32| deltas.iter().map(f).sum::<u32>();
        assert_eq!(sum(|d| d.self_opened), 2);
        assert_eq!(sum(|d| d.no_contact), 2);
        assert_eq!(deltas[0].self_opened + deltas[0].no_contact, 2);
        // A second view of the same customer adds an access only.
        assert_eq!(
            deltas[1],
            Delta {
                accesses: 1,
                ..Delta::default()
            }
        );
        // Someone else viewing alice's pretext case: no contact, but not self-opened.
        let mut bob = PersonDay::new(c.day_of(at));
        let mut r = rec(at + 1000, Action::View, "c1", Decision::Allow);
        r.staff_id = "bob".into();
        bob.observe(&r, &c, &origins);
        let v = bob.values(&c);
        assert_eq!(v.get(Feature::SelfOpenedCases), Some(0.0));
        assert_eq!(v.get(Feature::NoContactCases), Some(1.0));
    }

    #[test]
    fn provenance_says_which_cases_a_channel_vouches_for() {
        let c = FeatureConfig::default();
        let mut origins = CaseOrigins::default();
        let at = T0 + 10 * HOUR_MS;
        let cases: [(&str, &[&str]); 4] = [
            (
                "v",
                &["channel:phone", "contact:inbound", "provenance:verified"],
            ),
            (
                "u",
                &["channel:phone", "contact:inbound", "provenance:unverified"],
            ),
            (
                "o",
                &[
                    "channel:phone",
                    "contact:none",
                    "provenance:outbound",
                    "campaign:renewals",
                ],
            ),
            (
                "r",
                &["contact:none", "requested_by:bob", "provenance:requested"],
            ),
        ];
        for (customer, facts) in cases {
            origins.observe(&create_case(at, customer, facts), &c);
        }
        // A pretext the contact centre later vouches for: the customer did call.
        origins.observe(
            &create_case(
                at,
                "p",
                &["contact:none", "requested_by:alice", "provenance:requested"],
            ),
            &c,
        );
        let mut vouching = create_case(
            at,
            "p",
            &["channel:phone", "contact:inbound", "provenance:verified"],
        );
        vouching.action = Action::PostContact;
        origins.observe(&vouching, &c);
        assert_eq!(origins.len(), 5);
        let mut d = PersonDay::new(c.day_of(at));
        for customer in ["v", "u", "o", "r", "p"] {
            d.observe(
                &rec(at + 1000, Action::View, customer, Decision::Allow),
                &c,
                &origins,
            );
            d.observe(
                &rec(at + 2000, Action::Contact, customer, Decision::Allow),
                &c,
                &origins,
            );
        }
        let v = d.values(&c);
        assert_eq!(v.get(Feature::NoContactCases), Some(2.0)); // u, r
        // The customers the channel vouches for are in no volume feature.
        assert_eq!(v.get(Feature::DistinctCustomers), Some(2.0)); // u, r
        assert_eq!(v.get(Feature::PeakHourCustomers), Some(2.0));
        assert_eq!(v.get(Feature::RelayContacts), Some(2.0));
        // Still asked for by alice herself.
        assert_eq!(v.get(Feature::SelfOpenedCases), Some(1.0)); // p
    }

    #[test]
    fn requests_approvals_and_relay_contacts_are_counted() {
        let c = FeatureConfig::default();
        let none = CaseOrigins::default();
        let at = T0 + 10 * HOUR_MS;
        let mut d = PersonDay::new(c.day_of(at));
        let records = [
            (Action::RequestAccess, "a", Decision::Allow),
            (Action::BreakGlass, "b", Decision::Allow),
            (Action::RequestAccess, "c", Decision::Deny),
            (Action::ApproveAccess, "d", Decision::Allow),
            (Action::DenyAccess, "e", Decision::Allow),
            (Action::Contact, "f", Decision::Allow),
            (Action::Contact, "f", Decision::Allow),
            (Action::Contact, "g", Decision::Allow),
            (Action::Contact, "h", Decision::Deny),
        ];
        for (i, (action, customer, decision)) in records.into_iter().enumerate() {
            let r = rec(at + i as i64 * 1000, action, customer, decision);
            assert!(counts(&r) || decision == Decision::Allow && action == Action::DenyAccess);
            d.observe(&r, &c, &none);
        }
        let v = d.values(&c);
        assert_eq!(v.get(Feature::AccessRequests), Some(2.0));
        assert_eq!(v.get(Feature::Approvals), Some(1.0));
        // Distinct customers reached: f (twice) and g; the refused call reached no one.
        assert_eq!(v.get(Feature::RelayContacts), Some(2.0));
        assert_eq!(v.get(Feature::Denials), Some(2.0));
        // A relay contact is not a view: it opens no customer's record.
        assert_eq!(v.get(Feature::DistinctCustomers), Some(0.0));
    }

    #[test]
    fn case_origins_leave_on_close_and_expire() {
        let c = FeatureConfig::default();
        let mut origins = CaseOrigins::default();
        let at = T0 + 10 * HOUR_MS;
        origins.observe(&create_case(at, "c1", &["contact:none"]), &c);
        origins.observe(&create_case(at, "c2", &["contact:none"]), &c);
        // A refused close leaves the case open.
        origins.observe(&rec(at + 1, Action::CloseCase, "c1", Decision::Deny), &c);
        assert_eq!(origins.len(), 2);
        origins.observe(&rec(at + 2, Action::CloseCase, "c1", Decision::Allow), &c);
        assert_eq!(origins.len(), 1);
        assert!(origins.get(fingerprint("case_c1")).is_none());
        let mut d = PersonDay::new(c.day_of(at));
        d.observe(
            &rec(at + 3, Action::View, "c1", Decision::Allow),
            &c,
            &origins,
        );
        assert_eq!(d.values(&c).get(Feature::NoContactCases), Some(0.0));
        // Kept for CASE_ORIGIN_DAYS after the day it was opened, then forgotten.
        let day = c.day_of(at);
        origins.expire(day + CASE_ORIGIN_DAYS);
        assert_eq!(origins.len(), 1);
        origins.expire(day + CASE_ORIGIN_DAYS + 1);
        assert!(origins.is_empty());
    }

    #[test]
    fn a_follow_up_of_ones_own_vouched_contact_is_no_chosen_customer() {
        let c = FeatureConfig::default();
        let mut origins = CaseOrigins::default();
        let at = T0 + 10 * HOUR_MS;
        let verified = ["channel:phone", "contact:inbound", "provenance:verified"];
        let follow_up = ["contact:none", "requested_by:alice", "provenance:requested"];
        // Day 0: the customer "k" calls alice from their own number; she searches for
        // them, and for "z", whom no channel put on her line.
        origins.observe(&create_case(at, "k", &verified), &c);
        let mut d = PersonDay::new(c.day_of(at));
        for customer in ["k", "z"] {
            let mut search = rec(at, Action::Search, customer, Decision::Allow);
            search.case_id = None;
            d.observe(&search, &c, &origins);
        }
        // The search for the caller counts in neither search feature.
        assert_eq!(d.values(&c).get(Feature::SearchBreadth), Some(1.0));
        assert_eq!(d.values(&c).get(Feature::Searches), Some(1.0));
        d.observe(
            &rec(at + 1000, Action::View, "k", Decision::Allow),
            &c,
            &origins,
        );
        // Once the case is closed, "k" is no longer on her line.
        origins.observe(&rec(at + 2000, Action::CloseCase, "k", Decision::Allow), &c);
        let mut search = rec(at + 3000, Action::Search, "k", Decision::Allow);
        search.case_id = None;
        d.observe(&search, &c, &origins);
        assert_eq!(d.values(&c).get(Feature::SearchBreadth), Some(2.0));

        // Three days later she asks for a follow-up of "k", and pretexts on "x", who
        // never reached her; each is viewed and called through the relay.
        let later = at + 3 * DAY_MS;
        d.reset(c.day_of(later));
        for customer in ["k", "x"] {
            let mut opened = create_case(later, customer, &follow_up);
            opened.case_id = Some(format!("case_{customer}_2"));
            origins.observe(&opened, &c);
            for action in [Action::View, Action::Contact] {
                let mut r = rec(later + 1000, action, customer, Decision::Allow);
                r.case_id = Some(format!("case_{customer}_2"));
                d.observe(&r, &c, &origins);
            }
        }
        let v = d.values(&c);
        for f in [
            Feature::DistinctCustomers,
            Feature::SelfOpenedCases,
            Feature::NoContactCases,
            Feature::RelayContacts,
        ] {
            assert_eq!(v.get(f), Some(1.0), "{f:?}: x only");
        }

        // Past FOLLOW_UP_DAYS the contact is forgotten: a case on "k" counts again.
        let late = at + (FOLLOW_UP_DAYS + 1) * DAY_MS;
        d.reset(c.day_of(late));
        let mut opened = create_case(late, "k", &follow_up);
        opened.case_id = Some("case_k_3".into());
        origins.observe(&opened, &c);
        let mut r = rec(late + 1000, Action::View, "k", Decision::Allow);
        r.case_id = Some("case_k_3".into());
        d.observe(&r, &c, &origins);
        assert_eq!(d.values(&c).get(Feature::SelfOpenedCases), Some(1.0));
    }

    #[test]
    fn closing_the_day_evicts_its_sets() {
        let c = FeatureConfig::default();
        let mut d = PersonDay::new(c.day_of(T0));
        for k in 0..5000 {
            d.observe(
                &rec(
                    T0 + 10 * HOUR_MS + k,
                    Action::View,
                    &format!("c{k}"),
                    Decision::Allow,
                ),
                &c,
                &CaseOrigins::default(),
            );
        }
        assert_eq!(d.held_ids(), 10_000); // customers + cases
        d.reset(d.day + 1);
        assert_eq!(d.held_ids(), 0);
        assert!(!d.is_active());
        assert_eq!(d.values(&c).get(Feature::DistinctCustomers), Some(0.0));
        // The bulk day's table capacity was given back.
        assert!(d.customers.capacity() < 1000);
    }

    #[test]
    fn fingerprints_are_stable_and_spread() {
        assert_eq!(fingerprint("cus_1"), fingerprint("cus_1"));
        let set: IdSet = (0..100_000)
            .map(|i| fingerprint(&format!("cus_{i}")))
            .collect();
        assert_eq!(set.len(), 100_000);
        assert_ne!(fingerprint(""), fingerprint("\0"));
    }
}
