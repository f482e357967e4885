//! One shape for every refusal, including the framework's own.
//!
//! axum's extractors refuse a request before any handler of ours runs (a path segment
//! that is not UTF-8, a query or form that does not deserialize, a missing content
//! type, a body over the limit) and answer in `text/plain`. [`api`] turns each such
//! answer on the API into the JSON envelope of the API's errors (`crate::error`) with a stable code; the
//! console turns it into its own error page (see `custos_console`'s `page::guard`). Both also refuse
//! request headers over [`MAX_HEADER_BYTES`] with `431 headers_too_large` before any
//! handler runs.
//!
//! Our own answers carry the [`Answered`] mark (set by `crate::error::answer` and the console's
//! page frame), so only foreign answers are rewritten.

use axum::extract::Request;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{Answered, answer};

/// Most bytes of request header names and values together that a request may carry.
/// Far above what a browser or API client sends (a token, a case id, cookies); the
/// transport's own limit (hyper's, about 400 KB) is higher, so a request between the
/// two is answered here, with a code, rather than with the transport's bare 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Longest framework answer read to tell which extractor refused (their texts are
/// short; a longer body is not one of them).
const MAX_REJECTION_BODY: usize = 4096;

/// A refusal in our terms: status, stable code and a message without request values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status, as the framework chose it.
    pub status: StatusCode,
    /// Stable code, e.g. `invalid_path`.
    pub code: &'static str,
    /// What was wrong, in plain words.
    pub message: &'static str,
}

impl Refusal {
    /// The refusal of a request whose headers are over [`MAX_HEADER_BYTES`].
    pub const HEADERS_TOO_LARGE: Refusal = Refusal {
        status: StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        code: "headers_too_large",
        message: "the request headers are too large (at most 16 KiB in all)",
    };
}

/// Whether the request's headers (names and values) are over [`MAX_HEADER_BYTES`].
pub fn headers_too_large(headers: &HeaderMap) -> bool {
    let mut total = 0usize;
    for (name, value) in headers {
        total = total.saturating_add(name.as_str().len() + value.len());
        if total > MAX_HEADER_BYTES {
            return true;
        }
    }
    false
}

/// The refusal a foreign error answer stands for, or the answer itself when it needs
/// no rewriting (a success, a redirect, or one of our own).
pub async fn foreign(response: Response) -> Result<Refusal, Response> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Answered>().is_some()
    {
        return Err(response);
    }
    // The framework's texts are fixed per rejection; they say which extractor refused.
    // Only their first words are used, never echoed (they can quote the request).
    let body = axum::body::to_bytes(response.into_body(), MAX_REJECTION_BODY)
        .await
        .unwrap_or_default();
    Ok(classify(status, &body))
}

/// The stable code and message for a framework answer of `status` with `body`.
fn classify(status: StatusCode, body: &[u8]) -> Refusal {
    let starts = |prefix: &str| body.starts_with(prefix.as_bytes());
    let (code, message) = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            if starts("Invalid URL") || starts("Invalid UTF-8") =>
        {
            (
                "invalid_path",
                "a part of the address is not valid (for instance not UTF-8)",
            )
        }
        StatusCode::BAD_REQUEST if starts("Failed to deserialize query string") => (
            "invalid_query",
            "the query string is not valid for this route",
        ),
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            if starts("Failed to deserialize form") =>
        {
            (
                "invalid_form",
                "the form is not valid: a field is missing or has the wrong type",
            )
        }
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY
            if starts("Failed to parse the request body as JSON")
                || starts("Failed to deserialize the JSON body") =>
        {
            ("invalid_json", "the body is not valid JSON for this route")
        }
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
            ("invalid_request", "the request is not valid for this route")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "the request's Content-Type is missing or not the one this route reads",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            return Refusal::HEADERS_TOO_LARGE;
        }
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the address is too long"),
        StatusCode::NOT_FOUND => ("not_found", "route not found"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ("method_not_allowed", "method not allowed on this route")
        }
        StatusCode::SERVICE_UNAVAILABLE => (
            "unavailable",
            "the service cannot answer now; try again shortly",
        ),
        s if s.is_client_error() => ("invalid_request", "the request was refused"),
        _ => ("internal", "internal error; see the server log"),
    };
    Refusal {
        status,
        code,
        message,
    }
}

/// Middleware of the API routes: oversized headers and every framework refusal become
/// the JSON envelope with a stable code (see the module docs).
pub async fn api(request: Request, next: Next) -> Response {
    if headers_too_large(request.headers()) {
        return envelope(Refusal::HEADERS_TOO_LARGE);
    }
    match foreign(next.run(request).await).await {
        Ok(refusal) => envelope(refusal),
        Err(ours) => ours,
    }
}

/// The envelope for `refusal`; never cached (a refusal says nothing worth keeping).
fn envelope(refusal: Refusal) -> Response {
    let mut response = answer(refusal.status, refusal.code, refusal.message, None);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::response::IntoResponse;

    /// A framework-like answer: plain text, not marked as ours.
    fn plain(status: StatusCode, body: &'static str) -> Response {
        (status, Body::from(body)).into_response()
    }

    #[tokio::test]
    async fn framework_texts_map_to_stable_codes_and_ours_pass() {
        let cases = [
            (
                StatusCode::BAD_REQUEST,
                "Invalid UTF-8 in `id`",
                "invalid_path",
            ),
            (
                StatusCode::BAD_REQUEST,
                "Invalid URL: Cannot parse",
                "invalid_path",
            ),
            (
                StatusCode::BAD_REQUEST,
                "Failed to deserialize query string: x",
                "invalid_query",
            ),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Failed to deserialize form body: missing field",
                "invalid_form",
            ),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Form requests",
                "unsupported_media_type",
            ),
            (StatusCode::PAYLOAD_TOO_LARGE, "", "payload_too_large"),
            (StatusCode::METHOD_NOT_ALLOWED, "", "method_not_allowed"),
            (StatusCode::INTERNAL_SERVER_ERROR, "", "internal"),
        ];
        for (status, body, code) in cases {
            let refusal = foreign(plain(status, body)).await.expect("foreign");
            assert_eq!((refusal.status, refusal.code), (status, code), "{body}");
        }
        assert!(foreign(plain(StatusCode::OK, "fine")).await.is_err());
        assert!(
            foreign(crate::error::response(
                custos_service::ServiceError::not_found("x")
            ))
            .await
            .is_err()
        );
    }

    #[test]
    fn headers_are_counted_in_all() {
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("short"));
        assert!(!headers_too_large(&h));
        let big = HeaderValue::from_str(&"a".repeat(MAX_HEADER_BYTES)).unwrap();
        h.insert("x-b", big);
        assert!(headers_too_large(&h));
    }
}
