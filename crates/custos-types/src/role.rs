//! Who a record says acted: staff roles, and the principals that are not staff.

use std::str::FromStr;

use crate::UnknownWord;

vocabulary! {
    /// A role staff can be given: what policy, quotas and the detector's peer groups go
    /// by. Cedar reads it as the principal's `role` attribute.
    pub enum Role as "role" {
        /// Customer support: serves customers under their own open cases.
        Support = "support",
        /// Sales: serves customers under their own open cases.
        Sales = "sales",
        /// Team lead: handles escalations, under their own open cases.
        TeamLead = "team_lead",
        /// Security analyst: reads records and alerts, suspends; sees no customer data.
        SecurityAnalyst = "security_analyst",
        /// Administrator: manages staff, tokens and customers; sees no customer data.
        Admin = "admin",
        /// A service account (the CRM): opens and closes cases, imports customers.
        Integration = "integration",
        /// The contact centre platform (telephony, chat, mail): posts the contacts it
        /// routes to agents, with the caller's identifier as the channel saw it.
        ContactCenter = "contact_center",
        /// The company's PBX: asks whom an agent's call to a privacy number goes to.
        Telephony = "telephony",
        /// The identity provider's provisioning client (SCIM): creates, changes and
        /// deprovisions staff entries; sees no customer data.
        Scim = "scim",
        /// The privacy officer: carries out customers' erasure requests; sees no customer
        /// data.
        PrivacyOfficer = "privacy_officer",
    }
}

impl Role {
    /// Whether people in this role handle customer contacts (and so get cases). Who may
    /// see a customer's data is decided by policy (`serves-customers` in the default
    /// Cedar policies), not by this.
    pub fn serves_customers(self) -> bool {
        matches!(self, Role::Support | Role::Sales | Role::TeamLead)
    }
}

/// The role an access record names: a staff member's [`Role`], or one of the principals
/// that are not staff. Those three are never assignable to a staff entry; for them the
/// record's staff id is the same word ([`SYSTEM_ID`], [`CUSTOMER_ID`],
/// [`UNAUTHENTICATED_ID`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordedRole {
    /// A member of staff (or a service account) in this role.
    Staff(Role),
    /// The server itself: the gateway's events, the ledger writer, the detector's acts.
    System,
    /// A customer signed in with their access link, reading their own accesses.
    Customer,
    /// A caller who was never authenticated (a refused token, a bad simulated time).
    Unauthenticated,
}

/// Staff id of the records the server writes itself ([`RecordedRole::System`]).
pub const SYSTEM_ID: &str = RecordedRole::System.as_str();
/// Staff id of the records of a customer reading their own accesses
/// ([`RecordedRole::Customer`]).
pub const CUSTOMER_ID: &str = RecordedRole::Customer.as_str();
/// Staff id (and org) of the records of a caller never authenticated
/// ([`RecordedRole::Unauthenticated`]).
pub const UNAUTHENTICATED_ID: &str = RecordedRole::Unauthenticated.as_str();

impl RecordedRole {
    /// The word, as stored and sent: the staff role's, or `system`, `customer`, `-`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RecordedRole::Staff(role) => role.as_str(),
            RecordedRole::System => "system",
            RecordedRole::Customer => "customer",
            RecordedRole::Unauthenticated => "-",
        }
    }

    /// The staff role, if a member of staff acted.
    pub fn staff(self) -> Option<Role> {
        match self {
            RecordedRole::Staff(role) => Some(role),
            _ => None,
        }
    }
}

impl From<Role> for RecordedRole {
    fn from(role: Role) -> Self {
        RecordedRole::Staff(role)
    }
}

impl PartialEq<Role> for RecordedRole {
    fn eq(&self, role: &Role) -> bool {
        *self == RecordedRole::Staff(*role)
    }
}

impl FromStr for RecordedRole {
    type Err = UnknownWord;

    /// Reads the word of [`RecordedRole::as_str`]; any other string is an
    /// [`UnknownWord`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(RecordedRole::System),
            "customer" => Ok(RecordedRole::Customer),
            "-" => Ok(RecordedRole::Unauthenticated),
            staff => staff
                .parse()
                .map(RecordedRole::Staff)
                .map_err(|_| UnknownWord {
                    vocabulary: "recorded role",
                }),
        }
    }
}

word_form!(RecordedRole);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_roles_are_those_of_the_api() {
        let words: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            words,
            [
                "support",
                "sales",
                "team_lead",
                "security_analyst",
                "admin",
                "integration",
                "contact_center",
                "telephony",
                "scim",
                "privacy_officer"
            ]
        );
    }

    #[test]
    fn recorded_roles_read_back_and_are_their_serde_form() {
        let others = [
            RecordedRole::System,
            RecordedRole::Customer,
            RecordedRole::Unauthenticated,
        ];
        let staff = Role::ALL.iter().map(|&r| RecordedRole::from(r));
        for role in staff.chain(others) {
            assert_eq!(role.as_str().parse::<RecordedRole>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<RecordedRole>(&json).unwrap(), role);
        }
        assert_eq!(
            (SYSTEM_ID, CUSTOMER_ID, UNAUTHENTICATED_ID),
            ("system", "customer", "-")
        );
        // Not staff roles: no staff entry can be given one.
        for word in others.map(RecordedRole::as_str) {
            assert!(word.parse::<Role>().is_err());
        }
        assert!("Support".parse::<RecordedRole>().is_err());
        assert!("".parse::<RecordedRole>().is_err());
    }
}
