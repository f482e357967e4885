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
use super::scenario::{CaseSource, Hours, Scenario, Unlock};

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

/// How honest work reaches customers in the world after contact provenance: where
/// contacts come from, and how often agents use the relays instead of a reveal.
#[derive(Clone, Copy, Debug)]
pub struct World {
    /// Share of the contacts where the agent needs to reach the customer (a call back,
    /// a mail) that go through the relays rather than a reveal.
    pub relay_adoption: f64,
    /// Share of inbound contacts made from a number or address not on file (another
    /// phone, a relative's): the contact centre cannot vouch for them, so their cases
    /// are `unverified`.
    pub other_number_share: f64,
    /// Share of an agent's contacts that are assignments of an outbound campaign of the
    /// company's systems (`outbound` cases).
    pub campaign_share: f64,
    /// Share of an agent's contacts that are follow-ups the agent asks for
    /// (`requested` cases).
    pub follow_up_share: f64,
    /// How many of one person's access requests an honest approver approves in a day;
    /// the approvers see the queue, and deny what they would not believe of one
    /// person's day.
    pub approver_daily_limit: u32,
}

impl Default for World {
    fn default() -> Self {
        World {
            relay_adoption: 0.95,
            other_number_share: 0.05,
            campaign_share: 0.03,
            follow_up_share: 0.03,
            approver_daily_limit: 5,
        }
    }
}

/// One insider: a person and the scenario they follow.
#[derive(Clone, Debug)]
pub struct Insider {
    /// Index into [`Company::staff`].
    pub staff: usize,
    /// Index into the scenarios.
    pub scenario: usize,
    /// The working days on which they abuse, ascending (none for a colluding approver,
    /// who acts when the others ask).
    pub active_days: Vec<u32>,
    /// Whether they leave after the last active day.
    pub leaves: bool,
    /// Whether this is the scenario's colluding approver.
    pub approver: bool,
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

/// Where a case comes from: what decides its provenance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The customer contacted the company from their own number or address; the contact
    /// centre reports it (`verified`).
    Caller,
    /// Someone contacted the company about the customer from a number or address not on
    /// file; the contact centre reports it and the CRM opens the case on it
    /// (`unverified`).
    OtherNumber,
    /// The person asked the CRM for a follow-up (`requested`).
    FollowUp,
    /// An outbound campaign's assignment by the company's systems (`outbound`).
    Campaign,
}

impl Origin {
    /// Whether a contact someone started stands behind the case.
    pub fn inbound(self) -> bool {
        matches!(self, Origin::Caller | Origin::OtherNumber)
    }
}

/// One case from opening to closing.
#[derive(Clone, Debug)]
pub struct Contact {
    /// Index into the vault.
    pub customer: u32,
    /// Where the case comes from.
    pub origin: Origin,
    /// Whether the person first searches the customer's phone number.
    pub search_first: bool,
    /// Seconds from the case's opening to the view.
    pub view_after_s: u32,
    /// Whether the person reaches the customer through the privacy-number relay, after
    /// the view.
    pub relay_call: bool,
    /// Fields revealed.
    pub reveal: Vec<&'static str>,
    /// Seconds from opening to the reveal (and to the relay call).
    pub reveal_after_s: u32,
    /// What the person does when the reveal is refused for want of a verified contact.
    pub unlock: Unlock,
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
    /// How honest work reaches customers.
    pub world: World,
    /// The honest approvers: the company's team leads who are no insider.
    pub approvers: Vec<usize>,
    seed: u64,
}

