//! `custos serve` over TLS, with certificates the tests make: HTTPS with HSTS and a
//! `Secure` console cookie; mutual TLS for integration principals pinned in `[mtls]`
//! (a wrong or unpinned client certificate is refused); and a certificate reloaded on
//! SIGHUP while connections opened before it keep working.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Backend, Client, Options, Server, assert_served_as, create_staff, refused_start};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use sha2::Digest;

/// A certificate authority the test makes.
struct Authority {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Authority {
    fn new() -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("CA key");
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Authority {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names` (the server's address, or a client's name): its certificate
    /// and key in PEM, and the SHA-256 fingerprint of its DER.
    fn leaf(&self, names: &[&str]) -> Leaf {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("leaf params");
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf");
        Leaf {
            fingerprint: hex::encode(sha2::Sha256::digest(cert.der())),
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("root")
    }
}

struct Leaf {
    cert: String,
    key: String,
    fingerprint: String,
}

impl Leaf {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes())
            .expect("identity")
    }

    fn write(&self, dir: &Path, name: &str) {
        std::fs::write(dir.join(format!("{name}.pem")), &self.cert).expect("write cert");
        std::fs::write(dir.join(format!("{name}.key")), &self.key).expect("write key");
    }
}

/// An HTTPS client trusting only `root`, presenting `identity` if given.
fn https(root: &Authority, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([root.root()])
        .timeout(Duration::from_secs(30));
    if let Some(leaf) = identity {
        builder = builder.identity(leaf.identity());
    }
    builder.build().expect("HTTPS client")
}

/// Starts a server on TLS files in its own directory (`server.pem`, `server.key`,
/// `clients.pem`), with `config`.
async fn tls_server(
    ca: &Authority,
    clients: Option<&Authority>,
    config: &str,
) -> (Server, tempfile::TempDir) {
    let files = tempfile::tempdir().expect("tempdir");
    ca.leaf(&["127.0.0.1"]).write(files.path(), "server");
    let mut args = vec![
        "--tls-cert".to_owned(),
        files.path().join("server.pem").display().to_string(),
        "--tls-key".to_owned(),
        files.path().join("server.key").display().to_string(),
    ];
    if let Some(clients) = clients {
        std::fs::write(files.path().join("clients.pem"), &clients.pem).expect("write CA");
        args.extend([
            "--tls-client-ca".to_owned(),
            files.path().join("clients.pem").display().to_string(),
        ]);
    }
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some(config.to_owned()),
            args,
            ..Options::default()
        },
    )
    .await;
    (server, files)
}

#[tokio::test]
async fn https_answers_carry_hsts_and_the_console_cookie_is_secure() {
    let ca = Authority::new();
    let (server, _files) = tls_server(&ca, None, "").await;
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    let http = https(&ca, None);
    let r = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .expect("https");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    // Plain HTTP on the TLS port gets no answer of ours.
    let plain = server.base.replacen("https://", "http://", 1);
    let r = reqwest::get(format!("{plain}/healthz")).await;
    assert!(r.map_or(true, |r| r.status() != 200));
    // A client that does not trust the server's CA does not connect.
    let stranger = Authority::new();
    assert!(
        https(&stranger, None)
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .is_err()
    );

    // The console's cookies are Secure by default under TLS: the sign-in form's and
    // the session's.
    let no_redirects = reqwest::Client::builder()
        .tls_backend_rustls()
        .tls_certs_only([ca.root()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = no_redirects
        .get(format!("{}/signin", server.base))
        .send()
        .await
        .unwrap();
    let form_cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(form_cookie.contains("; Secure"), "{form_cookie}");
    let page = form.text().await.unwrap();
    let signin = page
        .split("name=\"signin\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("signin field")
        .to_owned();
    let r = no_redirects
        .post(format!("{}/signin", server.base))
        .header("cookie", form_cookie.split(';').next().unwrap())
        .header("content-type", "application/x-www-form-urlencoded")
        // Both are URL-safe as they are (hex, and a token of base64url).
        .body(format!("signin={signin}&token={}", server.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test]
async fn a_pinned_principal_is_served_only_with_its_client_certificate() {
    let ca = Authority::new();
    let clients = Authority::new();
    let crm_cert = clients.leaf(&["crm.example.internal"]);
    let other_cert = clients.leaf(&["other.example.internal"]);
    let config = format!("[mtls]\ncrm = [\"{}\"]\n", crm_cert.fingerprint);
    let (server, _files) = tls_server(&ca, Some(&clients), &config).await;
    let plain = Client::with_http(&server.base, https(&ca, None));
    let crm = create_staff(&plain, &server.admin, "crm", "integration", "custos").await;
    let agent = create_staff(&plain, &server.admin, "alice", "support", "custos").await;

    // The pinned principal's token alone: refused, and said why.
    let r = plain.get(&crm, "/v1/me").await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (401, Some("client_certificate_required")),
        "{}",
        r.body
    );
    // With its certificate: served, with or without the token.
    let with_cert = Client::with_http(&server.base, https(&ca, Some(&crm_cert)));
    let r = with_cert.get(&crm, "/v1/me").await;
    assert_served_as(&r, "crm");
    let r = with_cert.get("", "/v1/me").await;
    assert_served_as(&r, "crm");
    // Another certificate of the same CA, not pinned to it: neither speaks for the CRM
    // nor authenticates anyone by itself.
    let other = Client::with_http(&server.base, https(&ca, Some(&other_cert)));
    let r = other.get(&crm, "/v1/me").await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (401, Some("client_certificate_required")),
        "{}",
        r.body
    );
    let r = other.get("", "/v1/me").await;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (401, Some("unauthenticated")),
        "{}",
        r.body
    );
    // A certificate from a CA the server does not trust: the handshake fails.
    let rogue = Authority::new().leaf(&["crm.example.internal"]);
    let r = https(&ca, Some(&rogue))
        .get(format!("{}/v1/me", server.base))
        .send()
        .await;
    assert!(
        r.is_err(),
        "a client certificate of an unknown CA must be refused: {r:?}"
    );
    // A principal without a pin is served by its token, certificate or not.
    let r = plain.get(&agent, "/v1/me").await;
    assert_served_as(&r, "alice");
    let r = with_cert.get(&agent, "/v1/me").await;
    assert_served_as(&r, "alice");
}

#[tokio::test]
async fn a_bad_mtls_pin_is_refused_at_start() {
    let said = refused_start("[mtls]\ncrm = [\"not-a-fingerprint\"]\n");
    assert!(said.contains("mtls.crm"), "{said}");
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_keeps_open_connections() {
    let first = Authority::new();
    let (server, files) = tls_server(&first, None, "").await;
    let old = https(&first, None);
    let healthz = format!("{}/healthz", server.base);
    assert_eq!(old.get(&healthz).send().await.unwrap().status(), 200);

    // A new certificate from another CA, in place of the old files, then SIGHUP.
    let second = Authority::new();
    second.leaf(&["127.0.0.1"]).write(files.path(), "server");
    let pid = server.pid();
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let fresh = https(&second, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if fresh
            .get(&healthz)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new certificate was not taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection opened before the reload still serves (a new one would need the
    // old CA's certificate, which the server no longer has).
    assert_eq!(old.get(&healthz).send().await.unwrap().status(), 200);
    let r = https(&first, None).get(&healthz).send().await;
    assert!(r.is_err(), "a new connection gets the new certificate");

    // A reload that fails (a key that does not match) keeps the configuration in force.
    std::fs::write(
        files.path().join("server.key"),
        Authority::new().leaf(&["127.0.0.1"]).key,
    )
    .unwrap();
    Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        https(&second, None)
            .get(&healthz)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
