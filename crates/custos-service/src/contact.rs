//! Reveal-free contact: an agent reaches a customer through a relay that fills in the
//! number or address itself, so the agent never sees it.
//!
//! - **call**: a privacy number (the A–X–B model): a number X of the configured pool is
//!   bound to the agent and the customer for the life of the case
//!   ([`custos_store::CallBinding`]); the agent dials X, and the company's PBX, as a
//!   `telephony` principal, asks Custos where X leads for that agent
//!   ([`App::resolve_call`]). The same agent reaches the same customer through the same
//!   X while a case is open; X leads each agent to one customer at a time, and may serve
//!   other agents at once. The binding ends when its case closes.
//! - **email** and **sms**: sent through the company's relays ([`crate::relay`]).
//!
//! A contact is charged like a reveal of the field it uses (phone for a call or an SMS,
//! email for an email): one reveal, and the customer counts toward customers per day.
//! Its record is durable before anything is bound or sent.

use custos_policy::Action;
use custos_store::{CallBinding, StoreError};
use custos_types::ContactChannel;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::input::{
    MAX_EMAIL_TEXT_CHARS, MAX_SMS_TEXT_CHARS, MAX_SUBJECT_CHARS, valid_id, valid_message,
    valid_text,
};
use crate::quota::Charge;
use crate::record::{Recorded, RequestMeta};
use crate::relay::is_e164;
use crate::schema::{E164, Id};
use crate::vault::Opened;

/// A contact: which case it is for, which relay, and for an email or SMS the message
/// (described as [`crate::schema::ContactBody`], one shape per channel).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRequest {
    /// An open case assigned to the caller for this customer.
    case: String,
    /// `call` (a privacy number), `email` or `sms`.
    channel: String,
    /// An email's subject; only for `email`, which needs it.
    subject: Option<String>,
    /// The message; for `email` and `sms`, which need it. Sent as written: it is not
    /// stored or recorded.
    text: Option<String>,
}

/// What a contact did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Contacted {
    /// The relay used.
    #[schema(value_type = crate::schema::ContactChannel)]
    channel: ContactChannel,
    /// `bound` (a call: dial `virtual_number`) or `sent` (the relay took the message).
    #[schema(pattern = "^(bound|sent)$")]
    status: &'static str,
    /// For a call: the privacy number that leads the caller to this customer while the
    /// case is open.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<E164>)]
    virtual_number: Option<String>,
}

/// The PBX's question: where does `virtual_number` lead when `agent` dials it?
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    /// The staff id of the agent placing the call.
    #[schema(value_type = Id)]
    agent: String,
    /// The privacy number dialled.
    #[schema(value_type = E164)]
    virtual_number: String,
}

/// Where a privacy number leads.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Resolved {
    /// The customer's number, E.164: connect the call to it, never show it.
    #[schema(value_type = E164)]
    number: String,
}

/// How many times a binding is tried when concurrent contacts of the same agent take
/// the chosen number first.
const BIND_ATTEMPTS: usize = 4;

