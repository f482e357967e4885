//! Invariant: the ledger's proofs verify for every tree size and index, and only for
//! the leaf, the index and the hashes they were made for.
//!
//! An outside party trusts the ledger only through its proofs: an inclusion proof says
//! that an access record is in the signed tree, a consistency proof that a later tree
//! extends an earlier one (nothing removed or rewritten). Example tests check the
//! published vectors of an 8-leaf tree (`tests/vectors.rs`); the shapes of trees whose
//! size is not a power of two, and of indexes near their right edge, are where an
//! off-by-one hides, so here every size up to 2,000 and every index may be drawn:
//!
//! * the root of the first `n` entries is the RFC 6962 §2.1 Merkle Tree Hash computed
//!   independently (`tests/common`);
//! * the inclusion proof of entry `i` in the tree of `n` verifies with the RFC 9162
//!   §2.1.3.2 algorithm against that root, and fails for another leaf, another index,
//!   another root, one hash changed, a hash left out or one added;
//! * the consistency proof from `m` to `n` (RFC 6962 §2.1.2) verifies with the RFC 9162
//!   §2.1.4.2 algorithm, and fails for another old root or one hash changed;
//! * a C2SP tlog-proof of any entry against any signed checkpoint, checked offline by
//!   the crate's `check_proof_for_entry`, verifies for that entry and index only, and not
//!   with one of its hashes replaced; the ledger's own `tlog_proof` does so for a fresh
//!   log of any size, also after it was reopened from its tiles.
//!
//! Cases: 256 for the inclusion and consistency proofs against the 2,000-entry ledger
//! (built once, reopened from disk), 48 for its tlog-proofs (four signature checks each),
//! 8 for the fresh logs (each makes a key, signs two checkpoints and may reopen);
//! `PROPTEST_CASES` sets another number.

mod common;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use base64::prelude::*;
use common::{Fixture, H, leaf, mth, verify_consistency, verify_inclusion};
use custos_ledger::{Ledger, check_proof_for_entry};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The largest tree the proofs are drawn from.
const MAX_SIZE: u64 = 2_000;

/// Entry `i`: distinct for every `i`, of varying length (empty included: entry 0).
fn distinct_entry(i: u64) -> Vec<u8> {
    if i == 0 {
        return Vec::new();
    }
    let mut v = format!("access-event-{i}").into_bytes();
    v.extend(std::iter::repeat_n((i % 251) as u8, (i * 37 % 90) as usize));
    v
}

/// A ledger of `MAX_SIZE` entries, appended one by one up to 24 and then in batches of
/// varying size, with a signed checkpoint after each batch, then reopened (so its tree is
/// rebuilt from the tiles, as after a restart); the leaf hashes computed here, and the
/// checkpoint notes by tree size.
struct Big {
    _fixture: Fixture,
    ledger: Ledger,
    leaves: Vec<H>,
    notes: BTreeMap<u64, String>,
}

static BIG: LazyLock<Big> = LazyLock::new(|| {
    let fixture = Fixture::new();
    let mut notes = BTreeMap::new();
    {
        let mut l = fixture.open();
        let (mut i, mut batch, mut t) = (0, 1, 1);
        while i < MAX_SIZE {
            let n = if i < 24 { 1 } else { batch.min(MAX_SIZE - i) };
            let entries: Vec<Vec<u8>> = (i..i + n).map(distinct_entry).collect();
            assert_eq!(l.append(&entries).unwrap(), i);
            i += n;
            batch = batch * 7 % 257 + 1;
            notes.insert(i, l.publish_checkpoint(t).unwrap().unwrap());
            t += 1;
        }
    }
    let ledger = fixture.open();
    assert_eq!(ledger.size(), MAX_SIZE);
    let leaves = (0..MAX_SIZE).map(|i| leaf(&distinct_entry(i))).collect();
    Big {
        _fixture: fixture,
        ledger,
        leaves,
        notes,
    }
});

/// A tree size `n` in 1..=MAX_SIZE and an index `i` < n, sizes near powers of two and
/// indexes at both edges drawn more often.
fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
    let size = prop_oneof![
        3 => 1..=MAX_SIZE,
        1 => (0u32..11, -2i64..=2).prop_map(|(k, d)| (2i64.pow(k) + d).clamp(1, MAX_SIZE as i64) as u64),
    ];
    (size, any::<prop::sample::Index>(), 0u8..4).prop_map(|(n, ix, edge)| {
        let i = match edge {
            0 => 0,
            1 => n - 1,
            _ => ix.index(n as usize) as u64,
        };
        (n, i)
    })
}

/// `hashes` with one bit of hash `k` flipped.
fn flipped(hashes: &[[u8; 32]], k: usize, bit: usize) -> Vec<[u8; 32]> {
    let mut out = hashes.to_vec();
    out[k][bit / 8] ^= 1 << (bit % 8);
    out
}

