//! Tagged words in a record's `fields` that more than one crate writes or reads. Only ids
//! and fixed words: never a value that may be personal data.
//!
//! The ledger entry format (`custos_access::entry`) says where each appears.

use crate::Provenance;

/// Tag of a case's channel fact: `channel:<channel>`.
const CHANNEL: &str = "channel:";
/// A case's fact when the customer started the contact behind it.
const CONTACT_INBOUND: &str = "contact:inbound";
/// A case's fact when no inbound contact stands behind it.
const CONTACT_NONE: &str = "contact:none";
/// Tag of a case's requester fact: `requested_by:<staff id>`.
const REQUESTED_BY: &str = "requested_by:";
/// Tag of a case's provenance fact: `provenance:<provenance>`.
const PROVENANCE: &str = "provenance:";
/// Tag of an outbound case's campaign fact: `campaign:<campaign id>`.
const CAMPAIGN: &str = "campaign:";
/// Tag of the one fact of a record whose request named an id not of the shape Custos
/// issues: `malformed:<kind of id>`.
const MALFORMED: &str = "malformed:";
/// Tag of the reason code of a reveal allowed with a step-up justification:
/// `step_up:<policy id>`.
const STEP_UP: &str = "step_up:";

/// Where a case came from, as the `fields` of its `create_case` (and `allocate_canary`)
/// record say, so that the ledger alone tells (the detector relies on it):
///
/// - `channel:<channel>`, one of the gateway's fixed channel words;
/// - `contact:inbound` when the customer started the contact (a call, chat, mail or
///   store visit), `contact:none` when no inbound contact stands behind the case
///   (outbound, follow-up, or a pretext);
/// - `requested_by:<staff id>` when a person asked the CRM to open the case; absent when
///   the CRM opened it on its own;
/// - `provenance:<provenance>`, who vouches for the contact ([`Provenance`]);
/// - `campaign:<campaign id>` for an outbound case.
///
/// In that order. Records written before the facts carry none: they read as an inbound
/// case of no known channel. Records written before provenance carry none: their
/// provenance is read from the other facts ([`CaseFacts::provenance`]).
///
/// Borrowed: facts are written from a request's fields and read from a record's, and the
/// detector reads them for every case opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CaseFacts<'a> {
    /// The contact channel, if recorded.
    pub channel: Option<&'a str>,
    /// Whether a contact the customer started stands behind the case.
    pub inbound: bool,
    /// The staff member who asked for the case, if a person did.
    pub requested_by: Option<&'a str>,
    /// Who vouches for the contact, if recorded.
    pub provenance: Option<Provenance>,
    /// The campaign of an outbound case.
    pub campaign: Option<&'a str>,
}

impl<'a> CaseFacts<'a> {
    /// The facts as the record's `fields`, in the order of the type's docs.
    pub fn to_fields(&self) -> Vec<String> {
        let mut fields = Vec::with_capacity(5);
        if let Some(channel) = self.channel {
            fields.push(format!("{CHANNEL}{channel}"));
        }
        fields.push(
            if self.inbound {
                CONTACT_INBOUND
            } else {
                CONTACT_NONE
            }
            .to_owned(),
        );
        if let Some(requester) = self.requested_by {
            fields.push(format!("{REQUESTED_BY}{requester}"));
        }
        if let Some(provenance) = self.provenance {
            fields.push(format!("{PROVENANCE}{provenance}"));
        }
        if let Some(campaign) = self.campaign {
            fields.push(format!("{CAMPAIGN}{campaign}"));
        }
        fields
    }

    /// The case's provenance: the recorded one, or for a record written before
    /// provenance, `requested` when a person asked for it or no inbound contact stood
    /// behind it, else `unverified` (the CRM said so; no channel vouched).
    pub fn provenance(&self) -> Provenance {
        self.provenance
            .unwrap_or(if self.requested_by.is_some() || !self.inbound {
                Provenance::Requested
            } else {
                Provenance::Unverified
            })
    }

