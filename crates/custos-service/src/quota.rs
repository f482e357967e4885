//! Harvest ceilings per person: distinct customers a day, field reveals an hour and
//! searches a day, over sliding windows.
//!
//! Exactness under concurrency comes from checking and charging in one critical section:
//! a request either takes its whole charge or none of it, so N parallel requests against
//! a ceiling of K succeed exactly min(N, K) times. A charge is never given back: a
//! request that passed the ceiling but then failed still counted as an attempt.
//!
//! Where the counters live depends on the store:
//! - **SQLite** (one node): in memory, rebuilt at start from the allowed access records
//!   of the last day ([`Quotas::replay`]), so they survive a restart;
//! - **PostgreSQL** (any number of nodes): in the database, where each charge is checked
//!   and taken under the person's lock (`custos_store::SharedQuotas`), so a ceiling
//!   holds exactly however a person's requests spread over the nodes. The decision is
//!   the same code ([`Usage::take`]), run on the charges read under that lock.
//!
//! # Restrictions
//!
//! The detector's restrictions ([`Restriction`]) are held here too, per person, and
//! consulted in memory by every check: while a `lower_quota` restriction is in force at
//! the request's time, every ceiling is the configured share of its limit
//! ([`lowered`]); a `step_up` or `lower_quota` restriction also makes reveals ask for a
//! step-up justification ([`Quotas::restriction`], checked by the reveal handler). They
//! are keyed by the alert that imposed them: imposing one again replaces it, dismissing
//! the alert lifts it ([`Quotas::lift`]). Like the counters they are rebuilt at start,
//! from the alerts (see `App::start`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use custos_detector::{Restriction, RestrictionKind};
use custos_store::{QuotaCharge, SharedQuotas, StoreError};

use crate::config::Quota;

use custos_types::calendar::{DAY_MS, HOUR_MS};

/// What one request would take from its caller's ceilings.
#[derive(Clone, Copy, Debug)]
pub enum Charge<'a> {
    /// Opening a customer's record, revealing `reveals` fields of it (0 for a view).
    Customer {
        /// The customer's id.
        id: &'a str,
        /// Number of fields revealed in full.
        reveals: u32,
    },
    /// One search.
    Search,
}

impl Charge<'_> {
    /// The stored form of this charge, taken at `at`.
    fn stored(&self, at: i64) -> QuotaCharge {
        match *self {
            Charge::Customer { id, reveals } => QuotaCharge {
                at,
                customer_id: Some(id.to_owned()),
                reveals: i32::try_from(reveals).unwrap_or(i32::MAX),
                search: false,
            },
            Charge::Search => QuotaCharge {
                at,
                customer_id: None,
                reveals: 0,
                search: true,
            },
        }
    }

    /// The charge a stored one was (`None` for a row that names no customer and is no
    /// search, which the gateway never stores).
    fn of_stored(stored: &QuotaCharge) -> Option<Charge<'_>> {
        match (&stored.customer_id, stored.search) {
            (_, true) => Some(Charge::Search),
            (Some(id), false) => Some(Charge::Customer {
                id,
                reveals: u32::try_from(stored.reveals).unwrap_or(0),
            }),
            (None, false) => None,
        }
    }
}

/// Why a charge was not taken.
#[derive(Debug)]
pub enum ChargeError {
    /// A ceiling would be crossed.
    Exceeded(Exceeded),
    /// The shared counters could not be read or written (fail closed).
    Store(StoreError),
}

/// A ceiling the request would cross, and when it admits the request again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// Which ceiling: `customers_per_day`, `reveals_per_hour` or `searches_per_day`.
    pub which: &'static str,
    /// The length of its sliding window, seconds.
    pub window_secs: u64,
    /// Seconds until enough of the window has passed.
    pub retry_after_secs: u64,
    /// The end of the `lower_quota` restriction the ceiling was lowered by, unix
    /// milliseconds; None when the normal ceiling applied.
    pub lowered_until: Option<i64>,
}

/// A restriction in force on a person at some time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Active {
    /// The strongest kind in force.
    pub kind: RestrictionKind,
    /// When the last restriction of that kind ends, unix milliseconds.
    pub until_ms: i64,
}

/// One restriction held for a person.
#[derive(Clone, Debug)]
struct Held {
    alert_id: String,
    kind: RestrictionKind,
    until_ms: i64,
}

