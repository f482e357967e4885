//! Staff and service accounts over HTTP: creation, tokens, suspension (the rules are the
//! service's: `custos_service::staff`).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::input::parse_json;
use custos_service::schema::Id;
use custos_service::staff::{CreatedStaff, IssuedToken, NewStaff, Revoked, StatusChange};

use crate::input::read_body;
use crate::record::{RequestInfo, reply};

/// Create a staff entry (admin).
#[utoipa::path(post, path = "/v1/staff", tag = "staff", request_body = NewStaff,
    responses(
        (status = 201, body = CreatedStaff, description = "created",
            links(("IssueToken" = (operation_id = "issue_token", parameters(("id" = "$response.body#/id")))),
                  ("Suspend" = (operation_id = "suspend", parameters(("id" = "$response.body#/id")))),
                  ("Activity" = (operation_id = "person", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "a field is malformed (`invalid_id`, `invalid_text`, `control_character`, `invalid_role`) or the body is not this JSON (`malformed_json`, `invalid_body`, `unknown_field`)"),
        (status = 403, description = "`forbidden`: only admins create staff"),
        (status = 409, description = "`conflict`: a staff entry with this id exists; `reserved_id`: the id is one the server's own records use")),
    security(("bearer" = [])))]
pub(super) async fn create_staff(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let request =
        async { parse_json(&read_body(body, app.config().body_limit_bytes).await?) }.await;
    reply(
        StatusCode::CREATED,
        app.create_staff(&info.meta, request).await,
    )
}

/// Issue a bearer token for a staff entry (admin).
#[utoipa::path(post, path = "/v1/staff/{id}/tokens", tag = "staff",
    params(("id" = Id, Path, description = "staff id")),
    responses(
        (status = 201, body = IssuedToken, description = "issued",
            links(("Revoke" = (operation_id = "revoke_token", parameters(("id" = "$response.body#/token_id")))))),
        (status = 403, description = "`forbidden`: only admins issue tokens"),
        (status = 404, description = "`not_found`: no such staff entry")),
    security(("bearer" = [])))]
pub(super) async fn issue_token(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::CREATED, app.issue_token(&info.meta, &id).await)
}

/// Revoke a token by its id (admin); it stops working on the next request.
#[utoipa::path(post, path = "/v1/tokens/{id}/revoke", tag = "staff",
    params(("id" = Id, Path, description = "token id")),
    responses(
        (status = 200, body = Revoked, description = "revoked"),
        (status = 403, description = "`forbidden`: only admins revoke tokens"),
        (status = 404, description = "`not_found`: no active token with this id")),
    security(("bearer" = [])))]
pub(super) async fn revoke_token(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.revoke_token(&info.meta, &id).await)
}

/// Suspend a staff entry (admin, security_analyst): denied everything from the next request.
#[utoipa::path(post, path = "/v1/staff/{id}/suspend", tag = "staff",
    params(("id" = Id, Path, description = "staff id")),
    responses(
        (status = 200, body = StatusChange, description = "suspended",
            links(("Resume" = (operation_id = "resume", parameters(("id" = "$response.body#/id")))))),
        (status = 403, description = "`forbidden`: only admins and security analysts suspend"),
        (status = 404, description = "`not_found`: no such staff entry")),
    security(("bearer" = [])))]
pub(super) async fn suspend(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.suspend_staff(&info.meta, &id).await)
}

/// Resume a suspended staff entry (admin, security_analyst).
#[utoipa::path(post, path = "/v1/staff/{id}/resume", tag = "staff",
    params(("id" = Id, Path, description = "staff id")),
    responses(
        (status = 200, body = StatusChange, description = "active again"),
        (status = 403, description = "`forbidden`: only admins and security analysts resume"),
        (status = 404, description = "`not_found`: no such staff entry")),
    security(("bearer" = [])))]
pub(super) async fn resume(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.resume_staff(&info.meta, &id).await)
}
