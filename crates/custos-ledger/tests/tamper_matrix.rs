//! Tamper matrix for `verify()` (C2SP tlog-tiles + tlog-checkpoint, RFC 6962
//! §2.1): every kind of served file × every kind of damage, on a copy of a
//! real ledger directory read through `DirSource`.
//!
//! The log: 700 entries with signed checkpoints at 300, 600 and 700, so the
//! directory holds (C2SP tlog-tiles "Partial Tiles": partials of
//! checkpointed sizes are kept until the full tile exists)
//!
//! | kind                 | file read by `verify` at 700 | older files (sizes 300/600) |
//! |----------------------|------------------------------|-----------------------------|
//! | full entry bundle    | `tile/entries/001` (256..512)| —                           |
//! | partial entry bundle | `tile/entries/002.p/188`     | `tile/entries/002.p/88`     |
//! | level-0 full tile    | `tile/0/001`                 | —                           |
//! | level-0 partial tile | `tile/0/002.p/188`           | `tile/0/002.p/88`           |
//! | level-1 tile         | `tile/1/000.p/2`             | `tile/1/000.p/1`            |
//! | checkpoint           | `checkpoint` (700)           | saved notes for 300, 600    |
//!
//! A *full* level-1 tile needs 65,536 entries (hundreds of fsyncs), so the
//! level-1 row uses the partial tile; full and partial hash tiles go through
//! the same comparison in `verify`, which the level-0 rows cover both of.
//!
//! Mutations: flip one byte, delete, truncate, swap two entries/hashes
//! (or two lines of the checkpoint), and roll back (replace with the older
//! version of the same resource; for the checkpoint, an older *signed*
//! checkpoint with the newer one given as `previous`).

mod common;

use common::*;
use custos_ledger::{DirSource, VerifyError, verify};

struct Log {
    f: Fixture,
    vk: String,
    /// Signed checkpoints at 300, 600, 700.
    cps: Vec<String>,
    /// Files as they were right after the checkpoint at 300.
    at300: std::collections::BTreeMap<String, Vec<u8>>,
}

fn make_log() -> Log {
    let f = Fixture::new();
    let mut l = f.open();
    let mut cps = Vec::new();
    fill(&mut l, 0, 300);
    cps.push(l.publish_checkpoint(1).unwrap().unwrap());
    let at300 = snapshot(&f.dir());
    fill(&mut l, 300, 600);
    cps.push(l.publish_checkpoint(2).unwrap().unwrap());
    fill(&mut l, 600, 700);
    cps.push(l.publish_checkpoint(3).unwrap().unwrap());
    let vk = l.verifier_key();
    drop(l);
    for p in [
        "tile/entries/000",
        "tile/entries/001",
        "tile/entries/002.p/88",
        "tile/entries/002.p/188",
        "tile/0/000",
        "tile/0/001",
        "tile/0/002.p/88",
        "tile/0/002.p/188",
        "tile/1/000.p/1",
        "tile/1/000.p/2",
    ] {
        assert!(f.path(p).is_file(), "fixture lacks {p}");
    }
    assert!(!f.path("tile/entries/001.p").exists());
    assert!(!f.path("tile/0/001.p").exists());
    Log { f, vk, cps, at300 }
}

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR 0x01 into a data byte of entry `k` (0-based within the bundle).
    FlipEntryByte(usize),
    /// XOR 0x01 into the low byte of entry `k`'s uint16 length prefix.
    FlipLengthByte(usize),
    /// XOR 0x01 into byte `b` of hash `p` (hash tiles).
    FlipHashByte(usize, usize),
    /// XOR 0x01 into byte `b` of line `n` (checkpoint text).
    FlipLineByte(usize, usize),
    Delete,
    /// Remove the last `n` bytes.
    TruncateBy(usize),
    /// Keep only the first `n` bytes.
    TruncateTo(usize),
    SwapEntries(usize, usize),
    SwapHashes(usize, usize),
    /// XOR 0x01 into byte `b` of the base64-decoded signature on line `n`
    /// (checkpoint; bytes 0..4 are the key ID, then the Ed25519 signature).
    FlipSignatureByte(usize, usize),
    /// Swap lines `a` and `b` (checkpoint text).
    SwapLines(usize, usize),
    /// Replace with the version of the same path right after checkpoint 300.
    RollbackTo300(&'static str),
    /// Replace with these bytes.
    ReplaceWith(Vec<u8>),
}

