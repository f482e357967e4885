//! What everyone does, day by day: honest contacts from the company's demand, and the
//! insiders' extra work from their scenarios. Pure and deterministic for a seed; the
//! [`drive`](super::drive) module turns it into requests.

use std::collections::{HashMap, HashSet};

use custos_types::Role;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::company::{Company, Person, local_time};
use super::rng;
use super::scenario::{CaseSource, Hours, Scenario};

/// The vault as the plan sees it: customers `0..customers` are real, the next
/// `canaries` are canaries (which no honest contact ever reaches), and the last
/// `allocation_pool` are canaries too, which no one's own pick reaches either.
#[derive(Clone, Copy, Debug)]
pub struct Vault {
    /// Real customers.
    pub customers: u32,
    /// Canary customers, among what an insider may pick.
    pub canaries: u32,
    /// Further canaries, reached only as Custos allocates them (`[canaries]
    /// allocation_rate`). Kept out of insiders' picks: in a real vault of millions a
    /// pool of thousands is too small a share to be picked by chance, which this small
    /// simulated vault would not show.
    pub allocation_pool: u32,
}

/// One insider: a person and the scenario they follow.
#[derive(Clone, Debug)]
pub struct Insider {
    /// Index into [`Company::staff`].
    pub staff: usize,
    /// Index into the scenarios.
    pub scenario: usize,
    /// The working days on which they abuse, ascending.
    pub active_days: Vec<u32>,
    /// Whether they leave after the last active day.
    pub leaves: bool,
}

/// A unit of work: one contact (case, view, reveals, close) or one probing search.
#[derive(Clone, Debug)]
pub struct Script {
    /// When it starts, unix ms.
    pub at: i64,
    /// Index into [`Company::staff`].
    pub staff: usize,
    /// The insider (index into [`Plan::insiders`]) if this is abuse.
    pub insider: Option<usize>,
    /// What is done.
    pub work: Work,
}

/// What a script does.
#[derive(Clone, Debug)]
pub enum Work {
    /// The CRM opens a case, the person works it.
    Contact(Contact),
    /// A search for a phone number: a vault customer's (`Some`) or a random number.
    Probe(Option<u32>),
}

/// One case from opening to closing.
#[derive(Clone, Debug)]
pub struct Contact {
    /// Index into the vault.
    pub customer: u32,
    /// Whether the customer started the contact.
    pub inbound: bool,
    /// Whether the customer really did, from their own number or address, so that the
    /// contact centre reports it (a disguised insider's case only claims to be inbound).
    pub from_customer: bool,
    /// Whether the person asked the CRM for the case (else the CRM opened it on an
    /// inbound contact).
    pub requested: bool,
    /// Whether the person first searches the customer's phone number.
    pub search_first: bool,
    /// Seconds from the case's opening to the view.
    pub view_after_s: u32,
    /// Fields revealed, and seconds from opening to the reveal.
    pub reveal: Vec<&'static str>,
    /// Seconds from opening to the reveal.
    pub reveal_after_s: u32,
    /// Seconds from opening to closing by the person; `None` leaves it open.
    pub close_after_s: Option<u32>,
}

/// The whole run's cast: company, vault, scenarios and insiders.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The company.
    pub company: Company,
    /// The vault's layout.
    pub vault: Vault,
    /// The scenarios, in the order given.
    pub scenarios: Vec<Scenario>,
    /// The insiders.
    pub insiders: Vec<Insider>,
    /// Daily customer quota per role name, for quota hugging.
    pub customer_quota: HashMap<Role, u32>,
    seed: u64,
}

const FIELD_NAMES: [&str; 4] = ["name", "phone", "email", "account_id"];

fn field(name: &str) -> &'static str {
    FIELD_NAMES
        .iter()
        .copied()
        .find(|f| *f == name)
        .unwrap_or("phone")
}