    /// The facts a record's `fields` hold; words that are not case facts are skipped.
    /// Only `contact:none` makes a case not inbound: without a `contact:` fact it counts
    /// as inbound.
    pub fn from_fields(fields: &'a [String]) -> CaseFacts<'a> {
        let mut facts = CaseFacts {
            channel: None,
            inbound: true,
            requested_by: None,
            provenance: None,
            campaign: None,
        };
        for field in fields {
            if let Some(channel) = field.strip_prefix(CHANNEL) {
                facts.channel = Some(channel);
            } else if let Some(staff) = field.strip_prefix(REQUESTED_BY) {
                facts.requested_by = Some(staff);
            } else if let Some(provenance) = field.strip_prefix(PROVENANCE) {
                facts.provenance = provenance.parse().ok();
            } else if let Some(campaign) = field.strip_prefix(CAMPAIGN) {
                facts.campaign = Some(campaign);
            } else if field == CONTACT_NONE {
                facts.inbound = false;
            }
        }
        facts
    }
}

/// The one fact of a `contact` or `resolve_call` record: the relay's channel, as
/// `channel:<call|email|sms>` (the tag of a case's channel fact).
pub fn contact_channel(channel: crate::ContactChannel) -> String {
    format!("{CHANNEL}{channel}")
}

/// The relay channel a `contact` record's `fields` name, if any.
pub fn contact_channel_of(fields: &[String]) -> Option<crate::ContactChannel> {
    fields
        .iter()
        .find_map(|f| f.strip_prefix(CHANNEL)?.parse().ok())
}

/// The one fact of a record whose request named an id not of the shape Custos issues:
/// `malformed:<id_kind>` (e.g. `malformed:customer`). The value itself is never recorded:
/// it may be a phone number sent where an id belongs.
pub fn malformed(id_kind: &str) -> String {
    format!("{MALFORMED}{id_kind}")
}

/// The reason code of a reveal allowed with a step-up justification (required while a
/// detector restriction is in force): `step_up:<policy id>`, the deciding policy's. It
/// records that a justification was given, never its text, which may hold personal data.
pub fn step_up_reason(policy_id: &str) -> String {
    format!("{STEP_UP}{policy_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|&f| f.to_owned()).collect()
    }

    #[test]
    fn case_facts_are_the_tagged_words_of_the_entry_format() {
        let requested = CaseFacts {
            channel: Some("phone"),
            inbound: false,
            requested_by: Some("alice"),
            provenance: None,
            campaign: None,
        };
        let fields = requested.to_fields();
        assert_eq!(
            fields,
            words(&["channel:phone", "contact:none", "requested_by:alice"])
        );
        assert_eq!(CaseFacts::from_fields(&fields), requested);
        let crm = CaseFacts {
            channel: Some("chat"),
            inbound: true,
            requested_by: None,
            provenance: None,
            campaign: None,
        };
        assert_eq!(crm.to_fields(), words(&["channel:chat", "contact:inbound"]));
        let fields = crm.to_fields();
        assert_eq!(CaseFacts::from_fields(&fields), crm);
        let outbound = CaseFacts {
            channel: Some("phone"),
            inbound: false,
            requested_by: None,
            provenance: Some(Provenance::Outbound),
            campaign: Some("renewals-2026"),
        };
        let fields = outbound.to_fields();
        assert_eq!(
            fields,
            words(&[
                "channel:phone",
                "contact:none",
                "provenance:outbound",
                "campaign:renewals-2026"
            ])
        );
        assert_eq!(CaseFacts::from_fields(&fields), outbound);
    }

    #[test]
    fn provenance_of_records_written_before_it_follows_their_other_facts() {
        let of = |fields: &[&str]| CaseFacts::from_fields(&words(fields)).provenance();
        assert_eq!(
            of(&["channel:phone", "contact:inbound"]),
            Provenance::Unverified
        );
        assert_eq!(
            of(&["channel:phone", "contact:none"]),
            Provenance::Requested
        );
        assert_eq!(
            of(&["channel:phone", "contact:inbound", "requested_by:bob"]),
            Provenance::Requested
        );
        assert_eq!(
            of(&["channel:phone", "contact:inbound", "provenance:verified"]),
            Provenance::Verified
        );
    }

    #[test]
    fn contact_channels_read_back() {
        for &channel in crate::ContactChannel::ALL {
            let fields = vec![contact_channel(channel)];
            assert_eq!(contact_channel_of(&fields), Some(channel));
        }
        assert_eq!(contact_channel_of(&words(&["channel:phone"])), None);
        assert_eq!(contact_channel_of(&[]), None);
    }

    #[test]
    fn records_without_facts_read_as_inbound() {
        let fields = words(&["phone"]);
        assert_eq!(
            CaseFacts::from_fields(&fields),
            CaseFacts {
                channel: None,
                inbound: true,
                requested_by: None,
                provenance: None,
                campaign: None,
            }
        );
    }

    #[test]
    fn other_facts_are_tagged_words() {
        assert_eq!(malformed("customer"), "malformed:customer");
        assert_eq!(
            step_up_reason("reveal-with-case"),
            "step_up:reveal-with-case"
        );
    }
}