struct Case {
    path: &'static str,
    m: Mutation,
    /// Index into `Log::cps` of the saved checkpoint given as `previous`.
    previous: Option<usize>,
    /// `Ok(size)` when the mutation is legitimately undetectable (why: see
    /// the table), else the error code and `first_bad_index()`.
    want: Result<u64, (&'static str, Option<u64>)>,
}

fn err(code: &'static str, bad: Option<u64>) -> Result<u64, (&'static str, Option<u64>)> {
    Err((code, bad))
}

fn apply(log: &Log, dir: &std::path::Path, path: &str, m: &Mutation) {
    let p = dir.join(path);
    let mut d = std::fs::read(&p).unwrap();
    match m {
        Mutation::FlipEntryByte(k) => {
            let off = entry_offset(&d, *k);
            let len = u16::from_be_bytes([d[off], d[off + 1]]) as usize;
            assert!(len > 0, "entry {k} is empty: pick another");
            d[off + 2 + len / 2] ^= 1;
        }
        Mutation::FlipLengthByte(k) => {
            let off = entry_offset(&d, *k);
            d[off + 1] ^= 1;
        }
        Mutation::FlipHashByte(pos, b) => d[pos * 32 + b] ^= 1,
        Mutation::FlipLineByte(n, b) => {
            let start: usize = d.split(|&c| c == b'\n').take(*n).map(|l| l.len() + 1).sum();
            d[start + b] ^= 1;
        }
        Mutation::FlipSignatureByte(n, b) => {
            use base64::prelude::*;
            let text = String::from_utf8(d).unwrap();
            let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
            let (head, sig) = lines[*n].rsplit_once(' ').unwrap();
            let mut raw = BASE64_STANDARD.decode(sig).unwrap();
            raw[*b] ^= 1;
            lines[*n] = format!("{head} {}", BASE64_STANDARD.encode(raw));
            d = lines.join("\n").into_bytes();
        }
        Mutation::Delete => {
            std::fs::remove_file(&p).unwrap();
            return;
        }
        Mutation::TruncateBy(n) => d.truncate(d.len() - n),
        Mutation::TruncateTo(n) => d.truncate(*n),
        Mutation::SwapEntries(a, b) => {
            let mut es = decode_bundle(&d);
            assert_ne!(es[*a], es[*b], "swapping equal entries changes nothing");
            es.swap(*a, *b);
            d = encode_bundle(&es);
        }
        Mutation::SwapHashes(a, b) => {
            let (ha, hb) = (
                d[a * 32..a * 32 + 32].to_vec(),
                d[b * 32..b * 32 + 32].to_vec(),
            );
            d[a * 32..a * 32 + 32].copy_from_slice(&hb);
            d[b * 32..b * 32 + 32].copy_from_slice(&ha);
        }
        Mutation::SwapLines(a, b) => {
            let text = String::from_utf8(d).unwrap();
            let mut lines: Vec<&str> = text.split('\n').collect();
            lines.swap(*a, *b);
            d = lines.join("\n").into_bytes();
        }
        Mutation::RollbackTo300(old) => d = log.at300[*old].clone(),
        Mutation::ReplaceWith(bytes) => d = bytes.clone(),
    }
    std::fs::write(&p, d).unwrap();
}

fn run_matrix(kind: &str, cases: impl FnOnce(&Log) -> Vec<Case>) {
    let log = make_log();
    let cases = cases(&log);
    // The untouched log verifies, alone and against every saved checkpoint.
    for prev in [None, Some(0), Some(1), Some(2)] {
        let r = verify(
            &DirSource::new(log.f.dir()),
            &log.vk,
            prev.map(|i| log.cps[i].as_str()),
        )
        .unwrap();
        assert_eq!(r.size, 700);
    }
    let mut failures = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("copy");
        copy_dir(&log.f.dir(), &dir);
        apply(&log, &dir, c.path, &c.m);
        let got: Result<u64, VerifyError> = verify(
            &DirSource::new(&dir),
            &log.vk,
            c.previous.map(|i| log.cps[i].as_str()),
        )
        .map(|r| r.size);
        let got_cmp = match &got {
            Ok(s) => Ok(*s),
            Err(e) => Err((e.code(), e.first_bad_index())),
        };
        if got_cmp != c.want {
            failures.push(format!(
                "{kind} case {n}: {} {:?} (previous {:?}): want {:?}, got {:?}",
                c.path, c.m, c.previous, c.want, got
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// C2SP tlog-tiles "Log entries": a full bundle holds exactly 256
// length-prefixed entries, each hashing (RFC 6962 §2.1) to the matching
// level-0 tile hash. Damage inside entry data is named by its index.
#[test]
fn full_entry_bundle() {
    use Mutation::*;
    let p = "tile/entries/001";
    run_matrix("full entry bundle", |_| {
        vec![
            // Entry 256+77 changed: its leaf no longer matches tile/0/001[77].
            Case {
                path: p,
                m: FlipEntryByte(77),
                previous: None,
                want: err("tile_mismatch", Some(333)),
            },
            // A length prefix changed: entry 333 and everything after it is
            // parsed differently; the first bad entry is still 333.
            Case {
                path: p,
                m: FlipLengthByte(77),
                previous: None,
                want: err("ledger_corrupt", Some(333)),
            },
            // A full bundle has no fallback: gone means entries 256.. are.
            Case {
                path: p,
                m: Delete,
                previous: None,
                want: err("not_found", Some(256)),
            },
            // Last byte gone: the last entry (511) is torn.
            Case {
                path: p,
                m: TruncateBy(1),
                previous: None,
                want: err("ledger_corrupt", Some(511)),
            },
            Case {
                path: p,
                m: TruncateTo(0),
                previous: None,
                want: err("ledger_corrupt", Some(256)),
            },
            // Reordered: the first of the two positions is named.
            Case {
                path: p,
                m: SwapEntries(10, 200),
                previous: None,
                want: err("tile_mismatch", Some(266)),
            },
            // Rolled back to what was served at size 300 (001.p/44): entries
            // 300.. missing from the bundle.
            Case {
                path: p,
                m: RollbackTo300("tile/entries/001.p/44"),
                previous: None,
                want: err("ledger_corrupt", Some(300)),
            },
            // With a saved checkpoint the damage is found the same way
            // (entries are checked before consistency).
            Case {
                path: p,
                m: FlipEntryByte(77),
                previous: Some(1),
                want: err("tile_mismatch", Some(333)),
            },
        ]
    });
}

// C2SP tlog-tiles "Partial Tiles" / "Log entries": the partial bundle of the
// checkpointed size (188 entries from 512).
#[test]
fn partial_entry_bundle() {
    use Mutation::*;
    let p = "tile/entries/002.p/188";
    run_matrix("partial entry bundle", |_| {
        vec![
            Case {
                path: p,
                m: FlipEntryByte(100),
                previous: None,
                want: err("tile_mismatch", Some(612)),
            },
            Case {
                path: p,
                m: FlipLengthByte(100),
                previous: None,
                want: err("ledger_corrupt", Some(612)),
            },
            // No full bundle 002 to fall back to.
            Case {
                path: p,
                m: Delete,
                previous: None,
                want: err("not_found", Some(512)),
            },
            Case {
                path: p,
                m: TruncateBy(1),
                previous: None,
                want: err("ledger_corrupt", Some(699)),
            },
            Case {
                path: p,
                m: SwapEntries(150, 20),
                previous: None,
                want: err("tile_mismatch", Some(532)),
            },
            // Replaced by the older partial (002.p/88, still kept for the
            // checkpoint at 600): entries 600.. are missing.
            Case {
                path: p,
                m: ReplaceWith(encode_bundle(&(512..600).map(entry).collect::<Vec<_>>())),
                previous: None,
                want: err("ledger_corrupt", Some(600)),
            },
            // Undetectable by design: the older partial 002.p/88 is needed
            // only by clients of the checkpoint at 600. `verify` checks the
            // latest checkpoint's resources and proves consistency with
            // `previous` from the recomputed tree, so it never reads it —
            // neither its deletion nor its damage is visible here (a client
            // of checkpoint 600 fetching it would see its own mismatch).
            Case {
                path: "tile/entries/002.p/88",
                m: Delete,
                previous: Some(1),
                want: Ok(700),
            },
            Case {
                path: "tile/entries/002.p/88",
                m: FlipEntryByte(3),
                previous: Some(1),
                want: Ok(700),
            },
        ]
    });
}

// C2SP tlog-tiles "Merkle Tree": a full level-0 tile is 256 leaf hashes
// (8,192 bytes); damage names the entry the bad hash covers.
#[test]
fn level0_full_tile() {
    use Mutation::*;
    let p = "tile/0/001";
    run_matrix("level-0 full tile", |log| {
        vec![
            Case {
                path: p,
                m: FlipHashByte(77, 5),
                previous: None,
                want: err("tile_mismatch", Some(333)),
            },
            Case {
                path: p,
                m: Delete,
                previous: None,
                want: err("not_found", Some(256)),
            },
            Case {
                path: p,
                m: TruncateBy(1),
                previous: None,
                want: err("tile_mismatch", Some(511)),
            },
            Case {
                path: p,
                m: TruncateTo(0),
                previous: None,
                want: err("tile_mismatch", Some(256)),
            },
            // One byte too many is also wrong (8,193 bytes).
            Case {
                path: p,
                m: ReplaceWith({
                    let mut d = std::fs::read(log.f.path(p)).unwrap();
                    d.push(0);
                    d
                }),
                previous: None,
                want: err("tile_mismatch", Some(512)),
            },
            Case {
                path: p,
                m: SwapHashes(3, 4),
                previous: None,
                want: err("tile_mismatch", Some(259)),
            },
            // Rolled back to the partial served at size 300 (001.p/44).
            Case {
                path: p,
                m: RollbackTo300("tile/0/001.p/44"),
                previous: None,
                want: err("tile_mismatch", Some(300)),
            },
        ]
    });
}

// C2SP tlog-tiles "Partial Tiles": the level-0 partial of the checkpointed
// size (floor(700 / 256^0) mod 256 = 188 hashes).
#[test]
fn level0_partial_tile() {
    use Mutation::*;
    let p = "tile/0/002.p/188";
    run_matrix("level-0 partial tile", |log| {
        vec![
            Case {
                path: p,
                m: FlipHashByte(100, 0),
                previous: None,
                want: err("tile_mismatch", Some(612)),
            },
            // Recomputable from the entries, but the spec requires logs to
            // serve it ("MUST serve partial tiles corresponding to tree sizes
            // for which a checkpoint was produced") and there is no full
            // tile 002 to fall back to: a missing resource.
            Case {
                path: p,
                m: Delete,
                previous: None,
                want: err("not_found", Some(512)),
            },
            Case {
                path: p,
                m: TruncateBy(32),
                previous: None,
                want: err("tile_mismatch", Some(699)),
            },
            Case {
                path: p,
                m: SwapHashes(187, 0),
                previous: None,
                want: err("tile_mismatch", Some(512)),
            },
            // Replaced by the older partial of size 600 (002.p/88).
            Case {
                path: p,
                m: ReplaceWith(std::fs::read(log.f.path("tile/0/002.p/88")).unwrap()),
                previous: None,
                want: err("tile_mismatch", Some(600)),
            },
            // Undetectable by design (see partial_entry_bundle): the older
            // partial tile is not read when verifying the checkpoint at 700.
            Case {
                path: "tile/0/002.p/88",
                m: Delete,
                previous: Some(1),
                want: Ok(700),
            },
            Case {
                path: "tile/0/002.p/88",
                m: FlipHashByte(0, 0),
                previous: Some(1),
                want: Ok(700),
            },
        ]
    });
}

// C2SP tlog-tiles "Merkle Tree": each level-1 hash is the MTH of a full
// level-0 tile; 700 entries give a partial level-1 tile of width 2. The
// index named is the first entry under the bad hash (`hash << 8`).
#[test]
fn level1_tile() {
    use Mutation::*;
    let p = "tile/1/000.p/2";
    run_matrix("level-1 tile", |_| {
        vec![
            Case {
                path: p,
                m: FlipHashByte(1, 31),
                previous: None,
                want: err("tile_mismatch", Some(256)),
            },
            Case {
                path: p,
                m: Delete,
                previous: None,
                want: err("not_found", Some(0)),
            },
            Case {
                path: p,
                m: TruncateBy(1),
                previous: None,
                want: err("tile_mismatch", Some(256)),
            },
            Case {
                path: p,
                m: SwapHashes(0, 1),
                previous: None,
                want: err("tile_mismatch", Some(0)),
            },
            // Rolled back to the width-1 partial of size 300.
            Case {
                path: p,
                m: RollbackTo300("tile/1/000.p/1"),
                previous: None,
                want: err("tile_mismatch", Some(256)),
            },
            // Undetectable by design: 000.p/1 (of checkpoint 300) is not
            // read when verifying the checkpoint at 700.
            Case {
                path: "tile/1/000.p/1",
                m: Delete,
                previous: Some(0),
                want: Ok(700),
            },
        ]
    });
}

// C2SP tlog-checkpoint + signed-note: the checkpoint body (origin, size,
// root) is covered by the Ed25519 signature; a saved later checkpoint turns
// a rollback into an error (`rollback`, first bad index = the smaller size).
#[test]
fn checkpoint() {
    use Mutation::*;
    let p = "checkpoint";
    run_matrix("checkpoint", |log| {
        vec![
            // Line 0 is the origin, 1 the size, 2 the base64 root, 3 blank,
            // 4 the signature line `— <name> <base64(key ID ‖ signature)>`.
            Case {
                path: p,
                m: FlipLineByte(2, 10),
                previous: None,
                want: err("bad_signature", None),
            },
            Case {
                path: p,
                m: FlipLineByte(1, 0),
                previous: None,
                want: err("bad_signature", None),
            },
            // Signature bytes (a raw flip of the base64 text could also make
            // it invalid base64: then the note is malformed, `bad_checkpoint`).
            Case {
                path: p,
                m: FlipSignatureByte(4, 40),
                previous: None,
                want: err("bad_signature", None),
            },
            // Key ID bytes: no signature by the log's key any more.
            Case {
                path: p,
                m: FlipSignatureByte(4, 0),
                previous: None,
                want: err("bad_signature", None),
            },
            Case {
                path: p,
                m: Delete,
                previous: None,
                want: err("bad_checkpoint", None),
            },
            // Signature line cut off: not a signed note any more.
            Case {
                path: p,
                m: TruncateTo(cp_body_len(log)),
                previous: None,
                want: err("bad_checkpoint", None),
            },
            Case {
                path: p,
                m: TruncateBy(1),
                previous: None,
                want: err("bad_checkpoint", None),
            },
            // Size and root lines swapped: the signed text changed.
            Case {
                path: p,
                m: SwapLines(1, 2),
                previous: None,
                want: err("bad_signature", None),
            },
            // Rollback to older *signed* checkpoints, newer one saved.
            Case {
                path: p,
                m: ReplaceWith(log.cps[1].clone().into_bytes()),
                previous: Some(2),
                want: err("rollback", Some(600)),
            },
            Case {
                path: p,
                m: ReplaceWith(log.cps[0].clone().into_bytes()),
                previous: Some(1),
                want: err("rollback", Some(300)),
            },
            // Undetectable without a saved later checkpoint: the older one
            // is a valid signed checkpoint of a prefix of this log, and all
            // its resources are still served. Saving the last verified
            // checkpoint (`VerifyReport::checkpoint`) is what catches it.
            Case {
                path: p,
                m: ReplaceWith(log.cps[1].clone().into_bytes()),
                previous: None,
                want: Ok(600),
            },
            Case {
                path: p,
                m: ReplaceWith(log.cps[0].clone().into_bytes()),
                previous: Some(0),
                want: Ok(300),
            },
        ]
    });
}

/// Length of the checkpoint note up to and including the blank line.
fn cp_body_len(log: &Log) -> usize {
    let cp = &log.cps[2];
    cp.find("\n\n").unwrap() + 2
}
