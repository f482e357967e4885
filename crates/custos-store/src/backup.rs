//! Consistent copies of the store while a server uses it (`custos backup`).
//!
//! - **SQLite**: `VACUUM INTO` through a read-only connection of its own, which reads one
//!   snapshot of the file (WAL mode lets the server keep writing meanwhile) and writes it
//!   as a new, compact database file.
//! - **PostgreSQL**: the operator's `pg_dump`, run on a snapshot this module exports
//!   ([`PgSnapshot`]), in which it also reads the newest signed checkpoint: the dump and
//!   the checkpoint named beside it are of the same instant.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::StoreError;
use crate::error::db_err;
use crate::shared_ledger::StoredCheckpoint;

/// How long the copy waits for the server's write lock when SQLite needs it briefly.
const SNAPSHOT_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Copies the SQLite database at `db` into the new file `out` (mode 0600) as one
/// consistent snapshot, while other connections (a running server) read and write it.
pub fn snapshot_sqlite(db: &Path, out: &Path) -> Result<(), StoreError> {
    let io_err = |what: &str, e: std::io::Error| {
        StoreError::Database(format!("cannot {what} the snapshot file: {}", e.kind()))
    };
    // VACUUM INTO writes into an empty file: made here, so it is private from the start.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| io_err("create", e))?;
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite_err)?;
    conn.busy_timeout(SNAPSHOT_BUSY_TIMEOUT)
        .map_err(sqlite_err)?;
    let target = out
        .to_str()
        .ok_or_else(|| StoreError::Database("the snapshot path is not UTF-8".into()))?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(sqlite_err)?;
    drop(conn);
    std::fs::File::open(out)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err("sync", e))
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    // SQLite's messages name tables and files, never row values.
    StoreError::Database(e.to_string())
}

/// A PostgreSQL snapshot held open for `pg_dump --snapshot`, with the newest signed
/// checkpoint as that snapshot sees it. The snapshot lives until [`PgSnapshot::end`] (or
/// until this value is dropped and its connection closes).
pub struct PgSnapshot {
    conn: PgConnection,
    /// The exported snapshot's name, for `pg_dump --snapshot`.
    pub id: String,
    /// The newest signed checkpoint in the snapshot; `None` before the first.
    pub checkpoint: Option<StoredCheckpoint>,
}

impl PgSnapshot {
    /// Opens a repeatable-read transaction on `url`, exports its snapshot and reads the
    /// newest signed checkpoint in it.
    pub async fn export(url: &str) -> Result<PgSnapshot, StoreError> {
        let mut conn = PgConnection::connect(url).await.map_err(db_err)?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .map_err(db_err)?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
        let newest: Option<(i64, String)> =
            sqlx::query_as("SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
                .fetch_optional(&mut conn)
                .await
                .map_err(db_err)?;
        let checkpoint = newest
            .map(|(size, note)| {
                u64::try_from(size)
                    .map(|size| StoredCheckpoint { size, note })
                    .map_err(|_| StoreError::Database("negative checkpoint size".into()))
            })
            .transpose()?;
        Ok(PgSnapshot {
            conn,
            id,
            checkpoint,
        })
    }

    /// Ends the snapshot's transaction and closes its connection.
    pub async fn end(mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT")
            .execute(&mut self.conn)
            .await
            .map_err(db_err)?;
        self.conn.close().await.map_err(db_err)
    }
}

/// Whether the PostgreSQL database at `url` holds no table in its `public` schema (a
/// database a dump may be restored into).
pub async fn postgres_is_empty(url: &str) -> Result<bool, StoreError> {
    let mut conn = PgConnection::connect(url).await.map_err(db_err)?;
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
    conn.close().await.map_err(db_err)?;
    Ok(tables == 0)
}
