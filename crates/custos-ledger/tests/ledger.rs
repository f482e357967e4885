//! Ledger behaviour on real files in temp dirs.

mod common;

use common::*;
use custos_ledger::{Ledger, LedgerKey};

// RFC 6962 §2.1 via C2SP tlog-tiles "Merkle Tree": the crate's roots equal an
// independent implementation for every size 0..=600 (crossing the 256-entry
// tile boundaries twice).
#[test]
fn roots_match_independent_rfc6962_for_sizes_0_to_600() {
    let f = Fixture::new();
    let mut l = f.open();
    assert_eq!(l.root_at(0).unwrap(), mth(&[]));
    fill(&mut l, 0, 600);
    let leaves: Vec<H> = (0..600).map(|i| leaf(&entry(i))).collect();
    for s in 0..=600u64 {
        assert_eq!(
            l.root_at(s).unwrap(),
            mth(&leaves[..s as usize]),
            "size {s}"
        );
    }
    assert_eq!(l.root_at(601).unwrap_err().code(), "out_of_range");
}

// RFC 9162 §2.1.3 / §2.1.4: proofs from the crate verify with an independent
// verifier, and fail for the wrong leaf or root.
#[test]
fn inclusion_and_consistency_proofs_verify() {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 530);
    let leaves: Vec<H> = (0..530).map(|i| leaf(&entry(i))).collect();
    let sizes = [1u64, 2, 3, 7, 8, 9, 255, 256, 257, 300, 511, 512, 513, 530];
    for &size in &sizes {
        let root = mth(&leaves[..size as usize]);
        for index in (0..size).step_by(7).chain([size - 1]) {
            let p = l.inclusion_proof(index, size).unwrap();
            assert!(
                verify_inclusion(index, size, leaves[index as usize], &p, root),
                "inclusion {index} in {size}"
            );
            assert!(!verify_inclusion(index, size, leaf(b"other"), &p, root));
        }
        for &old in sizes.iter().filter(|&&o| o <= size) {
            let p = l.consistency_proof(old, size).unwrap();
            let old_root = mth(&leaves[..old as usize]);
            assert!(
                verify_consistency(old, size, old_root, root, &p),
                "consistency {old} -> {size}"
            );
            if old < size {
                assert!(!verify_consistency(old, size, leaf(b"x"), root, &p));
            }
        }
    }
    assert_eq!(l.inclusion_proof(5, 5).unwrap_err().code(), "out_of_range");
    assert_eq!(
        l.inclusion_proof(0, 531).unwrap_err().code(),
        "out_of_range"
    );
    assert_eq!(
        l.consistency_proof(10, 9).unwrap_err().code(),
        "out_of_range"
    );
}

