//! Cases over HTTP (the rules are the service's: `custos_service::cases`). Opened by the
//! CRM integration, closed by the assignee or the CRM.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::approvals::{
    AccessRequestQueue, AccessRequestView, Decision, NewAccessRequest, NewBreakGlass,
};
use custos_service::cases::{Closed, CreatedCase, NewCase};
use custos_service::inbound::{NewContact, PostedContact};
use custos_service::input::parse_json;
use custos_service::schema::{CaseId, GrantId};

use crate::input::read_body;
use crate::record::{RequestInfo, reply};

/// Open a case for a customer, assigned to a staff member (integration, admin).
///
/// The case's provenance follows from its one origin: a `contact` the contact centre
/// reported (`verified` when the caller's identifier is this customer's, else
/// `unverified`), a `campaign` (`outbound`; integrations only), a `requested_by` person
/// (`requested`), or none (`unverified`; `requested` with `inbound: false`). The ledger
/// entry names the assignee as its `target` and the case's origin as its `fields`:
/// `channel:<channel>`, `contact:inbound` or `contact:none`, `requested_by:<staff id>`
/// when given, `provenance:<provenance>` and `campaign:<id>` when given.
#[utoipa::path(post, path = "/v1/cases", tag = "cases", request_body = NewCase,
    responses(
        (status = 201, body = CreatedCase, description = "opened",
            links(("Close" = (operation_id = "close_case", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "a field is not valid (`invalid_id`, `invalid_channel`, `invalid_text`, `control_character`) or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the caller may not open cases, or not outbound ones"),
        (status = 404, description = "`not_found`: no such customer, assignee, requested_by or contact"),
        (status = 409, description = "`invalid_origin`: more than one origin is named; `assignee_not_serving`: the assignee's role serves no customers; `contact_mismatch`: the contact was routed to someone else; `contact_expired`: the contact is too old")),
    security(("bearer" = [])))]
pub(super) async fn create_case(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let input =
        async { parse_json::<NewCase>(&read_body(body, app.config().body_limit_bytes).await?) }
            .await;
    reply(
        StatusCode::CREATED,
        app.create_case(&info.meta, input).await,
    )
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
    reply(StatusCode::OK, app.close_case(&info.meta, &id).await)
}

/// Report a contact the contact centre routed to an agent (contact centre).
///
/// The caller's identifier, as the channel received it, is matched through the blind
/// index: a calling number, a sender address, or for an `app` contact the customer app's
/// signed assertion (`app_assertion`, a JWT checked against `[contacts.app_assertion]`,
/// whose account claim is the customer's account id; each is used once). When it is
/// exactly one customer's, the contact vouches for the agent's open case for that
/// customer or opens one: that case is `verified`, the one provenance on which the
/// default policy reveals fields. Otherwise the contact is kept for the CRM to open a
/// case on (`contact`). The identifier is stored only as its keyed hash. The ledger
/// entry names the agent as its `target`, and the customer and case when matched.
#[utoipa::path(post, path = "/v1/contacts", tag = "cases", request_body = NewContact,
    responses(
        (status = 201, body = PostedContact, description = "recorded",
            links(("Close" = (operation_id = "close_case", parameters(("id" = "$response.body#/case")))))),
        (status = 400, description = "a field is not valid (`invalid_id`, `invalid_channel`, `invalid_caller`, `invalid_phone`, `invalid_email`, `invalid_account_id`, `invalid_text`, `time_out_of_range`) or the body is not this JSON; an app assertion that does not pass (`token_malformed`, `token_algorithm_refused`, `token_unknown_key`, `token_bad_signature`, `token_expired`, `token_not_yet_valid`, `token_too_old`, `token_wrong_issuer`, `token_wrong_audience`, `token_missing_claim`) or was used before (`app_assertion_replayed`)"),
        (status = 403, description = "`forbidden`: the caller is not the contact centre"),
        (status = 404, description = "`not_found`: no such agent"),
        (status = 409, description = "`assignee_not_serving`: the agent's role serves no customers; `app_assertion_not_configured`: this server checks no app assertions"),
        (status = 503, description = "`jwks_unavailable`: the app's identity provider's key set has not been read since start, so no assertion can be checked; `ledger_unavailable`: the access record could not be made durable")),
    security(("bearer" = [])))]
pub(super) async fn post_contact(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let input =
        async { parse_json::<NewContact>(&read_body(body, app.config().body_limit_bytes).await?) }
            .await;
    reply(
        StatusCode::CREATED,
        app.post_contact(&info.meta, input).await,
    )
}