fn cases(default: u32) -> ProptestConfig {
    // proptest's own default reads PROPTEST_CASES; only without it use `default`.
    let config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        config
    } else {
        ProptestConfig {
            cases: default,
            ..config
        }
    }
}

proptest! {
    #![proptest_config(cases(256))]

    /// RFC 6962 §2.1 roots and RFC 9162 §2.1.3.2 inclusion proofs, for any size and
    /// index, and their refusal of anything else.
    #[test]
    fn inclusion_proofs_verify_for_any_size_and_index(
        (n, i) in size_and_index(),
        other in any::<prop::sample::Index>(),
        k in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let big = &*BIG;
        let root = big.ledger.root_at(n).unwrap();
        prop_assert_eq!(root, mth(&big.leaves[..n as usize]), "root of size {}", n);
        let proof = big.ledger.inclusion_proof(i, n).unwrap();
        let leaf_i = big.leaves[i as usize];
        prop_assert!(verify_inclusion(i, n, leaf_i, &proof, root), "index {} of {}", i, n);
        // RFC 9162 §2.1.3.1: one hash per level below the root on the leaf's path.
        prop_assert!(proof.len() <= 64 - (n - 1).leading_zeros() as usize);

        // Another leaf at the same index.
        let j = other.index(MAX_SIZE as usize);
        if j != i as usize {
            prop_assert!(!verify_inclusion(i, n, big.leaves[j], &proof, root));
        }
        // The same leaf and proof at another index of the same tree.
        let j = other.index(n as usize) as u64;
        if j != i {
            prop_assert!(!verify_inclusion(j, n, leaf_i, &proof, root), "index {} for {}", j, i);
        }
        // Another root (of a larger tree, or of a smaller one containing the leaf).
        let other_size = if n < MAX_SIZE { n + 1 } else { n - 1 };
        if other_size > i {
            let other_root = big.ledger.root_at(other_size).unwrap();
            prop_assert!(!verify_inclusion(i, n, leaf_i, &proof, other_root));
        }
        if !proof.is_empty() {
            // One bit of one hash changed.
            let k = k.index(proof.len());
            prop_assert!(!verify_inclusion(i, n, leaf_i, &flipped(&proof, k, bit), root));
            // A hash left out.
            prop_assert!(!verify_inclusion(i, n, leaf_i, &proof[..proof.len() - 1], root));
        } else {
            // Only a tree of one leaf has an empty proof: its root is the leaf.
            prop_assert_eq!(n, 1);
            prop_assert_eq!(root, leaf_i);
        }
        // A hash added.
        let mut longer = proof.clone();
        longer.push(big.leaves[0]);
        prop_assert!(!verify_inclusion(i, n, leaf_i, &longer, root));
        // Out of range: refused, not answered with a proof.
        prop_assert_eq!(big.ledger.inclusion_proof(n, n).unwrap_err().code(), "out_of_range");
    }

    /// RFC 6962 §2.1.2 consistency proofs from any size to any larger one, checked with
    /// RFC 9162 §2.1.4.2.
    #[test]
    fn consistency_proofs_verify_for_any_pair_of_sizes(
        (n, m) in size_and_index().prop_map(|(n, i)| (n, i + 1)),
        zero in prop::bool::weighted(0.05),
        other in any::<prop::sample::Index>(),
        k in any::<prop::sample::Index>(),
        bit in 0usize..256,
    ) {
        let big = &*BIG;
        let m = if zero { 0 } else { m };
        let proof = big.ledger.consistency_proof(m, n).unwrap();
        if m == 0 {
            // Every tree extends the empty one: no proof is needed (RFC 9162 §2.1.4).
            prop_assert!(proof.is_empty());
            return Ok(());
        }
        let (old, new) = (big.ledger.root_at(m).unwrap(), big.ledger.root_at(n).unwrap());
        prop_assert!(verify_consistency(m, n, old, new, &proof), "{} -> {}", m, n);
        if m == n {
            prop_assert!(proof.is_empty());
            return Ok(());
        }
        prop_assert!(!proof.is_empty());
        // Another old root: of another size, or the right size with one bit changed.
        let m2 = other.index(n as usize) as u64 + 1;
        if m2 != m {
            let other_old = big.ledger.root_at(m2).unwrap();
            prop_assert!(!verify_consistency(m, n, other_old, new, &proof), "{} for {}", m2, m);
        }
        prop_assert!(!verify_consistency(m, n, flipped(&[old], 0, bit)[0], new, &proof));
        // Another new root.
        let n2 = if n < MAX_SIZE { n + 1 } else { n - 1 };
        if n2 != m {
            let other_new = big.ledger.root_at(n2).unwrap();
            prop_assert!(!verify_consistency(m, n, old, other_new, &proof));
        }
        // One bit of one hash of the proof changed.
        let k = k.index(proof.len());
        prop_assert!(!verify_consistency(m, n, old, new, &flipped(&proof, k, bit)));
        // Out of range: refused.
        prop_assert_eq!(
            big.ledger.consistency_proof(m, MAX_SIZE + 1).unwrap_err().code(),
            "out_of_range"
        );
    }
}

