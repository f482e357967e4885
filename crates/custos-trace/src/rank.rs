//! Who did a leaked list come from: suspects, canary hits and rings.
//!
//! The input is what matching and the ledger give: the leaked customers (each one a
//! dense [`CustomerKey`] the caller assigned, flagged canary or not), the
//! [`Exposure`]s of staff to those customers within the time window, and per staff
//! member their org and the weight of everything they held in the window. [`rank`]
//! returns a [`Report`]: [`Suspect`]s best first, [`CanaryHit`]s, and [`Ring`]s.
//! Everything is pure and deterministic (ties are broken by staff key), and runs in
//! time linear in the number of exposures.
//!
//! # Model
//!
//! A staff member *holds* a customer with weight `m` = 1 if they revealed any field
//! of it, or `m` = `view_weight` if they only saw the masked card. `H_i` is the number
//! of **all** customers member `i` held in the window, leaked or not, each counted once
//! ([`Staff::holdings_weight`], see [`Params::holdings_weight`]). `N` is the number of
//! customers in the vault, `p` = `p_elsewhere` the chance a leaked record was obtained
//! elsewhere, `L` the number of leaked customers, `V_t` the staff holding record `t`.
//!
//! **Score** (what suspects are ranked by). Under "the leak came from `i`", each leaked
//! record was drawn from `i`'s holdings in proportion to `m_it` with probability
//! `1 − p`, or from elsewhere (uniformly over the vault) with probability `p`:
//! `Pr(t | i) = (1 − p)·m_it/H_i + p/N`. Against "everything came from elsewhere"
//! (`Pr(t) = 1/N`), the log-likelihood ratio is
//!
//! ```text
//! score_i = Σ_t ln((1 − p)·N·m_it/H_i + p)
//! ```
//!
//! A record `i` never held costs `ln p` (about −1.2 for `p` = 0.3): a few stray rows
//! lower the score by a bounded amount instead of ruling `i` out. Dividing by `H_i`
//! is what keeps someone who revealed the whole vault from outscoring someone who
//! revealed exactly the leaked rows. A record many people held adds to each of them,
//! so it separates them little.
//!
//! A view counts `view_weight` of a reveal because the masked card does not show the
//! leaked value: from a customer `i` only viewed, a leaked record comes with
//! probability `view_weight` of a revealed one's (the rest of the mass is "viewing
//! gave nothing to leak"). Counting `H_i` unweighted is what makes this hold for
//! someone who only ever viewed, too: with a weighted `H_i` the weight would cancel
//! and they would score like a revealer of the same size.
//!
//! **Canaries.** A canary exists only inside Custos: unlike a real customer, it cannot
//! have reached the leak from elsewhere except through someone who held it. Its
//! "elsewhere" density is `ε/N` instead of `1/N` (`ε` = [`Params::canary_elsewhere`],
//! default 0.001), so its term is `ln((1 − p)·N·m_it/(H_i·ε) + p)`: holding a leaked
//! canary weighs about `ln(1/ε)` ≈ 6.9 nats more than holding an ordinary record,
//! while not holding one still costs `ln p`, as for any record. With canaries allocated
//! to one person per peer group (the gateway's `[canaries] allocation_rate`), a leak that
//! carries one all but names that person even when it has two or three rows.
//!
//! **P&GM guilt**, for reference: Papadimitriou & Garcia-Molina, "Data Leakage
//! Detection", IEEE TKDE 23(1), 2011, estimate
//! `Pr{G_i | S} = 1 − Π_{t ∈ S∩R_i} (1 − (1 − p)/|V_t|)`. [`Suspect::pgm_guilt`] is
//! that formula with each factor's `(1 − p)/|V_t|` multiplied by `m_it` (so a view
//! counts `view_weight` of a reveal; with reveals only it is the paper's). It ignores
//! records `i` did not hold and how much else `i` held, so it favours whoever held
//! the most; it is reported, not ranked by. [`Suspect::evidence_weight`] is
//! `Σ_t m_it/|V_t|`, and [`Suspect::exclusive_records`] counts records only `i` held.
//!
//! **Rings.** Under "the leak came from group `G`", each record comes from a member
//! chosen uniformly, then as above: `Pr(t | G) = (1 − p)/|G|·Σ_{i∈G} m_it/H_i + p/N`.
//! Starting from the empty group (log-likelihood ratio 0), members are added
//! greedily, each time the candidate that raises the group's log-likelihood ratio
//! most, while the gain is at least [`Params::ring_min_gain`] (default `ln 1000` ≈ 6.9
//! nats: the leak must become a thousand times likelier with the new member), up to
//! [`Params::ring_max_members`]. The first member's gain is their score. Candidates
//! are the [`Params::ring_candidates`] best suspects. One ring is chosen among all
//! candidates, and one per org among that org's candidates (a ring inside one partner
//! company is the common case).

