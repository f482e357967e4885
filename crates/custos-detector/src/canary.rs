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
use custos_crypto::Keyring;
use custos_store::Store;
use custos_types::{Action, Decision, RecordedRole, SYSTEM_ID};

use std::collections::HashSet;

use crate::Finding;

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
    record.action == Action::AllocateCanary
        && record.staff_id == SYSTEM_ID
        && record.role == RecordedRole::System
        && record.decision == Decision::Allow
}

/// Whether `record` is a planting of canaries, whatever its outcome: the marks are
/// stored before the record, so even a failed request may have added some.
pub fn plants_canaries(record: &AccessRecord) -> bool {
    record.action == Action::PlantCanaries
}

/// The finding for `record`, if it touched a canary: a view, reveal or search reaches a
/// customer's record.
pub fn check(record: &AccessRecord, marks: &Marks, keyring: &Keyring) -> Option<Finding> {
    if marks.is_empty() || !record.action.is_customer_access() {
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
    let what = match (record.action, record.decision == Decision::Allow) {
        (Action::View, true) => {
            format!("opened canary customer {customer} and was shown its masked record")
        }
        (Action::Reveal, true) => format!(
            "revealed {} of canary customer {customer} and was given the values",
            record.fields.join(", ")
        ),
        (Action::Search, true) if record.reason_code == "on_open_case" => {
            format!("searched for canary customer {customer} and was shown it, masked")
        }
        (Action::Search, true) => format!(
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
    use custos_types::Role;

    /// Actions through which a person reaches a customer's record.
    const TOUCHING: [Action; 3] = [Action::View, Action::Reveal, Action::Search];

    fn record(action: Action, customer: Option<&str>, decision: Decision) -> AccessRecord {
        AccessRecord {
            seq: 7,
            request_id: "req_1".into(),
            at: 0,
            staff_id: "alice".into(),
            org: "custos".into(),
            role: Role::Support.into(),
            action,
            customer_id: customer.map(str::to_owned),
            fields: vec![],
            case_id: None,
            target: None,
            decision,
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
        let reason = |action: Action, decision: Decision, reason_code: &str| {
            let r = AccessRecord {
                reason_code: reason_code.into(),
                fields: vec!["phone".into()],
                ..record(action, Some("cus_canary"), decision)
            };
            check(&r, &marks, &keyring).unwrap().reasons.remove(0)
        };
        assert!(
            reason(Action::Search, Decision::Allow, "no_open_case").contains("returned nothing")
        );
        assert!(
            reason(Action::Search, Decision::Allow, "on_open_case").contains("shown it, masked")
        );
        assert!(reason(Action::View, Decision::Allow, "view-with-case").contains("masked record"));
        assert!(
            reason(Action::Reveal, Decision::Allow, "reveal-with-case").contains("revealed phone")
        );
        let refused = reason(Action::View, Decision::Deny, "forbidden");
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
            for decision in [Decision::Allow, Decision::Deny] {
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
                check(
                    &record(action, Some("cus_real"), Decision::Allow),
                    &marks,
                    &keyring
                ),
                None
            );
        }
        assert_eq!(
            check(
                &record(Action::CreateCase, Some("cus_canary"), Decision::Allow),
                &marks,
                &keyring
            ),
            None
        );
        assert_eq!(
            check(
                &record(Action::View, None, Decision::Allow),
                &marks,
                &keyring
            ),
            None
        );
        // A mark made under another master key says nothing.
        let other = Keyring::new(&MasterKey::from_bytes([4; 32]));
        assert_eq!(
            check(
                &record(Action::View, Some("cus_canary"), Decision::Allow),
                &marks,
                &other
            ),
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
        let mut allocation = record(Action::AllocateCanary, Some("cus_canary"), Decision::Allow);
        allocation.target = Some("alice".into());
        // Only the system's allowed entry allocates: not a person's, not a failed one.
        for (staff, role, decision) in [
            ("alice", Role::Support.into(), Decision::Allow),
            (SYSTEM_ID, Role::Support.into(), Decision::Allow),
            (SYSTEM_ID, RecordedRole::System, Decision::Error),
        ] {
            let forged = AccessRecord {
                staff_id: staff.into(),
                role,
                decision,
                ..allocation.clone()
            };
            marks.observe_allocation(&forged, &keyring);
            assert!(
                check(
                    &record(Action::Reveal, Some("cus_canary"), Decision::Allow),
                    &marks,
                    &keyring
                )
                .is_some()
            );
        }
        allocation.staff_id = SYSTEM_ID.into();
        allocation.role = RecordedRole::System;
        marks.observe_allocation(&allocation, &keyring);
        for action in TOUCHING {
            assert_eq!(
                check(
                    &record(action, Some("cus_canary"), Decision::Allow),
                    &marks,
                    &keyring
                ),
                None,
                "the holder's own {action}"
            );
            let mut bob = record(action, Some("cus_canary"), Decision::Allow);
            bob.staff_id = "bob".into();
            assert!(
                check(&bob, &marks, &keyring).is_some(),
                "anyone else's {action}"
            );
        }
    }
}
