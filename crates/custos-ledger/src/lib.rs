//! Custos's tamper-evident ledger.
//!
//! An append-only RFC 6962 Merkle tree (SHA-256; leaf `H(0x00‖entry)`, node
//! `H(0x01‖left‖right)`) stored exactly as a [C2SP tlog-tiles] log: hash
//! tiles `tile/<L>/<N>[.p/<W>]`, entry bundles `tile/entries/<N>[.p/<W>]`,
//! and a `checkpoint` ([C2SP tlog-checkpoint]) signed as a [C2SP signed
//! note] with Ed25519. Witnesses can add [C2SP tlog-cosignature]s, entries
//! can be proven offline with [C2SP tlog-proof]s, and [`verify`] checks a
//! whole copy of the log from anywhere.
//!
//! * [`LedgerKey`] — the checkpoint signing key.
//! * [`Ledger`] — open/recover, `append` (durable on return: one fsync of
//!   an append-only write-ahead file; a failed one is refused and cut off,
//!   and the next one that succeeds takes its index),
//!   `publish_checkpoint`, reads, proofs, `resource` for HTTP serving,
//!   `add_cosignature`.
//! * [`durable_size`], [`copy_at_checkpoint`] — a copy of the ledger at one signed
//!   checkpoint, taken beside the server that writes it (backups).
//! * [`check_proof`], [`verify`], [`TileSource`], [`DirSource`] — offline checks.
//! * [`build_bundle`], [`check_bundle`] — evidence bundles: the entries that
//!   support a claim about a person, each with its tlog-proof, against one
//!   signed checkpoint.
//!
//! Errors are data: [`LedgerError`], [`ProofError`], [`VerifyError`] and
//! [`EvidenceError`] each have a stable `code()`.
//!
//! [C2SP tlog-tiles]: https://c2sp.org/tlog-tiles
//! [C2SP tlog-checkpoint]: https://c2sp.org/tlog-checkpoint
//! [C2SP signed note]: https://c2sp.org/signed-note
//! [C2SP tlog-cosignature]: https://c2sp.org/tlog-cosignature
//! [C2SP tlog-proof]: https://c2sp.org/tlog-proof

mod checkpoint;
mod cosign;
mod error;
mod evidence;
mod key;
mod ledger;
mod proof;
mod snapshot;
mod storage;
mod tiles;
mod tree;
mod verify;
mod wal;

pub use error::{LedgerError, ProofError, VerifyError};
pub use evidence::{
    CheckedBundle, EVIDENCE_FORMAT, EvidenceBundle, EvidenceEntry, EvidenceError, Subject,
    build_bundle, check_bundle,
};
pub use key::LedgerKey;
pub use ledger::Ledger;
pub use proof::{CheckedProof, check_proof, check_proof_for_entry};
pub use snapshot::{LedgerCopy, checkpoint_body, copy_at_checkpoint, durable_size};
pub use tiles::MAX_ENTRY_LEN;
pub use verify::{DirSource, FetchError, TileSource, VerifyReport, verify};
