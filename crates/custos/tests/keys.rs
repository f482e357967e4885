//! Key providers and online rotation of the key-encryption key, against a real PKCS#11
//! token (SoftHSM2, made fresh by `tests/softhsm/init-token.sh`):
//! - a rotation from the key file onto the token re-wraps every data key while an agent
//!   keeps reading; each step is a ledger entry; new customers are wrapped on the token;
//!   the server restarts onto the token; a server that cannot reach the token refuses to
//!   start rather than serve what it cannot open;
//! - a rotation cut by `kill -9` resumes at the next start and finishes;
//! - a rotation of the blind-index key re-indexes every customer while searches, contacts
//!   and traces keep finding them, and a contact kept from before it still verifies.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const LABEL: &str = "custos-keys";
const PIN: &str = "24682468";

/// A fresh SoftHSM2 token: the directory it lives in, its configuration (for
/// `SOFTHSM2_CONF`) and a PIN file.
struct SoftToken {
    _dir: tempfile::TempDir,
    conf: String,
    pin_file: PathBuf,
}

fn soft_token() -> SoftToken {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/softhsm/init-token.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args([dir.path().to_str().unwrap(), LABEL, PIN])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "init-token.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    std::fs::set_permissions(
        &pin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    SoftToken {
        _dir: dir,
        conf,
        pin_file,
    }
}

fn token_config(token: &SoftToken, provider: &str) -> String {
    format!(
        "[keys]\nprovider = \"{provider}\"\nrotation_batch = 200\n\n[keys.pkcs11]\n\
         module = \"/usr/lib/softhsm/libsofthsm2.so\"\ntoken_label = \"{LABEL}\"\npin_file = \"{}\"\n",
        token.pin_file.display()
    )
}

/// `count` customers as NDJSON, numbered from `from`.
fn people(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| {
            format!(
                "{{\"name\":\"Person {i}\",\"phone\":\"+86 139 {:04} {:04}\",\"email\":\"p{i}@example.com\"}}\n",
                i / 10_000,
                i % 10_000
            )
        })
        .collect()
}

async fn import(server: &Server, from: usize, count: usize) {
    let c = server.client();
    let r = c
        .send(
            c.http
                .post(format!("{}/v1/customers/import", server.base))
                .bearer_auth(&server.admin)
                .header("content-type", "application/x-ndjson")
                .body(people(from, count)),
        )
        .await;
    assert_eq!(r.status, 200, "import: {}", r.body["error"]);
}

