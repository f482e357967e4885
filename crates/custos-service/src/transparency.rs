//! Access transparency: a customer sees every access to their record — when, which
//! organisation and role, a pseudonym for the person, the case's channel and reason, the
//! fields revealed — through the company's portal (`customer_portal`: the CRM
//! integration, admins) or the console's customer page (a customer access link).
//!
//! Reading someone's accesses is itself recorded, with the customer as the record's
//! target (not as its customer: it exposes none of their fields).

use crate::error::Code;
use std::collections::HashMap;

use custos_policy::Action;
use custos_store::{AccessFilter, CaseRecord};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::auth::SessionCredential;
use crate::error::{ErrorKind, ServiceError};
use crate::ids::IssuedId;
use crate::record::{Exchange, Recorded, RequestMeta};
use crate::schema::{Channel, CustomerId};
use crate::vault::Opened;

/// Most access records one answer covers (the newest are kept).
const MAX_ACCESSES: u32 = 10_000;

/// Longest validity of a customer access link, in hours (7 days): a link is a bearer
/// secret until it is first opened, so it should not outlive the contact it was sent in.
pub const MAX_LINK_HOURS: u32 = 168;

/// Validity of a link when the request names none, in hours.
pub const DEFAULT_LINK_HOURS: u32 = 24;

/// One access to a customer's record, as the customer sees it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerAccess {
    /// When, unix milliseconds.
    pub at: i64,
    /// The organisation of the person (the company or a partner company).
    pub org: String,
    /// Their role, e.g. `support`.
    #[schema(value_type = String)]
    pub role: custos_types::RecordedRole,
    /// A stable pseudonym for the person (the same person shows the same pseudonym).
    pub staff: String,
    /// `view` (masked card), `reveal` (fields in full), `search` (found by a value),
    /// `contact` (reached through a relay), `resolve_call` (the PBX connected a privacy
    /// number's call), `create_case`, `close_case`.
    #[schema(value_type = String)]
    pub action: custos_types::Action,
    /// For a reveal, the fields shown in full; for a search, what was searched by; for a
    /// contact, its channel (`channel:call`, `channel:email`, `channel:sms`).
    pub fields: Vec<String>,
    /// `allow`, or `deny` when the attempt was refused.
    #[schema(value_type = String, pattern = "^(allow|deny)$")]
    pub decision: custos_types::Decision,
    /// The case the access was made for, if any.
    pub case: Option<CaseSummary>,
}

/// The case an access was made for.
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CaseSummary {
    /// How the customer was in contact.
    #[schema(value_type = Channel)]
    pub channel: custos_types::Channel,
    /// The case's reason as written when it was opened.
    pub reason: String,
    /// When it was opened, unix milliseconds.
    pub opened_at: i64,
}

/// Every access to one customer's record, newest first.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct CustomerAccesses {
    /// The customer.
    #[schema(value_type = CustomerId)]
    pub customer: String,
    /// Newest first.
    pub accesses: Vec<CustomerAccess>,
    /// Whether older accesses were left out (more than 10,000).
    pub truncated: bool,
}

/// Validity of a new link.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Hours the link stays valid, 1 to 168 (default 24).
    #[schema(minimum = 1, maximum = 168)]
    #[serde(default, deserialize_with = "whole_hours")]
    valid_hours: Option<u32>,
}

/// Reads hours written as any JSON integer, `16.0` included: JSON Schema's `integer` is
/// a number without a fraction, however it is spelled. The range is checked later.
fn whole_hours<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(hours) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    if hours.fract() != 0.0 {
        return Err(serde::de::Error::custom("hours are a whole number"));
    }
    // Out of u32's range is out of a link's range too: `valid_link_hours` refuses it.
    Ok(Some(if (0.0..=f64::from(u32::MAX)).contains(&hours) {
        hours as u32
    } else {
        u32::MAX
    }))
}

/// A customer access link.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Link {
    /// The signed token; give it to the customer only. It opens one console session.
    token: String,
    /// Path of the console page that signs the customer in with it.
    path: String,
    /// When it stops working, unix milliseconds.
    expires_at: i64,
}

impl App {
    /// The customer a customer access link was issued for, and when it expires (unix
    /// ms), if `token` is a genuine link, spelt as issued and not expired at `now`.
    /// Checking a link reads no record: the session it opens reads through
    /// [`App::customer_accesses`], which is recorded.
    pub fn open_customer_link(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(String, i64), custos_crypto::LinkError> {
        self.keyring.open_customer_link(token, now)
    }

    /// Every access to customer `id`'s record, newest first, as the customer sees it
    /// (the customer themselves, or a caller allowed `customer_portal`).
    pub async fn customer_accesses(
        &self,
        meta: &RequestMeta,
        id: &str,
    ) -> Recorded<CustomerAccesses> {
        let mut ex = self.begin(meta, custos_types::Action::CustomerAccesses);
        let result = async {
            ex.name_target(IssuedId::Customer, id)?;
            self.authorize_portal(meta, &mut ex, id).await?;
            self.read_customer_accesses(id).await
        }
        .await;
        self.finish(ex, result).await
    }

    /// Issues a customer access link (`customer_portal`); `request` is the optional
    /// body, as decoded by the transport (`None`: the defaults).
    pub async fn issue_customer_link(
        &self,
        meta: &RequestMeta,
        id: &str,
        request: Result<Option<LinkRequest>, ServiceError>,
    ) -> Recorded<Link> {
        let mut ex = self.begin(meta, custos_types::Action::IssueCustomerLink);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::CustomerPortal)
                .await?;
            ex.name_target(IssuedId::Customer, id)?;
            let hours = request?.and_then(|r| r.valid_hours);
            let hours = valid_link_hours(hours.unwrap_or(DEFAULT_LINK_HOURS))?;
            let expires_at = link_expiry(ex.at(), hours)?;
            if self.store.customer(id).await?.is_none() {
                return Err(ServiceError::not_found("customer"));
            }
            let token = self.keyring.customer_link(id, expires_at);
            self.record_intent(&mut ex).await?;
            Ok(Link {
                path: format!("/customer/enter?link={token}"),
                token,
                expires_at,
            })
        }
        .await;
        self.finish(ex, result).await
    }
}

