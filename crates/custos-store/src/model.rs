//! The records the store keeps. Personal data only ever appears here sealed (`Vec<u8>`
//! produced by custos-crypto) or as keyed-hash indexes (hex `String`).

use custos_types::{Action, Channel, Decision, Provenance, RecordedRole, Role};
use serde::{Deserialize, Serialize};

/// Whether a staff member may act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffStatus {
    /// May act, subject to policy.
    Active,
    /// Gets nothing; every request is refused.
    Suspended,
}

impl StaffStatus {
    /// The stored and wire form: `"active"` or `"suspended"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StaffStatus::Active => "active",
            StaffStatus::Suspended => "suspended",
        }
    }

    /// Parses the form produced by [`StaffStatus::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<StaffStatus> {
        match s {
            "active" => Some(StaffStatus::Active),
            "suspended" => Some(StaffStatus::Suspended),
            _ => None,
        }
    }
}

/// A member of staff (or a service) that calls the gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaffRecord {
    /// Unique staff id.
    pub id: String,
    /// Display name of the staff member (staff data, not customer data).
    pub name: String,
    /// Role used by policy, quotas and the detector's peer groups.
    pub role: Role,
    /// Organisation (employer or partner company) used by policy.
    pub org: String,
    /// Whether the person may act.
    pub status: StaffStatus,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

/// An API token; only its hash is stored, never the token itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// Unique token id (not secret; used to revoke).
    pub id: String,
    /// The staff member the token authenticates.
    pub staff_id: String,
    /// Hash of the secret token; unique across all tokens.
    pub hash: String,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Revocation time, unix milliseconds; `None` while the token is active.
    pub revoked_at: Option<i64>,
}

/// A customer: every personal field is sealed, lookups go through keyed-hash indexes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRecord {
    /// Unique customer id.
    pub id: String,
    /// The customer's data key, wrapped by the key-encryption key.
    pub wrapped_key: Vec<u8>,
    /// Sealed name.
    pub name: Vec<u8>,
    /// Sealed phone number.
    pub phone: Option<Vec<u8>>,
    /// Sealed email address.
    pub email: Option<Vec<u8>>,
    /// Sealed account id.
    pub account_id: Option<Vec<u8>>,
    /// Sealed free-form attributes.
    pub attributes: Option<Vec<u8>>,
    /// Keyed-hash index of the normalised phone number (hex).
    pub phone_idx: Option<String>,
    /// Keyed-hash index of the normalised email address (hex).
    pub email_idx: Option<String>,
    /// Keyed-hash index of the normalised account id (hex).
    pub account_idx: Option<String>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// The version of the blind-index key the three indexes are under.
    pub index_version: u32,
}

impl CustomerRecord {
    /// Whether the customer was erased ([`crate::Store::erase_customer`]): their data key
    /// is gone, so nothing of them can be opened again.
    pub fn is_erased(&self) -> bool {
        self.wrapped_key.is_empty()
    }
}

/// Which blind index [`crate::Store::customers_by_index`] searches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexColumn {
    /// `phone_idx`.
    Phone,
    /// `email_idx`.
    Email,
    /// `account_idx`.
    AccountId,
}

impl IndexColumn {
    /// The field the index is of, as stored with a contact: `phone`, `email` or
    /// `account_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            IndexColumn::Phone => "phone",
            IndexColumn::Email => "email",
            IndexColumn::AccountId => "account_id",
        }
    }

    /// Parses the form produced by [`IndexColumn::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<IndexColumn> {
        match s {
            "phone" => Some(IndexColumn::Phone),
            "email" => Some(IndexColumn::Email),
            "account_id" => Some(IndexColumn::AccountId),
            _ => None,
        }
    }

    /// This index of `customer`, if the customer has the field.
    pub fn of(self, customer: &CustomerRecord) -> Option<&str> {
        match self {
            IndexColumn::Phone => customer.phone_idx.as_deref(),
            IndexColumn::Email => customer.email_idx.as_deref(),
            IndexColumn::AccountId => customer.account_idx.as_deref(),
        }
    }
}

