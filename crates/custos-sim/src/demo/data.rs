//! A synthetic company: customers with Chinese mobile numbers, pinyin names and emails;
//! staff at the company and at partner companies. Deterministic for a seed, so tests can
//! regenerate exactly what was loaded and look for it where it must not be.

use custos_types::Role;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

/// Seed of `custos demo`.
pub const DEMO_SEED: u64 = 2017;

/// The company that runs Custos (the gateway's default `company_org`).
pub const COMPANY: &str = "custos";

/// Partner companies (outsourced support and direct sales).
pub const PARTNERS: [&str; 3] = ["huaxin-bpo", "dongfang-sales", "lianxun-support"];

const SURNAMES: [&str; 24] = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
    "Zhu", "Hu", "Guo", "He", "Gao", "Lin", "Luo", "Zheng", "Liang", "Xie", "Song",
];
const GIVEN: [&str; 32] = [
    "Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yang", "Yong", "Yan", "Jie",
    "Tao", "Ming", "Chao", "Xiu Ying", "Xia", "Ping", "Gang", "Hui", "Hong", "Bin", "Yu", "Ling",
    "Xin", "Hao", "Yi", "Kai", "Lan", "Rui", "Shu",
];
const MOBILE_PREFIXES: [&str; 16] = [
    "130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159",
    "186", "187", "188",
];
const MAIL_DOMAINS: [&str; 5] = ["qq.com", "163.com", "126.com", "sina.com", "example.com"];

/// One demo customer, in plaintext (only ever sent to the gateway, which seals it).
#[derive(Clone, Debug, serde::Serialize)]
pub struct DemoCustomer {
    /// Pinyin full name, e.g. `Zhang Wei`.
    pub name: String,
    /// National mobile number, e.g. `13800138000`.
    pub phone: String,
    /// Email address.
    pub email: String,
    /// Account id, e.g. `ACC-0012345678`.
    pub account_id: String,
    /// Free attributes.
    pub attributes: serde_json::Value,
}

/// `count` synthetic customers; `serial` numbers their emails and account ids from
/// `first_serial` on (different ranges never share an email or account id).
pub fn people(rng: &mut StdRng, count: usize, first_serial: u64) -> Vec<DemoCustomer> {
    let mut people = Vec::with_capacity(count);
    let mut used_phones = std::collections::HashSet::new();
    while people.len() < count {
        let surname = pick(rng, &SURNAMES);
        let given = pick(rng, &GIVEN);
        let phone = format!(
            "{}{:08}",
            pick(rng, &MOBILE_PREFIXES),
            rng.random_range(0..100_000_000u32)
        );
        if !used_phones.insert(phone.clone()) {
            continue;
        }
        let n = first_serial + people.len() as u64;
        let email = format!(
            "{}.{}{}@{}",
            given.replace(' ', "").to_lowercase(),
            surname.to_lowercase(),
            n,
            pick(rng, &MAIL_DOMAINS)
        );
        people.push(DemoCustomer {
            name: format!("{surname} {given}"),
            phone,
            email,
            account_id: format!("ACC-{:010}", 1_000_000 + n),
            attributes: serde_json::json!({
                "tier": pick(rng, &["standard", "plus", "premium"]),
                "province": pick(rng, &["Guangdong", "Zhejiang", "Sichuan", "Hubei", "Shandong"]),
            }),
        });
    }
    people
}

/// One demo staff entry.
#[derive(Clone, Debug)]
pub struct DemoStaff {
    /// Staff id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Org: [`COMPANY`] or one of [`PARTNERS`].
    pub org: &'static str,
}

impl DemoStaff {
    /// Whether this person serves customers (and so gets open cases).
    pub fn is_agent(&self) -> bool {
        self.role.serves_customers()
    }
}

/// A whole demo company.
pub struct DemoCompany {
    /// Customers in load order.
    pub customers: Vec<DemoCustomer>,
    /// Staff, including the CRM integration (`crm`).
    pub staff: Vec<DemoStaff>,
}

/// Generates `customers` customers and 242 staff entries from `seed` (the CRM, the
/// contact centre `switch`, the PBX `pbx`, the privacy officer `dpo`, the identity
/// provider's provisioning client `idp`, 78 at the company, 53 at each partner); with
/// the bootstrap admin the demo has 243.
pub fn generate(customers: usize, seed: u64) -> DemoCompany {
    let mut rng = StdRng::seed_from_u64(seed);
    let people = people(&mut rng, customers, 0);
    let mut staff = vec![DemoStaff {
        id: "crm".to_owned(),
        name: "CRM integration".to_owned(),
        role: Role::Integration,
        org: COMPANY,
    }];
    staff.push(DemoStaff {
        id: "switch".to_owned(),
        name: "Contact centre".to_owned(),
        role: Role::ContactCenter,
        org: COMPANY,
    });
    staff.push(DemoStaff {
        id: "pbx".to_owned(),
        name: "Telephone exchange".to_owned(),
        role: Role::Telephony,
        org: COMPANY,
    });
    staff.push(DemoStaff {
        id: "dpo".to_owned(),
        name: "Data protection officer".to_owned(),
        role: Role::PrivacyOfficer,
        org: COMPANY,
    });
    staff.push(DemoStaff {
        id: "idp".to_owned(),
        name: "Identity provider (SCIM provisioning)".to_owned(),
        role: Role::Scim,
        org: COMPANY,
    });
    let mut add = |org: &'static str, role: Role, count: usize| {
        for i in 0..count {
            staff.push(DemoStaff {
                id: format!("{org}.{role}.{:03}", i + 1),
                // Staff names deliberately differ in form from customer names, so a scan
                // for customer names in stored files cannot match a staff entry.
                name: format!("{role} {:03} of {org}", i + 1),
                role,
                org,
            });
        }
    };
    for (role, count) in [
        (Role::Admin, 2),
        (Role::SecurityAnalyst, 4),
        (Role::TeamLead, 8),
        (Role::Support, 40),
        (Role::Sales, 24),
    ] {
        add(COMPANY, role, count);
    }
    for partner in PARTNERS {
        for (role, count) in [(Role::TeamLead, 3), (Role::Support, 36), (Role::Sales, 14)] {
            add(partner, role, count);
        }
    }
    DemoCompany {
        customers: people,
        staff,
    }
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items.choose(rng).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = generate(500, 7);
        let b = generate(500, 7);
        assert_eq!(a.customers.len(), 500);
        assert_eq!(a.customers[499].phone, b.customers[499].phone);
        assert_eq!(a.staff.len(), 242);
        let orgs: std::collections::BTreeSet<_> = a.staff.iter().map(|s| s.org).collect();
        assert_eq!(orgs.len(), 1 + PARTNERS.len());
        for &role in Role::ALL {
            assert!(a.staff.iter().any(|s| s.role == role), "{role}");
        }
    }
}
