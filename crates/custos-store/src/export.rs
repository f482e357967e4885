//! Storage for the SIEM export (custos-service's `export`): its ledger cursor (a row of
//! the consumer cursors, moved only forward and only from where the mover read it) and
//! which alerts a sink has acknowledged.

use crate::detection::{ALERT_COLS, AlertRow};
use crate::error::db_err;
use crate::{AlertRecord, Pools, Store, StoreError};

// From 0: a cursor never stored stands at 0, so the row is made, or moved if it is
// still at 0 (`$3`). From elsewhere: moved only from where it stands. Either way an
// exporter that read a cursor another has moved since changes nothing.
const START_CURSOR: &str = "INSERT INTO consumer_cursors (name, next_seq) VALUES ($1, $2) \
     ON CONFLICT (name) DO UPDATE SET next_seq = excluded.next_seq \
     WHERE consumer_cursors.next_seq = $3";
const MOVE_CURSOR: &str =
    "UPDATE consumer_cursors SET next_seq = $2 WHERE name = $1 AND next_seq = $3";
const INSERT_EXPORTED: &str = "INSERT INTO exported_alerts (alert_id, exported_at) \
     VALUES ($1, $2) ON CONFLICT (alert_id) DO NOTHING";
const COUNT_UNEXPORTED: &str = "SELECT COUNT(*) FROM alerts a WHERE NOT EXISTS \
     (SELECT 1 FROM exported_alerts e WHERE e.alert_id = a.id)";

impl Store {
    /// Moves consumer `name`'s cursor from `from` to `to`, only if it still stands at
    /// `from` (a cursor never stored stands at 0); whether it moved. Two nodes that
    /// read the same cursor and sent the same batch cannot both move it.
    pub async fn advance_consumer_cursor(
        &self,
        name: &str,
        from: u64,
        to: u64,
    ) -> Result<bool, StoreError> {
        let range = |_| StoreError::Database("cursor out of range".into());
        let from = i64::try_from(from).map_err(range)?;
        let to = i64::try_from(to).map_err(range)?;
        let moved = with_pool!(self, |pool| {
            let query = if from == 0 { START_CURSOR } else { MOVE_CURSOR };
            sqlx::query(query)
                .bind(name)
                .bind(to)
                .bind(from)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(moved > 0)
    }

    /// Up to `limit` alerts no sink has acknowledged yet, oldest first.
    pub async fn unexported_alerts(&self, limit: u32) -> Result<Vec<AlertRecord>, StoreError> {
        let rows: Vec<AlertRow> = with_pool!(self, |pool| {
            let mut qb = crate::builder_for(pool, ALERT_COLS);
            qb.push(
                " WHERE NOT EXISTS (SELECT 1 FROM exported_alerts e WHERE e.alert_id = alerts.id)",
            );
            qb.push(" ORDER BY created_at, id LIMIT ")
                .push_bind(i64::from(limit));
            qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
        });
        rows.into_iter().map(AlertRecord::try_from).collect()
    }

    /// How many alerts no sink has acknowledged yet.
    pub async fn unexported_alert_count(&self) -> Result<u64, StoreError> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(COUNT_UNEXPORTED)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Records that a sink acknowledged the alerts `ids` at `at` (unix ms); ids already
    /// recorded are kept as they were.
    pub async fn mark_alerts_exported(&self, ids: &[&str], at: i64) -> Result<(), StoreError> {
        for id in ids {
            with_pool!(self, |pool| {
                sqlx::query(INSERT_EXPORTED)
                    .bind(*id)
                    .bind(at)
                    .execute(pool)
                    .await
                    .map_err(db_err)?;
            });
        }
        Ok(())
    }
}
