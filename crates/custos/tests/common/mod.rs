//! Test harness: the real `custos` binary on a free loopback port, driven over HTTP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// Which store a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Backends to run a test on: SQLite always, PostgreSQL unless explicitly skipped.
    pub(crate) fn all() -> Vec<Backend> {
        if std::env::var("TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            vec![Backend::Sqlite]
        } else {
            vec![Backend::Sqlite, Backend::Postgres]
        }
    }
}

fn maintenance_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub(crate) async fn fresh_postgres() -> String {
    use sqlx::Connection;
    let base = maintenance_url();
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("PostgreSQL must be reachable (set TEST_SKIP_POSTGRES=1 to skip)");
    let name = format!("custos_it_{}", hex::encode(rand::random::<[u8; 6]>()));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let (prefix, _) = base.rsplit_once('/').expect("database url has a path");
    format!("{prefix}/{name}")
}

/// A running `custos serve`.
pub(crate) struct Server {
    child: Option<Child>,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
    /// Whether the harness created the database, and so drops it.
    drops_database: bool,
    pub admin: String,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    tmpfs: bool,
}

/// Options for starting a server.
#[derive(Default, Clone)]
pub(crate) struct Options {
    pub config_toml: Option<String>,
    pub env: Vec<(String, String)>,
    pub policies: Option<PathBuf>,
    /// Put the data directory on a tmpfs of this size (needs root; see `on_tmpfs`).
    pub tmpfs_bytes: Option<u64>,
    /// Further `custos serve` arguments.
    pub args: Vec<String>,
    /// For [`Backend::Postgres`]: a database the test manages itself (the harness then
    /// neither creates nor drops one).
    pub database_url: Option<String>,
}

impl Server {
    pub(crate) async fn start(backend: Backend) -> Server {
        Self::start_with(backend, Options::default()).await
    }

