//! The ledger end to end: every request lands in the Merkle ledger before its answer,
//! checkpoints follow, the tiles are served as C2SP tlog-tiles, and `custos ledger`
//! verifies, proves and detects tampering — also after a kill -9 under load.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// Records are ledger entries, in order, each answer naming its index; the index
/// (`/v1/access`) and `/v1/ledger/entries` read the same records.
#[tokio::test]
async fn answers_name_their_ledger_entries() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let ok = c.view(&w.agent, &w.customer, &w.case).await;
    let denied = c.view(&w.agent, &w.customer, &w.partner_case).await;
    assert_eq!((ok.status, denied.status), (200, 403));
    let (i_ok, i_denied) = (ledger_index(&ok), ledger_index(&denied));
    assert!(i_denied > i_ok);

    let r = c
        .get(
            &w.analyst,
            &format!("/v1/ledger/entries?from={i_ok}&limit=2"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let entries = r.body["entries"].as_array().unwrap();
    assert_eq!(entries[0]["seq"], i_ok);
    assert_eq!(
        entries[0]["request_id"],
        ok.headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(entries[0]["decision"], "allow");
    assert_eq!(entries[1]["decision"], "deny");

    // The first entries are the server's own: its start with the configuration digest
    // and the creation of both keys.
    let r = c.get(&w.analyst, "/v1/ledger/entries?from=0&limit=3").await;
    let first: Vec<&str> = r.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["server_start", "key_created", "key_created"]);
    assert!(
        r.body["entries"][0]["reason_code"]
            .as_str()
            .unwrap()
            .starts_with("policy:")
    );

    // Agents may not read the ledger's entries; reading them is itself recorded.
    let r = c.get(&w.agent, "/v1/ledger/entries").await;
    assert_eq!(r.status, 403);
    let records = access_records(&server, "staff=alice").await;
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "read_ledger" && r["decision"] == "deny")
    );

    // Staff administration names what it acted on.
    let r = c.post_empty(&server.admin, "/v1/staff/bob/suspend").await;
    assert_eq!(r.status, 200);
    let r = c
        .get(
            &w.analyst,
            &format!("/v1/ledger/entries?from={}&limit=1", ledger_index(&r)),
        )
        .await;
    assert_eq!(r.body["entries"][0]["action"], "suspend_staff");
    assert_eq!(r.body["entries"][0]["target"], "bob");
}

