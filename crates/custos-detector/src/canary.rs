//! Canary customers: planted records that no legitimate case ever names. Any view,
//! reveal or search that touches one — allowed or denied — is a critical finding and
//! suspends the person.
//!
//! The store holds only keyed marks of canary ids ([`Keyring::canary_mark`]), so which
//! customers are canaries is known to the detector and to no one reading the database.

use custos_access::AccessRecord;
use custos_crypto::Keyring;
use custos_store::Store;

use std::collections::HashSet;

use crate::Finding;

/// The ledger action of a request that plants canaries (the gateway records it).
pub const PLANT_ACTION: &str = "plant_canaries";

/// Actions through which a person reaches a customer's record.
const TOUCHING: [&str; 3] = ["view", "reveal", "search"];

/// The canary marks in force.
pub struct Marks(HashSet<String>);

impl Marks {
    /// Reads every mark from the store.
    pub async fn load(store: &Store) -> Result<Marks, String> {
        let marks = store.canary_marks().await.map_err(|e| e.to_string())?;
        Ok(Marks(marks.into_iter().collect()))
    }

    /// Number of canaries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
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
    if !marks.0.contains(&keyring.canary_mark(customer)) {
        return None;
    }
    let verb = match record.action.as_str() {
        "view" => "opened",
        "reveal" => "revealed fields of",
        _ => "searched for and found",
    };
    let outcome = if record.decision == "allow" {
        "and was served"
    } else {
        "and was refused"
    };
    Some(Finding {
        kind: "canary_hit",
        severity: "critical",
        reasons: vec![format!(
            "{verb} canary customer {customer} {outcome}: a planted record that no legitimate case names"
        )],
        suspend: true,
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

    #[test]
    fn only_touches_of_marked_customers_are_findings() {
        let keyring = Keyring::new(&MasterKey::from_bytes([3; 32]));
        let marks = Marks([keyring.canary_mark("cus_canary")].into_iter().collect());
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
}
