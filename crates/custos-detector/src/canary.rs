//! Canary customers: planted records that no legitimate case ever names. Any view,
//! reveal or search that touches one — allowed or denied — is a critical finding and
//! suspends the person, unless the gateway allocated that canary to that person (a case
//! it opened on their queue; `custos_access::entry`, "Canary allocation").
//!
//! The store holds only keyed marks of canary ids ([`Keyring::canary_mark`]) and of
//! (canary, holder) pairs ([`Keyring::canary_holder_mark`]), so which customers are
//! canaries, and who holds which, is known to the detector and to no one reading the
//! database.

use custos_access::AccessRecord;
use custos_access::entry::{ALLOCATE_CANARY, SYSTEM};
use custos_crypto::Keyring;
use custos_store::Store;

use std::collections::HashSet;

use crate::Finding;

/// The ledger action of a request that plants canaries (the gateway records it).
pub const PLANT_ACTION: &str = "plant_canaries";

/// Actions through which a person reaches a customer's record.
const TOUCHING: [&str; 3] = ["view", "reveal", "search"];

/// The canary marks in force, and the holder marks of allocated canaries.
pub struct Marks {
    canaries: HashSet<String>,
    holders: HashSet<String>,
}

impl Marks {
    /// Reads every mark from the store.
    pub async fn load(store: &Store) -> Result<Marks, String> {
        let canaries = store.canary_marks().await.map_err(|e| e.to_string())?;
        let holders = store
            .canary_holder_marks()
            .await
            .map_err(|e| e.to_string())?;
        Ok(Marks {
            canaries: canaries.into_iter().collect(),
            holders: holders.into_iter().collect(),
        })
    }

    /// Number of canaries.
    pub fn len(&self) -> usize {
        self.canaries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.canaries.is_empty()
    }

    /// Takes note of an allocation the gateway recorded (its claim is in the store
    /// already, so a reload would find it too; this spares the reload).
    pub fn observe_allocation(&mut self, record: &AccessRecord, keyring: &Keyring) {
        if let (Some(canary), Some(holder)) = (&record.customer_id, &record.target)
            && allocates_canary(record)
        {
            self.holders
                .insert(keyring.canary_holder_mark(canary, holder));
        }
    }
}

/// Whether `record` is the gateway giving a canary to a person.
pub fn allocates_canary(record: &AccessRecord) -> bool {
    record.action == ALLOCATE_CANARY
        && record.staff_id == SYSTEM
        && record.role == SYSTEM
        && record.decision == "allow"
}

/// Whether `record` is a planting of canaries, whatever its outcome: the marks are
/// stored before the record, so even a failed request may have added some.
pub fn plants_canaries(record: &AccessRecord) -> bool {
    record.action == PLANT_ACTION
}

