//! The detector's restrictions in the gateway: re-applied at start from the alerts of
//! the last day, imposed by the detector through a hook, brought in line when an analyst
//! changes an alert, and — when several nodes share a PostgreSQL database — followed
//! from the alerts every [`FOLLOW_EVERY`], so that a restriction the detector's node
//! imposed, or an analyst lifted on another node, holds on this one within a second.

use std::sync::{Arc, Weak};
use std::time::Duration;

use custos_types::clock::now_millis;

use crate::{App, ServiceError};

/// How often a node that shares its database reads the restriction alerts again (the
/// bound on how late a restriction or its lifting reaches it, less the read's time).
const FOLLOW_EVERY: Duration = Duration::from_millis(500);

impl App {
    /// Re-applies the restrictions of alerts raised in the last 24 hours and not
    /// dismissed (they lived in memory only). With a simulated clock "now" is the
    /// requests' time, unknown here: every such alert is re-applied, and each request
    /// compares its own time with the restriction's end.
    pub(crate) async fn replay_restrictions(&self) -> Result<(), ServiceError> {
        let alerts = self.restriction_alerts().await?;
        let mut applied = 0;
        for alert in &alerts {
            if let Some(r) = custos_detector::Restriction::of_alert(alert) {
                self.quotas.restrict(r);
                applied += 1;
            }
        }
        tracing::info!(restrictions = applied, "restrictions re-applied");
        Ok(())
    }

    /// Brings the restriction of `alert` in line with its status after an analyst
    /// changed it: a dismissed alert lifts its restriction at once, any other status
    /// keeps (or restores) it, as a restart would.
    pub(crate) fn sync_restriction(&self, alert: &custos_store::AlertRecord) {
        match custos_detector::Restriction::of_alert(alert) {
            Some(r) => self.quotas.restrict(r),
            None => {
                if self.quotas.lift(&alert.id) {
                    tracing::info!(alert = %alert.id, "restriction lifted");
                }
            }
        }
    }

    /// The hook the detector imposes restrictions through (`custos_detector::start`).
    /// It holds the gateway weakly: the detector's task does not keep it alive.
    pub fn restriction_hook(self: &Arc<Self>) -> custos_detector::RestrictionHook {
        let app = Arc::downgrade(self);
        Arc::new(move |r: custos_detector::Restriction| {
            if let Some(app) = app.upgrade() {
                tracing::info!(staff = %r.staff_id, kind = r.kind.as_str(), until = r.until_ms, "restriction imposed");
                app.quotas.restrict(r);
            }
        })
    }

    /// On a database shared by several nodes: follows the restriction alerts (module
    /// docs) for as long as the gateway lives.
    pub(crate) fn follow_restrictions(self: &Arc<Self>) {
        if self.store.leases().is_none() {
            return;
        }
        tokio::spawn(follow(Arc::downgrade(self)));
    }

    /// Every restriction alert of the last day (all of them with a simulated clock).
    async fn restriction_alerts(&self) -> Result<Vec<custos_store::AlertRecord>, ServiceError> {
        let kinds = custos_detector::RestrictionKind::ALL.map(|k| k.finding_kind());
        let since = (!self.config.simulated_clock)
            .then(|| now_millis() - custos_detector::restrict::RESTRICTION_MS);
        Ok(self.store.alerts_of_kinds(&kinds, since).await?)
    }
}

async fn follow(app: Weak<App>) {
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let Some(app) = app.upgrade() else {
            return;
        };
        match app.restriction_alerts().await {
            // Only what an alert says is applied: a restriction imposed here just before
            // its alert is stored stays.
            Ok(alerts) => alerts.iter().for_each(|a| app.sync_restriction(a)),
            Err(e) => tracing::warn!(error = %e.message, "cannot read the restriction alerts"),
        }
    }
}
