//! Offline checks: tlog-proof, cosignatures, whole-ledger verification.

mod common;

use base64::prelude::*;
use common::*;
use custos_ledger::{DirSource, VerifyError, check_proof, check_proof_for_entry, verify};
use ed25519_dalek::{Signer, SigningKey};

// ---- C2SP tlog-proof ----

#[test]
fn tlog_proof_round_trips_and_tampering_fails() {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 300);
    assert_eq!(l.tlog_proof(0).unwrap_err().code(), "out_of_range");
    l.publish_checkpoint(1).unwrap();
    let vk = l.verifier_key();
    let text = l.tlog_proof(123).unwrap();

    // C2SP tlog-proof "Format": header, extra, index, hashes, blank, checkpoint.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "c2sp.org/tlog-proof@v1");
    assert_eq!(
        lines[1],
        format!("extra {}", BASE64_STANDARD.encode(entry(123)))
    );
    assert_eq!(lines[2], "index 123");
    let proof = l.inclusion_proof(123, 300).unwrap();
    for (i, h) in proof.iter().enumerate() {
        assert_eq!(lines[3 + i], BASE64_STANDARD.encode(h));
    }
    assert_eq!(lines[3 + proof.len()], "");
    assert!(text.ends_with(&l.checkpoint().unwrap()));

    let c = check_proof(&text, &vk).unwrap();
    assert_eq!(c.index, 123);
    assert_eq!(c.entry.as_deref(), Some(&entry(123)[..]));
    assert_eq!(c.size, 300);
    assert_eq!(c.root, l.root_at(300).unwrap());

    // Changed entry, index, proof hash, checkpoint, key: all fail.
    let other_extra = text.replace(
        &BASE64_STANDARD.encode(entry(123)),
        &BASE64_STANDARD.encode(b"forged"),
    );
    assert_eq!(
        check_proof(&other_extra, &vk).unwrap_err().code(),
        "bad_proof"
    );
    let other_index = text.replace("index 123", "index 124");
    assert_eq!(
        check_proof(&other_index, &vk).unwrap_err().code(),
        "bad_proof"
    );
    let h = BASE64_STANDARD.encode(proof[2]);
    let bad_hash = text.replace(&h, &BASE64_STANDARD.encode([7u8; 32]));
    assert_eq!(check_proof(&bad_hash, &vk).unwrap_err().code(), "bad_proof");
    let cp_size = text.replace("\n300\n", "\n301\n");
    assert_eq!(
        check_proof(&cp_size, &vk).unwrap_err().code(),
        "bad_signature"
    );
    let other_key = "custos.test/ledger+00000000+AQ==";
    assert!(check_proof(&text, other_key).is_err());
    assert_eq!(
        check_proof("garbage", &vk).unwrap_err().code(),
        "bad_proof_format"
    );
    assert_eq!(
        check_proof(&text.replace("index 123", "index 0123"), &vk)
            .unwrap_err()
            .code(),
        "bad_proof_format"
    );

    // Without the extra line the caller supplies the entry.
    let no_extra: String = text
        .lines()
        .filter(|l| !l.starts_with("extra "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(check_proof(&no_extra, &vk).is_err());
    let c = check_proof_for_entry(&no_extra, &vk, &entry(123)).unwrap();
    assert_eq!((c.index, c.entry), (123, None));
    assert!(check_proof_for_entry(&no_extra, &vk, b"nope").is_err());
}

// ---- C2SP tlog-cosignature (Ed25519 cosignature/v1) ----

fn witness(name: &str, seed: u8) -> (SigningKey, String) {
    let sk = SigningKey::from_bytes(&[seed; 32]);
    let mut material = vec![0x04];
    material.extend_from_slice(&sk.verifying_key().to_bytes());
    let id = signed_note::key_id(name, &material);
    let vkey = format!("{name}+{id:08x}+{}", BASE64_STANDARD.encode(&material));
    (sk, vkey)
}

/// A cosignature line over `body` at `ts`, written from the spec text.
fn cosign(name: &str, sk: &SigningKey, body: &str, ts: u64) -> String {
    let mut material = vec![0x04];
    material.extend_from_slice(&sk.verifying_key().to_bytes());
    let id = signed_note::key_id(name, &material);
    let msg = format!("cosignature/v1\ntime {ts}\n{body}");
    let sig = sk.sign(msg.as_bytes());
    let mut blob = id.to_be_bytes().to_vec();
    blob.extend_from_slice(&ts.to_be_bytes());
    blob.extend_from_slice(&sig.to_bytes());
    format!("— {name} {}\n", BASE64_STANDARD.encode(blob))
}

fn body_of(note: &str) -> String {
    note.split_once("\n\n").unwrap().0.to_owned() + "\n"
}

/// Found by fuzzing the cosignature parser: a note with a
/// witness's genuine cosignature followed by a second, garbage, line under the same
/// name and key id was taken, because only the first signature of a key is checked.
#[test]
fn a_second_line_by_one_witness_is_refused_checked_or_not() {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 10);
    let cp = l.publish_checkpoint(1).unwrap().unwrap();
    let body = body_of(&cp);
    let (w1, w1_vk) = witness("witness.one.example/w", 1);
    let keys = vec![w1_vk];
    let line1 = cosign("witness.one.example/w", &w1, &body, 1_700_000_000);
    // Same name and key id (the blob's first four bytes), then a timestamp and 64 bytes
    // no key signed.
    let mut blob = BASE64_STANDARD
        .decode(line1.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    for b in &mut blob[4..] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let garbage = format!(
        "— witness.one.example/w {}\n",
        BASE64_STANDARD.encode(&blob)
    );
    // The same line twice is refused as well: no key signs twice.
    for note in [
        format!("{cp}{line1}{garbage}"),
        format!("{cp}{line1}{line1}"),
    ] {
        let err = l.add_cosignature(&note, &keys).unwrap_err();
        assert_eq!(err.code(), "bad_signature", "{note}");
    }
    assert_eq!(l.checkpoint().unwrap(), cp, "nothing was stored");
    // A garbage line first is refused as before (the first line of a key is checked).
    let err = l
        .add_cosignature(&format!("{cp}{garbage}{line1}"), &keys)
        .unwrap_err();
    assert_eq!(err.code(), "bad_signature");
    l.add_cosignature(&format!("{cp}{line1}"), &keys).unwrap();
}

#[test]
fn cosignatures_from_configured_witnesses_only() {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 10);
    let cp = l.publish_checkpoint(1).unwrap().unwrap();
    let body = body_of(&cp);
    let (w1, w1_vk) = witness("witness.one.example/w", 1);
    let (w2, w2_vk) = witness("witness.two.example/w", 2);
    let (stranger, _) = witness("stranger.example/w", 3);
    let keys = vec![w1_vk.clone(), w2_vk.clone()];

    let line1 = cosign("witness.one.example/w", &w1, &body, 1_700_000_000);
    l.add_cosignature(&format!("{cp}{line1}"), &keys).unwrap();
    let served = l.checkpoint().unwrap();
    assert_eq!(served, format!("{cp}{line1}"));
    assert_eq!(
        l.resource("checkpoint").unwrap().unwrap(),
        served.as_bytes()
    );

    // A second witness adds to the first; both survive a reopen.
    let line2 = cosign("witness.two.example/w", &w2, &body, 1_700_000_001);
    l.add_cosignature(&format!("{cp}{line2}"), &keys).unwrap();
    assert_eq!(l.checkpoint().unwrap(), format!("{cp}{line1}{line2}"));

    // Re-posts add nothing and write nothing: the plain checkpoint, or one carrying
    // cosignatures the ledger holds already, in any order.
    let file = f.dir().join("checkpoint");
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for repost in [
        cp.clone(),
        format!("{cp}{line1}"),
        format!("{cp}{line2}{line1}"),
    ] {
        let err = l.add_cosignature(&repost, &keys).unwrap_err();
        assert_eq!(err.code(), "no_new_cosignature", "{repost}");
    }
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(l.checkpoint().unwrap(), format!("{cp}{line1}{line2}"));
    // With no witness configured, nothing is ever accepted.
    assert!(l.add_cosignature(&cp, &[]).is_err());

    // Unknown witness.
    let bad = cosign("stranger.example/w", &stranger, &body, 1_700_000_000);
    let err = l.add_cosignature(&format!("{cp}{bad}"), &keys).unwrap_err();
    assert_eq!(err.code(), "unknown_witness");
    // Configured name, wrong signature (signed a different time than stated).
    let forged = cosign("witness.one.example/w", &w1, &body, 5);
    let mut blob = BASE64_STANDARD
        .decode(forged.trim_end().rsplit(' ').next().unwrap())
        .unwrap();
    blob[11] ^= 1; // timestamp byte
    let forged = format!("— witness.one.example/w {}\n", BASE64_STANDARD.encode(blob));
    let err = l
        .add_cosignature(&format!("{cp}{forged}"), &keys)
        .unwrap_err();
    assert_eq!(err.code(), "bad_signature");
    // A checkpoint this log did not sign.
    let fake_body = body.replace("\n10\n", "\n11\n");
    let unsigned = format!(
        "{fake_body}\n{}",
        cosign("witness.one.example/w", &w1, &fake_body, 1)
    );
    assert!(l.add_cosignature(&unsigned, &keys).is_err());
    assert_eq!(l.checkpoint().unwrap(), format!("{cp}{line1}{line2}"));

    // Persisted, and still a valid log checkpoint for verifiers.
    drop(l);
    let l = f.open();
    assert_eq!(l.checkpoint().unwrap(), format!("{cp}{line1}{line2}"));
    verify(&DirSource::new(f.dir()), &l.verifier_key(), None).unwrap();
    let mut l = l;
    l.append(&[b"next".to_vec()]).unwrap();
    l.publish_checkpoint(2).unwrap();
    // An older checkpoint cannot be cosigned any more.
    let err = l
        .add_cosignature(&format!("{cp}{line1}"), &keys)
        .unwrap_err();
    assert_eq!(err.code(), "stale_checkpoint");
}