/// `limits` lowered to `share` of each ceiling, rounded down (an absent limit stays
/// absent: there is nothing to take a share of).
pub fn lowered(limits: &Quota, share: f64) -> Quota {
    // `share` is validated to 0..=1 at configuration load; clamp anyway so that the
    // float-to-integer conversion stays within the limit.
    let share = if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let part = |max: Option<u32>| max.map(|m| (f64::from(m) * share).floor() as u32);
    Quota {
        customers_per_day: part(limits.customers_per_day),
        reveals_per_hour: part(limits.reveals_per_hour),
        searches_per_day: part(limits.searches_per_day),
    }
}

/// What is left of each ceiling, for display.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Remaining {
    /// Distinct customers left in the 24-hour window, if limited.
    pub customers_per_day: Option<u32>,
    /// Field reveals left in the one-hour window, if limited.
    pub reveals_per_hour: Option<u32>,
    /// Searches left in the 24-hour window, if limited.
    pub searches_per_day: Option<u32>,
}

#[derive(Default)]
struct Usage {
    /// Customer id → when it was last opened inside the current window: a customer
    /// counts for 24 hours from their latest opening ("distinct customers opened in any
    /// 24 hours"), not from the first.
    customers: HashMap<String, i64>,
    /// One entry per revealed field, oldest first.
    reveals: VecDeque<i64>,
    /// One entry per search, oldest first.
    searches: VecDeque<i64>,
    /// The latest time this person's counters were charged or asked at: windows are
    /// judged at no earlier time, so a clock that goes back (a simulated one moved by
    /// the caller, or a stepped system clock) never reopens a window.
    latest: i64,
}

impl Usage {
    /// `now`, or the latest time seen if that is later; remembers it.
    fn clock(&mut self, now: i64) -> i64 {
        self.latest = self.latest.max(now);
        self.latest
    }

    /// The usage that `charges` (oldest first) add up to.
    fn of(charges: &[QuotaCharge]) -> Usage {
        let mut usage = Usage::default();
        for stored in charges {
            if let Some(charge) = Charge::of_stored(stored) {
                usage.count(charge, stored.at);
            }
        }
        usage
    }

    /// Counts `charge` at `at`, without checking any ceiling.
    fn count(&mut self, charge: Charge<'_>, at: i64) {
        self.clock(at);
        match charge {
            Charge::Customer { id, reveals } => {
                let last = self.customers.entry(id.to_owned()).or_insert(at);
                *last = (*last).max(at);
                self.reveals
                    .extend(std::iter::repeat_n(at, reveals as usize));
            }
            Charge::Search => self.searches.push_back(at),
        }
    }

    /// Checks `charge` against `limits` at `now` and takes it, all or nothing; the time
    /// it was taken at (`now`, or a later time this person was already seen at).
    fn take(
        &mut self,
        limits: &Quota,
        charge: Charge<'_>,
        now: i64,
        lowered_until: Option<i64>,
    ) -> Result<i64, Exceeded> {
        let now = self.clock(now);
        self.expire(now);
        // The ceiling `which` of a `window_ms` window, which admits again at `free_at`.
        let exceeded = |which, free_at, window_ms: i64| Exceeded {
            which,
            window_secs: u64::try_from(window_ms / 1000).unwrap_or(0),
            retry_after_secs: wait_secs(free_at, now, window_ms),
            lowered_until,
        };
        match charge {
            Charge::Customer { id, reveals } => {
                let new_customer = !self.customers.contains_key(id);
                if let Some(max) = limits.customers_per_day
                    && new_customer
                    && self.customers.len() >= max as usize
                {
                    // Enough customers must leave the window to make room for one more:
                    // more than the oldest when a lowered ceiling is below the count.
                    let mut times: Vec<i64> = self.customers.values().copied().collect();
                    times.sort_unstable();
                    let free_at = times
                        .get(times.len() - max as usize)
                        .map_or(now + DAY_MS, |t| t + DAY_MS);
                    return Err(exceeded("customers_per_day", free_at, DAY_MS));
                }
                if let Some(max) = limits.reveals_per_hour
                    && reveals > 0
                    && self.reveals.len() + reveals as usize > max as usize
                {
                    // The window must drop enough old reveals to make room for this one.
                    let free_at = (self.reveals.len() + reveals as usize)
                        .checked_sub(max as usize + 1)
                        .and_then(|i| self.reveals.get(i))
                        .map_or(now + HOUR_MS, |t| t + HOUR_MS);
                    return Err(exceeded("reveals_per_hour", free_at, HOUR_MS));
                }
            }
            Charge::Search => {
                if let Some(max) = limits.searches_per_day
                    && self.searches.len() >= max as usize
                {
                    let free_at = self
                        .searches
                        .get(self.searches.len() - max as usize)
                        .map_or(now + DAY_MS, |t| t + DAY_MS);
                    return Err(exceeded("searches_per_day", free_at, DAY_MS));
                }
            }
        }
        self.count(charge, now);
        Ok(now)
    }

