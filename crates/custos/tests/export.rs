//! Integration tests: the SIEM export, end to end, on both stores. A real `rsyslogd`
//! (started here, TLS on a loopback port, with a certificate authority made here) and a
//! real HTTPS server receive every ledger entry and alert as an OCSF event: each entry
//! exactly as the ledger holds it, none missing, across a restart of the server in the
//! middle; no customer's or staff member's value in any of it; every event valid under
//! the OCSF 1.8.0 schema (tests/export/validate.py).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::Value;

/// How long the export may take to deliver what the ledger holds.
const DELIVERY_WAIT: Duration = Duration::from_secs(30);

/// A certificate authority and a `localhost` certificate it signed, in PEM files.
struct Certificates {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
    key_pem: String,
}

impl Certificates {
    fn make(dir: &Path) -> Certificates {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_pem = params.self_signed(&ca_key).expect("CA").pem();
        let issuer = Issuer::new(params, ca_key);
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert_pem = leaf.signed_by(&key, &issuer).expect("leaf").pem();
        let key_pem = key.serialize_pem();
        let certs = Certificates {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            cert_pem,
            key_pem,
        };
        std::fs::write(&certs.ca, ca_pem).unwrap();
        std::fs::write(&certs.cert, &certs.cert_pem).unwrap();
        std::fs::write(&certs.key, &certs.key_pem).unwrap();
        certs
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real rsyslogd in the foreground, its own configuration and pid file, taking syslog
/// over TLS (gtls) on `port` and writing what it parsed, in RFC 5424 form, to `file`.
struct Rsyslog {
    child: Child,
    port: u16,
    file: PathBuf,
}

impl Rsyslog {
    fn start(dir: &Path, certs: &Certificates) -> Rsyslog {
        let rsyslogd = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("rsyslogd is not installed (Debian: rsyslog rsyslog-gnutls; .ci/test installs them)");
        let port = free_port();
        let file = dir.join("received.log");
        let work = dir.join("rsyslog-work");
        std::fs::create_dir_all(&work).unwrap();
        let config = format!(
            r#"global(
  workDirectory="{work}"
  maxMessageSize="64k"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="export")
ruleset(name="export") {{
  action(type="omfile" file="{file}" template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
            work = work.display(),
            ca = certs.ca.display(),
            cert = certs.cert.display(),
            key = certs.key.display(),
            file = file.display(),
        );
        let config_path = dir.join("rsyslog.conf");
        std::fs::write(&config_path, config).unwrap();
        let child = Command::new(rsyslogd)
            .arg("-n")
            .arg("-f")
            .arg(&config_path)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("rsyslog.stderr")).unwrap(),
            ))
            .spawn()
            .expect("start rsyslogd");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rsyslogd did not listen: {}",
                std::fs::read_to_string(dir.join("rsyslog.stderr")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog { child, port, file }
    }

    /// Every line rsyslogd wrote so far.
    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.file)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real HTTPS server (rustls) that keeps the body of every POST to `/events`.
async fn https_receiver(certs: &Certificates) -> (u16, Arc<Mutex<Vec<String>>>) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = kept.clone();
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer export-test-token")
                    {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    kept.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&body).into_owned());
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        certs.cert_pem.clone().into_bytes(),
        certs.key_pem.clone().into_bytes(),
    )
    .await
    .expect("receiver TLS");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = axum_server::from_tcp_rustls(listener, tls).expect("receiver");
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    (port, bodies)
}

/// The OCSF event in a line rsyslogd wrote, after checking the line's RFC 5424 header as
/// rsyslogd parsed it: version 1, our host name and APP-NAME, MSGID `ocsf.<class_uid>`.
fn event_of_line(line: &str) -> Value {
    let (header, json) = line
        .split_once(" - {")
        .unwrap_or_else(|| panic!("not a structured-data-less RFC 5424 line: {line}"));
    let fields: Vec<&str> = header.split(' ').collect();
    assert_eq!(fields.len(), 6, "{line}");
    assert!(
        fields[0].starts_with('<') && fields[0].ends_with(">1"),
        "{line}"
    );
    assert!(
        fields[1].ends_with('Z') && fields[1].contains('T'),
        "{line}"
    );
    assert_eq!(&fields[2..5], ["export-test", "custos", "-"], "{line}");
    let event: Value = serde_json::from_str(&format!("{{{json}")).expect("JSON event");
    assert_eq!(fields[5], format!("ocsf.{}", event["class_uid"]), "{line}");
    event
}

