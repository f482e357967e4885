//! Leak attribution over HTTP: an analyst uploads a leaked list and gets the ranked
//! suspects (see `custos_trace`). The file is held in memory for the request only (the
//! gateway's copy is wiped when dropped) and never stored; the ledger records that a
//! trace ran and by whom, never the file's content.

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::Response;
use custos_policy::Action;
use custos_trace::{TraceError, TraceOptions, parse_time};
use futures::TryStreamExt;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::doc::TraceUpload;
use super::json;
use crate::exchange::{RequestInfo, parse_query};
use crate::{ApiError, SharedApp};

/// Most suspects one trace lists.
const MAX_TOP: usize = 1000;

/// Options of a trace; all optional.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct TraceQuery {
    /// Accesses from this time on: unix ms, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC);
    /// by default from the first record.
    #[param(pattern = "^([0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?)$")]
    since: Option<String>,
    /// Accesses before this time (same forms); by default all.
    #[param(pattern = "^([0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?)$")]
    until: Option<String>,
    /// Country of phone numbers written without a country code, an ISO 3166 code known
    /// to the phone number metadata (default `CN`).
    #[param(pattern = "^[A-Z]{2}$")]
    region: Option<String>,
    /// Suspects listed, 1 to 1,000 (default 20).
    #[param(minimum = 1, maximum = 1000)]
    top: Option<usize>,
    /// Adds `evidence` to the answer: a bundle (`custos ledger check-evidence` checks it
    /// offline) of the ledger entries behind this many of the first suspects, each with
    /// its inclusion proof and the signed checkpoint (1 to 20).
    #[param(minimum = 1, maximum = 20)]
    evidence: Option<usize>,
}

/// Most suspects an evidence bundle over HTTP covers.
const MAX_EVIDENCE: usize = 20;

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
    let mut ex = app.begin(&info, custos_types::Action::TraceLeak);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        let q: TraceQuery = parse_query(
            query,
            "options are since, until, region, top and evidence (whole numbers for top and evidence)",
        )?;
        let evidence_top = q
            .evidence
            .map(|n| super::bounded("evidence", n, MAX_EVIDENCE))
            .transpose()?;
        // One spelling per option, as described: no blanks, the region in capitals.
        let spelled = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim() == v);
        if !spelled(&q.since) || !spelled(&q.until) {
            return Err(trace_error(TraceError::BadTime));
        }
        if q
            .region
            .as_deref()
            .is_some_and(|r| r.len() != 2 || !r.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(ApiError::bad_request(
                "trace_bad_region",
                "region is a two-letter ISO 3166 code in capitals, e.g. CN",
            ));
        }
        let options = TraceOptions {
            since: q
                .since
                .as_deref()
                .map_or(Ok(0), parse_time)
                .map_err(trace_error)?,
            until: q
                .until
                .as_deref()
                .map_or(Ok(i64::MAX), parse_time)
                .map_err(trace_error)?,
            default_region: q.region.unwrap_or_else(|| "CN".to_owned()),
            top: super::bounded("top", q.top.unwrap_or(20), MAX_TOP)?,
            p_elsewhere: 0.3,
        };
        let file = read_file_part(&info, body, app.config.import_limit_bytes).await?;
        let traced = custos_trace::trace(&app.store, &app.keyring, &file, &options, &|_| {})
            .await
            .map_err(trace_error)?;
        ex.reason = Some("traced".to_owned());
        let mut body = serde_json::to_value(&traced.report).map_err(|_| ApiError::internal())?;
        if let (Some(top), Some(object)) = (evidence_top, body.as_object_mut()) {
            let bundle = evidence(&app, traced.evidence_subjects(top)).await?;
            object.insert("evidence".to_owned(), bundle);
        }
        Ok(json(StatusCode::OK, body))
    }
    .await;
    app.finish(ex, result).await
}

/// How long a trace waits, at most, for a checkpoint over its evidence: 3 s, three
/// of the sequencer's checkpoint intervals.
const CHECKPOINT_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(250);
const CHECKPOINT_WAIT_STEPS: u32 = 12;

/// The evidence bundle for `subjects`, built from the ledger's files beside the writer
/// (`null` when no suspect has entries).
async fn evidence(
    app: &SharedApp,
    subjects: Vec<(String, String, Vec<u64>)>,
) -> Result<serde_json::Value, ApiError> {
    if subjects.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    let (dir, key) = super::ledger::files_beside_writer(app).await?;
    // The newest entries wait for the next signed checkpoint (the sequencer signs one a
    // second): wait for it a little rather than refuse a fresh trace.
    let mut waited = 0;
    let bundle = loop {
        let (dir, key, subjects) = (dir.clone(), key.clone(), subjects.clone());
        let built = tokio::task::spawn_blocking(move || {
            custos_ledger::build_bundle(&custos_ledger::DirSource::new(dir), &key, subjects)
        })
        .await
        .map_err(|_| ApiError::internal())?;
        match built {
            Ok(bundle) => break bundle,
            Err(custos_ledger::EvidenceError::NotCheckpointed { .. })
                if waited < CHECKPOINT_WAIT_STEPS =>
            {
                waited += 1;
                tokio::time::sleep(CHECKPOINT_WAIT_STEP).await;
            }
            Err(custos_ledger::EvidenceError::NotCheckpointed { .. }) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "evidence_not_checkpointed",
                    "some entries are not covered by a signed checkpoint yet; try again in a few seconds",
                ));
            }
            Err(other) => {
                tracing::error!(code = other.code(), "evidence bundle failed");
                return Err(ApiError::ledger_unavailable());
            }
        }
    };
    serde_json::to_value(&bundle).map_err(|_| ApiError::internal())
}

/// The bytes of the `file` part of a `multipart/form-data` body of at most `limit`
/// bytes, in a buffer wiped when dropped.
async fn read_file_part(
    info: &RequestInfo,
    body: Body,
    limit: usize,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let bad = |message: &str| ApiError::bad_request("invalid_upload", message.to_owned());
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
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
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

/// A trace failure as an answer: the file's and the options' faults are the caller's
/// (400), the store's are ours.
fn trace_error(e: TraceError) -> ApiError {
    match e {
        TraceError::Store(e) => e.into(),
        other => ApiError::bad_request(other.code(), other.to_string()),
    }
}