impl App {
    /// Contacts customer `id` through the relay `request` names, for its case (Cedar
    /// `contact_call`, `contact_email`, `contact_sms`). `request` is as decoded by the
    /// transport.
    pub async fn contact_customer(
        &self,
        meta: &RequestMeta,
        id: &str,
        request: Result<ContactRequest, ServiceError>,
    ) -> Recorded<Contacted> {
        let mut ex = self.begin(meta, custos_types::Action::Contact);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            ex.name_customer(id)?;
            let request = request?;
            let channel: ContactChannel = request.channel.parse().map_err(|_| {
                ServiceError::bad_request(
                    Code::InvalidChannel,
                    format!(
                        "channel must be one of {}",
                        ContactChannel::ALL
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            ex.fields = vec![custos_types::facts::contact_channel(channel)];
            check_message(channel, &request)?;
            let action = match channel {
                ContactChannel::Call => Action::ContactCall,
                ContactChannel::Email => Action::ContactEmail,
                ContactChannel::Sms => Action::ContactSms,
            };
            self.authorize_with_case(&mut ex, &caller, &[action], id, Some(&request.case))
                .await?;
            // Before the quota: a contact that cannot go anywhere takes nothing from it.
            if !self.relays.configured(channel) {
                return Err(crate::relay::not_configured());
            }
            self.charge(&ex, &caller, Charge::Customer { id, reveals: 1 })
                .await?;
            let record = self
                .store
                .customer(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            let no_field = || {
                ServiceError::new(
                    ErrorKind::Conflict,
                    Code::NoContactField,
                    format!("the customer has no {} on file", channel.field()),
                )
            };
            // A call needs the number only when the PBX asks: it stays sealed until then.
            let to = match channel {
                ContactChannel::Call if record.phone.is_none() => return Err(no_field()),
                ContactChannel::Call => None,
                ContactChannel::Email | ContactChannel::Sms => Some(
                    Opened::new(&self.keyring, &record)?
                        .field(channel.field())?
                        .ok_or_else(no_field)?,
                ),
            };
            self.record_intent(&mut ex).await?;
            let to = to.as_deref().map(String::as_str).unwrap_or_default();
            let virtual_number = match channel {
                ContactChannel::Call => Some(
                    self.bind_number(&caller.staff.id, id, &request.case, ex.at())
                        .await?,
                ),
                ContactChannel::Email => {
                    let (subject, text) = (
                        request.subject.as_deref().unwrap_or_default(),
                        request.text.as_deref().unwrap_or_default(),
                    );
                    self.relays.send_email(to, subject, text).await?;
                    None
                }
                ContactChannel::Sms => {
                    let text = request.text.as_deref().unwrap_or_default();
                    self.relays.send_sms(to, text, ex.request_id()).await?;
                    None
                }
            };
            Ok(Contacted {
                channel,
                status: if virtual_number.is_some() {
                    "bound"
                } else {
                    "sent"
                },
                virtual_number,
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Answers the PBX (Cedar `resolve_call`: the `telephony` role) with the real number
    /// behind `virtual_number` for `agent`, while the binding's case is open and the
    /// agent is not suspended (403 `forbidden`, policy `suspended`). The record
    /// names the customer, the case and, as its target, the agent.
    pub async fn resolve_call(
        &self,
        meta: &RequestMeta,
        request: Result<ResolveRequest, ServiceError>,
    ) -> Recorded<Resolved> {
        let mut ex = self.begin(meta, custos_types::Action::ResolveCall);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ResolveCall)
                .await?;
            let request = request?;
            valid_id("agent", &request.agent)?;
            ex.target = Some(request.agent.clone());
            ex.fields = vec![custos_types::facts::contact_channel(ContactChannel::Call)];
            if !is_e164(&request.virtual_number) {
                return Err(ServiceError::bad_request(
                    Code::InvalidBody,
                    "virtual_number must be an E.164 number (+ and 2 to 15 digits)",
                ));
            }
            let Some(binding) = self
                .store
                .call_binding_of(&request.agent, &request.virtual_number)
                .await?
            else {
                return Err(ServiceError::new(
                    ErrorKind::NotFound,
                    Code::NoCallBinding,
                    "this number leads this agent nowhere: no binding is in force (none was made, or its case is closed)",
                ));
            };
            ex.name_customer(&binding.customer_id)?;
            ex.name_case(&binding.case_id)?;
            // A suspended person gets nothing, a call through a number bound before
            // included.
            let agent = self.store.staff(&request.agent).await?;
            if agent.is_none_or(|a| a.status != custos_store::StaffStatus::Active) {
                return Err(ServiceError::forbidden("suspended"));
            }
            let record = self
                .store
                .customer(&binding.customer_id)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            let number = Opened::new(&self.keyring, &record)?
                .field("phone")?
                .ok_or_else(|| {
                    ServiceError::new(
                        ErrorKind::Conflict,
                        Code::NoContactField,
                        "the customer has no phone on file",
                    )
                })?;
            Ok(Resolved {
                number: number.as_str().to_owned(),
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// The pool number that leads `staff` to `customer`: the one in force, or a free one
    /// bound now under `case`. 503 `number_pool_exhausted` when every number of the pool
    /// already leads this person to another customer.
    async fn bind_number(
        &self,
        staff: &str,
        customer: &str,
        case: &str,
        at: i64,
    ) -> Result<String, ServiceError> {
        for _ in 0..BIND_ATTEMPTS {
            if let Some(binding) = self.store.call_binding_to(staff, customer).await? {
                return Ok(binding.number);
            }
            let held = self.store.call_numbers_of(staff).await?;
            let Some(free) = self.relays.numbers().iter().find(|n| !held.contains(n)) else {
                return Err(ServiceError::new(
                    ErrorKind::Unavailable,
                    Code::NumberPoolExhausted,
                    "every privacy number already leads you to another customer; close a case you are done with and call again",
                ));
            };
            let binding = CallBinding {
                case_id: case.to_owned(),
                staff_id: staff.to_owned(),
                customer_id: customer.to_owned(),
                number: free.clone(),
                created_at: at,
            };
            match self.store.insert_call_binding(&binding).await {
                Ok(()) => return Ok(binding.number),
                // A concurrent contact of the same person took the number, or bound this
                // customer first: look again.
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::new(
            ErrorKind::Conflict,
            Code::Conflict,
            "concurrent calls kept taking the privacy numbers; try again",
        ))
    }
}

/// A call carries no message; an email needs a subject and a text; an SMS a text and no
/// subject. Each within its bounds.
fn check_message(channel: ContactChannel, request: &ContactRequest) -> Result<(), ServiceError> {
    let (subject, text) = (request.subject.as_deref(), request.text.as_deref());
    let shape = |message: &str| ServiceError::bad_request(Code::InvalidBody, message.to_owned());
    match channel {
        ContactChannel::Call => {
            if subject.is_some() || text.is_some() {
                return Err(shape("a call carries no subject or text"));
            }
        }
        ContactChannel::Email => {
            let (Some(subject), Some(text)) = (subject, text) else {
                return Err(shape("an email needs a subject and a text"));
            };
            valid_text("subject", subject, MAX_SUBJECT_CHARS)?;
            valid_message("text", text, MAX_EMAIL_TEXT_CHARS)?;
        }
        ContactChannel::Sms => {
            let (None, Some(text)) = (subject, text) else {
                return Err(shape("an SMS needs a text and carries no subject"));
            };
            valid_message("text", text, MAX_SMS_TEXT_CHARS)?;
        }
    }
    Ok(())
}