// C2SP tlog-tiles "Merkle Tree", "Partial Tiles", "Log entries": the files on
// disk (and what `resource` serves) are exactly the spec's tiles and bundles.
#[test]
fn tiles_and_bundles_on_disk_follow_the_spec() {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 600);
    l.publish_checkpoint(1_000).unwrap().unwrap();
    let leaves: Vec<H> = (0..600).map(|i| leaf(&entry(i))).collect();

    let t0 = std::fs::read(f.path("tile/0/000")).unwrap();
    assert_eq!(t0.len(), 8192);
    assert_eq!(t0, leaves[..256].concat());
    let t2 = std::fs::read(f.path("tile/0/002.p/88")).unwrap();
    assert_eq!(t2, leaves[512..600].concat());
    // Level 1 hashes are MTHs of full level-0 tiles; 2 full ones so far.
    let t1 = std::fs::read(f.path("tile/1/000.p/2")).unwrap();
    assert_eq!(t1, [mth(&leaves[..256]), mth(&leaves[256..512])].concat());

    let b1 = std::fs::read(f.path("tile/entries/001")).unwrap();
    assert_eq!(
        decode_bundle(&b1),
        (256..512).map(entry).collect::<Vec<_>>()
    );
    let b2 = std::fs::read(f.path("tile/entries/002.p/88")).unwrap();
    assert_eq!(
        decode_bundle(&b2),
        (512..600).map(entry).collect::<Vec<_>>()
    );
    // Partials superseded before any checkpoint are not kept around.
    assert!(!f.path("tile/entries/000.p").exists());
    assert_eq!(
        std::fs::read_dir(f.path("tile/entries/002.p"))
            .unwrap()
            .count(),
        1
    );

    // Served bytes equal the files.
    assert_eq!(l.resource("tile/0/000").unwrap().unwrap(), t0);
    assert_eq!(l.resource("tile/entries/002.p/88").unwrap().unwrap(), b2);
    assert_eq!(
        l.resource("checkpoint").unwrap().unwrap(),
        l.checkpoint().unwrap().into_bytes()
    );
    // A deleted partial whose full tile exists is served as its prefix.
    assert_eq!(
        l.resource("tile/0/000.p/5").unwrap().unwrap(),
        leaves[..5].concat()
    );
    assert_eq!(
        decode_bundle(&l.resource("tile/entries/001.p/3").unwrap().unwrap()),
        (256..259).map(entry).collect::<Vec<_>>()
    );
    // Beyond the checkpoint: not found. Entries appended since are durable
    // in the WAL only; their bundle and tiles appear with the next
    // checkpoint (C2SP tlog-tiles clients only fetch what one covers).
    assert!(l.resource("tile/entries/002.p/89").unwrap().is_none());
    assert!(l.resource("tile/entries/003").unwrap().is_none());
    l.append(&[b"x".to_vec()]).unwrap();
    assert!(l.resource("tile/0/002.p/89").unwrap().is_none());
    assert!(l.resource("tile/entries/002.p/89").unwrap().is_none());
    assert!(!f.path("tile/entries/002.p/89").exists());
    assert_eq!(l.entry(600).unwrap().unwrap(), b"x");
    l.publish_checkpoint(2_000).unwrap().unwrap();
    assert!(l.resource("tile/0/002.p/89").unwrap().is_some());
    let b89 = l.resource("tile/entries/002.p/89").unwrap().unwrap();
    assert_eq!(decode_bundle(&b89).last().unwrap(), b"x");
    // The older checkpoint's partial stays until bundle 002 is full.
    assert_eq!(l.resource("tile/entries/002.p/88").unwrap().unwrap(), b2);

    for bad in [
        "../ledger.key",
        "/etc/passwd",
        "tile/0/../../ledger.key",
        "state",
        "lock",
        "wal",
        "tile/00/000",
        "tile/0/x000/000",
        "tile/entries/000.p/0",
        "tile/0/000.p/256",
    ] {
        assert_eq!(l.resource(bad).unwrap_err().code(), "invalid_path", "{bad}");
    }
}

#[test]
fn reopen_after_append_gives_the_same_state() {
    let f = Fixture::new();
    let (root, cp, proof) = {
        let mut l = f.open();
        fill(&mut l, 0, 300);
        l.publish_checkpoint(5).unwrap();
        fill(&mut l, 300, 333);
        (
            l.root_at(333).unwrap(),
            l.checkpoint().unwrap(),
            l.inclusion_proof(17, 333).unwrap(),
        )
    };
    let l = f.open();
    assert_eq!(l.size(), 333);
    assert_eq!(l.checkpoint_size(), 300);
    assert_eq!(l.root_at(333).unwrap(), root);
    assert_eq!(l.checkpoint().unwrap(), cp);
    assert_eq!(l.inclusion_proof(17, 333).unwrap(), proof);
    let all = l.entries(0, 10_000).unwrap();
    assert_eq!(all.len(), 333);
    for (i, e) in all {
        assert_eq!(e, entry(i));
    }
    assert_eq!(l.entry(332).unwrap().unwrap(), entry(332));
    assert!(l.entry(333).unwrap().is_none());
    let page = l.entries(250, 10).unwrap();
    assert_eq!(
        page.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        (250..260).collect::<Vec<_>>()
    );
}

#[test]
fn one_writer_per_directory() {
    let f = Fixture::new();
    let _l = f.open();
    assert_eq!(f.try_open().unwrap_err().code(), "ledger_locked");
}

#[test]
fn oversized_entry_is_rejected_and_changes_nothing() {
    let f = Fixture::new();
    let mut l = f.open();
    l.append(&[vec![1; 65535]]).unwrap();
    let err = l.append(&[b"ok".to_vec(), vec![0; 65536]]).unwrap_err();
    assert_eq!(err.code(), "entry_too_large");
    assert_eq!(l.size(), 1);
    drop(l);
    assert_eq!(f.open().size(), 1);
}

// Crash states. The durability order is documented in src/ledger.rs.
#[test]
fn crash_leftover_temp_file_is_removed() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 10);
    }
    // A crash between write and rename of the next batch.
    write(&f.path("tile/entries/000.p/11.tmp"), b"\x00\x05half");
    write(&f.path("checkpoint.tmp"), b"junk");
    let l = f.open();
    assert_eq!(l.size(), 10);
    assert!(!f.path("tile/entries/000.p/11.tmp").exists());
    assert!(!f.path("checkpoint.tmp").exists());
}

