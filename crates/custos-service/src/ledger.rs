//! Reading the ledger: the log as C2SP tlog-tiles addresses it, proofs, decoded entries,
//! a full verification, and witnesses' cosignatures.
//!
//! What holds only hashes (the checkpoint, hash tiles, inclusion and consistency proofs)
//! is public and not recorded: witnesses and auditors need no account, and it says
//! nothing about anyone. Entry bundles, decoded entries and entry proofs say who accessed
//! which customer id: they need the `ReadAccess` permission and reading them is recorded.

use crate::error::Code;
use base64::prelude::*;
use custos_access::AccessError;
use custos_ledger::{Ledger, LedgerError};
use custos_policy::Action;
use custos_store::AccessRecord;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ErrorKind, ServiceError};
use crate::input::bounded;
use crate::record::{Recorded, RequestMeta};

/// Most entries one call returns.
const MAX_ENTRIES: usize = 1000;

/// Which inclusion proof.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// Ledger index of the entry.
    index: u64,
    /// Tree size the proof is for (that of a checkpoint).
    size: u64,
}

/// Which consistency proof.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size.
    from: u64,
    /// The newer tree size.
    to: u64,
}

/// A Merkle proof: base64 SHA-256 hashes in RFC 6962 / RFC 9162 order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Proof {
    /// The root hash of the tree the proof leads to (base64).
    root: String,
    /// The proof's hashes (base64).
    hashes: Vec<String>,
}

/// A root and the hashes of a proof leading to it.
type ProofParts = Result<([u8; 32], Vec<[u8; 32]>), LedgerError>;

/// Which decoded entries.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntriesQuery {
    /// First ledger index (default 0); past the end, the list is empty.
    #[param(minimum = 0)]
    from: Option<i64>,
    /// At most this many, 1 to 1,000 (default 1,000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Decoded ledger entries.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EntryList {
    /// Entries in ledger order; each record's `seq` is its ledger index.
    #[schema(value_type = Vec<Object>)]
    entries: Vec<AccessRecord>,
    /// Number of durable entries when read.
    size: u64,
}

/// Which entry to prove.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EntryProofQuery {
    /// Ledger index of the entry.
    index: u64,
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

