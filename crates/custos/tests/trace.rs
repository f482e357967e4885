//! Leak attribution end to end: a running server where one agent revealed many customers,
//! a leaked list cut from them in a messy format, `custos trace` beside the server (report
//! and evidence bundle, checked offline), and `POST /v1/trace` for analysts.

mod common;

use common::*;
use serde_json::Value;

/// Customers of the vault; agent `alice` reveals the phones of the first `ALICE`, `carol`
/// of one of them, `bob` views the first three masked and reveals the last two.
const CUSTOMERS: usize = 12;
const ALICE: usize = 10;

fn phone(i: usize) -> String {
    format!("139{:08}", 10_000_000 + i * 7919)
}

/// A company where alice harvested; returns the analyst's token and the customer ids.
async fn harvested(server: &Server) -> (String, Vec<String>) {
    let crm = server.staff("crm", "integration", "custos").await;
    let switch = server.staff("switch", "contact_center", "custos").await;
    let alice = server.staff("alice", "support", "custos").await;
    let bob = server.staff("bob", "support", "huaxin-bpo").await;
    let carol = server.staff("carol", "support", "custos").await;
    let analyst = server.staff("sec", "security_analyst", "custos").await;
    let c = server.client();
    let mut ids = Vec::new();
    for i in 0..CUSTOMERS {
        let email = format!("person{i}@example.com");
        let id = c
            .create_customer(&crm, "Li Na", &phone(i), &email, &format!("ACC-{i:010}"))
            .await;
        ids.push(id);
    }
    let mut last = 0;
    for (i, id) in ids.iter().enumerate() {
        if i < ALICE {
            let case = c.verified_case(&switch, &phone(i), "alice").await;
            let a = c.reveal(&alice, id, &case, &["phone"]).await;
            assert_eq!(a.status, 200, "{}", a.text);
            last = last.max(ledger_index(&a));
        }
        if i < 3 {
            let case = c.verified_case(&switch, &phone(i), "bob").await;
            let a = c.view(&bob, id, &case).await;
            assert_eq!(a.status, 200, "{}", a.text);
            last = last.max(ledger_index(&a));
        }
        if i >= CUSTOMERS - 2 {
            let case = c.verified_case(&switch, &phone(i), "bob").await;
            let a = c.reveal(&bob, id, &case, &["phone"]).await;
            assert_eq!(a.status, 200, "{}", a.text);
        }
        if i == 4 {
            let case = c.verified_case(&switch, &phone(i), "carol").await;
            let a = c.reveal(&carol, id, &case, &["phone"]).await;
            assert_eq!(a.status, 200, "{}", a.text);
        }
    }
    checkpoint_covering(&c, last + 1, CHECKPOINT_WAIT).await;
    (analyst, ids)
}

/// Alice's first eight customers as a leak would carry them: a header in Chinese, the
/// phone column second, numbers written four ways, plus three numbers not in the vault and
/// a row with only a name.
fn leak_csv() -> String {
    let mut out = String::from("姓名,手机号,备注\n");
    for i in 0..8 {
        let p = phone(i);
        let written = match i % 4 {
            0 => format!("+86 {} {} {}", &p[..3], &p[3..7], &p[7..]),
            1 => format!("0086-{}-{}-{}", &p[..3], &p[3..7], &p[7..]),
            2 => p.clone(),
            // Full-width digits.
            _ => p
                .chars()
                .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap())
                .collect(),
        };
        out.push_str(&format!("李娜,{written},vip\n"));
    }
    for unknown in ["13700000001", "13700000002", "13700000003"] {
        out.push_str(&format!("王伟,{unknown},\n"));
    }
    out.push_str("张伟,,\n");
    out
}

