//! Reads for the console's charts: how many views and field reveals each person of an
//! organisation made per hour. Counts only; no customer id leaves the store.

use custos_types::{Action, Decision, RecordedRole};

use crate::error::db_err;
use crate::{Pools, Store, StoreError, builder_for, corrupt};

/// One person's allowed views and field reveals in one hour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HourlyActivity {
    /// The person.
    pub staff_id: String,
    /// Their role at the time.
    pub role: RecordedRole,
    /// Start of the hour, unix milliseconds (a multiple of an hour).
    pub hour: i64,
    /// Allowed masked views.
    pub views: u64,
    /// Fields revealed in full by allowed reveals (what the hourly reveal quota counts).
    pub reveals: u64,
}

#[derive(sqlx::FromRow)]
struct ActivityRow {
    staff_id: String,
    role: String,
    hour: i64,
    views: i64,
    reveals: i64,
}

// `fields` holds a JSON array of field names without quotes inside them, so a reveal's
// field count is half its number of `"` characters, on SQLite and PostgreSQL alike.
// Bound in order: view, reveal, allow, view, reveal, then the window and the org.
const ACTIVITY: &str = "SELECT staff_id, role, (at / 3600000) * 3600000 AS hour, \
     SUM(CASE WHEN action = ";
const ACTIVITY_REVEALS: &str = " THEN 1 ELSE 0 END) AS views, \
     SUM(CASE WHEN action = ";
const ACTIVITY_FROM: &str = " THEN (LENGTH(fields) - LENGTH(REPLACE(fields, '\"', ''))) / 2 ELSE 0 END) AS reveals \
     FROM access_records WHERE decision = ";

impl Store {
    /// Per person and hour, the allowed views and field reveals of the staff of `org`
    /// between `since` (inclusive) and `until` (exclusive), ordered by person and hour.
    /// Hours without any are left out.
    pub async fn hourly_activity(
        &self,
        org: &str,
        since: i64,
        until: i64,
    ) -> Result<Vec<HourlyActivity>, StoreError> {
        let rows: Vec<ActivityRow> = with_pool!(self, |pool| {
            let mut qb = builder_for(pool, ACTIVITY);
            qb.push_bind(Action::View.as_str())
                .push(ACTIVITY_REVEALS)
                .push_bind(Action::Reveal.as_str())
                .push(ACTIVITY_FROM)
                .push_bind(Decision::Allow.as_str())
                .push(" AND action IN (")
                .push_bind(Action::View.as_str())
                .push(", ")
                .push_bind(Action::Reveal.as_str())
                .push(") AND at >= ")
                .push_bind(since)
                .push(" AND at < ")
                .push_bind(until)
                .push(" AND org = ")
                .push_bind(org)
                .push(" GROUP BY staff_id, role, hour ORDER BY staff_id, hour");
            qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
        });
        rows.into_iter()
            .map(|r| {
                Ok(HourlyActivity {
                    role: r.role.parse().map_err(|_| corrupt("access_records.role"))?,
                    staff_id: r.staff_id,
                    hour: r.hour,
                    views: u64::try_from(r.views).unwrap_or(0),
                    reveals: u64::try_from(r.reveals).unwrap_or(0),
                })
            })
            .collect()
    }
}
