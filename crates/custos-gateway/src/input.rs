//! Decoding of HTTP input: bodies under their size limit, query strings. What a decoded
//! value must satisfy is the service's business (`custos_service::input`).

use axum::body::Body;
use custos_service::Code;
use serde::de::DeserializeOwned;

use custos_service::{ErrorKind, ServiceError};

/// Reads a body of at most `limit` bytes; over the limit is 413 `payload_too_large`.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ServiceError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ServiceError::new(
            ErrorKind::PayloadTooLarge,
            Code::PayloadTooLarge,
            format!("request body is larger than {limit} bytes or could not be read"),
        )
    })
}

/// Parses a query string into `T`; `expected` tells the caller what is accepted (the
/// values themselves are never echoed).
pub fn parse_query<T: DeserializeOwned>(
    raw: Option<String>,
    expected: &str,
) -> Result<T, ServiceError> {
    let invalid = || ServiceError::bad_request(Code::InvalidQuery, expected.to_owned());
    let uri: axum::http::Uri = format!("/?{}", raw.unwrap_or_default())
        .parse()
        .map_err(|_| invalid())?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| invalid())
}
