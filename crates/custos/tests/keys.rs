//! Key providers and online rotation of the key-encryption key, against a real PKCS#11
//! token (SoftHSM2, made fresh by `tests/softhsm/init-token.sh`):
//! - a rotation from the key file onto the token re-wraps every data key while an agent
//!   keeps reading; each step is a ledger entry; new customers are wrapped on the token;
//!   the server restarts onto the token; a server that cannot reach the token refuses to
//!   start rather than serve what it cannot open;
//! - a rotation cut by `kill -9` resumes at the next start and finishes.

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