/// Waits until both sinks hold an event for every ledger index below `size` and for
/// every alert id of `alerts`; returns what each received, by `metadata.uid`.
async fn delivered(
    rsyslog: &Rsyslog,
    https: &Arc<Mutex<Vec<String>>>,
    size: u64,
    alerts: &[String],
) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let by_uid = |events: Vec<Value>| -> BTreeMap<String, Value> {
            events
                .into_iter()
                .map(|e| (e["metadata"]["uid"].as_str().unwrap().to_owned(), e))
                .collect()
        };
        let syslog = by_uid(rsyslog.lines().iter().map(|l| event_of_line(l)).collect());
        let posted = by_uid(
            https
                .lock()
                .unwrap()
                .iter()
                .flat_map(|body| {
                    serde_json::from_str::<Vec<Value>>(body).expect("a JSON array of events")
                })
                .collect(),
        );
        let complete = |got: &BTreeMap<String, Value>| {
            (0..size).all(|i| got.contains_key(&i.to_string()))
                && alerts.iter().all(|id| got.contains_key(id))
        };
        if complete(&syslog) && complete(&posted) {
            return (syslog, posted);
        }
        assert!(
            Instant::now() < deadline,
            "not every event arrived: syslog {} and https {} of {size} entries and {} alerts",
            syslog.len(),
            posted.len(),
            alerts.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every ledger entry, as an analyst reads it.
async fn ledger(c: &Client, analyst: &str) -> Vec<Value> {
    let r = c.get(analyst, "/v1/ledger/entries?from=0&limit=1000").await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["entries"].as_array().unwrap().clone()
}

/// The event of ledger entry `entry` says what the entry says.
fn assert_event_is_entry(event: &Value, entry: &Value) {
    let index = entry["seq"].as_u64().unwrap();
    assert_eq!(event["metadata"]["uid"], index.to_string());
    assert_eq!(event["metadata"]["version"], "1.8.0");
    assert_eq!(event["time"], entry["at"], "{index}");
    assert_eq!(event["actor"]["user"]["uid"], entry["staff_id"], "{index}");
    assert_eq!(
        event["actor"]["user"]["org"]["uid"], entry["org"],
        "{index}"
    );
    assert_eq!(event["message"], entry["action"], "{index}");
    assert_eq!(event["status_code"], entry["reason_code"], "{index}");
    assert_eq!(
        event["actor"]["authorizations"][0]["decision"],
        entry["decision"]
    );
    let unmapped = &event["unmapped"];
    assert_eq!(unmapped["ledger_index"], index);
    assert_eq!(unmapped["request_id"], entry["request_id"]);
    for key in ["customer_id", "case_id", "target"] {
        assert_eq!(
            unmapped.get(key).unwrap_or(&Value::Null),
            &entry[key],
            "{key} of {index}"
        );
    }
    let fields = unmapped
        .get("fields")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    assert_eq!(fields, entry["fields"], "{index}");
}

// Several threads: the HTTPS receiver runs on this runtime and must keep answering while
// the test thread waits for a stopping server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_and_alert_reaches_syslog_and_https_once_at_least() {
    let collected = tempfile::tempdir().unwrap();
    for backend in Backend::all() {
        let dir = tempfile::tempdir().unwrap();
        let certs = Certificates::make(dir.path());
        let rsyslog = Rsyslog::start(dir.path(), &certs);
        let (https_port, posted) = https_receiver(&certs).await;
        let token_file = dir.path().join("export.token");
        std::fs::write(&token_file, "export-test-token\n").unwrap();
        let config = format!(
            r#"
[export]
batch = 7

[export.syslog]
address = "127.0.0.1:{syslog_port}"
ca_file = "{ca}"
server_name = "localhost"
hostname = "export-test"

[export.https]
url = "https://localhost:{https_port}/events"
ca_file = "{ca}"
token_file = "{token}"
"#,
            syslog_port = rsyslog.port,
            ca = certs.ca.display(),
            token = token_file.display(),
        );
        let mut server = Server::start_with(
            backend,
            Options {
                config_toml: Some(config),
                ..Options::default()
            },
        )
        .await;
        let w = world(&server).await;
        let c = server.client();
        assert_eq!(c.view(&w.agent, &w.customer, &w.case).await.status, 200);
        let canaries = plant_canaries(&server, 2);
        let case = c.open_case(&w.crm, &canaries[0], "alice").await;
        assert_eq!(c.view(&w.agent, &canaries[0], &case).await.status, 200);
        let alert_ids: Vec<String> = alerts_of(&c, &w.analyst, "alice")
            .await
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(alert_ids.len(), 1);

        // Stopped in the middle, and started again: the export goes on from its cursor.
        // (Before: rsyslogd's complaints about the test's own readiness probe, a bare
        // TCP connection.)
        let complaints = dir.path().join("rsyslog.stderr");
        let before = std::fs::read_to_string(&complaints)
            .unwrap_or_default()
            .len();
        server.restart();
        // The stop ended the TLS session with close_notify, not a truncation.
        let said = std::fs::read_to_string(&complaints).unwrap_or_default();
        assert!(
            !said[before..].contains("non-properly terminated"),
            "{}\n{}",
            &said[before..],
            std::fs::read_to_string(server.log_path()).unwrap_or_default()
        );
        let c = server.client();
        assert_eq!(
            c.view(&w.partner_agent, &w.customer, &w.partner_case)
                .await
                .status,
            200
        );
        assert_eq!(c.view(&w.agent, &w.customer, &w.case).await.status, 403);

        let entries = ledger(&c, &w.analyst).await;
        let size = entries.len() as u64;
        let (syslog, https) = delivered(&rsyslog, &posted, size, &alert_ids).await;
        for received in [&syslog, &https] {
            for entry in &entries {
                let index = entry["seq"].as_u64().unwrap().to_string();
                assert_event_is_entry(&received[&index], entry);
            }
            let alert = &received[&alert_ids[0]];
            assert_eq!(alert["class_uid"], 2004);
            assert_eq!(alert["finding_info"]["title"], "canary_hit");
            assert_eq!(alert["resources"][0]["uid"], "alice");
        }
        let classes: std::collections::BTreeSet<u64> = syslog
            .values()
            .map(|e| e["class_uid"].as_u64().unwrap())
            .collect();
        assert_eq!(
            classes.into_iter().collect::<Vec<_>>(),
            [2004, 3001, 3002, 6003],
            "every class appears"
        );

        // No value of a customer or of a member of staff went out: only ids.
        let raw_syslog = std::fs::read_to_string(&rsyslog.file).unwrap();
        let raw_https = posted.lock().unwrap().join("\n");
        for raw in [&raw_syslog, &raw_https] {
            for value in [
                PHONE,
                "+8613800138000",
                NAME,
                EMAIL,
                &EMAIL.to_lowercase(),
                ACCOUNT,
                "Staff alice",
            ] {
                assert!(!raw.contains(value), "{value} was exported");
            }
        }
        let log = std::fs::read_to_string(server.log_path()).unwrap();
        assert!(!log.contains("export-test-token"));

        // What both sinks got, for the schema check below.
        let name = format!("{backend:?}").to_lowercase();
        std::fs::write(
            collected.path().join(format!("{name}-syslog.jsonl")),
            syslog
                .values()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .unwrap();
        std::fs::write(
            collected.path().join(format!("{name}-https.jsonl")),
            raw_https,
        )
        .unwrap();
    }
    validate_against_the_ocsf_schema(collected.path());
}

/// Runs tests/export/validate.py over every file of events in `dir`.
fn validate_against_the_ocsf_schema(dir: &Path) {
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/export");
    let venv = Command::new("bash")
        .arg(format!("{here}/venv.sh"))
        .output()
        .expect("run venv.sh");
    assert!(
        venv.status.success(),
        "venv.sh: {}",
        String::from_utf8_lossy(&venv.stderr)
    );
    let python = String::from_utf8(venv.stdout).unwrap().trim().to_owned();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let out = Command::new(python)
        .arg(format!("{here}/validate.py"))
        .args(&files)
        .output()
        .expect("run validate.py");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "OCSF validation failed:\n{report}");
    assert!(report.contains(" passed, 0 failed"), "{report}");
}
