//! Evidence bundles: ledger entries that support a claim about a person, each
//! with its inclusion proof, all against one signed checkpoint.
//!
//! A bundle is a JSON document that holds up without the company's database:
//! whoever has the ledger's verifier key can check, offline, that every entry
//! it quotes is in the log the key signed, at the index it claims.
//!
//! ```text
//! {
//!   "format": "custos-evidence/v1",
//!   "origin": "<checkpoint origin = verifier key name>",
//!   "checkpoint": "<signed checkpoint note, verbatim>",
//!   "subjects": [{"subject": "alice", "claim": "revealed 48 of the 50 leaked customers",
//!                 "entries": [17, 42]}],
//!   "entries": [{"index": 17, "proof": "c2sp.org/tlog-proof@v1\nextra …"}, …]
//! }
//! ```
//!
//! Each `proof` is a C2SP tlog-proof whose `extra` line is the entry and whose
//! checkpoint is byte-for-byte the bundle's `checkpoint`, so a bundle cannot
//! mix trees. `entries` holds each cited entry exactly once, sorted by index,
//! and nothing that no subject cites (a bundle leaves the company: it carries
//! only what supports its claims).
//!
//! [`build_bundle`] reads only through a [`TileSource`] — the ledger's files
//! while the server holds its lock, a copy of them, or HTTP — and refuses
//! indexes the latest checkpoint does not cover (`evidence_not_checkpointed`)
//! rather than leaving them out: a bundle that silently drops evidence would
//! weaken a claim without saying so. A checkpoint follows within a second of
//! any entry, so the caller simply retries.
//!
//! [`check_bundle`] verifies a bundle with the verifier key alone. Errors
//! never contain entry bytes (entries may be derived from personal data).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tlog_tiles::{Hash, Tile, TileHashReader, TileReader, check_record, prove_record, record_hash};

use crate::checkpoint::{self, OpenError};
use crate::proof;
use crate::tiles::{TILE_HEIGHT, TILE_WIDTH, TileCoord, TileKind, decode_bundle};
use crate::verify::{TileSource, fetch_tile};

/// The `format` of every bundle this module writes and accepts.
pub const EVIDENCE_FORMAT: &str = "custos-evidence/v1";

/// Largest checkpoint size a bundle is built for: `tlog_tiles`' tile
/// arithmetic uses `u8` shifts that overflow for trees of 2^56 leaves and
/// more, and no real ledger comes near 2^48.
const MAX_TREE_SIZE: u64 = 1 << 48;

/// An evidence bundle (module docs): serialised as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBundle {
    /// Always [`EVIDENCE_FORMAT`].
    pub format: String,
    /// The log's origin: the checkpoint's first line and the verifier key's name.
    pub origin: String,
    /// The signed checkpoint note every proof is against, verbatim.
    pub checkpoint: String,
    /// Who the evidence is about, and what it supports.
    pub subjects: Vec<Subject>,
    /// Every cited entry once, sorted by index.
    pub entries: Vec<EvidenceEntry>,
}

/// One person (or other subject) and the entries supporting a claim about them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// Who the claim is about, e.g. a staff id.
    pub subject: String,
    /// The claim in plain words, e.g. "revealed 48 of the 50 leaked customers".
    pub claim: String,
    /// Ledger indexes of the supporting entries, ascending, no repeats.
    pub entries: Vec<u64>,
}

/// One ledger entry with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceEntry {
    /// Ledger index of the entry.
    pub index: u64,
    /// C2SP tlog-proof text carrying the entry as its `extra` data, against
    /// the bundle's checkpoint (as [`crate::Ledger::tlog_proof`] writes it).
    pub proof: String,
}

/// A bundle whose every proof verified against one signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedBundle {
    /// The log's origin.
    pub origin: String,
    /// Size of the checkpointed tree.
    pub size: u64,
    /// Root hash of the checkpointed tree.
    pub root: [u8; 32],
    /// The signed checkpoint, verbatim.
    pub checkpoint: String,
    /// The subjects, as in the bundle (each index verified present).
    pub subjects: Vec<Subject>,
    /// The verified entries, `(index, entry bytes)`, ascending by index.
    pub entries: Vec<(u64, Vec<u8>)>,
}