/// Whether a case is still being worked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaseStatus {
    /// Being worked on; gives its assignee a reason to see the customer.
    Open,
    /// Finished; gives no access any more.
    Closed,
}

impl CaseStatus {
    /// The stored and wire form: `"open"` or `"closed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CaseStatus::Open => "open",
            CaseStatus::Closed => "closed",
        }
    }

    /// Parses the form produced by [`CaseStatus::as_str`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<CaseStatus> {
        match s {
            "open" => Some(CaseStatus::Open),
            "closed" => Some(CaseStatus::Closed),
            _ => None,
        }
    }
}

/// A support case: the business reason for a staff member to see a customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseRecord {
    /// Unique case id.
    pub id: String,
    /// The customer the case is about; must exist.
    pub customer_id: String,
    /// The staff member working the case.
    pub assignee: String,
    /// The channel the contact behind it came through.
    pub channel: Channel,
    /// Sealed free-text reason (may mention personal data).
    pub reason: Vec<u8>,
    /// Open or closed.
    pub status: CaseStatus,
    /// The staff member who opened the case.
    pub created_by: String,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Closing time, unix milliseconds; `None` while open.
    pub closed_at: Option<i64>,
    /// Who vouches that the customer is in contact.
    pub provenance: Provenance,
    /// The campaign of an outbound case.
    pub campaign: Option<String>,
    /// The contact behind the case, if the contact centre reported one.
    pub contact_id: Option<String>,
}

/// A contact the contact centre routed to an agent. The caller's identifier is kept only
/// as its blind index, so a case can later be checked against it without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRecord {
    /// Unique contact id.
    pub id: String,
    /// The channel it came by.
    pub channel: Channel,
    /// The staff member it was routed to.
    pub agent: String,
    /// Which field the caller's identifier is (the calling number is a phone).
    pub identifier_kind: IndexColumn,
    /// The identifier's keyed-hash index (hex).
    pub identifier_idx: String,
    /// The version of the blind-index key `identifier_idx` is under.
    pub identifier_version: u32,
    /// When the contact happened, as the channel says, unix milliseconds.
    pub at: i64,
    /// The contact-centre principal that reported it.
    pub created_by: String,
    /// When it was reported, unix milliseconds.
    pub created_at: i64,
}

/// One access decision, allowed or denied. Append-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// The entry's index in the ledger (0 until the ledger has sequenced it).
    pub seq: i64,
    /// Id of the request that caused the record.
    pub request_id: String,
    /// Time of the decision, unix milliseconds.
    pub at: i64,
    /// Who asked.
    pub staff_id: String,
    /// The asker's organisation at the time.
    pub org: String,
    /// The asker's role at the time (or the principal that is not staff).
    pub role: RecordedRole,
    /// What was asked or done.
    pub action: Action,
    /// The customer concerned, if any.
    pub customer_id: Option<String>,
    /// Names of the fields revealed or requested; for `create_case`, the case's facts as
    /// tagged words ([`custos_types::facts::CaseFacts`]; where each fact appears is
    /// documented with the ledger entry format in `custos_access::entry`).
    pub fields: Vec<String>,
    /// The case given as the reason, if any.
    pub case_id: Option<String>,
    /// What an administrative action acted on (a staff id, a token id), if anything; for
    /// `create_case`, the assignee.
    pub target: Option<String>,
    /// How the request was decided.
    pub decision: Decision,
    /// Stable code explaining the decision.
    pub reason_code: String,
    /// Client description (e.g. an application name), if known.
    pub client: Option<String>,
}

/// Which access records [`crate::Store::access_records`] returns; every set condition
/// must hold.
#[derive(Clone, Debug, Default)]
pub struct AccessFilter {
    /// Only records of this staff member.
    pub staff_id: Option<String>,
    /// Only records about this customer.
    pub customer_id: Option<String>,
    /// Only records with `at >= since` (unix milliseconds).
    pub since: Option<i64>,
    /// Only records with `seq > after_seq`, for reading the log page by page.
    pub after_seq: Option<i64>,
    /// Only records with this decision.
    pub decision: Option<Decision>,
    /// At most this many records (the oldest matching ones); 0 = no limit.
    pub limit: u32,
}
