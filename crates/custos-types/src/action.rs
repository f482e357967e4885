//! What an access record says was done.

vocabulary! {
    /// What an access record says was done: the request a person (or the customer
    /// portal) made of the gateway, or an act of the server itself (recorded as
    /// [`crate::RecordedRole::System`]).
    ///
    /// Not a Cedar action: `custos_policy::Action` names what policy is asked about,
    /// which is finer for reveals (one action per field) and shared by several acts
    /// here (suspending and resuming are both `suspend_staff` to policy).
    pub enum Action as "action" {
        // ----- customers and cases (the traffic the detector watches) -----
        /// A masked view of one customer.
        View = "view",
        /// Fields of one customer revealed in full; `fields` names them.
        Reveal = "reveal",
        /// A search by phone, email or account id; `fields` names the one searched by.
        Search = "search",
        /// A case opened; `fields` holds its [`crate::facts::CaseFacts`].
        CreateCase = "create_case",
        /// A case closed.
        CloseCase = "close_case",
        /// A contact routed to an agent, reported by the contact centre; names the matched
        /// customer and the case it opened or vouched for, with the channel and the
        /// case's provenance as facts.
        PostContact = "post_contact",
        /// Fields of a customer asked for on a case no channel vouches for; `fields` names
        /// them, `target` the request.
        RequestAccess = "request_access",
        /// An access request approved (a grant until a time); `target` names it.
        ApproveAccess = "approve_access",
        /// An access request denied; `target` names it.
        DenyAccess = "deny_access",
        /// Access requests read by an approver.
        ReadAccessRequests = "read_access_requests",
        /// Fields of a customer taken at once in an emergency, with a written reason;
        /// `fields` names them, `target` the grant. Raises a `break_glass` alert.
        BreakGlass = "break_glass",
        /// One customer created.
        CreateCustomer = "create_customer",
        /// Customers imported in bulk.
        ImportCustomers = "import_customers",
        /// A customer erased at their request (crypto-shredding): their data key and blind
        /// indexes destroyed; the record keeps only the id.
        EraseCustomer = "erase_customer",
        /// A customer contacted through a relay (a privacy-number call, an email, an
        /// SMS) without their number or address being shown; `fields` names the channel
        /// ([`crate::facts::contact_channel`]).
        Contact = "contact",
        /// The PBX asked whom an agent's call to a privacy number goes to; `target`
        /// names the agent, `customer_id` the bound customer.
        ResolveCall = "resolve_call",
        // ----- staff and tokens -----
        /// A staff entry created (also the bootstrap admin at start).
        CreateStaff = "create_staff",
        /// An API token issued (also the bootstrap admin's at start).
        IssueToken = "issue_token",
        /// An API token revoked.
        RevokeToken = "revoke_token",
        /// A person suspended, by an analyst or by the detector.
        SuspendStaff = "suspend_staff",
        /// A suspended person resumed.
        ResumeStaff = "resume_staff",
        // ----- provisioning from the identity provider (SCIM) -----
        /// Provisioning read: a user, a group, a list, or what the service publishes
        /// about itself; `target` names the resource read, if one.
        ScimRead = "scim_read",
        /// A user provisioned: a new staff entry; `target` names it.
        ScimCreateUser = "scim_create_user",
        /// A provisioned user replaced or patched; `target` names the staff entry.
        ScimUpdateUser = "scim_update_user",
        /// A provisioned user deleted: the staff entry suspended, its credentials ended.
        ScimDeleteUser = "scim_delete_user",
        /// A group provisioned; `target` names it.
        ScimCreateGroup = "scim_create_group",
        /// A group replaced or patched (its members, its name); `target` names it.
        ScimUpdateGroup = "scim_update_group",
        /// A group deleted; `target` names it.
        ScimDeleteGroup = "scim_delete_group",
        /// A person reading their own quotas and restrictions.
        Me = "me",
        // ----- oversight -----
        /// Access records read.
        ReadAccess = "read_access",
        /// An organisation's hourly activity read.
        ReadActivity = "read_activity",
        /// Alerts read.
        ReadAlerts = "read_alerts",
        /// An alert acknowledged.
        AcknowledgeAlert = "acknowledge_alert",
        /// An alert dismissed as a false positive.
        DismissAlert = "dismiss_alert",
        /// Ledger entries, checkpoints or proofs read.
        ReadLedger = "read_ledger",
        /// The ledger verified.
        VerifyLedger = "verify_ledger",
        /// A leaked file traced to who held its customers.
        TraceLeak = "trace_leak",
        /// Canary customers planted.
        PlantCanaries = "plant_canaries",
        // ----- the customer portal -----
        /// A customer reading who accessed their record.
        CustomerAccesses = "customer_accesses",
        /// A customer downloading their own copy: their data in full and every access
        /// to it; names them as the record's customer, `fields` what the copy held.
        CustomerCopy = "customer_copy",
        /// A customer's access link issued.
        IssueCustomerLink = "issue_customer_link",
        // ----- the server's own acts -----
        /// The server started; `reason_code` is the digest of what is in force.
        ServerStart = "server_start",
        /// A key (master or ledger signing key) was created; `target` names it.
        KeyCreated = "key_created",
        /// An admin started a rotation of the key-encryption key (`target` is `kek`,
        /// `fields` holds `kek:<provider>:v<n>`, the new key) or of the blind-index key
        /// (`target` is `blind_index`, `fields` holds `index:v<n>`).
        RotateKeys = "rotate_keys",
        /// An admin read a key rotation's progress.
        ReadKeyRotation = "read_key_rotation",
        /// A batch of data keys re-wrapped under the new key-encryption key (`fields`
        /// holds `kek:…`, `rewrapped:<n>`, `total:<n>` and `through:<customer id>`), or of
        /// customers re-indexed under the new blind-index key (`index:v<n>`,
        /// `reindexed:<n>`, `total:<n>`, `through:<customer id>`).
        KeyRotationStep = "key_rotation_step",
        /// Every customer is under the rotation's new key; `fields` holds `kek:…` or
        /// `index:…`, and `total:<n>`.
        KeyRotationFinished = "key_rotation_finished",
        /// A canary given to a person on an ordinary-looking case.
        AllocateCanary = "allocate_canary",
        /// The ledger refused writes for a while (its facts say when and how many).
        LedgerWritesRefused = "ledger_writes_refused",
        /// The detector required step-up justifications of a person.
        RequireStepUp = "require_step_up",
        /// The detector lowered a person's quotas.
        LowerQuota = "lower_quota",
        /// The first start after `custos restore`: the store was brought back from a
        /// backup; its facts name the backup's checkpoint and whose ledger files were
        /// kept, so the gap between the store and the ledger is on the record.
        StoreRestored = "store_restored",
        /// A retention run: access-index rows and console data older than the configured
        /// limits deleted (never the ledger); its facts give the limits and the counts.
        /// Recorded before anything is deleted.
        RetentionRun = "retention_run",
    }
}

impl Action {
    /// Whether the record is an access to customers (a view, a reveal or a search): what
    /// quotas charge and what the detector's features and canaries count.
    pub fn is_customer_access(self) -> bool {
        matches!(self, Action::View | Action::Reveal | Action::Search)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_and_is_its_serde_form() {
        for &action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
            assert_eq!(
                serde_json::to_string(&action).unwrap(),
                format!("\"{}\"", action.as_str())
            );
            let back: Action = serde_json::from_str(&format!("\"{action}\"")).unwrap();
            assert_eq!(back, action);
        }
        assert!("View".parse::<Action>().is_err());
        assert!(serde_json::from_str::<Action>("\"reveal_phone\"").is_err());
    }
}