// Appends after the checkpoint live in the WAL; `fill(20, 30)` appends
// 20..21, 21..25, 25..30, so the last frame holds 25..30.
#[test]
fn torn_wal_tail_after_checkpoint_is_discarded() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 20);
        l.publish_checkpoint(1).unwrap();
        fill(&mut l, 20, 30);
    }
    // The last append was cut short by a crash (never acknowledged).
    let p = f.path("wal");
    let d = std::fs::read(&p).unwrap();
    std::fs::write(&p, &d[..d.len() - 3]).unwrap();
    let mut l = f.open();
    assert_eq!(l.size(), 25);
    assert_eq!(l.entry(24).unwrap().unwrap(), entry(24));
    // The torn frame was cut off the file.
    let cut = std::fs::read(&p).unwrap();
    assert!(cut.len() < d.len() - 3 && d.starts_with(&cut));
    // The log continues cleanly from there.
    fill(&mut l, 25, 40);
    l.publish_checkpoint(2).unwrap();
    assert_eq!(std::fs::read(&p).unwrap().len(), 0);
    assert_eq!(
        custos_ledger::verify(
            &custos_ledger::DirSource::new(f.dir()),
            &l.verifier_key(),
            None
        )
        .unwrap()
        .size,
        40
    );
    drop(l);
    assert_eq!(f.open().size(), 40);
}

// Undetectable by design (documented in src/ledger.rs): `state` only records
// checkpointed sizes, so deleting the WAL loses the entries appended since
// the last checkpoint without a trace.
#[test]
fn removed_wal_after_checkpoint_loses_only_uncheckpointed_entries() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 20);
        l.publish_checkpoint(1).unwrap();
        fill(&mut l, 20, 30);
    }
    std::fs::remove_file(f.path("wal")).unwrap();
    let l = f.open();
    assert_eq!(l.size(), 20);
    // Recreated empty.
    assert_eq!(std::fs::read(f.path("wal")).unwrap().len(), 0);
}

#[test]
fn truncated_or_removed_bundle_covered_by_checkpoint_refuses_to_open() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 30);
        l.publish_checkpoint(1).unwrap();
    }
    let p = f.path("tile/entries/000.p/30");
    let d = std::fs::read(&p).unwrap();
    std::fs::write(&p, &d[..d.len() - 1]).unwrap();
    let err = f.try_open().unwrap_err();
    assert_eq!(err.code(), "history_mismatch", "{err}");
    // Evidence is not destroyed by the refused open.
    assert!(p.exists());
    std::fs::remove_file(&p).unwrap();
    assert_eq!(f.try_open().unwrap_err().code(), "history_mismatch");
}

#[test]
fn rewritten_entry_under_checkpoint_refuses_to_open() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 300);
        l.publish_checkpoint(1).unwrap();
    }
    let p = f.path("tile/entries/000");
    let mut es = decode_bundle(&std::fs::read(&p).unwrap());
    es[42] = b"rewritten".to_vec();
    std::fs::write(&p, encode_bundle(&es)).unwrap();
    assert_eq!(f.try_open().unwrap_err().code(), "history_mismatch");
}

// A publish writes bundles and tiles in one batch whose renames may become
// durable in any order, so a crash can leave a later bundle without an
// earlier one. Such strays hold entries the WAL still has: they are checked
// against the recovered entries and removed. A stray holding anything else
// is refused (src/ledger.rs, "Recovery").
#[test]
fn stray_bundles_past_the_last_complete_one() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 300);
    }
    // The publish at 300 crashed with only 001.p/44 durable.
    let p44 = encode_bundle(&(256..300).map(entry).collect::<Vec<_>>());
    write(&f.path("tile/entries/001.p/44"), &p44);
    let mut l = f.open();
    assert_eq!(l.size(), 300);
    assert!(!f.path("tile/entries/001.p").exists());
    l.publish_checkpoint(1).unwrap();
    drop(l);
    let l = f.open();
    assert_eq!(l.entry(257).unwrap().unwrap(), entry(257));
    assert_eq!(std::fs::read(f.path("tile/entries/001.p/44")).unwrap(), p44);
    custos_ledger::verify(
        &custos_ledger::DirSource::new(f.dir()),
        &l.verifier_key(),
        None,
    )
    .unwrap();
    drop(l);
    // A stray with entries the ledger does not have: refused, kept.
    let stale: Vec<Vec<u8>> = (0..4).map(|i| format!("stale{i}").into_bytes()).collect();
    write(&f.path("tile/entries/002.p/4"), &encode_bundle(&stale));
    assert_eq!(f.try_open().unwrap_err().code(), "ledger_corrupt");
    assert!(f.path("tile/entries/002.p/4").exists());
}

