//! Cases: what opens a customer's record to a person. Opened by the CRM integration,
//! closed by the assignee or the CRM. The case facts recorded with `create_case`, the
//! binding of a case's sealed reason, the rule on who may be given a case.

use crate::error::Code;
use custos_crypto::{IndexKind, IndexVersion};
use custos_policy::{AccessRequest, Action, CaseContext, Resource};
use custos_store::{
    CaseRecord, CaseStatus, ContactRecord, CustomerRecord, IndexColumn, StaffRecord,
};
use custos_types::Provenance;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::allocation::Trigger;
use crate::auth::Caller;
use crate::case_record::{case_context, case_facts, reason_context};
use crate::error::{ErrorKind, ServiceError};
use crate::ids::{IssuedId, new_case_id};
use crate::input::{MAX_REASON_CHARS, valid_channel, valid_id, valid_text};
use crate::record::{Exchange, Recorded, RequestMeta};
use crate::schema::{CaseId, Channel, ContactId, CustomerId, Id, Reason};
use crate::vault::Opened;

/// A case about to be opened, its request checked ([`App::open_case`]).
pub(crate) struct OpeningCase<'a> {
    pub(crate) id: &'a str,
    pub(crate) customer: &'a CustomerRecord,
    pub(crate) assignee: &'a StaffRecord,
    pub(crate) channel: custos_types::Channel,
    /// As written, trimmed; sealed before it is stored.
    pub(crate) reason: &'a str,
    pub(crate) created_by: &'a str,
    pub(crate) provenance: Provenance,
    pub(crate) campaign: Option<&'a str>,
    pub(crate) contact_id: Option<&'a str>,
    /// Whether the assignee asked for the case themselves (canary allocation's trigger).
    pub(crate) self_requested: bool,
}

/// A new case.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    #[schema(value_type = CustomerId)]
    customer: String,
    /// A staff member whose role serves customers.
    #[schema(value_type = Id)]
    assignee: String,
    #[schema(value_type = Channel)]
    channel: String,
    /// Why the customer contacted the company (sealed under the customer's data key).
    #[schema(value_type = Reason)]
    reason: String,
    /// Whether the customer started the contact behind the case (a call, chat, mail or
    /// store visit); false for a case with no inbound contact (outbound, follow-up).
    #[serde(default = "inbound_default")]
    #[schema(default = true)]
    inbound: bool,
    /// The staff member on whose behalf the CRM opens the case (someone who clicked
    /// "new case"); absent when the CRM opened it on its own for an inbound contact.
    /// The case's provenance is then `requested`.
    #[schema(value_type = Option<Id>)]
    requested_by: Option<String>,
    /// The contact behind the case, as the contact centre reported it
    /// (`POST /v1/contacts`), routed to the assignee. The case is `verified` if the
    /// caller's identifier is this customer's, else `unverified`.
    #[schema(value_type = Option<ContactId>)]
    contact: Option<String>,
    /// The campaign of an outbound case (opened by an integration, never for a person):
    /// the case's provenance is then `outbound`.
    #[schema(value_type = Option<Id>)]
    campaign: Option<String>,
}

impl NewCase {
    /// The provenance the request claims, before any contact is checked: a contact is
    /// `unverified` until its identifier is found to be the customer's. Naming more
    /// than one origin is refused.
    fn claimed_provenance(&self) -> Result<Provenance, ServiceError> {
        let origins = [
            self.contact.is_some(),
            self.campaign.is_some(),
            self.requested_by.is_some(),
        ];
        if origins.iter().filter(|&&named| named).count() > 1 {
            // 409, not 400: each field is valid on its own; together they contradict.
            return Err(ServiceError::new(
                ErrorKind::Conflict,
                Code::InvalidOrigin,
                "a case has one origin: name at most one of contact, campaign and requested_by",
            ));
        }
        Ok(if self.contact.is_some() {
            Provenance::Unverified
        } else if self.campaign.is_some() {
            Provenance::Outbound
        } else if self.requested_by.is_some() || !self.inbound {
            Provenance::Requested
        } else {
            // The CRM says a contact happened; no channel vouched for it.
            Provenance::Unverified
        })
    }
}

/// Cases come from customers' contacts unless the CRM says otherwise: the integrations
/// that predate the field open cases only for inbound contacts.
fn inbound_default() -> bool {
    true
}

