//! Evidence bundles built from a real ledger directory (while the ledger is
//! open and holds its lock, as a running server does) and checked offline;
//! every kind of tampering fails with its own code.

mod common;

use base64::prelude::*;
use common::*;
use custos_ledger::{
    DirSource, EVIDENCE_FORMAT, EvidenceBundle, EvidenceError, Ledger, build_bundle, check_bundle,
};
use serde_json::Value;

fn subjects(list: &[(&str, &[u64])]) -> Vec<(String, String, Vec<u64>)> {
    list.iter()
        .map(|(s, idx)| (s.to_string(), format!("claim about {s}"), idx.to_vec()))
        .collect()
}

/// A ledger of 600 entries with a checkpoint over all of them, left open.
fn ledger() -> (Fixture, Ledger, String) {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 600);
    l.publish_checkpoint(1_000).unwrap().unwrap();
    let vk = l.verifier_key();
    (f, l, vk)
}

/// Alice cites 5, 300, 599 (and 5 again); Bob cites 300 and 0.
fn bundle(f: &Fixture, vk: &str) -> EvidenceBundle {
    build_bundle(
        &DirSource::new(f.dir()),
        vk,
        subjects(&[("alice", &[599, 5, 300, 5]), ("bob", &[300, 0])]),
    )
    .unwrap()
}

fn json(b: &EvidenceBundle) -> Value {
    serde_json::to_value(b).unwrap()
}

fn check(v: &Value, vk: &str) -> Result<custos_ledger::CheckedBundle, EvidenceError> {
    check_bundle(&serde_json::to_vec(v).unwrap(), vk)
}

/// Checks `v` expecting failure; the message must not quote any entry.
fn fails(v: &Value, vk: &str) -> EvidenceError {
    let e = check(v, vk).expect_err("tampered bundle verified");
    assert!(
        !e.to_string().contains("access-event-"),
        "error quotes an entry: {e}"
    );
    e
}

/// Position in `entries` of the entry with ledger index `index`.
fn at(v: &Value, index: u64) -> usize {
    v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["index"] == index)
        .unwrap()
}

