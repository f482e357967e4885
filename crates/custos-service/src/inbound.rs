//! Inbound contacts as the channel saw them: the contact centre (telephony, chat, mail, the
//! customer app) reports each contact it routes to an agent, with the caller's
//! identifier as the channel received it — or, from the customer app, a signed assertion
//! of the customer's account ([`crate::app_assertion`]). Custos matches that identifier
//! through the blind index, so a case's provenance rests on what the channel saw and not
//! on what the CRM or the agent says:
//!
//! - one customer matches: the contact vouches for the agent's open case for that
//!   customer, or opens one, `verified`;
//! - none or several match: the contact is kept (its identifier only as a blind index)
//!   and a case the CRM later opens on it is `verified` only for a customer whose
//!   identifier it is, `unverified` otherwise ([`App::require_usable_contact`]).

use custos_crypto::IndexKind;
use custos_store::{ContactRecord, IndexColumn, StaffRecord};
use custos_types::Provenance;
use custos_types::facts::CaseFacts;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::case_record::case_facts;
use crate::cases::OpeningCase;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::ids::{new_case_id, new_contact_id};
use crate::input::{MAX_REASON_CHARS, valid_channel, valid_id, valid_text};
use crate::record::{Recorded, RequestMeta};
use crate::schema::{AppAssertion, CaseId, Channel, ContactId, CustomerId, Id, Reason};
use crate::vault::hexes;

/// How far ahead of the server's clock a contact may be dated: the channel's clock and
/// ours differ a little.
const CLOCK_SKEW_MS: i64 = 60_000;

/// A contact the contact centre routed to an agent.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// How the contact came in.
    #[schema(value_type = Channel)]
    channel: String,
    /// Who the channel says is in contact.
    caller: CallerIdentifier,
    /// The staff member the contact was routed to.
    #[schema(value_type = Id)]
    agent: String,
    /// When the contact started, unix milliseconds, as the channel says (default: now).
    /// At most `[contacts] max_age_minutes` old, and not ahead of the server's clock.
    at: Option<i64>,
    /// Why the customer is in contact, if the channel knows (an IVR menu choice); sealed
    /// as the reason of a case the contact opens.
    #[schema(value_type = Option<Reason>)]
    reason: Option<String>,
}

/// The caller's identifier as the channel received it: exactly one of these. A call or
/// a text gives the calling number; a mail its sender address; the customer app a signed
/// assertion. The channel's word on a number or an address is trusted: the contact
/// centre is an integration with its own token. An assertion is checked: the app's
/// identity provider signed it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerIdentifier {
    /// The calling number (any common way of writing it).
    phone: Option<String>,
    /// The sender address.
    email: Option<String>,
    /// For an `app` contact only: the customer app's signed assertion, a compact JWT
    /// that the company's identity provider issued to the signed-in customer. Checked
    /// against `[contacts.app_assertion]` (the provider's key set, issuer and audience;
    /// at most `max_age_seconds` old; used once); its `account_claim` is the customer's
    /// account id. Refused with the check's code (`token_expired`, `token_bad_signature`,
    /// …), or `app_assertion_not_configured` on a server without that section.
    #[schema(value_type = Option<AppAssertion>)]
    app_assertion: Option<String>,
}

