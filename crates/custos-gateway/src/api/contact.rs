//! Reveal-free contact over HTTP: a privacy-number call, an email or an SMS through the
//! company's relays, and the PBX's question of where a privacy number leads (the rules
//! are the service's: `custos_service::contact`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::contact::{ContactRequest, Contacted, ResolveRequest, Resolved};
use custos_service::input::parse_json;
use custos_service::schema::{ContactBody, CustomerId};

use crate::input::read_body;
use crate::record::{RequestInfo, reply};

/// Contact a customer without seeing their number or address, for a case: `call`
/// answers a privacy number bound to the caller and this customer while a case is open
/// (the PBX connects it), `email` and `sms` are sent through the company's relays with
/// the address or number filled in by Custos. Charged like a reveal of the phone (call,
/// SMS) or email.
#[utoipa::path(post, path = "/v1/customers/{id}/contact", tag = "customers",
    params(("id" = CustomerId, Path, description = "customer id")),
    request_body = ContactBody,
    responses(
        (status = 200, body = Contacted, description = "bound (a call) or sent (an email, an SMS)"),
        (status = 400, description = "a field is not valid (`invalid_channel`, `invalid_id`, `invalid_text`, `control_character`), the message does not fit the channel (`invalid_body`), or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the policy refuses the channel or the case"),
        (status = 404, description = "`not_found`: no such customer"),
        (status = 409, description = "`relay_not_configured`: this server has no relay for the channel; `no_contact_field`: the customer has no phone or email on file"),
        (status = 429, description = "`quota_exceeded`: a quota of the caller is used up"),
        (status = 502, description = "`relay_failed`: the SMTP relay or the SMS gateway did not take the message"),
        (status = 503, description = "`number_pool_exhausted`: every privacy number already leads the caller to another customer")),
    security(("bearer" = [])))]
pub(super) async fn contact(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let request = read_body(body, app.config().body_limit_bytes)
        .await
        .and_then(|bytes| parse_json::<ContactRequest>(&bytes));
    reply(
        StatusCode::OK,
        app.contact_customer(&info.meta, &id, request).await,
    )
}

/// Where a privacy number leads when an agent dials it (the `telephony` role: the
/// company's PBX). Answers the customer's real number while the binding's case is open;
/// the ledger entry names the customer and, as its target, the agent.
#[utoipa::path(post, path = "/v1/telephony/resolve", tag = "telephony",
    request_body = ResolveRequest,
    responses(
        (status = 200, body = Resolved, description = "the number to connect the call to"),
        (status = 400, description = "a field is not valid (`invalid_id`, `invalid_body`) or the body is not this JSON"),
        (status = 403, description = "`forbidden`: only the PBX resolves calls"),
        (status = 404, description = "`no_call_binding`: the number leads this agent nowhere (no binding, or its case is closed)"),
        (status = 409, description = "`no_contact_field`: the customer has no phone on file")),
    security(("bearer" = [])))]
pub(super) async fn resolve(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let request = read_body(body, app.config().body_limit_bytes)
        .await
        .and_then(|bytes| parse_json::<ResolveRequest>(&bytes));
    reply(StatusCode::OK, app.resolve_call(&info.meta, request).await)
}
