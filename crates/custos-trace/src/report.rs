//! The whole trace, from the file's bytes to the report: [`trace`] reads the file
//! ([`crate::input`]), matches it ([`crate::matching`]), gathers who held the matched
//! customers in the window from the access log, and ranks them ([`crate::rank`]).

use std::collections::{HashMap, HashSet};

use custos_crypto::Keyring;
use custos_store::{Store, StoreError};
use serde::Serialize;

use crate::input::{InputError, Layout, read_leak};
use crate::interner::Interner;
use crate::matching::match_rows;
use crate::rank::{self, Exposure, ExposureKind, LeakedCustomer, Params, RankError, Staff};

/// What a trace is asked.
#[derive(Clone, Debug)]
pub struct TraceOptions {
    /// Accesses from this time on count as exposures to the leaked customers (unix
    /// milliseconds, inclusive). Holdings, the size of what a person could have leaked,
    /// count everything before `until`.
    pub since: i64,
    /// Accesses before this time count (unix milliseconds, exclusive).
    pub until: i64,
    /// Region of phone numbers written without a country code, e.g. `"CN"`.
    pub default_region: String,
    /// How many suspects the report lists.
    pub top: usize,
    /// `p`: the chance a leaked row was obtained elsewhere ([`Params::p_elsewhere`]).
    pub p_elsewhere: f64,
}

/// Why a trace failed. No variant carries the file's content.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read.
    #[error(transparent)]
    Input(#[from] InputError),
    /// A parameter is out of range.
    #[error(transparent)]
    Rank(#[from] RankError),
    /// The window is empty or reversed.
    #[error("the time window is empty: since must be before until")]
    BadWindow,
    /// A time could not be read.
    #[error("a time is unix milliseconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)")]
    BadTime,
    /// The store failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl TraceError {
    /// A stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            TraceError::Input(e) => e.code(),
            TraceError::Rank(e) => e.code(),
            TraceError::BadWindow => "trace_bad_window",
            TraceError::BadTime => "trace_bad_time",
            TraceError::Store(e) => e.code(),
        }
    }
}

/// Reads a window bound: unix milliseconds, a UTC date `YYYY-MM-DD` (its midnight), or
/// a UTC time `YYYY-MM-DDTHH:MM:SSZ`.
///
/// # Errors
///
/// [`TraceError::BadTime`] for anything else, including impossible dates.
pub fn parse_time(text: &str) -> Result<i64, TraceError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| TraceError::BadTime);
    }
    let (date, time) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z').ok_or(TraceError::BadTime)?)),
        None => (text, None),
    };
    let number = |s: &str, len: usize| -> Result<i64, TraceError> {
        if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| TraceError::BadTime)
        } else {
            Err(TraceError::BadTime)
        }
    };
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(TraceError::BadTime);
    };
    let (y, m, d) = (number(y, 4)?, number(m, 2)?, number(d, 2)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return Err(TraceError::BadTime);
    }
    let seconds_of_day = match time {
        None => 0,
        Some(t) => {
            let parts: Vec<&str> = t.split(':').collect();
            let [h, min, s] = parts[..] else {
                return Err(TraceError::BadTime);
            };
            let (h, min, s) = (number(h, 2)?, number(min, 2)?, number(s, 2)?);
            if h > 23 || min > 59 || s > 59 {
                return Err(TraceError::BadTime);
            }
            h * 3600 + min * 60 + s
        }
    };
    Ok((custos_types::calendar::days_from_civil(y, m, d) * 86_400 + seconds_of_day) * 1000)
}

/// One suspect's line of the report.
#[derive(Clone, Debug, Serialize)]
pub struct SuspectReport {
    /// Staff id.
    pub staff: String,
    /// Organisation.
    pub org: String,
    /// The log-likelihood ratio of "the leak came from this person" against "it came
    /// from elsewhere" (nats; see [`crate::rank`]).
    pub score: f64,
    /// Leaked customers they held (revealed or viewed) in the window.
    pub records: usize,
    /// Of those, revealed.
    pub records_revealed: usize,
    /// Leaked customers nobody else held.
    pub exclusive_records: usize,
    /// Papadimitriou & Garcia-Molina's guilt estimate, for reference.
    pub pgm_guilt: f64,
    /// Every customer they held at the window's end, leaked or not (including customers
    /// viewed or revealed before its start: data once shown is still held).
    pub holdings: u64,
    /// Their first access to a leaked customer in the window (unix milliseconds).
    pub first_access: i64,
    /// Their last.
    pub last_access: i64,
}

