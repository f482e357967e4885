//! C2SP tlog-proof: an offline-verifiable inclusion proof bundle.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64 entry>            (optional)
//! index <N>
//! <base64 hash>                   (inclusion proof, leaf's sibling first)
//! …
//!
//! <signed checkpoint, verbatim, with cosignatures>
//! ```

use base64::prelude::*;
use tlog_tiles::{Hash, check_record, record_hash};

use crate::checkpoint::{self, OpenError};
use crate::error::ProofError;

const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// A tree of at most 2^64 leaves has inclusion proofs of at most 64 hashes.
const MAX_PROOF_HASHES: usize = 64;

/// Formats a tlog-proof.
pub(crate) fn format(entry: Option<&[u8]>, index: u64, path: &[[u8; 32]], note: &str) -> String {
    let mut s = format!("{HEADER}\n");
    if let Some(e) = entry {
        s.push_str(&format!("extra {}\n", BASE64_STANDARD.encode(e)));
    }
    s.push_str(&format!("index {index}\n"));
    for h in path {
        s.push_str(&BASE64_STANDARD.encode(h));
        s.push('\n');
    }
    s.push('\n');
    s.push_str(note);
    s
}

/// A tlog-proof whose checkpoint signature and inclusion proof verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedProof {
    /// Index of the entry in the log.
    pub index: u64,
    /// The entry, when it came from the proof's `extra` line (`None` when
    /// the caller supplied it to [`check_proof_for_entry`]).
    pub entry: Option<Vec<u8>>,
    /// Size of the checkpointed tree.
    pub size: u64,
    /// Root hash of the checkpointed tree.
    pub root: [u8; 32],
}

struct Parsed<'a> {
    extra: Option<Vec<u8>>,
    index: u64,
    path: Vec<Hash>,
    note: &'a str,
}

/// The signed checkpoint a tlog-proof text carries (everything after the
/// first blank line), split exactly as `parse` splits it.
pub(crate) fn note_of(text: &str) -> Option<&str> {
    text.split_once("\n\n").map(|(_, note)| note)
}

fn malformed(why: &str) -> ProofError {
    ProofError::Malformed(why.to_owned())
}

fn parse(text: &str) -> Result<Parsed<'_>, ProofError> {
    let (head, note) = text
        .split_once("\n\n")
        .ok_or_else(|| malformed("no blank line before the checkpoint"))?;
    let mut lines = head.split('\n').peekable();
    if lines.next() != Some(HEADER) {
        return Err(malformed("first line is not c2sp.org/tlog-proof@v1"));
    }
    let mut extra = None;
    if let Some(b64) = lines.peek().and_then(|l| l.strip_prefix("extra ")) {
        extra = Some(
            BASE64_STANDARD
                .decode(b64)
                .map_err(|_| malformed("extra is not base64"))?,
        );
        lines.next();
    }
    let idx = lines
        .next()
        .and_then(|l| l.strip_prefix("index "))
        .ok_or_else(|| malformed("missing index line"))?;
    let canonical = !idx.is_empty()
        && idx.bytes().all(|b| b.is_ascii_digit())
        && (idx == "0" || !idx.starts_with('0'));
    let index: u64 = idx
        .parse()
        .ok()
        .filter(|_| canonical)
        .ok_or_else(|| malformed("index is not a canonical decimal"))?;
    let mut path = Vec::new();
    for l in lines {
        if path.len() == MAX_PROOF_HASHES {
            return Err(malformed("too many proof hashes"));
        }
        path.push(Hash::parse_hash(l).map_err(|_| malformed("bad proof hash line"))?);
    }
    Ok(Parsed {
        extra,
        index,
        path,
        note,
    })
}

/// Verifies a tlog-proof whose `extra` line carries the entry: the
/// checkpoint must be signed by `verifier_key` (and its origin be the key
/// name), and the inclusion proof must lead from the entry's leaf hash to
/// the checkpoint root. The extra data is trusted only because of that.
pub fn check_proof(text: &str, verifier_key: &str) -> Result<CheckedProof, ProofError> {
    let parsed = parse(text)?;
    let Some(entry) = parsed.extra.clone() else {
        return Err(malformed(
            "no extra line: use check_proof_for_entry with the entry",
        ));
    };
    let mut c = check(&parsed, verifier_key, &entry)?;
    c.entry = Some(entry);
    Ok(c)
}

/// Like [`check_proof`], for a proof that does not carry the entry: the
/// caller supplies it. Any `extra` line is ignored.
pub fn check_proof_for_entry(
    text: &str,
    verifier_key: &str,
    entry: &[u8],
) -> Result<CheckedProof, ProofError> {
    let parsed = parse(text)?;
    check(&parsed, verifier_key, entry)
}

fn check(p: &Parsed<'_>, verifier_key: &str, entry: &[u8]) -> Result<CheckedProof, ProofError> {
    let verifier = checkpoint::log_verifier(verifier_key).map_err(|e| match e {
        OpenError::BadKey(m) | OpenError::Malformed(m) | OpenError::BadSignature(m) => {
            ProofError::BadKey(m)
        }
    })?;
    let cp = checkpoint::open(p.note.as_bytes(), &verifier).map_err(|e| match e {
        OpenError::BadSignature(m) => ProofError::BadSignature(m),
        OpenError::BadKey(m) | OpenError::Malformed(m) => ProofError::Malformed(m),
    })?;
    if p.index >= cp.size {
        return Err(ProofError::BadProof(format!(
            "index {} is not in a tree of size {}",
            p.index, cp.size
        )));
    }
    check_record(&p.path, cp.size, cp.root, p.index, record_hash(entry))
        .map_err(|e| ProofError::BadProof(e.to_string()))?;
    Ok(CheckedProof {
        index: p.index,
        entry: None,
        size: cp.size,
        root: cp.root.0,
    })
}