// ---- verify(): tamper detection on a copy of the directory ----

struct Log {
    f: Fixture,
    vk: String,
    /// Saved signed checkpoints, in order.
    saved: Vec<String>,
}

/// 300 entries with a checkpoint, then 600 with another.
fn make_log() -> Log {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 300);
    let cp1 = l.publish_checkpoint(1).unwrap().unwrap();
    fill(&mut l, 300, 600);
    let cp2 = l.publish_checkpoint(2).unwrap().unwrap();
    let vk = l.verifier_key();
    drop(l);
    Log {
        f,
        vk,
        saved: vec![cp1, cp2],
    }
}

fn run(log: &Log, previous: Option<usize>) -> Result<custos_ledger::VerifyReport, VerifyError> {
    verify(
        &DirSource::new(log.f.dir()),
        &log.vk,
        previous.map(|i| log.saved[i].as_str()),
    )
}

fn edit_bundle(log: &Log, rel: &str, edit: impl FnOnce(&mut Vec<Vec<u8>>)) {
    let p = log.f.path(rel);
    let mut es = decode_bundle(&std::fs::read(&p).unwrap());
    edit(&mut es);
    std::fs::write(&p, encode_bundle(&es)).unwrap();
}

#[test]
fn verify_accepts_an_untouched_log_and_proves_consistency() {
    let log = make_log();
    let r = run(&log, None).unwrap();
    assert_eq!(
        (r.size, r.previous_size, r.consistent_with_previous),
        (600, None, false)
    );
    let leaves: Vec<H> = (0..600).map(|i| leaf(&entry(i))).collect();
    assert_eq!(r.root, mth(&leaves));
    let r = run(&log, Some(0)).unwrap();
    assert_eq!(r.previous_size, Some(300));
    assert!(r.consistent_with_previous);
    // Partial bundle 001.p/44 of the first checkpoint was kept (C2SP
    // tlog-tiles: partials of checkpointed sizes stay until the full exists)
    // and then removed once 001 became full.
    assert!(!log.f.path("tile/entries/001.p").exists());
}