impl CheckedBundle {
    /// The verified bytes of entry `index`, if the bundle holds it.
    pub fn entry(&self, index: u64) -> Option<&[u8]> {
        self.entries
            .binary_search_by_key(&index, |(i, _)| *i)
            .ok()
            .and_then(|p| self.entries.get(p))
            .map(|(_, e)| e.as_slice())
    }
}

/// Why a bundle could not be built or did not verify. Messages name indexes,
/// paths and sizes only, never entry bytes.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The bundle is not well-formed JSON of the expected shape.
    #[error("malformed evidence bundle: {0}")]
    Malformed(String),
    /// The bundle's `format` is not [`EVIDENCE_FORMAT`].
    #[error("unsupported evidence format (expected {EVIDENCE_FORMAT})")]
    UnsupportedFormat,
    /// The verifier key could not be parsed.
    #[error("bad verifier key: {0}")]
    BadKey(String),
    /// The bundle's (or the source's) checkpoint is malformed, not signed by
    /// the key, or not for the bundle's origin.
    #[error("bad checkpoint: {0}")]
    BadCheckpoint(String),
    /// A subject is unnamed, named twice, cites nothing or cites an index twice.
    #[error("invalid subject: {0}")]
    InvalidSubject(String),
    /// An entry's proof does not verify, or proves another index.
    #[error("evidence for entry {index} does not verify: {reason}")]
    BadProof {
        /// The entry's index, as the bundle states it.
        index: u64,
        /// Why (a tlog-proof error; never the entry).
        reason: String,
    },
    /// An entry's proof is against another checkpoint than the bundle's.
    #[error("entry {index} is proven against another checkpoint than the bundle's")]
    MixedCheckpoints {
        /// The entry's index.
        index: u64,
    },
    /// A subject cites an entry the bundle does not hold.
    #[error("a subject cites entry {index}, which the bundle does not hold")]
    MissingEntry {
        /// The cited index.
        index: u64,
    },
    /// The bundle holds an entry twice.
    #[error("the bundle holds entry {index} more than once")]
    DuplicateEntry {
        /// The repeated index.
        index: u64,
    },
    /// The bundle holds an entry that no subject cites.
    #[error("the bundle holds entry {index}, which no subject cites")]
    UnreferencedEntry {
        /// The uncited index.
        index: u64,
    },
    /// A requested index is not covered by the latest checkpoint (yet).
    #[error(
        "entry {index} is not covered by the latest checkpoint (size {size}); retry after the next one"
    )]
    NotCheckpointed {
        /// The first requested index at or beyond `size`.
        index: u64,
        /// The latest checkpoint's size.
        size: u64,
    },
    /// The tile source failed.
    #[error("fetching {path} failed: {message}")]
    Fetch {
        /// Resource path.
        path: String,
        /// What the source reported.
        message: String,
    },
    /// The source's tiles or entry bundles are missing, malformed or do not
    /// match its checkpoint.
    #[error("the ledger source is inconsistent: {0}")]
    SourceInvalid(String),
}

impl EvidenceError {
    /// A stable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            EvidenceError::Malformed(_) => "evidence_malformed",
            EvidenceError::UnsupportedFormat => "evidence_unsupported_format",
            EvidenceError::BadKey(_) => "evidence_bad_key",
            EvidenceError::BadCheckpoint(_) => "evidence_bad_checkpoint",
            EvidenceError::InvalidSubject(_) => "evidence_invalid_subject",
            EvidenceError::BadProof { .. } => "evidence_bad_proof",
            EvidenceError::MixedCheckpoints { .. } => "evidence_mixed_checkpoints",
            EvidenceError::MissingEntry { .. } => "evidence_missing_entry",
            EvidenceError::DuplicateEntry { .. } => "evidence_duplicate_entry",
            EvidenceError::UnreferencedEntry { .. } => "evidence_unreferenced_entry",
            EvidenceError::NotCheckpointed { .. } => "evidence_not_checkpointed",
            EvidenceError::Fetch { .. } => "evidence_fetch_failed",
            EvidenceError::SourceInvalid(_) => "evidence_source_invalid",
        }
    }

    /// The entry index the error is about, when there is one.
    pub fn index(&self) -> Option<u64> {
        match self {
            EvidenceError::BadProof { index, .. }
            | EvidenceError::MixedCheckpoints { index }
            | EvidenceError::MissingEntry { index }
            | EvidenceError::DuplicateEntry { index }
            | EvidenceError::UnreferencedEntry { index }
            | EvidenceError::NotCheckpointed { index, .. } => Some(*index),
            _ => None,
        }
    }
}