impl Plan {
    /// Scenarios whose insiders never act in this run (every start day lies past its
    /// last day, or after they left), with how many insiders each has.
    pub fn idle_scenarios(&self) -> Vec<(&Scenario, usize)> {
        self.scenarios
            .iter()
            .enumerate()
            .filter_map(|(s, scenario)| {
                let cast: Vec<&Insider> =
                    self.insiders.iter().filter(|i| i.scenario == s).collect();
                (!cast.is_empty() && cast.iter().all(|i| i.active_days.is_empty()))
                    .then_some((scenario, cast.len()))
            })
            .collect()
    }

    /// Casts the insiders of `scenarios` among `company`'s staff.
    pub fn new(
        company: Company,
        vault: Vault,
        scenarios: Vec<Scenario>,
        customer_quota: HashMap<Role, u32>,
        seed: u64,
    ) -> Result<Plan, String> {
        let mut taken = HashSet::new();
        let mut insiders = Vec::new();
        for (s, scenario) in scenarios.iter().enumerate() {
            let mut rng = rng::stream(seed, "cast", s as u64);
            let cast = cast(&company, scenario, &taken, &mut rng)?;
            for staff in cast {
                taken.insert(staff);
                let person = &company.staff[staff];
                let start = rng::between(&mut rng, scenario.start_day);
                let start = if start < 0 {
                    i64::from(company.days) + start
                } else {
                    start
                }
                .max(i64::from(person.hired_day)) as u32;
                let wanted = rng::between(&mut rng, scenario.active_days) as usize;
                let active_days = (start..company.days)
                    .filter(|&d| company.works(person, d))
                    .take(wanted)
                    .collect();
                insiders.push(Insider {
                    staff,
                    scenario: s,
                    active_days,
                    leaves: scenario.leaves,
                });
            }
        }
        Ok(Plan {
            company,
            vault,
            scenarios,
            insiders,
            customer_quota,
            seed,
        })
    }

    /// The insider index of a staff index, if any.
    pub fn insider_of(&self, staff: usize) -> Option<usize> {
        self.insiders.iter().position(|i| i.staff == staff)
    }

    /// Whether `person` (index `staff`) works on `day`: hired, not off, not left.
    pub fn works(&self, staff: usize, day: u32) -> bool {
        let person = &self.company.staff[staff];
        if !self.company.works(person, day) {
            return false;
        }
        !self.insiders.iter().any(|i| {
            i.staff == staff && i.leaves && i.active_days.last().is_some_and(|&last| day > last)
        })
    }

    /// Every script of `day`, in time order.
    pub fn day(&self, day: u32) -> Vec<Script> {
        let mut scripts = Vec::new();
        let factor = self.company.demand_factor(day);
        for (staff, person) in self.company.staff.iter().enumerate() {
            if !self.works(staff, day) {
                continue;
            }
            let mut rng = rng::stream(self.seed, "demand", u64::from(day) << 32 | staff as u64);
            let honest = rng::poisson(&mut rng, person.contacts_per_day * factor);
            let active = self
                .insider_of(staff)
                .filter(|&i| self.insiders[i].active_days.contains(&day));
            // An insider harvesting their callers takes every inbound contact's fields.
            let harvest = active.and_then(|i| {
                let scenario = &self.scenarios[self.insiders[i].scenario];
                (scenario.cases == CaseSource::Callers)
                    .then(|| (i, scenario.reveal.iter().map(|f| field(f)).collect()))
            });
            for _ in 0..honest {
                let mut script = self.honest_contact(&mut rng, staff, person, day);
                if let (Some((i, fields)), Work::Contact(c)) = (&harvest, &mut script.work)
                    && c.inbound
                {
                    c.reveal.clone_from(fields);
                    script.insider = Some(*i);
                }
                scripts.push(script);
            }
            if let Some(i) = active {
                self.abuse(&mut scripts, i, day, honest);
            }
        }
        scripts.sort_by_key(|s| (s.at, s.staff));
        scripts
    }