/// C2SP tlog-tiles over HTTP: checkpoint and hash tiles public, entry bundles only for
/// analysts; `custos ledger verify --url` checks it all and keeps state between runs;
/// `prove` + `check-proof` work offline and a changed proof fails.
#[tokio::test]
async fn tiles_verify_prove_and_check_over_http() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let mut last = 0;
    for _ in 0..300 {
        last = ledger_index(&c.view(&w.agent, &w.customer, &w.case).await);
    }
    let note = checkpoint_covering(&c, last + 1, CHECKPOINT_WAIT).await;
    assert_eq!(note.lines().next(), Some("custos.local/ledger"));
    let key = verifier_key(&server);
    assert!(key.starts_with("custos.local/ledger+"));
    assert_eq!(c.get("", "/ledger/tile/0/000").await.status, 200);
    assert_eq!(c.get("", "/ledger/tile/entries/000").await.status, 401);
    assert_eq!(
        c.get(&w.agent, "/ledger/tile/entries/000").await.status,
        403
    );
    let bundle = c.get(&w.analyst, "/ledger/tile/entries/000").await;
    assert_eq!(bundle.status, 200);
    assert_eq!(c.get("", "/ledger/tile/../../master.key").await.status, 404);

    // Inclusion and consistency proofs are served as base64 hashes.
    let size: u64 = note.lines().nth(1).unwrap().parse().unwrap();
    let r = c
        .get(
            "",
            &format!("/v1/ledger/proof/inclusion?index={last}&size={size}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.body["hashes"].as_array().unwrap().is_empty());
    assert_eq!(r.body["root"], note.lines().nth(2).unwrap());
    let r = c
        .get(
            "",
            &format!("/v1/ledger/proof/consistency?from=5&to={size}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = c
        .get(
            "",
            &format!("/v1/ledger/proof/inclusion?index={size}&size={size}"),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = c.get("", "/v1/ledger/proof/inclusion?index=x&size=1").await;
    assert_eq!((r.status, r.code()), (400, "invalid_query"));

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("witness.state");
    let url = format!("{}/ledger", server.base);
    let verify = |token: &str| {
        custos(&[
            "ledger",
            "verify",
            "--url",
            &url,
            "--key",
            &key,
            "--token",
            token,
            "--state",
            state.to_str().unwrap(),
        ])
    };
    let o = verify(&w.analyst);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("ledger verified"), "{}", stdout(&o));
    assert!(state.exists());
    for _ in 0..10 {
        c.view(&w.agent, &w.customer, &w.case).await;
    }
    checkpoint_covering(&c, size + 10, CHECKPOINT_WAIT).await;
    let o = verify(&w.analyst);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("consistent with the saved checkpoint"),
        "{}",
        stdout(&o)
    );
    // Without access to entry bundles, verification cannot succeed.
    let o = verify(&w.agent);
    assert!(!o.status.success());

    let o = custos(&[
        "ledger",
        "prove",
        &last.to_string(),
        "--url",
        &server.base,
        "--token",
        &w.analyst,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let proof_path = dir.path().join("proof.txt");
    std::fs::write(&proof_path, &o.stdout).unwrap();
    assert!(
        stdout(&o).starts_with("c2sp.org/tlog-proof@v1\n"),
        "{}",
        stdout(&o)
    );
    let o = custos(&[
        "ledger",
        "check-proof",
        proof_path.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("entry {last} is in the tree")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("\"action\":\"view\""));
    // Claiming another index with the same proof fails.
    let text = std::fs::read_to_string(&proof_path).unwrap();
    let forged = text.replace(&format!("index {last}\n"), &format!("index {}\n", last - 1));
    assert_ne!(forged, text);
    std::fs::write(&proof_path, forged).unwrap();
    let o = custos(&[
        "ledger",
        "check-proof",
        proof_path.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("proof check FAILED"), "{}", stderr(&o));
}

/// A configured witness's cosignature (C2SP tlog-cosignature) is accepted and served
/// with the checkpoint; an unknown witness's is refused.
#[tokio::test]
async fn witness_cosignatures() {
    use base64::prelude::*;
    use ed25519_dalek::{Signer, SigningKey};
    let witness = |name: &str, seed: u8| {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let mut material = vec![0x04];
        material.extend_from_slice(&sk.verifying_key().to_bytes());
        let id = signed_note::key_id(name, &material);
        let vkey = format!("{name}+{id:08x}+{}", BASE64_STANDARD.encode(&material));
        (sk, id, vkey)
    };
    // C2SP tlog-cosignature: the signed message and the signature line.
    let cosign = |name: &str, sk: &SigningKey, id: u32, body: &str| {
        let ts: u64 = 1_800_000_000;
        let sig = sk.sign(format!("cosignature/v1\ntime {ts}\n{body}").as_bytes());
        let mut blob = id.to_be_bytes().to_vec();
        blob.extend_from_slice(&ts.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        format!("— {name} {}\n", BASE64_STANDARD.encode(blob))
    };
    let (sk, id, vkey) = witness("witness.example/w1", 7);
    let (stranger, stranger_id, _) = witness("stranger.example/w", 9);
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some(format!("ledger_witnesses = [\"{vkey}\"]\n")),
            ..Options::default()
        },
    )
    .await;
    let c = server.client();
    // The start events are durable; wait for the checkpoint that covers them.
    let note = checkpoint_covering(&c, 3, CHECKPOINT_WAIT).await;
    let body = note.split_once("\n\n").unwrap().0.to_owned() + "\n";
    let post = |text: String| {
        let c = c.clone();
        async move {
            c.send(
                c.http
                    .post(format!("{}/v1/ledger/cosignature", c.base))
                    .body(text),
            )
            .await
        }
    };
    let line = cosign("witness.example/w1", &sk, id, &body);
    let r = post(format!("{note}{line}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let served = c.get("", "/ledger/checkpoint").await.text;
    assert_eq!(served, format!("{note}{line}"));

    let bad = cosign("stranger.example/w", &stranger, stranger_id, &body);
    let r = post(format!("{note}{bad}")).await;
    assert_eq!((r.status, r.code()), (400, "unknown_witness"), "{}", r.text);
    let r = post("not a note".to_owned()).await;
    assert_eq!(r.status, 400, "{}", r.text);
}

/// A rewritten entry is found by `verify --dir` (naming its index), and the server
/// refuses to start on rewritten history rather than sign on top of it.
#[tokio::test]
async fn tampering_is_detected_and_refused() {
    let mut server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let mut indexes = Vec::new();
    for _ in 0..20 {
        indexes.push(ledger_index(&c.view(&w.agent, &w.customer, &w.case).await));
    }
    let last = *indexes.last().unwrap();
    checkpoint_covering(&c, last + 1, CHECKPOINT_WAIT).await;
    let key = verifier_key(&server);
    server.stop();
    let ledger = server.data_dir().join("ledger");
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        ledger.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Rewrite one entry in place, in every partial bundle holding it: an insider turns
    // an allow into something else of the same length.
    let target = indexes[5];
    for bundle in ledger.join("tile/entries/000.p").read_dir().unwrap() {
        let path = bundle.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        if rewrite_entry(&mut bytes, target) {
            std::fs::write(&path, &bytes).unwrap();
        }
    }

    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        ledger.to_str().unwrap(),
        "--key",
        &key,
    ]);
    // Exit 1: checked and found wrong (a usage mistake would exit 2).
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("verification FAILED"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("index {target}")),
        "names the first bad index {target}: {}",
        stderr(&o)
    );

    let data = server.data_dir();
    let o = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("history_mismatch"), "{}", stderr(&o));
}

/// kill -9 under concurrent load, 20 times at random moments, loses no acknowledged
/// entry; the ledger reopens every time and verifies at the end; the access index
/// catches up at each start.
#[tokio::test]
async fn kill_9_loses_no_acknowledged_entry() {
    const KILLS: usize = 20;
    let mut server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let mut acknowledged = HashSet::new();
    for round in 0..KILLS {
        let c = server.client();
        let answered = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (c, agent, customer, case) = (
                c.clone(),
                w.agent.clone(),
                w.customer.clone(),
                w.case.clone(),
            );
            let answered = answered.clone();
            tasks.push(tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                // Bounded: at most 400 requests per task and round.
                for _ in 0..400 {
                    let sent = c
                        .http
                        .get(format!("{}/v1/customers/{customer}", c.base))
                        .bearer_auth(&agent)
                        .header("x-custos-case", &case)
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 200 => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            acknowledged
                                .push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
                        }
                        Ok(r) => panic!("round {round}: unexpected {}", r.status()),
                        Err(_) => break, // the server is gone
                    }
                }
                acknowledged
            }));
        }
        // Kill at a random moment once the load is flowing (bounded wait).
        let deadline = Instant::now() + Duration::from_secs(10);
        while answered.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delay = rand::random_range(0..300);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill9();
        for t in tasks {
            acknowledged.extend(t.await.unwrap());
        }
        // Starting again runs recovery; a ledger that cannot open fails here.
        server.restart();
    }
    assert!(
        acknowledged.len() >= KILLS,
        "load ran: {}",
        acknowledged.len()
    );
    eprintln!(
        "{} acknowledged requests across {KILLS} kills",
        acknowledged.len()
    );

    let key = verifier_key(&server);
    let c = server.client();
    let records = access_records(&server, "staff=alice&limit=10000").await;
    let mut recorded: HashSet<String> = records
        .iter()
        .map(|r| r["request_id"].as_str().unwrap().to_owned())
        .collect();
    let mut after = records.last().map(|r| r["seq"].as_u64().unwrap());
    while records.len() == 10_000 && after.is_some() {
        let page = access_records(
            &server,
            &format!("staff=alice&limit=10000&after={}", after.unwrap()),
        )
        .await;
        if page.is_empty() {
            break;
        }
        after = page.last().map(|r| r["seq"].as_u64().unwrap());
        recorded.extend(
            page.iter()
                .map(|r| r["request_id"].as_str().unwrap().to_owned()),
        );
    }
    let lost = acknowledged.difference(&recorded).count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged entries lost",
        acknowledged.len()
    );
    let size = c.get(&w.analyst, "/v1/ledger/entries?limit=1").await.body["size"]
        .as_u64()
        .unwrap();
    checkpoint_covering(&c, size, CHECKPOINT_WAIT).await;
    server.stop();
    let ledger = server.data_dir().join("ledger");
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        ledger.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Replaces `"decision":"allow"` in entry `target` of a bundle (uint16 big-endian length
/// prefixed entries, C2SP tlog-tiles); false if the bundle does not hold that entry.
fn rewrite_entry(bundle: &mut [u8], target: u64) -> bool {
    let needle = b"\"decision\":\"allow\"";
    let (mut offset, mut index) = (0usize, 0u64);
    while offset + 2 <= bundle.len() {
        let len = u16::from_be_bytes([bundle[offset], bundle[offset + 1]]) as usize;
        let entry = &mut bundle[offset + 2..offset + 2 + len];
        if index == target {
            let at = entry
                .windows(needle.len())
                .position(|w| w == needle)
                .expect("the entry was allowed");
            entry[at..at + needle.len()].copy_from_slice(b"\"decision\":\"dennn\"");
            return true;
        }
        offset += 2 + len;
        index += 1;
    }
    false
}