use std::collections::BTreeMap;

use serde::Serialize;

/// A leaked customer's key: its index in the `customers` slice given to [`rank`].
/// The caller keeps the map from keys to vault customers.
pub type CustomerKey = u32;

/// A staff member's key: their index in the `staff` slice given to [`rank`].
/// The caller keeps the map from keys to staff ids.
pub type StaffKey = u32;

/// How a staff member saw a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureKind {
    /// Saw only the masked customer card (weak evidence).
    View,
    /// Revealed at least one field in full (strong evidence).
    Reveal,
}

/// One leaked customer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeakedCustomer {
    /// A canary: a planted customer no legitimate work touches.
    pub canary: bool,
}

/// One ledger record of a staff member reaching a leaked customer within the window.
/// The same pair may appear many times; a reveal outweighs any number of views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exposure {
    /// Who.
    pub staff: StaffKey,
    /// Which leaked customer.
    pub customer: CustomerKey,
    /// Reveal or view.
    pub kind: ExposureKind,
    /// When, in unix milliseconds.
    pub at: i64,
}

/// What [`rank`] needs to know about one staff member.
#[derive(Debug, Clone, PartialEq)]
pub struct Staff {
    /// Their org (the company or partner company), for reporting and rings.
    pub org: String,
    /// `H_i`: **every** customer they held in the window, leaked or not, as computed by
    /// [`Params::holdings_weight`]. Values below the weight of their leaked holdings
    /// are raised to it (those are part of it).
    pub holdings_weight: f64,
}

/// Model and search parameters. [`Params::new`] gives the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// `p`: the chance a leaked record was obtained elsewhere; in (0, 1). Default 0.3.
    pub p_elsewhere: f64,
    /// `m` of a view-only holding, relative to a reveal's 1; in (0, 1]. Default 0.2.
    pub view_weight: f64,
    /// `N`: customers in the vault; at least 1 and at least the leaked count.
    pub vault_customers: u64,
    /// Smallest log-likelihood gain (nats) for which a ring takes another member;
    /// finite and ≥ 0. Default `ln 1000`.
    pub ring_min_gain: f64,
    /// Most members in one ring. Default 50.
    pub ring_max_members: usize,
    /// How many of the best suspects a ring may draw from. Default 200.
    pub ring_candidates: usize,
    /// `ε`: how much less likely than a real customer a canary is to have reached a
    /// leak from elsewhere (module docs); in (0, 1]. Default 0.001; 1 treats canaries
    /// like any record.
    pub canary_elsewhere: f64,
}

impl Params {
    /// The defaults for a vault of `vault_customers` customers.
    #[must_use]
    pub fn new(vault_customers: u64) -> Self {
        Params {
            p_elsewhere: 0.3,
            view_weight: 0.2,
            vault_customers,
            ring_min_gain: 1000f64.ln(),
            ring_max_members: 50,
            ring_candidates: 200,
            canary_elsewhere: 0.001,
        }
    }

    /// `H_i` for a staff member who, within the window, revealed `revealed` distinct
    /// customers and only viewed `viewed_only` others (all customers, not only
    /// leaked ones): their number, each counted once whatever the weight of its
    /// holding (see the module docs).
    #[must_use]
    pub fn holdings_weight(&self, revealed: u64, viewed_only: u64) -> f64 {
        revealed as f64 + viewed_only as f64
    }

    fn validate(&self, leaked: usize) -> Result<(), RankError> {
        let bad = |name, reason| Err(RankError::BadParameter { name, reason });
        if !(self.p_elsewhere > 0.0 && self.p_elsewhere < 1.0) {
            return bad("p_elsewhere", "must be strictly between 0 and 1");
        }
        if !(self.canary_elsewhere > 0.0 && self.canary_elsewhere <= 1.0) {
            return bad("canary_elsewhere", "must be greater than 0 and at most 1");
        }
        if !(self.view_weight > 0.0 && self.view_weight <= 1.0) {
            return bad("view_weight", "must be greater than 0 and at most 1");
        }
        if self.vault_customers == 0 || (self.vault_customers as u128) < leaked as u128 {
            return bad(
                "vault_customers",
                "must be at least 1 and at least the number of leaked customers",
            );
        }
        if !(self.ring_min_gain.is_finite() && self.ring_min_gain >= 0.0) {
            return bad("ring_min_gain", "must be finite and not negative");
        }
        Ok(())
    }
}

