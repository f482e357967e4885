//! Access requests and break-glass: access no channel vouches for, given by a second
//! person's approval or taken in an emergency. A granted row is a grant of its fields to
//! its requester on its case until `grant_until`.

use custos_types::{GrantKind, GrantStatus};

use crate::error::db_err;
use crate::{Pools, Store, StoreError, corrupt, count, sql_limit};

/// One access request (or break-glass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    /// Unique id.
    pub id: String,
    /// Asked of an approver, or break-glass.
    pub kind: GrantKind,
    /// Who asked.
    pub requester: String,
    /// The requester's organisation when they asked.
    pub requester_org: String,
    /// The customer.
    pub customer_id: String,
    /// The requester's case for that customer.
    pub case_id: String,
    /// The fields asked for (`name`, `phone`, `email`, `account_id`).
    pub fields: Vec<String>,
    /// Why, sealed under the customer's data key.
    pub purpose: Vec<u8>,
    /// Where it stands.
    pub status: GrantStatus,
    /// Who decided (for break-glass: the requester).
    pub decided_by: Option<String>,
    /// When, unix milliseconds.
    pub decided_at: Option<i64>,
    /// The decision's reason, sealed under the customer's data key.
    pub decision_reason: Option<Vec<u8>>,
    /// Until when a grant opens its fields, unix milliseconds.
    pub grant_until: Option<i64>,
    /// When it was asked, unix milliseconds.
    pub created_at: i64,
}

macro_rules! grant_cols {
    () => {
        "id, kind, requester, requester_org, customer_id, case_id, fields, purpose, status, \
         decided_by, decided_at, decision_reason, grant_until, created_at"
    };
}

const INSERT_GRANT: &str = concat!(
    "INSERT INTO access_requests (",
    grant_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
);
const SELECT_GRANT: &str = concat!(
    "SELECT ",
    grant_cols!(),
    " FROM access_requests WHERE id = $1"
);
const SELECT_PENDING: &str = concat!(
    "SELECT ",
    grant_cols!(),
    " FROM access_requests WHERE status = 'pending' ORDER BY created_at, id LIMIT $1"
);
const SELECT_IN_FORCE: &str = concat!(
    "SELECT ",
    grant_cols!(),
    " FROM access_requests WHERE requester = $1 AND status = 'granted' AND grant_until > $2 \
     ORDER BY created_at, id"
);
// Only a pending request is decided, once: two approvers racing cannot both decide it.
const DECIDE: &str = "UPDATE access_requests SET status = $2, decided_by = $3, decided_at = $4, \
     decision_reason = $5, grant_until = $6 WHERE id = $1 AND status = 'pending'";
const COUNT_SINCE: &str = "SELECT COUNT(*) FROM access_requests \
     WHERE requester = $1 AND kind = $2 AND created_at >= $3";

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: String,
    kind: String,
    requester: String,
    requester_org: String,
    customer_id: String,
    case_id: String,
    fields: String,
    purpose: Vec<u8>,
    status: String,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    decision_reason: Option<Vec<u8>>,
    grant_until: Option<i64>,
    created_at: i64,
}

impl TryFrom<GrantRow> for GrantRecord {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<Self, StoreError> {
        Ok(GrantRecord {
            kind: r
                .kind
                .parse()
                .map_err(|_| corrupt("access_requests.kind"))?,
            status: r
                .status
                .parse()
                .map_err(|_| corrupt("access_requests.status"))?,
            fields: r.fields.split(',').map(str::to_owned).collect(),
            id: r.id,
            requester: r.requester,
            requester_org: r.requester_org,
            customer_id: r.customer_id,
            case_id: r.case_id,
            purpose: r.purpose,
            decided_by: r.decided_by,
            decided_at: r.decided_at,
            decision_reason: r.decision_reason,
            grant_until: r.grant_until,
            created_at: r.created_at,
        })
    }
}

