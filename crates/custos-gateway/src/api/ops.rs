//! Operations endpoints: liveness and metrics. They touch no customer data and are not
//! access-recorded (the service says why: `custos_service::health`).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_service::SharedApp;
use custos_service::health::Health;

/// Health: whether the ledger takes records and the store answers. 200
/// `{"status":"ok"}`; otherwise 503 with the error envelope naming why:
/// `ledger_unavailable` (writes refused since a time, with the ledger's error code, or
/// the writer stopped), `clock_backwards` (the clock is behind the last checkpoint's
/// time: records are taken, no checkpoint is signed until it passes it) or
/// `store_unavailable`. The ledger part costs no I/O.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = Health, description = "ledger writing and store reachable"),
        (status = 503, description = "`ledger_unavailable`, `clock_backwards` or `store_unavailable`, with why")))]
pub(super) async fn healthz(State(app): State<SharedApp>) -> Response {
    match app.health().await {
        Ok(health) => Json(health).into_response(),
        Err(e) => crate::error::response(e),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, body = String, content_type = "text/plain", description = "Prometheus metrics (text exposition format 0.0.4)"),
    (status = 404, description = "`not_found`: this server runs without a metrics recorder")))]
pub(super) async fn metrics(State(app): State<SharedApp>) -> Response {
    match app.metrics_text() {
        Some(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed\n").into_response(),
    }
}
