//! Invariant: quota charges never exceed a ceiling, for any interleaving of requests by
//! several people over time, and a request is refused only when a ceiling requires it.
//!
//! The harvest ceiling is what bounds an insider who is allowed every single lookup:
//! so many distinct customers and searches in any 24 hours, so many revealed fields in
//! any hour, per person (README, "Configuration"; `Quota` in `src/config.rs`). Examples
//! check a few sequences; the windows slide, customers repeat, reveals come several at
//! a time, restrictions lower the ceilings for a while, the server restarts, and
//! requests race, so here random sequences of all of these are run through the real
//! `Quotas` and compared with a reference model written from the documented rules:
//!
//! * a person's **customers** in a window are the distinct customers of their admitted
//!   views and reveals in the last 24 hours; a request for a customer not among them is
//!   refused while they number `customers_per_day`;
//! * their **reveals** are the fields revealed by admitted requests in the last hour; a
//!   request revealing `r` fields is refused if `r` more would pass `reveals_per_hour`;
//! * their **searches** are the admitted searches of the last 24 hours, at most
//!   `searches_per_day`;
//! * a request takes all of its charge or none; the customers ceiling is checked first;
//! * while a `lower_quota` restriction is in force every ceiling is its share, rounded
//!   down (`lowered_until` then names the restriction's end); a `step_up` one lowers
//!   nothing;
//! * a refusal's `retry_after_secs` is the least whole number of seconds after which
//!   that ceiling admits the same request (under the same limits);
//! * `remaining` is each ceiling less its use;
//! * after a restart the counters are rebuilt (on one node from the admitted records of
//!   the last day, replayed; on PostgreSQL they are the database's) and decide alike;
//! * a clock that goes back never reopens a window: windows are judged at the latest
//!   time seen for the person.
//!
//! Both counter stores are run: in memory (one node on SQLite) and PostgreSQL (any number
//! of nodes), the latter on a fresh database made through `TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`; `TEST_SKIP_POSTGRES=1` skips it, as in
//! custos-store's suite). Concurrent requests (Tokio tasks on several threads, and on
//! PostgreSQL through three nodes) are checked for the ceilings and for exactness.
//!
//! Cases: 512 sequences of up to 80 steps in memory, 256 with rewinding clocks, 24 on
//! PostgreSQL; 32 bursts of 300 concurrent requests in memory, 4 of 120 on PostgreSQL;
//! `PROPTEST_CASES` sets another number.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use custos_detector::{Restriction, RestrictionKind};
use custos_service::Quota;
use custos_service::quota::{Charge, ChargeError, Exceeded, Quotas, Remaining};
use custos_store::Store;
use custos_types::calendar::{DAY_MS, HOUR_MS};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{TestCaseError, TestRunner};
use sqlx::Connection;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The first request's time (any time works; a real one reads better in failures).
const T0: i64 = 1_767_225_600_000;
const STAFF: usize = 3;
const CUSTOMERS: u8 = 6;

fn cases(default: u32) -> ProptestConfig {
    // proptest's own default reads PROPTEST_CASES; only without it use `default`.
    let config = ProptestConfig::default();
    let config = if std::env::var_os("PROPTEST_CASES").is_some() {
        config
    } else {
        ProptestConfig {
            cases: default,
            ..config
        }
    };
    ProptestConfig {
        source_file: Some(file!()),
        ..config
    }
}

/// Runs `test` on each generated case, panicking with the shrunk failure.
fn run<S: Strategy>(
    config: ProptestConfig,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut runner = TestRunner::new(config);
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

// ----- what a request asks for -----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    View(u8),
    Reveal(u8, u32),
    Search,
}

impl What {
    fn customer(self) -> Option<String> {
        match self {
            What::View(c) | What::Reveal(c, _) => Some(format!("cus_{c}")),
            What::Search => None,
        }
    }
    fn reveals(self) -> u32 {
        match self {
            What::Reveal(_, r) => r,
            _ => 0,
        }
    }
}

fn charge_of(what: What, id: &str) -> Charge<'_> {
    match what {
        What::View(_) => Charge::Customer { id, reveals: 0 },
        What::Reveal(_, reveals) => Charge::Customer { id, reveals },
        What::Search => Charge::Search,
    }
}

// ----- the reference model -----

/// A restriction as the model holds it.
#[derive(Clone, Debug)]
struct Held {
    staff: usize,
    lower: bool,
    until: i64,
}

