//! `custos serve`: open keys, configuration, policies and store; bootstrap the first
//! admin; serve HTTP until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use custos_crypto::{Keyring, MasterKey};
use custos_gateway::{App, Config, SharedApp};
use custos_ledger::{Ledger, LedgerKey};
use custos_policy::PolicyEngine;
use custos_store::Store;
use custos_types::Action;
use std::io::Write;

use crate::Failure;

/// Options of `custos serve`.
#[derive(clap::Args, Clone)]
pub(crate) struct ServeArgs {
    /// Directory for the master key, the admin token, the ledger and the SQLite database.
    #[arg(long, env = "CUSTOS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port (printed on standard output).
    #[arg(long, env = "CUSTOS_LISTEN", default_value = "127.0.0.1:8700")]
    pub listen: SocketAddr,
    /// TOML configuration file.
    #[arg(long, env = "CUSTOS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory with one `.cedarschema` and the `.cedar` policy files replacing the defaults.
    #[arg(long, env = "CUSTOS_POLICIES")]
    pub policies: Option<PathBuf>,
    /// PostgreSQL URL; without it the store is a SQLite file in the data directory.
    #[arg(long, env = "CUSTOS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Let each request set its time (header `X-Custos-Simulated-Time`, unix ms), so a
    /// simulator or red team can drive the real API through simulated days. The ledger
    /// then gets the origin `<ledger_origin>/simulated`: its records can never pass for
    /// real ones, and a data directory holds either kind, never both.
    #[arg(long)]
    pub simulated_clock: bool,
}

/// A running gateway: its state and the address it listens on.
pub(crate) struct Started {
    pub app: SharedApp,
    pub addr: SocketAddr,
    pub listener: tokio::net::TcpListener,
    pub admin_token_path: PathBuf,
    /// The data directory, held against a second Custos while this one runs.
    _claim: DataDirClaim,
}

pub(crate) async fn run(args: ServeArgs) -> Result<(), Failure> {
    let started = start(&args).await?;
    // Ignored if standard output fails: the server runs on without it.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "custos listening on http://{}", started.addr);
    let _ = out.flush();
    serve_until_signal(started).await
}

/// Claims the data directory, binds the listener and opens everything; does not serve yet.
pub(crate) async fn start(args: &ServeArgs) -> Result<Started, Failure> {
    start_claimed(args, claim_data_dir(&args.data_dir)?).await
}

/// [`start`] on a data directory already claimed (the demo writes its configuration
/// there first). On failure the claim is dropped, removing what this run created.
pub(crate) async fn start_claimed(
    args: &ServeArgs,
    mut claim: DataDirClaim,
) -> Result<Started, Failure> {
    // Bound before anything is opened: a port in use fails before a key or a store is made.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Failure::new("listen", format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new("listen", e.to_string()))?;
    let (app, admin_token_path) = open(args).await?;
    claim.keep();
    Ok(Started {
        app,
        addr,
        listener,
        admin_token_path,
        _claim: claim,
    })
}

/// The file in a data directory holding the pid of the Custos running on it; locked
/// (advisory, released when the process ends however it ends) while it runs.
pub(crate) fn pid_path(data_dir: &Path) -> PathBuf {
    data_dir.join("custos.pid")
}

/// A data directory this process runs on: its pid file is locked and holds our pid. If
/// the start fails ([`DataDirClaim::keep`] not called), dropping it removes what this
/// run created (the pid file, listed files, the directories), and only while the
/// directories hold nothing else.
pub(crate) struct DataDirClaim {
    /// Held open for the lock.
    _lock: std::fs::File,
    /// Files this run created, removed with the directories.
    files: Vec<PathBuf>,
    /// Directories this run created, innermost first.
    dirs: Vec<PathBuf>,
    kept: bool,
}

impl DataDirClaim {
    /// Notes a file this run wrote into a directory it created.
    pub(crate) fn created_file(&mut self, path: PathBuf) {
        self.files.push(path);
    }