impl App {
    /// The latest signed checkpoint, with any witness cosignatures (C2SP
    /// tlog-checkpoint). Not recorded: it holds only hashes and is public.
    pub async fn ledger_checkpoint(&self) -> Result<String, ServiceError> {
        self.access
            .with_ledger(|l| Ok(l.checkpoint()))
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| ServiceError::not_found("checkpoint"))
    }

    /// The hash tile at `level` and `index` (C2SP tlog-tiles path elements). Not
    /// recorded: it holds only hashes and is public.
    pub async fn ledger_hash_tile(
        &self,
        level: &str,
        index: &str,
    ) -> Result<Vec<u8>, ServiceError> {
        self.ledger_resource(format!("tile/{level}/{index}")).await
    }

    /// The entry bundle at `index` (C2SP tlog-tiles path elements; `ReadAccess`): it
    /// says who accessed which customer id.
    pub async fn ledger_entry_tile(&self, meta: &RequestMeta, index: &str) -> Recorded<Vec<u8>> {
        let mut ex = self.begin(meta, custos_types::Action::ReadLedger);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            self.ledger_resource(format!("tile/entries/{index}")).await
        }
        .await;
        self.finish(ex, result).await
    }

    /// The ledger's file at `resource` (a tlog-tiles path).
    async fn ledger_resource(&self, resource: String) -> Result<Vec<u8>, ServiceError> {
        self.access
            .with_ledger(move |l| l.resource(&resource))
            .await
            .map_err(ledger_error)?
            .ok_or_else(|| ServiceError::not_found("tile"))
    }

    /// The inclusion proof of an entry in a tree size. Not recorded: hashes only, public.
    pub async fn inclusion_proof(&self, query: InclusionQuery) -> Result<Proof, ServiceError> {
        self.proof(move |l| {
            Ok((
                l.root_at(query.size)?,
                l.inclusion_proof(query.index, query.size)?,
            ))
        })
        .await
    }

    /// The consistency proof between two tree sizes. Not recorded: hashes only, public.
    pub async fn consistency_proof(&self, query: ConsistencyQuery) -> Result<Proof, ServiceError> {
        self.proof(move |l| {
            Ok((
                l.root_at(query.to)?,
                l.consistency_proof(query.from, query.to)?,
            ))
        })
        .await
    }

    /// Runs `prove` (the root it leads to and the proof's hashes) on the ledger.
    async fn proof(
        &self,
        prove: impl FnOnce(&Ledger) -> ProofParts + Send + 'static,
    ) -> Result<Proof, ServiceError> {
        let (root, hashes) = self.access.with_ledger(prove).await.map_err(ledger_error)?;
        Ok(Proof {
            root: BASE64_STANDARD.encode(root),
            hashes: hashes.iter().map(|h| BASE64_STANDARD.encode(h)).collect(),
        })
    }

    /// Decoded ledger entries from a ledger index on (`ReadAccess`); `query` is as
    /// decoded by the transport.
    pub async fn ledger_entries(
        &self,
        meta: &RequestMeta,
        query: Result<EntriesQuery, ServiceError>,
    ) -> Recorded<EntryList> {
        let mut ex = self.begin(meta, custos_types::Action::ReadLedger);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            let q = query?;
            // An index as a signed 64-bit number, as described; never negative.
            let from = u64::try_from(q.from.unwrap_or(0)).map_err(|_| {
                ServiceError::bad_request(Code::InvalidQuery, "from is a whole number from 0")
            })?;
            let limit = bounded("limit", q.limit.unwrap_or(MAX_ENTRIES), MAX_ENTRIES)?;
            let size = self.access.size();
            let entries = self
                .access
                .entries(from, limit)
                .await
                .map_err(ledger_error)?;
            Ok(EntryList { entries, size })
        }
        .await;
        self.finish(ex, result).await
    }

    /// An entry with its inclusion proof and the signed checkpoint it proves against, as
    /// a C2SP tlog-proof (`ReadAccess`); `query` is as decoded by the transport.
    pub async fn ledger_entry_proof(
        &self,
        meta: &RequestMeta,
        query: Result<EntryProofQuery, ServiceError>,
    ) -> Recorded<String> {
        let mut ex = self.begin(meta, custos_types::Action::ReadLedger);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            let q = query?;
            self.access
                .with_ledger(move |l| l.tlog_proof(q.index))
                .await
                .map_err(ledger_error)
        }
        .await;
        self.finish(ex, result).await
    }

    /// Verifies the whole ledger now, as an auditor would (`ReadAccess`). A failed
    /// verification is a finding, answered with `verified: false`, not an error.
    pub async fn verify_ledger(&self, meta: &RequestMeta) -> Recorded<Verification> {
        let mut ex = self.begin(meta, custos_types::Action::VerifyLedger);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            let (dir, key) = self.ledger_files_beside_writer().await?;
            let started = std::time::Instant::now();
            // Reads every tile: off the async threads, and without the ledger's lock.
            let outcome = tokio::task::spawn_blocking(move || {
                custos_ledger::verify(&custos_ledger::DirSource::new(dir), &key, None)
            })
            .await
            .map_err(|_| ServiceError::internal())?;
            let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            Ok(match outcome {
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
                        size: self.access.size(),
                        root: None,
                        checkpoint: None,
                        code: Some(e.code().to_owned()),
                        message: Some(e.to_string()),
                        first_bad_index: e.first_bad_index(),
                        millis,
                    }
                }
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Stores a witness's cosignature: `note` is the current checkpoint with its
    /// cosignature lines (C2SP tlog-cosignature), accepted only from the configured
    /// `ledger_witnesses`. Not recorded: a cosignature is itself public, and a note that
    /// is refused changes nothing.
    pub async fn add_cosignature(&self, note: &[u8]) -> Result<(), ServiceError> {
        let note = String::from_utf8(note.to_vec())
            .map_err(|_| ServiceError::bad_request(Code::BadNote, "the note is not UTF-8"))?;
        let witnesses = self.config.ledger_witnesses.clone();
        self.access
            .with_ledger_mut(move |l| l.add_cosignature(&note, &witnesses))
            .await
            .map_err(ledger_error)
    }

    /// The ledger's directory and verifier key, for reading its files beside the writer
    /// (a full verification, an evidence bundle) without holding the ledger's lock.
    pub(crate) async fn ledger_files_beside_writer(
        &self,
    ) -> Result<(std::path::PathBuf, String), ServiceError> {
        self.access
            .with_ledger(|l| Ok((l.dir().to_owned(), l.verifier_key())))
            .await
            .map_err(ledger_error)
    }
}

/// An error of the ledger as an answer: bad coordinates are the caller's, a refused
/// cosignature is the witness's, anything else means the ledger cannot answer.
fn ledger_error(e: AccessError) -> ServiceError {
    use custos_ledger::LedgerError as L;
    let code = e.code();
    match &e {
        AccessError::Ledger(L::OutOfRange(_) | L::InvalidPath(_)) => ServiceError::new(
            ErrorKind::NotFound,
            Code::Part(code),
            "no such ledger index, size or resource",
        ),
        AccessError::Ledger(
            L::UnknownWitness { .. }
            | L::BadSignature(_)
            | L::BadNote(_)
            | L::StaleCheckpoint
            | L::NoNewCosignature,
        ) => ServiceError::bad_request(
            Code::Part(code),
            format!("cosigned checkpoint refused: {code}"),
        ),
        _ => {
            tracing::error!(error = %e, code, "ledger read failed");
            ServiceError::ledger_unavailable()
        }
    }
}
