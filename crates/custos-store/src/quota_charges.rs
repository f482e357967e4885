//! Quota charges in PostgreSQL, shared by every gateway node on the database
//! (docs/MULTI_NODE.md, "Exact quotas across nodes"). SQLite has none: one process
//! counts in memory.
//!
//! A charge ([`SharedQuotas::charge`]) is one transaction:
//! 1. `pg_advisory_xact_lock` on the person: another node charging them waits here;
//! 2. their charges of the last window are read;
//! 3. the caller's decision, made on exactly those charges, adds one or refuses;
//! 4. commit (the lock goes with it).
//!
//! So requests spread over any number of nodes are admitted exactly as one node would
//! admit them. Charges older than the longest window are deleted in the same transaction.

use sqlx::postgres::PgPool;

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

const LOCK_STAFF: &str = "SELECT pg_advisory_xact_lock(hashtextextended('quota:' || $1, 0))";
const SELECT_CHARGES: &str = "SELECT at, customer_id, reveals, search FROM quota_charges \
     WHERE staff_id = $1 AND at > $2 ORDER BY at";
const DELETE_OLD: &str = "DELETE FROM quota_charges WHERE staff_id = $1 AND at <= $2";
/// The earlier views of the customer a new view is stored for: only a customer's latest
/// opening counts, so they say nothing more (and a person's rows stay bounded however
/// often they open one record).
const DELETE_EARLIER_VIEWS: &str = "DELETE FROM quota_charges \
     WHERE staff_id = $1 AND customer_id = $2 AND reveals = 0 AND NOT search";
const INSERT_CHARGE: &str = "INSERT INTO quota_charges (staff_id, at, customer_id, reveals, search) \
     VALUES ($1, $2, $3, $4, $5)";

/// One charge taken from a person's ceilings.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct QuotaCharge {
    /// When, unix milliseconds.
    pub at: i64,
    /// The customer opened; `None` for a search.
    pub customer_id: Option<String>,
    /// Fields revealed in full.
    pub reveals: i32,
    /// Whether it was a search.
    pub search: bool,
}

/// The quota charges of every node on one PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct SharedQuotas {
    pool: PgPool,
}

impl Store {
    /// The shared quota charges, on PostgreSQL; `None` on SQLite.
    pub fn shared_quotas(&self) -> Option<SharedQuotas> {
        match &self.pools {
            Pools::Postgres(pool) => Some(SharedQuotas { pool: pool.clone() }),
            Pools::Sqlite(_) => None,
        }
    }
}

impl SharedQuotas {
    /// Under `staff`'s lock, hands their charges after `since` (oldest first) to
    /// `decide`, stores the charge it returns (if any: an admitted request that adds
    /// nothing to the counts need not be stored) and commits; what `decide` refused
    /// with is returned as the inner error, with nothing stored. Charges at or before
    /// `since` are deleted, and so are the person's earlier views of a customer whose
    /// view is stored (a customer counts from their latest opening).
    pub async fn charge<E>(
        &self,
        staff: &str,
        since: i64,
        decide: impl FnOnce(&[QuotaCharge]) -> Result<Option<QuotaCharge>, E>,
    ) -> Result<Result<(), E>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(LOCK_STAFF)
            .bind(staff)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let charges: Vec<QuotaCharge> = sqlx::query_as(SELECT_CHARGES)
            .bind(staff)
            .bind(since)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        let charge = match decide(&charges) {
            Ok(Some(charge)) => charge,
            // Admitted, and nothing to count: the lock goes with the transaction.
            Ok(None) => return Ok(Ok(())),
            Err(refused) => return Ok(Err(refused)),
        };
        sqlx::query(DELETE_OLD)
            .bind(staff)
            .bind(since)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let (Some(customer), 0, false) = (&charge.customer_id, charge.reveals, charge.search) {
            sqlx::query(DELETE_EARLIER_VIEWS)
                .bind(staff)
                .bind(customer)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        sqlx::query(INSERT_CHARGE)
            .bind(staff)
            .bind(charge.at)
            .bind(&charge.customer_id)
            .bind(charge.reveals)
            .bind(charge.search)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Ok(()))
    }

    /// `staff`'s charges after `since`, oldest first.
    pub async fn charges(&self, staff: &str, since: i64) -> Result<Vec<QuotaCharge>, StoreError> {
        sqlx::query_as(SELECT_CHARGES)
            .bind(staff)
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }
}