/// `custos trace` beside the running server names alice first, with the counts of the
/// file; its evidence bundle passes `check-evidence`, and fails once an entry is changed.
#[tokio::test]
async fn trace_cli_names_the_harvester_with_evidence_that_checks() {
    let server = Server::start(Backend::Sqlite).await;
    harvested(&server).await;
    let dir = server.dir.path();
    let leak = dir.join("leak.csv");
    std::fs::write(&leak, leak_csv()).unwrap();
    let report = dir.join("report.json");
    let evidence = dir.join("evidence.json");
    let data_dir = server.data_dir();
    let o = custos(&[
        "trace",
        leak.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--evidence",
        evidence.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["rows"], 12, "{r}");
    assert_eq!(r["matched"], 8, "{r}");
    assert_eq!(r["unmatched"], 4, "{r}");
    assert_eq!(r["name_only"], 1, "{r}");
    assert_eq!(r["customers"], 8, "{r}");
    let suspects = r["suspects"].as_array().unwrap();
    assert_eq!(suspects[0]["staff"], "alice", "{r}");
    assert_eq!(suspects[0]["org"], "custos");
    assert_eq!(suspects[0]["records"], 8);
    assert_eq!(suspects[0]["records_revealed"], 8);
    let names: Vec<&str> = suspects
        .iter()
        .map(|s| s["staff"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"bob") && names.contains(&"carol"),
        "{names:?}"
    );
    assert!(
        suspects[0]["score"].as_f64() > suspects[1]["score"].as_f64(),
        "{r}"
    );
    assert!(
        suspects[0]["first_access"].as_i64() <= suspects[0]["last_access"].as_i64(),
        "{r}"
    );
    // The file's values appear nowhere in the report.
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        !text.contains(&phone(1)[3..]) && !text.contains("李娜"),
        "{text}"
    );

    let o = custos(&["ledger", "key", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = stdout(&o).trim().to_owned();
    let o = custos(&[
        "ledger",
        "check-evidence",
        evidence.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("alice: viewed or revealed 8 of the 8 customers"),
        "{}",
        stdout(&o)
    );

    // Alice's first entry cited for bob: the proofs hold, the claim does not.
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(&evidence).unwrap()).unwrap();
    let subjects = bundle["subjects"].as_array_mut().unwrap();
    let alice_first = subjects[0]["entries"][0].clone();
    let bob = subjects
        .iter_mut()
        .find(|s| s["subject"] == "bob")
        .expect("bob is in the bundle");
    bob["entries"].as_array_mut().unwrap().push(alice_first);
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_vec(&bundle).unwrap()).unwrap();
    let o = custos(&[
        "ledger",
        "check-evidence",
        tampered.to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(!o.status.success(), "a tampered bundle passed");
    assert!(
        stderr(&o).contains("evidence_"),
        "a stable code: {}",
        stderr(&o)
    );

    // An unreadable window is refused with its code.
    let o = custos(&[
        "trace",
        leak.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--since",
        "2026-02-30",
        "--quiet",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("error[trace_bad_time]"),
        "{}",
        stderr(&o)
    );
}

/// `POST /v1/trace`: an analyst gets the ranking, on both stores; an agent is refused;
/// bad uploads and options get their codes; the trace is in the ledger without the
/// file's content.
#[tokio::test]
async fn trace_api_ranks_for_analysts_only() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let (analyst, _) = harvested(&server).await;
        let c = server.client();
        let file = leak_csv();

        let a = c.trace_upload(&analyst, "", file.as_bytes()).await;
        assert_eq!(a.status, 200, "{backend:?}: {}", a.text);
        assert_eq!(a.body["suspects"][0]["staff"], "alice", "{}", a.text);
        assert_eq!(a.body["matched"], 8);
        assert!(!a.text.contains(&phone(1)[3..]), "{}", a.text);

        // GB18030 and tab-separated: the same answer.
        let tabbed = file.replace(',', "\t");
        let (gbk, _, _) = encoding_rs::GB18030.encode(&tabbed);
        let a = c.trace_upload(&analyst, "?top=2", &gbk).await;
        assert_eq!(a.status, 200, "{backend:?}: {}", a.text);
        assert_eq!(a.body["suspects"][0]["staff"], "alice", "{}", a.text);
        assert_eq!(a.body["suspects"].as_array().unwrap().len(), 2);

        // A window that ends before anyone's access: nobody to suspect.
        let a = c
            .trace_upload(&analyst, "?until=2001-01-01", file.as_bytes())
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            a.body["suspects"].as_array().unwrap().len(),
            0,
            "{}",
            a.text
        );

        let agent = server.staff("dave", "support", "custos").await;
        let a = c.trace_upload(&agent, "", file.as_bytes()).await;
        assert_eq!(a.status, 403, "{}", a.text);

        let a = c
            .trace_upload(&analyst, "?since=yesterday", file.as_bytes())
            .await;
        assert_eq!((a.status, a.code()), (400, "trace_bad_time"), "{}", a.text);
        let a = c.trace_upload(&analyst, "", b"").await;
        assert_eq!(
            (a.status, a.code()),
            (400, "trace_empty_file"),
            "{}",
            a.text
        );
        let a = c
            .post_raw(&analyst, "/v1/trace", file.clone().into_bytes())
            .await;
        assert_eq!((a.status, a.code()), (400, "invalid_upload"), "{}", a.text);

        let records = access_records(&server, "staff=sec").await;
        let traces: Vec<&Value> = records
            .iter()
            .filter(|r| r["action"] == "trace_leak")
            .collect();
        assert_eq!(traces.len(), 6, "every trace request is recorded");
        assert_eq!(
            traces.iter().filter(|r| r["decision"] == "allow").count(),
            3
        );
        let text = serde_json::to_string(&records).unwrap();
        assert!(!text.contains(&phone(2)[3..]), "{text}");
    }
}

/// A trace on the data directory of a server whose store is elsewhere (PostgreSQL) and
/// without `--database-url` refuses, and creates nothing: an empty store made as a side
/// effect would answer "0 matched", a false "not from us".
#[tokio::test]
async fn trace_refuses_a_data_dir_without_its_store() {
    if !Backend::all().contains(&Backend::Postgres) {
        return;
    }
    let server = Server::start(Backend::Postgres).await;
    harvested(&server).await;
    let dir = server.dir.path();
    let leak = dir.join("leak.csv");
    std::fs::write(&leak, leak_csv()).unwrap();
    let data_dir = server.data_dir();
    let before = server.stored_files();
    let o = custos(&[
        "trace",
        leak.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(stderr(&o).contains("error[no_store]"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--database-url"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("matched"), "{}", stdout(&o));
    assert!(!server.sqlite_path().exists());
    assert_eq!(server.stored_files(), before);
}