    /// What remains of `limits` at `now`.
    fn remaining(&mut self, limits: &Quota, now: i64) -> Remaining {
        let now = self.clock(now);
        self.expire(now);
        let left = |max: Option<u32>, used: usize| {
            max.map(|m| m.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)))
        };
        Remaining {
            customers_per_day: left(limits.customers_per_day, self.customers.len()),
            reveals_per_hour: left(limits.reveals_per_hour, self.reveals.len()),
            searches_per_day: left(limits.searches_per_day, self.searches.len()),
        }
    }

    fn expire(&mut self, now: i64) {
        self.customers.retain(|_, first| *first > now - DAY_MS);
        while self.reveals.front().is_some_and(|t| *t <= now - HOUR_MS) {
            self.reveals.pop_front();
        }
        while self.searches.front().is_some_and(|t| *t <= now - DAY_MS) {
            self.searches.pop_front();
        }
    }
}

/// Per-person usage counters and restrictions.
pub struct Quotas {
    /// One node's counters (SQLite).
    usage: Mutex<HashMap<String, Usage>>,
    /// Every node's charges (PostgreSQL), used instead of `usage` when set.
    shared: Option<SharedQuotas>,
    /// Staff id → the restrictions imposed on them (expired ones are dropped when met).
    restrictions: Mutex<HashMap<String, Vec<Held>>>,
    /// The share of each ceiling left under a `lower_quota` restriction.
    lower_quota_share: f64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas::new(
            crate::config::Restrictions::default().lower_quota_share,
            None,
        )
    }
}

/// Seconds from `now` until `until_ms`, at least 1 and at most the window.
///
/// Concurrent requests take `now` before they queue for the lock, so a charge
/// stamped a few milliseconds after this request's `now` can already be in the
/// window; clamping keeps Retry-After within what the window can demand.
fn wait_secs(until_ms: i64, now: i64, window_ms: i64) -> u64 {
    let ms = (until_ms - now).clamp(1, window_ms);
    u64::try_from((ms + 999) / 1000).unwrap_or(1)
}

impl Quotas {
    /// No usage and no restrictions yet; a `lower_quota` restriction leaves
    /// `lower_quota_share` of each ceiling. With `shared`, charges are counted there.
    pub fn new(lower_quota_share: f64, shared: Option<SharedQuotas>) -> Quotas {
        Quotas {
            usage: Mutex::default(),
            shared,
            restrictions: Mutex::default(),
            lower_quota_share,
        }
    }

    /// Imposes `restriction` (replacing one imposed by the same alert).
    pub fn restrict(&self, restriction: Restriction) {
        let mut all = self.restrictions.lock().unwrap_or_else(|p| p.into_inner());
        let held = all.entry(restriction.staff_id).or_default();
        held.retain(|h| h.alert_id != restriction.alert_id);
        held.push(Held {
            alert_id: restriction.alert_id,
            kind: restriction.kind,
            until_ms: restriction.until_ms,
        });
    }

    /// Lifts the restriction imposed by alert `alert_id`; returns whether there was one.
    pub fn lift(&self, alert_id: &str) -> bool {
        let mut all = self.restrictions.lock().unwrap_or_else(|p| p.into_inner());
        let mut lifted = false;
        all.retain(|_, held| {
            let before = held.len();
            held.retain(|h| h.alert_id != alert_id);
            lifted |= held.len() < before;
            !held.is_empty()
        });
        lifted
    }