/// Why [`rank`] refused its input. Carries keys and parameter names only.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RankError {
    /// A parameter is out of range.
    #[error("parameter {name} {reason}")]
    BadParameter {
        /// The [`Params`] field.
        name: &'static str,
        /// What it must be.
        reason: &'static str,
    },
    /// An exposure names a customer key outside the `customers` slice.
    #[error(
        "exposure {index} names customer key {key}, but only {count} leaked customers were given"
    )]
    UnknownCustomer {
        /// Position of the exposure.
        index: usize,
        /// The key.
        key: CustomerKey,
        /// Length of the `customers` slice.
        count: usize,
    },
    /// An exposure names a staff key outside the `staff` slice.
    #[error("exposure {index} names staff key {key}, but only {count} staff were given")]
    UnknownStaff {
        /// Position of the exposure.
        index: usize,
        /// The key.
        key: StaffKey,
        /// Length of the `staff` slice.
        count: usize,
    },
    /// A staff member's `holdings_weight` is negative or not finite.
    #[error("staff {staff} has a negative or non-finite holdings_weight")]
    BadHoldingsWeight {
        /// The staff key.
        staff: StaffKey,
    },
}

impl RankError {
    /// A stable machine-readable code: `trace_bad_parameter`,
    /// `trace_unknown_customer`, `trace_unknown_staff`, `trace_bad_holdings_weight`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            RankError::BadParameter { .. } => "trace_bad_parameter",
            RankError::UnknownCustomer { .. } => "trace_unknown_customer",
            RankError::UnknownStaff { .. } => "trace_unknown_staff",
            RankError::BadHoldingsWeight { .. } => "trace_bad_holdings_weight",
        }
    }
}

/// One staff member who held at least one leaked customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suspect {
    /// Who.
    pub staff: StaffKey,
    /// Their org.
    pub org: String,
    /// Log-likelihood ratio of "the leak came from them" against "it all came from
    /// elsewhere" (module docs); higher is more suspicious.
    pub score: f64,
    /// Papadimitriou & Garcia-Molina's `Pr{G_i | S}`, views discounted (module docs).
    pub pgm_guilt: f64,
    /// `Σ_t m_it/|V_t|` over the leaked records they held: each record's weight
    /// shared among everyone who held it.
    pub evidence_weight: f64,
    /// Leaked customers they revealed.
    pub records_revealed: usize,
    /// Leaked customers they only viewed.
    pub records_viewed: usize,
    /// Leaked customers nobody else revealed or viewed.
    pub exclusive_records: usize,
    /// Their first exposure to a leaked customer (unix ms).
    pub first_access: i64,
    /// Their last exposure to a leaked customer (unix ms).
    pub last_access: i64,
}

/// A leaked canary and everyone who was exposed to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryHit {
    /// The canary.
    pub customer: CustomerKey,
    /// Everyone exposed to it, by staff key; empty if nobody was (it left another way).
    pub exposed: Vec<CanaryExposure>,
}

/// One staff member's exposure to a canary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CanaryExposure {
    /// Who.
    pub staff: StaffKey,
    /// Their org.
    pub org: String,
    /// Reveal if they ever revealed it, else view.
    pub kind: ExposureKind,
    /// Their first exposure to it (unix ms).
    pub first_at: i64,
}

/// A group whose union explains the leak (module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ring {
    /// The org the members were drawn from; `None` for the ring drawn from everyone.
    pub org: Option<String>,
    /// Members in the order they were added.
    pub members: Vec<RingMember>,
    /// Log-likelihood ratio of "the leak came from this group" against "it all came
    /// from elsewhere"; 0 for no members.
    pub log_likelihood: f64,
    /// Leaked customers held by at least one member.
    pub records_explained: usize,
    /// `records_explained` over the number of leaked customers (0 if there are none).
    pub fraction_explained: f64,
}

