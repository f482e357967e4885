//! Backup and restore of a data directory (`custos backup`, `custos restore`).
//!
//! # What a backup holds, and why in this order
//!
//! The store refers to the ledger (the access index by ledger index, the detector's
//! cursor), and every change of state in it was recorded in the ledger *before* it was
//! made (`App::record_intent`). So a backup whose ledger covers at least every entry the
//! store snapshot could refer to restores into a server that starts, and whose every act
//! has its record. Hence the order:
//!
//! 1. the store's snapshot: SQLite through `VACUUM INTO` on a read-only connection (the
//!    server keeps serving); PostgreSQL through the operator's `pg_dump` on an exported
//!    snapshot, which *is* the ledger too (its entries and checkpoints are tables);
//! 2. SQLite only: the ledger's durable size *after* the snapshot, then its files at the
//!    first signed checkpoint covering that size (`custos_ledger::copy_at_checkpoint`):
//!    the ledger may hold a little more than the store knows of, never less; the access
//!    index catches up from it at start, as after any restart;
//! 3. the copy is verified with the ledger's verifier key, and `backup.json` names every
//!    file with its SHA-256, the checkpoint and the store's kind.
//!
//! No key is copied (`master.key`, `ledger.key`): a backup without them holds only
//! sealed customer data. The operator keeps the keys apart and gives them to
//! `custos restore --keys`.
//!
//! # Restore
//!
//! Into an empty data directory only; every file's hash is checked first, the ledger key
//! must be the one the backup's checkpoint is signed with, and the restored ledger is
//! verified (and verified again by the server at start). The first start afterwards
//! records a `store_restored` entry naming the backup's checkpoint (module
//! `custos_access::entry`, "Restores and retention runs"). With `ledger_dir`, the ledger's
//! own newest files are kept instead of the backup's, so history is never rolled back.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use custos_ledger::{DirSource, Ledger, LedgerKey};
use custos_store::{PgSnapshot, snapshot_sqlite};
use custos_types::Action;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::App;
use crate::record::SystemEvent;
use crate::startup::{StartError, ledger_dir, ledger_key_path, ledger_origin, sqlite_path};

/// The manifest's file name inside a backup directory.
pub const MANIFEST: &str = "backup.json";
/// The manifest's format word.
pub const BACKUP_FORMAT: &str = "custos-backup/v1";
/// The file `custos restore` leaves in the data directory for the first start, which
/// records the restore in the ledger and removes it.
pub const RESTORED_MARKER: &str = "restored-from.json";
/// A PostgreSQL backup's dump file (`pg_dump --format=custom`).
pub const PG_DUMP: &str = "custos.pgdump";
/// A SQLite backup's database file.
const SQLITE_FILE: &str = "custos.db";
/// A backup's copy of the ledger directory.
const LEDGER_DIR: &str = "ledger";

/// Which store a backup holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupStore {
    /// `custos.db` and the ledger's files at the checkpoint.
    Sqlite,
    /// `custos.pgdump`, which holds the ledger's entries and checkpoints.
    Postgres,
}

/// One file of a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupFile {
    /// Path relative to the backup directory.
    pub path: String,
    /// Its length.
    pub bytes: u64,
    /// SHA-256 of its content, hex.
    pub sha256: String,
}

/// `backup.json`: what a backup holds and the ledger checkpoint it is paired with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`].
    pub format: String,
    /// When the backup was made, unix ms.
    pub created_at: i64,
    /// The store it holds.
    pub store: BackupStore,
    /// The ledger's origin (first line of its checkpoints).
    pub origin: String,
    /// The verifier key of the ledger's signing key.
    pub verifier_key: String,
    /// Entries the backup's checkpoint covers: the store's point in the ledger.
    pub checkpoint_size: u64,
    /// The tree's root at that size, hex.
    pub checkpoint_root: String,
    /// The signed checkpoint: an auditor's saved state for this backup.
    pub checkpoint: String,
    /// Every file of the backup but the manifest.
    pub files: Vec<BackupFile>,
}

/// What `custos backup` is given.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The data directory of the server (running or not).
    pub data_dir: PathBuf,
    /// The new backup directory (absent or empty).
    pub out: PathBuf,
    /// PostgreSQL URL, when the server's store is PostgreSQL.
    pub database_url: Option<String>,
    /// How long to wait for the server to sign a checkpoint covering the snapshot.
    pub wait: Duration,
}

