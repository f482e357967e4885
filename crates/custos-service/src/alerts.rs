//! Alerts raised by the detector: the analysts' queue. Acknowledging or dismissing one is
//! recorded in the ledger like any other act, and tunes nothing silently. Dismissing a
//! `risk_lower_quota` or `risk_step_up` alert (a false positive) lifts the restriction
//! it imposed at once.

use crate::error::Code;
use custos_policy::Action;
use custos_store::AlertRecord;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::error::{ErrorKind, ServiceError};
use crate::input::{ALERT_STATUSES, bounded, valid_id};
use crate::record::{Recorded, RequestMeta};
use crate::schema::{AlertStatus, Id};

/// Most alerts one call returns.
const MAX_ALERTS: u32 = 1000;

/// How many different analysts must review an alert of `kind` before it leaves the
/// queue, for the kinds that need more than one (a break-glass needs two).
pub fn reviews_needed(kind: &str) -> Option<u64> {
    (kind == custos_detector::break_glass::BREAK_GLASS).then_some(2)
}

/// Which alerts to list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// `open`, `acknowledged` or `dismissed`; all when absent.
    #[param(value_type = Option<AlertStatus>)]
    status: Option<String>,
    /// At most this many, newest first, 1 to 1,000 (default 1,000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Alerts, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertList {
    /// Newest first; each with its reasons in plain words and the ledger entries behind it.
    #[schema(value_type = Vec<Object>)]
    alerts: Vec<AlertRecord>,
}

/// An alert after a change of state.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AlertChange {
    #[schema(value_type = Id)]
    id: String,
    #[schema(value_type = AlertStatus)]
    status: &'static str,
    /// For an alert that needs two different reviewers (a break-glass): how many it has.
    reviews: Option<u64>,
}

impl App {
    /// The alert queue, newest first (`ReadAccess`); `query` is the filter as decoded by
    /// the transport.
    pub async fn alerts(
        &self,
        meta: &RequestMeta,
        query: Result<AlertQuery, ServiceError>,
    ) -> Recorded<AlertList> {
        let mut ex = self.begin(meta, custos_types::Action::ReadAlerts);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            let q = query?;
            if let Some(s) = &q.status
                && !ALERT_STATUSES.contains(&s.as_str())
            {
                return Err(ServiceError::bad_request(
                    Code::InvalidQuery,
                    "status is one of open, acknowledged, dismissed",
                ));
            }
            let limit = bounded("limit", q.limit.unwrap_or(MAX_ALERTS), MAX_ALERTS)?;
            let alerts = self.store.alerts(q.status.as_deref(), limit).await?;
            Ok(AlertList { alerts })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Alert `id`, whatever its age (`ReadAccess`).
    pub async fn alert(&self, meta: &RequestMeta, id: &str) -> Recorded<AlertRecord> {
        let mut ex = self.begin(meta, custos_types::Action::ReadAlerts);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            valid_id("alert", id)?;
            ex.target = Some(id.to_owned());
            self.store
                .alert(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("alert"))
        }
        .await;
        self.finish(ex, result).await
    }

    /// Acknowledges alert `id`: seen and being handled (`SuspendStaff`).
    pub async fn acknowledge_alert(&self, meta: &RequestMeta, id: &str) -> Recorded<AlertChange> {
        self.set_alert_status(
            meta,
            id,
            "acknowledged",
            custos_types::Action::AcknowledgeAlert,
        )
        .await
    }

    /// Dismisses alert `id` as a false positive (`SuspendStaff`). The detector's
    /// thresholds do not change because of it; a restriction the alert imposed is lifted.
    pub async fn dismiss_alert(&self, meta: &RequestMeta, id: &str) -> Recorded<AlertChange> {
        self.set_alert_status(meta, id, "dismissed", custos_types::Action::DismissAlert)
            .await
    }

    /// Sets the status of alert `id`, recorded as `action`, and brings its restriction
    /// in line.
    async fn set_alert_status(
        &self,
        meta: &RequestMeta,
        id: &str,
        status: &'static str,
        action: custos_types::Action,
    ) -> Recorded<AlertChange> {
        let mut ex = self.begin(meta, action);
        let result = async {
            let caller = self
                .authorize_vault(meta, &mut ex, Action::SuspendStaff)
                .await?;
            valid_id("alert", id)?;
            ex.target = Some(id.to_owned());
            let alert = self
                .store
                .alert(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("alert"))?;
            if let Some(needed) = reviews_needed(&alert.kind) {
                return self.review(&mut ex, &caller, &alert, status, needed).await;
            }
            self.record_intent(&mut ex).await?;
            if !self.store.set_alert_status(id, status, ex.at()).await? {
                return Err(ServiceError::not_found("alert"));
            }
            // Read back rather than assumed: the restriction follows what the store now says.
            if let Some(alert) = self.store.alert(id).await? {
                self.sync_restriction(&alert);
            }
            Ok(AlertChange {
                id: id.to_owned(),
                status,
                reviews: None,
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// A review of an alert that needs `needed` reviews (a break-glass): it leaves the
    /// queue (takes `status`) only once that many different analysts have reviewed it;
    /// the same analyst twice is refused.
    async fn review(
        &self,
        ex: &mut crate::record::Exchange,
        caller: &crate::auth::Caller,
        alert: &AlertRecord,
        status: &'static str,
        needed: u64,
    ) -> Result<AlertChange, ServiceError> {
        ex.fields = vec!["review".to_owned()];
        self.record_intent(ex).await?;
        let (reviews, new) = self
            .store
            .review_alert(&alert.id, &caller.staff.id, ex.at())
            .await?;
        if !new {
            return Err(ServiceError::new(
                ErrorKind::Conflict,
                Code::AlreadyReviewed,
                "you reviewed this alert already: another analyst must review it",
            ));
        }
        let status = if reviews >= needed {
            self.store
                .set_alert_status(&alert.id, status, ex.at())
                .await?;
            status
        } else {
            "open"
        };
        Ok(AlertChange {
            id: alert.id.clone(),
            status,
            reviews: Some(reviews),
        })
    }
}
