//! Where a case's contact came from, as the channel (not the CRM) vouches for it.

vocabulary! {
    /// A case's provenance: who stands behind the claim that this customer is in contact.
    /// Cedar reads it as the case's `provenance` attribute; the default policy reveals
    /// fields only on `verified` cases.
    pub enum Provenance as "provenance" {
        /// The contact centre routed a contact to the assignee whose caller identifier (the
        /// calling number, sender address or a signed app assertion) is this customer's:
        /// the customer is on the line.
        Verified = "verified",
        /// Someone contacted the company about this customer, but not from an identifier
        /// of the customer's (another number, or a contact the CRM says happened).
        Unverified = "unverified",
        /// A campaign assignment made by a system principal, with its campaign id.
        Outbound = "outbound",
        /// A person asked for the case; no contact stands behind it.
        Requested = "requested",
    }
}

impl Provenance {
    /// Whether a contact the customer (or someone on their behalf) started stands behind
    /// the case: the `contact:inbound` fact of the case's record.
    pub fn inbound(self) -> bool {
        matches!(self, Provenance::Verified | Provenance::Unverified)
    }
}