/// What `custos restore` is given.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The backup directory.
    pub backup: PathBuf,
    /// The new data directory (absent or empty).
    pub data_dir: PathBuf,
    /// Where `master.key` and `ledger.key` are kept.
    pub keys: PathBuf,
    /// A newer ledger directory of the same installation whose files are kept instead
    /// of the backup's (SQLite; its server stopped).
    pub ledger_dir: Option<PathBuf>,
    /// PostgreSQL URL of an empty database to restore the dump into.
    pub database_url: Option<String>,
}

/// What the restore's first start records (the marker file's content).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoredFrom {
    /// The backup's checkpoint size.
    pub checkpoint_size: u64,
    /// Its root, hex.
    pub checkpoint_root: String,
    /// When the backup was made, unix ms.
    pub backup_at: i64,
    /// Whether the ledger's newest files were kept (`kept`) or the backup's restored
    /// (`backup`).
    pub ledger: String,
}

/// What a restore did.
#[derive(Clone, Debug)]
pub struct Restored {
    /// The backup's manifest.
    pub manifest: Manifest,
    /// Entries of the restored ledger (its checkpoint; a PostgreSQL node derives its
    /// copy at start).
    pub ledger_size: u64,
}

fn fail(code: &'static str, message: impl Into<String>) -> StartError {
    StartError::new(code, message)
}

fn io_fail(what: &str, path: &Path, e: std::io::Error) -> StartError {
    fail(
        "backup_io",
        format!("cannot {what} {}: {e}", path.display()),
    )
}

/// Whether `dir` is absent or an empty directory.
fn absent_or_empty(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Creates `dir` (mode 0700) if absent; returns whether this call created it.
fn create_private_dir(dir: &Path) -> Result<bool, StartError> {
    let existed = dir.exists();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io_fail("create", dir, e))?;
    Ok(!existed)
}

/// The ledger key of `data_dir` for `origin`, never creating one.
fn existing_ledger_key(key_path: &Path, origin: &str) -> Result<LedgerKey, StartError> {
    if !key_path.is_file() {
        return Err(fail(
            "no_ledger_key",
            format!("{} is missing", key_path.display()),
        ));
    }
    LedgerKey::load_or_create(key_path, origin)
        .map(|(key, _)| key)
        .map_err(|e| fail(e.code(), e.to_string()))
}

