//! The HTTP side of a recorded request: what the service needs is read from the request
//! ([`RequestInfo`]), and a [`Recorded`] answer becomes the response ([`reply`]) with
//! the record's id and ledger index in its headers. A handler has no other way to
//! answer with the vault's data: the service hands it out only as a `Recorded`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_service::auth::SessionCredential;
use custos_service::client_certificate::ClientCertificate;
use custos_service::{Recorded, RequestMeta};

/// Request header with the time of a simulated request, unix milliseconds; accepted only
/// by a server started with `--simulated-clock`.
pub const SIMULATED_TIME_HEADER: &str = "x-custos-simulated-time";

/// Response header carrying the ledger index of the request's record.
pub const LEDGER_INDEX_HEADER: &str = "x-custos-ledger-index";

/// Response header carrying the request's id (that of its access record).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What a handler reads from a request besides its path and body: the service's
/// [`RequestMeta`] and the headers (for headers an operation names, such as the case).
pub struct RequestInfo {
    /// Credential, simulated time, client address and console session.
    pub meta: RequestMeta,
    /// The request headers.
    pub headers: HeaderMap,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        Ok(RequestInfo {
            meta: RequestMeta {
                authorization: headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                simulated_time: headers
                    .get(SIMULATED_TIME_HEADER)
                    .map(|v| v.as_bytes().to_vec()),
                client: parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip()),
                session: parts.extensions.get::<SessionCredential>().cloned(),
                client_certificate: parts.extensions.get::<ClientCertificate>().copied(),
            },
            headers: parts.headers.clone(),
        })
    }
}

/// The response of a recorded answer: `status` with the JSON of the answer, or the
/// error's envelope; either way with the record's headers.
pub fn reply<T: serde::Serialize>(status: StatusCode, recorded: Recorded<T>) -> Response {
    respond(recorded.map(|body| (status, axum::Json(body)).into_response()))
}

/// The response of a recorded answer already in HTTP form (a file, a redirect, a
/// response with headers of its own), with the record's headers.
pub fn respond(recorded: Recorded<Response>) -> Response {
    respond_with(recorded, crate::error::response)
}

/// [`respond`], with a failure answered by `on_error` (a protocol with its own error
/// message: SCIM).
pub fn respond_with(
    recorded: Recorded<Response>,
    on_error: fn(custos_service::ServiceError) -> Response,
) -> Response {
    let request_id = recorded.request_id().to_owned();
    let index = recorded.ledger_index();
    let mut response = match recorded.into_outcome() {
        Ok(response) => response,
        Err(e) => on_error(e),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    // Where the record is: the caller can later ask for its inclusion proof.
    if let Some(index) = index {
        response
            .headers_mut()
            .insert(LEDGER_INDEX_HEADER, HeaderValue::from(index));
    }
    response
}