fn verifier(verifier_key: &str) -> Result<signed_note::StandardVerifier, EvidenceError> {
    checkpoint::log_verifier(verifier_key).map_err(|e| match e {
        OpenError::BadKey(m) | OpenError::Malformed(m) | OpenError::BadSignature(m) => {
            EvidenceError::BadKey(m)
        }
    })
}

fn open_checkpoint(
    text: &[u8],
    verifier: &signed_note::StandardVerifier,
) -> Result<checkpoint::Opened, EvidenceError> {
    checkpoint::open(text, verifier).map_err(|e| match e {
        OpenError::BadKey(m) | OpenError::Malformed(m) | OpenError::BadSignature(m) => {
            EvidenceError::BadCheckpoint(m)
        }
    })
}

fn source_error(e: crate::VerifyError) -> EvidenceError {
    match e {
        crate::VerifyError::Fetch { path, message } => EvidenceError::Fetch { path, message },
        other => EvidenceError::SourceInvalid(other.to_string()),
    }
}

/// Checks subject names and citations; returns them with sorted, unique indexes.
fn normalise_subjects(
    subjects: Vec<(String, String, Vec<u64>)>,
) -> Result<Vec<Subject>, EvidenceError> {
    let mut names = HashSet::new();
    let mut out = Vec::with_capacity(subjects.len());
    for (position, (subject, claim, mut entries)) in subjects.into_iter().enumerate() {
        if subject.is_empty() {
            return Err(EvidenceError::InvalidSubject(format!(
                "subject {position} has no name"
            )));
        }
        if !names.insert(subject.clone()) {
            return Err(EvidenceError::InvalidSubject(format!(
                "subject {position} is named twice"
            )));
        }
        if entries.is_empty() {
            return Err(EvidenceError::InvalidSubject(format!(
                "subject {position} cites no entry"
            )));
        }
        entries.sort_unstable();
        entries.dedup();
        out.push(Subject {
            subject,
            claim,
            entries,
        });
    }
    if out.is_empty() {
        return Err(EvidenceError::InvalidSubject("no subject".into()));
    }
    Ok(out)
}

/// A `tlog_tiles` [`TileReader`] over a [`TileSource`], so that
/// [`TileHashReader`] can authenticate every hash tile it reads against the
/// checkpoint root before a proof is built from it.
struct SourceTiles<'a, S: ?Sized> {
    source: &'a S,
    cache: RefCell<HashMap<Tile, Vec<u8>>>,
    /// The real reason of the last failure: `TileReader` can only return a
    /// `tlog_tiles::Error`.
    failure: RefCell<Option<EvidenceError>>,
}

impl<S: TileSource + ?Sized> SourceTiles<'_, S> {
    fn read_one(&self, tile: &Tile) -> Result<Vec<u8>, EvidenceError> {
        if let Some(d) = self.cache.borrow().get(tile) {
            return Ok(d.clone());
        }
        let width = u16::try_from(tile.width())
            .ok()
            .filter(|w| (1..=TILE_WIDTH as u16).contains(w))
            .ok_or_else(|| EvidenceError::SourceInvalid("tile width out of range".into()))?;
        let coord = TileCoord {
            kind: TileKind::Hash(tile.level()),
            index: tile.level_index(),
            width,
        };
        let shift = u32::from(tile.level()) * u32::from(TILE_HEIGHT);
        let first = tile
            .level_index()
            .saturating_mul(TILE_WIDTH)
            .checked_shl(shift)
            .unwrap_or(u64::MAX);
        let (data, path) = fetch_tile(self.source, coord, first).map_err(source_error)?;
        let want = usize::from(width) * 32;
        // A partial read from a full tile is already cut to its prefix; a
        // full tile read whole must be exactly 256 hashes.
        if data.len() != want {
            return Err(EvidenceError::SourceInvalid(format!(
                "{path} holds {} bytes, expected {want}",
                data.len()
            )));
        }
        self.cache.borrow_mut().insert(*tile, data.clone());
        Ok(data)
    }
}

