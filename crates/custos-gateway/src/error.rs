//! API errors as data: an HTTP status, a stable code and a message that never carries
//! personal data or echoes request values.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// An error answer: `{"error":{"code":"...","message":"...", ...details}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// Stable, machine-readable code; also the access record's reason code.
    pub code: &'static str,
    /// Human-readable explanation without request values.
    pub message: String,
    /// Facts of the refusal beside the message, if it has any (boxed: errors travel in
    /// `Err`, and most have none).
    pub details: Option<Box<Details>>,
}

/// Facts of a refusal as data, beside its message, for clients that word it themselves
/// (the web console does) rather than parse the message. Each is present only where it
/// applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Details {
    /// The ceiling reached (`quota_exceeded`): `customers_per_day`, `reveals_per_hour`
    /// or `searches_per_day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// The length of that ceiling's sliding window, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// Seconds until the ceiling admits the request again (also `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The risk-alert restriction behind the refusal: `lower_quota` (the ceiling was
    /// lowered) or `step_up` (`step_up_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restriction: Option<String>,
    /// When that restriction ends, unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_until: Option<i64>,
    /// The policy that denied the request (`forbidden`): e.g. `suspended`,
    /// `serves-customers`, `partner-no-email`, or the id of a policy of the security
    /// team's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The share of each ceiling left under a `lower_quota` restriction (0 to 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_share: Option<f64>,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }
    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 401: no or unknown bearer token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid bearer token is required",
        )
    }
    /// 403 from an authorization decision; `reason` is the deciding policy's id, also
    /// given as the `policy` fact.
    pub fn forbidden(reason: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("denied by policy ({reason})"),
        )
        .with_details(Details {
            policy: Some(reason.to_owned()),
            ..Details::default()
        })
    }
    /// The same error, carrying `details`.
    pub fn with_details(self, details: Details) -> Self {
        ApiError {
            details: Some(Box::new(details)),
            ..self
        }
    }
    /// 404 for an id that does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    /// 409 for an id that exists already.
    pub fn conflict(what: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("{what} already exists"),
        )
    }
    /// 503: the access record could not be made durable, so nothing is answered.
    pub fn ledger_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            "the access record could not be written; the request was refused",
        )
    }
    /// 500 without details (they go to the log, never to the caller).
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
    /// 429 for the ceiling `which` of a `window_secs` window, with the time until it
    /// admits the request again.
    pub fn quota_exceeded(which: &str, window_secs: u64, retry_after: u64) -> Self {
        ApiError {
            details: Some(Box::new(Details {
                quota: Some(which.to_owned()),
                window_secs: Some(window_secs),
                retry_after: Some(retry_after.max(1)),
                ..Details::default()
            })),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                format!("quota {which} exhausted"),
            )
        }
    }
}

impl From<custos_store::StoreError> for ApiError {
    fn from(e: custos_store::StoreError) -> Self {
        match e {
            custos_store::StoreError::Conflict => ApiError::conflict("entry"),
            custos_store::StoreError::NotFound => ApiError::not_found("entry"),
            other => {
                tracing::error!(error = %other, "store error");
                ApiError::internal()
            }
        }
    }
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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = axum::Json(Envelope {
            error: Body {
                code: self.code,
                message: &self.message,
                details: self.details.as_deref(),
            },
        });
        let mut response = (self.status, body).into_response();
        // Ours already: the rejection middleware leaves it as it is.
        response.extensions_mut().insert(crate::rejection::Answered);
        if let Some(secs) = self.details.as_ref().and_then(|d| d.retry_after) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