/// Who was exposed to one canary customer found in the file.
#[derive(Clone, Debug, Serialize)]
pub struct CanaryReport {
    /// The canary customer's id.
    pub customer: String,
    /// Everyone who viewed or revealed it: near-proof, as no case is opened for a canary
    /// in good faith except the one Custos opened for the person it allocated it to
    /// (`allocated`), and it went to no one else of their organisation and role.
    pub exposed: Vec<CanaryExposure>,
}

/// One person's exposure to a canary.
#[derive(Clone, Debug, Serialize)]
pub struct CanaryExposure {
    /// Staff id.
    pub staff: String,
    /// Organisation.
    pub org: String,
    /// `reveal` or `view`.
    pub kind: ExposureKind,
    /// First exposure in the window (unix milliseconds).
    pub first_at: i64,
    /// Whether Custos allocated this canary to this person (a case on their queue): the
    /// leak carries their fingerprint. Else they reached a canary no case of theirs named,
    /// which the detector flagged when it happened.
    pub allocated: bool,
}

/// A group whose union explains the file.
#[derive(Clone, Debug, Serialize)]
pub struct RingReport {
    /// The organisation, when the group was drawn from one.
    pub org: Option<String>,
    /// Members, in the order they were added.
    pub members: Vec<String>,
    /// Leaked customers held by at least one member.
    pub records_explained: usize,
    /// Of the matched customers.
    pub fraction_explained: f64,
}

/// The trace report (`custos trace --report`).
#[derive(Clone, Debug, Serialize)]
pub struct TraceReport {
    /// Records read from the file (not the header, not blank lines).
    pub rows: u64,
    /// Rows that named at least one customer of the vault.
    pub matched: u64,
    /// Rows that named none (including rows with only a name).
    pub unmatched: u64,
    /// Of the matched rows, those naming more than one customer.
    pub ambiguous: u64,
    /// Rows with a name and no phone, email or account id (names alone are not
    /// matched: weak evidence).
    pub name_only: u64,
    /// Distinct customers matched.
    pub customers: usize,
    /// How the file was read.
    pub layout: Layout,
    /// The window, unix milliseconds.
    pub since: i64,
    /// End of the window (exclusive).
    pub until: i64,
    /// Canary customers in the file and who was exposed to them.
    pub canaries: Vec<CanaryReport>,
    /// Best first.
    pub suspects: Vec<SuspectReport>,
    /// The group of staff that best explains the file together, if any.
    pub ring: Option<RingReport>,
    /// The same per organisation.
    pub org_rings: Vec<RingReport>,
}

impl TraceReport {
    /// The report as a terminal table (what `custos trace` prints).
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} rows read: {} matched ({} ambiguous), {} unmatched ({} with only a name); {} customers",
            self.rows, self.matched, self.ambiguous, self.unmatched, self.name_only, self.customers
        );
        for canary in &self.canaries {
            let who: Vec<String> = canary
                .exposed
                .iter()
                .map(|e| format!("{} ({})", e.staff, e.org))
                .collect();
            let _ = writeln!(
                out,
                "CANARY in the file; exposed to it: {}",
                if who.is_empty() {
                    "nobody in the window".to_owned()
                } else {
                    who.join(", ")
                }
            );
        }
        let _ = writeln!(
            out,
            "{:>4}  {:<24} {:<16} {:>9} {:>8} {:>9} {:>9} {:>9}",
            "rank", "staff", "org", "score", "records", "revealed", "exclusive", "holdings"
        );
        for (i, s) in self.suspects.iter().enumerate() {
            let _ = writeln!(
                out,
                "{:>4}  {:<24} {:<16} {:>9.1} {:>8} {:>9} {:>9} {:>9}",
                i + 1,
                s.staff,
                s.org,
                s.score,
                s.records,
                s.records_revealed,
                s.exclusive_records,
                s.holdings
            );
        }
        if let Some(ring) = &self.ring {
            let _ = writeln!(
                out,
                "together, {} explain {:.0}% of the matched customers: {}",
                ring.members.len(),
                ring.fraction_explained * 100.0,
                ring.members.join(", ")
            );
        }
        out
    }
}