    /// The start succeeded: nothing is removed.
    pub(crate) fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for DataDirClaim {
    fn drop(&mut self) {
        if self.kept || self.dirs.is_empty() {
            return;
        }
        // `remove_dir` refuses a directory that is not empty: what anyone else put there
        // (or a key this run already made) stays, and so does the directory.
        let Some(data_dir) = self.dirs.first() else {
            return;
        };
        let only_ours = std::fs::read_dir(data_dir)
            .is_ok_and(|entries| entries.flatten().all(|e| self.files.contains(&e.path())));
        if only_ours {
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Creates (if missing) and claims `data_dir` for this process: a second Custos on the
/// same directory is refused with `data_dir_in_use`, naming the pid of the first.
pub(crate) fn claim_data_dir(data_dir: &Path) -> Result<DataDirClaim, Failure> {
    let dirs: Vec<PathBuf> = data_dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    create_data_dir(data_dir)?;
    let path = pid_path(data_dir);
    let io = |e: std::io::Error| {
        Failure::new("data_dir", format!("cannot lock {}: {e}", path.display()))
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(in_use(data_dir)),
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    let written = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_all());
    let claim = DataDirClaim {
        _lock: file,
        files: vec![pid_path(data_dir)],
        dirs,
        kept: false,
    };
    written.map_err(io)?;
    Ok(claim)
}

/// `data_dir_in_use`: another Custos holds `data_dir` (named by the pid in its pid file).
pub(crate) fn in_use(data_dir: &Path) -> Failure {
    let pid = std::fs::read_to_string(pid_path(data_dir))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
    Failure::new(
        "data_dir_in_use",
        format!(
            "another Custos is already running on the data directory {} ({pid}): stop it first, or give another data directory",
            data_dir.display()
        ),
    )
}

/// Opens keys, configuration, policies, store and ledger, records the start, starts the
/// detector and bootstraps the first admin (its token file is the returned path).
pub(crate) async fn open(args: &ServeArgs) -> Result<(SharedApp, PathBuf), Failure> {
    create_data_dir(&args.data_dir)?;
    let mut config =
        Config::load(args.config.as_deref()).map_err(|e| Failure::new(e.code(), e.to_string()))?;
    if args.simulated_clock {
        config.simulated_clock = true;
        config.ledger_origin = format!("{}/simulated", config.ledger_origin);
        tracing::warn!(origin = %config.ledger_origin, "simulated clock: requests set their own time; this ledger is not a record of real events");
    }
    let policy = match &args.policies {
        Some(dir) => PolicyEngine::load_dir(dir),
        None => PolicyEngine::embedded(),
    }
    .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let (master, created) = MasterKey::load_or_create(&args.data_dir.join("master.key"))
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
    if created {
        tracing::warn!(path = %args.data_dir.join("master.key").display(), "created a new master key; back it up: without it the vault cannot be read");
    }
    let store = match &args.database_url {
        Some(url) => Store::open_postgres(url, 16).await,
        None => Store::open_sqlite(&crate::sqlite_path(&args.data_dir)).await,
    }
    .map_err(|e| Failure::new(e.code(), format!("cannot open the store: {e}")))?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ])
        .and_then(|b| b.install_recorder())
        .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
        .ok();
    let (ledger, ledger_key_created) = open_ledger(&args.data_dir, &config.ledger_origin)?;
    let mut fingerprint = fingerprint(&config, &policy);
    if config.simulated_clock {
        fingerprint.push_str(" clock:simulated");
    }
    let app = App::start(
        config,
        store,
        Keyring::new(&master),
        policy,
        ledger,
        metrics,
    )
    .await
    .map_err(|e| Failure::new(e.code, e.message))?;
    // Key events and what is in force go into the ledger before anything is served.
    let mut events = vec![(Action::ServerStart, "config".to_owned(), fingerprint)];
    if created {
        events.push((
            Action::KeyCreated,
            "master.key".to_owned(),
            "created".to_owned(),
        ));
    }
    if ledger_key_created {
        events.push((
            Action::KeyCreated,
            "ledger.key".to_owned(),
            "created".to_owned(),
        ));
    }
    for (action, target, reason) in events {
        app.record_event(action, target, reason)
            .await
            .map_err(|e| Failure::new(e.code, e.message))?;
    }
    custos_detector::start(
        app.access.clone(),
        app.store.clone(),
        app.keyring.clone(),
        app.config.detector.clone(),
        if app.config.simulated_clock {
            custos_detector::Clock::Records
        } else {
            custos_detector::Clock::Real
        },
        // The gateway enforces the detector's restrictions (and rebuilt those of recent
        // alerts in `App::start`).
        custos_detector::Actions {
            restrict: Some(app.restriction_hook()),
            alerts: app.config.alerts.clone(),
        },
    )
    .await
    .map_err(|e| Failure::new("detector", format!("cannot start the detector: {e}")))?;
    let admin_token_path = args.data_dir.join("admin.token");
    if let Some(token) = app
        .bootstrap_admin()
        .await
        .map_err(|e| Failure::new(e.code, e.message))?
    {
        for action in [Action::CreateStaff, Action::IssueToken] {
            app.record_event(
                action,
                custos_gateway::BOOTSTRAP_ADMIN.to_owned(),
                "bootstrap".to_owned(),
            )
            .await
            .map_err(|e| Failure::new(e.code, e.message))?;
        }
        write_secret(&admin_token_path, &token)?;
        tracing::info!(path = %admin_token_path.display(), "bootstrap admin token written");
    }
    Ok((app, admin_token_path))
}

/// Creates the data directory (and its parents) readable only by its owner, if missing.
pub(crate) fn create_data_dir(data_dir: &Path) -> Result<(), Failure> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| {
            Failure::new(
                "data_dir",
                format!("cannot create {}: {e}", data_dir.display()),
            )
        })
}

