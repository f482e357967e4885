//! Storage for detection: canary marks and allocations, alerts, and consumer cursors (how
//! far a ledger consumer such as the detector has read).

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

/// An alert raised by the detector.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlertRecord {
    /// Stable id, derived from kind, staff and first ledger entry (so a replay of the
    /// ledger raises the same alert, not a second one).
    pub id: String,
    /// When it was raised, unix milliseconds.
    pub created_at: i64,
    /// The person it is about.
    pub staff_id: String,
    /// Their organisation.
    pub org: String,
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    /// What tripped, e.g. `canary_hit`.
    pub kind: String,
    /// Why, in plain words.
    pub reasons: Vec<String>,
    /// Ledger indexes of the entries behind it, oldest first, ending with the one that
    /// raised it: for a risk alert about a person, their records of that day that count
    /// in the score (at most `custos_detector::MAX_CITED`: the day's first ones and the
    /// raising one); otherwise the raising one.
    pub entries: Vec<u64>,
    /// What the detector did: `none`, `suspended`, `quota_lowered` or
    /// `step_up_required`.
    pub action: String,
    /// `open`, `acknowledged` or `dismissed`.
    pub status: String,
    /// Last change, unix milliseconds.
    pub updated_at: i64,
    /// The analysts who reviewed it, first reviewer first: only alerts that need more
    /// than one review (a break-glass needs two different analysts) collect reviews.
    /// Read by [`Store::alerts`] and [`Store::alert`]; empty from
    /// [`Store::alerts_of_kinds`].
    #[serde(default)]
    pub reviewed_by: Vec<String>,
}

const INSERT_CANARY_MARK: &str = "INSERT INTO canary_marks (mark, sealed_id) VALUES ($1, $2) \
     ON CONFLICT (mark) DO NOTHING";
const SELECT_CANARY_MARKS: &str = "SELECT mark FROM canary_marks";
const SELECT_CANARY_MARK: &str = "SELECT COUNT(*) FROM canary_marks WHERE mark = $1";
/// Allocatable canaries no one of the peer group ($1) holds, the least held first, ties
/// in random order (so peer groups do not all draw the same canary).
const SELECT_ALLOCATABLE: &str = "SELECT m.mark AS mark, m.sealed_id AS sealed_id, \
     COUNT(a.holder_mark) AS holders \
     FROM canary_marks m LEFT JOIN canary_allocations a ON a.canary_mark = m.mark \
     WHERE m.sealed_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM canary_allocations p \
         WHERE p.canary_mark = m.mark AND p.peer_group = $1) \
     GROUP BY m.mark, m.sealed_id ORDER BY holders, random() LIMIT $2";
const INSERT_ALLOCATION: &str = "INSERT INTO canary_allocations \
     (holder_mark, canary_mark, peer_group) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const SELECT_HOLDER_MARKS: &str = "SELECT holder_mark FROM canary_allocations";
const INSERT_ALERT: &str = "INSERT INTO alerts \
     (id, created_at, staff_id, org, severity, kind, reasons, entries, action, status, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING";
pub(crate) const ALERT_COLS: &str = "SELECT id, created_at, staff_id, org, severity, kind, reasons, entries, \
     action, status, updated_at FROM alerts";
const SELECT_REVIEWS: &str = "SELECT alert_id, reviewer FROM alert_reviews WHERE alert_id IN (";
const UPDATE_ALERT_STATUS: &str = "UPDATE alerts SET status = $2, updated_at = $3 WHERE id = $1";
const SELECT_CURSOR: &str = "SELECT next_seq FROM consumer_cursors WHERE name = $1";
const UPSERT_CURSOR: &str = "INSERT INTO consumer_cursors (name, next_seq) VALUES ($1, $2) \
     ON CONFLICT (name) DO UPDATE SET next_seq = excluded.next_seq";

/// A canary as planted: its mark and, when it can be allocated, its sealed id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryMark {
    /// Keyed hash of the canary's customer id.
    pub mark: String,
    /// The id sealed under the canary key (`Keyring::seal_canary_id`).
    pub sealed_id: Option<Vec<u8>>,
}