/// The finding for `record`, if it touched a canary.
pub fn check(record: &AccessRecord, marks: &Marks, keyring: &Keyring) -> Option<Finding> {
    if marks.is_empty() || !TOUCHING.contains(&record.action.as_str()) {
        return None;
    }
    let customer = record.customer_id.as_deref()?;
    if !marks.canaries.contains(&keyring.canary_mark(customer))
        || marks
            .holders
            .contains(&keyring.canary_holder_mark(customer, &record.staff_id))
    {
        return None;
    }
    // Exactly what the person got: a search that matched a canary on none of their
    // cases is allowed (`no_open_case`) yet returned nothing.
    let what = match (record.action.as_str(), record.decision == "allow") {
        ("view", true) => {
            format!("opened canary customer {customer} and was shown its masked record")
        }
        ("reveal", true) => format!(
            "revealed {} of canary customer {customer} and was given the values",
            record.fields.join(", ")
        ),
        ("search", true) if record.reason_code == "on_open_case" => {
            format!("searched for canary customer {customer} and was shown it, masked")
        }
        ("search", true) => format!(
            "searched for a number of canary customer {customer}; the search returned nothing, as the canary is on none of their cases"
        ),
        (action, _) => format!(
            "tried to {action} canary customer {customer} and was refused ({})",
            record.reason_code
        ),
    };
    Some(Finding {
        kind: "canary_hit",
        severity: "critical",
        reasons: vec![format!(
            "{what}: a planted record that no legitimate case names"
        )],
        suspend: true,
        day_start: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_crypto::MasterKey;

    fn record(action: &str, customer: Option<&str>, decision: &str) -> AccessRecord {
        AccessRecord {
            seq: 7,
            request_id: "req_1".into(),
            at: 0,
            staff_id: "alice".into(),
            org: "custos".into(),
            role: "support".into(),
            action: action.into(),
            customer_id: customer.map(str::to_owned),
            fields: vec![],
            case_id: None,
            target: None,
            decision: decision.into(),
            reason_code: "x".into(),
            client: None,
        }
    }

    /// The reason says what the person got, not only that the canary was touched.
    #[test]
    fn the_reason_says_exactly_what_was_returned() {
        let keyring = Keyring::new(&MasterKey::from_bytes([3; 32]));
        let marks = Marks {
            canaries: [keyring.canary_mark("cus_canary")].into_iter().collect(),
            holders: HashSet::new(),
        };
        let reason = |action: &str, decision: &str, reason_code: &str| {
            let r = AccessRecord {
                reason_code: reason_code.into(),
                fields: vec!["phone".into()],
                ..record(action, Some("cus_canary"), decision)
            };
            check(&r, &marks, &keyring).unwrap().reasons.remove(0)
        };
        assert!(reason("search", "allow", "no_open_case").contains("returned nothing"));
        assert!(reason("search", "allow", "on_open_case").contains("shown it, masked"));
        assert!(reason("view", "allow", "view-with-case").contains("masked record"));
        assert!(reason("reveal", "allow", "reveal-with-case").contains("revealed phone"));
        let refused = reason("view", "deny", "forbidden");
        assert!(refused.contains("refused (forbidden)"), "{refused}");
        assert!(!refused.contains("shown"), "{refused}");
    }

    #[test]
    fn only_touches_of_marked_customers_are_findings() {
        let keyring = Keyring::new(&MasterKey::from_bytes([3; 32]));
        let marks = Marks {
            canaries: [keyring.canary_mark("cus_canary")].into_iter().collect(),
            holders: HashSet::new(),
        };
        for action in TOUCHING {
            for decision in ["allow", "deny"] {
                let found = check(
                    &record(action, Some("cus_canary"), decision),
                    &marks,
                    &keyring,
                );
                let found = found.expect("a touch of a canary is a finding");
                assert_eq!(
                    (found.kind, found.severity, found.suspend),
                    ("canary_hit", "critical", true)
                );
            }
            assert_eq!(
                check(&record(action, Some("cus_real"), "allow"), &marks, &keyring),
                None
            );
        }
        assert_eq!(
            check(
                &record("create_case", Some("cus_canary"), "allow"),
                &marks,
                &keyring
            ),
            None
        );
        assert_eq!(
            check(&record("view", None, "allow"), &marks, &keyring),
            None
        );
        // A mark made under another master key says nothing.
        let other = Keyring::new(&MasterKey::from_bytes([4; 32]));
        assert_eq!(
            check(&record("view", Some("cus_canary"), "allow"), &marks, &other),
            None
        );
    }

    #[test]
    fn an_allocated_canary_is_its_holders_alone() {
        let keyring = Keyring::new(&MasterKey::from_bytes([3; 32]));
        let mut marks = Marks {
            canaries: [keyring.canary_mark("cus_canary")].into_iter().collect(),
            holders: HashSet::new(),
        };
        let mut allocation = record(ALLOCATE_CANARY, Some("cus_canary"), "allow");
        allocation.target = Some("alice".into());
        // Only the system's allowed entry allocates: not a person's, not a failed one.
        for (staff, role, decision) in [
            ("alice", "support", "allow"),
            (SYSTEM, "support", "allow"),
            (SYSTEM, SYSTEM, "error"),
        ] {
            let forged = AccessRecord {
                staff_id: staff.into(),
                role: role.into(),
                decision: decision.into(),
                ..allocation.clone()
            };
            marks.observe_allocation(&forged, &keyring);
            assert!(
                check(
                    &record("reveal", Some("cus_canary"), "allow"),
                    &marks,
                    &keyring
                )
                .is_some()
            );
        }
        allocation.staff_id = SYSTEM.into();
        allocation.role = SYSTEM.into();
        marks.observe_allocation(&allocation, &keyring);
        for action in TOUCHING {
            assert_eq!(
                check(
                    &record(action, Some("cus_canary"), "allow"),
                    &marks,
                    &keyring
                ),
                None,
                "the holder's own {action}"
            );
            let mut bob = record(action, Some("cus_canary"), "allow");
            bob.staff_id = "bob".into();
            assert!(
                check(&bob, &marks, &keyring).is_some(),
                "anyone else's {action}"
            );
        }
    }
}
