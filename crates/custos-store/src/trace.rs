//! Reads for leak attribution: the customers behind many blind indexes at once, who was
//! exposed to them in a time window, and how much each person held. All of it reads
//! blind indexes and the access index only: no customer field is decrypted. The
//! per-pair and per-person summaries (`access_holdings`, `staff_holdings`) are kept by
//! the database as access records are inserted (migration `0004_holdings`), so a trace
//! over the whole log reads no access record except for its evidence.

use std::collections::HashMap;

use custos_types::{Action, Decision};

use crate::error::db_err;
use crate::{IndexColumn, Pools, Store, StoreError, builder_for, corrupt};

/// Staff ids bound per `IN (…)` list: well under SQLite's limit of 32,766 variables and
/// PostgreSQL's of 65,535.
const BATCH: usize = 1000;

/// A person's allowed views and reveals of one customer in a window, summarised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    /// The person.
    pub staff_id: String,
    /// The customer.
    pub customer_id: String,
    /// Their first view or reveal of the customer in the window, unix milliseconds.
    pub first_at: i64,
    /// Their last.
    pub last_at: i64,
    /// Whether a field was revealed in the window (else the masked card was only viewed).
    pub reveal: bool,
}

/// How many customers a person held at the end of a window: what a leak of theirs is
/// drawn from. A customer viewed or revealed before the window's start is still held
/// (data once shown is not given back), so only the window's end matters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holdings {
    /// The person.
    pub staff_id: String,
    /// Their organisation: the one of their latest access record before the window's end.
    pub org: String,
    /// Distinct customers with at least one field revealed.
    pub revealed: u64,
    /// Distinct customers only viewed masked.
    pub viewed_only: u64,
}

/// Values looked up per statement (blind indexes, customer ids), bound as one JSON array:
/// one statement instead of a thousand-value `IN` list per thousand values.
const LOOKUP_BATCH: usize = 50_000;

/// Up to this many indexes, a lookup is read on the caller's thread (SQLite).
const POINT_LOOKUP: usize = 8;

/// `values`, distinct and in (SQLite's) index order, as JSON arrays of at most
/// [`LOOKUP_BATCH`]: consecutive lookups then walk the index's pages forward instead of
/// jumping about it.
fn sorted_json_batches(values: &[String]) -> Result<Vec<String>, StoreError> {
    let mut sorted: Vec<&str> = values.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    sorted
        .chunks(LOOKUP_BATCH)
        .map(|chunk| {
            serde_json::to_string(chunk)
                .map_err(|_| StoreError::Database("cannot encode lookup values".into()))
        })
        .collect()
}

/// One statement over the values of the JSON array bound as `$1` (`j.value`), spelled
/// for each backend: `(SQLite, PostgreSQL)`. On SQLite, `CROSS JOIN` makes the planner
/// walk the array and seek the joined table's index, never the other way round.
macro_rules! over_json_array {
    ($select:literal, $join:literal) => {
        (
            concat!($select, " FROM json_each($1) AS j CROSS JOIN ", $join),
            concat!(
                $select,
                " FROM jsonb_array_elements_text($1::TEXT::JSONB) AS j(value) JOIN ",
                $join
            ),
        )
    };
}

/// Per index column (phone, email, account id): each index of the array joined to the
/// customers under it, through the covering index `(…_idx, id)` (migration
/// `0005_blind_index_lookup`).
const LOOKUP: [(&str, &str); 3] = [
    over_json_array!(
        "SELECT j.value, c.id",
        "customers AS c ON c.phone_idx = j.value"
    ),
    over_json_array!(
        "SELECT j.value, c.id",
        "customers AS c ON c.email_idx = j.value"
    ),
    over_json_array!(
        "SELECT j.value, c.id",
        "customers AS c ON c.account_idx = j.value"
    ),
];

