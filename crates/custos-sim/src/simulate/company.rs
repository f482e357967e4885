//! The synthetic company: organisations, staff with roles, shifts, days off and hire
//! dates, and the calendar (weekly rhythm, launch days).
//!
//! Everyone works in one time zone, UTC+8 ([`UTC_OFFSET_MS`]); day 0 is Monday
//! 2026-01-05 ([`EPOCH_MS`]).

use rand::Rng;
use rand::rngs::StdRng;

use super::rng;

/// Local midnight starting day 0: Monday 2026-01-05 00:00 at UTC+8, unix ms.
pub const EPOCH_MS: i64 = 1_767_542_400_000;
/// The company's offset from UTC (China Standard Time).
pub const UTC_OFFSET_MS: i64 = 8 * HOUR_MS;
use custos_types::Role;
use custos_types::calendar::{DAY_MS, HOUR_MS};

/// The company itself and its outsourcing partners, largest partners first.
const ORGS: [(&str, bool, f64); 5] = [
    ("custos", false, 0.25),
    ("partner-1", true, 0.27),
    ("partner-2", true, 0.23),
    ("partner-3", true, 0.15),
    ("partner-4", true, 0.10),
];

/// Median contacts a day of a person in `role` (0: none).
fn median_contacts(role: Role) -> f64 {
    match role {
        Role::Support => 45.0,
        Role::Sales => 28.0,
        Role::TeamLead => 12.0,
        Role::SecurityAnalyst
        | Role::Admin
        | Role::Integration
        | Role::ContactCenter
        | Role::Telephony
        | Role::Scim
        | Role::PrivacyOfficer => 0.0,
    }
}

/// An organisation.
#[derive(Clone, Debug)]
pub struct Org {
    /// Its name in the gateway.
    pub name: &'static str,
    /// Whether it is an outsourcing partner.
    pub partner: bool,
}

/// One member of staff.
#[derive(Clone, Debug)]
pub struct Person {
    /// Staff id, e.g. `sim-00042`.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Index into [`Company::orgs`].
    pub org: usize,
    /// Local working hours: start (inclusive) and end (exclusive).
    pub shift: (u8, u8),
    /// Weekdays off (0 = Monday).
    pub days_off: [u8; 2],
    /// First working day (new hires start after day 0).
    pub hired_day: u32,
    /// The person's own typical contacts a day before the calendar's rhythm.
    pub contacts_per_day: f64,
}

/// The simulated company.
#[derive(Clone, Debug)]
pub struct Company {
    /// Organisations; index 0 is the company itself.
    pub orgs: Vec<Org>,
    /// Staff, in id order.
    pub staff: Vec<Person>,
    /// Days with a product launch: demand ×3.
    pub launch_days: Vec<u32>,
    /// Length of the run in days.
    pub days: u32,
}

impl Company {
    /// A company of `staff` people over `days` days, drawn from `seed`.
    pub fn generate(staff: u32, days: u32, seed: u64) -> Company {
        let mut rng = rng::stream(seed, "company", 0);
        let orgs = ORGS
            .iter()
            .map(|&(name, partner, _)| Org { name, partner })
            .collect();
        let people = (0..staff)
            .map(|i| person(&mut rng, i, staff, days))
            .collect();
        // One launch in the first half and one in the second (if the run is long enough).
        let mut launch_days = Vec::new();
        if days >= 6 {
            launch_days.push(rng.random_range(2..days / 2));
            launch_days.push(rng.random_range(days / 2..days));
        }
        Company {
            orgs,
            staff: people,
            launch_days,
            days,
        }
    }

    /// Whether `person` works on `day`.
    pub fn works(&self, person: &Person, day: u32) -> bool {
        day >= person.hired_day && !person.days_off.contains(&weekday(day))
    }

    /// Demand of `day` relative to an ordinary Wednesday: weekly rhythm and launches.
    pub fn demand_factor(&self, day: u32) -> f64 {
        const WEEK: [f64; 7] = [1.15, 1.05, 1.0, 1.0, 0.95, 0.8, 0.7];
        let launch = if self.launch_days.contains(&day) {
            3.0
        } else {
            1.0
        };
        WEEK[weekday(day) as usize] * launch
    }

