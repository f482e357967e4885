//! Rotations of the keys that protect stored customers: the key-encryption key (KEK),
//! whose rotation re-wraps every customer's data key, and the blind-index key, whose
//! rotation re-computes every customer's indexes. Each has its table of rotations
//! (`key_rotations`, `index_rotations`) of the same shape.
//!
//! The latest rotation's target is the key that protects what is written. A rotation
//! walks the customers in id order from its cursor; each batch replaces a row's wrapped
//! key or indexes only where they are still the ones that were read (the wrapped key
//! itself; the index version and a key not erased), so a customer erased meanwhile stays
//! erased and a row written meanwhile by another node is not overwritten; the batch, the
//! cursor and the count move in one transaction, so a crash resumes from the last
//! committed batch.

use crate::error::db_err;
use crate::{CustomerRecord, Pools, Store, StoreError};

/// Which key a rotation moves every customer to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotatedKey {
    /// The key-encryption key: every data key is re-wrapped.
    Kek,
    /// The blind-index key: every customer's indexes are computed again.
    BlindIndex,
}

/// One rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// Its number, from 1 (each [`RotatedKey`] counts its own).
    pub id: i64,
    /// The target key's provider (`file`, `pkcs11`; always `file` for the index key).
    pub provider: String,
    /// The target key's version.
    pub version: u32,
    /// When it started, unix milliseconds.
    pub started_at: i64,
    /// When every customer was under the target, if they are.
    pub finished_at: Option<i64>,
    /// The last customer id moved, in id order.
    pub cursor: Option<String>,
    /// Customers moved so far: data keys re-wrapped, or customers re-indexed.
    pub done: i64,
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

/// A customer's indexes computed again under the target index key, replacing those read
/// (under `old_version`) if the customer is still under it and not erased.
#[derive(Debug)]
pub struct Reindex {
    /// The customer.
    pub customer_id: String,
    /// The index key version the customer's indexes were read under.
    pub old_version: u32,
    /// The target version.
    pub version: u32,
    /// The phone's index under `version` (hex).
    pub phone_idx: Option<String>,
    /// The email's.
    pub email_idx: Option<String>,
    /// The account id's.
    pub account_idx: Option<String>,
}

/// One table's statements.
struct RotationSql {
    latest: &'static str,
    start: &'static str,
    last_version: &'static str,
    advance: &'static str,
    restart: &'static str,
    finish: &'static str,
}

macro_rules! rotation_sql {
    ($table:literal, $done:literal) => {
        RotationSql {
            latest: concat!(
                "SELECT id, provider, version, started_at, finished_at, cursor, ",
                $done,
                " AS done, total FROM ",
                $table,
                " ORDER BY id DESC LIMIT 1"
            ),
            // One statement, a write from its first step: on SQLite a transaction that
            // read first could not become a writer while another connection reads.
            start: concat!(
                "INSERT INTO ",
                $table,
                " (id, provider, version, started_at, total) SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM ",
                $table,
                "), $1, $2, $3, (SELECT COUNT(*) FROM customers WHERE length(wrapped_key) > 0) \
                 WHERE NOT EXISTS (SELECT 1 FROM ",
                $table,
                " WHERE finished_at IS NULL OR (provider = $1 AND version = $2))"
            ),
            last_version: concat!(
                "SELECT COALESCE(MAX(version), 0) FROM ",
                $table,
                " WHERE provider = $1"
            ),
            advance: concat!(
                "UPDATE ",
                $table,
                " SET cursor = $2, ",
                $done,
                " = ",
                $done,
                " + $3 WHERE id = $1 AND finished_at IS NULL"
            ),
            restart: concat!(
                "UPDATE ",
                $table,
                " SET cursor = NULL WHERE id = $1 AND finished_at IS NULL"
            ),
            finish: concat!(
                "UPDATE ",
                $table,
                " SET finished_at = $2 WHERE id = $1 AND finished_at IS NULL"
            ),
        }
    };
}

const KEK_SQL: RotationSql = rotation_sql!("key_rotations", "rewrapped");
const INDEX_SQL: RotationSql = rotation_sql!("index_rotations", "done");

impl RotatedKey {
    fn sql(self) -> &'static RotationSql {
        match self {
            RotatedKey::Kek => &KEK_SQL,
            RotatedKey::BlindIndex => &INDEX_SQL,
        }
    }
}

const KEYS_AFTER: &str = "SELECT id, wrapped_key FROM customers \
     WHERE id > $1 AND length(wrapped_key) > 0 ORDER BY id LIMIT $2";