/// The one identifier a caller gave.
enum Given<'a> {
    Phone(&'a str),
    Email(&'a str),
    AppAssertion(&'a str),
}

/// The contact as recorded.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PostedContact {
    /// The contact's id: name it as `contact` when the CRM opens a case on it.
    #[schema(value_type = ContactId)]
    id: String,
    /// How many customers the caller's identifier belongs to.
    matches: usize,
    /// The customer, when exactly one matches.
    #[schema(value_type = Option<CustomerId>)]
    customer: Option<String>,
    /// The agent's case for that customer, opened or vouched for by this contact.
    #[schema(value_type = Option<CaseId>)]
    case: Option<String>,
    /// That case's provenance: always `verified`.
    #[schema(value_type = Option<String>, example = "verified")]
    provenance: Option<Provenance>,
}

impl CallerIdentifier {
    /// The one identifier given; refused unless exactly one is, of a kind the channel
    /// carries.
    fn given(&self, channel: custos_types::Channel) -> Result<Given<'_>, ServiceError> {
        use custos_types::Channel;
        let given = match (&self.phone, &self.email, &self.app_assertion) {
            (Some(phone), None, None) => Given::Phone(phone),
            (None, Some(email), None) => Given::Email(email),
            (None, None, Some(assertion)) => Given::AppAssertion(assertion),
            _ => {
                return Err(ServiceError::bad_request(
                    Code::InvalidCaller,
                    "caller must give exactly one of phone, email and app_assertion",
                ));
            }
        };
        let (fits, expected) = match channel {
            Channel::Phone | Channel::Sms => (matches!(given, Given::Phone(_)), "phone"),
            Channel::Email => (matches!(given, Given::Email(_)), "email"),
            // A chat or a store visit may be known by either; only the app signs.
            Channel::Chat | Channel::Store => {
                (!matches!(given, Given::AppAssertion(_)), "phone or email")
            }
            Channel::App => (true, "phone, email or app_assertion"),
        };
        if !fits {
            return Err(ServiceError::bad_request(
                Code::InvalidCaller,
                format!("a {channel} contact identifies its caller by {expected}"),
            ));
        }
        Ok(given)
    }
}

