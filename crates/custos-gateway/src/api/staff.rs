//! Staff and service accounts: creation, tokens, suspension.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_policy::Action;
use custos_store::{StaffRecord, StaffStatus, now_millis};
use serde::{Deserialize, Serialize};

use super::json;
use crate::exchange::{RequestInfo, parse_json, read_body, valid_id, valid_text};
use crate::{ApiError, App, SharedApp, auth};

/// Roles the default policy knows.
/// Ids the server's own ledger records use as their actor; no staff entry may take one.
const RESERVED_IDS: [&str; 3] = ["system", "detector", "-"];

pub(super) const ROLES: [&str; 6] = [
    "support",
    "sales",
    "team_lead",
    "security_analyst",
    "admin",
    "integration",
];

/// A new staff entry (a person or, with role `integration`, a service account).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewStaff {
    id: String,
    name: String,
    role: String,
    org: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Created {
    id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct IssuedToken {
    /// Id to revoke the token with.
    token_id: String,
    /// The bearer token; shown once, stored only as a hash.
    token: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct StatusChange {
    id: String,
    status: String,
}

/// Create a staff entry (admin).
#[utoipa::path(post, path = "/v1/staff", tag = "staff", request_body = NewStaff,
    responses((status = 201, body = Created), (status = 400), (status = 403), (status = 409)),
    security(("bearer" = [])))]
pub(super) async fn create_staff(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let mut ex = app.begin(&info, "create_staff");
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ManageStaff)
            .await?;
        let input: NewStaff = parse_json(&read_body(body, app.config.body_limit_bytes).await?)?;
        valid_id("staff", &input.id)?;
        ex.target = Some(input.id.clone());
        if RESERVED_IDS.contains(&input.id.as_str()) {
            return Err(ApiError::bad_request(
                "reserved_id",
                format!("staff ids {} are the server's own", RESERVED_IDS.join(", ")),
            ));
        }
        valid_id("org", &input.org)?;
        valid_text("name", &input.name, 100)?;
        if !ROLES.contains(&input.role.as_str()) {
            return Err(ApiError::bad_request(
                "invalid_role",
                format!("role must be one of {}", ROLES.join(", ")),
            ));
        }
        app.record_intent(&mut ex).await?;
        app.store
            .insert_staff(&StaffRecord {
                id: input.id.clone(),
                name: input.name.trim().to_owned(),
                role: input.role.clone(),
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
    params(("id" = String, Path, description = "staff id")),
    responses((status = 201, body = IssuedToken), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn issue_token(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    let mut ex = app.begin(&info, "issue_token");
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
    params(("id" = String, Path, description = "token id")),
    responses((status = 200), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn revoke_token(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    let mut ex = app.begin(&info, "revoke_token");
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ManageStaff)
            .await?;
        valid_id("token", &id)?;
        ex.target = Some(id.clone());
        app.record_intent(&mut ex).await?;
        if !app.store.revoke_token(&id, ex.at()).await? {
            return Err(ApiError::not_found("active token"));
        }
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "id": id, "revoked": true }),
        ))
    }
    .await;
    app.finish(ex, result).await
}

async fn set_status(
    app: &App,
    info: &RequestInfo,
    id: &str,
    status: StaffStatus,
    action: &'static str,
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
    params(("id" = String, Path, description = "staff id")),
    responses((status = 200, body = StatusChange), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn suspend(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    set_status(&app, &info, &id, StaffStatus::Suspended, "suspend_staff").await
}

/// Resume a suspended staff entry (admin, security_analyst).
#[utoipa::path(post, path = "/v1/staff/{id}/resume", tag = "staff",
    params(("id" = String, Path, description = "staff id")),
    responses((status = 200, body = StatusChange), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn resume(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    set_status(&app, &info, &id, StaffStatus::Active, "resume_staff").await
}