const REPLACE_KEY: &str =
    "UPDATE customers SET wrapped_key = $3 WHERE id = $1 AND wrapped_key = $2";
const NOT_INDEXED_AFTER: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE id > $1 AND length(wrapped_key) > 0 AND index_version <> $2 \
     ORDER BY id LIMIT $3"
);
const REPLACE_INDEXES: &str = "UPDATE customers SET phone_idx = $3, email_idx = $4, \
     account_idx = $5, index_version = $6 \
     WHERE id = $1 AND index_version = $2 AND length(wrapped_key) > 0";
const COUNT_NOT_INDEXED: &str =
    "SELECT COUNT(*) FROM customers WHERE length(wrapped_key) > 0 AND index_version <> $1";

impl Store {
    /// The latest rotation of `key`, finished or not; `None` if it was never rotated.
    pub async fn latest_key_rotation(
        &self,
        key: RotatedKey,
    ) -> Result<Option<KeyRotation>, StoreError> {
        let row = with_pool!(self, |pool| {
            sqlx::query_as::<_, RotationRow>(key.sql().latest)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        Ok(row.map(KeyRotation::from))
    }

    /// Starts a rotation of `key` to `(provider, version)`, counting the customers with a
    /// data key; `None` if a rotation of `key` is still unfinished or that version was a
    /// target before.
    pub async fn start_key_rotation(
        &self,
        key: RotatedKey,
        provider: &str,
        version: u32,
        started_at: i64,
    ) -> Result<Option<KeyRotation>, StoreError> {
        let inserted = with_pool!(self, |pool| {
            sqlx::query(key.sql().start)
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
        self.latest_key_rotation(key).await
    }

    /// The highest version of `key` from `provider` any rotation targeted; 0 if none.
    pub async fn last_key_version(
        &self,
        key: RotatedKey,
        provider: &str,
    ) -> Result<u32, StoreError> {
        let last: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(key.sql().last_version)
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
            let moved = sqlx::query(KEK_SQL.advance)
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

    /// Up to `limit` customers with a data key after `cursor` in id order whose indexes
    /// are not under index key `version`.
    pub async fn customers_not_indexed_after(
        &self,
        cursor: Option<&str>,
        version: u32,
        limit: u32,
    ) -> Result<Vec<CustomerRecord>, StoreError> {
        let rows: Vec<crate::CustomerRow> = with_pool!(self, |pool| {
            sqlx::query_as(NOT_INDEXED_AFTER)
                .bind(cursor.unwrap_or(""))
                .bind(i64::from(version))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        Ok(rows.into_iter().map(CustomerRecord::from).collect())
    }

    /// How many customers with a data key have indexes not under index key `version`.
    pub async fn customers_not_indexed_under(&self, version: u32) -> Result<u64, StoreError> {
        let left: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(COUNT_NOT_INDEXED)
                .bind(i64::from(version))
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        Ok(u64::try_from(left).unwrap_or(0))
    }

    /// Stores a batch of re-computed indexes of index rotation `rotation` and moves its
    /// cursor to `cursor`, in one transaction. A customer's indexes are replaced only if
    /// they are still under the version read and the customer is not erased; returns how
    /// many were. Nothing moves if the rotation is finished.
    pub async fn store_reindexed(
        &self,
        rotation: i64,
        batch: &[Reindex],
        cursor: &str,
    ) -> Result<u64, StoreError> {
        let replaced = with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let mut replaced = 0u64;
            for r in batch {
                replaced += sqlx::query(REPLACE_INDEXES)
                    .bind(&r.customer_id)
                    .bind(i64::from(r.old_version))
                    .bind(r.phone_idx.as_deref())
                    .bind(r.email_idx.as_deref())
                    .bind(r.account_idx.as_deref())
                    .bind(i64::from(r.version))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
            }
            let moved = sqlx::query(INDEX_SQL.advance)
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

    /// Starts rotation `rotation` of `key`'s walk again from the first customer (a row
    /// written by a node that had not yet heard of the rotation may lie behind the cursor).
    pub async fn restart_key_rotation_walk(
        &self,
        key: RotatedKey,
        rotation: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(key.sql().restart)
                .bind(rotation)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// Marks rotation `rotation` of `key` finished.
    pub async fn finish_key_rotation(
        &self,
        key: RotatedKey,
        rotation: i64,
        finished_at: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(key.sql().finish)
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
    done: i64,
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
            done: row.done,
            total: row.total,
        }
    }
}
