//! Access transparency over HTTP (the rules are the service's:
//! `custos_service::transparency`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::dsar::CustomerCopy;
use custos_service::schema::CustomerId;
use custos_service::transparency::{CustomerAccesses, Link, LinkRequest};

use custos_service::input::parse_json;

use crate::input::read_body;
use crate::record::{RequestInfo, reply};

/// The accesses to a customer's record (customer_portal: the CRM integration, admins;
/// or the customer themselves through the console).
#[utoipa::path(get, path = "/v1/customers/{id}/accesses", tag = "transparency",
    params(("id" = CustomerId, Path, description = "customer id")),
    responses(
        (status = 200, body = CustomerAccesses, description = "the accesses"),
        (status = 403, description = "`forbidden`: the caller may not read customers' accesses"),
        (status = 404, description = "`not_found`: no such customer")),
    security(("bearer" = [])))]
pub(super) async fn accesses(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.customer_accesses(&info.meta, &id).await)
}

/// The customer's own copy: their data in full and every access to it. Only for the
/// customer themselves, signed in with their access link in the console (which calls
/// this in process); every staff credential is refused.
#[utoipa::path(get, path = "/v1/customers/{id}/copy", tag = "transparency",
    params(("id" = CustomerId, Path, description = "customer id")),
    responses(
        (status = 200, body = CustomerCopy, description = "the copy"),
        (status = 403, description = "`forbidden`: only the customer themselves, through their access link; `not_your_record`: another customer's"),
        (status = 404, description = "`not_found`: no such customer"),
        (status = 410, description = "`erased`: the customer was erased")),
    security(("bearer" = [])))]
pub(super) async fn copy(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.customer_copy(&info.meta, &id).await)
}

/// Issue a customer access link (customer_portal). The body is optional.
#[utoipa::path(post, path = "/v1/customers/{id}/link", tag = "transparency",
    params(("id" = CustomerId, Path, description = "customer id")),
    request_body(content = Option<LinkRequest>, content_type = "application/json",
        description = "Optional: no body, or null, gives a link valid for 24 hours."),
    responses(
        (status = 201, body = Link, description = "the link"),
        (status = 400, description = "`invalid_link_hours`: not 1 to 168 hours; or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the caller may not issue customer links"),
        (status = 404, description = "`not_found`: no such customer")),
    security(("bearer" = [])))]
pub(super) async fn issue_link(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Response {
    let request = async {
        let bytes = read_body(body, app.config().body_limit_bytes).await?;
        // No body, or JSON null, asks for the defaults.
        if bytes.iter().all(u8::is_ascii_whitespace) {
            Ok(None)
        } else {
            parse_json::<Option<LinkRequest>>(&bytes)
        }
    }
    .await;
    reply(
        StatusCode::CREATED,
        app.issue_customer_link(&info.meta, &id, request).await,
    )
}