impl<S: TileSource + ?Sized> TileReader for SourceTiles<'_, S> {
    fn height(&self) -> u8 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                self.read_one(t).map_err(|e| {
                    *self.failure.borrow_mut() = Some(e);
                    tlog_tiles::Error::InvalidTile
                })
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[Tile], _data: &[Vec<u8>]) {}
}

/// Builds an evidence bundle for `subjects` — `(subject, claim, ledger
/// indexes)` each — from the latest checkpoint of `source`.
///
/// Reads only through `source` (never opens the ledger, whose lock a running
/// server holds): fetches the `checkpoint` and verifies it with
/// `verifier_key`; for each cited index reads the entry from its entry
/// bundle and builds its inclusion proof from hash tiles that are first
/// authenticated against the checkpoint root (C2SP tlog-tiles), then checks
/// the proof before formatting it as a C2SP tlog-proof.
///
/// Any index at or beyond the checkpoint size fails the whole build with
/// [`EvidenceError::NotCheckpointed`] (module docs say why). Each subject's
/// indexes are sorted and deduplicated; an entry cited by several subjects
/// appears once.
pub fn build_bundle<S: TileSource + ?Sized>(
    source: &S,
    verifier_key: &str,
    subjects: Vec<(String, String, Vec<u64>)>,
) -> Result<EvidenceBundle, EvidenceError> {
    let subjects = normalise_subjects(subjects)?;
    let verifier = verifier(verifier_key)?;
    let cp_bytes = source
        .fetch("checkpoint")
        .map_err(|e| EvidenceError::Fetch {
            path: "checkpoint".into(),
            message: e.to_string(),
        })?
        .ok_or_else(|| EvidenceError::BadCheckpoint("the source has no checkpoint".into()))?;
    let cp = open_checkpoint(&cp_bytes, &verifier)?;
    let note = String::from_utf8(cp_bytes)
        .map_err(|_| EvidenceError::BadCheckpoint("checkpoint is not UTF-8".into()))?;
    let size = cp.size;
    if size > MAX_TREE_SIZE {
        return Err(EvidenceError::SourceInvalid(format!(
            "checkpoint size {size} is beyond what this code handles"
        )));
    }

    let wanted: BTreeSet<u64> = subjects.iter().flat_map(|s| s.entries.clone()).collect();
    if let Some(&index) = wanted.range(size..).next() {
        return Err(EvidenceError::NotCheckpointed { index, size });
    }

    let tiles = SourceTiles {
        source,
        cache: RefCell::new(HashMap::new()),
        failure: RefCell::new(None),
    };
    let hashes = TileHashReader::new(size, cp.root, &tiles);
    // Indexes come in ascending order: one entry bundle is read at a time.
    let mut bundle: Option<(u64, Vec<Vec<u8>>)> = None;
    let mut entries = Vec::with_capacity(wanted.len());
    for index in wanted {
        let n = index / TILE_WIDTH;
        if bundle.as_ref().is_none_or(|(held, _)| *held != n) {
            let start = n * TILE_WIDTH;
            let width = (size - start).min(TILE_WIDTH);
            let coord = TileCoord {
                kind: TileKind::Entries,
                index: n,
                width: width as u16,
            };
            let (data, path) = fetch_tile(source, coord, start).map_err(source_error)?;
            // Whatever decodes is checked against the signed root below.
            let (decoded, _) = decode_bundle(&data);
            if (decoded.len() as u64) < width {
                return Err(EvidenceError::SourceInvalid(format!("{path} is malformed")));
            }
            bundle = Some((n, decoded));
        }
        let entry = bundle
            .as_ref()
            .and_then(|(_, b)| b.get((index % TILE_WIDTH) as usize))
            .ok_or_else(|| EvidenceError::SourceInvalid(format!("no entry {index}")))?;
        let path = prove_record(size, index, &hashes).map_err(|e| {
            tiles
                .failure
                .borrow_mut()
                .take()
                .unwrap_or_else(|| EvidenceError::SourceInvalid(format!("entry {index}: {e}")))
        })?;
        // The tiles were authenticated, but the entry bytes were not: this
        // is where an entry bundle that differs from the tree is caught.
        check_record(&path, size, cp.root, index, record_hash(entry)).map_err(|_| {
            EvidenceError::SourceInvalid(format!(
                "entry {index} in the entry bundle does not match the checkpoint"
            ))
        })?;
        let path: Vec<[u8; 32]> = path.into_iter().map(|h: Hash| h.0).collect();
        entries.push(EvidenceEntry {
            index,
            proof: proof::format(Some(entry), index, &path, &note),
        });
    }

    Ok(EvidenceBundle {
        format: EVIDENCE_FORMAT.to_owned(),
        origin: verifier_name(&verifier),
        checkpoint: note,
        subjects,
        entries,
    })
}