#[derive(sqlx::FromRow)]
struct PairRow {
    customer_id: String,
    staff_id: String,
    first_at: i64,
    last_at: i64,
    revealed_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    at: i64,
    staff_id: String,
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

/// The pairs of the customers of a JSON array (`$1`) with any access in the window
/// (`$2` its end, `$3` its start), through `access_holdings`' primary key.
const SELECT_PAIRS: (&str, &str) = over_json_array!(
    "SELECT h.customer_id, h.staff_id, h.first_at, h.last_at, h.revealed_at",
    "access_holdings AS h ON h.customer_id = j.value \
     WHERE h.first_at < $2 AND h.last_at >= $3"
);

/// The allowed views and reveals of the customers of a JSON array (`$1`) in the window
/// (`$2` its start, `$3` its end); `$4` is the decision `allow`, `$5` and `$6` the
/// actions `view` and `reveal`.
const SELECT_RECORDS: (&str, &str) = over_json_array!(
    "SELECT r.at, r.staff_id, r.customer_id, r.action",
    "access_records AS r ON r.customer_id = j.value \
     WHERE r.decision = $4 AND r.action IN ($5, $6) \
     AND r.at >= $2 AND r.at < $3"
);

/// Bound in order: the decision `allow`, the actions `view` and `reveal`, the person.
const SELECT_SEQS: &str = "SELECT seq, customer_id FROM access_records WHERE decision = ";

const MAX_AT: &str = "SELECT MAX(at) FROM access_records";

/// The organisation of a person's latest record before the window's end, bound first.
const HOLDINGS_ORG: &str = "SELECT h.staff_id AS staff_id, \
     (SELECT a.org FROM access_records a WHERE a.staff_id = h.staff_id AND a.at < ";

/// When nothing is recorded at or after the window's end, every pair is held by then:
/// the per-person counts are the answer. Bound after the end: the staff ids.
const HOLDINGS_ALL: &str = " ORDER BY a.seq DESC LIMIT 1) AS org, \
     h.revealed AS revealed, h.viewed_only AS viewed_only \
     FROM staff_holdings h WHERE h.staff_id IN (";

/// Otherwise count the pairs first held before the end (bound again, twice), then the
/// staff ids.
const HOLDINGS_BEFORE: &str = " ORDER BY a.seq DESC LIMIT 1) AS org, \
     h.revealed AS revealed, h.viewed_only AS viewed_only \
     FROM (SELECT staff_id, \
           SUM(CASE WHEN revealed_at < ";
const HOLDINGS_BEFORE_COUNT: &str = " THEN 1 ELSE 0 END) AS revealed, \
           SUM(CASE WHEN revealed_at < ";
const HOLDINGS_BEFORE_FROM: &str = " THEN 0 ELSE 1 END) AS viewed_only \
           FROM access_holdings WHERE first_at < ";
const HOLDINGS_BEFORE_STAFF: &str = " AND staff_id IN (";
const HOLDINGS_BEFORE_GROUP: &str = " GROUP BY staff_id) h";

impl Store {
    /// For each of `indexes` (blind indexes, hex) of one kind, the customers stored under
    /// it, as `(index, customer id)` pairs (an index may name several customers, or none).
    pub async fn customers_by_indexes(
        &self,
        column: IndexColumn,
        indexes: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let k = match column {
            IndexColumn::Phone => 0,
            IndexColumn::Email => 1,
            IndexColumn::AccountId => 2,
        };
        let mut out = Vec::new();
        for json in sorted_json_batches(indexes)? {
            // A caller's number or two: a few index seeks (the reader's module docs).
            if let Some(reader) = &self.reader
                && indexes.len() <= POINT_LOOKUP
            {
                out.extend(reader.rows::<(String, String)>(LOOKUP[k].0, [json])?);
                continue;
            }
            let rows: Vec<(String, String)> = with_pool!(self, |pool, sql = {
                sqlite: LOOKUP[k].0,
                postgres: LOOKUP[k].1,
            }| {
                sqlx::query_as(sql)
                    .bind(json)
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// Who was exposed to `customer_ids` with `since <= at < until`: per person and
    /// customer, their allowed views and reveals in the window summarised, ordered by
    /// first access, then person, then customer.
    ///
    /// Read from `access_holdings`, one row per pair. A pair whose accesses all fall in
    /// the window is its own summary; one with accesses on both sides of a bound cannot
    /// say which fall inside, so that customer's records in the window are read instead.
    /// A whole-log trace reads no record.
    pub async fn exposures(
        &self,
        customer_ids: &[String],
        since: i64,
        until: i64,
    ) -> Result<Vec<Exposure>, StoreError> {
        let mut out = Vec::new();
        let mut straddling: Vec<String> = Vec::new();
        for json in sorted_json_batches(customer_ids)? {
            let rows: Vec<PairRow> = with_pool!(self, |pool, sql = {
                sqlite: SELECT_PAIRS.0,
                postgres: SELECT_PAIRS.1,
            }| {
                sqlx::query_as(sql)
                    .bind(json)
                    .bind(until)
                    .bind(since)
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)?
            });
            for r in rows {
                if r.first_at >= since && r.last_at < until {
                    out.push(Exposure {
                        reveal: r.revealed_at.is_some(),
                        staff_id: r.staff_id,
                        customer_id: r.customer_id,
                        first_at: r.first_at,
                        last_at: r.last_at,
                    });
                } else if straddling.last() != Some(&r.customer_id) {
                    straddling.push(r.customer_id);
                }
            }
        }
        if !straddling.is_empty() {
            straddling.sort_unstable();
            straddling.dedup();
            out.retain(|e| straddling.binary_search(&e.customer_id).is_err());
            out.extend(
                self.exposures_from_records(&straddling, since, until)
                    .await?,
            );
        }
        out.sort_unstable_by(|a, b| {
            (a.first_at, &a.staff_id, &a.customer_id).cmp(&(
                b.first_at,
                &b.staff_id,
                &b.customer_id,
            ))
        });
        Ok(out)
    }

    /// [`Store::exposures`] of `customer_ids` summarised from their access records.
    async fn exposures_from_records(
        &self,
        customer_ids: &[String],
        since: i64,
        until: i64,
    ) -> Result<Vec<Exposure>, StoreError> {
        let mut pairs: HashMap<(String, String), Exposure> = HashMap::new();
        for json in sorted_json_batches(customer_ids)? {
            let rows: Vec<RecordRow> = with_pool!(self, |pool, sql = {
                sqlite: SELECT_RECORDS.0,
                postgres: SELECT_RECORDS.1,
            }| {
                sqlx::query_as(sql)
                    .bind(json)
                    .bind(since)
                    .bind(until)
                    .bind(Decision::Allow.as_str())
                    .bind(Action::View.as_str())
                    .bind(Action::Reveal.as_str())
                    .fetch_all(pool)
                    .await
                    .map_err(db_err)?
            });
            for r in rows {
                let action: Action = r
                    .action
                    .parse()
                    .map_err(|_| corrupt("access_records.action"))?;
                let reveal = action == Action::Reveal;
                pairs
                    .entry((r.customer_id.clone(), r.staff_id.clone()))
                    .and_modify(|e| {
                        e.first_at = e.first_at.min(r.at);
                        e.last_at = e.last_at.max(r.at);
                        e.reveal |= reveal;
                    })
                    .or_insert(Exposure {
                        staff_id: r.staff_id,
                        customer_id: r.customer_id,
                        first_at: r.at,
                        last_at: r.at,
                        reveal,
                    });
            }
        }
        Ok(pairs.into_values().collect())
    }

    /// The ledger indexes of `staff_id`'s allowed views and reveals with
    /// `since <= at < until`, with the customer of each, in ledger order: the evidence
    /// behind a suspect.
    pub async fn exposure_seqs(
        &self,
        staff_id: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows: Vec<(i64, String)> = with_pool!(self, |pool| {
            let mut qb = builder_for(pool, SELECT_SEQS);
            qb.push_bind(Decision::Allow.as_str())
                .push(" AND action IN (")
                .push_bind(Action::View.as_str())
                .push(", ")
                .push_bind(Action::Reveal.as_str())
                .push(") AND customer_id IS NOT NULL AND staff_id = ")
                .push_bind(staff_id)
                .push(" AND at >= ")
                .push_bind(since)
                .push(" AND at < ")
                .push_bind(until)
                .push(" ORDER BY seq");
            qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
        });
        Ok(rows)
    }

    /// What each of `staff_ids` held at `until` (see [`Holdings`]), ordered by staff id
    /// (people who held nobody are left out).
    ///
    /// When no access is recorded at or after `until` (a trace up to now), the per-person
    /// counts kept as records are indexed answer it in one small read; otherwise the
    /// pairs first held before `until` are counted.
    pub async fn holdings(
        &self,
        staff_ids: &[String],
        until: i64,
    ) -> Result<Vec<Holdings>, StoreError> {
        let latest: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(MAX_AT)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        let everything = latest.is_none_or(|at| at < until);
        let mut rows: Vec<HoldingsRow> = Vec::new();
        for chunk in staff_ids.chunks(BATCH) {
            let batch: Vec<HoldingsRow> = with_pool!(self, |pool| {
                let mut qb = builder_for(pool, HOLDINGS_ORG);
                qb.push_bind(until);
                if everything {
                    qb.push(HOLDINGS_ALL);
                } else {
                    qb.push(HOLDINGS_BEFORE)
                        .push_bind(until)
                        .push(HOLDINGS_BEFORE_COUNT)
                        .push_bind(until)
                        .push(HOLDINGS_BEFORE_FROM)
                        .push_bind(until)
                        .push(HOLDINGS_BEFORE_STAFF);
                }
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id.as_str());
                }
                qb.push(")");
                if !everything {
                    qb.push(HOLDINGS_BEFORE_GROUP);
                }
                qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
            });
            rows.extend(batch);
        }
        rows.retain(|r| r.revealed + r.viewed_only > 0);
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
