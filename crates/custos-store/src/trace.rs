//! Reads for leak attribution: the customers behind many blind indexes at once, who was
//! exposed to them, and how much each person held in a time window. All of it reads
//! blind indexes and the access log only: no customer field is decrypted.

use crate::error::db_err;
use crate::{IndexColumn, Pools, Store, StoreError, builder_for};

/// Values bound per statement: well under SQLite's limit of 32,766 variables and
/// PostgreSQL's of 65,535.
const BATCH: usize = 1000;

/// An allowed view or reveal of a customer by a person, with the ledger index that
/// records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    /// Ledger index of the access record.
    pub seq: i64,
    /// When, unix milliseconds.
    pub at: i64,
    /// The person.
    pub staff_id: String,
    /// Their organisation at the time.
    pub org: String,
    /// The customer.
    pub customer_id: String,
    /// Whether a field was revealed (else the masked card was viewed).
    pub reveal: bool,
}

/// How many customers a person held in a window: what a leak of theirs is drawn from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holdings {
    /// The person.
    pub staff_id: String,
    /// Their organisation (the latest seen in the window).
    pub org: String,
    /// Distinct customers with at least one field revealed.
    pub revealed: u64,
    /// Distinct customers only viewed masked.
    pub viewed_only: u64,
}

#[derive(sqlx::FromRow)]
struct ExposureRow {
    seq: i64,
    at: i64,
    staff_id: String,
    org: String,
    customer_id: String,
    action: String,
}

#[derive(sqlx::FromRow)]
struct HoldingsRow {
    staff_id: String,
    org: String,
    revealed: i64,
    viewed_only: i64,
}

const SELECT_EXPOSURES: &str = "SELECT seq, at, staff_id, org, customer_id, action \
     FROM access_records WHERE decision = 'allow' AND action IN ('view', 'reveal') \
     AND at >= ";

/// Per (person, customer): revealed or only viewed; then counted per person. The
/// organisation is the one of the person's latest record before the window's end. Bound
/// in order: the end, the start, the end, then the staff ids of the `IN (…)` list.
const HOLDINGS_ORG: &str = "SELECT h.staff_id AS staff_id, \
     (SELECT a.org FROM access_records a WHERE a.staff_id = h.staff_id AND a.at < ";
const HOLDINGS_WINDOW: &str = " ORDER BY a.seq DESC LIMIT 1) AS org, \
     SUM(h.r) AS revealed, SUM(1 - h.r) AS viewed_only \
     FROM (SELECT staff_id, customer_id, \
           MAX(CASE WHEN action = 'reveal' THEN 1 ELSE 0 END) AS r \
           FROM access_records \
           WHERE decision = 'allow' AND action IN ('view', 'reveal') \
           AND customer_id IS NOT NULL AND at >= ";
const HOLDINGS_STAFF: &str = " GROUP BY staff_id, customer_id) h GROUP BY h.staff_id";

impl Store {
    /// For each of `indexes` (blind indexes, hex) of one kind, the customers stored under
    /// it, as `(index, customer id)` pairs (an index may name several customers, or none).
    pub async fn customers_by_indexes(
        &self,
        column: IndexColumn,
        indexes: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let init = match column {
            IndexColumn::Phone => "SELECT phone_idx, id FROM customers WHERE phone_idx IN (",
            IndexColumn::Email => "SELECT email_idx, id FROM customers WHERE email_idx IN (",
            IndexColumn::AccountId => {
                "SELECT account_idx, id FROM customers WHERE account_idx IN ("
            }
        };
        let mut out = Vec::new();
        for chunk in indexes.chunks(BATCH) {
            let rows: Vec<(String, String)> = with_pool!(self, |pool| {
                let mut qb = builder_for(pool, init);
                let mut list = qb.separated(", ");
                for index in chunk {
                    list.push_bind(index.as_str());
                }
                qb.push(")");
                qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// Every allowed view and reveal of `customer_ids` with `since <= at < until`,
    /// ordered by ledger index.
    pub async fn exposures(
        &self,
        customer_ids: &[String],
        since: i64,
        until: i64,
    ) -> Result<Vec<Exposure>, StoreError> {
        let mut rows: Vec<ExposureRow> = Vec::new();
        for chunk in customer_ids.chunks(BATCH) {
            let batch: Vec<ExposureRow> = with_pool!(self, |pool| {
                let mut qb = builder_for(pool, SELECT_EXPOSURES);
                qb.push_bind(since)
                    .push(" AND at < ")
                    .push_bind(until)
                    .push(" AND customer_id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                qb.push(")");
                qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
            });
            rows.extend(batch);
        }
        rows.sort_unstable_by_key(|r| r.seq);
        Ok(rows
            .into_iter()
            .map(|r| Exposure {
                seq: r.seq,
                at: r.at,
                reveal: r.action == "reveal",
                staff_id: r.staff_id,
                org: r.org,
                customer_id: r.customer_id,
            })
            .collect())
    }

    /// What each of `staff_ids` held with `since <= at < until`, ordered by staff id
    /// (people who held nobody in the window are left out).
    pub async fn holdings(
        &self,
        staff_ids: &[String],
        since: i64,
        until: i64,
    ) -> Result<Vec<Holdings>, StoreError> {
        let mut rows: Vec<HoldingsRow> = Vec::new();
        for chunk in staff_ids.chunks(BATCH) {
            let batch: Vec<HoldingsRow> = with_pool!(self, |pool| {
                let mut qb = builder_for(pool, HOLDINGS_ORG);
                qb.push_bind(until)
                    .push(HOLDINGS_WINDOW)
                    .push_bind(since)
                    .push(" AND at < ")
                    .push_bind(until)
                    .push(" AND staff_id IN (");
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                qb.push(")").push(HOLDINGS_STAFF);
                qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
            });
            rows.extend(batch);
        }
        rows.sort_unstable_by(|a, b| a.staff_id.cmp(&b.staff_id));
        Ok(rows
            .into_iter()
            .map(|r| Holdings {
                staff_id: r.staff_id,
                org: r.org,
                revealed: u64::try_from(r.revealed).unwrap_or(0),
                viewed_only: u64::try_from(r.viewed_only).unwrap_or(0),
            })
            .collect())
    }
}
