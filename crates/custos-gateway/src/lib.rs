//! The Custos gateway: the one door to the vault.
//!
//! Every data request follows the same path (DESIGN.md, "Data flow"):
//! [`auth`] (bearer token → staff) → [`custos_policy`] (Cedar decision) → [`quota`]
//! (harvest ceiling) → [`vault`] (fetch, unseal, [`mask`]) → [`exchange`] (durable access
//! record) → answer. [`exchange`] owns the invariant "no answer without a durable record".

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod exchange;
pub mod mask;
pub mod quota;
pub mod vault;

use std::sync::Arc;

use custos_access::AccessLog;
use custos_crypto::Keyring;
use custos_policy::PolicyEngine;
use custos_store::{AccessFilter, StaffRecord, StaffStatus, Store, now_millis};
use metrics_exporter_prometheus::PrometheusHandle;

pub use api::router;
pub use config::{Config, Quota};
pub use error::ApiError;

/// Everything a request needs, shared by all requests.
pub struct App {
    /// Configuration read at start.
    pub config: Config,
    /// Customers, staff, cases, access records.
    pub store: Store,
    /// Keys for wrapping data keys and computing blind indexes.
    pub keyring: Keyring,
    /// The Cedar policy set.
    pub policy: PolicyEngine,
    /// The ledger: where access records go before an answer leaves.
    pub access: AccessLog,
    /// Per-person harvest counters.
    pub quotas: quota::Quotas,
    /// Renders `/metrics`; `None` when no recorder is installed (e.g. in-process tools).
    pub metrics: Option<PrometheusHandle>,
}

/// The shared application state handed to handlers.
pub type SharedApp = Arc<App>;

/// The id of the staff entry created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

impl App {
    /// Assembles the gateway: starts the ledger writer and the access index, and
    /// rebuilds quota counters from the last day's records.
    pub async fn start(
        config: Config,
        store: Store,
        keyring: Keyring,
        policy: PolicyEngine,
        ledger: custos_ledger::Ledger,
        metrics: Option<PrometheusHandle>,
    ) -> Result<SharedApp, ApiError> {
        let access = AccessLog::start(ledger, store.clone()).await.map_err(|e| {
            tracing::error!(error = %e, code = e.code(), "cannot start the ledger and access index");
            ApiError::ledger_unavailable()
        })?;
        let app = Arc::new(App {
            config,
            store,
            keyring,
            policy,
            access,
            quotas: quota::Quotas::default(),
            metrics,
        });
        app.replay_quotas().await?;
        Ok(app)
    }

    async fn replay_quotas(&self) -> Result<(), ApiError> {
        let filter = AccessFilter {
            // With a simulated clock "the last day" is the requests' time, not ours:
            // replay everything and let the windows expire at the next request's time.
            since: (!self.config.simulated_clock).then(|| now_millis() - 24 * 3_600_000),
            decision: Some(exchange::ALLOW.to_owned()),
            ..AccessFilter::default()
        };
        let records = self.access.read(&filter).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read access records to rebuild quotas");
            ApiError::ledger_unavailable()
        })?;
        for r in &records {
            if let Some(charge) = exchange::charge_of(r) {
                self.quotas.replay(&r.staff_id, charge, r.at);
            }
        }
        tracing::info!(records = records.len(), "quota counters rebuilt");
        Ok(())
    }

    /// On an empty store, creates the bootstrap admin and returns its first token.
    pub async fn bootstrap_admin(&self) -> Result<Option<String>, ApiError> {
        if self.store.staff(BOOTSTRAP_ADMIN).await?.is_some() {
            return Ok(None);
        }
        self.store
            .insert_staff(&StaffRecord {
                id: BOOTSTRAP_ADMIN.to_owned(),
                name: "Bootstrap administrator".to_owned(),
                role: "admin".to_owned(),
                org: self.config.company_org.clone(),
                status: StaffStatus::Active,
                created_at: now_millis(),
            })
            .await?;
        let (_, token) = auth::issue_token(&self.store, BOOTSTRAP_ADMIN).await?;
        Ok(Some(token))
    }
}
