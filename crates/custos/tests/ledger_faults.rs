//! Failed writes under a running server: the real binary, a real full filesystem, a
//! real `/dev/full`. A log line that cannot be written costs nothing; a ledger write that
//! fails refuses requests with 503 `ledger_unavailable` (never a dropped connection),
//! `/healthz` says why, and once space returns the server writes again by itself — its
//! first entry saying between which times writes were refused — and the ledger verifies.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A `custos serve` spawned by a test; killed on drop, then its tmpfs (if any) unmounted.
struct Spawned {
    child: Child,
    base: String,
    admin: String,
    data: PathBuf,
    tmpfs: bool,
    _root: tempfile::TempDir,
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.tmpfs {
            let _ = Command::new("umount").arg("-l").arg(&self.data).status();
        }
    }
}

impl Spawned {
    /// Starts `custos serve` on `root/data` with standard error going to `stderr`.
    /// Panics (naming the exit status) if it does not come up.
    fn start(root: tempfile::TempDir, tmpfs: bool, stderr: Stdio) -> Spawned {
        let data = root.path().join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn custos");
        let base = match announced_url(&mut child) {
            Ok(base) => base,
            Err(line) => {
                let status = child.wait().expect("wait");
                if tmpfs {
                    let _ = Command::new("umount").arg("-l").arg(&data).status();
                }
                panic!("the server did not start: first line {line:?}, exit {status}");
            }
        };
        let admin = std::fs::read_to_string(data.join("admin.token"))
            .expect("admin token")
            .trim()
            .to_owned();
        Spawned {
            child,
            base,
            admin,
            data,
            tmpfs,
            _root: root,
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.base)
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

/// Mounts a tmpfs of `bytes` on `dir`, or says why not (mounting needs root).
fn mount_tmpfs(dir: &Path, bytes: u64) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    match Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
        .arg(dir)
        .output()
    {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs (needs root): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot run mount: {e}");
            false
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The one refusal every request gets while the ledger cannot write.
fn assert_ledger_unavailable(r: &Answer) {
    assert_eq!(
        (r.status, r.code()),
        (503, "ledger_unavailable"),
        "{}",
        r.text
    );
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.text
    );
}

/// A fact `prefix<n>` of an entry, as a number.
fn fact(entry: &Value, prefix: &str) -> i64 {
    entry["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|f| f.as_str()?.strip_prefix(prefix)?.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} fact in {entry}"))
}

/// Standard error on `/dev/full`: every log line fails to be written, and the server
/// still starts, answers and records, and the ledger it signed verifies.
#[tokio::test]
async fn serves_with_standard_error_on_dev_full() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("SKIPPED: no /dev/full");
        return;
    };
    let mut server = Spawned::start(tempfile::tempdir().unwrap(), false, Stdio::from(full));
    let c = server.client();
    let health = c.send(c.http.get(format!("{}/healthz", c.base))).await;
    assert_eq!(
        (health.status, &health.body),
        (200, &json!({"status": "ok"}))
    );
    let agent = create_staff(&c, &server.admin, "alice", "support", "custos").await;
    let me = c.get(&agent, "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    // Denied and failed requests log too.
    assert_eq!(c.get("not-a-token", "/v1/me").await.status, 401);
    assert_eq!(c.get(&agent, "/v1/customers/nobody").await.status / 100, 4);
    assert!(server.still_running());
    // What it recorded meanwhile is in a checkpoint, and the ledger verifies.
    let analyst = create_staff(&c, &server.admin, "sec", "security_analyst", "custos").await;
    let me = c.get(&agent, "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    checkpoint_covering(&c, ledger_index(&me) + 1, CHECKPOINT_WAIT).await;
    let key = custos(&["ledger", "key", "--data-dir", server.data.to_str().unwrap()]);
    assert!(key.status.success(), "{}", stderr(&key));
    let key = stdout(&key).trim().to_owned();
    let url = format!("{}/ledger", server.base);
    let o = custos(&[
        "ledger", "verify", "--url", &url, "--key", &key, "--token", &analyst,
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    println!(
        "PASS chaos log disk full: standard error on /dev/full, the server serves and records, ledger verified"
    );
}

/// Data directory and log on one filesystem that fills up: requests are refused with
/// 503 and answered, `/healthz` says why; after space returns the server writes again
/// without a restart, records the refusal, and the ledger verifies.
#[tokio::test]
async fn a_full_disk_refuses_then_recovers_without_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    if !mount_tmpfs(&data, 16 << 20) {
        return;
    }
    let log = std::fs::File::create(data.join("server.log")).unwrap();
    let mut server = Spawned::start(root, true, Stdio::from(log));
    let c = server.client();
    let admin = server.admin.clone();
    let crm = create_staff(&c, &admin, "crm", "integration", "custos").await;
    let agent = create_staff(&c, &admin, "alice", "support", "custos").await;
    let analyst = create_staff(&c, &admin, "sec", "security_analyst", "custos").await;
    let customer = c.create_customer(&crm, NAME, PHONE, EMAIL, ACCOUNT).await;
    let case = c.open_case(&crm, &customer, "alice").await;
    let ok = c.view(&agent, &customer, &case).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    // Fill the filesystem (the log file with it).
    let filler = server.data.join("filler");
    let mut file = std::fs::File::create(&filler).unwrap();
    for size in [64 * 1024, 4096, 1] {
        let chunk = vec![0u8; size];
        while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    }
    let refused_from = now_ms();
    // The write-ahead file's last page may still take a few entries; every answer is a
    // 200 (recorded) or the 503, never a dropped connection.
    let mut last_ok = ledger_index(&ok);
    let mut answered = 0;
    loop {
        let r = c.view(&agent, &customer, &case).await;
        if r.status == 503 {
            assert_ledger_unavailable(&r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text);
        last_ok = ledger_index(&r);
        answered += 1;
        assert!(answered < 1000, "the full disk never refused an append");
    }
    let mut refused = 1;
    for _ in 0..5 {
        assert_ledger_unavailable(&c.view(&agent, &customer, &case).await);
        assert_ledger_unavailable(&c.get(&agent, "/v1/me").await);
        refused += 2;
    }
    // An act the ledger cannot record does not happen.
    assert_ledger_unavailable(&c.post_empty(&admin, "/v1/staff/alice/suspend").await);
    refused += 1;
    let health = c.send(c.http.get(format!("{}/healthz", c.base))).await;
    assert_ledger_unavailable(&health);
    let why = health.body["error"]["message"].as_str().unwrap();
    assert!(why.contains("ledger_io"), "{why}");
    // The writer keeps probing; the disk is still full, so nothing changes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_ledger_unavailable(&c.view(&agent, &customer, &case).await);
    refused += 1;
    assert_ledger_unavailable(&c.send(c.http.get(format!("{}/healthz", c.base))).await);
    let refused_until = now_ms();

    // Space returns; no restart.
    drop(file);
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let h = c.send(c.http.get(format!("{}/healthz", c.base))).await;
        if h.status == 200 {
            break;
        }
        assert_ledger_unavailable(&h);
        assert!(Instant::now() < deadline, "the ledger never wrote again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = c.view(&agent, &customer, &case).await;
    assert_eq!(again.status, 200, "{}", again.text);
    // Alice is still active: the refused suspension never happened.
    let me = c.get(&agent, "/v1/me").await;
    assert_eq!(
        (me.status, me.body["status"].as_str()),
        (200, Some("active")),
        "{}",
        me.text
    );
    assert!(server.still_running(), "recovered without a restart");

    // The first entry after the last acknowledged one says writes were refused, and
    // between which times; nothing of the refused requests is in the ledger.
    let r = c
        .get(
            &analyst,
            &format!("/v1/ledger/entries?from={}&limit=2", last_ok + 1),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let refusal = &r.body["entries"][0];
    assert_eq!(refusal["seq"], last_ok + 1, "{}", r.text);
    assert_eq!(refusal["action"], "ledger_writes_refused", "{}", r.text);
    assert_eq!(
        (&refusal["staff_id"], &refusal["role"]),
        (&json!("system"), &json!("system"))
    );
    assert_eq!(refusal["reason_code"], "ledger_io");
    let (from, until) = (fact(refusal, "from:"), fact(refusal, "until:"));
    assert!(
        refused_from <= from && from <= until && until <= refusal["at"].as_i64().unwrap(),
        "{refusal}"
    );
    assert!(from <= refused_until, "{refusal}");
    assert!(
        fact(refusal, "refused_records:") >= refused,
        "at least the {refused} refused requests: {refusal}"
    );
    assert_eq!(r.body["entries"][1]["seq"], last_ok + 2);
    let again_index = ledger_index(&again);
    assert!(again_index > last_ok + 1);

    // The ledger verifies, over HTTP, with the refusal in it.
    checkpoint_covering(&c, again_index + 1, CHECKPOINT_WAIT).await;
    let key = custos(&["ledger", "key", "--data-dir", server.data.to_str().unwrap()]);
    assert!(key.status.success(), "{}", stderr(&key));
    let key = stdout(&key).trim().to_owned();
    let url = format!("{}/ledger", server.base);
    let o = custos(&[
        "ledger", "verify", "--url", &url, "--key", &key, "--token", &analyst,
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("ledger verified"), "{}", stdout(&o));
    println!(
        "PASS chaos ledger disk filled and freed: {refused} requests refused with ledger_unavailable, recovered without a restart, ledger verified"
    );
}