    /// The organisation of `person`.
    pub fn org_of(&self, person: &Person) -> &Org {
        &self.orgs[person.org]
    }
}

/// Unix ms of `day` at local hour `hour` (fractional hours allowed).
pub fn local_time(day: u32, hour: f64) -> i64 {
    EPOCH_MS + i64::from(day) * DAY_MS + (hour * HOUR_MS as f64) as i64
}

/// The run day of a unix ms time (negative before day 0).
pub fn day_of(at: i64) -> i64 {
    (at - EPOCH_MS).div_euclid(DAY_MS)
}

/// Weekday of `day`, 0 = Monday.
pub fn weekday(day: u32) -> u8 {
    (day % 7) as u8
}

fn person(rng: &mut StdRng, i: u32, staff: u32, days: u32) -> Person {
    let mut pick: f64 = rng.random();
    let mut org = 0;
    for (o, &(_, _, share)) in ORGS.iter().enumerate() {
        org = o;
        if pick < share {
            break;
        }
        pick -= share;
    }
    let role = if org == 0 {
        // Small fixed numbers of analysts and admins at the company itself.
        match rng.random_range(0..100) {
            0..=49 => Role::Support,
            50..=74 => Role::Sales,
            75..=89 => Role::TeamLead,
            90..=95 => Role::SecurityAnalyst,
            _ => Role::Admin,
        }
    } else {
        match rng.random_range(0..100) {
            0..=84 => Role::Support,
            85..=91 => Role::Sales,
            _ => Role::TeamLead,
        }
    };
    let shift = match rng.random_range(0..4) {
        0 => (7, 15),
        3 => (13, 22),
        _ => (9, 18),
    };
    // The company works Monday to Friday; partners run the week in rotating pairs.
    let days_off = if org == 0 {
        [5, 6]
    } else {
        let first = rng.random_range(0..7u8);
        [first, (first + 1) % 7]
    };
    // About 3% are hired during the run.
    let hired_day = if days > 2 && rng.random_range(0..100) < 3 {
        rng.random_range(1..days)
    } else {
        0
    };
    let median = median_contacts(role);
    let contacts_per_day = if median > 0.0 {
        rng::log_normal(rng, median, 0.45).clamp(3.0, 6.0 * median)
    } else {
        0.0
    };
    Person {
        id: format!("sim-{:0width$}", i + 1, width = digits(staff)),
        role,
        org,
        shift,
        days_off,
        hired_day,
        contacts_per_day,
    }
}

fn digits(n: u32) -> usize {
    n.max(1).to_string().len().max(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_company() {
        let a = Company::generate(500, 30, 3);
        let b = Company::generate(500, 30, 3);
        assert_eq!(a.staff.len(), 500);
        for (x, y) in a.staff.iter().zip(&b.staff) {
            assert_eq!((&x.id, x.org, x.shift), (&y.id, y.org, y.shift));
        }
        assert_ne!(
            a.staff.iter().map(|p| p.org).collect::<Vec<_>>(),
            Company::generate(500, 30, 4)
                .staff
                .iter()
                .map(|p| p.org)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn most_agents_handle_20_to_80_contacts() {
        let company = Company::generate(4000, 30, 1);
        let agents: Vec<f64> = company
            .staff
            .iter()
            .filter(|p| p.role == Role::Support)
            .map(|p| p.contacts_per_day)
            .collect();
        let within = agents.iter().filter(|c| (20.0..=80.0).contains(*c)).count();
        assert!(
            within * 10 >= agents.len() * 8,
            "{within} of {}",
            agents.len()
        );
        assert!(company.orgs.iter().filter(|o| o.partner).count() >= 3);
        assert!(company.demand_factor(company.launch_days[0]) >= 3.0 * 0.7);
    }

    #[test]
    fn days_and_times() {
        assert_eq!(weekday(0), 0);
        assert_eq!(day_of(local_time(3, 23.5)), 3);
        assert_eq!(day_of(local_time(0, 0.0) - 1), -1);
    }
}