/// One member of a [`Ring`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RingMember {
    /// Who.
    pub staff: StaffKey,
    /// Their org.
    pub org: String,
    /// How much adding them raised the ring's log-likelihood ratio (nats).
    pub gain: f64,
    /// Leaked customers they held that no earlier member held.
    pub records_added: usize,
}

/// What [`rank`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Everyone who held a leaked customer, by score (best first), then staff key.
    pub suspects: Vec<Suspect>,
    /// Every leaked canary, by customer key.
    pub canaries: Vec<CanaryHit>,
    /// The ring drawn from all candidates (possibly without members).
    pub ring: Ring,
    /// Per org, the ring drawn from that org's candidates; only rings with members,
    /// by log-likelihood (highest first), then org.
    pub org_rings: Vec<Ring>,
}

/// Ranks who a leak came from. `customers[k]` is leaked customer `k`, `staff[s]` is
/// staff member `s`; `exposures` are their exposures to leaked customers within the
/// window. Linear in `exposures.len() + customers.len() + staff.len()` (plus the ring
/// search, linear in the candidates' exposures per member added).
///
/// # Errors
///
/// A [`RankError`] for parameters out of range, keys outside the slices, or a
/// negative or non-finite holdings weight.
pub fn rank(
    customers: &[LeakedCustomer],
    exposures: &[Exposure],
    staff: &[Staff],
    params: &Params,
) -> Result<Report, RankError> {
    params.validate(customers.len())?;
    for (s, member) in staff.iter().enumerate() {
        let w = member.holdings_weight;
        if !(w.is_finite() && w >= 0.0) {
            return Err(RankError::BadHoldingsWeight { staff: key_of(s) });
        }
    }
    let holdings = Holdings::build(customers.len(), staff.len(), exposures)?;
    let model = Model::new(params, holdings, staff, customers);
    let suspects = model.suspects(staff);
    let canaries = canaries(customers, exposures, staff);

    // Candidates in staff-key order, so equal gains go to the lower key.
    let mut candidates: Vec<usize> = suspects
        .iter()
        .take(params.ring_candidates)
        .map(|s| s.staff as usize)
        .collect();
    candidates.sort_unstable();
    let mut scratch = RingScratch::new(customers.len());
    let ring = model.greedy_ring(&candidates, None, staff, &mut scratch);
    let mut by_org: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &c in &candidates {
        by_org.entry(staff[c].org.as_str()).or_default().push(c);
    }
    let mut org_rings: Vec<Ring> = by_org
        .into_iter()
        .map(|(org, members)| {
            model.greedy_ring(&members, Some(org.to_owned()), staff, &mut scratch)
        })
        .filter(|r| !r.members.is_empty())
        .collect();
    // Stable sort: equal likelihoods keep the BTreeMap's org order.
    org_rings.sort_by(|a, b| b.log_likelihood.total_cmp(&a.log_likelihood));

    Ok(Report {
        suspects,
        canaries,
        ring,
        org_rings,
    })
}

/// Staff indexes come from a slice whose indexes the caller's `u32` keys address, so
/// any index that has exposures fits; saturate rather than panic for the others.
fn key_of(index: usize) -> StaffKey {
    StaffKey::try_from(index).unwrap_or(StaffKey::MAX)
}

/// Exposures reduced to one holding per (staff, customer), grouped by staff.
struct Holdings {
    /// Holdings of staff `s` are `start[s]..start[s + 1]`.
    start: Vec<usize>,
    customer: Vec<u32>,
    reveal: Vec<bool>,
    /// Per staff, first and last exposure (meaningful only if they have holdings).
    first: Vec<i64>,
    last: Vec<i64>,
    /// `|V_t|` per customer.
    holders: Vec<u32>,
}

