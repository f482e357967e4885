//! Shared test helpers, including an RFC 6962 / RFC 9162 implementation
//! written independently of the crate (sha2 from dev-dependencies).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use custos_ledger::{Ledger, LedgerKey};
use sha2::{Digest, Sha256};

pub(crate) const ORIGIN: &str = "custos.test/ledger";

pub(crate) type H = [u8; 32];

pub(crate) fn leaf(e: &[u8]) -> H {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(e);
    h.finalize().into()
}

pub(crate) fn node(l: &H, r: &H) -> H {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

/// RFC 6962 §2.1 Merkle Tree Hash over leaf hashes.
pub(crate) fn mth(leaves: &[H]) -> H {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = largest_pow2_below(n);
            node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn largest_pow2_below(n: usize) -> usize {
    // Largest power of two strictly less than n (n ≥ 2).
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.3.2 inclusion proof verification.
pub(crate) fn verify_inclusion(index: u64, size: u64, leaf: H, proof: &[H], root: H) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s, mut r) = (index, size - 1, leaf);
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == root
}

/// RFC 9162 §2.1.4.2 consistency proof verification (0 < first ≤ second).
pub(crate) fn verify_consistency(first: u64, second: u64, fh: H, sh: H, proof: &[H]) -> bool {
    if first == second {
        return proof.is_empty() && fh == sh;
    }
    if first == 0 || first > second || proof.is_empty() {
        return false;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, fh);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == fh && sr == sh && s == 0
}

pub(crate) fn entry(i: u64) -> Vec<u8> {
    // Varying lengths, including empty entries.
    let len = (i * 37 % 200) as usize;
    let mut v = format!("access-event-{i}:").into_bytes();
    v.extend(std::iter::repeat_n((i % 251) as u8, len));
    if i.is_multiple_of(97) {
        v.clear();
    }
    v
}

pub(crate) struct Fixture {
    pub tmp: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Fixture {
            tmp: tempfile::tempdir().unwrap(),
        }
    }
    pub(crate) fn dir(&self) -> PathBuf {
        self.tmp.path().join("ledger")
    }
    pub(crate) fn key(&self) -> LedgerKey {
        LedgerKey::load_or_create(&self.tmp.path().join("ledger.key"), ORIGIN)
            .unwrap()
            .0
    }
    pub(crate) fn open(&self) -> Ledger {
        Ledger::open(&self.dir(), ORIGIN, self.key()).unwrap()
    }
    pub(crate) fn try_open(&self) -> Result<Ledger, custos_ledger::LedgerError> {
        Ledger::open(&self.dir(), ORIGIN, self.key())
    }
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir().join(rel)
    }
}

/// Appends entries `from..to` in batches of varying size.
pub(crate) fn fill(l: &mut Ledger, from: u64, to: u64) {
    fill_batches(l, from, to, |b| b * 3 % 97 + 1, |_| {});
    assert_eq!(l.size(), to);
}

/// Appends entries `from..to` in batches, the first of one entry and each next
/// of `next(previous size)`, calling `after` once each batch is appended.
pub(crate) fn fill_batches(
    l: &mut Ledger,
    from: u64,
    to: u64,
    next: impl Fn(u64) -> u64,
    mut after: impl FnMut(&mut Ledger),
) {
    let mut i = from;
    let mut b = 1;
    while i < to {
        let n = b.min(to - i);
        let batch: Vec<Vec<u8>> = (i..i + n).map(entry).collect();
        assert_eq!(l.append(&batch).unwrap(), i);
        i += n;
        b = next(b);
        after(l);
    }
}

pub(crate) fn encode_bundle(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

pub(crate) fn decode_bundle(mut d: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while d.len() >= 2 {
        let n = u16::from_be_bytes([d[0], d[1]]) as usize;
        out.push(d[2..2 + n].to_vec());
        d = &d[2 + n..];
    }
    assert!(d.is_empty());
    out
}

pub(crate) fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// Recursively copies a directory (files and subdirectories).
pub(crate) fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Every file under `root` (relative path → contents), sorted.
pub(crate) fn snapshot(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Byte offset of entry `k`'s length prefix in an encoded bundle.
pub(crate) fn entry_offset(bundle: &[u8], k: usize) -> usize {
    let mut off = 0;
    for _ in 0..k {
        off += 2 + u16::from_be_bytes([bundle[off], bundle[off + 1]]) as usize;
    }
    off
}