fn sha256_file(path: &Path) -> Result<(u64, String), StartError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| io_fail("read", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| io_fail("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Every file under `dir`, as paths relative to `base`, sorted.
fn files_under(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), StartError> {
    for entry in std::fs::read_dir(dir).map_err(|e| io_fail("list", dir, e))? {
        let entry = entry.map_err(|e| io_fail("list", dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io_fail("list", &path, e))?;
        if kind.is_dir() {
            files_under(base, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(base)
                .map_err(|_| fail("backup_io", "a file outside the backup"))?;
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    out.sort();
    Ok(())
}

/// Writes `content` to `path` durably (a temporary file, fsynced, renamed, the directory
/// fsynced), readable by its owner only.
fn write_durably(path: &Path, content: &[u8]) -> Result<(), StartError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io_fail("write", &tmp, e))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| io_fail("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_fail("write", path, e))?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<(), StartError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_fail("sync", parent, e))
}

/// Copies `from` to the new file `to` (mode 0600), durably.
fn copy_private(from: &Path, to: &Path) -> Result<(), StartError> {
    if let Some(parent) = to.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| io_fail("create", parent, e))?;
    }
    let mut src = std::fs::File::open(from).map_err(|e| io_fail("read", from, e))?;
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| io_fail("write", to, e))?;
    std::io::copy(&mut src, &mut dst)
        .and_then(|_| dst.sync_all())
        .map_err(|e| io_fail("write", to, e))?;
    sync_parent(to)
}

/// Makes a backup of the server on `options.data_dir` into `options.out` while it
/// serves (or while it is stopped, if its last checkpoint covers its ledger). Returns the
/// manifest written.
pub async fn backup(options: &BackupOptions) -> Result<Manifest, StartError> {
    if !absent_or_empty(&options.out) {
        return Err(fail(
            "backup_dir_not_empty",
            format!(
                "{} exists and is not empty: give a new directory",
                options.out.display()
            ),
        ));
    }
    let source_ledger = ledger_dir(&options.data_dir);
    let origin = ledger_origin(&source_ledger)?;
    let key = existing_ledger_key(&ledger_key_path(&options.data_dir), &origin)?;
    let created = create_private_dir(&options.out)?;
    let result = write_backup(options, &origin, &key).await;
    if result.is_err() && created {
        // Nothing half-made is left to be taken for a backup.
        let _ = std::fs::remove_dir_all(&options.out);
    }
    result
}

async fn write_backup(
    options: &BackupOptions,
    origin: &str,
    key: &LedgerKey,
) -> Result<Manifest, StartError> {
    let created_at = custos_types::clock::now_millis();
    let (store, checkpoint) = match &options.database_url {
        None => {
            let db = sqlite_path(&options.data_dir);
            if !db.is_file() {
                return Err(fail(
                    "no_store",
                    format!(
                        "{} holds no custos.db: a server on PostgreSQL keeps its store there, so give --database-url",
                        options.data_dir.display()
                    ),
                ));
            }
            let out_db = options.out.join(SQLITE_FILE);
            let source_ledger = ledger_dir(&options.data_dir);
            let out_ledger = options.out.join(LEDGER_DIR);
            let wait = options.wait;
            let copy = tokio::task::spawn_blocking(move || {
                snapshot_sqlite(&db, &out_db)
                    .map_err(|e| fail(e.code(), format!("cannot copy the store: {e}")))?;
                // After the snapshot: every entry it can refer to is durable by now.
                let needed = custos_ledger::durable_size(&source_ledger)
                    .map_err(|e| fail(e.code(), e.to_string()))?;
                custos_ledger::copy_at_checkpoint(
                    &source_ledger,
                    &out_ledger,
                    needed,
                    wait,
                    u64::try_from(custos_types::clock::now_millis()).unwrap_or(0),
                )
                .map_err(|e| fail(e.code(), e.to_string()))
            })
            .await
            .map_err(|e| fail("backup_io", format!("the copy stopped: {e}")))??;
            let report = custos_ledger::verify(
                &DirSource::new(options.out.join(LEDGER_DIR)),
                &key.verifier_key(),
                None,
            )
            .map_err(|e| fail(e.code(), format!("the ledger's copy does not verify: {e}")))?;
            if report.size != copy.size {
                return Err(fail(
                    "ledger_corrupt",
                    "the ledger's copy changed while it was checked",
                ));
            }
            (BackupStore::Sqlite, (copy.size, copy.root, copy.checkpoint))
        }
        Some(url) => {
            let snapshot = PgSnapshot::export(url)
                .await
                .map_err(|e| fail(e.code(), format!("cannot open the database: {e}")))?;
            let Some(stored) = snapshot.checkpoint.clone() else {
                return Err(fail(
                    "no_checkpoint",
                    "the database's ledger has no checkpoint yet: start a server on it first",
                ));
            };
            let dump = options.out.join(PG_DUMP);
            let mut command = std::process::Command::new("pg_dump");
            command
                .arg("--format=custom")
                .arg("--no-owner")
                .arg(format!("--snapshot={}", snapshot.id))
                .arg("--file")
                .arg(&dump)
                .arg("--dbname")
                .arg(url);
            let status = run_tool(command, "pg_dump").await;
            snapshot
                .end()
                .await
                .map_err(|e| fail(e.code(), format!("the database snapshot failed: {e}")))?;
            status?;
            std::fs::File::open(&dump)
                .and_then(|f| f.sync_all())
                .map_err(|e| io_fail("sync", &dump, e))?;
            let (size, root) = custos_ledger::checkpoint_body(stored.note.as_bytes())
                .map_err(|e| fail(e.code(), e.to_string()))?;
            (BackupStore::Postgres, (size, root, stored.note))
        }
    };
    let mut paths = Vec::new();
    files_under(&options.out, &options.out, &mut paths)?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let (bytes, sha256) = sha256_file(&options.out.join(&path))?;
        files.push(BackupFile {
            path,
            bytes,
            sha256,
        });
    }
    let (checkpoint_size, root, checkpoint) = checkpoint;
    let manifest = Manifest {
        format: BACKUP_FORMAT.to_owned(),
        created_at,
        store,
        origin: origin.to_owned(),
        verifier_key: key.verifier_key(),
        checkpoint_size,
        checkpoint_root: hex::encode(root),
        checkpoint,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| fail("backup_io", format!("cannot write the manifest: {e}")))?;
    write_durably(&options.out.join(MANIFEST), &json)?;
    Ok(manifest)
}

/// A manifest's file path, if it is a plain relative path inside the backup.
fn safe_relative(path: &str) -> Option<&Path> {
    let p = Path::new(path);
    (!path.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))).then_some(p)
}

