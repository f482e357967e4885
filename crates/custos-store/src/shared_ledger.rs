//! The ledger's sequence in PostgreSQL: one ledger for every gateway node on one
//! database (docs/MULTI_NODE.md). SQLite has none: one process owns an SQLite store
//! and its ledger directory.
//!
//! # Durability order of a batch ([`SharedLedger::sequence`])
//!
//! In **one transaction**:
//! 1. `SELECT next FROM ledger_seq_coord … FOR UPDATE`: the batch's first index. Another
//!    node's batch waits here until this transaction ends, so indexes are dense and in
//!    commit order;
//! 2. the entries go into `ledger_entries` at `next …`;
//! 3. the same records go into `access_records` (the access index), so the index is
//!    exactly as current as the ledger;
//! 4. `next` moves past the batch;
//! 5. **commit: the commit point.** Only now may a request be answered with its index.
//!    A failed commit leaves nothing of the batch, and `next` where it was.
//!
//! # Integration ([`SharedLedger::try_integrate`])
//!
//! A node that locks `ledger_int_coord` (`FOR UPDATE SKIP LOCKED`: a node that finds it
//! locked leaves integration to the holder) holds the right to sign until its
//! transaction ends; PostgreSQL ends it when the node dies. Within it the node checks its
//! own tree against the stored root, signs, and [`Integration::finish`] stores the
//! checkpoint and the new size and root, and commits. A checkpoint is always over a
//! prefix of the one sequence in `ledger_entries`, whose rows never change.

use sqlx::postgres::PgPool;
use sqlx::{Postgres, Transaction};

use crate::error::db_err;
use crate::{APPEND_ACCESS_POSTGRES, AccessRecord, Pools, Store, StoreError, access_batch_json};

const LOCK_NEXT: &str = "SELECT next FROM ledger_seq_coord WHERE id = 0 FOR UPDATE";
const SELECT_NEXT: &str = "SELECT next FROM ledger_seq_coord WHERE id = 0";
const SET_NEXT: &str = "UPDATE ledger_seq_coord SET next = $1 WHERE id = 0";
const INSERT_ENTRIES: &str = "INSERT INTO ledger_entries (seq, entry) \
     SELECT * FROM UNNEST($1::BIGINT[], $2::BYTEA[])";
const SELECT_ENTRIES: &str =
    "SELECT seq, entry FROM ledger_entries WHERE seq >= $1 ORDER BY seq LIMIT $2";
const LOCK_INT: &str =
    "SELECT size, root FROM ledger_int_coord WHERE id = 0 FOR UPDATE SKIP LOCKED";
const SET_INT: &str = "UPDATE ledger_int_coord SET size = $1, root = $2 WHERE id = 0";
const INSERT_CHECKPOINT: &str = "INSERT INTO ledger_checkpoints (size, note, signed_at) \
     VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING";
const NEWEST_CHECKPOINT: &str =
    "SELECT size, note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1";

/// The ledger's sequence and checkpoints in PostgreSQL; cheap to clone.
#[derive(Clone)]
pub struct SharedLedger {
    pool: PgPool,
}

/// A signed checkpoint as stored: the tree size it covers and the note's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Entries the checkpoint covers.
    pub size: u64,
    /// The signed note (C2SP signed-note text).
    pub note: String,
}

/// The right to integrate, held while this transaction is open (see the module docs).
/// Dropped without [`Integration::finish`], it signs nothing and changes nothing.
pub struct Integration {
    tx: Transaction<'static, Postgres>,
    /// The integrated size when the lock was taken.
    pub size: u64,
    /// The root at `size`; `None` before the first checkpoint.
    pub root: Option<[u8; 32]>,
}

impl Store {
    /// The shared ledger, on PostgreSQL; `None` on SQLite.
    pub fn shared_ledger(&self) -> Option<SharedLedger> {
        match &self.pools {
            Pools::Postgres(pool) => Some(SharedLedger { pool: pool.clone() }),
            Pools::Sqlite(_) => None,
        }
    }
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Database("negative ledger index".into()))
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Database("ledger index out of range".into()))
}

