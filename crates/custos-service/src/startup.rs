//! Start-up: the data directory's layout and claim, and the order in which a server
//! opens what it runs on.
//!
//! Order at start ([`open`]): configuration and policies (a bad one fails before
//! anything is created), the master key, the store, the ledger (recovery runs here),
//! the service ([`App::start`]: access index, quota and restriction replay); then the
//! start's records — the configuration's fingerprint and any key created — go into the
//! ledger before anything is served, and after a `custos restore` the restore
//! (`backup.rs`); then the key-encryption key the latest rotation moved to is made
//! current and an unfinished rotation resumes (`keys.rs`); then the detector; then
//! retention (`retention.rs`, at once and then periodically) and the SIEM export
//! (`export.rs`); then the bootstrap admin, whose token is written last, only after its
//! records are durable.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use custos_crypto::MasterKey;
use custos_ledger::{Ledger, LedgerKey};
use custos_policy::PolicyEngine;
use custos_store::Store;
use custos_types::Action;

use crate::{App, Config, DirectAccess, SharedApp};

/// A service opened on its data directory.
pub struct Opened {
    /// The service, for the transports.
    pub app: SharedApp,
    /// Where the bootstrap admin's first token was written (on the first start).
    pub admin_token_path: PathBuf,
    /// Direct access to the vault's parts, for this process alone.
    pub direct: DirectAccess,
}

/// Why a start failed: a stable code and a message for the operator.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    /// Stable code, e.g. `data_dir_in_use`.
    pub code: &'static str,
    /// What went wrong, for the operator.
    pub message: String,
}

impl StartError {
    /// An error with `code` and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> StartError {
        StartError {
            code,
            message: message.into(),
        }
    }
}

/// What a server is started on.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Directory for the master key, the admin token, the ledger and the SQLite database.
    pub data_dir: PathBuf,
    /// TOML configuration file, if any.
    pub config: Option<PathBuf>,
    /// Directory with one `.cedarschema` and the `.cedar` policy files replacing the
    /// defaults, if any.
    pub policies: Option<PathBuf>,
    /// PostgreSQL URL; without it the store is a SQLite file in the data directory.
    pub database_url: Option<String>,
    /// Whether requests set their own time (the ledger's origin then ends in
    /// `/simulated`).
    pub simulated_clock: bool,
    /// Whether the server speaks TLS itself (the console's cookie is then `Secure` by
    /// default).
    pub tls: bool,
}

/// The SQLite database inside a data directory.
pub fn sqlite_path(data_dir: &Path) -> PathBuf {
    data_dir.join("custos.db")
}

/// The file in a data directory holding the pid of the Custos running on it; locked
/// (advisory, released when the process ends however it ends) while it runs.
pub fn pid_path(data_dir: &Path) -> PathBuf {
    data_dir.join("custos.pid")
}

/// A data directory this process runs on: its pid file is locked and holds our pid. If
/// the start fails ([`DataDirClaim::keep`] not called), dropping it removes what this
/// run created (the pid file, listed files, the directories), and only while the
/// directories hold nothing else.
pub struct DataDirClaim {
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
    pub fn created_file(&mut self, path: PathBuf) {
        self.files.push(path);
    }

