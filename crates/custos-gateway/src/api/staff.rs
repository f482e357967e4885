//! Staff and service accounts: creation, tokens, suspension.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_policy::Action;
use custos_store::{StaffRecord, StaffStatus};
use custos_types::clock::now_millis;
use serde::{Deserialize, Serialize};

use super::doc::{Id, Role, StaffName};
use super::json;
use crate::exchange::{RequestInfo, parse_json, read_body, valid_id, valid_text};
use crate::{ApiError, App, SharedApp, auth};

/// Ids the server's own ledger records use as their actor; no staff entry may take one.
const RESERVED_IDS: [&str; 3] = ["system", "detector", "-"];

/// Longest display name of a staff entry.
pub(crate) const MAX_NAME_CHARS: usize = 100;

/// Roles the default policy knows, as words.
pub(crate) fn roles() -> Vec<&'static str> {
    custos_types::Role::ALL.iter().map(|r| r.as_str()).collect()
}

/// A new staff entry (a person or, with role `integration`, a service account).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewStaff {
    /// Not one of the ids the server's own records use (`system`, `detector`, `-`).
    #[schema(value_type = Id)]
    id: String,
    #[schema(value_type = StaffName)]
    name: String,
    #[schema(value_type = Role)]
    role: String,
    /// The organisation: the company's own, or a partner company's.
    #[schema(value_type = Id)]
    org: String,
}

/// The new staff entry.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedStaff)]
pub(super) struct Created {
    #[schema(value_type = Id)]
    id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct IssuedToken {
    /// Id to revoke the token with.
    #[schema(pattern = "^tok_[0-9a-f]{16}$")]
    token_id: String,
    /// The bearer token; shown once, stored only as a hash.
    #[schema(pattern = "^cst_[A-Za-z0-9_-]{43}$")]
    token: String,
}

/// A revoked token.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Revoked {
    #[schema(value_type = Id)]
    id: String,
    /// Always true.
    revoked: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct StatusChange {
    #[schema(value_type = Id)]
    id: String,
    #[schema(value_type = super::doc::StaffStatus)]
    status: String,
}

/// Create a staff entry (admin).
#[utoipa::path(post, path = "/v1/staff", tag = "staff", request_body = NewStaff,
    responses(
        (status = 201, body = Created, description = "created",
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
    let mut ex = app.begin(&info, custos_types::Action::CreateStaff);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ManageStaff)
            .await?;
        let input: NewStaff = parse_json(&read_body(body, app.config.body_limit_bytes).await?)?;
        valid_id("staff", &input.id)?;
        ex.target = Some(input.id.clone());
        if RESERVED_IDS.contains(&input.id.as_str()) {
            // Well formed, and taken: by the server itself.
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "reserved_id",
                format!("staff ids {} are the server's own", RESERVED_IDS.join(", ")),
            ));
        }
        valid_id("org", &input.org)?;
        valid_text("name", &input.name, MAX_NAME_CHARS)?;
        let role: custos_types::Role = input.role.parse().map_err(|_| {
            ApiError::bad_request(
                "invalid_role",
                format!("role must be one of {}", roles().join(", ")),
            )
        })?;
        app.record_intent(&mut ex).await?;
        app.store
            .insert_staff(&StaffRecord {
                id: input.id.clone(),
                name: input.name.trim().to_owned(),
                role,
                org: input.org.clone(),
                status: StaffStatus::Active,
                created_at: now_millis(),
            })
            .await?;
        Ok(json(
            StatusCode::CREATED,
            Created {
                id: input.id.clone(),
            },
        ))
    }
    .await;
    app.finish(ex, result).await
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
    let mut ex = app.begin(&info, custos_types::Action::IssueToken);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ManageStaff)
            .await?;
        valid_id("staff", &id)?;
        // Named in the record only once it is known to be a staff id, not any value.
        if app.store.staff(&id).await?.is_none() {
            return Err(ApiError::not_found("staff"));
        }
        ex.target = Some(id.clone());
        app.record_intent(&mut ex).await?;
        let (token_id, token) = auth::issue_token(&app.store, &id).await?;
        Ok(json(StatusCode::CREATED, IssuedToken { token_id, token }))
    }
    .await;
    app.finish(ex, result).await
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
    let mut ex = app.begin(&info, custos_types::Action::RevokeToken);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ManageStaff)
            .await?;
        valid_id("token", &id)?;
        ex.target = Some(id.clone());
        app.record_intent(&mut ex).await?;
        if !app.store.revoke_token(&id, ex.at()).await? {
            return Err(ApiError::not_found("active token"));
        }
        Ok(json(StatusCode::OK, Revoked { id, revoked: true }))
    }
    .await;
    app.finish(ex, result).await
}

async fn set_status(
    app: &App,
    info: &RequestInfo,
    id: &str,
    status: StaffStatus,
    action: custos_types::Action,
) -> Response {
    let mut ex = app.begin(info, action);
    let result = async {
        app.authorize_vault(info, &mut ex, Action::SuspendStaff)
            .await?;
        valid_id("staff", id)?;
        // Named in the record only once it is known to be a staff id, not any value.
        if app.store.staff(id).await?.is_none() {
            return Err(ApiError::not_found("staff"));
        }
        ex.target = Some(id.to_owned());
        app.record_intent(&mut ex).await?;
        if !app.store.set_staff_status(id, status).await? {
            return Err(ApiError::not_found("staff"));
        }
        Ok(json(
            StatusCode::OK,
            StatusChange {
                id: id.to_owned(),
                status: status.as_str().to_owned(),
            },
        ))
    }
    .await;
    app.finish(ex, result).await
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
    set_status(
        &app,
        &info,
        &id,
        StaffStatus::Suspended,
        custos_types::Action::SuspendStaff,
    )
    .await
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
    set_status(
        &app,
        &info,
        &id,
        StaffStatus::Active,
        custos_types::Action::ResumeStaff,
    )
    .await
}
