//! Errors as data: one enum per concern, each with stable machine-readable codes.
//!
//! Messages never contain entry bytes (entries may be derived from personal
//! data); they name indexes, sizes and paths only.

use std::path::PathBuf;

/// Errors from opening, writing and reading a [`crate::Ledger`], and from
/// loading a [`crate::LedgerKey`].
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A filesystem operation failed. After a failed `append` or
    /// `publish_checkpoint` the ledger stays usable: the call can be retried
    /// once the disk accepts writes again.
    #[error("ledger I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Another process (or another `Ledger` in this process) holds the lock.
    #[error("ledger directory {0} is locked by another writer")]
    Locked(PathBuf),
    /// Stored data is malformed in a way no crash of this code can produce.
    #[error("ledger storage is corrupt: {0}")]
    Corrupt(String),
    /// What is on disk contradicts the last signed checkpoint: entries were
    /// lost or rewritten. The ledger refuses to open rather than sign over it.
    #[error("ledger history mismatch: {0}")]
    HistoryMismatch(String),
    /// An entry is larger than the 65535 bytes a tlog-tiles bundle can hold.
    #[error("entry {position} of the batch is {len} bytes; the maximum is 65535")]
    EntryTooLarge {
        /// Position of the entry within the batch passed to `append`.
        position: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// `publish_checkpoint` was called with a time earlier than the time of
    /// the last signed checkpoint.
    #[error("clock went backwards: now {now_ms} ms is before the last checkpoint at {last_ms} ms")]
    ClockBackwards {
        /// The time passed in.
        now_ms: u64,
        /// The time recorded with the last signed checkpoint.
        last_ms: u64,
    },
    /// A signature did not verify (checkpoint or cosignature).
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// A cosignature line names a key that is not among the configured witnesses.
    #[error("unknown witness key {name}+{id:08x}")]
    UnknownWitness {
        /// Key name on the signature line.
        name: String,
        /// Key ID on the signature line.
        id: u32,
    },
    /// A note or checkpoint could not be parsed, or is not for this log.
    #[error("bad note: {0}")]
    BadNote(String),
    /// A cosigned checkpoint carries no witness cosignature the ledger does not hold
    /// already (nothing to add, nothing is written).
    #[error("no new witness cosignature on the checkpoint")]
    NoNewCosignature,
    /// A cosigned checkpoint is not the ledger's current checkpoint.
    #[error("checkpoint is not the current checkpoint of this ledger")]
    StaleCheckpoint,
    /// A key file or verifier key is malformed or unsafe.
    #[error("bad key: {0}")]
    BadKey(String),
    /// An index or tree size is outside the tree (or not yet checkpointed).
    #[error("out of range: {0}")]
    OutOfRange(String),
    /// A resource path is not a valid tlog-tiles path.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A copy of the ledger waited for a checkpoint covering what it must cover, and the
    /// writer did not sign one in time (is the server running?).
    #[error(
        "the ledger's checkpoint covers {size} entries, the copy needs {needed}: no server signed a newer one in time"
    )]
    CheckpointBehind {
        /// Entries the latest checkpoint covers.
        size: u64,
        /// Entries the copy must cover.
        needed: u64,
    },
}

impl LedgerError {
    /// A stable code for this error, for APIs, logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::Io { .. } => "ledger_io",
            LedgerError::Locked(_) => "ledger_locked",
            LedgerError::Corrupt(_) => "ledger_corrupt",
            LedgerError::HistoryMismatch(_) => "history_mismatch",
            LedgerError::EntryTooLarge { .. } => "entry_too_large",
            LedgerError::ClockBackwards { .. } => "clock_backwards",
            LedgerError::BadSignature(_) => "bad_signature",
            LedgerError::UnknownWitness { .. } => "unknown_witness",
            LedgerError::BadNote(_) => "bad_note",
            LedgerError::StaleCheckpoint => "stale_checkpoint",
            LedgerError::NoNewCosignature => "no_new_cosignature",
            LedgerError::BadKey(_) => "bad_key",
            LedgerError::OutOfRange(_) => "out_of_range",
            LedgerError::InvalidPath(_) => "invalid_path",
            LedgerError::CheckpointBehind { .. } => "checkpoint_behind",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LedgerError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Errors from [`crate::check_proof`].
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// The text is not a well-formed `c2sp.org/tlog-proof@v1`.
    #[error("malformed tlog-proof: {0}")]
    Malformed(String),
    /// The verifier key could not be parsed.
    #[error("bad verifier key: {0}")]
    BadKey(String),
    /// The embedded checkpoint is not signed by the given key.
    #[error("bad checkpoint signature: {0}")]
    BadSignature(String),
    /// The inclusion proof does not lead to the checkpoint's root.
    #[error("inclusion proof does not verify: {0}")]
    BadProof(String),
}

