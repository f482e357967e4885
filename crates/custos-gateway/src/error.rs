//! One mapping from service errors to HTTP answers: each [`ErrorKind`] has one status,
//! and every error answer has one shape, `{"error":{"code":"...","message":"...",
//! ...details}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_service::{Details, ErrorKind, ServiceError};
use serde::Serialize;

/// Marks a response built by our own error or page types: it needs no rewriting.
#[derive(Clone, Copy, Debug)]
pub struct Answered;

/// The status of an error of `kind`.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The response of a service error: its kind's status, the envelope, and
/// `Retry-After` when the error says when to retry.
pub fn response(e: ServiceError) -> Response {
    answer(
        status(e.kind),
        e.code.as_str(),
        &e.message,
        e.details.as_deref(),
    )
}

/// An error answer in the envelope, for the service's errors and the transport's own
/// refusals alike.
pub fn answer(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<&Details>,
) -> Response {
    let body = axum::Json(Envelope {
        error: Body {
            code,
            message,
            details,
        },
    });
    let mut response = (status, body).into_response();
    // Ours already: the rejection middleware leaves it as it is.
    response.extensions_mut().insert(Answered);
    if let Some(secs) = details.and_then(|d| d.retry_after) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Every error answer of the API: `{"error":{"code":"...","message":"..."}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct Envelope<'a> {
    error: Body<'a>,
}

/// What went wrong.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ErrorBody)]
pub(crate) struct Body<'a> {
    /// Stable, machine-readable code, e.g. `unauthenticated`, `invalid_id`,
    /// `ledger_unavailable`; also the access record's reason code.
    code: &'a str,
    /// What went wrong, in plain words; never holds a value from the request.
    message: &'a str,
    #[serde(flatten)]
    details: Option<&'a Details>,
}