/// A canary that may be given to a person.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AllocatableCanary {
    /// Keyed hash of its customer id.
    pub mark: String,
    /// Its customer id, sealed.
    pub sealed_id: Vec<u8>,
    /// How many people hold it already.
    pub holders: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: String,
    created_at: i64,
    staff_id: String,
    org: String,
    severity: String,
    kind: String,
    reasons: String,
    entries: String,
    action: String,
    status: String,
    updated_at: i64,
}

impl TryFrom<AlertRow> for AlertRecord {
    type Error = StoreError;
    fn try_from(r: AlertRow) -> Result<Self, StoreError> {
        let corrupt =
            |c: &str| StoreError::Database(format!("unexpected stored value in alerts.{c}"));
        Ok(AlertRecord {
            reasons: serde_json::from_str(&r.reasons).map_err(|_| corrupt("reasons"))?,
            entries: serde_json::from_str(&r.entries).map_err(|_| corrupt("entries"))?,
            id: r.id,
            created_at: r.created_at,
            staff_id: r.staff_id,
            org: r.org,
            severity: r.severity,
            kind: r.kind,
            action: r.action,
            status: r.status,
            updated_at: r.updated_at,
            reviewed_by: Vec::new(),
        })
    }
}

impl Store {
    /// Adds canary marks (keyed hashes of canary customer ids); existing ones are kept.
    pub async fn insert_canary_marks(&self, marks: &[CanaryMark]) -> Result<(), StoreError> {
        for canary in marks {
            with_pool!(self, |pool| {
                sqlx::query(INSERT_CANARY_MARK)
                    .bind(&canary.mark)
                    .bind(canary.sealed_id.as_deref())
                    .execute(pool)
                    .await
                    .map_err(db_err)?;
            });
        }
        Ok(())
    }

    /// Every canary mark.
    pub async fn canary_marks(&self) -> Result<Vec<String>, StoreError> {
        let marks: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(SELECT_CANARY_MARKS)
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        Ok(marks)
    }

    /// Whether `mark` is a canary's mark (one row read, not the whole table).
    pub async fn is_canary_mark(&self, mark: &str) -> Result<bool, StoreError> {
        let n: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(SELECT_CANARY_MARK)
                .bind(mark)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        Ok(n > 0)
    }