/// Reads `backup.json` and checks every file it names against its length and hash.
pub fn check_backup(backup: &Path) -> Result<Manifest, StartError> {
    let path = backup.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| {
        fail(
            "not_a_backup",
            format!(
                "cannot read {} ({e}): is this a backup directory?",
                path.display()
            ),
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        fail(
            "backup_corrupt",
            format!("{} is malformed: {e}", path.display()),
        )
    })?;
    if manifest.format != BACKUP_FORMAT {
        return Err(fail(
            "backup_corrupt",
            format!("{} is not a {BACKUP_FORMAT} manifest", path.display()),
        ));
    }
    for file in &manifest.files {
        let rel = safe_relative(&file.path).ok_or_else(|| {
            fail(
                "backup_corrupt",
                "the manifest names a path outside the backup",
            )
        })?;
        let (bytes, sha256) =
            sha256_file(&backup.join(rel)).map_err(|e| fail("backup_corrupt", e.message))?;
        if bytes != file.bytes || sha256 != file.sha256 {
            return Err(fail(
                "backup_corrupt",
                format!("{} does not match the manifest", file.path),
            ));
        }
    }
    Ok(manifest)
}

/// Restores `options.backup` into the new data directory `options.data_dir`.
pub async fn restore(options: &RestoreOptions) -> Result<Restored, StartError> {
    let manifest = check_backup(&options.backup)?;
    if !absent_or_empty(&options.data_dir) {
        return Err(fail(
            "data_dir_not_empty",
            format!(
                "{} exists and is not empty: restore into a new data directory",
                options.data_dir.display()
            ),
        ));
    }
    let master = options.keys.join("master.key");
    if !master.is_file() {
        return Err(fail(
            "no_master_key",
            format!(
                "{} is missing: --keys names where the keys are kept",
                master.display()
            ),
        ));
    }
    let key = existing_ledger_key(&ledger_key_path(&options.keys), &manifest.origin)?;
    if key.verifier_key() != manifest.verifier_key {
        return Err(fail(
            "ledger_key_mismatch",
            "the ledger key under --keys is not the one the backup's ledger is signed with",
        ));
    }
    match (manifest.store, &options.database_url, &options.ledger_dir) {
        (BackupStore::Sqlite, Some(_), _) => {
            return Err(fail(
                "store_mismatch",
                "this backup holds a SQLite store: drop --database-url",
            ));
        }
        (BackupStore::Postgres, None, _) => {
            return Err(fail(
                "database_url_required",
                "this backup holds a PostgreSQL dump: give --database-url of an empty database",
            ));
        }
        (BackupStore::Postgres, Some(_), Some(_)) => {
            return Err(fail(
                "ledger_dir_unsupported",
                "on PostgreSQL the ledger is in the database: --ledger-dir applies to SQLite backups",
            ));
        }
        _ => {}
    }
    let created = create_private_dir(&options.data_dir)?;
    let result = restore_into(options, &manifest, &key).await;
    if result.is_err() && created {
        let _ = std::fs::remove_dir_all(&options.data_dir);
    }
    result
}

async fn restore_into(
    options: &RestoreOptions,
    manifest: &Manifest,
    key: &LedgerKey,
) -> Result<Restored, StartError> {
    copy_private(
        &options.keys.join("master.key"),
        &options.data_dir.join("master.key"),
    )?;
    copy_private(
        &ledger_key_path(&options.keys),
        &ledger_key_path(&options.data_dir),
    )?;
    let target_ledger = ledger_dir(&options.data_dir);
    let kept = options.ledger_dir.is_some();
    let ledger_size = match (&options.database_url, &options.ledger_dir) {
        (Some(url), _) => {
            restore_pg_dump(url, &options.backup.join(PG_DUMP)).await?;
            manifest.checkpoint_size
        }
        (None, ledger_from) => {
            copy_private(
                &options.backup.join(SQLITE_FILE),
                &sqlite_path(&options.data_dir),
            )?;
            match ledger_from {
                Some(newest) => {
                    keep_newest_ledger(newest, &target_ledger, manifest, &options.keys)?;
                }
                None => {
                    for file in manifest
                        .files
                        .iter()
                        .filter(|f| f.path.starts_with("ledger/"))
                    {
                        let rel = safe_relative(&file.path).ok_or_else(|| {
                            fail(
                                "backup_corrupt",
                                "the manifest names a path outside the backup",
                            )
                        })?;
                        copy_private(&options.backup.join(rel), &options.data_dir.join(rel))?;
                    }
                }
            }
            let report = custos_ledger::verify(
                &DirSource::new(&target_ledger),
                &key.verifier_key(),
                Some(&manifest.checkpoint),
            )
            .map_err(|e| {
                fail(
                    e.code(),
                    format!("the restored ledger does not verify: {e}"),
                )
            })?;
            report.size
        }
    };
    let marker = RestoredFrom {
        checkpoint_size: manifest.checkpoint_size,
        checkpoint_root: manifest.checkpoint_root.clone(),
        backup_at: manifest.created_at,
        ledger: if kept { "kept" } else { "backup" }.to_owned(),
    };
    let json = serde_json::to_vec(&marker)
        .map_err(|e| fail("backup_io", format!("cannot write the marker: {e}")))?;
    write_durably(&options.data_dir.join(RESTORED_MARKER), &json)?;
    Ok(Restored {
        manifest: manifest.clone(),
        ledger_size,
    })
}

