//! The ledger entry: one versioned, canonical encoding of one access record.
//!
//! An entry is what the Merkle tree commits to, so its bytes must be the same whenever
//! the same record is encoded: JSON with a fixed field order (the order of [`EntryV1`]),
//! no optional whitespace, absent values as `null`, and a leading version number. Decoding
//! is strict: unknown fields, another version or trailing bytes are refused, so two
//! different byte strings never decode to the same record.
//!
//! No personal data goes in: staff, customer and case appear by id only, fields by name.
//!
//! # `fields` and `target`
//!
//! For reads (`view`, `reveal`, `search`) `fields` names the customer fields revealed or
//! searched by; for administrative acts `target` is what was acted on (a staff id, a
//! token id). A `create_case` entry uses both for the facts of the case it opens, so
//! that the ledger alone says where a case came from (the detector relies on it):
//!
//! - `target`: the assignee's staff id;
//! - `fields`: the case's facts ([`CaseFacts`]), in this order —
//!   - `channel:<channel>`, one of the gateway's fixed channel words;
//!   - `contact:inbound` when the customer started the contact (a call, chat, mail or
//!     store visit), `contact:none` when no inbound contact stands behind the case
//!     (outbound, follow-up, or a pretext);
//!   - `requested_by:<staff id>` when a person asked the CRM to open the case; absent
//!     when the CRM opened it on its own for an inbound contact.
//!
//! Only ids and fixed words: the case's reason (free text) stays sealed in the store.
//! Entries written before this convention carry no facts; readers treat a `create_case`
//! without a `contact:` fact as inbound.
//!
//! # `reason_code`
//!
//! For an allowed request, why it was allowed: the id of the deciding policy (or a
//! search's outcome); for a refused or failed one, the error's stable code (e.g.
//! `quota_exceeded`, `step_up_required`). A `reveal` that carried a step-up
//! justification (required while a detector restriction is in force on the person)
//! records `step_up:<policy id>` ([`step_up_reason`]): that a justification was given,
//! never its text, which may hold personal data. `fields` stays the list of fields
//! revealed (quota counters are rebuilt from it).
//!
//! A request that named a customer or case id not of the shape Custos issues records
//! one fact, `malformed:customer` or `malformed:case` ([`malformed`]), never the value (it
//! may be a phone number sent where an id belongs).
//!
//! The detector's own entries (role `system`) name its act in `action`
//! (`suspend_staff`, `lower_quota`, `require_step_up`), the person in `target` and the
//! rule that fired in `reason_code`.
//!
//! # Refused writes
//!
//! When the ledger refused writes (a full disk, a failing device) and then writes again,
//! the first entry written is the writer's own: the [`SYSTEM_ID`] principal (org `-`) with
//! action [`Action::LedgerWritesRefused`], `at` the time writes resumed, `reason_code` the
//! ledger error's code (e.g. `ledger_io`) and `fields` —
//!
//! - `from:<unix ms>` ([`REFUSED_FROM`]): the first refused write;
//! - `until:<unix ms>` ([`REFUSED_UNTIL`]): the last refused write;
//! - `refused_records:<n>` ([`REFUSED_RECORDS`]): how many records were refused (their
//!   requests were answered 503 `ledger_unavailable`).
//!
//! Only times and a count: the refused records themselves are not written anywhere.
//!
//! # Canary allocation
//!
//! When the gateway gives a canary to a person, it opens a case for the canary on their
//! queue and records it first as the [`SYSTEM_ID`] principal with action
//! [`Action::AllocateCanary`]: `customer_id` the canary, `case_id` the case, `target` the
//! person, `fields` the case's facts as for `create_case`. The detector reads it to
//! exempt that person's own touches of that canary; entries are readable only by
//! analysts and admins, and the person sees an ordinary case.
//!
//! # Restores and retention runs
//!
//! Both are [`SYSTEM_ID`] entries (`target` names what they concern, `reason_code` is
//! `restored` or `retention`), with only times, sizes, a hash and counts as facts:
//!
//! - [`Action::StoreRestored`] (`target` `backup`), written at the first start after
//!   `custos restore`: `checkpoint:<size>` and `root:<hex>` of the backup's checkpoint
//!   (the store's point in the ledger), `ledger:backup` when the ledger's files came
//!   from the backup or `ledger:kept` when the newest ledger's own files were kept,
//!   `backup_at:<unix ms>` when the backup was made;
//! - [`Action::RetentionRun`] (`target` `access_index`), written before anything is
//!   deleted: `access_index_before:<unix ms>`, `access_records:<n>` (rows older than
//!   that) and `holdings:<n>` (leak tracing's holdings last renewed before it),
//!   `console_before:<unix ms>` and `console_sessions:<n>`.
//!
//! # Words
//!
//! `role`, `action` and `decision` are words of the shared vocabulary
//! ([`RecordedRole`], [`Action`], [`Decision`]); an entry with any other word there does
//! not decode.
//!
//! [`CaseFacts`]: custos_types::facts::CaseFacts
//! [`step_up_reason`]: custos_types::facts::step_up_reason
//! [`malformed`]: custos_types::facts::malformed
//! [`SYSTEM_ID`]: custos_types::SYSTEM_ID

use serde::{Deserialize, Serialize};

use custos_store::AccessRecord;
use custos_types::{Action, Decision, RecordedRole};