/// The new case.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedCase {
    #[schema(value_type = CaseId)]
    id: String,
    /// Who vouches that the customer is in contact.
    #[schema(value_type = String, example = "verified")]
    provenance: Provenance,
}

/// A closed case.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Closed {
    #[schema(value_type = CaseId)]
    id: String,
    /// Always `closed`.
    #[schema(pattern = "^closed$")]
    status: &'static str,
}

impl App {
    /// Opens a case for a customer, assigned to a staff member (`create_case`); `input`
    /// is the body, as decoded by the transport. The record names the assignee as its
    /// target and the case's origin as its fields (its channel, contact and requester);
    /// the case is stored only once that record is durable, and may earn the assignee a
    /// canary's case ([`crate::allocation`]).
    pub async fn create_case(
        &self,
        meta: &RequestMeta,
        input: Result<NewCase, ServiceError>,
    ) -> Recorded<CreatedCase> {
        let mut ex = self.begin(meta, custos_types::Action::CreateCase);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            let input = input?;
            ex.name_customer(&input.customer)?;
            valid_id("staff", &input.assignee)?;
            if let Some(requester) = &input.requested_by {
                valid_id("staff", requester)?;
            }
            if let Some(campaign) = &input.campaign {
                valid_id("campaign", campaign)?;
            }
            if let Some(contact) = &input.contact {
                IssuedId::Contact.check(contact)?;
            }
            ex.target = Some(input.assignee.clone());
            let id = new_case_id();
            ex.name_case(&id)?;
            let mut provenance = input.claimed_provenance()?;
            self.authorize(
                &mut ex,
                &AccessRequest {
                    principal: caller.principal(),
                    action: Action::CreateCase,
                    resource: Resource::Case(CaseContext {
                        id: &id,
                        customer: &input.customer,
                        assignee: &input.assignee,
                        open: true,
                        provenance,
                    }),
                    case: None,
                    granted: false,
                },
            )?;
            let channel = valid_channel(&input.channel)?;
            valid_text("reason", &input.reason, MAX_REASON_CHARS)?;
            let customer = self
                .store
                .customer(&input.customer)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            let Some(assignee) = self.store.staff(&input.assignee).await? else {
                return Err(ServiceError::not_found("assignee"));
            };
            self.require_serving_assignee(&assignee, &customer.id, &id)?;
            if let Some(requester) = &input.requested_by
                && self.store.staff(requester).await?.is_none()
            {
                return Err(ServiceError::not_found("requested_by"));
            }
            if let Some(contact) = &input.contact {
                let contact = self
                    .store
                    .contact(contact)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("contact"))?;
                self.require_usable_contact(&contact, &assignee.id, ex.at())?;
                if self.contact_names(&contact, &customer)? {
                    provenance = Provenance::Verified;
                }
            }
            // Where the case came from, for the ledger (custos_access::entry docs): only the
            // validated channel word, fixed words and ids, never the free-text reason.
            ex.fields = case_facts(
                channel,
                provenance,
                input.requested_by.as_deref(),
                input.campaign.as_deref(),
            );
            self.open_case(
                &mut ex,
                OpeningCase {
                    id: &id,
                    customer: &customer,
                    assignee: &assignee,
                    channel,
                    reason: input.reason.trim(),
                    created_by: &caller.staff.id,
                    provenance,
                    campaign: input.campaign.as_deref(),
                    contact_id: input.contact.as_deref(),
                    self_requested: input.requested_by.as_deref() == Some(assignee.id.as_str()),
                },
                None,
            )
            .await?;
            Ok(CreatedCase { id, provenance })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Whether `contact`'s identifier is `customer`'s field of the same kind. Stored
    /// indexes under one version of the index key compare as they are; across a rotation
    /// of it, the customer's field (stored normalised) is indexed under the contact's
    /// version, in memory only.
    fn contact_names(
        &self,
        contact: &ContactRecord,
        customer: &CustomerRecord,
    ) -> Result<bool, ServiceError> {
        if customer.is_erased() {
            return Ok(false);
        }
        if contact.identifier_version == customer.index_version {
            return Ok(
                contact.identifier_kind.of(customer) == Some(contact.identifier_idx.as_str())
            );
        }
        let kind = match contact.identifier_kind {
            IndexColumn::Phone => IndexKind::Phone,
            IndexColumn::Email => IndexKind::Email,
            IndexColumn::AccountId => IndexKind::AccountId,
        };
        let opened = Opened::new(&self.keyring, customer)?;
        Ok(opened
            .field(contact.identifier_kind.as_str())?
            .is_some_and(|value| {
                let index = self.keyring.blind_index_under(
                    IndexVersion(contact.identifier_version),
                    kind,
                    &value,
                );
                index.to_hex() == contact.identifier_idx
            }))
    }