/// A bearer token kept in a file (as `admin.token` is), without its line end.
pub(crate) fn read_token_file(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| Failure::new("token_file", format!("cannot read {}: {e}", path.display())))
}

/// Where the ledger lives inside a data directory.
pub(crate) fn ledger_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger")
}

/// The checkpoint signing key's file inside a data directory.
pub(crate) fn ledger_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger.key")
}

/// Opens (creating on first start) the ledger key and the ledger, running recovery.
pub(crate) fn open_ledger(data_dir: &Path, origin: &str) -> Result<(Ledger, bool), Failure> {
    let fatal = |e: custos_ledger::LedgerError| Failure::new(e.code(), e.to_string());
    let (key, created) =
        LedgerKey::load_or_create(&ledger_key_path(data_dir), origin).map_err(fatal)?;
    if created {
        tracing::warn!(path = %ledger_key_path(data_dir).display(), "created a new ledger signing key; its verifier key is printed by `custos ledger key`");
    }
    let ledger = Ledger::open(&ledger_dir(data_dir), origin, key).map_err(|e| match e {
        custos_ledger::LedgerError::Locked(_) => in_use(data_dir),
        e => fatal(e),
    })?;
    Ok((ledger, created))
}

/// `policy:<sha256 of the policies> config:<sha256 of the configuration>`: recorded at
/// every start, so a change of policy or quotas shows in the ledger.
fn fingerprint(config: &Config, policy: &PolicyEngine) -> String {
    use sha2::{Digest, Sha256};
    let config_json = serde_json::to_vec(config).unwrap_or_default();
    format!(
        "policy:{} config:{}",
        hex::encode(Sha256::digest(policy.policy_text().as_bytes())),
        hex::encode(Sha256::digest(&config_json))
    )
}

/// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
pub(crate) async fn serve_until_signal(started: Started) -> Result<(), Failure> {
    let router = custos_gateway::router(started.app.clone());
    let served = axum::serve(
        started.listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .map_err(|e| Failure::new("serve", e.to_string()));
    // Whatever ended the serving: a last checkpoint over every durable entry.
    started.app.access.close().await;
    started.app.store.close().await;
    served.map(|_| ())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
}

/// Writes a secret to a new file readable only by its owner.
pub(crate) fn write_secret(path: &Path, content: &str) -> Result<(), Failure> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Failure::new(
                "secret_file",
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    // An existing file keeps its mode on open; make sure it is private before writing.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        Failure::new(
            "secret_file",
            format!("cannot restrict {}: {e}", path.display()),
        )
    })?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            Failure::new(
                "secret_file",
                format!("cannot write {}: {e}", path.display()),
            )
        })
}