impl Holdings {
    fn build(
        customer_count: usize,
        staff_count: usize,
        exposures: &[Exposure],
    ) -> Result<Self, RankError> {
        // Counting sort by staff: O(n) and deterministic, unlike a hash map's order.
        let mut bucket = vec![0usize; staff_count + 1];
        let mut first = vec![i64::MAX; staff_count];
        let mut last = vec![i64::MIN; staff_count];
        for (index, e) in exposures.iter().enumerate() {
            if e.customer as usize >= customer_count {
                return Err(RankError::UnknownCustomer {
                    index,
                    key: e.customer,
                    count: customer_count,
                });
            }
            let s = e.staff as usize;
            if s >= staff_count {
                return Err(RankError::UnknownStaff {
                    index,
                    key: e.staff,
                    count: staff_count,
                });
            }
            bucket[s + 1] += 1;
            first[s] = first[s].min(e.at);
            last[s] = last[s].max(e.at);
        }
        for s in 0..staff_count {
            bucket[s + 1] += bucket[s];
        }
        // Scatter packed `customer << 1 | reveal` words rather than indexes, so the
        // pass below reads memory in order instead of gathering exposures at random.
        let mut packed = vec![0u64; exposures.len()];
        let mut fill = bucket.clone();
        for e in exposures {
            let slot = &mut fill[e.staff as usize];
            packed[*slot] = u64::from(e.customer) << 1 | u64::from(e.kind == ExposureKind::Reveal);
            *slot += 1;
        }

        // Dedup each staff member's customers with a stamp per customer instead of
        // clearing a set between staff.
        let mut stamp = vec![usize::MAX; customer_count];
        let mut slot = vec![0usize; customer_count];
        let mut holders = vec![0u32; customer_count];
        let mut start = Vec::with_capacity(staff_count + 1);
        let mut customer = Vec::new();
        let mut reveal = Vec::new();
        start.push(0);
        for s in 0..staff_count {
            for &word in &packed[bucket[s]..bucket[s + 1]] {
                let key = (word >> 1) as CustomerKey;
                let c = key as usize;
                let revealed = word & 1 == 1;
                if stamp[c] == s {
                    reveal[slot[c]] |= revealed;
                } else {
                    stamp[c] = s;
                    slot[c] = customer.len();
                    customer.push(key);
                    reveal.push(revealed);
                    holders[c] = holders[c].saturating_add(1);
                }
            }
            start.push(customer.len());
        }
        Ok(Holdings {
            start,
            customer,
            reveal,
            first,
            last,
            holders,
        })
    }

    fn of(&self, s: usize) -> std::ops::Range<usize> {
        self.start[s]..self.start[s + 1]
    }
}

/// Holdings with the parameters folded in.
struct Model {
    holdings: Holdings,
    /// `(1 − p)·N/p`: with it, `ln((1 − p)·N·x + p) = ln p + ln_1p(a_over_p·x)`,
    /// which keeps precision when `x` is tiny.
    a_over_p: f64,
    /// `a_over_p / ε`, the same for a canary.
    a_over_p_canary: f64,
    /// Per leaked customer, whether it is a canary.
    canary: Vec<bool>,
    ln_p: f64,
    /// `1 − p`, for P&GM.
    one_minus_p: f64,
    view_weight: f64,
    /// Number of leaked customers `L`.
    leaked: f64,
    /// Effective `H_i` per staff (0 for staff without holdings).
    h: Vec<f64>,
    ring_min_gain: f64,
    ring_max_members: usize,
}

impl Model {
    fn new(
        params: &Params,
        holdings: Holdings,
        staff: &[Staff],
        customers: &[LeakedCustomer],
    ) -> Self {
        let p = params.p_elsewhere;
        let leaked = customers.len();
        let a_over_p = (1.0 - p) * params.vault_customers as f64 / p;
        let mut model = Model {
            holdings,
            a_over_p,
            a_over_p_canary: a_over_p / params.canary_elsewhere,
            canary: customers.iter().map(|c| c.canary).collect(),
            ln_p: p.ln(),
            one_minus_p: 1.0 - p,
            view_weight: params.view_weight,
            leaked: leaked as f64,
            h: vec![0.0; staff.len()],
            ring_min_gain: params.ring_min_gain,
            ring_max_members: params.ring_max_members,
        };
        for (s, member) in staff.iter().enumerate() {
            let held: f64 = model.holdings.of(s).map(|k| model.m(k)).sum();
            model.h[s] = member.holdings_weight.max(held);
        }
        model
    }

    /// `a_over_p` for leaked customer `t` (module docs, "Canaries").
    fn a(&self, t: usize) -> f64 {
        if self.canary[t] {
            self.a_over_p_canary
        } else {
            self.a_over_p
        }
    }

    /// `m` of holding `k`.
    fn m(&self, k: usize) -> f64 {
        if self.holdings.reveal[k] {
            1.0
        } else {
            self.view_weight
        }
    }

