//! The ledger over HTTP (what may be read, by whom, and what is recorded is the
//! service's: `custos_service::ledger`).
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
use custos_service::SharedApp;
use custos_service::input::MAX_COSIGNED_NOTE;
use custos_service::ledger::{
    ConsistencyQuery, EntriesQuery, EntryList, EntryProofQuery, InclusionQuery, Proof, Verification,
};
use custos_service::schema::CosignedNote;

use super::json;
use crate::error;
use crate::input::{parse_query, read_body};
use crate::record::{RequestInfo, reply, respond};

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// A tile's bytes as the answer.
fn tile(bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            // Full tiles never change (C2SP tlog-tiles), but they are read with a
            // credential: no shared or browser cache keeps them.
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
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
    match app.ledger_checkpoint().await {
        Ok(note) => text(StatusCode::OK, note),
        Err(e) => error::response(e),
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
    app.ledger_hash_tile(&level, &index)
        .await
        .map_or_else(error::response, tile)
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
    respond(app.ledger_entry_tile(&info.meta, &index).await.map(tile))
}

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
    let result = async {
        let q = parse_query(query, "index and size are whole numbers")?;
        app.inclusion_proof(q).await
    }
    .await;
    result.map_or_else(error::response, |proof| json(StatusCode::OK, proof))
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
    let result = async {
        let q = parse_query(query, "from and to are whole numbers")?;
        app.consistency_proof(q).await
    }
    .await;
    result.map_or_else(error::response, |proof| json(StatusCode::OK, proof))
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
    let query = parse_query(query, "from and limit are whole numbers");
    reply(StatusCode::OK, app.ledger_entries(&info.meta, query).await)
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
    let query = parse_query(query, "index is a whole number");
    respond(
        app.ledger_entry_proof(&info.meta, query)
            .await
            .map(|proof| text(StatusCode::OK, proof)),
    )
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
    reply(StatusCode::OK, app.verify_ledger(&info.meta).await)
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
        let note = read_body(body, MAX_COSIGNED_NOTE).await?;
        app.add_cosignature(&note).await
    }
    .await;
    result.map_or_else(error::response, |()| StatusCode::NO_CONTENT.into_response())
}