#[test]
fn verify_names_a_changed_entry() {
    let log = make_log();
    edit_bundle(&log, "tile/entries/001", |es| es[77] = b"changed".to_vec());
    let err = run(&log, None).unwrap_err();
    assert_eq!(err.code(), "tile_mismatch", "{err}");
    assert_eq!(err.first_bad_index(), Some(256 + 77));
}

#[test]
fn verify_names_the_first_of_two_swapped_entries() {
    let log = make_log();
    edit_bundle(&log, "tile/entries/000", |es| es.swap(10, 200));
    let err = run(&log, None).unwrap_err();
    assert_eq!(err.code(), "tile_mismatch");
    assert_eq!(err.first_bad_index(), Some(10));
}

#[test]
fn verify_detects_removed_entries() {
    let log = make_log();
    std::fs::remove_file(log.f.path("tile/entries/002.p/88")).unwrap();
    let err = run(&log, None).unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert_eq!(err.first_bad_index(), Some(512));
}

#[test]
fn verify_detects_truncation_with_rollback_to_an_older_checkpoint() {
    let log = make_log();
    // Attacker drops entries 300.. and puts back the older signed checkpoint.
    for p in ["tile/entries/001", "tile/entries/002.p/88"] {
        std::fs::remove_file(log.f.path(p)).unwrap();
    }
    let b = log.f.path("tile/entries/001.p/44");
    write(
        &b,
        &encode_bundle(&(256..300).map(entry).collect::<Vec<_>>()),
    );
    std::fs::write(log.f.path("checkpoint"), &log.saved[0]).unwrap();
    // Alone it is a valid smaller log…
    assert_eq!(run(&log, None).unwrap().size, 300);
    // …but a verifier that saved the later checkpoint sees the rollback.
    let err = run(&log, Some(1)).unwrap_err();
    assert_eq!(err.code(), "rollback");
    assert_eq!(err.first_bad_index(), Some(300));
}