    /// Up to `limit` canaries that can be given to a person of `peer_group`: none of that
    /// group holds them, the least held first.
    pub async fn allocatable_canaries(
        &self,
        peer_group: &str,
        limit: u32,
    ) -> Result<Vec<AllocatableCanary>, StoreError> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, AllocatableCanary>(SELECT_ALLOCATABLE)
                .bind(peer_group)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        Ok(rows)
    }

    /// Records that the canary `canary_mark` was given to the person of `holder_mark`
    /// (in `peer_group`). False, and nothing stored, when that person already holds it
    /// or someone of the group does (a concurrent allocation won).
    pub async fn insert_canary_allocation(
        &self,
        holder_mark: &str,
        canary_mark: &str,
        peer_group: &str,
    ) -> Result<bool, StoreError> {
        let added = with_pool!(self, |pool| {
            sqlx::query(INSERT_ALLOCATION)
                .bind(holder_mark)
                .bind(canary_mark)
                .bind(peer_group)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(added > 0)
    }

    /// Every holder mark: who was given which canary, readable only with the key.
    pub async fn canary_holder_marks(&self) -> Result<Vec<String>, StoreError> {
        let marks: Vec<String> = with_pool!(self, |pool| {
            sqlx::query_scalar(SELECT_HOLDER_MARKS)
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        Ok(marks)
    }

    /// Stores `alert` unless an alert with its id exists; returns whether it was new.
    pub async fn insert_alert(&self, alert: &AlertRecord) -> Result<bool, StoreError> {
        let encode = |_| StoreError::Database("cannot encode alert".into());
        let reasons = serde_json::to_string(&alert.reasons).map_err(encode)?;
        let entries = serde_json::to_string(&alert.entries).map_err(encode)?;
        let added = with_pool!(self, |pool| {
            sqlx::query(INSERT_ALERT)
                .bind(&alert.id)
                .bind(alert.created_at)
                .bind(&alert.staff_id)
                .bind(&alert.org)
                .bind(&alert.severity)
                .bind(&alert.kind)
                .bind(&reasons)
                .bind(&entries)
                .bind(&alert.action)
                .bind(&alert.status)
                .bind(alert.updated_at)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(added > 0)
    }

    /// Alerts, newest first; only those with `status` if given; at most `limit`.
    pub async fn alerts(
        &self,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rows: Vec<AlertRow> = with_pool!(self, |pool| {
            let mut qb = crate::builder_for(pool, ALERT_COLS);
            if let Some(status) = status {
                qb.push(" WHERE status = ").push_bind(status);
            }
            qb.push(" ORDER BY created_at DESC, id LIMIT ")
                .push_bind(i64::from(limit));
            qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
        });
        self.with_reviews(rows).await
    }

    /// Alerts of any of `kinds`, created at or after `since` if given, oldest first
    /// (the gateway re-applies the restrictions of recent ones at start).
    pub async fn alerts_of_kinds(
        &self,
        kinds: &[&str],
        since: Option<i64>,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<AlertRow> = with_pool!(self, |pool| {
            let mut qb = crate::builder_for(pool, ALERT_COLS);
            qb.push(" WHERE kind IN (");
            let mut list = qb.separated(", ");
            for kind in kinds {
                list.push_bind(*kind);
            }
            qb.push(")");
            if let Some(since) = since {
                qb.push(" AND created_at >= ").push_bind(since);
            }
            qb.push(" ORDER BY created_at, id");
            qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
        });
        // For the restrictions at start: their reviews are not read.
        rows.into_iter().map(AlertRecord::try_from).collect()
    }

    /// One alert by id.
    pub async fn alert(&self, id: &str) -> Result<Option<AlertRecord>, StoreError> {
        let row: Option<AlertRow> = with_pool!(self, |pool| {
            let mut qb = crate::builder_for(pool, ALERT_COLS);
            qb.push(" WHERE id = ").push_bind(id);
            qb.build_query_as()
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        Ok(self.with_reviews(row.into_iter().collect()).await?.pop())
    }

    /// Alerts from their rows, each with the reviewers it has (one read for all).
    async fn with_reviews(&self, rows: Vec<AlertRow>) -> Result<Vec<AlertRecord>, StoreError> {
        let mut alerts = rows
            .into_iter()
            .map(AlertRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        if alerts.is_empty() {
            return Ok(alerts);
        }
        let reviews: Vec<(String, String)> = with_pool!(self, |pool| {
            let mut qb = crate::builder_for(pool, SELECT_REVIEWS);
            let mut list = qb.separated(", ");
            for alert in &alerts {
                list.push_bind(alert.id.as_str());
            }
            qb.push(") ORDER BY at, reviewer");
            qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
        });
        for (alert_id, reviewer) in reviews {
            if let Some(alert) = alerts.iter_mut().find(|a| a.id == alert_id) {
                alert.reviewed_by.push(reviewer);
            }
        }
        Ok(alerts)
    }

    /// Sets an alert's status; false if there is no such alert.
    pub async fn set_alert_status(
        &self,
        id: &str,
        status: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(UPDATE_ALERT_STATUS)
                .bind(id)
                .bind(status)
                .bind(at)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// The next ledger index consumer `name` will read (0 if it never ran).
    pub async fn consumer_cursor(&self, name: &str) -> Result<u64, StoreError> {
        let next: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(SELECT_CURSOR)
                .bind(name)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        Ok(next.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
    }

    /// Records that consumer `name` has handled everything before ledger index `next`.
    pub async fn set_consumer_cursor(&self, name: &str, next: u64) -> Result<(), StoreError> {
        let next =
            i64::try_from(next).map_err(|_| StoreError::Database("cursor out of range".into()))?;
        with_pool!(self, |pool| {
            sqlx::query(UPSERT_CURSOR)
                .bind(name)
                .bind(next)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }
}