/// A finished trace: the report, and per listed suspect the ledger indexes of their
/// accesses to leaked customers (what an evidence bundle proves).
#[derive(Clone, Debug)]
pub struct Trace {
    /// The report.
    pub report: TraceReport,
    /// Per suspect of the report, in its order: the ledger indexes behind it.
    pub entries: Vec<Vec<u64>>,
}

impl Trace {
    /// The subjects of an evidence bundle (`custos_ledger::build_bundle`) for the first
    /// `top` suspects with ledger entries: staff id, what the entries show, the indexes.
    pub fn evidence_subjects(&self, top: usize) -> Vec<(String, String, Vec<u64>)> {
        self.report
            .suspects
            .iter()
            .zip(&self.entries)
            .take(top)
            .filter(|(_, entries)| !entries.is_empty())
            .map(|(s, entries)| {
                (
                    s.staff.clone(),
                    format!(
                        "viewed or revealed {} of the {} customers of a leaked list ({} revealed)",
                        s.records, self.report.customers, s.records_revealed
                    ),
                    entries.clone(),
                )
            })
            .collect()
    }
}

/// A step of a trace done, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The file was read: this many rows with an identifier.
    Read(usize),
    /// The rows were matched: this many distinct customers.
    Matched(usize),
    /// The access index was read: this many (person, customer) pairs exposed.
    Gathered(usize),
    /// The suspects were ranked.
    Ranked,
}

/// The steps of a trace, in order (for a progress bar's length).
pub const STEPS: u64 = 4;

