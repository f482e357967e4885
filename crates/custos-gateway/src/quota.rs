//! Harvest ceilings per person: distinct customers a day, field reveals an hour and
//! searches a day, over sliding windows.
//!
//! Exactness under concurrency comes from checking and charging in one critical section:
//! a request either takes its whole charge or none of it, so N parallel requests against
//! a ceiling of K succeed exactly min(N, K) times. A charge is never given back: a
//! request that passed the ceiling but then failed still counted as an attempt.
//!
//! The counters live in memory and are rebuilt at start from the allowed access records
//! of the last day ([`Quotas::replay`]), so they survive a restart. With several gateway
//! nodes each node counts only what it served (see the issue notes).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::config::Quota;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

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

/// A ceiling the request would cross, and when it admits the request again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    /// Which ceiling: `customers_per_day`, `reveals_per_hour` or `searches_per_day`.
    pub which: &'static str,
    /// Seconds until enough of the window has passed.
    pub retry_after_secs: u64,
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
    /// Customer id → when it was first opened inside the current window.
    customers: HashMap<String, i64>,
    /// One entry per revealed field, oldest first.
    reveals: VecDeque<i64>,
    /// One entry per search, oldest first.
    searches: VecDeque<i64>,
}

impl Usage {
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

/// Per-person usage counters.
#[derive(Default)]
pub struct Quotas {
    usage: Mutex<HashMap<String, Usage>>,
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
    /// Checks `charge` against `limits` and takes it, all or nothing.
    pub fn try_charge(
        &self,
        staff: &str,
        limits: &Quota,
        charge: Charge<'_>,
        now: i64,
    ) -> Result<(), Exceeded> {
        let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let usage = all.entry(staff.to_owned()).or_default();
        usage.expire(now);
        match charge {
            Charge::Customer { id, reveals } => {
                let new_customer = !usage.customers.contains_key(id);
                if let Some(max) = limits.customers_per_day
                    && new_customer
                    && usage.customers.len() >= max as usize
                {
                    let oldest = usage.customers.values().min().copied().unwrap_or(now);
                    return Err(Exceeded {
                        which: "customers_per_day",
                        retry_after_secs: wait_secs(oldest + DAY_MS, now, DAY_MS),
                    });
                }
                if let Some(max) = limits.reveals_per_hour
                    && reveals > 0
                    && usage.reveals.len() + reveals as usize > max as usize
                {
                    // The window must drop enough old reveals to make room for this one.
                    let free_at = (usage.reveals.len() + reveals as usize)
                        .checked_sub(max as usize + 1)
                        .and_then(|i| usage.reveals.get(i))
                        .map_or(now + HOUR_MS, |t| t + HOUR_MS);
                    return Err(Exceeded {
                        which: "reveals_per_hour",
                        retry_after_secs: wait_secs(free_at, now, HOUR_MS),
                    });
                }
                if new_customer {
                    usage.customers.insert(id.to_owned(), now);
                }
                usage
                    .reveals
                    .extend(std::iter::repeat_n(now, reveals as usize));
            }
            Charge::Search => {
                if let Some(max) = limits.searches_per_day
                    && usage.searches.len() >= max as usize
                {
                    let oldest = usage.searches.front().copied().unwrap_or(now);
                    return Err(Exceeded {
                        which: "searches_per_day",
                        retry_after_secs: wait_secs(oldest + DAY_MS, now, DAY_MS),
                    });
                }
                usage.searches.push_back(now);
            }
        }
        Ok(())
    }

    /// Counts a charge that was allowed in the past (rebuilding after a restart).
    /// Records must be replayed oldest first.
    pub fn replay(&self, staff: &str, charge: Charge<'_>, at: i64) {
        let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let usage = all.entry(staff.to_owned()).or_default();
        match charge {
            Charge::Customer { id, reveals } => {
                usage.customers.entry(id.to_owned()).or_insert(at);
                usage
                    .reveals
                    .extend(std::iter::repeat_n(at, reveals as usize));
            }
            Charge::Search => usage.searches.push_back(at),
        }
    }