/// Ask a second person for fields of a customer on your own open case (support, sales,
/// team_lead).
///
/// For a case no channel vouches for (`unverified`, `requested`). The request waits in
/// the approvers' queue; an approval opens the fields on that case, to you, until its
/// `grant_until`. The purpose is sealed and never recorded; the ledger entry names the
/// fields and the request (`target`).
#[utoipa::path(post, path = "/v1/access-requests", tag = "cases", request_body = NewAccessRequest,
    responses(
        (status = 201, body = AccessRequestView, description = "waiting for an approver"),
        (status = 400, description = "a field is not valid (`invalid_id`, `invalid_field`, `invalid_text`, `control_character`) or the body is not this JSON"),
        (status = 403, description = "`forbidden`: not an open case of yours for this customer"),
        (status = 404, description = "`not_found`: no such case")),
    security(("bearer" = [])))]
pub(super) async fn request_access(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let input = async {
        parse_json::<NewAccessRequest>(&read_body(body, app.config().body_limit_bytes).await?)
    }
    .await;
    reply(
        StatusCode::CREATED,
        app.request_access(&info.meta, input).await,
    )
}

/// The approver's queue: pending requests the caller may decide (company team leads,
/// never their own or their organisation's).
#[utoipa::path(get, path = "/v1/access-requests", tag = "cases",
    responses(
        (status = 200, body = AccessRequestQueue, description = "pending requests, oldest first")),
    security(("bearer" = [])))]
pub(super) async fn access_request_queue(
    State(app): State<SharedApp>,
    info: RequestInfo,
) -> Response {
    reply(StatusCode::OK, app.access_request_queue(&info.meta).await)
}

/// Approve a pending request: its fields open to its requester on its case for
/// `minutes` (default 30, at most 240).
#[utoipa::path(post, path = "/v1/access-requests/{id}/approve", tag = "cases",
    params(("id" = GrantId, Path, description = "access request id")),
    request_body = Decision,
    responses(
        (status = 200, body = AccessRequestView, description = "granted"),
        (status = 400, description = "`invalid_id`, `invalid_text`, `invalid_grant_minutes`, or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the caller may not decide this request (`no-self-approval`, `no-approval-within-the-org`, or not an approver)"),
        (status = 404, description = "`not_found`: no such request"),
        (status = 409, description = "`already_decided`")),
    security(("bearer" = [])))]
pub(super) async fn approve_access(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let input =
        async { parse_json::<Decision>(&read_body(body, app.config().body_limit_bytes).await?) }
            .await;
    reply(
        StatusCode::OK,
        app.decide_access(&info.meta, &id, true, input).await,
    )
}

/// Deny a pending request, with a reason.
#[utoipa::path(post, path = "/v1/access-requests/{id}/deny", tag = "cases",
    params(("id" = GrantId, Path, description = "access request id")),
    request_body = Decision,
    responses(
        (status = 200, body = AccessRequestView, description = "denied"),
        (status = 400, description = "`invalid_id`, `invalid_text`, or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the caller may not decide this request"),
        (status = 404, description = "`not_found`: no such request"),
        (status = 409, description = "`already_decided`")),
    security(("bearer" = [])))]
pub(super) async fn deny_access(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let input =
        async { parse_json::<Decision>(&read_body(body, app.config().body_limit_bytes).await?) }
            .await;
    reply(
        StatusCode::OK,
        app.decide_access(&info.meta, &id, false, input).await,
    )
}

/// Break-glass: take fields of a customer at once on your own open case, in an emergency
/// (support, sales, team_lead).
///
/// Needs a written reason (20 characters or more; sealed, never recorded), holds for
/// `[break_glass] minutes` (default 15), and is limited to `per_30_days` per person
/// (default 2). It raises a `break_glass` alert at once, which leaves the analysts'
/// queue only after two different analysts have reviewed it.
#[utoipa::path(post, path = "/v1/break-glass", tag = "cases", request_body = NewBreakGlass,
    responses(
        (status = 201, body = AccessRequestView, description = "granted at once"),
        (status = 400, description = "a field is not valid (`invalid_id`, `invalid_field`, `invalid_text`, `control_character`) or the body is not this JSON"),
        (status = 403, description = "`forbidden`: not an open case of yours for this customer"),
        (status = 404, description = "`not_found`: no such case"),
        (status = 429, description = "`break_glass_exhausted`: the ceiling per 30 days is reached")),
    security(("bearer" = [])))]
pub(super) async fn break_glass(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let input = async {
        parse_json::<NewBreakGlass>(&read_body(body, app.config().body_limit_bytes).await?)
    }
    .await;
    reply(
        StatusCode::CREATED,
        app.break_glass(&info.meta, input).await,
    )
}