/// The documented rules, written plainly: every admitted request is kept, and each
/// decision counts what falls in the windows.
#[derive(Clone, Debug)]
struct Model {
    limits: Quota,
    share: f64,
    /// Per person: their admitted requests, in order, with the time they counted at.
    admitted: Vec<Vec<(i64, What)>>,
    /// Per person: the latest time a request or a look at their counters was made at.
    latest: Vec<i64>,
    /// Alert id → restriction.
    restrictions: HashMap<String, Held>,
}

/// The limits' share, rounded down.
fn share_of(limits: &Quota, share: f64) -> Quota {
    let part = |m: Option<u32>| m.map(|m| (f64::from(m) * share).floor() as u32);
    Quota {
        customers_per_day: part(limits.customers_per_day),
        reveals_per_hour: part(limits.reveals_per_hour),
        searches_per_day: part(limits.searches_per_day),
    }
}

struct Usage {
    customers: BTreeSet<String>,
    reveals: u32,
    searches: u32,
}

impl Model {
    fn new(limits: Quota, share: f64) -> Model {
        Model {
            limits,
            share,
            admitted: vec![Vec::new(); STAFF],
            latest: vec![i64::MIN; STAFF],
            restrictions: HashMap::new(),
        }
    }

    /// The ceilings in force for `staff` at `now`, and the end of the lowering.
    fn effective(&self, staff: usize, now: i64) -> (Quota, Option<i64>) {
        let until = self
            .restrictions
            .values()
            .filter(|h| h.staff == staff && h.lower && h.until > now)
            .map(|h| h.until)
            .max();
        match until {
            Some(until) => (share_of(&self.limits, self.share), Some(until)),
            None => (self.limits.clone(), None),
        }
    }

    /// What `staff` has used in the windows ending at `now`.
    fn usage(&self, staff: usize, now: i64) -> Usage {
        let mut u = Usage {
            customers: BTreeSet::new(),
            reveals: 0,
            searches: 0,
        };
        for &(at, what) in &self.admitted[staff] {
            if at > now - DAY_MS {
                if let Some(c) = what.customer() {
                    u.customers.insert(c);
                }
                if what == What::Search {
                    u.searches += 1;
                }
            }
            if at > now - HOUR_MS {
                u.reveals += what.reveals();
            }
        }
        u
    }

