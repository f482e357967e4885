//! Leases on roles that one gateway node at a time may hold (docs/MULTI_NODE.md, "One
//! detector, never acting twice"), in PostgreSQL. SQLite needs none: one process owns
//! the store.
//!
//! A lease is one row: who holds it and until when, by the **database's** clock, so the
//! nodes' clocks need not agree. [`Leases::hold`] takes a free or expired lease, or
//! extends one the caller holds, in one statement; it says whether the caller holds it
//! now. A holder must stop acting when a renewal fails and its own measure of the
//! lease's length has run out (the caller's side; see the detector's lease in the
//! service).

use std::time::Duration;

use sqlx::postgres::PgPool;

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

// The row is written only when it is free, expired, or already ours; `RETURNING` says
// whether it was.
const HOLD: &str = "INSERT INTO leases (name, holder, until) \
     VALUES ($1, $2, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + $3) \
     ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until \
     WHERE leases.holder = EXCLUDED.holder \
        OR leases.until < (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT \
     RETURNING holder";
const RELEASE: &str = "DELETE FROM leases WHERE name = $1 AND holder = $2";

/// The leases of every node on one PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct Leases {
    pool: PgPool,
}

impl Store {
    /// The nodes' leases, on PostgreSQL; `None` on SQLite.
    pub fn leases(&self) -> Option<Leases> {
        match &self.pools {
            Pools::Postgres(pool) => Some(Leases { pool: pool.clone() }),
            Pools::Sqlite(_) => None,
        }
    }
}

impl Leases {
    /// Takes lease `name` for `holder` for `length` if it is free or expired, or extends
    /// it if `holder` has it; whether `holder` holds it now.
    pub async fn hold(
        &self,
        name: &str,
        holder: &str,
        length: Duration,
    ) -> Result<bool, StoreError> {
        let ms = i64::try_from(length.as_millis()).unwrap_or(i64::MAX);
        let row: Option<(String,)> = sqlx::query_as(HOLD)
            .bind(name)
            .bind(holder)
            .bind(ms)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }

    /// Gives lease `name` up if `holder` has it, so another node can take it at once.
    pub async fn release(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query(RELEASE)
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