fn verifier_name(v: &signed_note::StandardVerifier) -> String {
    use signed_note::Verifier as _;
    v.name().to_owned()
}

/// Verifies an evidence bundle offline with the ledger's verifier key.
///
/// Checks, in order: the JSON shape and [`EVIDENCE_FORMAT`]; the bundle's
/// checkpoint signature (C2SP signed-note, origin = key name = `origin`);
/// each entry: held once, its tlog-proof verifying with the key for the
/// index it is listed under (C2SP tlog-proof), against exactly the bundle's
/// checkpoint; each subject: named once, citing at least one index, each
/// once, each held; and no entry that no subject cites.
///
/// Returns the verified entries so that a caller who knows the entry format
/// can check the claims against them.
pub fn check_bundle(
    bundle_json: &[u8],
    verifier_key: &str,
) -> Result<CheckedBundle, EvidenceError> {
    // serde_json's messages may quote the input (entry bytes): report only
    // the kind of error and where it is.
    let bundle: EvidenceBundle = serde_json::from_slice(bundle_json).map_err(|e| {
        EvidenceError::Malformed(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    if bundle.format != EVIDENCE_FORMAT {
        return Err(EvidenceError::UnsupportedFormat);
    }
    let verifier = verifier(verifier_key)?;
    let cp = open_checkpoint(bundle.checkpoint.as_bytes(), &verifier)?;
    if bundle.origin != verifier_name(&verifier) {
        return Err(EvidenceError::BadCheckpoint(
            "the bundle's origin is not the checkpoint's".into(),
        ));
    }

    let mut entries: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for e in &bundle.entries {
        if entries.contains_key(&e.index) {
            return Err(EvidenceError::DuplicateEntry { index: e.index });
        }
        let bad = |reason: String| EvidenceError::BadProof {
            index: e.index,
            reason,
        };
        let checked =
            proof::check_proof(&e.proof, verifier_key).map_err(|err| bad(err.to_string()))?;
        if checked.index != e.index {
            return Err(bad(format!("the proof is for entry {}", checked.index)));
        }
        // Byte-for-byte the same signed note: one tree, one signature, for
        // every entry of the bundle.
        if proof::note_of(&e.proof) != Some(bundle.checkpoint.as_str()) {
            return Err(EvidenceError::MixedCheckpoints { index: e.index });
        }
        let entry = checked
            .entry
            .ok_or_else(|| bad("the proof carries no entry".into()))?;
        entries.insert(e.index, entry);
    }

    let mut names = HashSet::new();
    let mut cited = HashSet::new();
    for (position, s) in bundle.subjects.iter().enumerate() {
        if s.subject.is_empty() || !names.insert(s.subject.as_str()) {
            return Err(EvidenceError::InvalidSubject(format!(
                "subject {position} is unnamed or named twice"
            )));
        }
        if s.entries.is_empty() {
            return Err(EvidenceError::InvalidSubject(format!(
                "subject {position} cites no entry"
            )));
        }
        let mut own = HashSet::new();
        for &index in &s.entries {
            if !own.insert(index) {
                return Err(EvidenceError::InvalidSubject(format!(
                    "subject {position} cites entry {index} twice"
                )));
            }
            if !entries.contains_key(&index) {
                return Err(EvidenceError::MissingEntry { index });
            }
            cited.insert(index);
        }
    }
    if bundle.subjects.is_empty() {
        return Err(EvidenceError::InvalidSubject("no subject".into()));
    }
    if let Some(&index) = entries.keys().find(|i| !cited.contains(*i)) {
        return Err(EvidenceError::UnreferencedEntry { index });
    }

    Ok(CheckedBundle {
        origin: bundle.origin,
        size: cp.size,
        root: cp.root.0,
        checkpoint: bundle.checkpoint,
        subjects: bundle.subjects,
        entries: entries.into_iter().collect(),
    })
}