    pub(crate) async fn start_with(backend: Backend, options: Options) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, drops_database) = match (backend, &options.database_url) {
            (Backend::Sqlite, _) => (None, false),
            (Backend::Postgres, Some(url)) => (Some(url.clone()), false),
            (Backend::Postgres, None) => (Some(fresh_postgres().await), true),
        };
        let mut extra_args = Vec::new();
        if let Some(toml) = &options.config_toml {
            let path = dir.path().join("custos.toml");
            std::fs::write(&path, toml).expect("write config");
            extra_args.extend(["--config".to_owned(), path.display().to_string()]);
        }
        if let Some(p) = &options.policies {
            extra_args.extend(["--policies".to_owned(), p.display().to_string()]);
        }
        if let Some(url) = &database_url {
            extra_args.extend(["--database-url".to_owned(), url.clone()]);
        }
        extra_args.extend(options.args.iter().cloned());
        let mut server = Server {
            child: None,
            base: String::new(),
            dir,
            database_url,
            drops_database,
            admin: String::new(),
            extra_args,
            env: options.env,
            tmpfs: false,
        };
        if let Some(bytes) = options.tmpfs_bytes {
            std::fs::create_dir_all(server.data_dir()).expect("data dir");
            server.tmpfs = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
                .arg("tmpfs")
                .arg(server.data_dir())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        }
        server.spawn();
        server.admin = std::fs::read_to_string(server.data_dir().join("admin.token"))
            .expect("admin token written")
            .trim()
            .to_owned();
        server
    }

    /// A server on a data directory made elsewhere (`dir/data`, e.g. by `custos
    /// restore`), on `database_url` if given (dropped with the server), whose admin's
    /// token is `admin`.
    pub(crate) fn start_on(
        dir: tempfile::TempDir,
        database_url: Option<String>,
        admin: &str,
    ) -> Server {
        let extra_args = database_url
            .iter()
            .flat_map(|url| ["--database-url".to_owned(), url.clone()])
            .collect();
        let mut server = Server {
            child: None,
            base: String::new(),
            dir,
            drops_database: database_url.is_some(),
            database_url,
            admin: admin.to_owned(),
            extra_args,
            env: Vec::new(),
            tmpfs: false,
        };
        server.spawn();
        server
    }

    /// Whether the data directory is on its own tmpfs (see [`Options::tmpfs_bytes`]).
    pub(crate) fn on_tmpfs(&self) -> bool {
        self.tmpfs
    }

    pub(crate) fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    pub(crate) fn sqlite_path(&self) -> PathBuf {
        self.data_dir().join("custos.db")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_custos"))
            .args([
                "--log-format",
                "json",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(self.data_dir())
            .args(&self.extra_args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn custos");
        let url = announced_url(&mut child).unwrap_or_else(|line| {
            panic!(
                "unexpected first line {line:?}; log: {}",
                std::fs::read_to_string(self.log_path()).unwrap_or_default()
            )
        });
        self.base = url;
        self.child = Some(child);
    }

    /// The server's process id (to signal it).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Stops the server with SIGTERM and waits for it.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }

    /// Kills the server with SIGKILL: no shutdown code runs.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Another gateway node on this server's PostgreSQL database, with its
    /// configuration: its own data directory, holding copies of this node's master key
    /// and ledger key (what README.md asks of every node), and the same bootstrap admin. The database stays
    /// this server's to drop.
    pub(crate) fn join(&self) -> Server {
        assert!(
            self.database_url.is_some(),
            "only a PostgreSQL server can be joined"
        );
        let node = Self::node_dir(self, true);
        let mut server = Server {
            child: None,
            base: String::new(),
            dir: node,
            database_url: None,
            drops_database: false,
            admin: self.admin.clone(),
            // The same database, configuration and policies.
            extra_args: self.extra_args.clone(),
            env: self.env.clone(),
            tmpfs: false,
        };
        server.spawn();
        server
    }

    /// A fresh directory for another node, its `data/` holding this node's master key
    /// and (when `ledger_key`) its ledger key.
    pub(crate) fn node_dir(&self, ledger_key: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("data dir mode");
        let mut keys = vec!["master.key"];
        if ledger_key {
            keys.push("ledger.key");
        }
        for key in keys {
            std::fs::copy(self.data_dir().join(key), data.join(key)).expect("copy key");
        }
        dir
    }

    /// Starts the server again on the same data after [`Server::kill9`].
    pub(crate) fn respawn(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn();
    }

    /// Stops and starts the server on the same data.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(&self.base)
    }

    /// Creates a staff entry and returns its token.
    pub(crate) async fn staff(&self, id: &str, role: &str, org: &str) -> String {
        create_staff(&self.client(), &self.admin, id, role, org).await
    }

    /// Files holding everything the server stored.
    pub(crate) fn stored_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        collect_files(&self.data_dir(), &mut out);
        out
    }
}

/// Every file under `dir`, recursively.
pub(crate) fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                collect_files(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(url) = self.database_url.take()
            && self.drops_database
        {
            drop_database(url);
        }
        if self.tmpfs {
            let _ = Command::new("umount").arg(self.data_dir()).status();
        }
    }
}

/// Drops a test database (from a plain thread: `Drop` may run inside a Tokio runtime).
fn drop_database(url: String) {
    let _ = std::thread::spawn(move || {
        let Some((_, name)) = url.rsplit_once('/') else {
            return;
        };
        let name = name.to_owned();
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            use sqlx::Connection;
            if let Ok(mut conn) = sqlx::PgConnection::connect(&maintenance_url()).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        });
    })
    .join();
}

/// An answer: status, headers, body as JSON and as text (the API client's own).
pub(crate) use custos_client::Answer;

/// An HTTP client bound to one server: the API's typed client for ordinary calls, and
/// reqwest itself for the requests a test crafts by hand.
#[derive(Clone)]
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    api: custos_client::Client<custos_client::Http>,
}

/// A typed call that got no answer fails the test.
fn answered(result: Result<Answer, custos_client::ClientError>) -> Answer {
    result.expect("request sent")
}