    /// The start succeeded: nothing is removed.
    pub fn keep(&mut self) {
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
pub fn claim_data_dir(data_dir: &Path) -> Result<DataDirClaim, StartError> {
    let dirs: Vec<PathBuf> = data_dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    create_data_dir(data_dir)?;
    let path = pid_path(data_dir);
    let io = |e: std::io::Error| {
        StartError::new("data_dir", format!("cannot lock {}: {e}", path.display()))
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
pub fn in_use(data_dir: &Path) -> StartError {
    let pid = std::fs::read_to_string(pid_path(data_dir))
        .ok()
        .and_then(|t| t.trim().parse::<u32>().ok())
        .map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"));
    StartError::new(
        "data_dir_in_use",
        format!(
            "another Custos is already running on the data directory {} ({pid}): stop it first, or give another data directory",
            data_dir.display()
        ),
    )
}

/// Opens keys, configuration, policies, store and ledger, records the start, starts the
/// detector and bootstraps the first admin (its token file is the returned path).
pub async fn open(args: &StartOptions) -> Result<Opened, StartError> {
    create_data_dir(&args.data_dir)?;
    let mut config = Config::load(args.config.as_deref())
        .map_err(|e| StartError::new(e.code(), e.to_string()))?;
    config.tls = args.tls;
    if args.simulated_clock {
        config.simulated_clock = true;
        config.ledger_origin = format!("{}/simulated", config.ledger_origin);
        tracing::warn!(origin = %config.ledger_origin, "simulated clock: requests set their own time; this ledger is not a record of real events");
    }
    let policy = match &args.policies {
        Some(dir) => PolicyEngine::load_dir(dir),
        None => PolicyEngine::embedded(),
    }
    .map_err(|e| StartError::new(e.code(), e.to_string()))?;
    let (master, created) = MasterKey::load_or_create(&args.data_dir.join("master.key"))
        .map_err(|e| StartError::new(e.code(), e.to_string()))?;
    if created {
        tracing::warn!(path = %args.data_dir.join("master.key").display(), "created a new master key; back it up: without it the vault cannot be read");
    }
    let store = match &args.database_url {
        Some(url) => Store::open_postgres(url, 16).await,
        None => Store::open_sqlite(&sqlite_path(&args.data_dir)).await,
    }
    .map_err(|e| StartError::new(e.code(), format!("cannot open the store: {e}")))?;
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
    let keyring = config
        .keys
        .open_keyring(&master)
        .map_err(|(code, message)| StartError::new(code, message))?;
    let app = App::start(config, store, keyring, policy, ledger, metrics)
        .await
        .map_err(|e| StartError::new(e.code.as_str(), e.message))?;
    // What could refuse the start is checked before the start is recorded. The keys the
    // latest rotations moved to protect what is written (a token that cannot be reached
    // fails here; an unfinished rotation resumes in `keep_keys`).
    app.follow_rotations()
        .await
        .map_err(|e| StartError::new(e.code.as_str(), e.message))?;
    // The export's sinks, with their CA and token files read.
    let sinks = crate::export::Sinks::new(&app.config.export)
        .map_err(|e| StartError::new("config_invalid", format!("cannot start the export: {e}")))?;
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
            .map_err(|e| StartError::new(e.code.as_str(), e.message))?;
    }
    app.record_restore(&args.data_dir).await?;
    app.keep_keys();
    app.start_detector()
        .await
        .map_err(|e| StartError::new("detector", format!("cannot start the detector: {e}")))?;
    app.start_retention();
    app.start_export(sinks);
    let admin_token_path = args.data_dir.join("admin.token");
    if let Some(token) = app
        .bootstrap_admin()
        .await
        .map_err(|e| StartError::new(e.code.as_str(), e.message))?
    {
        for action in [Action::CreateStaff, Action::IssueToken] {
            app.record_event(
                action,
                crate::BOOTSTRAP_ADMIN.to_owned(),
                "bootstrap".to_owned(),
            )
            .await
            .map_err(|e| StartError::new(e.code.as_str(), e.message))?;
        }
        write_secret(&admin_token_path, &token)?;
        tracing::info!(path = %admin_token_path.display(), "bootstrap admin token written");
    }
    Ok(Opened {
        app,
        admin_token_path,
        direct: DirectAccess { _private: () },
    })
}

/// Creates the data directory (and its parents) readable only by its owner, if missing.
pub fn create_data_dir(data_dir: &Path) -> Result<(), StartError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .map_err(|e| {
            StartError::new(
                "data_dir",
                format!("cannot create {}: {e}", data_dir.display()),
            )
        })
}

/// A bearer token kept in a file (as `admin.token` is), without its line end.
pub fn read_token_file(path: &Path) -> Result<String, StartError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| StartError::new("token_file", format!("cannot read {}: {e}", path.display())))
}

/// Where the ledger lives inside a data directory.
pub fn ledger_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger")
}

/// The checkpoint signing key's file inside a data directory.
pub fn ledger_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger.key")
}

/// The ledger's origin: the first line of its checkpoint.
pub fn ledger_origin(ledger_dir: &Path) -> Result<String, StartError> {
    let text = std::fs::read_to_string(ledger_dir.join("checkpoint")).map_err(|e| {
        StartError::new(
            "no_checkpoint",
            format!(
                "{} has no checkpoint ({e}): start the server once first",
                ledger_dir.display()
            ),
        )
    })?;
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            StartError::new(
                "ledger_corrupt",
                "the ledger's checkpoint has no origin line",
            )
        })
}

/// Opens (creating on first start) the ledger key and the ledger, running recovery.
pub fn open_ledger(data_dir: &Path, origin: &str) -> Result<(Ledger, bool), StartError> {
    let fatal = |e: custos_ledger::LedgerError| StartError::new(e.code(), e.to_string());
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

/// Writes a secret to a new file readable only by its owner.
pub fn write_secret(path: &Path, content: &str) -> Result<(), StartError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            StartError::new(
                "secret_file",
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    // An existing file keeps its mode on open; make sure it is private before writing.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
        StartError::new(
            "secret_file",
            format!("cannot restrict {}: {e}", path.display()),
        )
    })?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            StartError::new(
                "secret_file",
                format!("cannot write {}: {e}", path.display()),
            )
        })
}