    fn honest_contact(&self, rng: &mut StdRng, staff: usize, person: &Person, day: u32) -> Script {
        let partner = self.company.org_of(person).partner;
        let mut reveal = Vec::new();
        if rng.random_bool(0.35) {
            reveal.push("phone");
        }
        // Partner staff may not see emails in full; a few try anyway and are refused.
        if rng.random_bool(if partner { 0.005 } else { 0.08 }) {
            reveal.push("email");
        }
        if rng.random_bool(0.02) {
            reveal.push("name");
        }
        let inbound = !rng.random_bool(0.03);
        Script {
            at: shift_time(rng, person, day, Hours::Shift),
            staff,
            insider: None,
            work: Work::Contact(Contact {
                customer: rng.random_range(0..self.vault.customers),
                inbound,
                from_customer: inbound,
                // Follow-ups (no inbound contact) are asked for by the agent.
                requested: !inbound,
                search_first: rng.random_bool(0.08),
                view_after_s: rng.random_range(5..40),
                reveal,
                reveal_after_s: rng.random_range(40..180),
                close_after_s: rng.random_bool(0.92).then(|| rng.random_range(180..1500)),
            }),
        }
    }

    fn abuse(&self, scripts: &mut Vec<Script>, i: usize, day: u32, honest: u32) {
        let insider = &self.insiders[i];
        let scenario = &self.scenarios[insider.scenario];
        let person = &self.company.staff[insider.staff];
        let mut rng = rng::stream(self.seed, "abuse", (i as u64) << 32 | u64::from(day));
        let customers = match scenario.quota_share {
            Some(share) => self
                .customer_quota
                .get(&person.role)
                .map_or(0, |&q| (f64::from(q) * share) as u32)
                .saturating_sub(honest),
            None => rng::between(&mut rng, scenario.customers_per_day) as u32,
        };
        let reveal: Vec<&'static str> = scenario.reveal.iter().map(|f| field(f)).collect();
        let all = self.vault.customers + self.vault.canaries;
        for _ in 0..customers {
            if scenario.cases != CaseSource::Pretext {
                // Disguised: a case like any honest one, but for a customer of their choice.
                let mut script = self.honest_contact(&mut rng, insider.staff, person, day);
                script.insider = Some(i);
                if scenario.hours != Hours::Shift {
                    script.at = shift_time(&mut rng, person, day, scenario.hours);
                }
                if let Work::Contact(c) = &mut script.work {
                    // Insiders cannot tell canaries from customers; and the customer they
                    // choose did not call: the CRM opens the case on the insider's word.
                    c.customer = rng.random_range(0..all);
                    c.from_customer = false;
                }
                scripts.push(script);
                continue;
            }
            scripts.push(Script {
                at: shift_time(&mut rng, person, day, scenario.hours),
                staff: insider.staff,
                insider: Some(i),
                work: Work::Contact(Contact {
                    // Insiders cannot tell canaries from customers.
                    customer: rng.random_range(0..all),
                    inbound: false,
                    from_customer: false,
                    requested: true,
                    search_first: false,
                    view_after_s: rng.random_range(3..15),
                    reveal: reveal.clone(),
                    reveal_after_s: rng.random_range(15..45),
                    close_after_s: rng.random_bool(0.5).then(|| rng.random_range(60..600)),
                }),
            });
        }
        let probes = rng::between(&mut rng, scenario.searches_per_day);
        for _ in 0..probes {
            let target = rng.random_bool(0.2).then(|| rng.random_range(0..all));
            scripts.push(Script {
                at: shift_time(&mut rng, person, day, scenario.hours),
                staff: insider.staff,
                insider: Some(i),
                work: Work::Probe(target),
            });
        }
    }
}

/// A uniform time of `day` within the hours asked for.
fn shift_time(rng: &mut StdRng, person: &Person, day: u32, hours: Hours) -> i64 {
    let (start, end) = match hours {
        Hours::Shift => (f64::from(person.shift.0), f64::from(person.shift.1)),
        Hours::Evening => (f64::from(person.shift.1), 24.0),
        Hours::Night => (0.0, 5.0),
    };
    local_time(day, rng.random_range(start..end))
}

