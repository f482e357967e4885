//! The server's own state for operators: liveness and metrics. Neither is recorded: they
//! carry no customer data (metrics are counted by route template, never by path), and
//! they are public so that probes and scrapers need no account.

use crate::error::Code;
use custos_access::{CheckpointHealth, LedgerHealth};
use serde::Serialize;

use crate::App;
use crate::error::{ErrorKind, ServiceError};

/// A healthy server's answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

impl App {
    /// Whether the ledger takes records and signs checkpoints and the store answers;
    /// otherwise the error naming why: `ledger_unavailable` (writes refused since a time,
    /// with the ledger's error code, or the writer stopped), `clock_backwards` (the
    /// clock is behind the last checkpoint's time) or `store_unavailable`. The ledger part costs
    /// no I/O. Not recorded: it carries no customer data and is public.
    pub async fn health(&self) -> Result<Health, ServiceError> {
        let unavailable =
            |code, message: String| ServiceError::new(ErrorKind::Unavailable, code, message);
        match self.access.health() {
            LedgerHealth::Writing => {}
            LedgerHealth::Refusing(r) => {
                return Err(unavailable(
                    Code::LedgerUnavailable,
                    format!(
                        "the ledger refuses writes ({}) since {} (unix ms), last at {}; requests are refused until it writes again, which it retries by itself",
                        r.code, r.since_ms, r.last_ms
                    ),
                ));
            }
            LedgerHealth::Stopped => {
                return Err(unavailable(
                    Code::LedgerUnavailable,
                    "the ledger writer has stopped; requests are refused until a restart".into(),
                ));
            }
        }
        // A clock behind the last checkpoint: records are still taken, but no checkpoint
        // is signed over them until the clock passes that time, so this node is not
        // healthy (a balancer may prefer another node meanwhile).
        if let CheckpointHealth::ClockBehind { now_ms, last_ms } = self.access.checkpoint_health() {
            return Err(unavailable(
                Code::ClockBackwards,
                format!(
                    "the clock reads {now_ms} (unix ms), before the last checkpoint's {last_ms}: no checkpoint is signed until it passes that time, which is retried by itself; records are still taken"
                ),
            ));
        }
        match self.store.count_open_cases().await {
            Ok(_) => Ok(Health { status: "ok" }),
            Err(e) => {
                tracing::error!(error = %e, "health check failed");
                Err(unavailable(
                    Code::StoreUnavailable,
                    "the store does not answer".into(),
                ))
            }
        }
    }

    /// The metrics in the Prometheus text exposition format; `None` when this server
    /// runs without a metrics recorder. Not recorded: counts by route template carry no
    /// customer data, and they are public.
    pub fn metrics_text(&self) -> Option<String> {
        self.metrics.as_ref().map(|handle| handle.render())
    }
}