/// Traces a leaked file: which staff it most likely came from. `progress` hears of each
/// [`Step`] as it is done.
///
/// # Errors
///
/// [`TraceError`]: an unreadable file, a bad window or parameter, or a store failure.
pub async fn trace(
    store: &Store,
    keyring: &Keyring,
    file: &[u8],
    options: &TraceOptions,
    progress: &(dyn Fn(Step) + Sync),
) -> Result<Trace, TraceError> {
    if options.since >= options.until {
        return Err(TraceError::BadWindow);
    }
    let leak = read_leak(file, &options.default_region)?;
    progress(Step::Read(leak.rows.len()));
    let matched = match_rows(store, keyring, &leak.rows).await?;
    progress(Step::Matched(matched.customers.len()));
    let vault = store.count_customers().await?;
    let mut params = Params::new(vault.max(matched.customers.len() as u64).max(1));
    params.p_elsewhere = options.p_elsewhere;

    let marks: HashSet<String> = store.canary_marks().await?.into_iter().collect();
    let holders: HashSet<String> = store.canary_holder_marks().await?.into_iter().collect();
    let customers: Vec<LeakedCustomer> = matched
        .customers
        .iter()
        .map(|id| LeakedCustomer {
            canary: marks.contains(&keyring.canary_mark(id)),
        })
        .collect();
    let customer_key: HashMap<&str, u32> = matched
        .customers
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i as u32))
        .collect();

    let found = store
        .exposures(&matched.customers, options.since, options.until)
        .await?;
    let mut staff_ids = Interner::default();
    // Each (person, customer) summary stands for its first and last exposure: ranking
    // reads per pair only whether any was a reveal and the earliest and latest times.
    let mut exposures = Vec::with_capacity(found.len() * 2);
    for e in &found {
        let Some(&customer) = customer_key.get(e.customer_id.as_str()) else {
            continue;
        };
        let staff = staff_ids.intern(&e.staff_id);
        let kind = if e.reveal {
            ExposureKind::Reveal
        } else {
            ExposureKind::View
        };
        exposures.push(Exposure {
            staff,
            customer,
            kind,
            at: e.first_at,
        });
        if e.last_at != e.first_at {
            exposures.push(Exposure {
                staff,
                customer,
                kind,
                at: e.last_at,
            });
        }
    }
    let people = staff_ids.names().len();
    let mut staff: Vec<Staff> = vec![
        Staff {
            org: String::new(),
            holdings_weight: 0.0,
        };
        people
    ];
    let mut holdings = vec![0u64; people];
    for h in store.holdings(staff_ids.names(), options.until).await? {
        if let Some(k) = staff_ids.get(&h.staff_id) {
            let s = &mut staff[k as usize];
            s.org = h.org;
            s.holdings_weight = params.holdings_weight(h.revealed, h.viewed_only);
            holdings[k as usize] = h.revealed + h.viewed_only;
        }
    }
    progress(Step::Gathered(found.len()));

    let ranked = rank::rank(&customers, &exposures, &staff, &params)?;
    progress(Step::Ranked);
    let name = |k: u32| staff_ids.names()[k as usize].clone();
    let ring_report = |ring: &rank::Ring| RingReport {
        org: ring.org.clone(),
        members: ring.members.iter().map(|m| name(m.staff)).collect(),
        records_explained: ring.records_explained,
        fraction_explained: ring.fraction_explained,
    };
    let listed: Vec<&rank::Suspect> = ranked.suspects.iter().take(options.top).collect();
    let report = TraceReport {
        rows: leak.rows.len() as u64 + leak.rows_without_identifier,
        matched: matched.rows_matched + matched.rows_ambiguous,
        unmatched: matched.rows_unmatched + leak.rows_without_identifier,
        ambiguous: matched.rows_ambiguous,
        name_only: leak.rows_name_only,
        customers: matched.customers.len(),
        layout: leak.layout,
        since: options.since,
        until: options.until,
        canaries: ranked
            .canaries
            .iter()
            .map(|c| {
                let customer = &matched.customers[c.customer as usize];
                CanaryReport {
                    customer: customer.clone(),
                    exposed: c
                        .exposed
                        .iter()
                        .map(|e| {
                            let staff = name(e.staff);
                            CanaryExposure {
                                allocated: holders
                                    .contains(&keyring.canary_holder_mark(customer, &staff)),
                                staff,
                                org: e.org.clone(),
                                kind: e.kind,
                                first_at: e.first_at,
                            }
                        })
                        .collect(),
                }
            })
            .collect(),
        suspects: listed
            .iter()
            .map(|s| SuspectReport {
                staff: name(s.staff),
                org: s.org.clone(),
                score: s.score,
                records: s.records_revealed + s.records_viewed,
                records_revealed: s.records_revealed,
                exclusive_records: s.exclusive_records,
                pgm_guilt: s.pgm_guilt,
                holdings: holdings[s.staff as usize],
                first_access: s.first_access,
                last_access: s.last_access,
            })
            .collect(),
        ring: (!ranked.ring.members.is_empty()).then(|| ring_report(&ranked.ring)),
        org_rings: ranked.org_rings.iter().map(ring_report).collect(),
    };
    // The evidence: only the listed suspects' ledger entries are read, each person's
    // accesses in the window kept if they were of a leaked customer.
    let mut entries = Vec::with_capacity(listed.len());
    for s in &listed {
        let seqs = store
            .exposure_seqs(&name(s.staff), options.since, options.until)
            .await?;
        entries.push(
            seqs.into_iter()
                .filter(|(_, customer)| customer_key.contains_key(customer.as_str()))
                .map(|(seq, _)| u64::try_from(seq).unwrap_or(0))
                .collect(),
        );
    }
    Ok(Trace { report, entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds_read_in_three_forms() {
        assert_eq!(parse_time("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(parse_time("1970-01-01").unwrap(), 0);
        assert_eq!(parse_time("2026-11-30").unwrap(), 1_795_996_800_000);
        assert_eq!(
            parse_time(" 2026-11-30T08:30:15Z ").unwrap(),
            1_796_027_415_000
        );
        // Leap days: 2024 has one, 2100 does not, 2000 does.
        assert_eq!(parse_time("2024-02-29").unwrap(), 1_709_164_800_000);
        assert_eq!(parse_time("2000-02-29").unwrap(), 951_782_400_000);
        assert_eq!(
            parse_time("2024-03-01").unwrap() - parse_time("2024-02-28").unwrap(),
            2 * 86_400_000
        );
    }

    #[test]
    fn anything_else_is_a_bad_time() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2100-02-29",
            "2026-1-5",
            "2026-11-30T24:00:00Z",
            "2026-11-30T08:30:15",
            "2026-11-30T08:30Z",
            "2026-11-30 08:30:15Z",
            "-5",
            "99999999999999999999",
            "２０２６-11-30",
        ] {
            let e = parse_time(bad).unwrap_err();
            assert_eq!(e.code(), "trace_bad_time", "{bad:?}");
        }
    }
}
