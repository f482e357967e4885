//! `custos backup` and `custos restore`: a consistent copy of a data directory's store
//! and ledger while its server serves, and bringing it back into a new data directory
//! (`custos_service::backup` has the order and what is checked).

use std::path::PathBuf;
use std::time::Duration;

use custos_service::backup::{BackupOptions, BackupStore, RestoreOptions};

use crate::Failure;

/// Options of `custos backup`.
#[derive(clap::Args)]
pub(crate) struct BackupArgs {
    /// The data directory of the server to back up (running or stopped).
    #[arg(long, env = "CUSTOS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The new backup directory (must be absent or empty). No key is copied into it.
    #[arg(long)]
    pub out: PathBuf,
    /// PostgreSQL URL, when the server's store is PostgreSQL (pg_dump must be installed).
    #[arg(long, env = "CUSTOS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Seconds to wait for the server to sign a checkpoint covering the store's snapshot.
    #[arg(long, default_value_t = 10)]
    pub wait_seconds: u64,
}

/// Options of `custos restore`.
#[derive(clap::Args)]
pub(crate) struct RestoreArgs {
    /// The backup directory `custos backup` wrote.
    pub backup: PathBuf,
    /// The new data directory (must be absent or empty).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The directory holding the installation's master.key and ledger.key.
    #[arg(long)]
    pub keys: PathBuf,
    /// Keep this newer ledger directory of the same installation (its server stopped)
    /// instead of the backup's copy, so the ledger's history is not rolled back (SQLite).
    #[arg(long)]
    pub ledger_dir: Option<PathBuf>,
    /// PostgreSQL URL of an empty database to restore a PostgreSQL backup into
    /// (pg_restore must be installed).
    #[arg(long, env = "CUSTOS_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// Runs `custos backup`.
pub(crate) async fn backup(args: BackupArgs) -> Result<(), Failure> {
    let manifest = custos_service::backup::backup(&BackupOptions {
        data_dir: args.data_dir,
        out: args.out.clone(),
        database_url: args.database_url,
        wait: Duration::from_secs(args.wait_seconds),
    })
    .await?;
    let what = match manifest.store {
        BackupStore::Sqlite => "the SQLite store and the ledger's files",
        BackupStore::Postgres => "a pg_dump of the database (which holds the ledger)",
    };
    custos_sim::outln!(
        "backup written to {}: {what} at checkpoint {} (root {}); keep master.key and ledger.key apart from it",
        args.out.display(),
        manifest.checkpoint_size,
        manifest.checkpoint_root
    )?;
    Ok(())
}

/// Runs `custos restore`.
pub(crate) async fn restore(args: RestoreArgs) -> Result<(), Failure> {
    let restored = custos_service::backup::restore(&RestoreOptions {
        backup: args.backup,
        data_dir: args.data_dir.clone(),
        keys: args.keys,
        ledger_dir: args.ledger_dir,
        database_url: args.database_url,
    })
    .await?;
    custos_sim::outln!(
        "restored into {}: the store at checkpoint {}, the ledger at {} entries; its first start records store_restored",
        args.data_dir.display(),
        restored.manifest.checkpoint_size,
        restored.ledger_size
    )?;
    Ok(())
}
