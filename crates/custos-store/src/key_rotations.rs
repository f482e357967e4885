//! Rotations of the key-encryption key (KEK): the rotation's row and the re-wrapping of
//! customers' data keys, batch by batch.
//!
//! The latest rotation's target is the KEK that wraps new data keys. A rotation walks the
//! customers in id order from its cursor; each batch replaces a wrapped key only where it
//! is still the one that was read (`wrapped_key = old`), so a customer erased meanwhile
//! stays erased and a key wrapped meanwhile by another node is not overwritten; the
//! batch, the cursor and the count move in one transaction, so a crash resumes from the
//! last committed batch.

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

/// One rotation of the KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// Its number, from 1.
    pub id: i64,
    /// The target KEK's provider (`file`, `pkcs11`).
    pub provider: String,
    /// The target KEK's version.
    pub version: u32,
    /// When it started, unix milliseconds.
    pub started_at: i64,
    /// When every data key was under the target, if it has.
    pub finished_at: Option<i64>,
    /// The last customer id re-wrapped, in id order.
    pub cursor: Option<String>,
    /// Data keys re-wrapped so far.
    pub rewrapped: i64,
    /// Customers with a data key when it started.
    pub total: i64,
}

/// A data key's new wrapping, replacing `old` if that is still stored.
#[derive(Debug)]
pub struct Rewrap {
    /// The customer.
    pub customer_id: String,
    /// The wrapped key that was read.
    pub old: Vec<u8>,
    /// The same data key wrapped under the target KEK.
    pub new: Vec<u8>,
}

const LATEST_ROTATION: &str = "SELECT id, provider, version, started_at, finished_at, cursor, \
     rewrapped, total FROM key_rotations ORDER BY id DESC LIMIT 1";
const START: &str = "INSERT INTO key_rotations (id, provider, version, started_at, total) \
     SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM key_rotations), $1, $2, $3, \
            (SELECT COUNT(*) FROM customers WHERE length(wrapped_key) > 0) \
     WHERE NOT EXISTS (SELECT 1 FROM key_rotations \
                       WHERE finished_at IS NULL OR (provider = $1 AND version = $2))";
const KEYS_AFTER: &str = "SELECT id, wrapped_key FROM customers \
     WHERE id > $1 AND length(wrapped_key) > 0 ORDER BY id LIMIT $2";
const REPLACE_KEY: &str =
    "UPDATE customers SET wrapped_key = $3 WHERE id = $1 AND wrapped_key = $2";
const ADVANCE: &str = "UPDATE key_rotations SET cursor = $2, rewrapped = rewrapped + $3 \
     WHERE id = $1 AND finished_at IS NULL";

impl Store {
    /// The latest rotation, finished or not; `None` if the KEK was never rotated.
    pub async fn latest_key_rotation(&self) -> Result<Option<KeyRotation>, StoreError> {
        let row = with_pool!(self, |pool| {
            sqlx::query_as::<_, RotationRow>(LATEST_ROTATION)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        Ok(row.map(KeyRotation::from))
    }

    /// Starts a rotation to KEK `(provider, version)`, counting the customers with a data
    /// key; `None` if a rotation is still unfinished or that KEK was a target before.
    pub async fn start_key_rotation(
        &self,
        provider: &str,
        version: u32,
        started_at: i64,
    ) -> Result<Option<KeyRotation>, StoreError> {
        // One statement, a write from its first step: on SQLite a transaction that read
        // first could not become a writer while another connection reads.
        let inserted = with_pool!(self, |pool| {
            sqlx::query(START)
                .bind(provider)
                .bind(i64::from(version))
                .bind(started_at)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        if inserted == 0 {
            return Ok(None);
        }
        self.latest_key_rotation().await
    }

    /// The highest KEK version of `provider` any rotation targeted; 0 if none.
    pub async fn last_kek_version(&self, provider: &str) -> Result<u32, StoreError> {
        let last: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) FROM key_rotations WHERE provider = $1",
            )
            .bind(provider)
            .fetch_one(pool)
            .await
            .map_err(db_err)?
        });
        Ok(u32::try_from(last).unwrap_or(u32::MAX))
    }

    /// Up to `limit` customers with a data key after `cursor` in id order, with their
    /// wrapped keys.
    pub async fn wrapped_keys_after(
        &self,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows: Vec<(String, Vec<u8>)> = with_pool!(self, |pool| {
            sqlx::query_as(KEYS_AFTER)
                .bind(cursor.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        Ok(rows)
    }

    /// Stores a batch of re-wrapped keys of rotation `rotation` and moves its cursor to
    /// `cursor`, in one transaction. A key is replaced only if the stored one is still
    /// the one read; returns how many were. Nothing moves if the rotation is finished.
    pub async fn store_rewrapped_keys(
        &self,
        rotation: i64,
        batch: &[Rewrap],
        cursor: &str,
    ) -> Result<u64, StoreError> {
        let replaced = with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let mut replaced = 0u64;
            for rewrap in batch {
                replaced += sqlx::query(REPLACE_KEY)
                    .bind(&rewrap.customer_id)
                    .bind(&rewrap.old)
                    .bind(&rewrap.new)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
            }
            let moved = sqlx::query(ADVANCE)
                .bind(rotation)
                .bind(cursor)
                .bind(i64::try_from(replaced).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            if moved == 0 {
                return Ok(0);
            }
            tx.commit().await.map_err(db_err)?;
            replaced
        });
        Ok(replaced)
    }

    /// Starts rotation `rotation`'s walk again from the first customer (a key wrapped by
    /// a node that had not yet heard of the rotation may lie behind the cursor).
    pub async fn restart_key_rotation_walk(&self, rotation: i64) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE key_rotations SET cursor = NULL WHERE id = $1 AND finished_at IS NULL",
            )
            .bind(rotation)
            .execute(pool)
            .await
            .map_err(db_err)?;
        });
        Ok(())
    }

    /// Marks rotation `rotation` finished.
    pub async fn finish_key_rotation(
        &self,
        rotation: i64,
        finished_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE key_rotations SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL",
            )
            .bind(rotation)
            .bind(finished_at)
            .execute(pool)
            .await
            .map_err(db_err)?;
        });
        Ok(())
    }
}

#[derive(sqlx::FromRow)]
struct RotationRow {
    id: i64,
    provider: String,
    version: i64,
    started_at: i64,
    finished_at: Option<i64>,
    cursor: Option<String>,
    rewrapped: i64,
    total: i64,
}

impl From<RotationRow> for KeyRotation {
    fn from(row: RotationRow) -> KeyRotation {
        KeyRotation {
            id: row.id,
            provider: row.provider,
            version: u32::try_from(row.version).unwrap_or(0),
            started_at: row.started_at,
            finished_at: row.finished_at,
            cursor: row.cursor,
            rewrapped: row.rewrapped,
            total: row.total,
        }
    }
}
