//! Cases: the purpose a record is opened for. Opened by the CRM integration, closed by
//! the assignee or the CRM.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_policy::{AccessRequest, Action, CaseContext, Resource};
use custos_store::{CaseRecord, CaseStatus, StaffRecord};
use serde::{Deserialize, Serialize};

use super::doc::{CaseId, Channel, CustomerId, Id, Reason};
use super::json;
use crate::allocation::Trigger;
use crate::auth::Caller;
use crate::exchange::{MAX_REASON_CHARS, RequestInfo, parse_json, read_body, valid_id, valid_text};
use crate::ids::new_case_id;
use crate::vault::Opened;
use crate::{ApiError, App, SharedApp};

/// Channels a contact can come through.
pub(super) const CHANNELS: [&str; 4] = ["phone", "chat", "email", "store"];

/// A new case.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewCase {
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
    #[schema(value_type = Option<Id>)]
    requested_by: Option<String>,
}

/// Cases come from customers' contacts unless the CRM says otherwise: the integrations
/// that predate the field open cases only for inbound contacts.
fn inbound_default() -> bool {
    true
}

/// The new case.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedCase)]
pub(super) struct Created {
    #[schema(value_type = CaseId)]
    id: String,
}

/// A closed case.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Closed {
    #[schema(value_type = CaseId)]
    id: String,
    /// Always `closed`.
    #[schema(pattern = "^closed$")]
    status: &'static str,
}

/// Open a case for a customer, assigned to a staff member (integration, admin).
///
/// The ledger entry names the assignee as its `target` and the case's origin as its
/// `fields`: `channel:<channel>`, `contact:inbound` or `contact:none`, and
/// `requested_by:<staff id>` when given.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = NewCase,
    responses(
        (status = 201, body = Created, description = "opened",
            links(("Close" = (operation_id = "close_case", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "a field is not valid (`invalid_id`, `invalid_channel`, `invalid_text`, `control_character`) or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the caller may not open cases"),
        (status = 404, description = "`not_found`: no such customer, assignee or requested_by"),
        (status = 409, description = "`assignee_not_serving`: the assignee's role serves no customers")),
    security(("bearer" = [])))]
pub(super) async fn create_case(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::CreateCase);
    let result = async {
        let caller = app.authenticate(&info, &mut ex).await?;
        let input: NewCase = parse_json(&read_body(body, app.config.body_limit_bytes).await?)?;
        ex.name_customer(&input.customer)?;
        valid_id("staff", &input.assignee)?;
        if let Some(requester) = &input.requested_by {
            valid_id("staff", requester)?;
        }
        ex.target = Some(input.assignee.clone());
        let id = new_case_id();
        ex.name_case(&id)?;
        app.authorize(
            &mut ex,
            &AccessRequest {
                principal: caller.principal(),
                action: Action::CreateCase,
                resource: Resource::Case {
                    id: &id,
                    customer: &input.customer,
                    assignee: &input.assignee,
                    open: true,
                },
                case: None,
            },
        )?;
        if !CHANNELS.contains(&input.channel.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_channel",
                format!("channel must be one of {}", CHANNELS.join(", ")),
            ));
        }
        valid_text("reason", &input.reason, MAX_REASON_CHARS)?;
        let customer = app
            .store
            .customer(&input.customer)
            .await?
            .ok_or_else(|| ApiError::not_found("customer"))?;
        let Some(assignee) = app.store.staff(&input.assignee).await? else {
            return Err(ApiError::not_found("assignee"));
        };
        app.require_serving_assignee(&assignee, &customer.id, &id)?;
        if let Some(requester) = &input.requested_by
            && app.store.staff(requester).await?.is_none()
        {
            return Err(ApiError::not_found("requested_by"));
        }
        // Where the case came from, for the ledger (custos_access::entry docs): only the
        // validated channel word, fixed words and ids, never the free-text reason.
        ex.fields = case_facts(&input.channel, input.inbound, input.requested_by.as_deref());
        let reason = Opened::new(&app.keyring, &customer)?
            .key()
            .seal(
                &customer.id,
                &reason_context(&id),
                input.reason.trim().as_bytes(),
            )
            .map_err(|_| ApiError::internal())?;
        app.record_intent(&mut ex).await?;
        app.store
            .insert_case(&CaseRecord {
                id: id.clone(),
                customer_id: customer.id.clone(),
                assignee: input.assignee.clone(),
                channel: input.channel.clone(),
                reason,
                status: CaseStatus::Open,
                created_by: caller.staff.id.clone(),
                created_at: ex.at(),
                closed_at: None,
            })
            .await?;
        app.maybe_allocate_canary(
            &assignee,
            &Trigger {
                channel: &input.channel,
                inbound: input.inbound,
                self_requested: input.requested_by.as_deref() == Some(assignee.id.as_str()),
                at: ex.at(),
            },
        )
        .await;
        Ok(json(StatusCode::CREATED, Created { id }))
    }
    .await;
    app.finish(ex, result).await
}

