//! `custos backup` and `custos restore`: a backup taken while requests are served
//! restores into a new data directory whose store and ledger agree (every customer in the
//! store has its ledger entry; everything acknowledged before the backup is there); the
//! restored server verifies its ledger at start and records the restore; restoring an
//! older backup is a rollback a saved checkpoint detects, unless the newest ledger's own
//! files are kept; on PostgreSQL the database's dump is the store and the ledger at once.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use custos_ledger::{Ledger, LedgerKey};
use custos_types::Action;
use serde_json::Value;

/// Runs `custos backup` of `server` into `out`; its output, after asserting it succeeded.
fn run_backup(server: &Server, out: &Path) -> String {
    let mut args = vec![
        "backup".to_owned(),
        "--data-dir".to_owned(),
        server.data_dir().display().to_string(),
        "--out".to_owned(),
        out.display().to_string(),
    ];
    if let Some(url) = &server.database_url {
        args.extend(["--database-url".to_owned(), url.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = custos(&args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Runs `custos restore` with `extra` arguments into a new temporary directory's
/// `data/`; the directory and the command's output.
fn run_restore(
    backup: &Path,
    keys: &Path,
    extra: &[&str],
) -> (tempfile::TempDir, std::process::Output) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut args = vec![
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--keys",
        keys.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = custos(&args);
    (dir, o)
}

fn manifest(backup: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(backup.join("backup.json")).unwrap()).unwrap()
}

/// Every customer id in the SQLite store at `db`, and how many staff entries it holds.
async fn sqlite_counts(db: &Path) -> (BTreeSet<String>, i64) {
    use sqlx::Connection;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM customers")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let staff: i64 = sqlx::query_scalar("SELECT count(*) FROM staff")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    (ids.into_iter().collect(), staff)
}

/// The customers whose `create_customer` entry is among the first `size` entries of the
/// ledger in `data_dir` (opened with its key, its server stopped).
fn created_in_ledger(data_dir: &Path, origin: &str, size: u64) -> BTreeSet<String> {
    let (key, created) = LedgerKey::load_or_create(&data_dir.join("ledger.key"), origin).unwrap();
    assert!(!created, "the restore brought the ledger key");
    let ledger = Ledger::open(&data_dir.join("ledger"), origin, key).unwrap();
    let mut out = BTreeSet::new();
    let mut from = 0;
    while from < size {
        let batch = ledger.entries(from, 1000).unwrap();
        assert!(!batch.is_empty());
        for (index, bytes) in &batch {
            if *index >= size {
                break;
            }
            let record = custos_access::entry::decode(*index, bytes).unwrap();
            if record.action == Action::CreateCustomer
                && record.decision == custos_types::Decision::Allow
                && let Some(id) = record.customer_id
            {
                out.insert(id);
            }
        }
        from = batch.last().unwrap().0 + 1;
    }
    out
}

/// The restored server's `store_restored` entry (as admin reads the access index).
async fn store_restored(server: &Server) -> Value {
    let deadline = std::time::Instant::now() + CHECKPOINT_WAIT;
    loop {
        let records = access_records(server, "staff=system").await;
        if let Some(r) = records.iter().find(|r| r["action"] == "store_restored") {
            return r.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no store_restored entry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_to_a_server_whose_store_and_ledger_agree() {
    let server = Server::start(Backend::Sqlite).await;
    let c = server.client();
    let crm = server.staff("crm", "integration", "custos").await;
    let alice = server.staff("alice", "support", "custos").await;
    let first = customers_with_cases(&c, &crm, "alice", 5, 1).await;

    // Load: four writers creating customers until told to stop, each noting what was
    // acknowledged, and when (before the backup started, or not).
    let backup_started = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4u32 {
        let (c, crm) = (server.client(), crm.clone());
        let (backup_started, stop) = (backup_started.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let (mut before, mut all) = (Vec::new(), Vec::new());
            let mut k = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let n = w * 10_000 + k;
                k += 1;
                let id = c
                    .create_customer(
                        &crm,
                        &format!("Load {n}"),
                        &format!("137{n:08}"),
                        &format!("load{n}@example.com"),
                        &format!("ACC-55{n:08}"),
                    )
                    .await;
                // Acknowledged while the backup had not started yet.
                if !backup_started.load(Ordering::SeqCst) {
                    before.push(id.clone());
                }
                all.push(id);
            }
            (before, all)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b1");
    backup_started.store(true, Ordering::SeqCst);
    let printed = tokio::task::block_in_place(|| run_backup(&server, &backup));
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut before, mut all) = (Vec::new(), Vec::new());
    for w in writers {
        let (b, a) = w.await.unwrap();
        before.extend(b);
        all.extend(a);
    }
    assert!(printed.contains("backup written to"), "{printed}");
    let m = manifest(&backup);
    let size = m["checkpoint_size"].as_u64().unwrap();
    assert!(!backup.join("master.key").exists() && !backup.join("ledger.key").exists());
    let files: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(files.contains(&"custos.db") && files.contains(&"ledger/checkpoint"));
    assert!(files.iter().all(|f| !f.ends_with(".key")), "{files:?}");

    // The backup's own ledger verifies offline, at exactly its checkpoint.
    let key = verifier_key(&server);
    let o = custos(&[
        "ledger",
        "verify",
        "--dir",
        backup.join("ledger").to_str().unwrap(),
        "--key",
        &key,
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    // Restore into a new directory, with the keys from where they are kept.
    let (restored, o) = run_restore(&backup, &server.data_dir(), &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let data = restored.path().join("data");
    let (customers, staff) = sqlite_counts(&data.join("custos.db")).await;
    // Everything acknowledged before the backup started is in it, nothing not created.
    let all: BTreeSet<String> = all.into_iter().collect();
    for id in first.iter().map(|(c, _)| c).chain(&before) {
        assert!(
            customers.contains(id),
            "{id} acknowledged before the backup is missing"
        );
    }
    assert!(
        customers.is_subset(
            &all.iter()
                .chain(first.iter().map(|(c, _)| c))
                .cloned()
                .collect()
        )
    );
    assert!(
        customers.len() > first.len() + before.len() / 2,
        "the load ran"
    );
    assert_eq!(staff, 3, "admin, crm and alice");
    // The ledger covers the store: every customer in it has its entry within the
    // backup's checkpoint.
    let origin = m["origin"].as_str().unwrap();
    let in_ledger = created_in_ledger(&data, origin, size);
    assert!(
        customers.is_subset(&in_ledger),
        "customers without a ledger entry: {:?}",
        customers.difference(&in_ledger).collect::<Vec<_>>()
    );

    // The restored server starts (its ledger verified at open), serves the restored
    // customers, and its ledger extends the backup's checkpoint.
    let restored = Server::start_on(restored, None, &server.admin);
    let rc = restored.client();
    let (customer, case) = &first[0];
    let r = rc.view(&alice, customer, case).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["name"].is_string(), "{}", r.body);
    let entry = store_restored(&restored).await;
    let facts: Vec<&str> = entry["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        facts.contains(&format!("checkpoint:{size}").as_str()),
        "{facts:?}"
    );
    assert!(facts.contains(&"ledger:backup"), "{facts:?}");
    let state = backups.path().join("auditor.checkpoint");
    std::fs::write(&state, m["checkpoint"].as_str().unwrap()).unwrap();
    let index = ledger_index(&r);
    checkpoint_covering(&rc, index + 1, CHECKPOINT_WAIT).await;
    let out = verify_ledger(&restored.base, &key, &server.admin, &state);
    assert!(out.contains("consistent"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_backup_is_a_rollback_a_saved_checkpoint_detects_unless_the_newest_ledger_is_kept()
{
    let mut server = Server::start(Backend::Sqlite).await;
    let c = server.client();
    let crm = server.staff("crm", "integration", "custos").await;
    server.staff("alice", "support", "custos").await;
    customers_with_cases(&c, &crm, "alice", 3, 1).await;
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("old");
    tokio::task::block_in_place(|| run_backup(&server, &backup));
    let key = verifier_key(&server);

    // Bad input changes nothing: a tampered backup, a non-empty target, missing keys.
    let bad = backups.path().join("tampered");
    std::fs::create_dir(&bad).unwrap();
    for f in ["backup.json", "custos.db"] {
        std::fs::copy(backup.join(f), bad.join(f)).unwrap();
    }
    let o = custos(&[
        "restore",
        bad.to_str().unwrap(),
        "--data-dir",
        "/nonexistent/x",
        "--keys",
        "/tmp",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("error[backup_corrupt]"),
        "{}",
        stderr(&o)
    );
    assert!(!Path::new("/nonexistent/x").exists());
    let o = custos(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        server.data_dir().to_str().unwrap(),
        "--keys",
        server.data_dir().to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("error[data_dir_not_empty]"),
        "{}",
        stderr(&o)
    );
    let (dir, o) = run_restore(&backup, backups.path(), &[]);
    assert!(
        stderr(&o).contains("error[no_master_key]"),
        "{}",
        stderr(&o)
    );
    assert!(
        !dir.path().join("data").exists(),
        "a refused restore leaves nothing"
    );

    // Life goes on after the backup; an auditor saves the newer checkpoint.
    customers_with_cases(&c, &crm, "alice", 3, 2).await;
    let r = c.get(&server.admin, "/v1/access?limit=1").await;
    checkpoint_covering(&c, ledger_index(&r) + 1, CHECKPOINT_WAIT).await;
    let auditor = backups.path().join("auditor.checkpoint");
    verify_ledger(&server.base, &key, &server.admin, &auditor);
    server.stop();

    // Restoring the backup's ledger rolls history back: the auditor's check fails.
    let (rolled_back, o) = run_restore(&backup, &server.data_dir(), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rolled_back = Server::start_on(rolled_back, None, &server.admin);
    let o = custos(&[
        "ledger",
        "verify",
        "--url",
        &rolled_back.base,
        "--key",
        &key,
        "--token",
        &server.admin,
        "--state",
        auditor.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("FAILED"), "{}", stderr(&o));
    drop(rolled_back);

    // Keeping the newest ledger's own files: the store goes back, the history does not;
    // the gap is the store_restored entry, and the auditor's check passes.
    let newest = server.data_dir().join("ledger");
    let (kept, o) = run_restore(
        &backup,
        &server.data_dir(),
        &["--ledger-dir", newest.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let kept = Server::start_on(kept, None, &server.admin);
    let entry = store_restored(&kept).await;
    let size = manifest(&backup)["checkpoint_size"].as_u64().unwrap();
    let facts = entry["fields"].to_string();
    assert!(
        facts.contains(&format!("checkpoint:{size}")) && facts.contains("ledger:kept"),
        "{facts}"
    );
    checkpoint_covering(
        &kept.client(),
        entry["seq"].as_u64().unwrap() + 1,
        CHECKPOINT_WAIT,
    )
    .await;
    let out = verify_ledger(&kept.base, &key, &server.admin, &auditor);
    assert!(out.contains("consistent"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_the_dump_and_its_checkpoint_restore_together() {
    if !Backend::all().contains(&Backend::Postgres) {
        return;
    }
    let server = Server::start(Backend::Postgres).await;
    let c = server.client();
    let crm = server.staff("crm", "integration", "custos").await;
    let alice = server.staff("alice", "support", "custos").await;
    let cases = customers_with_cases(&c, &crm, "alice", 4, 1).await;
    let r = c.view(&alice, &cases[0].0, &cases[0].1).await;
    checkpoint_covering(&c, ledger_index(&r) + 1, CHECKPOINT_WAIT).await;
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("pg");
    let printed = tokio::task::block_in_place(|| run_backup(&server, &backup));
    assert!(printed.contains("pg_dump"), "{printed}");
    let m = manifest(&backup);
    assert_eq!(m["store"], "postgres");
    let size = m["checkpoint_size"].as_u64().unwrap();
    assert!(size > ledger_index(&r));

    // Into another, empty database and a new data directory.
    let target = fresh_postgres().await;
    let (restored, o) = run_restore(&backup, &server.data_dir(), &["--database-url", &target]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let (again, o) = run_restore(&backup, &server.data_dir(), &["--database-url", &target]);
    assert!(
        stderr(&o).contains("error[database_not_empty]"),
        "{}",
        stderr(&o)
    );
    drop(again);
    let restored = Server::start_on(restored, Some(target), &server.admin);
    let rc = restored.client();
    let r = rc.view(&alice, &cases[3].0, &cases[3].1).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let entry = store_restored(&restored).await;
    assert!(
        entry["fields"]
            .to_string()
            .contains(&format!("checkpoint:{size}"))
    );
    checkpoint_covering(&rc, ledger_index(&r) + 1, CHECKPOINT_WAIT).await;
    let state = backups.path().join("auditor.checkpoint");
    std::fs::write(&state, m["checkpoint"].as_str().unwrap()).unwrap();
    let out = verify_ledger(
        &restored.base,
        &verifier_key(&server),
        &server.admin,
        &state,
    );
    assert!(out.contains("consistent"), "{out}");
}
