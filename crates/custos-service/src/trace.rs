//! Leak attribution: an analyst hands in a leaked list and gets the ranked suspects (see
//! `custos_trace`). The file is held in memory for the request only (wiped when
//! dropped) and never stored; the ledger records that a trace ran and by whom, never the
//! file's content.

use crate::error::Code;
use std::future::Future;

use custos_policy::Action;
use custos_trace::{TraceError, TraceOptions, parse_time};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::App;
use crate::error::{ErrorKind, ServiceError};
use crate::input::bounded;
use crate::record::{Recorded, RequestMeta};

/// Most suspects one trace lists.
const MAX_TOP: usize = 1000;

/// Options of a trace; all optional.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TraceQuery {
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

/// Most suspects the evidence bundle of one request covers.
const MAX_EVIDENCE: usize = 20;

impl App {
    /// Traces a leaked list to the staff it most likely came from (`ReadAccess`): the
    /// ranked suspects, with an evidence bundle when `query` asks for one. `query` is as
    /// decoded by the transport; `file` reads the uploaded file: it is awaited only once
    /// the caller is allowed and the options are valid, so a caller who may not trace
    /// gets no upload buffered.
    pub async fn trace_leak(
        &self,
        meta: &RequestMeta,
        query: Result<TraceQuery, ServiceError>,
        file: impl Future<Output = Result<Zeroizing<Vec<u8>>, ServiceError>>,
    ) -> Recorded<serde_json::Value> {
        let mut ex = self.begin(meta, custos_types::Action::TraceLeak);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            let q = query?;
            let evidence_top = q
                .evidence
                .map(|n| bounded("evidence", n, MAX_EVIDENCE))
                .transpose()?;
            // One spelling per option, as described: no blanks, the region in capitals.
            let spelled = |v: &Option<String>| v.as_deref().is_none_or(|v| v.trim() == v);
            if !spelled(&q.since) || !spelled(&q.until) {
                return Err(trace_error(TraceError::BadTime));
            }
            if q.region
                .as_deref()
                .is_some_and(|r| r.len() != 2 || !r.bytes().all(|b| b.is_ascii_uppercase()))
            {
                return Err(ServiceError::bad_request(
                    Code::TraceBadRegion,
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
                top: bounded("top", q.top.unwrap_or(20), MAX_TOP)?,
                p_elsewhere: 0.3,
            };
            let file = file.await?;
            let traced = custos_trace::trace(&self.store, &self.keyring, &file, &options, &|_| {})
                .await
                .map_err(trace_error)?;
            ex.reason = Some("traced".to_owned());
            let mut answer =
                serde_json::to_value(&traced.report).map_err(|_| ServiceError::internal())?;
            if let (Some(top), Some(object)) = (evidence_top, answer.as_object_mut()) {
                let bundle = evidence(self, traced.evidence_subjects(top)).await?;
                object.insert("evidence".to_owned(), bundle);
            }
            Ok(answer)
        }
        .await;
        self.finish(ex, result).await
    }
}

/// How long a trace waits, at most, for a checkpoint over its evidence: 3 s, three
/// of the sequencer's checkpoint intervals.
const CHECKPOINT_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(250);
const CHECKPOINT_WAIT_STEPS: u32 = 12;

/// The evidence bundle for `subjects`, built from the ledger's files beside the writer
/// (`null` when no suspect has entries).
async fn evidence(
    app: &App,
    subjects: Vec<(String, String, Vec<u64>)>,
) -> Result<serde_json::Value, ServiceError> {
    if subjects.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    let (dir, key) = app.ledger_files_beside_writer().await?;
    // The newest entries wait for the next signed checkpoint (the sequencer signs one a
    // second): wait for it a little rather than refuse a fresh trace.
    let mut waited = 0;
    let bundle = loop {
        let (dir, key, subjects) = (dir.clone(), key.clone(), subjects.clone());
        let built = tokio::task::spawn_blocking(move || {
            custos_ledger::build_bundle(&custos_ledger::DirSource::new(dir), &key, subjects)
        })
        .await
        .map_err(|_| ServiceError::internal())?;
        match built {
            Ok(bundle) => break bundle,
            Err(custos_ledger::EvidenceError::NotCheckpointed { .. })
                if waited < CHECKPOINT_WAIT_STEPS =>
            {
                waited += 1;
                tokio::time::sleep(CHECKPOINT_WAIT_STEP).await;
            }
            Err(custos_ledger::EvidenceError::NotCheckpointed { .. }) => {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::EvidenceNotCheckpointed,
                    "some entries are not covered by a signed checkpoint yet; try again in a few seconds",
                ));
            }
            Err(other) => {
                tracing::error!(code = other.code(), "evidence bundle failed");
                return Err(ServiceError::ledger_unavailable());
            }
        }
    };
    serde_json::to_value(&bundle).map_err(|_| ServiceError::internal())
}

/// A trace failure as an answer: the file's and the options' faults are the caller's
/// (400), the store's are ours.
fn trace_error(e: TraceError) -> ServiceError {
    match e {
        TraceError::Store(e) => e.into(),
        other => ServiceError::bad_request(Code::Part(other.code()), other.to_string()),
    }
}