#[test]
fn missing_full_bundle_in_the_middle_refuses_to_open() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 600);
        l.publish_checkpoint(1).unwrap();
    }
    std::fs::remove_file(f.path("tile/entries/000")).unwrap();
    assert_eq!(f.try_open().unwrap_err().code(), "ledger_corrupt");
}

#[test]
fn deleted_or_damaged_hash_tiles_are_recomputed() {
    let f = Fixture::new();
    let (t0, t1) = {
        let mut l = f.open();
        fill(&mut l, 0, 600);
        l.publish_checkpoint(1).unwrap();
        (
            std::fs::read(f.path("tile/0/001")).unwrap(),
            std::fs::read(f.path("tile/1/000.p/2")).unwrap(),
        )
    };
    std::fs::remove_file(f.path("tile/0/001")).unwrap();
    std::fs::write(f.path("tile/1/000.p/2"), b"short").unwrap();
    let l = f.open();
    assert_eq!(std::fs::read(f.path("tile/0/001")).unwrap(), t0);
    assert_eq!(std::fs::read(f.path("tile/1/000.p/2")).unwrap(), t1);
    custos_ledger::verify(
        &custos_ledger::DirSource::new(f.dir()),
        &l.verifier_key(),
        None,
    )
    .unwrap();
}

#[test]
fn deleted_checkpoint_state_is_detected() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 10);
        l.publish_checkpoint(1).unwrap();
    }
    std::fs::remove_file(f.path("state")).unwrap();
    assert_eq!(f.try_open().unwrap_err().code(), "ledger_corrupt");
}

#[test]
fn checkpoint_from_another_key_refuses_to_open() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        fill(&mut l, 0, 10);
        l.publish_checkpoint(1).unwrap();
    }
    let other = tempfile::tempdir().unwrap();
    let (k2, _) = LedgerKey::load_or_create(&other.path().join("k"), ORIGIN).unwrap();
    let mut l2 = Ledger::open(&other.path().join("l"), ORIGIN, k2).unwrap();
    fill(&mut l2, 0, 10);
    let forged = l2.publish_checkpoint(1).unwrap().unwrap();
    std::fs::write(f.path("checkpoint"), forged).unwrap();
    assert_eq!(f.try_open().unwrap_err().code(), "ledger_corrupt");
}

// Checkpoints: clock going backwards is refused, durably.
#[test]
fn clock_backwards_is_refused_even_after_reopen() {
    let f = Fixture::new();
    {
        let mut l = f.open();
        // An empty log still gets a first checkpoint.
        assert!(l.publish_checkpoint(1_000).unwrap().is_some());
        assert!(l.publish_checkpoint(1_000).unwrap().is_none());
        l.append(&[b"a".to_vec()]).unwrap();
        let err = l.publish_checkpoint(999).unwrap_err();
        assert_eq!(err.code(), "clock_backwards");
        l.publish_checkpoint(2_000).unwrap().unwrap();
    }
    let mut l = f.open();
    l.append(&[b"b".to_vec()]).unwrap();
    assert_eq!(
        l.publish_checkpoint(1_999).unwrap_err().code(),
        "clock_backwards"
    );
    assert!(l.publish_checkpoint(2_000).unwrap().is_some());
}

// Append-only: every pair of checkpoints ever signed is joined by a
// consistency proof (RFC 9162 §2.1.4), and the checkpoint body is C2SP
// tlog-checkpoint (origin, size, base64 root).
#[test]
fn all_checkpoints_are_pairwise_consistent() {
    let f = Fixture::new();
    let mut l = f.open();
    let mut cps: Vec<(u64, H)> = Vec::new();
    let mut t = 0;
    for target in [1u64, 5, 255, 256, 257, 400, 512, 513] {
        let from = l.size();
        fill(&mut l, from, target);
        t += 1;
        let note = l.publish_checkpoint(t).unwrap().unwrap();
        let mut lines = note.lines();
        assert_eq!(lines.next(), Some(ORIGIN));
        let size: u64 = lines.next().unwrap().parse().unwrap();
        let root = base64_decode32(lines.next().unwrap());
        assert_eq!(lines.next(), Some(""));
        assert!(lines.next().unwrap().starts_with(&format!("— {ORIGIN} ")));
        assert_eq!((size, root), (target, l.root_at(target).unwrap()));
        cps.push((size, root));
    }
    for (i, &(s1, r1)) in cps.iter().enumerate() {
        for &(s2, r2) in &cps[i..] {
            let p = l.consistency_proof(s1, s2).unwrap();
            assert!(verify_consistency(s1, s2, r1, r2, &p), "{s1} -> {s2}");
        }
    }
}

fn base64_decode32(s: &str) -> H {
    use base64::prelude::*;
    BASE64_STANDARD.decode(s).unwrap().try_into().unwrap()
}