    /// What remains of `limits` for `staff` now.
    pub fn remaining(&self, staff: &str, limits: &Quota, now: i64) -> Remaining {
        let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let usage = all.entry(staff.to_owned()).or_default();
        usage.expire(now);
        let left = |max: Option<u32>, used: usize| {
            max.map(|m| m.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)))
        };
        Remaining {
            customers_per_day: left(limits.customers_per_day, usage.customers.len()),
            reveals_per_hour: left(limits.reveals_per_hour, usage.reveals.len()),
            searches_per_day: left(limits.searches_per_day, usage.searches.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Quota {
        Quota {
            customers_per_day: Some(2),
            reveals_per_hour: Some(3),
            searches_per_day: Some(1),
        }
    }

    #[test]
    fn distinct_customers_count_once() {
        let q = Quotas::default();
        let view = |id| Charge::Customer { id, reveals: 0 };
        assert!(q.try_charge("s", &limits(), view("a"), 0).is_ok());
        assert!(q.try_charge("s", &limits(), view("a"), 1).is_ok());
        assert!(q.try_charge("s", &limits(), view("b"), 2).is_ok());
        let e = q.try_charge("s", &limits(), view("c"), 3).unwrap_err();
        assert_eq!(e.which, "customers_per_day");
        assert_eq!(e.retry_after_secs, 86_400);
        // After a day the first customer leaves the window.
        assert!(q.try_charge("s", &limits(), view("c"), DAY_MS + 1).is_ok());
    }

    #[test]
    fn reveals_are_all_or_nothing() {
        let q = Quotas::default();
        let reveal = |n| Charge::Customer {
            id: "a",
            reveals: n,
        };
        assert!(q.try_charge("s", &limits(), reveal(2), 0).is_ok());
        let e = q.try_charge("s", &limits(), reveal(2), 10).unwrap_err();
        assert_eq!(e.which, "reveals_per_hour");
        assert!(q.try_charge("s", &limits(), reveal(1), 20).is_ok());
        assert_eq!(q.remaining("s", &limits(), 30).reveals_per_hour, Some(0));
        assert_eq!(
            q.remaining("s", &limits(), HOUR_MS + 21).reveals_per_hour,
            Some(3)
        );
    }

    #[test]
    fn retry_after_stays_within_the_window_when_charges_arrive_out_of_order() {
        // A request that read the clock at 100 reaches the lock after one stamped 105.
        let q = Quotas::default();
        let reveal = Charge::Customer {
            id: "a",
            reveals: 3,
        };
        assert!(q.try_charge("s", &limits(), reveal, 105).is_ok());
        let e = q.try_charge("s", &limits(), reveal, 100).unwrap_err();
        assert_eq!(e.retry_after_secs, 3600);
    }

    #[test]
    fn replay_restores_usage() {
        let q = Quotas::default();
        q.replay("s", Charge::Search, 5);
        let e = q
            .try_charge("s", &limits(), Charge::Search, 10)
            .unwrap_err();
        assert_eq!(e.which, "searches_per_day");
        assert!(q.try_charge("t", &limits(), Charge::Search, 10).is_ok());
    }

    #[test]
    fn concurrent_charges_are_exact() {
        let q = std::sync::Arc::new(Quotas::default());
        let limits = Quota {
            reveals_per_hour: Some(50),
            ..Quota::default()
        };
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let q = q.clone();
                let limits = limits.clone();
                std::thread::spawn(move || {
                    (0..125)
                        .filter(|_| {
                            q.try_charge(
                                "s",
                                &limits,
                                Charge::Customer {
                                    id: "a",
                                    reveals: 1,
                                },
                                0,
                            )
                            .is_ok()
                        })
                        .count()
                })
            })
            .collect();
        let ok: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(ok, 50);
    }
}