/// A C2SP tlog-proof (c2sp.org/tlog-proof) as the specification lays it out: header,
/// optional `extra` line, `index`, the inclusion proof's hashes in base64, a blank line,
/// then the signed checkpoint.
fn tlog_proof_text(extra: Option<&[u8]>, index: u64, path: &[[u8; 32]], note: &str) -> String {
    let mut s = String::from("c2sp.org/tlog-proof@v1\n");
    if let Some(e) = extra {
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

/// Checks that the tlog-proof `text` of entry `i` of the `n`-entry tree verifies for that
/// entry and index only, and not with one of its hashes replaced.
fn check_tlog_proof(
    text: &str,
    key: &str,
    (n, i): (u64, u64),
    leaves: &[H],
    line: prop::sample::Index,
    other: prop::sample::Index,
) -> Result<(), TestCaseError> {
    let entry = distinct_entry(i);
    let checked = check_proof_for_entry(text, key, &entry)
        .map_err(|e| TestCaseError::fail(format!("index {i} of {n}: {e}")))?;
    prop_assert_eq!(
        (checked.index, checked.size, checked.root),
        (i, n, mth(&leaves[..n as usize]))
    );
    // Another entry in its place.
    let j = other.index(n as usize) as u64;
    if j != i {
        prop_assert!(check_proof_for_entry(text, key, &distinct_entry(j)).is_err());
    }
    // Another index.
    if n > 1 {
        let moved = text.replacen(
            &format!("\nindex {i}\n"),
            &format!("\nindex {}\n", (i + 1) % n),
            1,
        );
        prop_assert!(check_proof_for_entry(&moved, key, &entry).is_err());
    }
    // One hash replaced by another (a leaf's). The lines: header, optional extra,
    // index, then the hashes up to the blank line.
    let lines: Vec<&str> = text.split('\n').collect();
    let first = 1 + lines.iter().position(|l| l.starts_with("index ")).unwrap();
    let hashes = lines[first..].iter().take_while(|l| !l.is_empty()).count();
    if hashes > 0 {
        let h = first + line.index(hashes);
        let replacement = BASE64_STANDARD.encode(leaves[j as usize]);
        if lines[h] != replacement {
            let mut tampered = lines.clone();
            tampered[h] = replacement.as_str();
            prop_assert!(check_proof_for_entry(&tampered.join("\n"), key, &entry).is_err());
        }
    }
    Ok(())
}

proptest! {
    // Four signature checks a case, slow in a debug build.
    #![proptest_config(cases(48))]

    /// Offline checks (C2SP tlog-proof) of any entry against any signed checkpoint of the
    /// ledger: one checkpoint per batch, every size up to 24 among them.
    #[test]
    fn tlog_proofs_verify_against_every_checkpoint(
        pick in any::<prop::sample::Index>(),
        index in any::<prop::sample::Index>(),
        line in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
    ) {
        let big = &*BIG;
        let (&n, note) = big.notes.iter().nth(pick.index(big.notes.len())).unwrap();
        let i = index.index(n as usize) as u64;
        let path = big.ledger.inclusion_proof(i, n).unwrap();
        let text = tlog_proof_text(None, i, &path, note);
        check_tlog_proof(&text, &big.ledger.verifier_key(), (n, i), &big.leaves, line, other)?;
    }
}

proptest! {
    // Each case makes a key and a ledger, signs two checkpoints and maybe reopens it.
    #![proptest_config(cases(8))]

    /// The ledger's own tlog-proofs, end to end: a log of any size, written in two
    /// batches with a checkpoint after each, maybe reopened; any entry's proof verifies.
    #[test]
    fn tlog_proofs_of_a_fresh_log_verify(
        (n, i) in size_and_index(),
        reopen in any::<bool>(),
        line in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
    ) {
        let fixture = Fixture::new();
        let mut ledger = fixture.open();
        let entries: Vec<Vec<u8>> = (0..n).map(distinct_entry).collect();
        let half = (n / 2) as usize;
        ledger.append(&entries[..half]).unwrap();
        if half > 0 {
            ledger.publish_checkpoint(1).unwrap().unwrap();
        }
        ledger.append(&entries[half..]).unwrap();
        ledger.publish_checkpoint(2).unwrap().unwrap();
        if reopen {
            drop(ledger);
            ledger = fixture.open();
        }
        let text = ledger.tlog_proof(i).unwrap();
        // The entry rides along as the `extra` line.
        let checked = custos_ledger::check_proof(&text, &ledger.verifier_key())
            .map_err(|e| TestCaseError::fail(format!("index {i} of {n}: {e}")))?;
        prop_assert_eq!(checked.entry, Some(distinct_entry(i)));
        check_tlog_proof(&text, &ledger.verifier_key(), (n, i), &BIG.leaves, line, other)?;
    }
}
