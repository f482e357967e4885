//! The ledger over HTTP.
//!
//! * `/ledger/checkpoint` and `/ledger/tile/...`: the log exactly as C2SP tlog-tiles
//!   addresses it, so any tlog-tiles client can mirror and verify it. The checkpoint and
//!   hash tiles hold only hashes and are public (witnesses and auditors need no account);
//!   entry bundles say who accessed which customer id, so they need the `ReadAccess`
//!   permission and reading them is recorded.
//! * `/v1/ledger/proof/...`: inclusion and consistency proofs (hashes only, public).
//! * `/v1/ledger/entries` and `/v1/ledger/proof/entry`: decoded entries and C2SP
//!   tlog-proof bundles for analysts (recorded).
//! * `POST /v1/ledger/cosignature`: a witness hands back the checkpoint with its
//!   cosignature; only configured witness keys are accepted.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::prelude::*;
use custos_access::AccessError;
use custos_policy::Action;
use custos_store::AccessRecord;
use serde::{Deserialize, Serialize};

use super::doc::CosignedNote;
use super::json;
use crate::exchange::{RequestInfo, parse_query, read_body};
use crate::{ApiError, SharedApp};

/// Most entries one call returns.
const MAX_ENTRIES: usize = 1000;

/// Largest cosigned checkpoint accepted (a checkpoint plus a few dozen signatures).
pub(crate) const MAX_COSIGNED_NOTE: usize = 16 * 1024;

/// An error of the ledger as an HTTP answer: bad coordinates are the caller's, anything
/// else means the ledger cannot answer.
fn ledger_error(e: AccessError) -> ApiError {
    let code = e.code();
    match code {
        "out_of_range" | "not_found" | "invalid_path" => ApiError::new(
            StatusCode::NOT_FOUND,
            code,
            "no such ledger index, size or resource",
        ),
        "unknown_witness" | "bad_signature" | "bad_note" | "stale_checkpoint"
        | "no_new_cosignature" => {
            ApiError::bad_request(code, format!("cosigned checkpoint refused: {code}"))
        }
        _ => {
            tracing::error!(error = %e, code, "ledger read failed");
            ApiError::ledger_unavailable()
        }
    }
}

/// The ledger's directory and verifier key, for reading its files beside the writer
/// (a full verification, an evidence bundle) without holding the ledger's lock.
pub(super) async fn files_beside_writer(
    app: &SharedApp,
) -> Result<(std::path::PathBuf, String), ApiError> {
    app.access
        .with_ledger(|l| Ok((l.dir().to_owned(), l.verifier_key())))
        .await
        .map_err(ledger_error)
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The latest signed checkpoint, with any witness cosignatures (C2SP tlog-checkpoint).
#[utoipa::path(get, path = "/ledger/checkpoint", tag = "ledger",
    responses(
        (status = 200, body = String, content_type = "text/plain", description = "the signed note (UTF-8)"),
        (status = 404, description = "`not_found`: no checkpoint signed yet"),
        (status = 503, description = "`ledger_unavailable`: the ledger cannot answer")))]
pub(super) async fn checkpoint(State(app): State<SharedApp>) -> Response {
    match app.access.with_ledger(|l| Ok(l.checkpoint())).await {
        Ok(Some(note)) => text(StatusCode::OK, note),
        Ok(None) => ApiError::not_found("checkpoint").into_response(),
        Err(e) => ledger_error(e).into_response(),
    }
}

/// A hash tile, addressed as in C2SP tlog-tiles (`/ledger/tile/0/x001/234`). Public: it
/// holds only hashes.
#[utoipa::path(get, path = "/ledger/tile/{level}/{index}", tag = "ledger",
    params(("level" = u8, Path, maximum = 63, description = "the tile's level"),
           ("index" = String, Path, pattern = "^(x[0-9]{3}/)*[0-9]{3}(\\.p/([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$",
            description = "the tile's index in 3-digit path elements, `.p/<width>` for a partial tile (its slashes may be sent as %2F)")),
    responses(
        (status = 200, body = Vec<u8>, content_type = "application/octet-stream", description = "the tile's hashes"),
        (status = 404, description = "`not_found`, `invalid_path`, `out_of_range`: no such tile"),
        (status = 503, description = "`ledger_unavailable`: the ledger cannot answer")))]
