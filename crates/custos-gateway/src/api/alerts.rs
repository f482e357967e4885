//! Alerts raised by the detector: the analysts' queue. Acknowledging or dismissing one is
//! recorded in the ledger like any other act, and tunes nothing silently. Dismissing a
//! `risk_lower_quota` or `risk_step_up` alert (a false positive) lifts the restriction
//! it imposed at once.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_policy::Action;
use custos_store::AlertRecord;
use serde::{Deserialize, Serialize};

use super::json;
use crate::exchange::{RequestInfo, parse_query, valid_id};
use crate::{ApiError, App, SharedApp};

/// Most alerts one call returns.
const MAX_ALERTS: u32 = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertQuery {
    /// `open`, `acknowledged` or `dismissed`; all when absent.
    status: Option<String>,
    /// At most this many, newest first (default and maximum 1,000).
    limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AlertList {
    /// Newest first; each with its reasons in plain words and the ledger entries behind it.
    #[schema(value_type = Vec<Object>)]
    alerts: Vec<AlertRecord>,
}

const STATUSES: [&str; 3] = ["open", "acknowledged", "dismissed"];

/// The alert queue (security_analyst, admin).
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertQuery),
    responses((status = 200, body = AlertList), (status = 400), (status = 403)),
    security(("bearer" = [])))]
pub(super) async fn list_alerts(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let mut ex = app.begin(&info, "read_alerts");
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        let q: AlertQuery = parse_query(query, "filters are status and limit")?;
        if let Some(s) = &q.status
            && !STATUSES.contains(&s.as_str())
        {
            return Err(ApiError::bad_request(
                "invalid_query",
                "status is one of open, acknowledged, dismissed",
            ));
        }
        let limit = q.limit.unwrap_or(MAX_ALERTS).clamp(1, MAX_ALERTS);
        let alerts = app.store.alerts(q.status.as_deref(), limit).await?;
        Ok(json(StatusCode::OK, AlertList { alerts }))
    }
    .await;
    app.finish(ex, result).await
}

/// One alert, whatever its age (security_analyst, admin).
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "alerts",
    params(("id" = String, Path, description = "alert id")),
    responses((status = 200, body = Object), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn get_alert(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    let mut ex = app.begin(&info, "read_alerts");
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        valid_id("alert", &id)?;
        ex.target = Some(id.clone());
        let alert = app
            .store
            .alert(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("alert"))?;
        Ok(json(StatusCode::OK, alert))
    }
    .await;
    app.finish(ex, result).await
}

/// Acknowledge an alert: seen and being handled (security_analyst, admin).
#[utoipa::path(post, path = "/v1/alerts/{id}/acknowledge", tag = "alerts",
    params(("id" = String, Path, description = "alert id")),
    responses((status = 200), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn acknowledge(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    set_status(&app, &info, &id, "acknowledged", "acknowledge_alert").await
}

/// Dismiss an alert as a false positive (security_analyst, admin). The detector's
/// thresholds do not change because of it; the dismissal is in the ledger. A lowered
/// quota or step-up requirement the alert imposed is lifted.
#[utoipa::path(post, path = "/v1/alerts/{id}/dismiss", tag = "alerts",
    params(("id" = String, Path, description = "alert id")),
    responses((status = 200), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(super) async fn dismiss(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    set_status(&app, &info, &id, "dismissed", "dismiss_alert").await
}

async fn set_status(
    app: &App,
    info: &RequestInfo,
    id: &str,
    status: &'static str,
    action: &'static str,
) -> Response {
    let mut ex = app.begin(info, action);
    let result = async {
        app.authorize_vault(info, &mut ex, Action::SuspendStaff)
            .await?;
        valid_id("alert", id)?;
        ex.target = Some(id.to_owned());
        app.record_intent(&mut ex).await?;
        if !app.store.set_alert_status(id, status, ex.at()).await? {
            return Err(ApiError::not_found("alert"));
        }
        // Read back rather than assumed: the restriction follows what the store now says.
        if let Some(alert) = app.store.alert(id).await? {
            app.sync_restriction(&alert);
        }
        Ok(json(
            StatusCode::OK,
            serde_json::json!({ "id": id, "status": status }),
        ))
    }
    .await;
    app.finish(ex, result).await
}
