//! Retention: access-index rows and the console's rows older than the limits of
//! `[retention]` are deleted, at start and then every `interval_hours`; the ledger never
//! is. A run is recorded in the ledger (`retention_run`, with its limits and what it is
//! about to delete) before anything is deleted; a run that finds nothing to delete
//! records nothing and changes nothing. On PostgreSQL each node runs it; a node that
//! comes second finds nothing.
//!
//! The PIPL keeps handling records at least three years, so the limits may not be under
//! [`crate::config::LEGAL_MINIMUM_DAYS`] unless `allow_below_legal_minimum` says the operator decided
//! otherwise (never under [`crate::config::ABSOLUTE_MINIMUM_DAYS`]: break-glass rations count 30 days of
//! records).

use std::sync::{Arc, Weak};
use std::time::Duration;

use custos_store::RetentionCounts;
use custos_types::Action;
use custos_types::clock::now_millis;

use crate::record::SystemEvent;
use crate::{App, ServiceError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One run's limits (unix ms: rows older go) and counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionRun {
    /// Access records older than this go.
    pub access_before: i64,
    /// Console sessions last used before this go.
    pub console_before: i64,
    /// What the run deleted.
    pub deleted: RetentionCounts,
}

impl App {
    /// Runs retention once at `now` (unix ms): counts, records the run, deletes. `None`
    /// when there was nothing to delete (and so nothing was recorded).
    pub(crate) async fn run_retention(
        &self,
        now: i64,
    ) -> Result<Option<RetentionRun>, ServiceError> {
        let limits = &self.config.retention;
        let access_before = now - i64::from(limits.access_index_days) * DAY_MS;
        let console_before = now - i64::from(limits.console_days) * DAY_MS;
        let due = self
            .store
            .retention_counts(access_before, console_before)
            .await?;
        if due == RetentionCounts::default() {
            return Ok(None);
        }
        // On the record before anything goes: a run the ledger cannot record does not
        // take place.
        self.record_system(SystemEvent {
            action: Action::RetentionRun,
            at: now,
            customer_id: None,
            case_id: None,
            target: Some("access_index".to_owned()),
            fields: vec![
                format!("access_index_before:{access_before}"),
                format!("access_records:{}", due.access_records),
                format!("holdings:{}", due.holdings),
                format!("console_before:{console_before}"),
                format!("console_sessions:{}", due.console_sessions),
            ],
            reason_code: "retention".to_owned(),
        })
        .await?;
        let deleted = self
            .store
            .apply_retention(access_before, console_before)
            .await?;
        tracing::info!(
            access_records = deleted.access_records,
            holdings = deleted.holdings,
            console_sessions = deleted.console_sessions,
            "retention run"
        );
        Ok(Some(RetentionRun {
            access_before,
            console_before,
            deleted,
        }))
    }

    /// Runs retention now and then every `interval_hours`, for as long as the gateway
    /// lives.
    pub(crate) fn start_retention(self: &Arc<Self>) {
        let every = Duration::from_secs(u64::from(self.config.retention.interval_hours) * 3600);
        tokio::spawn(run_periodically(Arc::downgrade(self), every));
    }
}

async fn run_periodically(app: Weak<App>, every: Duration) {
    loop {
        let Some(live) = app.upgrade() else {
            return;
        };
        if let Err(e) = live.run_retention(now_millis()).await {
            tracing::warn!(code = e.code.as_str(), error = %e.message, "retention run failed; tried again at the next interval");
        }
        drop(live);
        tokio::time::sleep(every).await;
    }
}