pub(super) async fn hash_tile(
    State(app): State<SharedApp>,
    Path((level, index)): Path<(String, String)>,
) -> Response {
    serve_resource(&app, format!("tile/{level}/{index}"))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// An entry bundle, addressed as in C2SP tlog-tiles (`/ledger/tile/entries/000.p/5`): it
/// says who accessed which customer id, so reading it needs the `ReadAccess` permission
/// and is recorded (security_analyst, admin).
#[utoipa::path(get, path = "/ledger/tile/entries/{index}", tag = "ledger",
    params(("index" = String, Path, pattern = "^(x[0-9]{3}/)*[0-9]{3}(\\.p/([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$",
            description = "the bundle's index in 3-digit path elements, `.p/<width>` for a partial bundle (its slashes may be sent as %2F)")),
    responses(
        (status = 200, body = Vec<u8>, content_type = "application/octet-stream", description = "the entries"),
        (status = 403, description = "`forbidden`: only security analysts and admins read entries"),
        (status = 404, description = "`not_found`, `invalid_path`, `out_of_range`: no such bundle")),
    security(("bearer" = [])))]
pub(super) async fn entry_tile(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(index): Path<String>,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::ReadLedger);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        serve_resource(&app, format!("tile/entries/{index}")).await
    }
    .await;
    app.finish(ex, result).await
}

async fn serve_resource(app: &SharedApp, resource: String) -> Result<Response, ApiError> {
    match app.access.with_ledger(move |l| l.resource(&resource)).await {
        Ok(Some(bytes)) => Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                // Full tiles never change (C2SP tlog-tiles), but they are read with a
                // credential: no shared or browser cache keeps them.
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response()),
        Ok(None) => Err(ApiError::not_found("tile")),
        Err(e) => Err(ledger_error(e)),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct InclusionQuery {
    /// Ledger index of the entry.
    index: u64,
    /// Tree size the proof is for (that of a checkpoint).
    size: u64,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct ConsistencyQuery {
    /// The older tree size.
    from: u64,
    /// The newer tree size.
    to: u64,
}

/// A Merkle proof: base64 SHA-256 hashes in RFC 6962 / RFC 9162 order.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Proof {
    /// The root hash of the tree the proof leads to (base64).
    root: String,
    /// The proof's hashes (base64).
    hashes: Vec<String>,
}

/// Answers a proof query: parses it, then runs `prove` (the root it leads to and the
/// proof's hashes) on the ledger.
async fn proof<Q: serde::de::DeserializeOwned + Send + 'static>(
    app: &SharedApp,
    query: Option<String>,
    expected: &str,
    prove: impl FnOnce(&custos_ledger::Ledger, Q) -> ProofParts + Send + 'static,
) -> Response {
    let result = async {
        let q: Q = parse_query(query, expected)?;
        let (root, hashes) = app
            .access
            .with_ledger(move |l| prove(l, q))
            .await
            .map_err(ledger_error)?;
        Ok(json(
            StatusCode::OK,
            Proof {
                root: BASE64_STANDARD.encode(root),
                hashes: hashes.iter().map(|h| BASE64_STANDARD.encode(h)).collect(),
            },
        ))
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}

/// A root and the hashes of a proof leading to it.
type ProofParts = Result<([u8; 32], Vec<[u8; 32]>), custos_ledger::LedgerError>;

/// Inclusion proof of entry `index` in the tree of `size` entries.
#[utoipa::path(get, path = "/v1/ledger/proof/inclusion", tag = "ledger", params(InclusionQuery),
    responses(
        (status = 200, body = Proof, description = "the proof"),
        (status = 400, description = "`invalid_query`: index and size are whole numbers"),
        (status = 404, description = "`out_of_range`: no such index or size"),
        (status = 503, description = "`ledger_unavailable`: the ledger cannot answer")))]
