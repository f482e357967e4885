//! The rotations of the key-encryption key and of the blind-index key over HTTP (the
//! rules are the service's: `custos_service::keys`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use custos_service::SharedApp;
use custos_service::keys::{IndexRotationStatus, RotationStatus};

use crate::record::{RequestInfo, reply};

/// Start rotating the key-encryption key (admin): the next key of the configured provider
/// wraps new data keys at once, and every stored data key is re-wrapped under it in the
/// background while the server serves. Follow it with `GET /v1/keys/rotation`.
#[utoipa::path(post, path = "/v1/keys/rotations", tag = "keys",
    responses(
        (status = 202, body = RotationStatus, description = "started"),
        (status = 403, description = "`forbidden`: only admins rotate keys"),
        (status = 409, description = "`rotation_in_progress`: a rotation is still running"),
        (status = 503, description = "`key_provider_unavailable`: the token cannot create the key")),
    security(("bearer" = [])))]
pub(super) async fn start_rotation(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    reply(
        StatusCode::ACCEPTED,
        app.start_key_rotation(&info.meta).await,
    )
}

/// The latest rotation's progress and the key that wraps new data keys (admin).
#[utoipa::path(get, path = "/v1/keys/rotation", tag = "keys",
    responses(
        (status = 200, body = RotationStatus, description = "the latest rotation"),
        (status = 403, description = "`forbidden`: only admins follow rotations")),
    security(("bearer" = [])))]
pub(super) async fn rotation(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    reply(StatusCode::OK, app.key_rotation_status(&info.meta).await)
}

/// Start rotating the blind-index key (admin): new indexes are computed under the next
/// key at once, lookups search under both keys, and every stored customer is re-indexed
/// in the background while the server serves. Follow it with
/// `GET /v1/keys/index/rotation`.
#[utoipa::path(post, path = "/v1/keys/index/rotations", tag = "keys",
    responses(
        (status = 202, body = IndexRotationStatus, description = "started"),
        (status = 403, description = "`forbidden`: only admins rotate keys"),
        (status = 409, description = "`rotation_in_progress`: a rotation of the index key is still running")),
    security(("bearer" = [])))]
pub(super) async fn start_index_rotation(
    State(app): State<SharedApp>,
    info: RequestInfo,
) -> Response {
    reply(
        StatusCode::ACCEPTED,
        app.start_index_rotation(&info.meta).await,
    )
}

/// The latest blind-index key rotation's progress and the key that indexes what is
/// written (admin).
#[utoipa::path(get, path = "/v1/keys/index/rotation", tag = "keys",
    responses(
        (status = 200, body = IndexRotationStatus, description = "the latest rotation"),
        (status = 403, description = "`forbidden`: only admins follow rotations")),
    security(("bearer" = [])))]
pub(super) async fn index_rotation(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    reply(StatusCode::OK, app.index_rotation_status(&info.meta).await)
}