    /// Opens a case whose request has passed its checks: seals its reason under the
    /// customer's key, makes the record durable, then stores `new_contact` (the contact
    /// that opens it, when that is new too) and the case, and lets canary allocation
    /// consider the assignee.
    pub(crate) async fn open_case(
        &self,
        ex: &mut Exchange,
        case: OpeningCase<'_>,
        new_contact: Option<&ContactRecord>,
    ) -> Result<(), ServiceError> {
        let reason = Opened::new(&self.keyring, case.customer)?
            .seal_text(&reason_context(case.id), case.reason)?;
        self.record_intent(ex).await?;
        if let Some(contact) = new_contact {
            self.store.insert_contact(contact).await?;
        }
        self.store
            .insert_case(&CaseRecord {
                id: case.id.to_owned(),
                customer_id: case.customer.id.clone(),
                assignee: case.assignee.id.clone(),
                channel: case.channel,
                reason,
                status: CaseStatus::Open,
                created_by: case.created_by.to_owned(),
                created_at: ex.at(),
                closed_at: None,
                provenance: case.provenance,
                campaign: case.campaign.map(str::to_owned),
                contact_id: case.contact_id.map(str::to_owned),
            })
            .await?;
        self.maybe_allocate_canary(
            case.assignee,
            &Trigger {
                channel: case.channel,
                provenance: case.provenance,
                campaign: case.campaign,
                self_requested: case.self_requested,
                at: ex.at(),
            },
        )
        .await;
        Ok(())
    }

    /// Closes case `id` (`close_case`: its assignee, the integration, admins); its
    /// customer's record closes with it, and so do the privacy numbers bound under it. The record is durable before the case closes.
    pub async fn close_case(&self, meta: &RequestMeta, id: &str) -> Recorded<Closed> {
        let mut ex = self.begin(meta, custos_types::Action::CloseCase);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            ex.name_case(id)?;
            let case = self
                .store
                .case(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("case"))?;
            ex.name_customer(&case.customer_id)?;
            self.authorize(
                &mut ex,
                &AccessRequest {
                    principal: caller.principal(),
                    action: Action::CloseCase,
                    resource: Resource::Case(case_context(&case)),
                    case: None,
                    granted: false,
                },
            )?;
            self.record_intent(&mut ex).await?;
            if !self.store.close_case(id, ex.at()).await? {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::CaseClosed,
                    "case is already closed",
                ));
            }
            Ok(Closed {
                id: id.to_owned(),
                status: "closed",
            })
        }
        .await;
        self.finish(ex, result).await
    }
}

impl App {
    /// Refuses a case for anyone the policy would not let read this customer under it
    /// (`serves-customers`: security analysts, admins, the CRM and other integrations).
    /// A case is how a record opens, so a case for such a person is either useless or a
    /// way around the policy. The assignee is asked about in good standing: a suspended
    /// person may still be given cases, which they cannot use until resumed.
    fn require_serving_assignee(
        &self,
        assignee: &StaffRecord,
        customer: &str,
        case_id: &str,
    ) -> Result<(), ServiceError> {
        let person = Caller::of(assignee.clone(), &self.config.company_org);
        let decision = self.policy.decide(&AccessRequest {
            principal: custos_policy::Principal {
                suspended: false,
                ..person.principal()
            },
            action: Action::View,
            resource: Resource::Customer { id: customer },
            case: Some(CaseContext {
                id: case_id,
                customer,
                assignee: &assignee.id,
                open: true,
                // Whether the role serves customers at all: the provenance that allows most.
                provenance: Provenance::Verified,
            }),
            granted: false,
        });
        if decision.allowed {
            Ok(())
        } else {
            // The request is well formed; the assignee's role is what stands in the way.
            Err(ServiceError::new(
                ErrorKind::Conflict,
                Code::AssigneeNotServing,
                format!(
                    "cases are assigned only to staff whose role serves customers; the policy refuses this assignee ({})",
                    decision.reason_code
                ),
            ))
        }
    }
}
