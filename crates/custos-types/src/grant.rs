//! Access no channel vouches for: requests that a second person decides, and break-glass.

vocabulary! {
    /// How access outside a verified case was asked for.
    pub enum GrantKind as "grant kind" {
        /// Asked for, and given only when a second person approves.
        Approval = "approval",
        /// Taken at once in an emergency, with a written reason: alerted and reviewed after.
        BreakGlass = "break_glass",
    }
}

vocabulary! {
    /// Where an access request stands.
    pub enum GrantStatus as "grant status" {
        /// Waiting for an approver.
        Pending = "pending",
        /// Given: its fields open to its requester on its case until it ends.
        Granted = "granted",
        /// Refused by an approver.
        Denied = "denied",
    }
}