pub(super) async fn inclusion_proof(
    State(app): State<SharedApp>,
    RawQuery(query): RawQuery,
) -> Response {
    proof(
        &app,
        query,
        "index and size are whole numbers",
        |l, q: InclusionQuery| Ok((l.root_at(q.size)?, l.inclusion_proof(q.index, q.size)?)),
    )
    .await
}

/// Consistency proof between tree sizes `from` and `to`.
#[utoipa::path(get, path = "/v1/ledger/proof/consistency", tag = "ledger", params(ConsistencyQuery),
    responses(
        (status = 200, body = Proof, description = "the proof"),
        (status = 400, description = "`invalid_query`: from and to are whole numbers"),
        (status = 404, description = "`out_of_range`: no such size, or from is after to"),
        (status = 503, description = "`ledger_unavailable`: the ledger cannot answer")))]
pub(super) async fn consistency_proof(
    State(app): State<SharedApp>,
    RawQuery(query): RawQuery,
) -> Response {
    proof(
        &app,
        query,
        "from and to are whole numbers",
        |l, q: ConsistencyQuery| Ok((l.root_at(q.to)?, l.consistency_proof(q.from, q.to)?)),
    )
    .await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EntriesQuery {
    /// First ledger index (default 0); past the end, the list is empty.
    #[param(minimum = 0)]
    from: Option<i64>,
    /// At most this many, 1 to 1,000 (default 1,000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct EntryList {
    /// Entries in ledger order; each record's `seq` is its ledger index.
    #[schema(value_type = Vec<Object>)]
    entries: Vec<AccessRecord>,
    /// Number of durable entries when read.
    size: u64,
}

/// Decoded ledger entries from a sequence number (security_analyst, admin).
#[utoipa::path(get, path = "/v1/ledger/entries", tag = "ledger", params(EntriesQuery),
    responses(
        (status = 200, body = EntryList, description = "the entries"),
        (status = 400, description = "`invalid_query`: from and limit are whole numbers, limit 1 to 1,000"),
        (status = 403, description = "`forbidden`: only security analysts and admins read entries")),
    security(("bearer" = [])))]
pub(super) async fn entries(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::ReadLedger);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        let q: EntriesQuery = parse_query(query, "from and limit are whole numbers")?;
        // An index as a signed 64-bit number, as described; never negative.
        let from = u64::try_from(q.from.unwrap_or(0))
            .map_err(|_| ApiError::bad_request("invalid_query", "from is a whole number from 0"))?;
        let limit = super::bounded("limit", q.limit.unwrap_or(MAX_ENTRIES), MAX_ENTRIES)?;
        let size = app.access.size();
        let entries = app
            .access
            .entries(from, limit)
            .await
            .map_err(ledger_error)?;
        Ok(json(StatusCode::OK, EntryList { entries, size }))
    }
    .await;
    app.finish(ex, result).await
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct EntryProofQuery {
    /// Ledger index of the entry.
    index: u64,
}

/// The entry with its inclusion proof and the signed checkpoint it proves against, as a
/// C2SP tlog-proof (security_analyst, admin). Available once a checkpoint covers it.
#[utoipa::path(get, path = "/v1/ledger/proof/entry", tag = "ledger", params(EntryProofQuery),
    responses(
        (status = 200, body = String, content_type = "text/plain", description = "the C2SP tlog-proof (UTF-8)"),
        (status = 403, description = "`forbidden`: only security analysts and admins read entries"),
        (status = 404, description = "`out_of_range`, `not_found`: no such entry, or none covered by a checkpoint yet")),
    security(("bearer" = [])))]