    /// The strongest restriction in force on `staff` at `now`, if any (with the latest
    /// end among those of that kind).
    pub fn restriction(&self, staff: &str, now: i64) -> Option<Active> {
        let mut all = self.restrictions.lock().unwrap_or_else(|p| p.into_inner());
        let held = all.get_mut(staff)?;
        held.retain(|h| h.until_ms > now);
        let active = held
            .iter()
            .map(|h| (h.kind, h.until_ms))
            .max()
            .map(|(kind, until_ms)| Active { kind, until_ms });
        if held.is_empty() {
            all.remove(staff);
        }
        active
    }

    /// The ceilings that apply to `staff` at `now`: `limits`, or their share under a
    /// `lower_quota` restriction (with its end).
    pub fn effective(&self, staff: &str, limits: &Quota, now: i64) -> (Quota, Option<i64>) {
        match self.restriction(staff, now) {
            Some(Active {
                kind: RestrictionKind::LowerQuota,
                until_ms,
            }) => (lowered(limits, self.lower_quota_share), Some(until_ms)),
            _ => (limits.clone(), None),
        }
    }

    /// Checks `charge` against `limits` (lowered while a `lower_quota` restriction is in
    /// force at `now`) and takes it, all or nothing.
    pub async fn try_charge(
        &self,
        staff: &str,
        limits: &Quota,
        charge: Charge<'_>,
        now: i64,
    ) -> Result<(), ChargeError> {
        let (limits, lowered_until) = self.effective(staff, limits, now);
        let Some(shared) = &self.shared else {
            let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
            let usage = all.entry(staff.to_owned()).or_default();
            return usage
                .take(&limits, charge, now, lowered_until)
                .map(|_| ())
                .map_err(ChargeError::Exceeded);
        };
        // Every admitted charge is stored, a view of a customer already in the window
        // too: it moves their time on. (The store keeps only a customer's latest view,
        // so a person's stored charges stay bounded by their ceilings, however often
        // they open one record.)
        let decide = |charges: &[QuotaCharge]| {
            let mut usage = Usage::of(charges);
            let at = usage.take(&limits, charge, now, lowered_until)?;
            Ok(Some(charge.stored(at)))
        };
        match shared.charge(staff, now - DAY_MS, decide).await {
            Ok(taken) => taken.map_err(ChargeError::Exceeded),
            Err(e) => Err(ChargeError::Store(e)),
        }
    }

    /// Moves `staff`'s clock to `at`, refusing a time more than `tolerance_ms` before
    /// the latest one seen for them (returned as the error). For servers whose requests
    /// carry their own (simulated) time: a caller may not go back to a window they
    /// already used up, and records cannot claim an hour the caller has left.
    pub fn advance_clock(&self, staff: &str, at: i64, tolerance_ms: i64) -> Result<(), i64> {
        let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let usage = all.entry(staff.to_owned()).or_default();
        if at < usage.latest.saturating_sub(tolerance_ms) {
            return Err(usage.latest);
        }
        usage.clock(at);
        Ok(())
    }

    /// Counts a charge that was allowed in the past (rebuilding after a restart).
    /// Records must be replayed oldest first.
    pub fn replay(&self, staff: &str, charge: Charge<'_>, at: i64) {
        let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        all.entry(staff.to_owned()).or_default().count(charge, at);
    }

