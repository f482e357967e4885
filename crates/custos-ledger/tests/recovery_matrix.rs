//! Recovery matrix for `Ledger::open` after simulated crashes at each step of
//! the durability order documented at the top of src/ledger.rs.
//!
//! Crash states are composed from real snapshots of one ledger directory:
//!
//! * `A`: 600 entries, checkpoint (and `state`) at 600, time 2; `wal` empty;
//! * `B`: `A` + `append` of 200 entries (600..800) + `append` of 5 entries
//!   (800..805): only `wal` changed, it holds two frames, `F1` (600..800)
//!   and `F2` (800..805);
//! * `C`: `B` + `publish_checkpoint` at 805, time 3: full bundle
//!   `tile/entries/002` (its `002.p` removed), `tile/entries/003.p/37`, hash
//!   tiles, `state`, `checkpoint`, and `wal` emptied.
//!
//! `append` writes one frame and `sync_data`s it, so a crash leaves a prefix
//! of the last frame (rows `w*`). `publish_checkpoint` writes every file as
//! `<name>.tmp` → fsync → rename → fsync(dir), so a crash leaves each of its
//! files absent, as its `.tmp`, or complete under its real name (rows `p*`).
//!
//! Not simulable from a test: page-cache loss itself. Renames inside one
//! step may become durable in any order (step 1 of `publish_checkpoint`
//! writes all bundles and tiles, then fsyncs their directories), so rows
//! take any subset of them (`p3b`: bundle 003 without 002); the steps
//! themselves are ordered by those fsyncs (bundles and tiles before
//! `state` before `checkpoint` before the WAL reset).
//!
//! Invariant checked for every row: `open` either succeeds to a state whose
//! directory passes `verify()` (against its own checkpoint and the
//! checkpoint at 600 saved as `previous`), that holds every entry
//! acknowledged before the crash, and that keeps verifying after appending
//! and publishing again; or it refuses with the documented code and leaves
//! every file as it found it (no evidence is destroyed).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use custos_ledger::{DirSource, Ledger, verify};
use sha2::{Digest, Sha256};

type Files = BTreeMap<String, Vec<u8>>;

struct Snaps {
    f: Fixture,
    vk: String,
    a: Files,
    b: Files,
    c: Files,
    /// Byte length of frame `F1` in `B`'s `wal`.
    f1_len: usize,
    /// Signed checkpoint at 600 (what a verifier saved before the crash).
    cp600: String,
}

/// A WAL frame as documented in src/wal.rs, built independently.
fn frame(first: u64, entries: &[Vec<u8>]) -> Vec<u8> {
    let payload = encode_bundle(entries);
    let mut f = b"CLW1".to_vec();
    f.extend_from_slice(&first.to_be_bytes());
    f.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    let check = leaf(&f);
    f.extend_from_slice(&check[..4]);
    f.extend_from_slice(&payload);
    let sum = leaf(&f);
    f.extend_from_slice(&sum);
    f
}

fn entries(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range.map(entry).collect()
}

fn materialize(files: &Files, dir: &Path) {
    for (rel, data) in files {
        write(&dir.join(rel), data);
    }
}

