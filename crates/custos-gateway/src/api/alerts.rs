//! The detector's alerts over HTTP: the analysts' queue (the rules are the service's:
//! `custos_service::alerts`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::alerts::{AlertChange, AlertList, AlertQuery};
use custos_service::schema::Id;

use crate::input::parse_query;
use crate::record::{RequestInfo, reply};

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
    let query = parse_query(query, "filters are status and limit");
    reply(StatusCode::OK, app.alerts(&info.meta, query).await)
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
    reply(StatusCode::OK, app.alert(&info.meta, &id).await)
}

/// Acknowledge an alert: seen and being handled (security_analyst, admin).
#[utoipa::path(post, path = "/v1/alerts/{id}/acknowledge", tag = "alerts",
    params(("id" = Id, Path, description = "alert id")),
    responses(
        (status = 200, body = AlertChange, description = "done"),
        (status = 403, description = "`forbidden`: only security analysts and admins handle alerts"),
        (status = 404, description = "`not_found`: no such alert"),
        (status = 409, description = "`already_reviewed`: a break-glass alert needs a second, different analyst")),
    security(("bearer" = [])))]
pub(super) async fn acknowledge(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.acknowledge_alert(&info.meta, &id).await)
}

/// Dismiss an alert as a false positive (security_analyst, admin). The detector's
/// thresholds do not change because of it; the dismissal is in the ledger. A lowered
/// quota or step-up requirement the alert imposed is lifted.
#[utoipa::path(post, path = "/v1/alerts/{id}/dismiss", tag = "alerts",
    params(("id" = Id, Path, description = "alert id")),
    responses(
        (status = 200, body = AlertChange, description = "done"),
        (status = 403, description = "`forbidden`: only security analysts and admins handle alerts"),
        (status = 404, description = "`not_found`: no such alert"),
        (status = 409, description = "`already_reviewed`: a break-glass alert needs a second, different analyst")),
    security(("bearer" = [])))]
pub(super) async fn dismiss(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    reply(StatusCode::OK, app.dismiss_alert(&info.meta, &id).await)
}