/// The `create_case` entry's facts ([`custos_types::facts::CaseFacts`]).
pub(crate) fn case_facts(channel: &str, inbound: bool, requested_by: Option<&str>) -> Vec<String> {
    custos_types::facts::CaseFacts {
        channel: Some(channel),
        inbound,
        requested_by,
    }
    .to_fields()
}

/// Close a case (its assignee, integration, admin); its customer's record closes with it.
#[utoipa::path(post, path = "/v1/cases/{id}/close", tag = "cases",
    params(("id" = CaseId, Path, description = "case id")),
    responses(
        (status = 200, body = Closed, description = "closed"),
        (status = 403, description = "`forbidden`: the caller may not close this case"),
        (status = 404, description = "`not_found`: no such case"),
        (status = 409, description = "`case_closed`: the case is closed already")),
    security(("bearer" = [])))]
pub(super) async fn close_case(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::CloseCase);
    let result = async {
        let caller = app.authenticate(&info, &mut ex).await?;
        ex.name_case(&id)?;
        let case = app
            .store
            .case(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("case"))?;
        ex.name_customer(&case.customer_id)?;
        app.authorize(
            &mut ex,
            &AccessRequest {
                principal: caller.principal(),
                action: Action::CloseCase,
                resource: Resource::Case {
                    id: &case.id,
                    customer: &case.customer_id,
                    assignee: &case.assignee,
                    open: case.status == CaseStatus::Open,
                },
                case: None,
            },
        )?;
        app.record_intent(&mut ex).await?;
        if !app.store.close_case(&id, ex.at()).await? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "case_closed",
                "case is already closed",
            ));
        }
        Ok(json(
            StatusCode::OK,
            Closed {
                id,
                status: "closed",
            },
        ))
    }
    .await;
    app.finish(ex, result).await
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
    ) -> Result<(), ApiError> {
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
            }),
        });
        if decision.allowed {
            Ok(())
        } else {
            // The request is well formed; the assignee's role is what stands in the way.
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "assignee_not_serving",
                format!(
                    "cases are assigned only to staff whose role serves customers; the policy refuses this assignee ({})",
                    decision.reason_code
                ),
            ))
        }
    }
}

/// What a case's sealed reason is bound to (with its customer): the case itself.
pub(crate) fn reason_context(case_id: &str) -> String {
    format!("case_reason/{case_id}")
}

/// The reason `case` was opened for, as written; `opened` is its customer.
pub(super) fn reason_of(opened: &Opened<'_>, case: &CaseRecord) -> Result<String, ApiError> {
    let reason = opened
        .key()
        .open_string(&case.customer_id, &reason_context(&case.id), &case.reason)
        .map_err(|_| ApiError::internal())?;
    Ok(reason.as_str().to_owned())
}