/// Every stored wrapped data key, read from the store itself.
async fn wrapped_keys(server: &Server) -> Vec<Vec<u8>> {
    use sqlx::Connection;
    let sql = "SELECT wrapped_key FROM customers WHERE length(wrapped_key) > 0";
    match &server.database_url {
        None => {
            let url = format!("sqlite://{}?mode=ro", server.sqlite_path().display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
    }
}

/// The format-2 header naming KEK `provider` (0 file, 1 PKCS#11) version `version`.
fn header(provider: u8, version: u32) -> Vec<u8> {
    let mut h = vec![2, provider];
    h.extend_from_slice(&version.to_be_bytes());
    h
}

/// Polls the rotation's status until it is finished (bounded).
async fn until_finished(c: &Client, admin: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.get(admin, "/v1/keys/rotation").await;
        assert_eq!(r.status, 200, "{}", r.text);
        if r.body["finished"] == true {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "rotation did not finish: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn actions(records: &[Value], action: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_rotation_onto_the_token_rewraps_every_key_while_reads_go_on() {
    for backend in Backend::all() {
        let token = soft_token();
        let options = Options {
            config_toml: Some(token_config(&token, "pkcs11")),
            env: vec![("SOFTHSM2_CONF".to_owned(), token.conf.clone())],
            ..Options::default()
        };
        let mut server = Server::start_with(backend, options.clone()).await;
        let w = world(&server).await;
        let c = server.client();
        import(&server, 0, 1_000).await;
        // Before any rotation every key is under the file's first KEK (format 1 or 2).
        let r = c.get(&server.admin, "/v1/keys/rotation").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["current_kek"], "file:v1");
        assert_eq!(r.body["rotation"], 0);

        // Only admins rotate keys or follow a rotation.
        for t in [&w.agent, &w.analyst, &w.crm] {
            assert_eq!(c.post_empty(t, "/v1/keys/rotations").await.status, 403);
            assert_eq!(c.get(t, "/v1/keys/rotation").await.status, 403);
        }

        let r = c.post_empty(&server.admin, "/v1/keys/rotations").await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(r.body["current_kek"], "pkcs11:v1");
        assert_eq!(r.body["total"], 1_001);
        // The agent keeps reading while the keys move.
        let mut reads = 0;
        loop {
            let r = c.view(&w.agent, &w.customer, &w.case).await;
            assert_eq!(r.status, 200, "a read during the rotation: {}", r.text);
            reads += 1;
            let s = c.get(&server.admin, "/v1/keys/rotation").await;
            if s.body["finished"] == true {
                break;
            }
        }
        assert!(reads >= 1);
        let status = until_finished(&c, &server.admin).await;
        assert_eq!(status["rewrapped"], 1_001, "{status}");
        let on_token = header(1, 1);
        let keys = wrapped_keys(&server).await;
        assert_eq!(keys.len(), 1_001);
        assert!(
            keys.iter().all(|k| k.starts_with(&on_token)),
            "every key on the token"
        );

        // A new customer is wrapped on the token; reads still open.
        c.create_customer(
            &w.crm,
            "Li Na",
            "13900001111",
            "li.na@example.com",
            "ACC-0000000042",
        )
        .await;
        let keys = wrapped_keys(&server).await;
        assert_eq!(keys.len(), 1_002);
        assert!(keys.iter().all(|k| k.starts_with(&on_token)));
        let r = c.reveal(&w.agent, &w.customer, &w.case, &["name"]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["fields"]["name"], NAME);

        // The ledger has the admin's request, the steps and the end.
        let records = access_records(&server, "limit=10000").await;
        let asked = actions(&records, "rotate_keys");
        assert_eq!(asked.len(), 4, "three refusals and the admin's: {asked:?}");
        let allowed: Vec<_> = asked.iter().filter(|r| r["decision"] == "allow").collect();
        assert_eq!(allowed.len(), 1, "{asked:?}");
        assert_eq!(allowed[0]["staff_id"], "admin");
        assert!(
            allowed[0]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "kek:pkcs11:v1")
        );
        let steps = actions(&records, "key_rotation_step");
        assert!(steps.len() >= 5, "a step per batch of 200: {steps:?}");
        let finished = actions(&records, "key_rotation_finished");
        assert_eq!(finished.len(), 1, "{finished:?}");
        assert!(
            finished[0]["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "kek:pkcs11:v1"),
            "{finished:?}"
        );

        // After a restart the server finds its key on the token.
        server.restart();
        let c = server.client();
        let r = c.reveal(&w.agent, &w.customer, &w.case, &["phone"]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = c.get(&server.admin, "/v1/keys/rotation").await;
        assert_eq!(r.body["current_kek"], "pkcs11:v1", "{}", r.text);

        // A second rotation moves to the token's next key.
        let r = c.post_empty(&server.admin, "/v1/keys/rotations").await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(r.body["current_kek"], "pkcs11:v2");
        until_finished(&c, &server.admin).await;
        assert!(
            wrapped_keys(&server)
                .await
                .iter()
                .all(|k| k.starts_with(&header(1, 2)))
        );

        // Without the token, the server does not start: it could not open a customer.
        server.stop();
        let data = server.data_dir();
        let mut args = vec![
            "serve".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--data-dir".to_owned(),
            data.display().to_string(),
        ];
        if let Some(url) = &server.database_url {
            args.extend(["--database-url".to_owned(), url.clone()]);
        }
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_custos"))
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("key_provider"), "{said}");
        assert!(!said.contains(PIN));
    }
}

#[tokio::test]
async fn a_rotation_cut_by_kill_9_resumes_at_the_next_start() {
    let options = Options {
        config_toml: Some(
            "[keys]\nprovider = \"file\"\nrotation_batch = 100\nrotation_pause_ms = 150\n".into(),
        ),
        ..Options::default()
    };
    let mut server = Server::start_with(Backend::Sqlite, options).await;
    let w = world(&server).await;
    import(&server, 0, 1_200).await;
    let c = server.client();
    let r = c.post_empty(&server.admin, "/v1/keys/rotations").await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.body["current_kek"], "file:v2");
    // A second request while it runs is refused with its code.
    let r = c.post_empty(&server.admin, "/v1/keys/rotations").await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "rotation_in_progress");
    // Cut it about half-way (13 batches, 150 ms apart).
    tokio::time::sleep(Duration::from_millis(900)).await;
    let before = c.get(&server.admin, "/v1/keys/rotation").await.body;
    assert_eq!(before["finished"], false, "{before}");
    server.kill9();
    let moved = wrapped_keys(&server).await;
    let done = moved
        .iter()
        .filter(|k| k.starts_with(&header(0, 2)))
        .count();
    assert!(done > 0 && done < 1_201, "cut mid-way: {done} re-wrapped");

    server.restart();
    let c = server.client();
    let status = until_finished(&c, &server.admin).await;
    assert_eq!(status["current_kek"], "file:v2");
    assert!(
        wrapped_keys(&server)
            .await
            .iter()
            .all(|k| k.starts_with(&header(0, 2)))
    );
    let r = c.reveal(&w.agent, &w.customer, &w.case, &["phone"]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let records = access_records(&server, "limit=10000").await;
    assert_eq!(actions(&records, "key_rotation_finished").len(), 1);
}

/// Each customer's blind indexes and their version, read from the store itself.
async fn stored_indexes(server: &Server) -> Vec<(String, Option<String>, Option<String>, i64)> {
    use sqlx::Connection;
    let sql = "SELECT id, phone_idx, email_idx, index_version FROM customers \
               WHERE length(wrapped_key) > 0 ORDER BY id";
    match &server.database_url {
        None => {
            let url = format!("sqlite://{}?mode=ro", server.sqlite_path().display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap()
        }
    }
}

/// Person `i`'s phone as `people` wrote it.
fn person_phone(i: usize) -> String {
    format!("+86 139 {:04} {:04}", i / 10_000, i % 10_000)
}

/// A leaked file naming persons `from..from + count` by phone.
fn leak(from: usize, count: usize) -> Vec<u8> {
    let mut out = String::from("name,phone\n");
    for i in from..from + count {
        out.push_str(&format!("Person {i},{}\n", person_phone(i)));
    }
    out.into_bytes()
}

#[tokio::test]
async fn a_blind_index_rotation_reindexes_everyone_while_lookups_go_on() {
    for backend in Backend::all() {
        let options = Options {
            config_toml: Some("[keys]\nrotation_batch = 100\nrotation_pause_ms = 150\n".into()),
            ..Options::default()
        };
        let mut server = Server::start_with(backend, options).await;
        let w = world(&server).await;
        let c = server.client();
        import(&server, 0, 1_000).await;
        // Two customers share a number: a contact from it matches both and opens no
        // case; the CRM opens one later, naming the contact.
        let shared = "13700001111";
        let first = c
            .create_customer(
                &w.crm,
                "Wang Fang",
                shared,
                "wf@example.com",
                "ACC-0000000101",
            )
            .await;
        c.create_customer(
            &w.crm,
            "Wang Lei",
            shared,
            "wl@example.com",
            "ACC-0000000102",
        )
        .await;
        let r = c.post_contact(&w.switch, shared, "alice").await;
        assert_eq!(
            (r.status, r.body["matches"].as_u64()),
            (201, Some(2)),
            "{}",
            r.body
        );
        let contact = r.body["id"].as_str().unwrap().to_owned();
        let t = c.trace_upload(&w.analyst, "", &leak(0, 20)).await;
        assert_eq!(t.body["matched"], 20, "before: {}", t.text);
        let before = stored_indexes(&server).await;
        assert_eq!(before.len(), 1_003);
        assert!(before.iter().all(|(_, _, _, v)| *v == 1));

        let r = c.get(&server.admin, "/v1/keys/index/rotation").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            (
                r.body["current_index_key"].as_str(),
                r.body["rotation"].as_i64()
            ),
            (Some("index:v1"), Some(0))
        );
        for t in [&w.agent, &w.analyst, &w.crm] {
            assert_eq!(
                c.post_empty(t, "/v1/keys/index/rotations").await.status,
                403
            );
            assert_eq!(c.get(t, "/v1/keys/index/rotation").await.status, 403);
        }
        let r = c
            .post_empty(&server.admin, "/v1/keys/index/rotations")
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(r.body["current_index_key"], "index:v2");
        assert_eq!(r.body["total"], 1_003);
        let r = c
            .post_empty(&server.admin, "/v1/keys/index/rotations")
            .await;
        assert_eq!(
            (r.status, r.code()),
            (409, "rotation_in_progress"),
            "{}",
            r.text
        );

        // While it runs (and after): every lookup finds its customer, whichever key
        // that customer's indexes are under at the moment.
        let mut during = 0;
        let mut person = 0;
        loop {
            let s = c.get(&server.admin, "/v1/keys/index/rotation").await;
            let finished = s.body["finished"] == true;
            let r = c
                .post_contact(&w.switch, &person_phone(person), "alice")
                .await;
            assert_eq!(r.status, 201, "{}", r.body);
            assert_eq!(r.body["matches"], 1, "person {person}: {}", r.body);
            let t = c.trace_upload(&w.analyst, "", &leak(person, 20)).await;
            assert_eq!(t.status, 200, "{}", t.text);
            assert_eq!(t.body["matched"], 20, "{}", t.text);
            // Persons 0..1000 were imported; each file names 20 from `person` on.
            person = (person + 37) % 980;
            if finished {
                break;
            }
            during += 1;
        }
        assert!(during >= 1, "looked up while the rotation ran");
        let status = c.get(&server.admin, "/v1/keys/index/rotation").await.body;
        assert_eq!(status["reindexed"], 1_003, "{status}");

        // Every customer is under v2, with indexes that are all new.
        let after = stored_indexes(&server).await;
        assert_eq!(after.len(), 1_003);
        for ((id, phone, email, _), (id2, phone2, email2, version)) in before.iter().zip(&after) {
            assert_eq!((id, *version), (id2, 2));
            assert!(
                phone2.is_some() && phone != phone2,
                "{id}: phone index moved"
            );
            assert!(
                email2.is_some() && email != email2,
                "{id}: email index moved"
            );
        }
        // The contact kept from before the rotation still verifies its customer.
        let r = c
            .post(
                &w.crm,
                "/v1/cases",
                serde_json::json!({"customer": first, "assignee": "alice",
                "channel": "phone", "reason": "caller chose the account", "contact": contact}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["provenance"], "verified", "{}", r.body);
        // The agent's own search finds the customer by the new index.
        let r = c
            .get(&w.agent, &format!("/v1/customers?phone={PHONE}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.text.contains(&w.customer), "{}", r.text);

        // The ledger: the admin's request, the steps and the end, on the index key.
        let records = access_records(&server, "limit=10000").await;
        let asked: Vec<Value> = actions(&records, "rotate_keys")
            .into_iter()
            .filter(|r| r["decision"] == "allow")
            .collect();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert_eq!(asked[0]["target"], "blind_index");
        let has = |r: &Value, fact: &str| r["fields"].as_array().unwrap().iter().any(|f| f == fact);
        assert!(has(&asked[0], "index:v2"), "{asked:?}");
        let steps = actions(&records, "key_rotation_step");
        assert!(
            steps.len() >= 10,
            "a step per batch of 100: {}",
            steps.len()
        );
        assert!(steps.iter().all(|s| s["target"] == "blind_index"));
        let finished = actions(&records, "key_rotation_finished");
        assert_eq!(finished.len(), 1);
        assert!(has(&finished[0], "index:v2"), "{finished:?}");

        // After a restart the server indexes under v2 at once.
        server.restart();
        let c = server.client();
        let r = c.get(&server.admin, "/v1/keys/index/rotation").await;
        assert_eq!(r.body["current_index_key"], "index:v2", "{}", r.text);
        let r = c.post_contact(&w.switch, &person_phone(999), "alice").await;
        assert_eq!(r.body["matches"], 1, "{}", r.body);
        let id = c
            .create_customer(
                &w.crm,
                "Liu Yang",
                "13600002222",
                "ly@example.com",
                "ACC-0000000103",
            )
            .await;
        let mine = stored_indexes(&server).await;
        assert!(mine.iter().any(|(i, _, _, v)| *i == id && *v == 2));
        if backend == Backend::Sqlite {
            // `custos trace`, which reads the store without the server, uses the new key.
            let dir = server.dir.path();
            let file = dir.join("leak.csv");
            std::fs::write(&file, leak(0, 30)).unwrap();
            let report = dir.join("report.json");
            let data_dir = server.data_dir();
            let o = custos(&[
                "trace",
                file.to_str().unwrap(),
                "--data-dir",
                data_dir.to_str().unwrap(),
                "--report",
                report.to_str().unwrap(),
                "--quiet",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let r: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
            assert_eq!(r["matched"], 30, "{r}");
        }
    }
}
