//! Checkpoints: C2SP tlog-checkpoint bodies signed as C2SP signed notes.
//!
//! Body and note encoding come from `tlog_tiles::Checkpoint` and
//! `signed_note::Note`; this module only ties them to our key and checks
//! that the origin line matches the key name.

use signed_note::{Note, NoteError, StandardVerifier, Verifier as _, VerifierList};
use tlog_tiles::{Checkpoint, Hash};

use crate::key::LedgerKey;

/// The checkpoint body: origin, decimal size, base64 root, each on a line.
pub(crate) fn body(origin: &str, size: u64, root: Hash) -> Result<String, String> {
    let cp = Checkpoint::new(origin, size, root, "").map_err(|e| e.to_string())?;
    String::from_utf8(cp.to_bytes()).map_err(|e| e.to_string())
}

/// Signs `body` with the log key, returning the full note text.
pub(crate) fn sign(key: &LedgerKey, body: &str) -> Result<String, String> {
    let mut note = Note::new(body.as_bytes(), &[]).map_err(|e| e.to_string())?;
    note.add_sigs(&[key]).map_err(|e| e.to_string())?;
    String::from_utf8(note.to_bytes()).map_err(|e| e.to_string())
}

/// Why a signed checkpoint was rejected.
#[derive(Debug)]
pub(crate) enum OpenError {
    BadKey(String),
    Malformed(String),
    BadSignature(String),
}

/// A signed checkpoint whose log signature verified.
#[derive(Debug)]
pub(crate) struct Opened {
    pub size: u64,
    pub root: Hash,
    pub note: Note,
}

/// Parses a verifier key for a log (signed-note Ed25519, type 0x01).
pub(crate) fn log_verifier(verifier_key: &str) -> Result<StandardVerifier, OpenError> {
    StandardVerifier::new(verifier_key).map_err(|e| OpenError::BadKey(e.to_string()))
}

/// Parses a signed checkpoint and verifies the log's signature on it.
/// Signatures by other keys (cosignatures) are ignored here.
pub(crate) fn open(text: &[u8], verifier: &StandardVerifier) -> Result<Opened, OpenError> {
    let note = Note::from_bytes(text).map_err(|e| OpenError::Malformed(e.to_string()))?;
    let list = VerifierList::new(vec![Box::new(verifier.clone())]);
    match note.verify(&list) {
        Ok(_) => {}
        Err(NoteError::UnverifiedNote) => {
            return Err(OpenError::BadSignature(format!(
                "no signature by {}",
                verifier.name()
            )));
        }
        Err(e) => return Err(OpenError::BadSignature(e.to_string())),
    }
    let cp = Checkpoint::from_bytes(note.text())
        .map_err(|_| OpenError::Malformed("malformed checkpoint body".into()))?;
    if cp.origin() != verifier.name() {
        return Err(OpenError::Malformed(format!(
            "origin {:?} is not the key name {:?}",
            cp.origin(),
            verifier.name()
        )));
    }
    Ok(Opened {
        size: cp.size(),
        root: *cp.hash(),
        note,
    })
}