    fn suspects(&self, staff: &[Staff]) -> Vec<Suspect> {
        let hs = &self.holdings;
        let mut out = Vec::new();
        for (s, member) in staff.iter().enumerate() {
            let range = hs.of(s);
            if range.is_empty() {
                continue;
            }
            let h = self.h[s];
            let mut score = self.leaked * self.ln_p;
            let mut ln_innocent = 0.0;
            let mut evidence_weight = 0.0;
            let (mut records_revealed, mut exclusive_records) = (0, 0);
            let records_viewed = range.len();
            for k in range {
                let m = self.m(k);
                let v = f64::from(hs.holders[hs.customer[k] as usize]);
                score += (self.a(hs.customer[k] as usize) * m / h).ln_1p();
                ln_innocent += (-self.one_minus_p * m / v).ln_1p();
                evidence_weight += m / v;
                records_revealed += usize::from(hs.reveal[k]);
                exclusive_records += usize::from(v == 1.0);
            }
            out.push(Suspect {
                staff: key_of(s),
                org: member.org.clone(),
                score,
                pgm_guilt: -ln_innocent.exp_m1(),
                evidence_weight,
                records_revealed,
                records_viewed: records_viewed - records_revealed,
                exclusive_records,
                first_access: hs.first[s],
                last_access: hs.last[s],
            });
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.staff.cmp(&b.staff)));
        out
    }

    /// Greedy ring over `candidates` (staff indexes in ascending order). Each step
    /// costs O(records the group holds + the candidates' holdings): records nobody in
    /// the group holds all contribute `ln p`, so they are counted, not visited.
    fn greedy_ring(
        &self,
        candidates: &[usize],
        org: Option<String>,
        staff: &[Staff],
        scratch: &mut RingScratch,
    ) -> Ring {
        let hs = &self.holdings;
        let RingScratch {
            s,
            next,
            held,
            touched,
        } = scratch;
        let mut taken = vec![false; candidates.len()];
        let mut members = Vec::new();
        let mut log_likelihood = 0.0;
        while members.len() < self.ring_max_members {
            // Per-record terms (beyond ln p) for the current group at size k + 1,
            // which every candidate's evaluation shares.
            let k1 = (members.len() + 1) as f64;
            let mut base = self.leaked * self.ln_p;
            for &t in touched.iter() {
                next[t] = (self.a(t) * s[t] / k1).ln_1p();
                base += next[t];
            }
            let mut best: Option<(f64, usize)> = None;
            for (ci, &j) in candidates.iter().enumerate() {
                if taken[ci] {
                    continue;
                }
                let mut ll = base;
                for k in hs.of(j) {
                    let t = hs.customer[k] as usize;
                    let x = s[t] + self.m(k) / self.h[j];
                    ll += (self.a(t) * x / k1).ln_1p() - next[t];
                }
                if best.is_none_or(|(b, _)| ll > b) {
                    best = Some((ll, ci));
                }
            }
            let Some((ll, ci)) = best else { break };
            let gain = ll - log_likelihood;
            if gain < self.ring_min_gain {
                break;
            }
            taken[ci] = true;
            let j = candidates[ci];
            let mut records_added = 0;
            for k in hs.of(j) {
                let t = hs.customer[k] as usize;
                // A flag, not `s[t] == 0`: `m/H` may underflow for an absurd `H`.
                if !held[t] {
                    held[t] = true;
                    touched.push(t);
                    records_added += 1;
                }
                s[t] += self.m(k) / self.h[j];
            }
            log_likelihood = ll;
            members.push(RingMember {
                staff: key_of(j),
                org: staff[j].org.clone(),
                gain,
                records_added,
            });
        }
        let records_explained = touched.len();
        for &t in touched.iter() {
            s[t] = 0.0;
            next[t] = 0.0;
            held[t] = false;
        }
        touched.clear();
        Ring {
            org,
            members,
            log_likelihood,
            records_explained,
            fraction_explained: if self.leaked > 0.0 {
                records_explained as f64 / self.leaked
            } else {
                0.0
            },
        }
    }
}

/// Per-record state of a ring search, reused across searches (reset on the records
/// touched only).
struct RingScratch {
    /// `Σ_{i∈G} m_it/H_i` per record.
    s: Vec<f64>,
    /// The record's term at the next group size (0 for records the group lacks).
    next: Vec<f64>,
    /// Whether a member holds the record.
    held: Vec<bool>,
    /// Records some member holds.
    touched: Vec<usize>,
}