#[test]
fn verify_detects_rollback_of_the_checkpoint_alone() {
    let log = make_log();
    std::fs::write(log.f.path("checkpoint"), &log.saved[0]).unwrap();
    assert_eq!(run(&log, Some(1)).unwrap_err().code(), "rollback");
}

#[test]
fn verify_detects_a_rewrite_with_recomputed_tiles() {
    let log = make_log();
    // Rewrite entry 5 and recompute every hash tile consistently: only the
    // signed root can catch it.
    edit_bundle(&log, "tile/entries/000", |es| es[5] = b"rewritten".to_vec());
    let mut entries: Vec<Vec<u8>> = (0..600).map(entry).collect();
    entries[5] = b"rewritten".to_vec();
    let leaves: Vec<H> = entries.iter().map(|e| leaf(e)).collect();
    std::fs::write(log.f.path("tile/0/000"), leaves[..256].concat()).unwrap();
    let l1 = [mth(&leaves[..256]), mth(&leaves[256..512])].concat();
    std::fs::write(log.f.path("tile/1/000.p/2"), l1).unwrap();
    let err = run(&log, None).unwrap_err();
    assert_eq!(err.code(), "root_mismatch", "{err}");
    // Rewriting the level-0 tile alone is caught at level 1, near the entry.
    let log = make_log();
    edit_bundle(&log, "tile/entries/000", |es| es[5] = b"rewritten".to_vec());
    std::fs::write(log.f.path("tile/0/000"), leaves[..256].concat()).unwrap();
    let err = run(&log, None).unwrap_err();
    assert_eq!(err.code(), "tile_mismatch");
    assert_eq!(err.first_bad_index(), Some(0));
}

#[test]
fn verify_detects_a_forged_checkpoint() {
    let log = make_log();
    let cp = std::fs::read_to_string(log.f.path("checkpoint")).unwrap();
    std::fs::write(log.f.path("checkpoint"), cp.replace("\n600\n", "\n599\n")).unwrap();
    assert_eq!(run(&log, None).unwrap_err().code(), "bad_signature");
    std::fs::remove_file(log.f.path("checkpoint")).unwrap();
    assert_eq!(run(&log, None).unwrap_err().code(), "bad_checkpoint");
}

#[test]
fn verify_survives_garbage_tiles_without_panicking() {
    let log = make_log();
    std::fs::write(log.f.path("tile/entries/002.p/88"), [0xff, 0xff, 1]).unwrap();
    let err = run(&log, None).unwrap_err();
    assert_eq!(err.code(), "ledger_corrupt");
    assert_eq!(err.first_bad_index(), Some(512));
    let log = make_log();
    std::fs::write(log.f.path("tile/0/001"), [1, 2, 3]).unwrap();
    let err = run(&log, None).unwrap_err();
    assert_eq!(err.code(), "tile_mismatch");
    assert_eq!(err.first_bad_index(), Some(256));
}

// No panics reachable from input: arbitrary bytes as proofs, notes, paths.
#[test]
fn garbage_inputs_give_errors_not_panics() {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 5);
    let cp = l.publish_checkpoint(1).unwrap().unwrap();
    let vk = l.verifier_key();
    let proof = l.tlog_proof(3).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"tile/entries/x0123456789.p/\n \xe2\x80\x94+=checkpointabcAZ";
    for round in 0..500 {
        let base = if round % 2 == 0 { &proof } else { &cp };
        let mut bytes = base.as_bytes().to_vec();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() as usize) % bytes.len();
            bytes[i] = alphabet[(next() as usize) % alphabet.len()];
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = check_proof(&text, &vk);
        let _ = check_proof_for_entry(&text, &vk, b"e");
        let _ = l.add_cosignature(&text, std::slice::from_ref(&vk));
        let len = (next() % 40) as usize;
        let path: String = (0..len)
            .map(|_| alphabet[(next() as usize) % 28] as char)
            .collect();
        let _ = l.resource(&path);
    }
    assert_eq!(l.checkpoint().unwrap(), cp);
}