pub(super) async fn entry_proof(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::ReadLedger);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        let q: EntryProofQuery = parse_query(query, "index is a whole number")?;
        let proof = app
            .access
            .with_ledger(move |l| l.tlog_proof(q.index))
            .await
            .map_err(ledger_error)?;
        Ok(text(StatusCode::OK, proof))
    }
    .await;
    app.finish(ex, result).await
}

/// The outcome of a full verification of the ledger.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verification {
    /// Whether every check passed.
    pub verified: bool,
    /// Entries covered by the verified checkpoint.
    pub size: u64,
    /// The root hash recomputed from every entry (base64), when verified.
    pub root: Option<String>,
    /// The signed checkpoint that was verified, when verified.
    pub checkpoint: Option<String>,
    /// Why not, as a stable code (`tile_mismatch`, `root_mismatch`, `bad_signature`, …).
    pub code: Option<String>,
    /// Why not, in words.
    pub message: Option<String>,
    /// The first entry found bad, when known.
    pub first_bad_index: Option<u64>,
    /// How long the verification took, milliseconds.
    pub millis: u64,
}

/// Verifies the whole ledger now, as an auditor would (security_analyst, admin): reads
/// the stored tiles beside the writer, recomputes every leaf hash and the tree, checks
/// the stored hash tiles, the root and the checkpoint's signature. A failed verification
/// is a finding, answered with `verified: false`, not an error of the request.
#[utoipa::path(post, path = "/v1/ledger/verify", tag = "ledger",
    responses(
        (status = 200, body = Verification, description = "the outcome, good or bad"),
        (status = 403, description = "`forbidden`: only security analysts and admins verify")),
    security(("bearer" = [])))]
pub(super) async fn verify(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::VerifyLedger);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        let (dir, key) = files_beside_writer(&app).await?;
        let started = std::time::Instant::now();
        // Reads every tile: off the async threads, and without the ledger's lock.
        let outcome = tokio::task::spawn_blocking(move || {
            custos_ledger::verify(&custos_ledger::DirSource::new(dir), &key, None)
        })
        .await
        .map_err(|_| ApiError::internal())?;
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let body = match outcome {
            Ok(report) => Verification {
                verified: true,
                size: report.size,
                root: Some(BASE64_STANDARD.encode(report.root)),
                checkpoint: Some(report.checkpoint),
                code: None,
                message: None,
                first_bad_index: None,
                millis,
            },
            Err(e) => {
                tracing::warn!(code = e.code(), "ledger verification failed");
                Verification {
                    verified: false,
                    size: app.access.size(),
                    root: None,
                    checkpoint: None,
                    code: Some(e.code().to_owned()),
                    message: Some(e.to_string()),
                    first_bad_index: e.first_bad_index(),
                    millis,
                }
            }
        };
        Ok(json(StatusCode::OK, body))
    }
    .await;
    app.finish(ex, result).await
}

/// A witness returns the current checkpoint with its cosignature lines (C2SP
/// tlog-cosignature); accepted only from the configured `ledger_witnesses`.
#[utoipa::path(post, path = "/v1/ledger/cosignature", tag = "ledger",
    request_body(content = CosignedNote, content_type = "text/plain"),
    responses(
        (status = 204, description = "the cosignature is stored"),
        (status = 400, description = "refused before any write: `bad_note` (not a signed note of this ledger), `bad_signature`, `unknown_witness`, `stale_checkpoint` (not the current checkpoint), `no_new_cosignature`"),
        (status = 503, description = "`ledger_unavailable`: the ledger cannot answer")))]
pub(super) async fn cosignature(State(app): State<SharedApp>, body: Body) -> Response {
    let result = async {
        let bytes = read_body(body, MAX_COSIGNED_NOTE).await?;
        let note = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("bad_note", "the note is not UTF-8"))?;
        let witnesses = app.config.ledger_witnesses.clone();
        app.access
            .with_ledger_mut(move |l| l.add_cosignature(&note, &witnesses))
            .await
            .map_err(ledger_error)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }
    .await;
    result.unwrap_or_else(|e: ApiError| e.into_response())
}
