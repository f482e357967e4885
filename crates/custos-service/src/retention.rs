//! Retention: access-index rows and the console's rows older than the limits of
//! `[retention]` are deleted, at start and then every `interval_hours`; the ledger never
//! is. A run is recorded in the ledger (`retention_run`, with its limits and what it is
//! about to delete) before anything is deleted; a run that finds nothing to delete
//! records nothing and changes nothing. On PostgreSQL each node runs it; a node that
//! comes second finds nothing.
//!
//! The PIPL keeps handling records at least three years, so the limits may not be under
//! [`LEGAL_MINIMUM_DAYS`] unless `allow_below_legal_minimum` says the operator decided
//! otherwise (never under [`ABSOLUTE_MINIMUM_DAYS`]: break-glass rations count 30 days of
//! records).

use std::sync::{Arc, Weak};
use std::time::Duration;

use custos_store::RetentionCounts;
use custos_types::Action;
use custos_types::clock::now_millis;
use serde::{Deserialize, Serialize};

use crate::record::SystemEvent;
use crate::{App, ServiceError};

/// Three years, the PIPL's minimum for handling records: the default limits and the
/// least allowed without `allow_below_legal_minimum`.
pub const LEGAL_MINIMUM_DAYS: u32 = 3 * 365;
/// The least any limit may be (break-glass rations count the last 30 days of records).
pub const ABSOLUTE_MINIMUM_DAYS: u32 = 31;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What is kept how long (section `[retention]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days the access index (and leak tracing's summary of it) keeps a record (default
    /// 1095).
    pub access_index_days: u32,
    /// Days a console session is kept after its last use (default 1095; sessions end
    /// much sooner, see `[console]`, so this bounds what a crash could leave).
    pub console_days: u32,
    /// Hours between runs (1 to 8760; default 24).
    pub interval_hours: u32,
    /// Allows limits under three years (down to 31 days) where the law the company
    /// answers to allows it.
    pub allow_below_legal_minimum: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            access_index_days: LEGAL_MINIMUM_DAYS,
            console_days: LEGAL_MINIMUM_DAYS,
            interval_hours: 24,
            allow_below_legal_minimum: false,
        }
    }
}

impl RetentionConfig {
    /// Why this configuration is refused, if it is.
    pub(crate) fn problem(&self) -> Option<String> {
        let floor = if self.allow_below_legal_minimum {
            ABSOLUTE_MINIMUM_DAYS
        } else {
            LEGAL_MINIMUM_DAYS
        };
        for (key, days) in [
            ("access_index_days", self.access_index_days),
            ("console_days", self.console_days),
        ] {
            if days < floor {
                return Some(if self.allow_below_legal_minimum {
                    format!("retention.{key} must be at least {ABSOLUTE_MINIMUM_DAYS} days")
                } else {
                    format!(
                        "retention.{key} must be at least {LEGAL_MINIMUM_DAYS} days (three years, the PIPL's minimum for handling records); set retention.allow_below_legal_minimum = true to go lower"
                    )
                });
            }
        }
        if !(1..=24 * 365).contains(&self.interval_hours) {
            return Some("retention.interval_hours must be from 1 to 8760".into());
        }
        None
    }
}

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
