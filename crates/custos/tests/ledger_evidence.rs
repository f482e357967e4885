//! Evidence bundles end to end: a running server's ledger, a bundle built from its files
//! beside the server (which holds the ledger's lock), and `custos ledger check-evidence`
//! on it and on tampered copies.

mod common;

use std::process::Output;

use base64::prelude::*;
use common::*;
use custos_ledger::{DirSource, build_bundle};
use serde_json::Value;

/// Runs `custos ledger check-evidence` on `bundle` written to a file.
fn check_evidence(dir: &std::path::Path, name: &str, bundle: &Value, key: &str) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(bundle).unwrap()).unwrap();
    custos(&[
        "ledger",
        "check-evidence",
        path.to_str().unwrap(),
        "--key",
        key,
    ])
}

fn fails_with(o: &Output, code: &str) {
    assert!(!o.status.success(), "tampered bundle passed: {}", stdout(o));
    assert!(
        stderr(o).contains(&format!("error[{code}]")),
        "expected {code}: {}",
        stderr(o)
    );
}

/// A bundle built from the live server's ledger directory passes `check-evidence`, which
/// reports each subject's claim and verified entries; a changed entry, an entry cited for
/// someone who did not make it, and a dropped entry each fail with their code.
#[tokio::test]
async fn check_evidence_passes_a_real_bundle_and_fails_tampered_ones() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let mut alice = Vec::new();
    for fields in [&["phone"][..], &["email"], &["phone", "email"]] {
        let a = c.reveal(&w.agent, &w.customer, &w.case, fields).await;
        assert_eq!(a.status, 200, "{}", a.text);
        alice.push(ledger_index(&a));
    }
    let b = c.view(&w.partner_agent, &w.customer, &w.partner_case).await;
    assert_eq!(b.status, 200, "{}", b.text);
    let bob = ledger_index(&b);
    checkpoint_covering(
        &c,
        alice.iter().copied().max().unwrap().max(bob) + 1,
        CHECKPOINT_WAIT,
    )
    .await;

    let key = verifier_key(&server);

    // Read from the files while the server runs and holds the ledger's lock.
    let bundle = build_bundle(
        &DirSource::new(server.data_dir().join("ledger")),
        &key,
        vec![
            (
                "alice".into(),
                "revealed the leaked customer's phone and email".into(),
                alice.clone(),
            ),
            ("bob".into(), "viewed the leaked customer".into(), vec![bob]),
        ],
    )
    .unwrap();
    let good = serde_json::to_value(&bundle).unwrap();
    let dir = server.dir.path();

    let o = check_evidence(dir, "good.json", &good, &key);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("evidence verified: 4 entries"), "{out}");
    assert!(out.contains("custos.local/ledger"), "{out}");
    assert!(
        out.contains(
            "alice: revealed the leaked customer's phone and email (3 entries verified, each made by alice)"
        ),
        "{out}"
    );
    assert!(
        out.contains("bob: viewed the leaked customer (1 entries verified"),
        "{out}"
    );

    // Bob's entry cited against Alice: every proof holds, the claim does not.
    let mut v = good.clone();
    let mut cited = alice.clone();
    cited.push(bob);
    cited.sort_unstable();
    v["subjects"][0]["entries"] = serde_json::json!(cited);
    let o = check_evidence(dir, "mismatch.json", &v, &key);
    fails_with(&o, "evidence_subject_mismatch");
    assert!(
        stderr(&o).contains(&format!("entry {bob}")),
        "{}",
        stderr(&o)
    );

    // One byte of one of Alice's entries changed (C2SP tlog-proof extra data).
    let mut v = good.clone();
    let proof = v["entries"][0]["proof"].as_str().unwrap().to_owned();
    let extra = proof.lines().nth(1).unwrap();
    let mut raw = BASE64_STANDARD
        .decode(extra.strip_prefix("extra ").unwrap())
        .unwrap();
    let at = raw.iter().position(|b| *b == b'e').unwrap();
    raw[at] = b'f';
    v["entries"][0]["proof"] =
        Value::String(proof.replace(extra, &format!("extra {}", BASE64_STANDARD.encode(&raw))));
    let o = check_evidence(dir, "tampered.json", &v, &key);
    fails_with(&o, "evidence_bad_proof");
    // The error names the index, never the entry.
    assert!(!stderr(&o).contains("\"staff_id\""), "{}", stderr(&o));

    // An entry Alice cites dropped from the bundle.
    let mut v = good.clone();
    v["entries"].as_array_mut().unwrap().remove(0);
    fails_with(
        &check_evidence(dir, "dropped.json", &v, &key),
        "evidence_missing_entry",
    );

    // Another key.
    let other = "custos.local/ledger+00000000+AQ==";
    assert!(
        !check_evidence(dir, "good.json", &good, other)
            .status
            .success()
    );
}
