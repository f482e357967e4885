//! Reading access records (security analysts, admins) and the caller's own situation,
//! over HTTP (the rules are the service's: `custos_service::access`).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::access::{AccessList, AccessQuery, Me};

use crate::input::parse_query;
use crate::record::{RequestInfo, reply};

/// Access records, oldest first (security_analyst, admin).
#[utoipa::path(get, path = "/v1/access", tag = "access", params(AccessQuery),
    responses(
        (status = 200, body = AccessList, description = "the records"),
        (status = 400, description = "`invalid_query`: an unknown or malformed filter; `invalid_id`: a malformed staff or customer id"),
        (status = 403, description = "`forbidden`: only security analysts and admins read access records")),
    security(("bearer" = [])))]
pub(super) async fn list_access(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let query = parse_query(
        query,
        "filters are staff, customer, since, after, limit (numbers where numeric)",
    );
    reply(StatusCode::OK, app.read_access(&info.meta, query).await)
}

/// The caller: identity, remaining quotas and open cases. A suspended person is told
/// only that: 403 `forbidden` (policy `suspended`), nothing about their cases or customers.
#[utoipa::path(get, path = "/v1/me", tag = "access",
    responses(
        (status = 200, body = Me, description = "the caller"),
        (status = 403, description = "`forbidden` (policy `suspended`): the caller is suspended")),
    security(("bearer" = [])))]
pub(super) async fn me(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    reply(StatusCode::OK, app.me(&info.meta).await)
}