    /// The ceiling that refuses `what` at `now` under `limits`, if any (customers first).
    fn refusal(&self, staff: usize, what: What, now: i64, limits: &Quota) -> Option<&'static str> {
        let u = self.usage(staff, now);
        if let Some(c) = what.customer() {
            if let Some(max) = limits.customers_per_day
                && !u.customers.contains(&c)
                && u.customers.len() >= max as usize
            {
                return Some("customers_per_day");
            }
            let r = what.reveals();
            if let Some(max) = limits.reveals_per_hour
                && r > 0
                && u.reveals + r > max
            {
                return Some("reveals_per_hour");
            }
        } else if let Some(max) = limits.searches_per_day
            && u.searches >= max
        {
            return Some("searches_per_day");
        }
        None
    }

    /// Whether the ceiling `which` alone still refuses `what` at `at`.
    fn still_refused(
        &self,
        staff: usize,
        what: What,
        at: i64,
        limits: &Quota,
        which: &str,
    ) -> bool {
        // Only that ceiling: the others are set aside.
        let only = Quota {
            customers_per_day: limits
                .customers_per_day
                .filter(|_| which == "customers_per_day"),
            reveals_per_hour: limits
                .reveals_per_hour
                .filter(|_| which == "reveals_per_hour"),
            searches_per_day: limits
                .searches_per_day
                .filter(|_| which == "searches_per_day"),
        };
        self.refusal(staff, what, at, &only).is_some()
    }

    /// The least whole number of seconds after `now` at which ceiling `which` admits
    /// `what`, if it ever does within its window.
    fn retry_after(
        &self,
        staff: usize,
        what: What,
        now: i64,
        limits: &Quota,
        which: &str,
    ) -> Option<u64> {
        let window = if which == "reveals_per_hour" {
            HOUR_MS
        } else {
            DAY_MS
        } / 1000;
        if self.still_refused(staff, what, now + window * 1000, limits, which) {
            return None;
        }
        // Admission only grows as the window moves on: search the first second.
        let (mut lo, mut hi) = (1, window);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.still_refused(staff, what, now + mid * 1000, limits, which) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Some(lo as u64)
    }

    /// Decides `what` for `staff` at `now`, counting it if admitted.
    fn charge(&mut self, staff: usize, what: What, now: i64) -> Result<(), Exceeded> {
        let (limits, lowered_until) = self.effective(staff, now);
        let at = now.max(self.latest[staff]);
        self.latest[staff] = at;
        match self.refusal(staff, what, at, &limits) {
            None => {
                self.admitted[staff].push((at, what));
                Ok(())
            }
            Some(which) => {
                let window_ms = if which == "reveals_per_hour" {
                    HOUR_MS
                } else {
                    DAY_MS
                };
                Err(Exceeded {
                    which,
                    window_secs: (window_ms / 1000) as u64,
                    // Checked separately (`retry_after`): 0 stands for "not compared".
                    retry_after_secs: 0,
                    lowered_until,
                })
            }
        }
    }

    fn remaining(&mut self, staff: usize, now: i64) -> Remaining {
        let (limits, _) = self.effective(staff, now);
        let at = now.max(self.latest[staff]);
        self.latest[staff] = at;
        let u = self.usage(staff, at);
        let left = |max: Option<u32>, used: usize| max.map(|m| m.saturating_sub(used as u32));
        Remaining {
            customers_per_day: left(limits.customers_per_day, u.customers.len()),
            reveals_per_hour: left(limits.reveals_per_hour, u.reveals as usize),
            searches_per_day: left(limits.searches_per_day, u.searches as usize),
        }
    }

    /// The ceilings themselves, checked on the admitted requests: in the windows ending
    /// at any admitted request, no ceiling in force then is passed by what it added.
    fn check_ceilings(
        &self,
        staff: usize,
        at: i64,
        what: What,
        before: &Usage,
    ) -> Result<(), TestCaseError> {
        let (limits, _) = self.effective(staff, at);
        let after = self.usage(staff, at);
        if let Some(max) = limits.customers_per_day
            && after.customers.len() > before.customers.len()
        {
            prop_assert!(
                after.customers.len() <= max as usize,
                "customers {} > {max}",
                after.customers.len()
            );
        }
        if let Some(max) = limits.reveals_per_hour
            && what.reveals() > 0
        {
            prop_assert!(after.reveals <= max, "reveals {} > {max}", after.reveals);
        }
        if let Some(max) = limits.searches_per_day
            && what == What::Search
        {
            prop_assert!(after.searches <= max, "searches {} > {max}", after.searches);
        }
        Ok(())
    }
}

// ----- generated sequences -----

#[derive(Clone, Debug)]
enum Op {
    Request {
        staff: usize,
        what: What,
    },
    /// Moves the clock by this many milliseconds (backwards when negative).
    Wait(i64),
    /// An alert imposes a restriction on a person for a while (again: replaced).
    Restrict {
        staff: usize,
        alert: u8,
        lower: bool,
        for_ms: i64,
    },
    /// The alert is dismissed: its restriction is lifted.
    Lift {
        staff: usize,
        alert: u8,
    },
    Remaining {
        staff: usize,
    },
    /// The server restarts.
    Restart,
}

fn what() -> impl Strategy<Value = What> {
    prop_oneof![
        3 => (0..CUSTOMERS).prop_map(What::View),
        3 => (0..CUSTOMERS, 1u32..4).prop_map(|(c, r)| What::Reveal(c, r)),
        2 => Just(What::Search),
    ]
}

/// Steps of the clock: none, milliseconds, minutes, and just around a window's length.
fn wait() -> impl Strategy<Value = i64> {
    prop_oneof![
        2 => Just(0i64),
        3 => 1i64..2_000,
        3 => 1i64..HOUR_MS / 3,
        2 => (HOUR_MS - 2)..=(HOUR_MS + 2),
        1 => (1i64..24).prop_map(|h| h * HOUR_MS),
        1 => (DAY_MS - 2)..=(DAY_MS + 2),
    ]
}

fn op(full: bool) -> impl Strategy<Value = Op> {
    let staff = 0..STAFF;
    let request = (staff.clone(), what()).prop_map(|(staff, what)| Op::Request { staff, what });
    if full {
        prop_oneof![
            12 => request,
            5 => wait().prop_map(Op::Wait),
            1 => (staff.clone(), 0u8..3, prop::bool::weighted(0.8), prop_oneof![1i64..HOUR_MS, HOUR_MS..3 * DAY_MS])
                .prop_map(|(staff, alert, lower, for_ms)| Op::Restrict { staff, alert, lower, for_ms }),
            1 => (staff.clone(), 0u8..3).prop_map(|(staff, alert)| Op::Lift { staff, alert }),
            1 => staff.prop_map(|staff| Op::Remaining { staff }),
            1 => Just(Op::Restart),
        ]
        .boxed()
    } else {
        // A clock that may go back (by up to two hours), and no restarts or restrictions.
        prop_oneof![
            12 => request,
            4 => wait().prop_map(Op::Wait),
            3 => (1i64..2 * HOUR_MS).prop_map(|back| Op::Wait(-back)),
            1 => staff.prop_map(|staff| Op::Remaining { staff }),
        ]
        .boxed()
    }
}