impl SharedLedger {
    /// Sequences `entries` (with their decoded `records`, one per entry, in order) in one
    /// transaction and returns the first index once it has committed. Sets each record's
    /// `seq` to its index.
    pub async fn sequence(
        &self,
        entries: &[Vec<u8>],
        records: &mut [AccessRecord],
    ) -> Result<u64, StoreError> {
        if entries.len() != records.len() {
            return Err(StoreError::Database(
                "a batch needs one record per entry".into(),
            ));
        }
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let next: i64 = sqlx::query_scalar(LOCK_NEXT)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let len = to_i64(entries.len() as u64)?;
        let seqs: Vec<i64> = (next..next + len).collect();
        for (record, seq) in records.iter_mut().zip(&seqs) {
            record.seq = *seq;
        }
        if !entries.is_empty() {
            sqlx::query(INSERT_ENTRIES)
                .bind(&seqs)
                .bind(entries)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(APPEND_ACCESS_POSTGRES)
                .bind(access_batch_json(records)?)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(SET_NEXT)
                .bind(next + len)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        to_u64(next)
    }

    /// The number of sequenced (committed) entries.
    pub async fn next(&self) -> Result<u64, StoreError> {
        let next: i64 = sqlx::query_scalar(SELECT_NEXT)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        to_u64(next)
    }

    /// Up to `limit` entries from index `from` on, in order.
    pub async fn entries(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(SELECT_ENTRIES)
            .bind(to_i64(from)?)
            .bind(to_i64(limit as u64)?)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(seq, entry)| Ok((to_u64(seq)?, entry)))
            .collect()
    }

    /// The newest signed checkpoint, if any.
    pub async fn newest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let row: Option<(i64, String)> = sqlx::query_as(NEWEST_CHECKPOINT)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        row.map(|(size, note)| {
            Ok(StoredCheckpoint {
                size: to_u64(size)?,
                note,
            })
        })
        .transpose()
    }

    /// Takes the right to integrate if no other node holds it (`None` then).
    pub async fn try_integrate(&self) -> Result<Option<Integration>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let row: Option<(i64, Option<Vec<u8>>)> = sqlx::query_as(LOCK_INT)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some((size, root)) = row else {
            return Ok(None);
        };
        let root = root
            .map(|r| {
                <[u8; 32]>::try_from(r.as_slice())
                    .map_err(|_| StoreError::Database("stored ledger root is not 32 bytes".into()))
            })
            .transpose()?;
        Ok(Some(Integration {
            tx,
            size: to_u64(size)?,
            root,
        }))
    }

    /// The first sequence of a store whose ledger so far lived in one node's directory:
    /// `entries` (all of them, from index 0) become the shared ledger's first entries.
    /// Their records must already be in the access index. Refused unless the shared
    /// ledger is still empty.
    pub async fn adopt(&self, entries: &[Vec<u8>]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let next: i64 = sqlx::query_scalar(LOCK_NEXT)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if next != 0 {
            return Err(StoreError::Conflict);
        }
        for (start, chunk) in (0i64..).step_by(4096).zip(entries.chunks(4096)) {
            let seqs: Vec<i64> = (start..start + chunk.len() as i64).collect();
            sqlx::query(INSERT_ENTRIES)
                .bind(&seqs)
                .bind(chunk)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query(SET_NEXT)
            .bind(to_i64(entries.len() as u64)?)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

impl Integration {
    /// The number of sequenced entries, as this transaction sees it.
    pub async fn next(&mut self) -> Result<u64, StoreError> {
        let next: i64 = sqlx::query_scalar(SELECT_NEXT)
            .fetch_one(&mut *self.tx)
            .await
            .map_err(db_err)?;
        to_u64(next)
    }

    /// Stores the checkpoint signed over the first `size` entries (root `root`) and
    /// commits: the integration is durable, and the lock released, when this returns.
    pub async fn finish(
        mut self,
        size: u64,
        root: [u8; 32],
        note: &str,
        signed_at: i64,
    ) -> Result<(), StoreError> {
        let size = to_i64(size)?;
        sqlx::query(INSERT_CHECKPOINT)
            .bind(size)
            .bind(note)
            .bind(signed_at)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        sqlx::query(SET_INT)
            .bind(size)
            .bind(root.as_slice())
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        self.tx.commit().await.map_err(db_err)
    }
}