/// Checks a link's validity in hours: 1 to [`MAX_LINK_HOURS`].
pub fn valid_link_hours(hours: u32) -> Result<u32, ServiceError> {
    if (1..=MAX_LINK_HOURS).contains(&hours) {
        Ok(hours)
    } else {
        Err(ServiceError::bad_request(
            Code::InvalidLinkHours,
            format!("a link is valid for 1 to {MAX_LINK_HOURS} hours"),
        ))
    }
}

/// When a link issued at `now` (unix ms) for `hours` expires; checked, as the time of a
/// request can come from its `X-Custos-Simulated-Time` header.
fn link_expiry(now: i64, hours: u32) -> Result<i64, ServiceError> {
    i64::from(hours)
        .checked_mul(custos_types::calendar::HOUR_MS)
        .and_then(|validity| now.checked_add(validity))
        .ok_or_else(|| {
            ServiceError::bad_request(
                Code::TimeOutOfRange,
                "the request's time is too far in the future for a link's expiry",
            )
        })
}

impl App {
    /// Lets the customer themselves (a console session from their link) or a caller
    /// allowed `customer_portal` read customer `id`'s accesses.
    async fn authorize_portal(
        &self,
        meta: &RequestMeta,
        ex: &mut Exchange,
        id: &str,
    ) -> Result<(), ServiceError> {
        match &meta.session {
            Some(SessionCredential::Customer { customer_id }) => {
                ex.set_customer_principal();
                if customer_id == id {
                    Ok(())
                } else {
                    Err(ServiceError::new(
                        ErrorKind::Forbidden,
                        Code::NotYourRecord,
                        "a customer access link shows only its own customer's accesses",
                    ))
                }
            }
            _ => self
                .authorize_vault(meta, ex, Action::CustomerPortal)
                .await
                .map(drop),
        }
    }

    /// Every access to customer `id`'s record, newest first.
    pub(crate) async fn read_customer_accesses(
        &self,
        id: &str,
    ) -> Result<CustomerAccesses, ServiceError> {
        let customer = self
            .store
            .customer(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
        let opened = Opened::new(&self.keyring, &customer)?;
        let filter = AccessFilter {
            customer_id: Some(id.to_owned()),
            limit: MAX_ACCESSES + 1,
            ..AccessFilter::default()
        };
        let mut records = self.access.read(&filter).await.map_err(|e| {
            tracing::error!(error = %e, "reading access records failed");
            ServiceError::ledger_unavailable()
        })?;
        // The reader gives the oldest first; keep the newest.
        let truncated = records.len() > MAX_ACCESSES as usize;
        if truncated {
            records.drain(..records.len() - MAX_ACCESSES as usize);
        }
        let mut cases: HashMap<String, Option<CaseSummary>> = HashMap::new();
        let mut accesses = Vec::with_capacity(records.len());
        for r in records.into_iter().rev() {
            let case = match &r.case_id {
                Some(case_id) => {
                    if !cases.contains_key(case_id) {
                        let summary = match self.store.case(case_id).await? {
                            Some(c) if c.customer_id == id => Some(case_summary(&opened, &c)?),
                            // A case of another customer named in a refused request says
                            // nothing about this one.
                            _ => None,
                        };
                        cases.insert(case_id.clone(), summary);
                    }
                    cases.get(case_id).cloned().flatten()
                }
                None => None,
            };
            let action = r.action;
            let fields = match action {
                custos_types::Action::Reveal
                | custos_types::Action::Search
                // Fixed words only: how the customer's contact came in (and that it
                // was from their own identifier), or how they were reached.
                | custos_types::Action::PostContact
                | custos_types::Action::Contact => r.fields,
                // A case's facts (`channel:…`) are shown through its summary.
                _ => Vec::new(),
            };
            accesses.push(CustomerAccess {
                at: r.at,
                staff: self.keyring.staff_pseudonym(&r.staff_id),
                org: r.org,
                role: r.role,
                action,
                fields,
                decision: r.decision,
                case,
            });
        }
        Ok(CustomerAccesses {
            customer: id.to_owned(),
            accesses,
            truncated,
        })
    }
}

fn case_summary(opened: &Opened<'_>, case: &CaseRecord) -> Result<CaseSummary, ServiceError> {
    Ok(CaseSummary {
        channel: case.channel,
        reason: crate::case_record::reason_of(opened, case)?,
        opened_at: case.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_expiry_past_the_end_of_time_is_refused() {
        assert_eq!(link_expiry(0, 1).unwrap(), 3_600_000);
        for now in [i64::MAX, i64::MAX - 3_599_999] {
            assert_eq!(link_expiry(now, 1).unwrap_err().code, "time_out_of_range");
        }
        assert!(link_expiry(i64::MAX - 3_600_000, 1).is_ok());
    }
}