impl Client {
    /// A client of the server at `base`; every request times out after a minute.
    pub(crate) fn new(base: &str) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client");
        Client::with_http(base, http)
    }

    /// A client over an HTTP client of the test's own (its TLS roots and identity).
    pub(crate) fn with_http(base: &str, http: reqwest::Client) -> Client {
        Client {
            api: custos_client::Client::new(custos_client::Http::with_client(http.clone(), base)),
            http,
            base: base.to_owned(),
        }
    }

    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body").to_vec();
        Answer::new(custos_client::RawAnswer {
            status,
            headers,
            bytes,
        })
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> Answer {
        answered(self.api.get(token, path).await)
    }

    pub(crate) async fn view(&self, token: &str, customer: &str, case: &str) -> Answer {
        answered(self.api.view(token, customer, case).await)
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> Answer {
        answered(self.api.post(token, path, &body).await)
    }

    pub(crate) async fn post_raw(
        &self,
        token: &str,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }

    pub(crate) async fn delete(&self, token: &str, path: &str) -> Answer {
        self.send(
            self.http
                .delete(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }

    pub(crate) async fn post_empty(&self, token: &str, path: &str) -> Answer {
        answered(self.api.post_empty(token, path).await)
    }

    pub(crate) async fn reveal(
        &self,
        token: &str,
        customer: &str,
        case: &str,
        fields: &[&str],
    ) -> Answer {
        let request = custos_client::RevealRequest {
            fields,
            case,
            reason: "customer asked for a call-back",
            step_up_reason: None,
        };
        answered(self.api.reveal(token, customer, &request).await)
    }

    pub(crate) async fn create_customer(
        &self,
        token: &str,
        name: &str,
        phone: &str,
        email: &str,
        account: &str,
    ) -> String {
        let r = self
            .post(token, "/v1/customers", json!({"name": name, "phone": phone, "email": email, "account_id": account, "attributes": {"tier": "gold"}}))
            .await;
        assert_eq!(r.status, 201, "create customer: {}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }

    /// `POST /v1/trace{query}` with `file` as the multipart upload's one file part.
    pub(crate) async fn trace_upload(&self, token: &str, query: &str, file: &[u8]) -> Answer {
        let boundary = "custos-test-boundary-7d1f";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leak.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            self.http
                .post(format!("{}/v1/trace{query}", self.base))
                .bearer_auth(token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(body),
        )
        .await
    }

    /// The contact centre reports a call from `phone` routed to `agent`; its answer.
    pub(crate) async fn post_contact(&self, switch: &str, phone: &str, agent: &str) -> Answer {
        let contact = custos_client::NewContact {
            channel: "phone",
            caller: custos_client::CallerIdentifier::Phone(phone),
            agent,
            at: None,
        };
        answered(self.api.post_contact(switch, &contact).await)
    }

    /// The contact centre reports an app contact routed to `agent`, the caller known by
    /// the customer app's signed `assertion`; its answer.
    pub(crate) async fn post_app_contact(
        &self,
        switch: &str,
        assertion: &str,
        agent: &str,
    ) -> Answer {
        let contact = custos_client::NewContact {
            channel: "app",
            caller: custos_client::CallerIdentifier::AppAssertion(assertion),
            agent,
            at: None,
        };
        answered(self.api.post_contact(switch, &contact).await)
    }

    /// A call from `phone` routed to `agent` opens (or vouches for) the agent's case for
    /// the one customer with that number: a `verified` case, its id.
    pub(crate) async fn verified_case(&self, switch: &str, phone: &str, agent: &str) -> String {
        let r = self.post_contact(switch, phone, agent).await;
        assert_eq!(r.status, 201, "contact: {}", r.body);
        assert_eq!(r.body["provenance"], "verified", "{}", r.body);
        r.body["case"].as_str().expect("case").to_owned()
    }

    /// The CRM opens a case on its own word (`unverified`: views, no reveals).
    pub(crate) async fn open_case(&self, crm: &str, customer: &str, assignee: &str) -> String {
        let r = self
            .post(crm, "/v1/cases", json!({"customer": customer, "assignee": assignee, "channel": "phone", "reason": "delivery question"}))
            .await;
        assert_eq!(r.status, 201, "open case: {}", r.body);
        r.body["id"].as_str().expect("id").to_owned()
    }
}

/// Plants `count` canaries through `custos canary plant` (as admin); their ids.
pub(crate) fn plant_canaries(server: &Server, count: usize) -> Vec<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(["canary", "plant", &count.to_string(), "--url", &server.base])
        .env("CUSTOS_TOKEN", &server.admin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Reads every access record (as admin).
pub(crate) async fn access_records(server: &Server, query: &str) -> Vec<Value> {
    let r = server
        .client()
        .get(&server.admin, &format!("/v1/access?{query}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["records"].as_array().cloned().unwrap_or_default()
}

/// A company with a CRM integration, a contact centre, two agents (one at a partner) and
/// one customer who called each agent from their own number (a `verified` case each).
pub(crate) struct World {
    pub crm: String,
    pub switch: String,
    pub agent: String,
    pub partner_agent: String,
    pub analyst: String,
    pub customer: String,
    pub case: String,
    pub partner_case: String,
}

pub(crate) const PHONE: &str = "13800138000";
pub(crate) const EMAIL: &str = "Zhang.Wei@Example.com";
pub(crate) const NAME: &str = "Zhang Wei";
pub(crate) const ACCOUNT: &str = "ACC-0012345678";

pub(crate) async fn world(server: &Server) -> World {
    let crm = server.staff("crm", "integration", "custos").await;
    let switch = server.staff("switch", "contact_center", "custos").await;
    let agent = server.staff("alice", "support", "custos").await;
    let partner_agent = server.staff("bob", "support", "huaxin-bpo").await;
    let analyst = server.staff("sec", "security_analyst", "custos").await;
    let c = server.client();
    let customer = c.create_customer(&crm, NAME, PHONE, EMAIL, ACCOUNT).await;
    let case = c.verified_case(&switch, PHONE, "alice").await;
    let partner_case = c.verified_case(&switch, PHONE, "bob").await;
    World {
        crm,
        switch,
        agent,
        partner_agent,
        analyst,
        customer,
        case,
        partner_case,
    }
}

/// Waits (bounded, 20 s) for the alerts about `staff`, as `analyst` sees them.
pub(crate) async fn alerts_of(c: &Client, analyst: &str, staff: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = c.get(analyst, "/v1/alerts").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let mine: Vec<Value> = r.body["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["staff_id"] == staff)
            .cloned()
            .collect();
        if !mine.is_empty() {
            return mine;
        }
        assert!(std::time::Instant::now() < deadline, "no alert for {staff}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates a staff entry through `c` as `admin` and returns a token of it.
pub(crate) async fn create_staff(
    c: &Client,
    admin: &str,
    id: &str,
    role: &str,
    org: &str,
) -> String {
    let r = c
        .post(
            admin,
            "/v1/staff",
            json!({"id": id, "name": format!("Staff {id}"), "role": role, "org": org}),
        )
        .await;
    assert_eq!(r.status, 201, "create staff {id}: {}", r.body);
    let r = c.post_empty(admin, &format!("/v1/staff/{id}/tokens")).await;
    assert_eq!(r.status, 201, "token for {id}: {}", r.body);
    r.body["token"].as_str().expect("token").to_owned()
}

/// The ledger index an answer's access record got.
pub(crate) fn ledger_index(a: &Answer) -> u64 {
    a.headers["x-custos-ledger-index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs the `custos` binary to its end.
pub(crate) fn custos(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(args)
        .output()
        .expect("run custos")
}

/// A finished command's standard output.
pub(crate) fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A finished command's standard error.
pub(crate) fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `n` customers, each with an open case for `assignee`.
pub(crate) async fn customers_with_cases(
    c: &Client,
    crm: &str,
    assignee: &str,
    n: usize,
    tag: u32,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let k = tag * 100 + u32::try_from(i).unwrap();
        let customer = c
            .create_customer(
                crm,
                &format!("Customer {k}"),
                &format!("1391234{k:04}"),
                &format!("c{k}@example.com"),
                &format!("ACC-77{k:06}"),
            )
            .await;
        let case = c.open_case(crm, &customer, assignee).await;
        out.push((customer, case));
    }
    out
}

/// The ledger's verifier key, as `custos ledger key` prints it for `server`'s data.
pub(crate) fn verifier_key(server: &Server) -> String {
    let o = custos(&[
        "ledger",
        "key",
        "--data-dir",
        server.data_dir().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).trim().to_owned()
}

/// How long a test waits for a checkpoint over what it wrote (one is signed about once
/// a second).
pub(crate) const CHECKPOINT_WAIT: Duration = Duration::from_secs(10);

/// The address a starting `custos serve` announces on its first line of standard
/// output; the line itself when it is not that.
pub(crate) fn announced_url(child: &mut Child) -> Result<String, String> {
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    match line.trim().strip_prefix("custos listening on ") {
        Some(url) => Ok(url.to_owned()),
        None => Err(line),
    }
}

/// The tree size a checkpoint note covers (0 for a text that is none).
pub(crate) fn checkpoint_size(note: &str) -> u64 {
    note.lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or(0)
}

/// The checkpoint `c` serves, once it covers `size` entries; fails after `within`.
pub(crate) async fn checkpoint_covering(c: &Client, size: u64, within: Duration) -> String {
    let deadline = std::time::Instant::now() + within;
    loop {
        let r = c.get("", "/ledger/checkpoint").await;
        if r.status == 200 && checkpoint_size(&r.text) >= size {
            return r.text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint covering {size} within {within:?} at {}",
            c.base
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `custos ledger verify` of the ledger at `url`, as a witness keeping `state`; its
/// standard output, after asserting it succeeded.
pub(crate) fn verify_ledger(url: &str, key: &str, token: &str, state: &Path) -> String {
    let o = custos(&[
        "ledger",
        "verify",
        "--url",
        url,
        "--key",
        key,
        "--token",
        token,
        "--state",
        state.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// An identity provider for the tests: an Ed25519 signing key, and its key set served
/// over HTTP on a loopback port by a thread of its own (a starting `custos serve` reads
/// it while the test waits for its first line).
pub(crate) struct TokenIssuer {
    pub key: ed25519_dalek::SigningKey,
    pub kid: String,
    pub jwks_url: String,
    pub issuer: &'static str,
    pub audience: &'static str,
    /// The key set as served; [`TokenIssuer::rotate`] replaces it.
    jwks: std::sync::Arc<std::sync::Mutex<String>>,
}

/// Base64url without padding, as JOSE writes it.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> u64 {
    u64::try_from(custos_types::clock::now_millis() / 1000).unwrap()
}

/// `header.claims`, signed with `key` (EdDSA).
pub(crate) fn sign_jwt(key: &ed25519_dalek::SigningKey, header: &Value, claims: &Value) -> String {
    use ed25519_dalek::Signer;
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    format!("{input}.{}", b64url(&key.sign(input.as_bytes()).to_bytes()))
}

impl TokenIssuer {
    /// A provider named `issuer`, whose tokens name `audience`.
    pub(crate) fn start(issuer: &'static str, audience: &'static str) -> TokenIssuer {
        let (key, kid) = Self::new_key();
        let jwks = std::sync::Arc::new(std::sync::Mutex::new(Self::key_set(&key, &kid)));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let jwks_url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let served = jwks.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let app = axum::Router::new().route(
                    "/.well-known/jwks.json",
                    axum::routing::get(move || {
                        let jwks = served.lock().unwrap().clone();
                        async move { jwks }
                    }),
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        TokenIssuer {
            key,
            kid,
            jwks_url,
            issuer,
            audience,
            jwks,
        }
    }

    fn new_key() -> (ed25519_dalek::SigningKey, String) {
        let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let kid = format!("key-{}", hex::encode(rand::random::<[u8; 4]>()));
        (key, kid)
    }

    fn key_set(key: &ed25519_dalek::SigningKey, kid: &str) -> String {
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
            "kid": kid, "x": b64url(key.verifying_key().as_bytes())}]})
        .to_string()
    }

    /// Rotates the signing key: the key set then lists only the new one.
    pub(crate) fn rotate(&mut self) {
        let (key, kid) = Self::new_key();
        *self.jwks.lock().unwrap() = Self::key_set(&key, &kid);
        (self.key, self.kid) = (key, kid);
    }

    /// Claims of a fresh token for `subject` (two minutes to live), with `changes`
    /// merged in (a null removes the claim).
    pub(crate) fn claims(&self, subject: &str, changes: Value) -> Value {
        let now = unix_now();
        let claims = json!({"iss": self.issuer, "aud": self.audience, "sub": subject,
            "iat": now, "exp": now + 120, "jti": hex::encode(rand::random::<[u8; 8]>())});
        merged(claims, &changes)
    }

    /// A token of `claims`, signed with the current key.
    pub(crate) fn mint(&self, claims: &Value) -> String {
        sign_jwt(
            &self.key,
            &json!({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }
}

/// `object` with `changes` merged in: each of their members set, a null one removed.
pub(crate) fn merged(mut object: Value, changes: &Value) -> Value {
    for (name, value) in changes.as_object().expect("changes are an object") {
        if value.is_null() {
            object.as_object_mut().expect("an object").remove(name);
        } else {
            object[name] = value.clone();
        }
    }
    object
}

/// Asserts that `answer` is `GET /v1/me` served to staff member `id`.
pub(crate) fn assert_served_as(answer: &Answer, id: &str) {
    assert_eq!(
        (answer.status, answer.body["id"].as_str()),
        (200, Some(id)),
        "{}",
        answer.body
    );
}

/// Starts `custos serve` with `config` (TOML) in a fresh data directory, which must
/// refuse to start with `config_invalid`; what it said.
pub(crate) fn refused_start(config: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("custos.toml");
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_custos"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run custos serve");
    assert!(!out.status.success(), "started with {config}");
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("config_invalid"), "{config}: {said}");
    said.into_owned()
}

/// The server's `[contacts.app_assertion]` for the customer app's `issuer`.
pub(crate) fn app_assertion_config(issuer: &TokenIssuer) -> String {
    format!(
        "[contacts.app_assertion]\njwks_url = \"{}\"\nissuer = \"{}\"\naudience = \"{}\"\naccount_claim = \"sub\"\nmax_age_seconds = 300\n",
        issuer.jwks_url, issuer.issuer, issuer.audience
    )
}

/// What a [`Load`] saw: the acknowledged requests, and every refusal by status and code.
#[derive(Default, Debug)]
pub(crate) struct LoadOutcome {
    /// Ledger index and request id of every 2xx answer, in no particular order.
    pub acked: Vec<(u64, String)>,
    /// Refusals (non-2xx answers), counted by status and error code.
    pub refusals: std::collections::BTreeMap<(u16, String), u64>,
    /// Requests that got no answer at all (connection refused, reset or timed out).
    pub unanswered: u64,
}

impl LoadOutcome {
    /// Asserts every refusal carried a stable error code and none was a 500.
    pub(crate) fn assert_refusals_coded(&self) {
        for (status, code) in self.refusals.keys() {
            assert!(
                *status != 500 && !code.is_empty(),
                "a refusal without a stable code: {status} {code:?}; all: {:?}",
                self.refusals
            );
        }
    }
}

/// Load on one server: `workers` tasks each alternating `GET /v1/me` and a view of
/// `customer` under `case` as `token`, until stopped. A worker ends at its first
/// request that gets no answer (the server died) when `stop_when_unanswered`.
pub(crate) struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<LoadOutcome>>,
}

impl Load {
    pub(crate) fn start(
        c: &Client,
        token: &str,
        customer: &str,
        case: &str,
        workers: usize,
        stop_when_unanswered: bool,
    ) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..workers)
            .map(|w| {
                let (c, stop) = (c.clone(), stop.clone());
                let (token, customer, case) =
                    (token.to_owned(), customer.to_owned(), case.to_owned());
                tokio::spawn(async move {
                    let mut out = LoadOutcome::default();
                    let mut i = w;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        i += 1;
                        let request = if i % 2 == 0 {
                            c.http.get(format!("{}/v1/me", c.base))
                        } else {
                            c.http
                                .get(format!("{}/v1/customers/{customer}", c.base))
                                .header("x-custos-case", &case)
                        };
                        let sent = request
                            .bearer_auth(&token)
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await;
                        let Ok(r) = sent else {
                            out.unanswered += 1;
                            if stop_when_unanswered {
                                break;
                            }
                            continue;
                        };
                        let status = r.status().as_u16();
                        let index = r
                            .headers()
                            .get("x-custos-ledger-index")
                            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
                        let id = r
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        // An answer cut off mid-body is no answer.
                        let Ok(body) = r.bytes().await else {
                            out.unanswered += 1;
                            if stop_when_unanswered {
                                break;
                            }
                            continue;
                        };
                        if (200..300).contains(&status) {
                            let index = index.unwrap_or_else(|| {
                                panic!("a {status} answer without its ledger index ({id})")
                            });
                            out.acked.push((index, id));
                        } else {
                            let code = serde_json::from_slice::<Value>(&body)
                                .ok()
                                .and_then(|b| b["error"]["code"].as_str().map(str::to_owned))
                                .unwrap_or_default();
                            *out.refusals.entry((status, code)).or_default() += 1;
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    out
                })
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops the workers (or waits for them to end by themselves) and merges what they
    /// saw.
    pub(crate) async fn finish(self, stop: bool) -> LoadOutcome {
        if stop {
            self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let mut all = LoadOutcome::default();
        for t in self.tasks {
            let out = t.await.expect("load worker");
            all.acked.extend(out.acked);
            for (k, n) in out.refusals {
                *all.refusals.entry(k).or_default() += n;
            }
            all.unanswered += out.unanswered;
        }
        all
    }
}

/// The request id of every ledger entry below `size`, in ledger order, as `analyst`
/// reads them from `c` (`/v1/ledger/entries`, a page at a time); asserts each entry's
/// `seq` is its position.
pub(crate) async fn ledger_request_ids(c: &Client, analyst: &str, size: u64) -> Vec<String> {
    let mut ids = Vec::new();
    while (ids.len() as u64) < size {
        let from = ids.len() as u64;
        let limit = (size - from).min(1000);
        let r = c
            .get(
                analyst,
                &format!("/v1/ledger/entries?from={from}&limit={limit}"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let entries = r.body["entries"].as_array().expect("entries");
        assert!(!entries.is_empty(), "no entries from {from}: {}", r.text);
        for e in entries {
            assert_eq!(e["seq"], ids.len() as u64, "entries out of order: {e}");
            ids.push(e["request_id"].as_str().expect("request_id").to_owned());
        }
    }
    ids
}

/// Asserts every acknowledged request's record is in the ledger (`ids`, in ledger
/// order) at the index its answer named, and that no index was handed out twice.
pub(crate) fn assert_acked_in_ledger(acked: &[(u64, String)], ids: &[String]) {
    let mut seen = std::collections::HashSet::new();
    for (index, id) in acked {
        assert!(seen.insert(*index), "index {index} acknowledged twice");
        let at = usize::try_from(*index).unwrap();
        assert!(
            at < ids.len(),
            "acknowledged {id} at {index}, the ledger holds {}",
            ids.len()
        );
        assert_eq!(
            &ids[at], id,
            "entry {index} is not the acknowledged request"
        );
    }
}