/// Share of honest follow-ups about a customer of the agent's own earlier contact.
const FOLLOW_UP_OWN: f64 = 0.8;
/// How many days back an agent follows up their own contacts.
const FOLLOW_UP_DAYS: u32 = 7;

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
        world: World,
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
                    approver: false,
                });
            }
            if scenario.colluding_approver {
                let mut leads: Vec<usize> = company
                    .staff
                    .iter()
                    .enumerate()
                    .filter(|(i, p)| {
                        p.role == Role::TeamLead && !company.org_of(p).partner && !taken.contains(i)
                    })
                    .map(|(i, _)| i)
                    .collect();
                leads.shuffle(&mut rng);
                let staff = *leads.first().ok_or_else(|| {
                    format!(
                        "scenario {}: no company team lead left to collude; add staff",
                        scenario.name
                    )
                })?;
                taken.insert(staff);
                insiders.push(Insider {
                    staff,
                    scenario: s,
                    active_days: Vec::new(),
                    leaves: false,
                    approver: true,
                });
            }
        }
        let approvers = company
            .staff
            .iter()
            .enumerate()
            .filter(|(i, p)| {
                p.role == Role::TeamLead && !company.org_of(p).partner && !taken.contains(i)
            })
            .map(|(i, _)| i)
            .collect();
        Ok(Plan {
            company,
            vault,
            scenarios,
            insiders,
            customer_quota,
            world,
            approvers,
            seed,
        })
    }

    /// Who decides an access request of `staff` made on `day`: the colluding approver of
    /// their scenario, or an honest company team lead at work that day, drawn with
    /// `draw`. `None` when no one is at work to approve.
    pub fn approver_for(&self, staff: usize, day: u32, draw: u64) -> Option<usize> {
        if let Some(i) = self.insider_of(staff) {
            let scenario = self.insiders[i].scenario;
            if let Some(accomplice) = self
                .insiders
                .iter()
                .find(|a| a.approver && a.scenario == scenario)
            {
                return Some(accomplice.staff);
            }
        }
        let at_work: Vec<usize> = self
            .approvers
            .iter()
            .copied()
            .filter(|&a| a != staff && self.works(a, day))
            .collect();
        (!at_work.is_empty()).then(|| at_work[(draw % at_work.len() as u64) as usize])
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
        for staff in 0..self.company.staff.len() {
            if !self.works(staff, day) {
                continue;
            }
            let mut own = self.honest_scripts(staff, day);
            self.follow_up_own_contacts(&mut own, staff, day);
            let honest = own.len() as u32;
            let active = self
                .insider_of(staff)
                .filter(|&i| self.insiders[i].active_days.contains(&day));
            // An insider harvesting their callers takes every inbound contact's fields.
            let harvest = active.and_then(|i| {
                let scenario = &self.scenarios[self.insiders[i].scenario];
                (scenario.cases == CaseSource::Callers).then_some((i, scenario))
            });
            for mut script in own {
                if let (Some((i, scenario)), Work::Contact(c)) = (harvest, &mut script.work)
                    && c.origin.inbound()
                {
                    c.reveal = scenario.reveal.iter().map(|f| field(f)).collect();
                    c.relay_call |= scenario.relay_calls;
                    c.unlock = scenario.unlock;
                    script.insider = Some(i);
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

    /// The honest contacts of `staff` on `day` (who works that day), as drawn: the
    /// day's demand, then each contact.
    fn honest_scripts(&self, staff: usize, day: u32) -> Vec<Script> {
        let person = &self.company.staff[staff];
        let mut rng = rng::stream(self.seed, "demand", u64::from(day) << 32 | staff as u64);
        let mean = person.contacts_per_day * self.company.demand_factor(day);
        (0..rng::poisson(&mut rng, mean))
            .map(|_| self.honest_contact(&mut rng, staff, person, day))
            .collect()
    }

    /// A follow-up follows a contact: most of an agent's follow-ups
    /// ([`FOLLOW_UP_OWN`]) are about a customer who reached them from their own number,
    /// or whom a campaign gave them, on one of the last [`FOLLOW_UP_DAYS`] days they
    /// worked; the others are about someone else's customer (a colleague's case handed
    /// over), drawn at random as before.
    fn follow_up_own_contacts(&self, scripts: &mut [Script], staff: usize, day: u32) {
        let mut rng = rng::stream(self.seed, "follow-up", u64::from(day) << 32 | staff as u64);
        let worked: Vec<u32> = (day.saturating_sub(FOLLOW_UP_DAYS)..day)
            .filter(|&d| self.works(staff, d))
            .collect();
        let mut vouched: HashMap<u32, Vec<u32>> = HashMap::new();
        for script in scripts {
            let Work::Contact(c) = &mut script.work else {
                continue;
            };
            if c.origin != Origin::FollowUp || worked.is_empty() || !rng.random_bool(FOLLOW_UP_OWN)
            {
                continue;
            }
            let earlier = worked[rng.random_range(0..worked.len())];
            let served = vouched.entry(earlier).or_insert_with(|| {
                self.honest_scripts(staff, earlier)
                    .into_iter()
                    .filter_map(|s| match s.work {
                        Work::Contact(c)
                            if matches!(c.origin, Origin::Caller | Origin::Campaign) =>
                        {
                            Some(c.customer)
                        }
                        _ => None,
                    })
                    .collect()
            });
            if !served.is_empty() {
                c.customer = served[rng.random_range(0..served.len())];
            }
        }
    }

    /// One honest contact. What the agent needs: to reach the customer by phone (35%)
    /// or mail (8%; partner staff, who may not see emails, 0.5%), and now and then the
    /// name in full (2%). Reaching goes through the relays with the world's adoption,
    /// else by a reveal; a reveal refused for want of a verified contact is asked for.
    /// An outbound campaign's assignment never reveals: the relays are its way.
    fn honest_contact(&self, rng: &mut StdRng, staff: usize, person: &Person, day: u32) -> Script {
        let partner = self.company.org_of(person).partner;
        let world = &self.world;
        let call_back = rng.random_bool(0.35);
        let mail = rng.random_bool(if partner { 0.005 } else { 0.08 });
        let name = rng.random_bool(0.02);
        let origin = {
            let u: f64 = rng.random();
            if u < world.campaign_share {
                Origin::Campaign
            } else if u < world.campaign_share + world.follow_up_share {
                Origin::FollowUp
            } else if rng.random_bool(world.other_number_share) {
                Origin::OtherNumber
            } else {
                Origin::Caller
            }
        };
        let reach = call_back || mail;
        let relay_call =
            reach && (origin == Origin::Campaign || rng.random_bool(world.relay_adoption));
        let mut reveal = Vec::new();
        if reach && !relay_call {
            if call_back {
                reveal.push("phone");
            }
            if mail {
                reveal.push("email");
            }
        }
        if name && origin != Origin::Campaign {
            reveal.push("name");
        }
        Script {
            at: shift_time(rng, person, day, Hours::Shift),
            staff,
            insider: None,
            work: Work::Contact(Contact {
                customer: rng.random_range(0..self.vault.customers),
                origin,
                search_first: rng.random_bool(0.08),
                view_after_s: rng.random_range(5..40),
                relay_call,
                reveal,
                reveal_after_s: rng.random_range(40..180),
                unlock: Unlock::Request,
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
                    // choose did not call: an accomplice does, from a number of their own,
                    // or the insider asks for a follow-up (no campaign is theirs to make).
                    c.customer = rng.random_range(0..all);
                    c.origin = if c.origin.inbound() {
                        Origin::OtherNumber
                    } else {
                        Origin::FollowUp
                    };
                    c.reveal.clone_from(&reveal);
                    c.relay_call = scenario.relay_calls;
                    c.unlock = scenario.unlock;
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
                    origin: Origin::FollowUp,
                    search_first: false,
                    view_after_s: rng.random_range(3..15),
                    relay_call: scenario.relay_calls,
                    reveal: reveal.clone(),
                    reveal_after_s: rng.random_range(15..45),
                    unlock: scenario.unlock,
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
            World::default(),
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
        // Every field the insider controls is drawn as honest work draws it; the
        // contacts come from other numbers (accomplices) or are follow-ups.
        for c in &abusive {
            assert!(
                matches!(c.origin, Origin::OtherNumber | Origin::FollowUp),
                "{c:?}"
            );
            assert_eq!(c.reveal, ["name", "phone"]);
            assert!((5..40).contains(&c.view_after_s), "{c:?}");
            assert!((40..180).contains(&c.reveal_after_s), "{c:?}");
            assert!(c.close_after_s.is_none_or(|s| (180..1500).contains(&s)));
        }
        let features: [&dyn Fn(&Contact) -> bool; 3] = [
            &|c| c.origin.inbound() || c.origin == Origin::Campaign,
            &|c| c.search_first,
            &|c| c.close_after_s.is_some(),
        ];
        for f in features {
            let (a, h) = (share(&abusive, f), share(&honest, f));
            assert!((a - h).abs() < 0.03, "{a} against {h}");
        }
    }

    #[test]
    fn honest_work_reaches_customers_through_the_relays() {
        let p = plan(&[]);
        let honest: Vec<Contact> = (0..p.company.days)
            .flat_map(|day| contacts(&p, day, false))
            .collect();
        let share = |f: &dyn Fn(&Contact) -> bool| {
            honest.iter().filter(|c| f(c)).count() as f64 / honest.len() as f64
        };
        // A third of contacts need the customer reached: 95% of those by the relay.
        let relayed = share(&|c| c.relay_call);
        assert!((0.3..0.45).contains(&relayed), "{relayed}");
        let reached_by_reveal = share(&|c| c.reveal.iter().any(|f| *f != "name"));
        assert!(reached_by_reveal < 0.03, "{reached_by_reveal}");
        // Campaign cases never reveal; their customers are reached by the relay.
        assert!(
            honest
                .iter()
                .filter(|c| c.origin == Origin::Campaign)
                .all(|c| c.reveal.is_empty())
        );
        let other = share(&|c| c.origin == Origin::OtherNumber);
        assert!((0.03..0.07).contains(&other), "{other}");
        // With no relay, every need is a reveal.
        let mut bare = plan(&[]);
        bare.world.relay_adoption = 0.0;
        let reveals = (0..bare.company.days)
            .flat_map(|day| contacts(&bare, day, false))
            .filter(|c| c.origin != Origin::Campaign)
            .filter(|c| c.reveal.iter().any(|f| *f != "name"))
            .count() as f64
            / honest.len() as f64;
        assert!(reveals > 0.3, "{reveals}");
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
            assert_eq!(s.insider.is_some(), c.origin.inbound(), "{c:?}");
            if c.origin.inbound() {
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

    const COLLUDING: &str = "name = \"ring\"\ninsiders = 4\norg = \"partner\"\nrings = 1\nstart_day = [2, 2]\nactive_days = [3, 3]\ncustomers_per_day = [5, 5]\ncases = \"disguised\"\nunlock = \"request\"\ncolluding_approver = true\n";

    #[test]
    fn a_colluding_approver_is_a_company_lead_who_decides_for_the_ring_only() {
        let p = plan(&[COLLUDING]);
        assert_eq!(p.insiders.len(), 5);
        let accomplice = p.insiders.iter().find(|i| i.approver).unwrap();
        let lead = &p.company.staff[accomplice.staff];
        assert_eq!(lead.role, Role::TeamLead);
        assert!(!p.company.org_of(lead).partner);
        assert!(accomplice.active_days.is_empty());
        assert!(!p.approvers.contains(&accomplice.staff));
        let member = p.insiders.iter().find(|i| !i.approver).unwrap();
        let day = member.active_days[0];
        for draw in 0..20 {
            assert_eq!(
                p.approver_for(member.staff, day, draw),
                Some(accomplice.staff)
            );
        }
        // Everyone else gets an honest lead at work that day, never themselves.
        let honest = (0..p.company.staff.len())
            .find(|&s| p.insider_of(s).is_none() && p.works(s, day))
            .unwrap();
        for draw in 0..20 {
            let a = p.approver_for(honest, day, draw).unwrap();
            assert!(p.approvers.contains(&a) && a != honest && p.works(a, day));
        }
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