impl RingScratch {
    fn new(leaked: usize) -> Self {
        RingScratch {
            s: vec![0.0; leaked],
            next: vec![0.0; leaked],
            held: vec![false; leaked],
            touched: Vec::new(),
        }
    }
}

fn canaries(
    customers: &[LeakedCustomer],
    exposures: &[Exposure],
    staff: &[Staff],
) -> Vec<CanaryHit> {
    // Keys were checked by `Holdings::build`. Canaries are few: collecting their
    // exposures and sorting is cheap.
    let mut hits: Vec<(CustomerKey, StaffKey, ExposureKind, i64)> = exposures
        .iter()
        .filter(|e| customers[e.customer as usize].canary)
        .map(|e| (e.customer, e.staff, e.kind, e.at))
        .collect();
    hits.sort_unstable_by_key(|&(c, s, _, at)| (c, s, at));
    let mut out: Vec<CanaryHit> = customers
        .iter()
        .enumerate()
        .filter(|(_, c)| c.canary)
        .filter_map(|(k, _)| CustomerKey::try_from(k).ok())
        .map(|customer| CanaryHit {
            customer,
            exposed: Vec::new(),
        })
        .collect();
    for (customer, s, kind, when) in hits {
        let Ok(at) = out.binary_search_by_key(&customer, |hit| hit.customer) else {
            continue;
        };
        let exposed = &mut out[at].exposed;
        match exposed.last_mut() {
            Some(last) if last.staff == s => last.kind = last.kind.max(kind),
            _ => exposed.push(CanaryExposure {
                staff: s,
                org: staff[s as usize].org.clone(),
                kind,
                first_at: when,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staff(n: usize) -> Vec<Staff> {
        vec![
            Staff {
                org: "acme".into(),
                holdings_weight: 0.0,
            };
            n
        ]
    }

    fn reveal(staff: StaffKey, customer: CustomerKey, at: i64) -> Exposure {
        Exposure {
            staff,
            customer,
            kind: ExposureKind::Reveal,
            at,
        }
    }

    #[test]
    fn codes_are_stable() {
        let bad = RankError::BadParameter {
            name: "p_elsewhere",
            reason: "x",
        };
        assert_eq!(bad.code(), "trace_bad_parameter");
        let customer = RankError::UnknownCustomer {
            index: 0,
            key: 0,
            count: 0,
        };
        assert_eq!(customer.code(), "trace_unknown_customer");
        let member = RankError::UnknownStaff {
            index: 0,
            key: 0,
            count: 0,
        };
        assert_eq!(member.code(), "trace_unknown_staff");
        assert_eq!(
            RankError::BadHoldingsWeight { staff: 0 }.code(),
            "trace_bad_holdings_weight"
        );
    }

    #[test]
    fn parameters_are_validated() {
        let customers = [LeakedCustomer::default(); 3];
        type Spoil = fn(&mut Params);
        let cases: [(&str, Spoil); 11] = [
            ("canary_elsewhere", |p| p.canary_elsewhere = 0.0),
            ("canary_elsewhere", |p| p.canary_elsewhere = 2.0),
            ("p_elsewhere", |p| p.p_elsewhere = 0.0),
            ("p_elsewhere", |p| p.p_elsewhere = 1.0),
            ("p_elsewhere", |p| p.p_elsewhere = f64::NAN),
            ("view_weight", |p| p.view_weight = 0.0),
            ("view_weight", |p| p.view_weight = 1.5),
            ("vault_customers", |p| p.vault_customers = 0),
            ("vault_customers", |p| p.vault_customers = 2),
            ("ring_min_gain", |p| p.ring_min_gain = -1.0),
            ("ring_min_gain", |p| p.ring_min_gain = f64::INFINITY),
        ];
        for (field, spoil) in cases {
            let mut params = Params::new(100);
            spoil(&mut params);
            let err = rank(&customers, &[], &[], &params).unwrap_err();
            assert_eq!(err.code(), "trace_bad_parameter");
            assert!(matches!(err, RankError::BadParameter { name, .. } if name == field));
        }
    }

    #[test]
    fn bad_keys_and_weights_are_refused() {
        let customers = [LeakedCustomer::default(); 2];
        let params = Params::new(100);
        let err = rank(&customers, &[reveal(0, 2, 0)], &staff(1), &params).unwrap_err();
        assert_eq!(err.code(), "trace_unknown_customer");
        let err = rank(&customers, &[reveal(1, 0, 0)], &staff(1), &params).unwrap_err();
        assert_eq!(err.code(), "trace_unknown_staff");
        let mut members = staff(1);
        members[0].holdings_weight = f64::NAN;
        let err = rank(&customers, &[], &members, &params).unwrap_err();
        assert_eq!(err, RankError::BadHoldingsWeight { staff: 0 });
    }

    #[test]
    fn empty_input_gives_an_empty_report() {
        let report = rank(&[], &[], &[], &Params::new(1)).unwrap();
        assert!(report.suspects.is_empty() && report.canaries.is_empty());
        assert!(report.ring.members.is_empty() && report.org_rings.is_empty());
        assert_eq!(report.ring.fraction_explained, 0.0);
        // Leaked customers nobody was exposed to: no suspects either.
        let report = rank(
            &[LeakedCustomer::default(); 5],
            &[],
            &staff(3),
            &Params::new(9),
        )
        .unwrap();
        assert!(report.suspects.is_empty() && report.ring.members.is_empty());
    }

    #[test]
    fn repeated_exposures_count_once_and_reveal_wins() {
        let customers = [LeakedCustomer::default(); 2];
        let view = |customer, at| Exposure {
            staff: 0,
            customer,
            kind: ExposureKind::View,
            at,
        };
        let exposures = [
            view(0, 5),
            reveal(0, 0, 9),
            view(0, 2),
            view(1, 7),
            view(1, 3),
        ];
        let report = rank(&customers, &exposures, &staff(1), &Params::new(1000)).unwrap();
        let s = &report.suspects[0];
        assert_eq!((s.records_revealed, s.records_viewed), (1, 1));
        assert_eq!((s.first_access, s.last_access), (2, 9));
        assert_eq!(s.exclusive_records, 2);
        // H raised to the leaked holdings' weight, 1 + 0.2.
        let expected =
            (0.7 * 1000.0 / 1.2 + 0.3f64).ln() + (0.7 * 1000.0 * 0.2 / 1.2 + 0.3f64).ln();
        assert!(
            (s.score - expected).abs() < 1e-9,
            "{} vs {expected}",
            s.score
        );
        // P&GM: one holder each, so 1 − (1 − 0.7)(1 − 0.14).
        assert!((s.pgm_guilt - (1.0 - 0.3 * 0.86)).abs() < 1e-12);
        assert!((s.evidence_weight - 1.2).abs() < 1e-12);
    }

    /// Module docs, "Canaries": a 3-row leak, two rows from the insider (their allocated
    /// canary and a customer many held) and one from elsewhere. A colleague who held
    /// few customers, both real rows among them, outscores the insider when the canary
    /// counts as an ordinary record; as a canary it names the insider.
    #[test]
    fn a_leaked_canary_outweighs_ordinary_records() {
        let mut customers = [LeakedCustomer::default(); 3];
        let (canary, shared, elsewhere) = (0, 1, 2);
        let (insider, colleague) = (0, 1);
        let exposures = [
            reveal(insider, canary, 1),
            reveal(insider, shared, 2),
            reveal(colleague, shared, 3),
            reveal(colleague, elsewhere, 4),
        ];
        let mut people = staff(2);
        people[insider as usize].holdings_weight = 400.0;
        people[colleague as usize].holdings_weight = 30.0;
        let first = |customers: &[LeakedCustomer], params: &Params| {
            rank(customers, &exposures, &people, params)
                .unwrap()
                .suspects[0]
                .staff
        };
        let params = Params::new(6000);
        assert_eq!(first(&customers, &params), colleague, "no canary flagged");
        customers[canary as usize].canary = true;
        assert_eq!(first(&customers, &params), insider);
        let report = rank(&customers, &exposures, &people, &params).unwrap();
        // ε = 0.001 adds ln(1/ε) to the insider's canary term (up to the `+ p`).
        let term = |a: f64| (0.7 * 6000.0 * a / 400.0 + 0.3f64).ln();
        let expected =
            3.0 * 0.3f64.ln() + term(1.0 / 0.001) - 0.3f64.ln() + term(1.0) - 0.3f64.ln();
        assert!((report.suspects[0].score - expected).abs() < 1e-9);
        // ε = 1 is the ordinary model again.
        let plain = Params {
            canary_elsewhere: 1.0,
            ..Params::new(6000)
        };
        assert_eq!(first(&customers, &plain), colleague);
    }
}
