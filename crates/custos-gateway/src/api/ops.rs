//! Operations endpoints: liveness and metrics. They touch no customer data and are not
//! access-recorded.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::SharedApp;

/// Liveness: the store answers.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "store reachable"), (status = 503, description = "store unreachable")))]
pub(super) async fn healthz(State(app): State<SharedApp>) -> Response {
    match app.store.count_open_cases().await {
        Ok(_) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, description = "Prometheus metrics")))]
pub(super) async fn metrics(State(app): State<SharedApp>) -> Response {
    match &app.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed\n").into_response(),
    }
}
