//! Constructed leaks with known sources, ranked through the public `rank` API.

use std::collections::{BTreeMap, BTreeSet};

use custos_trace::rank::{
    CustomerKey, Exposure, ExposureKind, LeakedCustomer, Params, Report, Staff, StaffKey, rank,
};

use ExposureKind::{Reveal, View};

/// Deterministic splitmix64, so the "random" staff are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A vault of `n` customers (ids `0..n`), a leaked list of vault ids, and staff with
/// everything they held in the window.
struct World {
    n: u64,
    leaked: Vec<u64>,
    canaries: BTreeSet<u64>,
    staff: Vec<(String, BTreeMap<u64, ExposureKind>)>,
}

impl World {
    fn new(n: u64, leaked: impl IntoIterator<Item = u64>) -> Self {
        World {
            n,
            leaked: leaked.into_iter().collect(),
            canaries: BTreeSet::new(),
            staff: Vec::new(),
        }
    }

    /// Adds a staff member holding `held`; returns their key.
    fn add(&mut self, org: &str, held: impl IntoIterator<Item = (u64, ExposureKind)>) -> StaffKey {
        let mut map = BTreeMap::new();
        for (id, kind) in held {
            let e = map.entry(id).or_insert(kind);
            *e = (*e).max(kind);
        }
        self.staff.push((org.to_owned(), map));
        (self.staff.len() - 1) as StaffKey
    }

    /// Adds `count` staff at `org`, each holding `bulk` random vault customers (a
    /// third revealed) and `leaked` random leaked ones.
    fn add_noise(&mut self, rng: &mut Rng, org: &str, count: usize, bulk: u64, leaked: u64) {
        for _ in 0..count {
            let mut held = Vec::new();
            for _ in 0..bulk {
                let kind = if rng.below(3) == 0 { Reveal } else { View };
                held.push((rng.below(self.n), kind));
            }
            for _ in 0..rng.below(leaked + 1) {
                let id = self.leaked[rng.below(self.leaked.len() as u64) as usize];
                held.push((id, if rng.below(2) == 0 { Reveal } else { View }));
            }
            self.add(org, held);
        }
    }

    /// What the caller of `rank` would build: keys, exposures to leaked customers
    /// (each holding seen twice, to exercise deduplication) and `H` over all holdings.
    fn input(&self, params: &Params) -> (Vec<LeakedCustomer>, Vec<Exposure>, Vec<Staff>) {
        let keys: BTreeMap<u64, CustomerKey> = self
            .leaked
            .iter()
            .enumerate()
            .map(|(k, &id)| (id, k as CustomerKey))
            .collect();
        let customers = self
            .leaked
            .iter()
            .map(|id| LeakedCustomer {
                canary: self.canaries.contains(id),
            })
            .collect();
        let mut exposures = Vec::new();
        let mut staff = Vec::new();
        let mut at = 1_700_000_000_000;
        for (s, (org, held)) in self.staff.iter().enumerate() {
            let revealed = held.values().filter(|&&k| k == Reveal).count() as u64;
            staff.push(Staff {
                org: org.clone(),
                holdings_weight: params.holdings_weight(revealed, held.len() as u64 - revealed),
            });
            for (id, &kind) in held {
                if let Some(&customer) = keys.get(id) {
                    for kind in [View, kind] {
                        at += 1000;
                        exposures.push(Exposure {
                            staff: s as StaffKey,
                            customer,
                            kind,
                            at,
                        });
                    }
                }
            }
        }
        (customers, exposures, staff)
    }

    fn rank(&self, params: &Params) -> Report {
        let (customers, exposures, staff) = self.input(params);
        let report = rank(&customers, &exposures, &staff, params).expect("valid input");
        for s in &report.suspects {
            assert!(
                s.score.is_finite() && (0.0..=1.0).contains(&s.pgm_guilt),
                "{s:?}"
            );
        }
        report
    }
}

fn position(report: &Report, staff: StaffKey) -> usize {
    report
        .suspects
        .iter()
        .position(|s| s.staff == staff)
        .expect("a suspect")
}

const N: u64 = 100_000;

#[test]
fn single_leaker_ranks_first_among_overlapping_staff() {
    let mut rng = Rng(1);
    let mut world = World::new(N, (0..10).map(|i| 1000 + i * 37));
    world.add_noise(&mut rng, "support", 50, 300, 6);
    let leaker = world.add(
        "support",
        world.leaked.clone().into_iter().map(|id| (id, Reveal)),
    );
    world.add_noise(&mut rng, "partner-b", 5, 300, 6);

    let report = world.rank(&Params::new(N));
    assert_eq!(report.suspects[0].staff, leaker);
    let top = &report.suspects[0];
    assert_eq!((top.records_revealed, top.records_viewed), (10, 0));
    assert!(
        top.score - report.suspects[1].score > 20.0,
        "{:?}",
        &report.suspects[..2]
    );
    // Ranking is a pure function of its input.
    assert_eq!(report, world.rank(&Params::new(N)));
}