impl ProofError {
    /// A stable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ProofError::Malformed(_) => "bad_proof_format",
            ProofError::BadKey(_) => "bad_key",
            ProofError::BadSignature(_) => "bad_signature",
            ProofError::BadProof(_) => "bad_proof",
        }
    }
}

/// Errors from [`crate::verify`]. Where the first bad entry can be
/// determined, [`VerifyError::first_bad_index`] returns it.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The tile source failed (network, permissions, …).
    #[error("fetching {path} failed: {message}")]
    Fetch {
        /// Resource path.
        path: String,
        /// What the source reported.
        message: String,
    },
    /// The verifier key could not be parsed.
    #[error("bad verifier key: {0}")]
    BadKey(String),
    /// A checkpoint is missing, malformed or for another origin.
    #[error("bad checkpoint: {0}")]
    BadCheckpoint(String),
    /// A checkpoint signature does not verify with the key.
    #[error("bad checkpoint signature: {0}")]
    BadSignature(String),
    /// A resource the checkpoint requires is missing.
    #[error("missing {path} (first missing entry {first_bad_index})")]
    Missing {
        /// Resource path.
        path: String,
        /// First entry index the missing resource would cover.
        first_bad_index: u64,
    },
    /// An entry bundle is not well-formed for its position.
    #[error("malformed entry bundle {path} at entry {first_bad_index}")]
    MalformedBundle {
        /// Resource path.
        path: String,
        /// Index of the first entry that could not be decoded, or earlier:
        /// the first decoded one whose hash differs from the stored level-0
        /// tile (a changed length prefix misparses the entries after it).
        first_bad_index: u64,
    },
    /// A stored hash differs from the hash recomputed from the entries.
    #[error(
        "{path}: stored hash {position} differs from the recomputed one (entries from {first_bad_index})"
    )]
    TileMismatch {
        /// Tile path.
        path: String,
        /// Position of the hash within the tile.
        position: usize,
        /// First entry index covered by the mismatching hash. At level 0 this
        /// is exactly the entry whose content changed.
        first_bad_index: u64,
    },
    /// The root recomputed from the entries is not the checkpoint's root
    /// (the stored tiles were rewritten consistently, or the checkpoint does
    /// not belong to this content).
    #[error("recomputed root of size {size} does not match the checkpoint")]
    RootMismatch {
        /// Tree size of the checkpoint.
        size: u64,
    },
    /// The latest checkpoint is smaller than a previously saved one:
    /// the log was truncated or rolled back.
    #[error(
        "rollback: checkpoint size {size} is smaller than previously saved size {previous_size}"
    )]
    Rollback {
        /// Current checkpoint size; also the first entry that disappeared.
        size: u64,
        /// Size of the saved checkpoint.
        previous_size: u64,
    },
    /// The tree no longer hashes to the saved earlier checkpoint's root:
    /// history before that size was rewritten.
    #[error("history before size {previous_size} was rewritten")]
    HistoryMismatch {
        /// Size of the saved checkpoint.
        previous_size: u64,
    },
}

impl VerifyError {
    /// A stable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Fetch { .. } => "fetch_failed",
            VerifyError::BadKey(_) => "bad_key",
            VerifyError::BadCheckpoint(_) => "bad_checkpoint",
            VerifyError::BadSignature(_) => "bad_signature",
            VerifyError::Missing { .. } => "not_found",
            VerifyError::MalformedBundle { .. } => "ledger_corrupt",
            VerifyError::TileMismatch { .. } => "tile_mismatch",
            VerifyError::RootMismatch { .. } => "root_mismatch",
            VerifyError::Rollback { .. } => "rollback",
            VerifyError::HistoryMismatch { .. } => "history_mismatch",
        }
    }

    /// The first entry index known to be bad, when it can be determined.
    pub fn first_bad_index(&self) -> Option<u64> {
        match self {
            VerifyError::Missing {
                first_bad_index, ..
            }
            | VerifyError::MalformedBundle {
                first_bad_index, ..
            }
            | VerifyError::TileMismatch {
                first_bad_index, ..
            } => Some(*first_bad_index),
            VerifyError::Rollback { size, .. } => Some(*size),
            _ => None,
        }
    }
}
