//! Tokens accepted once, across the gateway nodes of one PostgreSQL database: a customer
//! app's assertion vouches for one contact, at whichever node it arrives. SQLite needs
//! none: one process owns the store and keeps them in its memory.
//!
//! A token is one row, its fingerprint the key: the first node to insert it has it, every
//! later insert finds the row. Rows go once the token would be refused anyway.

use sqlx::postgres::PgPool;

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

const FORGET: &str = "DELETE FROM used_tokens WHERE until < $1";
// `RETURNING` gives a row only to the insert that wrote it.
const CLAIM: &str = "INSERT INTO used_tokens (fingerprint, until) VALUES ($1, $2) \
     ON CONFLICT (fingerprint) DO NOTHING RETURNING until";

/// The tokens used at every node on one PostgreSQL database; cheap to clone.
#[derive(Clone)]
pub struct UsedTokens {
    pool: PgPool,
}

impl Store {
    /// The nodes' used tokens, on PostgreSQL; `None` on SQLite.
    pub fn used_tokens(&self) -> Option<UsedTokens> {
        match &self.pools {
            Pools::Postgres(pool) => Some(UsedTokens { pool: pool.clone() }),
            Pools::Sqlite(_) => None,
        }
    }
}

impl UsedTokens {
    /// Marks the token of `fingerprint` used until `until` (unix seconds), forgetting
    /// those past `now`; `false` if some node used it already.
    pub async fn first_use(
        &self,
        fingerprint: &[u8; 32],
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let seconds = |t: u64| i64::try_from(t).unwrap_or(i64::MAX);
        sqlx::query(FORGET)
            .bind(seconds(now))
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        let row: Option<(i64,)> = sqlx::query_as(CLAIM)
            .bind(fingerprint.as_slice())
            .bind(seconds(until))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(row.is_some())
    }
}
