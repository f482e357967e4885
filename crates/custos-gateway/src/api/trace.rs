//! Leak attribution over HTTP: an analyst uploads a leaked list and gets the ranked
//! suspects (the rules are the service's: `custos_service::trace`). The upload is read
//! into a buffer wiped when dropped, and never stored.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use custos_service::Code;
use custos_service::trace::TraceQuery;
use custos_service::{ErrorKind, ServiceError, SharedApp};
use futures::TryStreamExt;
use zeroize::Zeroizing;

use super::doc::TraceUpload;
use crate::input::parse_query;
use crate::record::{RequestInfo, reply};

/// Trace a leaked list to the staff it most likely came from (security_analyst, admin).
///
/// The body is `multipart/form-data` with the file in a part named `file` (CSV, TSV or
/// plain text; UTF-8 with or without a byte-order mark, UTF-16 with one, or GB18030), at
/// most `import_limit_bytes` in all.
#[utoipa::path(post, path = "/v1/trace", tag = "trace", params(TraceQuery),
    request_body(content = TraceUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = Object, description = "the ranked suspects (with `evidence` when asked)"),
        (status = 400, description = "`invalid_upload`: not multipart with one part named file; the file cannot be read (`trace_empty_file`, `trace_bad_encoding`, `trace_no_identifiers`, `trace_malformed`); an option is not valid (`invalid_query`, `trace_bad_time`, `trace_bad_window`, `trace_bad_region`)"),
        (status = 403, description = "`forbidden`: only security analysts and admins trace"),
        (status = 409, description = "`evidence_not_checkpointed`: evidence was asked for entries no checkpoint covers yet; try again in a few seconds")),
    security(("bearer" = [])))]
pub(super) async fn trace(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let query = parse_query(
        query,
        "options are since, until, region, top and evidence (whole numbers for top and evidence)",
    );
    let file = read_file_part(&info, body, app.config().import_limit_bytes);
    reply(
        StatusCode::OK,
        app.trace_leak(&info.meta, query, file).await,
    )
}

/// The bytes of the `file` part of a `multipart/form-data` body of at most `limit`
/// bytes, in a buffer wiped when dropped.
async fn read_file_part(
    info: &RequestInfo,
    body: Body,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, ServiceError> {
    let bad = |message: &str| ServiceError::bad_request(Code::InvalidUpload, message.to_owned());
    let content_type = info
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| bad("send the file as multipart/form-data, in a part named file"))?;
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| bad("send the file as multipart/form-data, in a part named file"))?;
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit as u64));
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let too_large = || {
        ServiceError::new(
            ErrorKind::PayloadTooLarge,
            Code::PayloadTooLarge,
            format!("the upload is larger than {limit} bytes"),
        )
    };
    let mut file: Option<Zeroizing<Vec<u8>>> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(multer::Error::StreamSizeExceeded { .. }) => return Err(too_large()),
            Err(_) => return Err(bad("the multipart body is malformed")),
        };
        if field.name() != Some("file") {
            continue;
        }
        if file.is_some() {
            return Err(bad("send one part named file"));
        }
        let mut field = field;
        let mut bytes = Zeroizing::new(Vec::new());
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(multer::Error::StreamSizeExceeded { .. }) => return Err(too_large()),
                Err(_) => return Err(bad("the multipart body is malformed")),
            }
        }
        file = Some(bytes);
    }
    file.ok_or_else(|| bad("no part named file in the upload"))
}