fn limit() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![1 => Just(None), 1 => Just(Some(0)), 6 => (1u32..6).prop_map(Some)]
}

fn limits() -> impl Strategy<Value = Quota> {
    (limit(), limit(), limit()).prop_map(|(c, r, s)| Quota {
        customers_per_day: c,
        reveals_per_hour: r,
        searches_per_day: s,
    })
}

#[derive(Clone, Debug)]
struct Scenario {
    limits: Quota,
    share: f64,
    ops: Vec<Op>,
}

fn scenario(full: bool) -> impl Strategy<Value = Scenario> {
    (
        limits(),
        select(vec![0.0, 0.25, 0.5, 0.75, 1.0]),
        prop::collection::vec(op(full), 1..80),
    )
        .prop_map(|(limits, share, ops)| Scenario { limits, share, ops })
}

// ----- running a scenario against the real counters -----

/// Where the counters live.
#[derive(Clone)]
enum Backend {
    Memory,
    Postgres(Store),
}

impl Backend {
    fn quotas(&self, share: f64) -> Quotas {
        match self {
            Backend::Memory => Quotas::new(share, None),
            Backend::Postgres(store) => {
                let shared = store
                    .shared_quotas()
                    .expect("PostgreSQL holds the quota charges");
                Quotas::new(share, Some(shared))
            }
        }
    }
}

fn exceeded(e: ChargeError) -> Result<Exceeded, TestCaseError> {
    match e {
        ChargeError::Exceeded(e) => Ok(e),
        ChargeError::Store(e) => Err(TestCaseError::fail(format!("store error: {e}"))),
    }
}

/// Distinct per case on a shared database, so that cases do not see each other's charges.
fn staff_prefix() -> String {
    static CASE: AtomicU64 = AtomicU64::new(0);
    format!(
        "p{}_{}",
        std::process::id(),
        CASE.fetch_add(1, Ordering::Relaxed)
    )
}