/// Copies the ledger directory `newest` (its server stopped) into `target`, after
/// opening it (its lock taken, its recovery run) and checking that it extends the
/// backup's checkpoint.
fn keep_newest_ledger(
    newest: &Path,
    target: &Path,
    manifest: &Manifest,
    keys: &Path,
) -> Result<u64, StartError> {
    let key = existing_ledger_key(&ledger_key_path(keys), &manifest.origin)?;
    let ledger = Ledger::open(newest, &manifest.origin, key).map_err(|e| {
        fail(
            e.code(),
            format!(
                "cannot open {} (is its server stopped?): {e}",
                newest.display()
            ),
        )
    })?;
    let extends = ledger.checkpoint_size() >= manifest.checkpoint_size
        && ledger
            .root_at(manifest.checkpoint_size)
            .is_ok_and(|root| hex::encode(root) == manifest.checkpoint_root);
    if !extends {
        return Err(fail(
            "ledger_not_newer",
            format!(
                "{} does not extend the backup's checkpoint: give the newest ledger of the same installation",
                newest.display()
            ),
        ));
    }
    let size = ledger.checkpoint_size();
    drop(ledger);
    let mut paths = Vec::new();
    files_under(newest, newest, &mut paths)?;
    // The lock belongs to the directory's writer; the next start makes its own.
    for rel in paths.iter().filter(|p| p.as_str() != "lock") {
        copy_private(&newest.join(rel), &target.join(rel))?;
    }
    Ok(size)
}

/// `pg_restore` of `dump` into the empty database at `url`.
async fn restore_pg_dump(url: &str, dump: &Path) -> Result<(), StartError> {
    let empty = custos_store::postgres_is_empty(url).await.map_err(|e| {
        fail(
            e.code(),
            format!("cannot read the database at --database-url: {e}"),
        )
    })?;
    if !empty {
        return Err(fail(
            "database_not_empty",
            "the database at --database-url holds tables: restore into a new, empty database",
        ));
    }
    let mut command = std::process::Command::new("pg_restore");
    command
        .arg("--no-owner")
        .arg("--exit-on-error")
        .arg("--dbname")
        .arg(url)
        .arg(dump);
    run_tool(command, "pg_restore").await
}

/// Runs one of PostgreSQL's own tools to its end; `code` names it in errors.
async fn run_tool(
    mut command: std::process::Command,
    code: &'static str,
) -> Result<(), StartError> {
    let status = tokio::task::spawn_blocking(move || command.status())
        .await
        .map_err(|e| fail(code, format!("{code} stopped: {e}")))?
        .map_err(|e| fail(code, format!("cannot run {code} (is it installed?): {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(code, format!("{code} failed ({status})")))
    }
}

impl App {
    /// At the first start after a restore: records `store_restored` from the marker
    /// `custos restore` left in `data_dir`, then removes the marker. Called before
    /// anything is served; if the record fails, the start fails and the marker stays.
    pub(crate) async fn record_restore(&self, data_dir: &Path) -> Result<(), StartError> {
        let path = data_dir.join(RESTORED_MARKER);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_fail("read", &path, e)),
        };
        let from: RestoredFrom = serde_json::from_slice(&bytes).map_err(|e| {
            fail(
                "backup_corrupt",
                format!("{} is malformed: {e}", path.display()),
            )
        })?;
        self.record_system(SystemEvent {
            action: Action::StoreRestored,
            at: custos_types::clock::now_millis(),
            customer_id: None,
            case_id: None,
            target: Some("backup".to_owned()),
            fields: vec![
                format!("checkpoint:{}", from.checkpoint_size),
                format!("root:{}", from.checkpoint_root),
                format!("ledger:{}", from.ledger),
                format!("backup_at:{}", from.backup_at),
            ],
            reason_code: "restored".to_owned(),
        })
        .await
        .map_err(|e| StartError::new(e.code.as_str(), e.message))?;
        std::fs::remove_file(&path).map_err(|e| io_fail("remove", &path, e))?;
        sync_parent(&path)
    }
}