/// How a pending request is decided.
#[derive(Clone, Debug)]
pub struct GrantDecision<'a> {
    /// `Granted` or `Denied`.
    pub status: GrantStatus,
    /// The approver.
    pub decided_by: &'a str,
    /// When, unix milliseconds.
    pub at: i64,
    /// The reason, sealed.
    pub reason: &'a [u8],
    /// Until when a grant holds.
    pub grant_until: Option<i64>,
}

impl Store {
    /// Adds an access request. [`StoreError::NotFound`] if the customer does not exist.
    /// Field names hold no comma (they are the fixed field words).
    pub async fn insert_grant(&self, g: &GrantRecord) -> Result<(), StoreError> {
        let fields = g.fields.join(",");
        with_pool!(self, |pool| {
            sqlx::query(INSERT_GRANT)
                .bind(g.id.as_str())
                .bind(g.kind.as_str())
                .bind(g.requester.as_str())
                .bind(g.requester_org.as_str())
                .bind(g.customer_id.as_str())
                .bind(g.case_id.as_str())
                .bind(fields.as_str())
                .bind(g.purpose.as_slice())
                .bind(g.status.as_str())
                .bind(g.decided_by.as_deref())
                .bind(g.decided_at)
                .bind(g.decision_reason.as_deref())
                .bind(g.grant_until)
                .bind(g.created_at)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// The access request with `id`, if any.
    pub async fn grant(&self, id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row: Option<GrantRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_GRANT)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        row.map(GrantRecord::try_from).transpose()
    }

    /// Pending requests, oldest first, at most `limit` (0 = no limit).
    pub async fn pending_grants(&self, limit: u32) -> Result<Vec<GrantRecord>, StoreError> {
        let rows: Vec<GrantRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_PENDING)
                .bind(sql_limit(limit))
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        rows.into_iter().map(GrantRecord::try_from).collect()
    }

    /// `requester`'s grants still in force at `now`.
    pub async fn grants_in_force(
        &self,
        requester: &str,
        now: i64,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let rows: Vec<GrantRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_IN_FORCE)
                .bind(requester)
                .bind(now)
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        rows.into_iter().map(GrantRecord::try_from).collect()
    }

    /// Decides pending request `id`; `false` if there is none pending with that id.
    pub async fn decide_grant(
        &self,
        id: &str,
        decision: &GrantDecision<'_>,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(DECIDE)
                .bind(id)
                .bind(decision.status.as_str())
                .bind(decision.decided_by)
                .bind(decision.at)
                .bind(decision.reason)
                .bind(decision.grant_until)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// How many requests of `kind` `requester` made since `since` (unix milliseconds).
    pub async fn count_grants_since(
        &self,
        requester: &str,
        kind: GrantKind,
        since: i64,
    ) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, |pool| sqlx::query_scalar(COUNT_SINCE)
            .bind(requester)
            .bind(kind.as_str())
            .bind(since)
            .fetch_one(pool)
            .await
            .map_err(db_err)?);
        Ok(count(n))
    }
}

const INSERT_REVIEW: &str = "INSERT INTO alert_reviews (alert_id, reviewer, at) VALUES ($1, $2, $3) \
     ON CONFLICT (alert_id, reviewer) DO NOTHING";
const COUNT_REVIEWS: &str = "SELECT COUNT(*) FROM alert_reviews WHERE alert_id = $1";

impl Store {
    /// Records that `reviewer` reviewed alert `alert_id` (once per reviewer); how many
    /// different reviewers it has now, and whether this one was new.
    pub async fn review_alert(
        &self,
        alert_id: &str,
        reviewer: &str,
        at: i64,
    ) -> Result<(u64, bool), StoreError> {
        let (added, n): (u64, i64) = with_pool!(self, |pool| {
            let added = sqlx::query(INSERT_REVIEW)
                .bind(alert_id)
                .bind(reviewer)
                .bind(at)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected();
            let n = sqlx::query_scalar(COUNT_REVIEWS)
                .bind(alert_id)
                .fetch_one(pool)
                .await
                .map_err(db_err)?;
            (added, n)
        });
        Ok((count(n), added > 0))
    }
}