    /// Whether the counters are the database's (nothing to replay at start).
    pub fn are_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// What remains of `limits` (lowered while a `lower_quota` restriction is in force)
    /// for `staff` at `now`.
    pub async fn remaining(
        &self,
        staff: &str,
        limits: &Quota,
        now: i64,
    ) -> Result<Remaining, StoreError> {
        let (limits, _) = self.effective(staff, limits, now);
        match &self.shared {
            Some(shared) => {
                let charges = shared.charges(staff, now - DAY_MS).await?;
                Ok(Usage::of(&charges).remaining(&limits, now))
            }
            None => {
                let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
                Ok(all
                    .entry(staff.to_owned())
                    .or_default()
                    .remaining(&limits, now))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exceeded(e: ChargeError) -> Exceeded {
        match e {
            ChargeError::Exceeded(e) => e,
            ChargeError::Store(e) => panic!("{e}"),
        }
    }

    fn limits() -> Quota {
        Quota {
            customers_per_day: Some(2),
            reveals_per_hour: Some(3),
            searches_per_day: Some(1),
        }
    }

    #[tokio::test]
    async fn distinct_customers_count_once() {
        let q = Quotas::default();
        let view = |id| Charge::Customer { id, reveals: 0 };
        assert!(q.try_charge("s", &limits(), view("a"), 0).await.is_ok());
        assert!(q.try_charge("s", &limits(), view("a"), 1).await.is_ok());
        assert!(q.try_charge("s", &limits(), view("b"), 2).await.is_ok());
        let e = q
            .try_charge("s", &limits(), view("c"), 3)
            .await
            .map_err(exceeded)
            .unwrap_err();
        assert_eq!(e.which, "customers_per_day");
        assert_eq!((e.window_secs, e.retry_after_secs), (86_400, 86_400));
        // After a day the first customer leaves the window.
        assert!(
            q.try_charge("s", &limits(), view("c"), DAY_MS + 1)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn reveals_are_all_or_nothing() {
        let q = Quotas::default();
        let reveal = |n| Charge::Customer {
            id: "a",
            reveals: n,
        };
        assert!(q.try_charge("s", &limits(), reveal(2), 0).await.is_ok());
        let e = q
            .try_charge("s", &limits(), reveal(2), 10)
            .await
            .map_err(exceeded)
            .unwrap_err();
        assert_eq!((e.which, e.window_secs), ("reveals_per_hour", 3600));
        assert!(q.try_charge("s", &limits(), reveal(1), 20).await.is_ok());
        assert_eq!(
            q.remaining("s", &limits(), 30)
                .await
                .unwrap()
                .reveals_per_hour,
            Some(0)
        );
        assert_eq!(
            q.remaining("s", &limits(), HOUR_MS + 21)
                .await
                .unwrap()
                .reveals_per_hour,
            Some(3)
        );
    }

    #[tokio::test]
    async fn retry_after_stays_within_the_window_when_charges_arrive_out_of_order() {
        // A request that read the clock at 100 reaches the lock after one stamped 105.
        let q = Quotas::default();
        let reveal = Charge::Customer {
            id: "a",
            reveals: 3,
        };
        assert!(q.try_charge("s", &limits(), reveal, 105).await.is_ok());
        let e = q
            .try_charge("s", &limits(), reveal, 100)
            .await
            .map_err(exceeded)
            .unwrap_err();
        assert_eq!(e.retry_after_secs, 3600);
    }

    /// Regression (found by tests/quota_props.rs): a customer counted from their first
    /// opening only. With a ceiling of 2, a person who opened `a` and `b` at 0 and `a`
    /// again at 20 h could open two new customers a day after 0, while `a` (20 h) was
    /// still among the customers opened in the last 24 hours: three within one day.
    /// The ceiling is "distinct customers opened in any 24 hours": `a` counts until a
    /// day after its latest opening.
    #[tokio::test]
    async fn a_customer_opened_again_counts_for_a_day_from_then() {
        let q = Quotas::default();
        let view = |id| Charge::Customer { id, reveals: 0 };
        assert!(q.try_charge("s", &limits(), view("a"), 0).await.is_ok());
        assert!(q.try_charge("s", &limits(), view("b"), 0).await.is_ok());
        assert!(
            q.try_charge("s", &limits(), view("a"), 20 * HOUR_MS)
                .await
                .is_ok()
        );
        // b has left the window, a has not: room for one new customer only.
        assert!(
            q.try_charge("s", &limits(), view("c"), DAY_MS)
                .await
                .is_ok()
        );
        let e = q
            .try_charge("s", &limits(), view("d"), DAY_MS + 1)
            .await
            .map_err(exceeded)
            .unwrap_err();
        assert_eq!(e.which, "customers_per_day");
        // Until a day after a's latest opening: 20 h less the millisecond, rounded up.
        assert_eq!(e.retry_after_secs, 20 * 3600);
        assert!(
            q.try_charge("s", &limits(), view("d"), 20 * HOUR_MS + DAY_MS)
                .await
                .is_ok()
        );
    }

    /// The shared counters decide on stored charges: those add up exactly as the charges
    /// counted in memory do.
    #[tokio::test]
    async fn stored_charges_add_up_as_counted_ones() {
        let charges = [
            Charge::Customer {
                id: "a",
                reveals: 2,
            },
            Charge::Customer {
                id: "b",
                reveals: 0,
            },
            Charge::Customer {
                id: "a",
                reveals: 1,
            },
            Charge::Search,
        ];
        let q = Quotas::default();
        let stored: Vec<QuotaCharge> = charges
            .iter()
            .zip(0..)
            .map(|(c, at)| c.stored(at))
            .collect();
        for (c, at) in charges.iter().zip(0..) {
            q.replay("s", *c, at);
        }
        let remaining = Usage::of(&stored).remaining(&limits(), 10);
        assert_eq!(remaining, q.remaining("s", &limits(), 10).await.unwrap());
        assert_eq!(
            (
                remaining.customers_per_day,
                remaining.reveals_per_hour,
                remaining.searches_per_day
            ),
            (Some(0), Some(0), Some(0))
        );
    }

    #[tokio::test]
    async fn replay_restores_usage() {
        let q = Quotas::default();
        q.replay("s", Charge::Search, 5);
        let e = q
            .try_charge("s", &limits(), Charge::Search, 10)
            .await
            .map_err(exceeded)
            .unwrap_err();
        assert_eq!(e.which, "searches_per_day");
        assert!(
            q.try_charge("t", &limits(), Charge::Search, 10)
                .await
                .is_ok()
        );
    }

    fn restriction(kind: RestrictionKind, alert: &str, until_ms: i64) -> Restriction {
        Restriction {
            staff_id: "s".into(),
            kind,
            until_ms,
            alert_id: alert.into(),
        }
    }

    #[tokio::test]
    async fn a_share_of_each_limit_rounded_down() {
        let agent = Quota {
            customers_per_day: Some(80),
            reveals_per_hour: Some(21),
            searches_per_day: None,
        };
        let quarter = lowered(&agent, 0.25);
        assert_eq!(
            quarter,
            Quota {
                customers_per_day: Some(20),
                reveals_per_hour: Some(5),
                searches_per_day: None,
            }
        );
        assert_eq!(lowered(&agent, 0.0).reveals_per_hour, Some(0));
        assert_eq!(lowered(&agent, 1.0), agent);
        // Out-of-range shares (refused at configuration load) never raise a limit.
        assert_eq!(lowered(&agent, 7.0), agent);
        assert_eq!(lowered(&agent, f64::NAN).customers_per_day, Some(0));
    }

    #[tokio::test]
    async fn a_lower_quota_restriction_lowers_limits_until_it_expires() {
        let q = Quotas::new(0.5, None);
        let limits = Quota {
            customers_per_day: Some(10),
            reveals_per_hour: Some(4),
            searches_per_day: Some(3),
        };
        let reveal = Charge::Customer {
            id: "a",
            reveals: 1,
        };
        assert!(q.try_charge("s", &limits, reveal, 0).await.is_ok());
        q.restrict(restriction(
            RestrictionKind::LowerQuota,
            "alr_1",
            10 * HOUR_MS,
        ));
        assert_eq!(
            q.restriction("s", 1),
            Some(Active {
                kind: RestrictionKind::LowerQuota,
                until_ms: 10 * HOUR_MS
            })
        );
        // Half of each ceiling: 2 reveals an hour (one used), 5 customers, 1 search.
        let left = q.remaining("s", &limits, 1).await.unwrap();
        assert_eq!(
            (
                left.reveals_per_hour,
                left.customers_per_day,
                left.searches_per_day
            ),
            (Some(1), Some(4), Some(1))
        );
        assert!(q.try_charge("s", &limits, reveal, 2).await.is_ok());
        let e = q
            .try_charge("s", &limits, reveal, 3)
            .await
            .map_err(exceeded)
            .unwrap_err();
        assert_eq!(e.which, "reveals_per_hour");
        assert_eq!(e.lowered_until, Some(10 * HOUR_MS));
        // Others are not concerned.
        assert_eq!(q.restriction("t", 3), None);
        assert!(q.try_charge("t", &limits, reveal, 3).await.is_ok());
        // One search under the lowered ceiling (normally three).
        assert!(q.try_charge("s", &limits, Charge::Search, 4).await.is_ok());
        assert!(q.try_charge("s", &limits, Charge::Search, 5).await.is_err());
        // When the restriction ends the normal ceilings apply again, with the usage
        // counted all along.
        let after = 10 * HOUR_MS;
        assert_eq!(q.restriction("s", after), None);
        q.replay(
            "s",
            Charge::Customer {
                id: "a",
                reveals: 2,
            },
            after - 1,
        );
        assert_eq!(
            q.remaining("s", &limits, after)
                .await
                .unwrap()
                .reveals_per_hour,
            Some(2)
        );
        let e = q
            .try_charge(
                "s",
                &limits,
                Charge::Customer {
                    id: "a",
                    reveals: 3,
                },
                after,
            )
            .await;
        assert_eq!(e.map_err(exceeded).unwrap_err().lowered_until, None);
    }

    /// Regression (found by tests/quota_props.rs): under a lowered ceiling a person may
    /// hold more than it allows; Retry-After named the time the oldest charge leaves
    /// the window, when one more still refused. It names the time enough have left.
    #[tokio::test]
    async fn retry_after_under_a_lowered_ceiling_waits_for_enough_to_leave() {
        let q = Quotas::new(0.5, None);
        let limits = Quota {
            customers_per_day: Some(4),
            reveals_per_hour: None,
            searches_per_day: Some(4),
        };
        let view = |id| Charge::Customer { id, reveals: 0 };
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            let at = i as i64 * HOUR_MS;
            assert!(q.try_charge("s", &limits, view(id), at).await.is_ok());
            assert!(q.try_charge("s", &limits, Charge::Search, at).await.is_ok());
        }
        // Three of each held, two allowed now: two must leave, the second at 1 h.
        q.restrict(restriction(
            RestrictionKind::LowerQuota,
            "alr_1",
            3 * DAY_MS,
        ));
        let now = 3 * HOUR_MS;
        for charge in [view("d"), Charge::Search] {
            let e = q
                .try_charge("s", &limits, charge, now)
                .await
                .map_err(exceeded)
                .unwrap_err();
            assert_eq!(e.retry_after_secs, 22 * 3600, "{}", e.which);
        }
        assert!(
            q.try_charge("s", &limits, view("d"), HOUR_MS + DAY_MS)
                .await
                .is_ok()
        );
        assert!(
            q.try_charge("s", &limits, Charge::Search, HOUR_MS + DAY_MS)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn step_up_keeps_limits_and_dismissal_lifts() {
        let q = Quotas::default();
        q.restrict(restriction(RestrictionKind::StepUp, "alr_1", 100));
        assert_eq!(
            q.remaining("s", &limits(), 0).await.unwrap(),
            q.remaining("t", &limits(), 0).await.unwrap()
        );
        assert_eq!(
            q.restriction("s", 0).map(|a| a.kind),
            Some(RestrictionKind::StepUp)
        );
        // The stronger restriction wins while both are in force.
        q.restrict(restriction(RestrictionKind::LowerQuota, "alr_2", 50));
        assert_eq!(
            q.restriction("s", 10),
            Some(Active {
                kind: RestrictionKind::LowerQuota,
                until_ms: 50
            })
        );
        assert_eq!(
            q.remaining("s", &limits(), 10)
                .await
                .unwrap()
                .reveals_per_hour,
            Some(0)
        );
        // Imposing it again (a replay) replaces it; dismissing its alert lifts it.
        q.restrict(restriction(RestrictionKind::LowerQuota, "alr_2", 60));
        assert_eq!(q.restriction("s", 55).map(|a| a.until_ms), Some(60));
        assert!(q.lift("alr_2"));
        assert!(!q.lift("alr_2"));
        assert_eq!(
            q.restriction("s", 10).map(|a| a.kind),
            Some(RestrictionKind::StepUp)
        );
        assert_eq!(
            q.remaining("s", &limits(), 10)
                .await
                .unwrap()
                .reveals_per_hour,
            Some(3)
        );
        assert_eq!(q.restriction("s", 100), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_charges_are_exact() {
        let q = std::sync::Arc::new(Quotas::default());
        let limits = Quota {
            reveals_per_hour: Some(50),
            ..Quota::default()
        };
        let reveal = Charge::Customer {
            id: "a",
            reveals: 1,
        };
        let tasks: Vec<_> = (0..1000)
            .map(|_| {
                let (q, limits) = (q.clone(), limits.clone());
                tokio::spawn(async move { q.try_charge("s", &limits, reveal, 0).await.is_ok() })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            ok += usize::from(t.await.unwrap());
        }
        assert_eq!(ok, 50);
    }
}