fn build() -> Snaps {
    // SHA-256(0x00 ‖ x) is `leaf`; make sure the helper agrees.
    assert_eq!(leaf(b"x"), <[u8; 32]>::from(Sha256::digest(b"\x00x")));
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 600);
    let cp600 = l.publish_checkpoint(2).unwrap().unwrap();
    let a = snapshot(&f.dir());
    assert!(a.contains_key("tile/entries/002.p/88"));
    assert_eq!(a["wal"], b"");
    l.append(&entries(600..800)).unwrap();
    l.append(&entries(800..805)).unwrap();
    let b = snapshot(&f.dir());
    // `append` touched nothing but the WAL, which is exactly F1 ‖ F2.
    assert_eq!(with(&b, &[("wal", Some(Vec::new()))]), a);
    let f1 = frame(600, &entries(600..800));
    assert_eq!(
        b["wal"],
        [f1.clone(), frame(800, &entries(800..805))].concat()
    );
    l.publish_checkpoint(3).unwrap().unwrap();
    let c = snapshot(&f.dir());
    assert!(c.contains_key("tile/entries/002") && c.contains_key("tile/entries/003.p/37"));
    assert!(!c.contains_key("tile/entries/002.p/88"));
    assert!(c.contains_key("tile/0/002") && c.contains_key("tile/0/003.p/37"));
    assert!(!c.contains_key("tile/0/002.p/88"));
    assert!(c.contains_key("tile/1/000.p/3"));
    assert_eq!(c["wal"], b"");
    let vk = l.verifier_key();
    drop(l);
    Snaps {
        f,
        vk,
        a,
        b,
        c,
        f1_len: f1.len(),
        cp600,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Opens with this (size, checkpoint size).
    Opens(u64, u64),
    /// Refuses with this code.
    Refuses(&'static str),
}

type Check = Box<dyn Fn(&Ledger, &Path)>;

struct Row {
    name: String,
    files: Files,
    want: Want,
    /// Extra checks on the opened ledger and its directory.
    check: Option<Check>,
}

fn bundle(range: std::ops::Range<u64>) -> Vec<u8> {
    encode_bundle(&range.map(entry).collect::<Vec<_>>())
}

fn without_tmp_and_lock(files: Files) -> Files {
    files
        .into_iter()
        .filter(|(k, _)| !k.ends_with(".tmp") && k != "lock")
        .collect()
}

fn run(s: &Snaps, rows: Vec<Row>) {
    let mut failures = Vec::new();
    for row in rows {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        materialize(&row.files, &dir);
        let before = without_tmp_and_lock(snapshot(&dir));
        let opened = Ledger::open(&dir, ORIGIN, s.f.key());
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check_row(s, &row, &dir, opened, &before)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(m)) => failures.push(format!("{}: {m}", row.name)),
            Err(_) => failures.push(format!("{}: panicked (see above)", row.name)),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

fn check_row(
    s: &Snaps,
    row: &Row,
    dir: &Path,
    opened: Result<Ledger, custos_ledger::LedgerError>,
    before: &Files,
) -> Result<(), String> {
    let mut l = match (opened, row.want) {
        (Err(e), Want::Refuses(code)) => {
            if e.code() != code {
                return Err(format!("refused with {} ({e}), want {code}", e.code()));
            }
            let after = without_tmp_and_lock(snapshot(dir));
            if &after != before {
                return Err("a refused open changed files (evidence destroyed)".into());
            }
            return Ok(());
        }
        (Err(e), Want::Opens(..)) => return Err(format!("refused: {} ({e})", e.code())),
        (Ok(l), Want::Refuses(code)) => {
            return Err(format!(
                "opened (size {}, checkpoint {}), want refusal {code}",
                l.size(),
                l.checkpoint_size()
            ));
        }
        (Ok(l), Want::Opens(size, cp)) => {
            if (l.size(), l.checkpoint_size()) != (size, cp) {
                return Err(format!(
                    "opened to size {} / checkpoint {}, want {size} / {cp}",
                    l.size(),
                    l.checkpoint_size()
                ));
            }
            l
        }
    };
    let files = snapshot(dir);
    if let Some(t) = files.keys().find(|k| k.ends_with(".tmp")) {
        return Err(format!("{t} left behind"));
    }
    // Exactly the acknowledged-or-torn prefix of entries, unchanged.
    let all = l.entries(0, usize::MAX).map_err(|e| e.to_string())?;
    if all.len() as u64 != l.size() || all.iter().any(|(i, e)| *e != entry(*i)) {
        return Err("entries read back differ".into());
    }
    if let Some(check) = &row.check {
        check(&l, dir);
    }
    // The directory as recovered verifies against its own checkpoint and
    // against the checkpoint saved at 600.
    let src = DirSource::new(dir);
    let r = verify(&src, &s.vk, None).map_err(|e| format!("verify after open: {e}"))?;
    if r.size != l.checkpoint_size() {
        return Err(format!("verify saw size {}", r.size));
    }
    let r = verify(&src, &s.vk, Some(&s.cp600))
        .map_err(|e| format!("verify with previous 600 after open: {e}"))?;
    if !r.consistent_with_previous {
        return Err("not proven consistent with 600".into());
    }
    // And it keeps working: append, publish, verify, reopen.
    let size = l.size();
    l.append(&[entry(size)]).map_err(|e| e.to_string())?;
    l.publish_checkpoint(1_000).map_err(|e| e.to_string())?;
    drop(l);
    let r = verify(&src, &s.vk, Some(&s.cp600))
        .map_err(|e| format!("verify after the next publish: {e}"))?;
    if r.size != size + 1 || !r.consistent_with_previous {
        return Err(format!("after next publish: {r:?}"));
    }
    let l = Ledger::open(dir, ORIGIN, s.f.key()).map_err(|e| format!("reopen: {e}"))?;
    if l.size() != size + 1 {
        return Err("reopen lost the entry".into());
    }
    Ok(())
}

fn with(base: &Files, edits: &[(&str, Option<Vec<u8>>)]) -> Files {
    let mut f = base.clone();
    for (k, v) in edits {
        match v {
            Some(d) => {
                f.insert((*k).to_owned(), d.clone());
            }
            None => {
                // Removing "x/" removes everything under it.
                f.retain(|p, _| p != k && !(k.ends_with('/') && p.starts_with(k)));
            }
        }
    }
    f
}

fn wal_len_is(n: usize) -> Option<Check> {
    Some(Box::new(move |_, dir| {
        assert_eq!(
            std::fs::read(dir.join("wal")).unwrap().len(),
            n,
            "wal length"
        );
    }))
}

fn flipped(data: &[u8], at: usize) -> Vec<u8> {
    let mut d = data.to_vec();
    d[at] ^= 0x01;
    d
}

// src/ledger.rs, "Durability order", `append`; src/wal.rs, torn tails:
// a crash during the append of F2 (800..805) leaves a prefix of it.
#[test]
fn torn_wal_tail_cut_through_the_last_frame() {
    let s = build();
    let wal = s.b["wal"].clone();
    let mut rows = Vec::new();
    // Cut at every byte offset of F2's header (`f1_len` = F2 never
    // started) and at a sample through its payload and checksum (every
    // offset is covered by the unit test in src/wal.rs; each row here also
    // verifies the whole log, which is slow in debug builds).
    let n = wal.len();
    let (header, ends) = (s.f1_len + 25, [n - 33, n - 32, n - 16, n - 1]);
    let sample = |c: usize| c < header || ends.contains(&c) || (c - s.f1_len) % 61 == 30;
    let cuts: Vec<usize> = (s.f1_len..n).filter(|&c| sample(c)).collect();
    assert!(cuts.len() > 35);
    for cut in cuts {
        rows.push(Row {
            name: format!("w1 wal cut at byte {cut} (inside F2)"),
            files: with(&s.b, &[("wal", Some(wal[..cut].to_vec()))]),
            want: Want::Opens(800, 600),
            // The torn bytes are cut off (the batch was never acknowledged).
            check: wal_len_is(s.f1_len),
        });
    }
    // A sample of cuts inside F1, the only frame.
    for cut in [0, 1, 23, 24, 25, 1000, s.f1_len - 33, s.f1_len - 1] {
        rows.push(Row {
            name: format!("w2 wal cut at byte {cut} (inside F1)"),
            files: with(&s.b, &[("wal", Some(wal[..cut].to_vec()))]),
            want: Want::Opens(600, 600),
            check: wal_len_is(0),
        });
    }
    run(&s, rows);
}

#[test]
fn damaged_wal_frames() {
    let s = build();
    let wal = s.b["wal"].clone();
    let (f1, n) = (s.f1_len, wal.len());
    let zeroed = [&wal[..f1], &vec![0u8; n - f1][..]].concat();
    let rows = vec![
        // Size extended but the data of F2 never written (zeros).
        Row {
            name: "w3 F2 all zeros".into(),
            files: with(&s.b, &[("wal", Some(zeroed))]),
            want: Want::Opens(800, 600),
            check: wal_len_is(f1),
        },
        // The last frame's checksum (or payload) does not match. A torn
        // write ending exactly at the frame's end looks the same, so the
        // batch is dropped like a torn one — undetectable by design if F2
        // had been acknowledged and then damaged (src/wal.rs).
        Row {
            name: "w4 F2 checksum byte flipped".into(),
            files: with(&s.b, &[("wal", Some(flipped(&wal, n - 1)))]),
            want: Want::Opens(800, 600),
            check: wal_len_is(f1),
        },
        Row {
            name: "w5 F2 payload byte flipped".into(),
            files: with(&s.b, &[("wal", Some(flipped(&wal, f1 + 30)))]),
            want: Want::Opens(800, 600),
            check: wal_len_is(f1),
        },
        // A damaged frame followed by another: it was acknowledged (the next
        // append came after its sync), so this is corruption, not a crash.
        Row {
            name: "w6 F1 checksum byte flipped (middle frame)".into(),
            files: with(&s.b, &[("wal", Some(flipped(&wal, f1 - 1)))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "w7 F1 payload byte flipped (middle frame)".into(),
            files: with(&s.b, &[("wal", Some(flipped(&wal, 500)))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        // A header with a damaged length must not pass for a torn tail.
        Row {
            name: "w8 F1 length byte flipped (middle frame)".into(),
            files: with(&s.b, &[("wal", Some(flipped(&wal, 17)))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "w9 F2 header byte flipped, F2 complete".into(),
            files: with(&s.b, &[("wal", Some(flipped(&wal, f1 + 5)))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "w10 F1 dropped: F2 follows a gap".into(),
            files: with(&s.b, &[("wal", Some(wal[f1..].to_vec()))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "w11 frames out of order".into(),
            files: with(&s.b, &[("wal", Some([&wal[f1..], &wal[..f1]].concat()))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        // A record the bundles already hold, with other content.
        Row {
            name: "w12 covered record differs from the bundles".into(),
            files: with(&s.a, &[("wal", Some(frame(590, &[b"other".to_vec()])))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "w13 wal is garbage".into(),
            files: with(
                &s.a,
                &[("wal", Some(b"not a wal at all, but long enough".to_vec()))],
            ),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "w14 both appends complete".into(),
            files: s.b.clone(),
            want: Want::Opens(805, 600),
            check: wal_len_is(n),
        },
        // Deleting the WAL while a checkpoint covers everything loses
        // nothing; it is recreated.
        Row {
            name: "w15 wal deleted after publish".into(),
            files: with(&s.c, &[("wal", None)]),
            want: Want::Opens(805, 805),
            check: wal_len_is(0),
        },
        // Deleting it with acknowledged entries past the checkpoint loses
        // them: undetectable by design, `state` only records checkpointed
        // sizes (src/ledger.rs, "Recovery").
        Row {
            name: "w16 wal deleted with 205 acknowledged entries past the checkpoint".into(),
            files: with(&s.b, &[("wal", None)]),
            want: Want::Opens(600, 600),
            check: None,
        },
        // An older ledger directory (partial bundles past the checkpoint,
        // no WAL) still opens.
        Row {
            name: "w17 no wal, bundles past the checkpoint".into(),
            files: with(
                &s.a,
                &[
                    ("wal", None),
                    ("tile/entries/002", Some(s.c["tile/entries/002"].clone())),
                    (
                        "tile/entries/003.p/37",
                        Some(s.c["tile/entries/003.p/37"].clone()),
                    ),
                ],
            ),
            want: Want::Opens(805, 600),
            check: Some(Box::new(|_, dir| {
                assert!(!dir.join("tile/entries/002.p").exists())
            })),
        },
    ];
    run(&s, rows);
}

// src/ledger.rs, "Durability order", `publish_checkpoint` steps 1–4
// (checkpoint 600 → 805 over the entries of `B`).
#[test]
fn crashes_during_publish_checkpoint() {
    let s = build();
    // After step 1: C's bundles and tiles with B's state, checkpoint, WAL.
    let step1 = with(
        &s.c,
        &[
            ("state", Some(s.b["state"].clone())),
            ("checkpoint", Some(s.b["checkpoint"].clone())),
            ("wal", Some(s.b["wal"].clone())),
        ],
    );
    let step2 = with(&step1, &[("state", Some(s.c["state"].clone()))]);
    let step3 = with(&s.c, &[("wal", Some(s.b["wal"].clone()))]);
    let rows = vec![
        Row {
            name: "p1 full bundle 002 still a .tmp".into(),
            files: with(
                &s.b,
                &[(
                    "tile/entries/002.tmp",
                    Some(s.c["tile/entries/002"][..1000].to_vec()),
                )],
            ),
            want: Want::Opens(805, 600),
            check: None,
        },
        // 002 renamed and its directory fsynced (ordered before the
        // partial); 003.p/37 still a temp file; 002.p not yet removed.
        Row {
            name: "p2 002 renamed, 003.p/37 still a .tmp".into(),
            files: with(
                &s.b,
                &[
                    ("tile/entries/002", Some(s.c["tile/entries/002"].clone())),
                    (
                        "tile/entries/003.p/37.tmp",
                        Some(s.c["tile/entries/003.p/37"].clone()),
                    ),
                ],
            ),
            want: Want::Opens(805, 600),
            check: Some(Box::new(|_, dir| {
                // The partials of a now-full bundle are removed (the full
                // bundle serves their prefixes).
                assert!(!dir.join("tile/entries/002.p").exists());
            })),
        },
        Row {
            name: "p3 bundles written, tiles still .tmp".into(),
            files: with(
                &s.b,
                &[
                    ("tile/entries/002", Some(s.c["tile/entries/002"].clone())),
                    (
                        "tile/entries/003.p/37",
                        Some(s.c["tile/entries/003.p/37"].clone()),
                    ),
                    ("tile/0/002.tmp", Some(s.c["tile/0/002"][..100].to_vec())),
                ],
            ),
            want: Want::Opens(805, 600),
            check: None,
        },
        // Step 1's renames are unordered: the stray partial holds entries
        // the WAL still has; it is checked against them and removed.
        Row {
            name: "p3b 003.p/37 and tiles durable, 002 not".into(),
            files: with(
                &s.b,
                &[
                    (
                        "tile/entries/003.p/37",
                        Some(s.c["tile/entries/003.p/37"].clone()),
                    ),
                    ("tile/0/002", Some(s.c["tile/0/002"].clone())),
                    ("tile/0/003.p/37", Some(s.c["tile/0/003.p/37"].clone())),
                    ("tile/1/000.p/3", Some(s.c["tile/1/000.p/3"].clone())),
                ],
            ),
            want: Want::Opens(805, 600),
            check: Some(Box::new(|_, dir| {
                assert!(!dir.join("tile/entries/003.p").exists());
            })),
        },
        // Bundles and tiles durable, partials already removed; `state` not
        // written. Recovery rewrites the hash tiles of the last checkpoint
        // (600), so tile/0/002.p/88 reappears with the right bytes.
        Row {
            name: "p4 bundles and tiles written, state not".into(),
            files: step1.clone(),
            want: Want::Opens(805, 600),
            check: Some(Box::new(|_, dir| {
                let leaves: Vec<H> = (512..600).map(|i| leaf(&entry(i))).collect();
                assert_eq!(
                    std::fs::read(dir.join("tile/0/002.p/88")).unwrap(),
                    leaves.concat()
                );
            })),
        },
        Row {
            name: "p4b bundles and tiles written, 002.p/88s not yet removed".into(),
            files: with(
                &step1,
                &[
                    ("tile/0/002.p/88", Some(s.b["tile/0/002.p/88"].clone())),
                    (
                        "tile/entries/002.p/88",
                        Some(s.b["tile/entries/002.p/88"].clone()),
                    ),
                ],
            ),
            want: Want::Opens(805, 600),
            check: None,
        },
        Row {
            name: "p5 state still a .tmp".into(),
            files: with(&step1, &[("state.tmp", Some(s.c["state"].clone()))]),
            want: Want::Opens(805, 600),
            check: None,
        },
        // State one checkpoint ahead: accepted (the bundles it names are
        // durable); its time is the clock guard from now on.
        Row {
            name: "p6 state written, checkpoint not".into(),
            files: step2.clone(),
            want: Want::Opens(805, 600),
            check: Some(Box::new(|l, _| {
                assert_eq!(l.checkpoint().unwrap().lines().nth(1), Some("600"))
            })),
        },
        Row {
            name: "p7 checkpoint still a .tmp".into(),
            files: with(
                &step2,
                &[("checkpoint.tmp", Some(s.c["checkpoint"].clone()))],
            ),
            want: Want::Opens(805, 600),
            check: None,
        },
        // Checkpoint durable, WAL reset lost: its records are all covered
        // and skipped (after checking they match the bundles).
        Row {
            name: "p8 checkpoint written, wal not reset".into(),
            files: step3.clone(),
            want: Want::Opens(805, 805),
            check: None,
        },
        // … and appends went on after it: the new record follows the old.
        Row {
            name: "p8b wal not reset, then one more append".into(),
            files: with(
                &step3,
                &[(
                    "wal",
                    Some([s.b["wal"].clone(), frame(805, &entries(805..806))].concat()),
                )],
            ),
            want: Want::Opens(806, 805),
            check: None,
        },
        Row {
            name: "p9 publish complete".into(),
            files: s.c.clone(),
            want: Want::Opens(805, 805),
            check: None,
        },
    ];
    run(&s, rows);

    // p6 again: the time written to `state` at step 2 is durable, so the
    // clock cannot go back behind it even though its checkpoint was lost.
    let tmp = tempfile::tempdir().unwrap();
    materialize(&step2, &tmp.path().join("l"));
    let mut l = Ledger::open(&tmp.path().join("l"), ORIGIN, s.f.key()).unwrap();
    assert_eq!(
        l.publish_checkpoint(2).unwrap_err().code(),
        "clock_backwards"
    );
    assert!(l.publish_checkpoint(3).unwrap().is_some());
}

// src/ledger.rs, "Recovery": states no crash of this code produces (entries
// lost or rewritten, files out of order) are refused with the documented
// code, and the refused open deletes nothing.
#[test]
fn non_crash_states_are_refused_without_destroying_evidence() {
    let s = build();
    let rows = vec![
        // `state` ahead of the bundles: the 205 entries it covers are gone
        // (bundles are durable before `state`; the WAL does not count).
        Row {
            name: "r1 state covers 805, 600 entries in bundles".into(),
            files: with(&s.b, &[("state", Some(s.c["state"].clone()))]),
            want: Want::Refuses("history_mismatch"),
            check: None,
        },
        // Partial bundle narrower than `state` (and the checkpoint).
        Row {
            name: "r2 003.p/37 replaced by a narrower 003.p/20".into(),
            files: with(
                &s.c,
                &[
                    ("tile/entries/003.p/37", None),
                    ("tile/entries/003.p/20", Some(bundle(768..788))),
                ],
            ),
            want: Want::Refuses("history_mismatch"),
            check: None,
        },
        // Same with the state one checkpoint ahead (p6's state) and the
        // WAL not reset: still more in `state` than in the bundles.
        Row {
            name: "r3 state ahead and partial narrower than state".into(),
            files: with(
                &s.c,
                &[
                    ("checkpoint", Some(s.b["checkpoint"].clone())),
                    ("wal", Some(s.b["wal"].clone())),
                    ("tile/entries/003.p/37", None),
                    ("tile/entries/003.p/20", Some(bundle(768..788))),
                ],
            ),
            want: Want::Refuses("history_mismatch"),
            check: None,
        },
        Row {
            name: "r4 partial narrower than the checkpoint".into(),
            files: with(
                &s.a,
                &[
                    ("tile/entries/002.p/88", None),
                    ("tile/entries/002.p/50", Some(bundle(512..562))),
                ],
            ),
            want: Want::Refuses("history_mismatch"),
            check: None,
        },
        Row {
            name: "r5 partial under the checkpoint missing".into(),
            files: with(&s.a, &[("tile/entries/002.p/", None)]),
            want: Want::Refuses("history_mismatch"),
            check: None,
        },
        // … even with a WAL that would supply the missing entries.
        Row {
            name: "r5b partial under the checkpoint missing, wal covers it".into(),
            files: with(
                &s.a,
                &[
                    ("tile/entries/002.p/", None),
                    ("wal", Some(frame(512, &entries(512..600)))),
                ],
            ),
            want: Want::Refuses("history_mismatch"),
            check: None,
        },
        // `state` is written before `checkpoint`, so it is never older.
        Row {
            name: "r6 state older than the checkpoint".into(),
            files: with(&s.c, &[("state", Some(s.b["state"].clone()))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "r7 state missing next to a checkpoint".into(),
            files: with(&s.c, &[("state", None)]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "r8 state malformed".into(),
            files: with(
                &s.c,
                &[("state", Some(b"custos-ledger-state v1\nsize".to_vec()))],
            ),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        Row {
            name: "r9 checkpoint garbled".into(),
            files: with(&s.c, &[("checkpoint", Some(b"not a note\n".to_vec()))]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        // A full bundle past a missing one that a checkpoint covers.
        Row {
            name: "r10 full bundle 002 present, 001 missing".into(),
            files: with(&s.c, &[("tile/entries/001", None)]),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
        // A stray bundle (past the last complete one) holding entries
        // neither the bundles nor the WAL have.
        Row {
            name: "r11 stray 003.p/37 without the wal records it came from".into(),
            files: with(
                &s.a,
                &[(
                    "tile/entries/003.p/37",
                    Some(s.c["tile/entries/003.p/37"].clone()),
                )],
            ),
            want: Want::Refuses("ledger_corrupt"),
            check: None,
        },
    ];
    run(&s, rows);
}