/// Chooses `scenario.insiders` people not yet taken, of the scenario's role and
/// organisations; with `rings`, from that many organisations only.
fn cast(
    company: &Company,
    scenario: &Scenario,
    taken: &HashSet<usize>,
    rng: &mut StdRng,
) -> Result<Vec<usize>, String> {
    let org_ok = |o: usize| {
        let org = &company.orgs[o];
        match scenario.org.as_str() {
            "any" => true,
            "company" => !org.partner,
            "partner" => org.partner,
            name => org.name == name,
        }
    };
    let eligible = |p: &(usize, &Person)| {
        p.1.role == scenario.role && org_ok(p.1.org) && !taken.contains(&p.0)
    };
    let mut pool: Vec<usize> = company
        .staff
        .iter()
        .enumerate()
        .filter(eligible)
        .map(|(i, _)| i)
        .collect();
    if let Some(rings) = scenario.rings {
        let mut orgs: Vec<usize> = (0..company.orgs.len()).filter(|&o| org_ok(o)).collect();
        orgs.shuffle(rng);
        orgs.truncate(rings as usize);
        pool.retain(|&i| orgs.contains(&company.staff[i].org));
        // Spread the insiders evenly over the ring's organisations.
        let mut per_org: Vec<Vec<usize>> = orgs
            .iter()
            .map(|&o| {
                let mut v: Vec<usize> = pool
                    .iter()
                    .copied()
                    .filter(|&i| company.staff[i].org == o)
                    .collect();
                v.shuffle(rng);
                v
            })
            .collect();
        let mut chosen = Vec::new();
        'fill: while chosen.len() < scenario.insiders as usize {
            let before = chosen.len();
            for members in &mut per_org {
                if chosen.len() == scenario.insiders as usize {
                    break 'fill;
                }
                if let Some(p) = members.pop() {
                    chosen.push(p);
                }
            }
            if chosen.len() == before {
                break;
            }
        }
        pool = chosen;
    } else {
        pool.shuffle(rng);
    }
    if pool.len() < scenario.insiders as usize {
        return Err(format!(
            "scenario {}: only {} eligible {} staff for {} insiders; add staff",
            scenario.name,
            pool.len(),
            scenario.role,
            scenario.insiders
        ));
    }
    pool.truncate(scenario.insiders as usize);
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota() -> HashMap<Role, u32> {
        HashMap::from([(Role::Support, 80)])
    }

    fn plan(scenarios: &[&str]) -> Plan {
        let scenarios = scenarios
            .iter()
            .map(|s| Scenario::parse(s).unwrap())
            .collect();
        Plan::new(
            Company::generate(600, 30, 9),
            Vault {
                allocation_pool: 0,
                customers: 10_000,
                canaries: 10,
            },
            scenarios,
            quota(),
            9,
        )
        .unwrap()
    }

    const RING: &str = "name = \"ring\"\ninsiders = 12\norg = \"partner\"\nrings = 1\nstart_day = [5, 5]\nactive_days = [3, 3]\ncustomers_per_day = [10, 10]\n";
    const HUG: &str = "name = \"hug\"\ninsiders = 2\nstart_day = [1, 1]\nactive_days = [5, 5]\nquota_share = 0.95\n";

    #[test]
    fn a_ring_comes_from_one_partner_and_works_its_days() {
        let p = plan(&[RING]);
        let orgs: HashSet<usize> = p
            .insiders
            .iter()
            .map(|i| p.company.staff[i.staff].org)
            .collect();
        assert_eq!(orgs.len(), 1);
        assert!(p.company.orgs[*orgs.iter().next().unwrap()].partner);
        let insider = &p.insiders[0];
        assert_eq!(insider.active_days.len(), 3);
        let day = insider.active_days[0];
        let abuse = p.day(day).iter().filter(|s| s.insider == Some(0)).count();
        assert_eq!(abuse, 10);
    }

    #[test]
    fn days_are_deterministic_and_sorted() {
        let p = plan(&[RING]);
        let a = p.day(7);
        let b = p.day(7);
        assert_eq!(a.len(), b.len());
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.at == y.at && x.staff == y.staff)
        );
        // Honest contacts never reach canaries.
        assert!(a.iter().all(|s| match &s.work {
            Work::Contact(c) => s.insider.is_some() || c.customer < 10_000,
            Work::Probe(_) => true,
        }));
    }

    const DISGUISED: &str = "name = \"disguised\"\ninsiders = 3\nstart_day = [1, 1]\nactive_days = [8, 8]\ncustomers_per_day = [40, 40]\nreveal = [\"name\", \"phone\"]\ncases = \"disguised\"\n";
    const CALLERS: &str = "name = \"callers\"\ninsiders = 2\nstart_day = [1, 1]\nactive_days = [3, 3]\nreveal = [\"name\", \"phone\", \"email\"]\ncases = \"callers\"\n";

    /// The contacts of `day`'s scripts, abusive (`true`) or honest.
    fn contacts(p: &Plan, day: u32, abusive: bool) -> Vec<Contact> {
        p.day(day)
            .into_iter()
            .filter(|s| s.insider.is_some() == abusive)
            .filter_map(|s| match s.work {
                Work::Contact(c) => Some(c),
                Work::Probe(_) => None,
            })
            .collect()
    }

    #[test]
    fn disguised_cases_look_like_honest_ones() {
        let p = plan(&[DISGUISED]);
        let (mut abusive, mut honest) = (Vec::new(), Vec::new());
        for day in 0..p.company.days {
            abusive.extend(contacts(&p, day, true));
            honest.extend(contacts(&p, day, false));
        }
        assert!(abusive.len() >= 3 * 8 * 40, "{}", abusive.len());
        let share = |cs: &[Contact], f: &dyn Fn(&Contact) -> bool| {
            cs.iter().filter(|c| f(c)).count() as f64 / cs.len() as f64
        };
        // Every field the insider controls is drawn as honest work draws it.
        for c in &abusive {
            assert_eq!(c.requested, !c.inbound);
            assert!((5..40).contains(&c.view_after_s), "{c:?}");
            assert!((40..180).contains(&c.reveal_after_s), "{c:?}");
            assert!(c.close_after_s.is_none_or(|s| (180..1500).contains(&s)));
        }
        let features: [&dyn Fn(&Contact) -> bool; 5] = [
            &|c| c.inbound,
            &|c| c.search_first,
            &|c| c.reveal.contains(&"phone"),
            &|c| c.reveal.contains(&"name"),
            &|c| c.close_after_s.is_some(),
        ];
        for f in features {
            let (a, h) = (share(&abusive, f), share(&honest, f));
            assert!((a - h).abs() < 0.03, "{a} against {h}");
        }
    }

    #[test]
    fn harvesting_callers_takes_every_inbound_contact_and_adds_none() {
        let p = plan(&[CALLERS]);
        let insider = &p.insiders[0];
        let day = insider.active_days[0];
        let theirs: Vec<Script> = p
            .day(day)
            .into_iter()
            .filter(|s| s.staff == insider.staff)
            .collect();
        let mut taken = 0;
        for s in &theirs {
            let Work::Contact(c) = &s.work else {
                panic!("a probe")
            };
            assert_eq!(s.insider.is_some(), c.inbound, "{c:?}");
            if c.inbound {
                assert_eq!(c.reveal, ["name", "phone", "email"]);
                assert!(c.customer < p.vault.customers);
                taken += 1;
            }
        }
        assert!(taken > 0);
        // The same day without the insider's scenario: the same contacts, honest.
        let honest = plan(&[]);
        let before = honest
            .day(day)
            .into_iter()
            .filter(|s| s.staff == insider.staff)
            .count();
        assert_eq!(before, theirs.len());
        // Not an active day: untouched.
        let after = insider.active_days.last().unwrap() + 1;
        assert!(
            p.day(after)
                .iter()
                .all(|s| s.staff != insider.staff || s.insider.is_none())
        );
    }

    #[test]
    fn quota_hugging_fills_up_to_the_share() {
        let p = plan(&[HUG]);
        let insider = &p.insiders[0];
        let day = insider.active_days[0];
        let total = p
            .day(day)
            .iter()
            .filter(|s| s.staff == insider.staff && matches!(s.work, Work::Contact(_)))
            .count();
        // Honest work plus abuse fill 95% of the quota (more on a busy honest day).
        assert!(total >= 76, "{total}");
    }
}
