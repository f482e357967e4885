//! Retention: what a retention run deletes from the store, never the ledger (its
//! entries are the record; the access index and the console's rows are derived or
//! transient). The service counts first ([`Store::retention_counts`]), records the run in
//! the ledger, then deletes ([`Store::apply_retention`]).
//!
//! - the access index: records older than the limit, never the newest one (the indexer
//!   resumes after the highest index the store holds);
//! - the leak-tracing summary derived from it (`access_holdings`): a person's holding of
//!   a customer whose last access is older than the limit, with its person's counts;
//! - the console: sessions not used since the console limit, and used customer links
//!   that ended before it.
//!
//! The delete of access records passes the table's append-only trigger only inside the
//! run's transaction (migration `0015_retention.sql` / `0019_retention.sql`).

use std::collections::BTreeMap;

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

const COUNT_ACCESS: &str = "SELECT COUNT(*) FROM access_records WHERE at < $1 \
     AND seq < (SELECT MAX(seq) FROM access_records)";
const COUNT_HOLDINGS: &str = "SELECT COUNT(*) FROM access_holdings WHERE last_at < $1";
const COUNT_SESSIONS: &str = "SELECT COUNT(*) FROM console_sessions WHERE last_seen < $1";
const PERMIT: &str = "INSERT INTO retention_permits (before) VALUES ($1)";
const END_PERMIT: &str = "DELETE FROM retention_permits";
const DELETE_ACCESS: &str = "DELETE FROM access_records WHERE at < $1 \
     AND seq < (SELECT MAX(seq) FROM access_records)";
const DELETE_HOLDINGS: &str = "DELETE FROM access_holdings WHERE last_at < $1 \
     RETURNING staff_id, revealed_at IS NOT NULL";
const UNCOUNT_HOLDINGS: &str = "UPDATE staff_holdings \
     SET revealed = revealed - $2, viewed_only = viewed_only - $3 WHERE staff_id = $1";
const DROP_EMPTY_COUNTS: &str = "DELETE FROM staff_holdings WHERE revealed = 0 AND viewed_only = 0";
const DELETE_SESSIONS: &str = "DELETE FROM console_sessions WHERE last_seen < $1";
const DELETE_LINKS: &str = "DELETE FROM used_links WHERE until < $1";

/// Rows a retention run deletes (or deleted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionCounts {
    /// Access records.
    pub access_records: u64,
    /// Holdings of the leak-tracing summary.
    pub holdings: u64,
    /// Console sessions.
    pub console_sessions: u64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// How many rows a retention run with these limits (unix ms: rows older go) would
    /// delete now.
    pub async fn retention_counts(
        &self,
        access_before: i64,
        console_before: i64,
    ) -> Result<RetentionCounts, StoreError> {
        let (access, holdings, sessions): (i64, i64, i64) = with_pool!(self, |pool| {
            let access = sqlx::query_scalar(COUNT_ACCESS)
                .bind(access_before)
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            let holdings = sqlx::query_scalar(COUNT_HOLDINGS)
                .bind(access_before)
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            let sessions = sqlx::query_scalar(COUNT_SESSIONS)
                .bind(console_before)
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            (access, holdings, sessions)
        });
        Ok(RetentionCounts {
            access_records: count(access),
            holdings: count(holdings),
            console_sessions: count(sessions),
        })
    }

    /// Deletes, in one transaction, the access records, holdings and console rows older
    /// than the limits (unix ms); returns what it deleted.
    pub async fn apply_retention(
        &self,
        access_before: i64,
        console_before: i64,
    ) -> Result<RetentionCounts, StoreError> {
        let (access, removed, sessions) = with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(PERMIT)
                .bind(access_before)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let access = sqlx::query(DELETE_ACCESS)
                .bind(access_before)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            sqlx::query(END_PERMIT)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let removed: Vec<(String, bool)> = sqlx::query_as(DELETE_HOLDINGS)
                .bind(access_before)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            // Each person's counts lose exactly the holdings deleted here (a holding a
            // concurrent record renewed is not deleted, so not uncounted).
            let mut per_staff: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
            for (staff, revealed) in &removed {
                let c = per_staff.entry(staff).or_default();
                if *revealed {
                    c.0 += 1;
                } else {
                    c.1 += 1;
                }
            }
            for (staff, (revealed, viewed_only)) in per_staff {
                sqlx::query(UNCOUNT_HOLDINGS)
                    .bind(staff)
                    .bind(revealed)
                    .bind(viewed_only)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            // A person who holds no one any more is left out, as one who never did.
            sqlx::query(DROP_EMPTY_COUNTS)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let sessions = sqlx::query(DELETE_SESSIONS)
                .bind(console_before)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            sqlx::query(DELETE_LINKS)
                .bind(console_before)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            (access, removed.len() as u64, sessions)
        });
        Ok(RetentionCounts {
            access_records: access,
            holdings: removed,
            console_sessions: sessions,
        })
    }
}
