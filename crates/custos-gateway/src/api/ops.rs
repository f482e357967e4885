//! Operations endpoints: liveness and metrics. They touch no customer data and are not
//! access-recorded.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_access::LedgerHealth;

use custos_service::SharedApp;
use custos_service::{ErrorKind, ServiceError};

/// A healthy server's answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// Health: whether the ledger takes records and the store answers. 200
/// `{"status":"ok"}`; otherwise 503 with the error envelope naming why:
/// `ledger_unavailable` (writes refused since a time, with the ledger's error code, or
/// the writer stopped) or `store_unavailable`. The ledger part costs no I/O.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = Health, description = "ledger writing and store reachable"),
        (status = 503, description = "`ledger_unavailable` or `store_unavailable`, with why")))]
pub(super) async fn healthz(State(app): State<SharedApp>) -> Response {
    let unavailable = |code, message: String| {
        crate::error::response(ServiceError::new(ErrorKind::Unavailable, code, message))
    };
    match app.access.health() {
        LedgerHealth::Writing => {}
        LedgerHealth::Refusing(r) => {
            return unavailable(
                "ledger_unavailable",
                format!(
                    "the ledger refuses writes ({}) since {} (unix ms), last at {}; requests are refused until it writes again, which it retries by itself",
                    r.code, r.since_ms, r.last_ms
                ),
            );
        }
        LedgerHealth::Stopped => {
            return unavailable(
                "ledger_unavailable",
                "the ledger writer has stopped; requests are refused until a restart".into(),
            );
        }
    }
    match app.store.count_open_cases().await {
        Ok(_) => Json(Health { status: "ok" }).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            unavailable("store_unavailable", "the store does not answer".into())
        }
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses(
    (status = 200, body = String, content_type = "text/plain", description = "Prometheus metrics (text exposition format 0.0.4)"),
    (status = 404, description = "`not_found`: this server runs without a metrics recorder")))]
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