/// The encoding version written by [`encode`].
pub const VERSION: u8 = 1;

/// Prefix of a `ledger_writes_refused` fact: the first refused write, unix ms.
pub const REFUSED_FROM: &str = "from:";
/// Prefix of a `ledger_writes_refused` fact: the last refused write, unix ms.
pub const REFUSED_UNTIL: &str = "until:";
/// Prefix of a `ledger_writes_refused` fact: how many records were refused.
pub const REFUSED_RECORDS: &str = "refused_records:";

/// Wire form of version 1. Field order is part of the format: do not reorder.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    v: u8,
    request_id: String,
    at: i64,
    staff_id: String,
    org: String,
    role: RecordedRole,
    action: Action,
    customer_id: Option<String>,
    fields: Vec<String>,
    case_id: Option<String>,
    target: Option<String>,
    decision: Decision,
    reason_code: String,
    client: Option<String>,
}

/// An entry that is not a version-1 record in canonical form.
#[derive(Debug, thiserror::Error)]
#[error("ledger entry {index} is not a valid version-{VERSION} record")]
pub struct DecodeError {
    /// The entry's position in the ledger.
    pub index: u64,
}

impl DecodeError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        "entry_invalid"
    }
}

/// The canonical bytes of `record` (its `seq` is not part of them: the position in the
/// ledger is).
pub fn encode(record: &AccessRecord) -> Vec<u8> {
    let wire = EntryV1 {
        v: VERSION,
        request_id: record.request_id.clone(),
        at: record.at,
        staff_id: record.staff_id.clone(),
        org: record.org.clone(),
        role: record.role,
        action: record.action,
        customer_id: record.customer_id.clone(),
        fields: record.fields.clone(),
        case_id: record.case_id.clone(),
        target: record.target.clone(),
        decision: record.decision,
        reason_code: record.reason_code.clone(),
        client: record.client.clone(),
    };
    // Serialising a struct of strings, words, integers and vectors cannot fail.
    serde_json::to_vec(&wire).unwrap_or_default()
}

/// Reads the entry at `index` back into a record with `seq = index`.
pub fn decode(index: u64, bytes: &[u8]) -> Result<AccessRecord, DecodeError> {
    let err = || DecodeError { index };
    let wire: EntryV1 = serde_json::from_slice(bytes).map_err(|_| err())?;
    if wire.v != VERSION {
        return Err(err());
    }
    let record = AccessRecord {
        seq: i64::try_from(index).map_err(|_| err())?,
        request_id: wire.request_id,
        at: wire.at,
        staff_id: wire.staff_id,
        org: wire.org,
        role: wire.role,
        action: wire.action,
        customer_id: wire.customer_id,
        fields: wire.fields,
        case_id: wire.case_id,
        target: wire.target,
        decision: wire.decision,
        reason_code: wire.reason_code,
        client: wire.client,
    };
    // Canonical form only: the same record must come from exactly one byte string.
    if encode(&record) != bytes {
        return Err(err());
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_types::Role;

    fn record() -> AccessRecord {
        AccessRecord {
            seq: 0,
            request_id: "req_1".into(),
            at: 1_700_000_000_000,
            staff_id: "alice".into(),
            org: "custos".into(),
            role: Role::Support.into(),
            action: Action::Reveal,
            customer_id: Some("cus_1".into()),
            fields: vec!["phone".into()],
            case_id: Some("case_1".into()),
            target: None,
            decision: Decision::Allow,
            reason_code: "policy0".into(),
            client: Some("127.0.0.1".into()),
        }
    }

    #[test]
    fn round_trip_sets_seq_from_index() {
        let bytes = encode(&record());
        let back = decode(41, &bytes).unwrap();
        assert_eq!(back.seq, 41);
        assert_eq!(encode(&back), bytes);
        assert_eq!(back.fields, vec!["phone".to_owned()]);
    }

    #[test]
    fn encoding_is_fixed() {
        let text = String::from_utf8(encode(&record())).unwrap();
        assert_eq!(
            text,
            r#"{"v":1,"request_id":"req_1","at":1700000000000,"staff_id":"alice","org":"custos","role":"support","action":"reveal","customer_id":"cus_1","fields":["phone"],"case_id":"case_1","target":null,"decision":"allow","reason_code":"policy0","client":"127.0.0.1"}"#
        );
    }

    #[test]
    fn non_canonical_forms_are_refused() {
        let text = String::from_utf8(encode(&record())).unwrap();
        let spaced = text.replace(",\"at\"", ", \"at\"");
        assert!(decode(0, spaced.as_bytes()).is_err());
        let v2 = text.replace("{\"v\":1", "{\"v\":2");
        assert!(decode(0, v2.as_bytes()).is_err());
        let extra = text.replace("{\"v\":1", "{\"v\":1,\"x\":0");
        assert!(decode(0, extra.as_bytes()).is_err());
        assert!(decode(0, b"").is_err());
        assert!(decode(0, &[0xff, 0xfe]).is_err());
    }

    #[test]
    fn words_outside_the_vocabulary_are_refused() {
        let text = String::from_utf8(encode(&record())).unwrap();
        for (word, other) in [
            ("\"support\"", "\"agent\""),
            ("\"reveal\"", "\"reveal_phone\""),
            ("\"allow\"", "\"Allow\""),
        ] {
            assert!(decode(0, text.replace(word, other).as_bytes()).is_err());
        }
    }
}