fn proof_of(v: &Value, index: u64) -> String {
    v["entries"][at(v, index)]["proof"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn set_proof(v: &mut Value, index: u64, text: String) {
    let i = at(v, index);
    v["entries"][i]["proof"] = Value::String(text);
}

/// Replaces line `n` of a text with `f(line)`.
fn edit_line(text: &str, n: usize, f: impl Fn(&str) -> String) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    lines[n] = f(&lines[n]);
    lines.join("\n")
}

/// Flips the last byte of a base64 string's decoded value.
fn flip_b64(b64: &str) -> String {
    let mut raw = BASE64_STANDARD.decode(b64).unwrap();
    *raw.last_mut().unwrap() ^= 1;
    BASE64_STANDARD.encode(raw)
}

/// The checkpoint note with one bit of its log signature flipped.
fn bad_signature(note: &str) -> String {
    let line = note.lines().find(|l| l.starts_with("— ")).unwrap();
    let (head, sig) = line.rsplit_once(' ').unwrap();
    note.replace(line, &format!("{head} {}", flip_b64(sig)))
}

// C2SP tlog-proof "Format" for every entry (the same text `Ledger::tlog_proof`
// writes), C2SP tlog-tiles "Merkle Tree" / "Partial Tiles" / "Log Entries" for
// what is read: built from the directory while the ledger holds its lock, the
// bundle verifies and yields the entries.
#[test]
fn bundle_from_the_directory_verifies() {
    let (f, l, vk) = ledger();
    let b = bundle(&f, &vk);

    assert_eq!(b.format, EVIDENCE_FORMAT);
    assert_eq!(b.origin, ORIGIN);
    assert_eq!(b.checkpoint, l.checkpoint().unwrap());
    let indexes: Vec<u64> = b.entries.iter().map(|e| e.index).collect();
    assert_eq!(indexes, [0, 5, 300, 599], "each cited entry once, in order");
    for e in &b.entries {
        assert_eq!(e.proof, l.tlog_proof(e.index).unwrap());
    }
    assert_eq!(b.subjects[0].subject, "alice");
    assert_eq!(b.subjects[0].claim, "claim about alice");
    assert_eq!(b.subjects[0].entries, [5, 300, 599]);
    assert_eq!(b.subjects[1].entries, [0, 300]);

    let text = serde_json::to_vec_pretty(&b).unwrap();
    let c = check_bundle(&text, &vk).unwrap();
    assert_eq!((c.origin.as_str(), c.size), (ORIGIN, 600));
    assert_eq!(c.root, l.root_at(600).unwrap());
    assert_eq!(c.checkpoint, b.checkpoint);
    assert_eq!(c.subjects, b.subjects);
    assert_eq!(c.entries.len(), 4);
    for (i, e) in &c.entries {
        assert_eq!(e, &entry(*i));
    }
    assert_eq!(c.entry(599), Some(&entry(599)[..]));
    assert_eq!(c.entry(1), None);

    // Tiles of a later checkpoint (partials replaced by full tiles) serve too.
    let mut l = l;
    fill(&mut l, 600, 800);
    l.publish_checkpoint(2_000).unwrap().unwrap();
    let later = build_bundle(&DirSource::new(f.dir()), &vk, subjects(&[("a", &[599])])).unwrap();
    assert_eq!(later.entries[0].proof, l.tlog_proof(599).unwrap());
    check_bundle(&serde_json::to_vec(&later).unwrap(), &vk).unwrap();
}

// C2SP tlog-proof: the `extra` data is trusted only through the inclusion
// proof, so one changed byte of an entry fails.
#[test]
fn changed_entry_byte_fails() {
    let (f, _l, vk) = ledger();
    let mut v = json(&bundle(&f, &vk));
    let p = proof_of(&v, 300);
    let forged = edit_line(&p, 1, |l| {
        format!("extra {}", flip_b64(l.strip_prefix("extra ").unwrap()))
    });
    set_proof(&mut v, 300, forged);
    let e = fails(&v, &vk);
    assert_eq!((e.code(), e.index()), ("evidence_bad_proof", Some(300)));
}

// C2SP tlog-proof "Format": the hash lines are the RFC 6962 audit path.
#[test]
fn changed_proof_hash_fails() {
    let (f, _l, vk) = ledger();
    let mut v = json(&bundle(&f, &vk));
    let p = proof_of(&v, 5);
    // Lines: header, extra, index, then the hashes.
    set_proof(&mut v, 5, edit_line(&p, 3, flip_b64));
    let e = fails(&v, &vk);
    assert_eq!((e.code(), e.index()), ("evidence_bad_proof", Some(5)));
}

// C2SP tlog-checkpoint / signed-note: the checkpoint must carry the log's
// signature, in the bundle and in every proof.
#[test]
fn changed_checkpoint_signature_fails() {
    let (f, _l, vk) = ledger();
    let good = json(&bundle(&f, &vk));
    let cp = good["checkpoint"].as_str().unwrap().to_owned();
    let forged = bad_signature(&cp);

    // Everywhere (bundle and proofs agree, all forged).
    let mut everywhere = good.clone();
    everywhere["checkpoint"] = Value::String(forged.clone());
    for e in everywhere["entries"].as_array_mut().unwrap() {
        let p = e["proof"].as_str().unwrap().replace(&cp, &forged);
        e["proof"] = Value::String(p);
    }
    assert_ne!(everywhere, good);
    assert_eq!(fails(&everywhere, &vk).code(), "evidence_bad_checkpoint");

    // Only in the bundle's checkpoint.
    let mut v = good.clone();
    v["checkpoint"] = Value::String(forged.clone());
    assert_eq!(fails(&v, &vk).code(), "evidence_bad_checkpoint");

    // Only in one proof.
    let mut v = good.clone();
    set_proof(&mut v, 599, proof_of(&good, 599).replace(&cp, &forged));
    let e = fails(&v, &vk);
    assert_eq!((e.code(), e.index()), ("evidence_bad_proof", Some(599)));

    // Another key.
    let other = "custos.test/ledger+00000000+AQ==";
    assert!(check(&good, other).is_err());
    let wrong_key =
        custos_ledger::LedgerKey::load_or_create(&f.tmp.path().join("other.key"), ORIGIN)
            .unwrap()
            .0
            .verifier_key();
    assert_eq!(fails(&good, &wrong_key).code(), "evidence_bad_checkpoint");
}

// C2SP tlog-proof "Format": an entry is proven at its index only.
#[test]
fn entry_swapped_between_indexes_fails() {
    let (f, _l, vk) = ledger();
    let good = json(&bundle(&f, &vk));
    let extra = |i| proof_of(&good, i).lines().nth(1).unwrap().to_owned();

    // The entries of 5 and 300 trade places; the rest of each proof stays.
    let mut v = good.clone();
    set_proof(
        &mut v,
        5,
        proof_of(&good, 5).replace(&extra(5), &extra(300)),
    );
    set_proof(
        &mut v,
        300,
        proof_of(&good, 300).replace(&extra(300), &extra(5)),
    );
    let e = fails(&v, &vk);
    assert_eq!((e.code(), e.index()), ("evidence_bad_proof", Some(5)));

    // Whole proofs listed under each other's index.
    let mut v = good.clone();
    set_proof(&mut v, 5, proof_of(&good, 300));
    set_proof(&mut v, 300, proof_of(&good, 5));
    let e = fails(&v, &vk);
    assert_eq!((e.code(), e.index()), ("evidence_bad_proof", Some(5)));
}

#[test]
fn dropped_duplicated_or_uncited_entries_fail() {
    let (f, _l, vk) = ledger();
    let good = json(&bundle(&f, &vk));

    let mut v = good.clone();
    let i = at(&v, 599);
    v["entries"].as_array_mut().unwrap().remove(i);
    let e = fails(&v, &vk);
    assert_eq!((e.code(), e.index()), ("evidence_missing_entry", Some(599)));

    let mut v = good.clone();
    let copy = v["entries"][at(&v, 300)].clone();
    v["entries"].as_array_mut().unwrap().push(copy);
    let e = fails(&v, &vk);
    assert_eq!(
        (e.code(), e.index()),
        ("evidence_duplicate_entry", Some(300))
    );

    // Alice no longer cites 599: the bundle would hand over an entry no claim needs.
    let mut v = good.clone();
    v["subjects"][0]["entries"] = serde_json::json!([5, 300]);
    let e = fails(&v, &vk);
    assert_eq!(
        (e.code(), e.index()),
        ("evidence_unreferenced_entry", Some(599))
    );

    let mut v = good.clone();
    v["subjects"][0]["entries"] = serde_json::json!([5, 5, 300, 599]);
    assert_eq!(fails(&v, &vk).code(), "evidence_invalid_subject");
    let mut v = good.clone();
    v["subjects"][1]["subject"] = Value::String("alice".into());
    assert_eq!(fails(&v, &vk).code(), "evidence_invalid_subject");
    let mut v = good.clone();
    v["subjects"] = serde_json::json!([]);
    v["entries"] = serde_json::json!([]);
    assert_eq!(fails(&v, &vk).code(), "evidence_invalid_subject");
}

// C2SP tlog-checkpoint: two valid checkpoints of the same log are still two
// trees; a bundle is about one.
#[test]
fn mixed_checkpoints_fail() {
    let (f, mut l, vk) = ledger();
    let first = json(&bundle(&f, &vk));
    fill(&mut l, 600, 610);
    l.publish_checkpoint(2_000).unwrap().unwrap();
    let second = json(
        &build_bundle(
            &DirSource::new(f.dir()),
            &vk,
            subjects(&[("alice", &[605])]),
        )
        .unwrap(),
    );
    // Each bundle is fine on its own.
    check(&first, &vk).unwrap();
    check(&second, &vk).unwrap();

    // Entry 605 (valid, against the newer checkpoint) spliced into the first.
    let mut v = first.clone();
    v["entries"]
        .as_array_mut()
        .unwrap()
        .push(second["entries"][0].clone());
    v["subjects"][0]["entries"] = serde_json::json!([5, 300, 599, 605]);
    let e = fails(&v, &vk);
    assert_eq!(
        (e.code(), e.index()),
        ("evidence_mixed_checkpoints", Some(605))
    );

    // The newer checkpoint put on top of the older proofs.
    let mut v = first.clone();
    v["checkpoint"] = second["checkpoint"].clone();
    let e = fails(&v, &vk);
    assert_eq!(
        (e.code(), e.index()),
        ("evidence_mixed_checkpoints", Some(0))
    );
}

#[test]
fn malformed_bundles_fail() {
    let (f, _l, vk) = ledger();
    let good = json(&bundle(&f, &vk));
    for bad in [&b"not json"[..], b"{}", b"[]", b""] {
        assert_eq!(
            check_bundle(bad, &vk).unwrap_err().code(),
            "evidence_malformed"
        );
    }
    let mut v = good.clone();
    v["extra"] = Value::Bool(true);
    assert_eq!(fails(&v, &vk).code(), "evidence_malformed");
    // serde's message would quote the string; ours does not.
    let mut v = good.clone();
    v["entries"][0]["index"] = Value::String("access-event-0:".into());
    assert_eq!(fails(&v, &vk).code(), "evidence_malformed");

    let mut v = good.clone();
    v["format"] = Value::String("custos-evidence/v2".into());
    assert_eq!(fails(&v, &vk).code(), "evidence_unsupported_format");
    let mut v = good.clone();
    v["origin"] = Value::String("elsewhere.example/log".into());
    assert_eq!(fails(&v, &vk).code(), "evidence_bad_checkpoint");
    assert_eq!(fails(&good, "not a key").code(), "evidence_bad_key");
}

// C2SP tlog-tiles: clients read only what the checkpoint covers. Entries
// appended since are refused, not silently left out.
#[test]
fn index_beyond_the_checkpoint_is_refused() {
    let (f, mut l, vk) = ledger();
    fill(&mut l, 600, 605);
    let e = build_bundle(
        &DirSource::new(f.dir()),
        &vk,
        subjects(&[("alice", &[5, 603]), ("bob", &[700])]),
    )
    .unwrap_err();
    assert_eq!(e.code(), "evidence_not_checkpointed");
    assert!(matches!(
        e,
        EvidenceError::NotCheckpointed {
            index: 603,
            size: 600
        }
    ));
    // Once checkpointed, the same request succeeds.
    l.publish_checkpoint(2_000).unwrap().unwrap();
    let b = build_bundle(
        &DirSource::new(f.dir()),
        &vk,
        subjects(&[("alice", &[5, 603])]),
    )
    .unwrap();
    check_bundle(&serde_json::to_vec(&b).unwrap(), &vk).unwrap();

    // Bad requests are refused before anything is read.
    for bad in [
        vec![],
        subjects(&[("", &[1])]),
        subjects(&[("alice", &[])]),
        subjects(&[("alice", &[1]), ("alice", &[2])]),
    ] {
        assert_eq!(
            build_bundle(&DirSource::new(f.dir()), &vk, bad)
                .unwrap_err()
                .code(),
            "evidence_invalid_subject"
        );
    }
}

// C2SP tlog-tiles "Log Entries" and "Merkle Tree": entry bundles and hash
// tiles that do not match the signed checkpoint are refused at build time,
// so a bad source cannot produce a bundle that only fails later.
#[test]
fn inconsistent_source_is_refused() {
    let (f, _l, vk) = ledger();
    let req = || subjects(&[("alice", &[3])]);

    let path = f.path("tile/entries/000");
    let good = std::fs::read(&path).unwrap();
    // Offset of entry i's first byte in the bundle (uint16 length prefixes).
    let offset = |i: usize| {
        let mut o = 0;
        for _ in 0..i {
            o += 2 + usize::from(u16::from_be_bytes([good[o], good[o + 1]]));
        }
        o + 2
    };
    let mut bad3 = good.clone();
    bad3[offset(3)] ^= 1;
    let mut bad = good.clone();
    bad[offset(1)] ^= 1;
    std::fs::write(&path, &bad3).unwrap();
    let e = build_bundle(&DirSource::new(f.dir()), &vk, req()).unwrap_err();
    assert_eq!(e.code(), "evidence_source_invalid");
    assert!(!e.to_string().contains("access-event-"));
    // Another entry of the same bundle changed: entry 3's proof is still good.
    std::fs::write(&path, &bad).unwrap();
    build_bundle(&DirSource::new(f.dir()), &vk, req()).unwrap();
    std::fs::write(&path, &good).unwrap();

    // A level-0 hash tile no longer authenticates against the root.
    let tile = f.path("tile/0/000");
    let good = std::fs::read(&tile).unwrap();
    let mut bad = good.clone();
    bad[2 * 32] ^= 1; // entry 2's leaf hash: entry 3's sibling
    std::fs::write(&tile, &bad).unwrap();
    let e = build_bundle(&DirSource::new(f.dir()), &vk, req()).unwrap_err();
    assert_eq!(e.code(), "evidence_source_invalid");
    std::fs::write(&tile, &good).unwrap();

    // A missing tile is named.
    std::fs::remove_file(&tile).unwrap();
    let e = build_bundle(&DirSource::new(f.dir()), &vk, req()).unwrap_err();
    assert_eq!(e.code(), "evidence_source_invalid");
    assert!(e.to_string().contains("tile/0/000"), "{e}");
}