#[test]
fn revealing_everything_does_not_beat_revealing_the_leak() {
    let mut rng = Rng(2);
    let leaked: Vec<u64> = (0..10).map(|i| 500 + i * 101).collect();
    let mut world = World::new(N, leaked.clone());
    // The leaker revealed 60 customers, the 10 leaked among them.
    let leaker = world.add(
        "partner-a",
        leaked
            .iter()
            .map(|&id| (id, Reveal))
            .chain((0..50).map(|i| (50_000 + i, Reveal))),
    );
    // The power user revealed 10,000, all 10 leaked among them.
    let power = world.add(
        "hq",
        leaked
            .iter()
            .map(|&id| (id, Reveal))
            .chain((0..9_990).map(|i| (20_000 + i, Reveal))),
    );
    world.add_noise(&mut rng, "support", 30, 300, 4);

    let report = world.rank(&Params::new(N));
    assert_eq!(report.suspects[0].staff, leaker);
    let (l, p) = (
        &report.suspects[0],
        &report.suspects[position(&report, power)],
    );
    assert!(l.score - p.score > 40.0, "{l:?} {p:?}");
    // P&GM cannot tell them apart: both held every leaked record, shared alike.
    assert!((l.pgm_guilt - p.pgm_guilt).abs() < 1e-12);
}

#[test]
fn stray_records_cost_a_bounded_amount() {
    let own: Vec<u64> = (0..10).map(|i| 7000 + i * 13).collect();
    let strays = [90_001, 90_002, 90_003];
    // The same staff in both worlds; only the leaked list differs.
    let build = |leaked: Vec<u64>| {
        let mut world = World::new(N, leaked);
        let leaker = world.add(
            "partner-a",
            own.iter()
                .map(|&id| (id, Reveal))
                .chain((0..20).map(|i| (60_000 + i, Reveal))),
        );
        // Someone else had the strays (among a lot else), others some of the
        // leaker's records.
        world.add(
            "hq",
            strays
                .iter()
                .map(|&id| (id, Reveal))
                .chain((0..500).map(|i| (30_000 + i, Reveal))),
        );
        world.add("support", own[..4].iter().map(|&id| (id, View)));
        world.add("support", own[3..7].iter().map(|&id| (id, Reveal)));
        world.add_noise(&mut Rng(3), "support", 30, 300, 0);
        (world, leaker)
    };
    let (clean, leaker) = build(own.clone());
    let (mixed, _) = build(own.iter().copied().chain(strays).collect());
    for p in [0.3, 1e-9] {
        let params = Params {
            p_elsewhere: p,
            ..Params::new(N)
        };
        let (clean, mixed) = (clean.rank(&params), mixed.rank(&params));
        assert_eq!(clean.suspects[0].staff, leaker);
        assert_eq!(mixed.suspects[0].staff, leaker, "p = {p}");
        let (before, after) = (&clean.suspects[0], &mixed.suspects[0]);
        // Each record the leaker never had costs exactly ln p (−1.2 at p = 0.3, −20.7
        // at p = 1e-9), nothing more: a likelihood without the "elsewhere" term
        // would be zero (−∞ in logs).
        let drop = before.score - after.score;
        assert!(
            (drop + 3.0 * p.ln()).abs() < 1e-6,
            "p = {p}: dropped {drop}"
        );
        // P&GM's product runs over the records the agent held only, so strays leave
        // the leaker's guilt unchanged (and cannot count against them either).
        assert!((before.pgm_guilt - after.pgm_guilt).abs() < 1e-12);
    }
}

#[test]
fn viewing_ranks_below_revealing() {
    let leaked: Vec<u64> = (0..10).map(|i| 300 + i).collect();
    let mut world = World::new(N, leaked.clone());
    // The same other work (40 reveals each); one revealed the leaked ten, the other
    // only saw their masked cards.
    let revealer = world.add(
        "support",
        leaked
            .iter()
            .map(|&id| (id, Reveal))
            .chain((0..40).map(|i| (10_000 + i, Reveal))),
    );
    let viewer = world.add(
        "support",
        leaked
            .iter()
            .map(|&id| (id, View))
            .chain((0..40).map(|i| (20_000 + i, Reveal))),
    );
    let report = world.rank(&Params::new(N));
    assert_eq!(report.suspects[0].staff, revealer);
    assert_eq!(report.suspects[1].staff, viewer);
    let (r, v) = (&report.suspects[0], &report.suspects[1]);
    assert!(r.score > v.score + 10.0 && r.pgm_guilt > v.pgm_guilt);
    assert!(r.evidence_weight > v.evidence_weight);
    assert_eq!((v.records_revealed, v.records_viewed), (0, 10));
    // Both held all ten, so none is exclusive.
    assert_eq!((r.exclusive_records, v.exclusive_records), (0, 0));
}

