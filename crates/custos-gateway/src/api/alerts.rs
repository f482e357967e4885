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

use super::doc::{AlertStatus, Id};
use super::json;
use crate::exchange::{RequestInfo, parse_query, valid_id};
use crate::{ApiError, App, SharedApp};

/// Most alerts one call returns.
const MAX_ALERTS: u32 = 1000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertQuery {
    /// `open`, `acknowledged` or `dismissed`; all when absent.
    #[param(value_type = Option<AlertStatus>)]
    status: Option<String>,
    /// At most this many, newest first, 1 to 1,000 (default 1,000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AlertList {
    /// Newest first; each with its reasons in plain words and the ledger entries behind it.
    #[schema(value_type = Vec<Object>)]
    alerts: Vec<AlertRecord>,
}

/// The states of an alert.
pub(crate) const STATUSES: [&str; 3] = ["open", "acknowledged", "dismissed"];

/// An alert after a change of state.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AlertChange {
    #[schema(value_type = Id)]
    id: String,
    #[schema(value_type = AlertStatus)]
    status: &'static str,
}

/// The alert queue (security_analyst, admin).
#[utoipa::path(get, path = "/v1/alerts", tag = "alerts", params(AlertQuery),
    responses(
        (status = 200, body = AlertList, description = "the alerts",
            links(("Alert" = (operation_id = "get_alert", parameters(("id" = "$response.body#/alerts/0/id")))),
                  ("Acknowledge" = (operation_id = "acknowledge", parameters(("id" = "$response.body#/alerts/0/id")))),
                  ("Dismiss" = (operation_id = "dismiss", parameters(("id" = "$response.body#/alerts/0/id")))))),
        (status = 400, description = "`invalid_query`: an unknown or malformed filter"),
        (status = 403, description = "`forbidden`: only security analysts and admins read alerts")),
    security(("bearer" = [])))]
pub(super) async fn list_alerts(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::ReadAlerts);
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
        let limit = super::bounded("limit", q.limit.unwrap_or(MAX_ALERTS), MAX_ALERTS)?;
        let alerts = app.store.alerts(q.status.as_deref(), limit).await?;
        Ok(json(StatusCode::OK, AlertList { alerts }))
    }
    .await;
    app.finish(ex, result).await
}

/// One alert, whatever its age (security_analyst, admin).
#[utoipa::path(get, path = "/v1/alerts/{id}", tag = "alerts",
    params(("id" = Id, Path, description = "alert id")),
    responses(
        (status = 200, body = Object, description = "the alert"),
        (status = 403, description = "`forbidden`: only security analysts and admins read alerts"),
        (status = 404, description = "`not_found`: no such alert")),
    security(("bearer" = [])))]
pub(super) async fn get_alert(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::ReadAlerts);
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
    params(("id" = Id, Path, description = "alert id")),
    responses(
        (status = 200, body = AlertChange, description = "done"),
        (status = 403, description = "`forbidden`: only security analysts and admins handle alerts"),
        (status = 404, description = "`not_found`: no such alert")),
    security(("bearer" = [])))]
pub(super) async fn acknowledge(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    set_status(
        &app,
        &info,
        &id,
        "acknowledged",
        custos_types::Action::AcknowledgeAlert,
    )
    .await
}

/// Dismiss an alert as a false positive (security_analyst, admin). The detector's
/// thresholds do not change because of it; the dismissal is in the ledger. A lowered
/// quota or step-up requirement the alert imposed is lifted.
#[utoipa::path(post, path = "/v1/alerts/{id}/dismiss", tag = "alerts",
    params(("id" = Id, Path, description = "alert id")),
    responses(
        (status = 200, body = AlertChange, description = "done"),
        (status = 403, description = "`forbidden`: only security analysts and admins handle alerts"),
        (status = 404, description = "`not_found`: no such alert")),
    security(("bearer" = [])))]
pub(super) async fn dismiss(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    set_status(
        &app,
        &info,
        &id,
        "dismissed",
        custos_types::Action::DismissAlert,
    )
    .await
}

async fn set_status(
    app: &App,
    info: &RequestInfo,
    id: &str,
    status: &'static str,
    action: custos_types::Action,
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
            AlertChange {
                id: id.to_owned(),
                status,
            },
        ))
    }
    .await;
    app.finish(ex, result).await
}