impl App {
    /// Records a contact the contact centre routed to an agent (`post_contact`); `input`
    /// is the body, as decoded by the transport. The record names the agent as its
    /// target and, when exactly one customer's identifier is the caller's, that customer
    /// and the agent's case, which the contact opens or vouches for (`verified`). The
    /// contact and case are stored only once that record is durable.
    pub async fn post_contact(
        &self,
        meta: &RequestMeta,
        input: Result<NewContact, ServiceError>,
    ) -> Recorded<PostedContact> {
        let mut ex = self.begin(meta, custos_types::Action::PostContact);
        let result = async {
            let caller = self
                .authorize_vault(meta, &mut ex, custos_policy::Action::PostContact)
                .await?;
            let input = input?;
            valid_id("staff", &input.agent)?;
            ex.target = Some(input.agent.clone());
            let channel = valid_channel(&input.channel)?;
            if let Some(reason) = &input.reason {
                valid_text("reason", reason, MAX_REASON_CHARS)?;
            }
            let at = input.at.unwrap_or(ex.at());
            if at < ex.at() - self.config.contacts.max_age_ms() || at > ex.at() + CLOCK_SKEW_MS {
                return Err(ServiceError::bad_request(
                    Code::TimeOutOfRange,
                    "at must be within contacts.max_age_minutes before now, and not ahead of it",
                ));
            }
            let given = input.caller.given(channel)?;
            let Some(agent) = self.store.staff(&input.agent).await? else {
                return Err(ServiceError::not_found("agent"));
            };
            if !agent.role.serves_customers() {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::AssigneeNotServing,
                    "contacts are routed only to staff whose role serves customers",
                ));
            }
            // Last of the checks: an app assertion is used up by being accepted.
            let (kind, column, normalized) = self.identify(given).await?;
            // The contact keeps the index under the current key; the lookup searches under
            // the previous one too while the index key rotates.
            let version = self.keyring.index_version();
            let index = self
                .keyring
                .blind_index_under(version, kind, &normalized)
                .to_hex();
            let lookups = hexes(self.keyring.lookup_indexes(kind, &normalized));
            drop(normalized);
            let mut matched: Vec<String> = self
                .store
                .customers_by_indexes(column, &lookups)
                .await?
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            matched.sort_unstable();
            matched.dedup();
            let contact = ContactRecord {
                id: new_contact_id(),
                channel,
                agent: agent.id.clone(),
                identifier_kind: column,
                identifier_idx: index,
                identifier_version: version.0,
                at,
                created_by: caller.staff.id.clone(),
                created_at: ex.at(),
            };
            let [customer] = matched.as_slice() else {
                ex.fields = CaseFacts {
                    channel: Some(channel.as_str()),
                    inbound: true,
                    requested_by: None,
                    provenance: None,
                    campaign: None,
                }
                .to_fields();
                self.record_intent(&mut ex).await?;
                self.store.insert_contact(&contact).await?;
                return Ok(PostedContact {
                    id: contact.id,
                    matches: matched.len(),
                    customer: None,
                    case: None,
                    provenance: None,
                });
            };
            ex.name_customer(customer)?;
            let case = self
                .vouch_or_open_case(&mut ex, &contact, &agent, customer, input.reason.as_deref())
                .await?;
            Ok(PostedContact {
                id: contact.id,
                matches: 1,
                customer: Some(customer.clone()),
                case: Some(case),
                provenance: Some(Provenance::Verified),
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// The blind index the caller's identifier is looked up in, and its normalised form.
    /// An app assertion is verified and used up here.
    async fn identify(
        &self,
        given: Given<'_>,
    ) -> Result<(IndexKind, IndexColumn, String), ServiceError> {
        let (kind, column, normalized) = match given {
            Given::Phone(phone) => (
                IndexKind::Phone,
                IndexColumn::Phone,
                custos_crypto::normalize_phone(phone, &self.config.default_region),
            ),
            Given::Email(email) => (
                IndexKind::Email,
                IndexColumn::Email,
                custos_crypto::normalize_email(email),
            ),
            Given::AppAssertion(assertion) => {
                let Some(assertions) = &self.app_assertions else {
                    return Err(ServiceError::new(
                        ErrorKind::Conflict,
                        Code::AppAssertionNotConfigured,
                        "this server checks no app assertions (see [contacts.app_assertion] in the configuration)",
                    ));
                };
                let account_id = assertions.accept(assertion).await?;
                (
                    IndexKind::AccountId,
                    IndexColumn::AccountId,
                    custos_crypto::normalize_account_id(&account_id),
                )
            }
        };
        let normalized = normalized
            .map_err(|e| ServiceError::bad_request(Code::Part(e.code()), e.to_string()))?;
        Ok((kind, column, normalized))
    }

    /// The agent's newest open case for `customer`, now vouched for by `contact`, or a
    /// new `verified` case if there is none; the record is durable before either.
    async fn vouch_or_open_case(
        &self,
        ex: &mut crate::record::Exchange,
        contact: &ContactRecord,
        agent: &StaffRecord,
        customer_id: &str,
        reason: Option<&str>,
    ) -> Result<String, ServiceError> {
        ex.fields = case_facts(contact.channel, Provenance::Verified, None, None);
        let open = self
            .store
            .open_cases(&agent.id, Some(customer_id), 1)
            .await?;
        if let Some(case) = open.first() {
            ex.name_case(&case.id)?;
            self.record_intent(ex).await?;
            self.store.insert_contact(contact).await?;
            self.store
                .vouch_case(&case.id, Provenance::Verified, &contact.id)
                .await?;
            return Ok(case.id.clone());
        }
        let customer = self
            .store
            .customer(customer_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
        let id = new_case_id();
        ex.name_case(&id)?;
        let reason = reason
            .map(str::trim)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("Inbound {} contact", contact.channel));
        self.open_case(
            ex,
            OpeningCase {
                id: &id,
                customer: &customer,
                assignee: agent,
                channel: contact.channel,
                reason: &reason,
                created_by: &contact.created_by,
                provenance: Provenance::Verified,
                campaign: None,
                contact_id: Some(&contact.id),
                self_requested: false,
            },
            Some(contact),
        )
        .await?;
        Ok(id)
    }

    /// Refuses a contact a case may not be opened on: one routed to someone other than
    /// the case's assignee, or older than `[contacts] max_age_minutes`.
    pub(crate) fn require_usable_contact(
        &self,
        contact: &ContactRecord,
        assignee: &str,
        now: i64,
    ) -> Result<(), ServiceError> {
        if contact.agent != assignee {
            return Err(ServiceError::new(
                ErrorKind::Conflict,
                Code::ContactMismatch,
                "the contact was routed to another agent than the case's assignee",
            ));
        }
        if now - contact.at > self.config.contacts.max_age_ms() {
            return Err(ServiceError::new(
                ErrorKind::Conflict,
                Code::ContactExpired,
                "the contact is older than contacts.max_age_minutes",
            ));
        }
        Ok(())
    }
}