#[test]
fn canaries_list_exactly_the_staff_exposed() {
    let mut rng = Rng(5);
    let mut world = World::new(N, (0..50).map(|i| 40_000 + i));
    let (canary, untouched) = (40_007, 40_031);
    world.canaries.extend([canary, untouched]);
    world.add_noise(&mut rng, "support", 20, 200, 0);
    let revealer = world.add("partner-a", [(canary, Reveal), (40_001, Reveal)]);
    let viewer = world.add("partner-b", [(canary, View)]);
    let other = world.add("partner-b", [(40_002, Reveal)]);

    let report = world.rank(&Params::new(N));
    assert_eq!(report.canaries.len(), 2);
    let (hit, quiet) = (&report.canaries[0], &report.canaries[1]);
    assert_eq!((hit.customer, quiet.customer), (7, 31));
    let exposed: Vec<_> = hit
        .exposed
        .iter()
        .map(|e| (e.staff, e.org.as_str(), e.kind))
        .collect();
    assert_eq!(
        exposed,
        [(revealer, "partner-a", Reveal), (viewer, "partner-b", View)]
    );
    assert!(hit.exposed.iter().all(|e| e.first_at > 0));
    assert!(quiet.exposed.is_empty());
    assert!(!exposed.iter().any(|e| e.0 == other));
}

#[test]
fn a_ring_at_one_org_is_found_whole_and_alone() {
    let mut rng = Rng(6);
    let leaked: Vec<u64> = (0..100).map(|i| 5_000 + i * 7).collect();
    let mut world = World::new(N, leaked.clone());
    world.add_noise(&mut rng, "support", 40, 300, 8);
    let mut ring = Vec::new();
    for part in leaked.chunks(20) {
        let other = rng.below(N / 2) + N / 2;
        let held = part
            .iter()
            .map(|&id| (id, Reveal))
            .chain((0..30).map(|i| (other + i, Reveal)));
        ring.push(world.add("partner-c", held));
    }
    // Unrelated people at the same org and elsewhere, including one with three leaked
    // records among very little else.
    world.add_noise(&mut rng, "partner-c", 10, 300, 8);
    let bystander = world.add(
        "partner-c",
        leaked[..3]
            .iter()
            .map(|&id| (id, Reveal))
            .chain([(99_999, Reveal), (99_998, Reveal)]),
    );

    let report = world.rank(&Params::new(N));
    let members: BTreeSet<StaffKey> = report.ring.members.iter().map(|m| m.staff).collect();
    assert_eq!(members, ring.iter().copied().collect(), "{:?}", report.ring);
    assert!(!members.contains(&bystander));
    assert_eq!(report.ring.org, None);
    assert_eq!(report.ring.records_explained, 100);
    assert_eq!(report.ring.fraction_explained, 1.0);
    assert!(
        report
            .ring
            .members
            .iter()
            .all(|m| m.records_added == 20 && m.gain >= 1000f64.ln())
    );
    // The first member's gain is their own score.
    let first = &report.ring.members[0];
    let score = report.suspects[position(&report, first.staff)].score;
    assert!((first.gain - score).abs() < 1e-6);

    let top = &report.org_rings[0];
    assert_eq!(top.org.as_deref(), Some("partner-c"));
    assert_eq!(top.members, report.ring.members);
    assert!((top.log_likelihood - report.ring.log_likelihood).abs() < 1e-9);
}

#[test]
fn extreme_parameters_stay_finite() {
    let mut rng = Rng(7);
    let leaked: Vec<u64> = (0..30).map(|i| i * 3).collect();
    let mut world = World::new(1_000_000_000_000, leaked);
    world.add_noise(&mut rng, "support", 20, 50, 10);
    for (p, view_weight) in [(1e-12, 1e-9), (0.999_999_999, 1.0), (0.5, 0.2)] {
        let params = Params {
            p_elsewhere: p,
            view_weight,
            ..Params::new(world.n)
        };
        let report = world.rank(&params);
        assert!(!report.suspects.is_empty());
        assert!(report.ring.log_likelihood.is_finite());
        assert!(
            report
                .org_rings
                .iter()
                .all(|r| r.log_likelihood.is_finite())
        );
    }
    // An absurd holdings weight is taken as given, without NaN.
    let (customers, exposures, mut staff) = world.input(&Params::new(world.n));
    staff[0].holdings_weight = 1e300;
    let report = rank(&customers, &exposures, &staff, &Params::new(world.n)).expect("valid");
    assert!(report.suspects.iter().all(|s| s.score.is_finite()));
}