async fn run_scenario(backend: &Backend, s: Scenario) -> Result<(), TestCaseError> {
    let prefix = staff_prefix();
    let name = |staff: usize| format!("{prefix}_staff{staff}");
    let mut model = Model::new(s.limits.clone(), s.share);
    let mut q = backend.quotas(s.share);
    let mut now = T0;
    for (step, op) in s.ops.iter().enumerate() {
        match *op {
            Op::Request { staff, what } => {
                let id = what.customer().unwrap_or_default();
                let before = model.usage(staff, now.max(model.latest[staff]));
                let got = q
                    .try_charge(&name(staff), &s.limits, charge_of(what, &id), now)
                    .await;
                let expected = model.charge(staff, what, now);
                match (got, expected) {
                    (Ok(()), Ok(())) => {
                        let at = now.max(model.latest[staff]);
                        model.check_ceilings(staff, at, what, &before)?;
                    }
                    (Err(e), Err(want)) => {
                        let e = exceeded(e)?;
                        prop_assert_eq!(
                            (e.which, e.window_secs, e.lowered_until),
                            (want.which, want.window_secs, want.lowered_until),
                            "step {}: {:?} of staff {} at +{}ms",
                            step,
                            what,
                            staff,
                            now - T0
                        );
                        let (limits, _) = model.effective(staff, now);
                        let at = now.max(model.latest[staff]);
                        prop_assert!((1..=e.window_secs).contains(&e.retry_after_secs));
                        if let Some(secs) = model.retry_after(staff, what, at, &limits, e.which) {
                            prop_assert_eq!(
                                e.retry_after_secs,
                                secs,
                                "step {}: retry after of {:?}",
                                step,
                                what
                            );
                        }
                    }
                    (got, want) => {
                        let got = got.map_err(|e| format!("{:?}", exceeded(e).map(|e| e.which)));
                        prop_assert!(
                            false,
                            "step {}: {:?} of staff {} at +{}ms: got {:?}, the model says {:?}",
                            step,
                            what,
                            staff,
                            now - T0,
                            got,
                            want.map_err(|e| e.which)
                        );
                    }
                }
            }
            Op::Wait(ms) => now += ms,
            Op::Restrict {
                staff,
                alert,
                lower,
                for_ms,
            } => {
                let alert_id = format!("alr_{staff}_{alert}");
                let restriction = Restriction {
                    staff_id: name(staff),
                    kind: if lower {
                        RestrictionKind::LowerQuota
                    } else {
                        RestrictionKind::StepUp
                    },
                    until_ms: now + for_ms,
                    alert_id: alert_id.clone(),
                };
                q.restrict(restriction);
                model.restrictions.insert(
                    alert_id,
                    Held {
                        staff,
                        lower,
                        until: now + for_ms,
                    },
                );
            }
            Op::Lift { staff, alert } => {
                let alert_id = format!("alr_{staff}_{alert}");
                let lifted = q.lift(&alert_id);
                match model.restrictions.remove(&alert_id) {
                    // In force: there was one to lift.
                    Some(h) if h.until > now => prop_assert!(lifted),
                    // Expired: dropped already if a request met it since, or not.
                    Some(_) => {}
                    None => prop_assert!(!lifted),
                }
            }
            Op::Remaining { staff } => {
                let got = q
                    .remaining(&name(staff), &s.limits, now)
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(
                    got,
                    model.remaining(staff, now),
                    "step {}: remaining of staff {}",
                    step,
                    staff
                );
            }
            Op::Restart => {
                // As `App::start` does: restrictions from the alerts, and on one node the
                // counters from the admitted records of the last day, oldest first.
                q = backend.quotas(s.share);
                for (alert_id, h) in &model.restrictions {
                    q.restrict(Restriction {
                        staff_id: name(h.staff),
                        kind: if h.lower {
                            RestrictionKind::LowerQuota
                        } else {
                            RestrictionKind::StepUp
                        },
                        until_ms: h.until,
                        alert_id: alert_id.clone(),
                    });
                }
                if !q.are_shared() {
                    for (staff, admitted) in model.admitted.iter().enumerate() {
                        for &(at, what) in admitted.iter().filter(|(at, _)| *at > now - DAY_MS) {
                            let id = what.customer().unwrap_or_default();
                            q.replay(&name(staff), charge_of(what, &id), at);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Sequences with restrictions and restarts, in memory.
#[test]
fn sequences_follow_the_model_in_memory() {
    let rt = runtime();
    run(cases(512), scenario(true), |s| {
        rt.block_on(run_scenario(&Backend::Memory, s))
    });
}

/// Sequences whose clock goes back: windows are judged at the latest time seen.
#[test]
fn a_clock_going_back_never_reopens_a_window() {
    let rt = runtime();
    run(cases(256), scenario(false), |s| {
        rt.block_on(run_scenario(&Backend::Memory, s))
    });
}

/// Sequences with restrictions and restarts, on PostgreSQL.
#[test]
fn sequences_follow_the_model_on_postgres() {
    let rt = runtime();
    rt.block_on(with_postgres(1, |stores| async move {
        let backend = Backend::Postgres(stores[0].clone());
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            run(cases(24), scenario(true), |s| {
                handle.block_on(run_scenario(&backend, s))
            });
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }));
}

// ----- concurrency -----

#[derive(Clone, Debug)]
struct Burst {
    limits: Quota,
    /// (staff, request, node, milliseconds after the burst's start).
    requests: Vec<(usize, What, usize, i64)>,
}

fn burst(tasks: usize) -> impl Strategy<Value = Burst> {
    (
        limits().prop_map(|mut l| {
            // Small but not absent ceilings, so that the burst runs into them.
            l.customers_per_day = Some(l.customers_per_day.unwrap_or(3).max(1));
            l.reveals_per_hour = Some(l.reveals_per_hour.unwrap_or(4).max(1) * 3);
            l.searches_per_day = Some(l.searches_per_day.unwrap_or(2).max(1) * 2);
            l
        }),
        prop::collection::vec((0..STAFF, what(), 0usize..3, 0i64..50), tasks),
    )
        .prop_map(|(limits, requests)| Burst { limits, requests })
}

/// Fires every request of `b` at once (one Tokio task each, spread over `nodes`), then
/// checks each person's admitted charges against the ceilings, and that every refusal
/// was needed: a ceiling refuses only when the admitted ones leave no room.
async fn run_burst(nodes: &[Arc<Quotas>], b: Burst) -> Result<(), TestCaseError> {
    let prefix = staff_prefix();
    let tasks: Vec<_> = b
        .requests
        .iter()
        .map(|&(staff, what, node, ms)| {
            let q = nodes[node % nodes.len()].clone();
            let (limits, name) = (b.limits.clone(), format!("{prefix}_staff{staff}"));
            tokio::spawn(async move {
                let id = what.customer().unwrap_or_default();
                let got = q
                    .try_charge(&name, &limits, charge_of(what, &id), T0 + ms)
                    .await;
                (staff, what, got)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        let (staff, what, got) = t.await.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = match got {
            Ok(()) => Ok(()),
            Err(e) => Err(exceeded(e)?),
        };
        outcomes.push((staff, what, got));
    }
    let max_c = b.limits.customers_per_day.unwrap_or(u32::MAX) as usize;
    let max_r = b.limits.reveals_per_hour.unwrap_or(u32::MAX);
    let max_s = b.limits.searches_per_day.unwrap_or(u32::MAX);
    for staff in 0..STAFF {
        let mine = outcomes.iter().filter(|(s, _, _)| *s == staff);
        let admitted: Vec<What> = mine
            .clone()
            .filter(|(_, _, g)| g.is_ok())
            .map(|(_, w, _)| *w)
            .collect();
        let customers: BTreeSet<String> = admitted.iter().filter_map(|w| w.customer()).collect();
        let reveals: u32 = admitted.iter().map(|w| w.reveals()).sum();
        let searches = admitted.iter().filter(|w| **w == What::Search).count() as u32;
        prop_assert!(
            customers.len() <= max_c,
            "staff {staff}: {} customers > {max_c}",
            customers.len()
        );
        prop_assert!(
            reveals <= max_r,
            "staff {staff}: {reveals} reveals > {max_r}"
        );
        prop_assert!(
            searches <= max_s,
            "staff {staff}: {searches} searches > {max_s}"
        );
        for (_, what, got) in mine {
            match got {
                Ok(()) => {}
                Err(e) => match e.which {
                    // Refused as a new customer: the admitted ones fill the ceiling.
                    "customers_per_day" => prop_assert_eq!(customers.len(), max_c),
                    // Refused r reveals: fewer than r were left at the end.
                    "reveals_per_hour" => prop_assert!(reveals + what.reveals() > max_r),
                    "searches_per_day" => prop_assert_eq!(searches, max_s),
                    other => prop_assert!(false, "unknown ceiling {other}"),
                },
            }
        }
    }
    Ok(())
}

/// Concurrent requests on one node: Tokio tasks on four threads.
#[test]
fn concurrent_requests_never_pass_a_ceiling_in_memory() {
    let rt = runtime();
    run(cases(32), burst(300), |b| {
        rt.block_on(async {
            let node = Arc::new(Quotas::new(0.25, None));
            run_burst(&[node], b).await
        })
    });
}

/// Concurrent requests through three nodes sharing one PostgreSQL database.
#[test]
fn concurrent_requests_never_pass_a_ceiling_across_nodes() {
    let rt = runtime();
    rt.block_on(with_postgres(3, |stores| async move {
        let nodes: Vec<Arc<Quotas>> = stores
            .iter()
            .map(|s| Arc::new(Backend::Postgres(s.clone()).quotas(0.25)))
            .collect();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            run(cases(4), burst(120), |b| {
                handle.block_on(run_burst(&nodes, b))
            });
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    }));
}

// ----- PostgreSQL -----

/// Runs `test` with `nodes` stores (pools) on one fresh PostgreSQL database, dropped
/// afterwards (also when the test fails); skipped with `TEST_SKIP_POSTGRES=1`.
async fn with_postgres<F, Fut>(nodes: usize, test: F)
where
    F: FnOnce(Vec<Store>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    if std::env::var("TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("PostgreSQL test skipped: TEST_SKIP_POSTGRES=1");
        return;
    }
    let admin_url =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable via TEST_POSTGRES_URL (default {DEFAULT_PG_URL}): {e}; \
             set TEST_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
            )
        });
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "custos_test_quota_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    // The name is made here from digits only, so formatting it into SQL is safe.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = with_database(&admin_url, &name);
    let outcome = tokio::spawn(async move {
        let mut stores = Vec::new();
        for _ in 0..nodes {
            stores.push(Store::open_postgres(&url, 8).await.expect("open postgres"));
        }
        let closing = stores.clone();
        let outcome = tokio::spawn(test(stores)).await;
        for s in closing {
            s.close().await;
        }
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    })
    .await;
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    let _ = admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.expect("drop test database");
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}
