//! The Custos service: the one door to the vault, free of any transport.
//!
//! Every data request follows the same path (DESIGN.md, "Data flow"):
//! [`auth`] (bearer token → staff) → [`custos_policy`] (Cedar decision) → [`quota`]
//! (harvest ceiling) → [`vault`] (fetch, unseal, [`mask`]) → [`record`] (durable access
//! record) → answer. [`record`] owns the invariant "no answer without a durable record":
//! the service releases answers only as [`Recorded`] values.
//!
//! The HTTP API (`custos-gateway`) and the web console (`custos-console`) are
//! transports over this crate.

pub mod access;
pub mod activity;
pub mod alerts;
pub mod allocation;
pub mod app_assertion;
pub mod approvals;
pub mod auth;
pub mod backup;
mod case_record;
pub mod cases;
pub mod client_certificate;
pub mod config;
pub mod contact;
pub mod customers;
mod detector;
pub mod dsar;
pub mod erasure;
pub mod error;
pub mod export;
pub mod health;
pub mod idp;
pub mod ids;
pub mod import;
pub mod inbound;
pub mod input;
pub mod keys;
pub mod ledger;
pub mod mask;
pub mod oidc;
pub mod provisioning;
pub mod quota;
pub mod record;
pub mod relay;
mod restrictions;
pub mod retention;
pub mod schema;
pub mod staff;
pub mod startup;
pub mod trace;
pub mod transparency;
pub mod vault;

use std::sync::Arc;

use custos_access::AccessLog;
use custos_crypto::Keyring;
use custos_policy::PolicyEngine;
use custos_store::{AccessFilter, StaffRecord, StaffStatus, Store};
use custos_types::clock::now_millis;
use metrics_exporter_prometheus::PrometheusHandle;

pub use config::{Config, Quota};
pub use error::{Code, Details, ErrorKind, ServiceError};
pub use record::{Recorded, RequestMeta};

/// Everything a request needs, shared by all requests.
pub struct App {
    /// Configuration read at start.
    pub(crate) config: Config,
    /// Customers, staff, cases, access records.
    pub(crate) store: Store,
    /// Keys for wrapping data keys and computing blind indexes.
    pub(crate) keyring: Keyring,
    /// The Cedar policy set.
    pub(crate) policy: PolicyEngine,
    /// The ledger: where access records go before an answer leaves.
    pub(crate) access: AccessLog,
    /// Per-person harvest counters, and the detector's restrictions.
    pub(crate) quotas: quota::Quotas,
    /// The privacy-number pool, the SMTP relay and the SMS gateway, as configured.
    pub(crate) relays: relay::Relays,
    /// The customer app's assertions on inbound contacts, when `[contacts.app_assertion]`
    /// is configured.
    pub(crate) app_assertions: Option<app_assertion::AppAssertions>,
    /// The identity provider's access tokens, when `[idp]` configures them.
    pub(crate) idp: Option<idp::IdpTokens>,
    /// Single sign-on to the console, when `[idp.console]` configures it.
    pub(crate) console_sso: Option<Arc<oidc::ConsoleSso>>,
    /// Renders `/metrics`; `None` when no recorder is installed (e.g. in-process tools).
    pub(crate) metrics: Option<PrometheusHandle>,
    /// How far the detector has read the ledger.
    pub(crate) detector: custos_detector::Progress,
    /// One provisioning change at a time in this process: a change and the staff entries
    /// it moves are read and written together.
    pub(crate) provisioning: tokio::sync::Mutex<()>,
    /// Wakes the task that walks a key rotation when one starts (`keys.rs`).
    pub(crate) rotation_wake: Arc<tokio::sync::Notify>,
    /// The SIEM export's task and its stop, when on: closing stops it and waits for it to
    /// end its connections.
    pub(crate) export_task: std::sync::Mutex<
        Option<(
            tokio::task::JoinHandle<()>,
            tokio::sync::watch::Sender<bool>,
        )>,
    >,
}

/// Direct access to the vault's parts, around the operations and their records, for the
/// process that opened the data directory — which could open the store and the keys from
/// disk anyway: the simulator's evaluation, the demo's summary, shutdown. Only
/// [`startup::open`] makes one, and it gives it to its caller alone: a transport (the HTTP
/// gateway, the console) is handed the [`App`], never this, so everything it answers
/// comes through the recorded operations.
#[derive(Clone)]
pub struct DirectAccess {
    _private: (),
}

impl DirectAccess {
    /// The store: customers, staff, cases, alerts, access records.
    pub fn store<'a>(&self, app: &'a App) -> &'a Store {
        &app.store
    }

    /// The keys.
    pub fn keyring<'a>(&self, app: &'a App) -> &'a Keyring {
        &app.keyring
    }

    /// The ledger and its access index.
    pub fn access_log<'a>(&self, app: &'a App) -> &'a AccessLog {
        &app.access
    }

    /// Ends the ledger writer with a last checkpoint over every durable entry, then
    /// closes the store: the last act of a process that stops serving.
    pub async fn close(&self, app: &App) {
        // The export ends its round in flight and its sinks' connections in order.
        let export = app
            .export_task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((task, stop)) = export {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), task).await;
        }
        app.access.close().await;
        app.store.close().await;
    }
}

/// The shared application state handed to handlers.
pub type SharedApp = Arc<App>;

/// The id of the staff entry created on first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

impl App {
    /// The configuration read at start (limits, the console's settings, quotas).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The web console's sessions and used customer links: the one part of the store a
    /// transport reaches directly. They hold no customer data, and every call a session
    /// makes is authenticated again with the credential it keeps.
    pub fn console_sessions(&self) -> custos_store::ConsoleSessions {
        self.store.console_sessions()
    }

    /// Single sign-on to the console with the identity provider, when `[idp.console]`
    /// configures it. What it answers is who the provider vouched for, nothing of the
    /// vault: the console then signs the person in through the API (`GET /v1/me`, a
    /// recorded request, as a token sign-in is), where the staff entry decides.
    pub fn console_sso(&self) -> Option<&Arc<oidc::ConsoleSso>> {
        self.console_sso.as_ref()
    }

    /// Assembles the gateway: starts the ledger writer and the access index, rebuilds
    /// quota counters from the last day's records and re-applies the restrictions of the
    /// last day's alerts.
    pub(crate) async fn start(
        config: Config,
        store: Store,
        keyring: Keyring,
        policy: PolicyEngine,
        ledger: custos_ledger::Ledger,
        metrics: Option<PrometheusHandle>,
    ) -> Result<SharedApp, ServiceError> {
        let config_invalid =
            |e: String| ServiceError::new(ErrorKind::Internal, Code::Part("config_invalid"), e);
        let relays = relay::Relays::new(&config.relay).map_err(config_invalid)?;
        // Reads the app's key set now; an identity provider that cannot be reached is
        // logged and leaves the server up (assertions are refused until it answers).
        let app_assertions = match &config.contacts.app_assertion {
            Some(c) => Some(
                app_assertion::AppAssertions::start(c, store.used_tokens())
                    .await
                    .map_err(config_invalid)?,
            ),
            None => None,
        };
        let idp = match &config.idp {
            Some(c) => Some(idp::IdpTokens::start(c).await.map_err(config_invalid)?),
            None => None,
        };
        let console_sso = match config
            .idp
            .as_ref()
            .and_then(|c| Some((c, c.console.as_ref()?)))
        {
            Some((idp, console)) => Some(
                oidc::ConsoleSso::start(idp, console)
                    .await
                    .map_err(config_invalid)?,
            ),
            None => None,
        };
        let access = AccessLog::start(ledger, store.clone()).await.map_err(|e| {
            tracing::error!(error = %e, code = e.code(), "cannot start the ledger and access index");
            match e {
                // This node's ledger does not belong to the shared one: say which way.
                custos_access::AccessError::Diverged(_) | custos_access::AccessError::KeyMismatch => {
                    ServiceError::new(ErrorKind::Internal, Code::Part(e.code()), e.to_string())
                }
                _ => ServiceError::ledger_unavailable(),
            }
        })?;
        let app = Arc::new(App {
            relays,
            app_assertions,
            idp,
            console_sso,
            quotas: quota::Quotas::new(
                config.restrictions.lower_quota_share,
                store.shared_quotas(),
            ),
            config,
            store,
            keyring,
            policy,
            access,
            metrics,
            detector: custos_detector::Progress::default(),
            provisioning: tokio::sync::Mutex::new(()),
            rotation_wake: Arc::new(tokio::sync::Notify::new()),
            export_task: std::sync::Mutex::new(None),
        });
        app.replay_quotas().await?;
        app.replay_restrictions().await?;
        app.follow_restrictions();
        Ok(app)
    }

    /// Waits until the detector has read every ledger entry written so far, its own acts
    /// included: for a driver that must see the alerts of what it just did. `false` if
    /// the detector has stopped, or `within` passed first.
    pub async fn detector_caught_up(&self, within: std::time::Duration) -> bool {
        let caught_up = async {
            loop {
                let end = self.access.size();
                if self.detector.handled() >= end {
                    return true;
                }
                if !self.detector.wait_for(end).await {
                    return false;
                }
            }
        };
        tokio::time::timeout(within, caught_up)
            .await
            .unwrap_or(false)
    }

    async fn replay_quotas(&self) -> Result<(), ServiceError> {
        if self.quotas.are_shared() {
            // The database holds every node's charges: nothing lives only in memory.
            return Ok(());
        }
        let filter = AccessFilter {
            // With a simulated clock "the last day" is the requests' time, not ours:
            // replay everything and let the windows expire at the next request's time.
            since: (!self.config.simulated_clock)
                .then(|| now_millis() - custos_types::calendar::DAY_MS),
            decision: Some(custos_types::Decision::Allow),
            ..AccessFilter::default()
        };
        let records = self.access.read(&filter).await.map_err(|e| {
            tracing::error!(error = %e, "cannot read access records to rebuild quotas");
            ServiceError::ledger_unavailable()
        })?;
        for r in &records {
            if let Some(charge) = record::charge_of(r) {
                self.quotas.replay(&r.staff_id, charge, r.at);
            }
        }
        tracing::info!(records = records.len(), "quota counters rebuilt");
        Ok(())
    }

    /// On an empty store, creates the bootstrap admin and returns its first token.
    pub(crate) async fn bootstrap_admin(&self) -> Result<Option<String>, ServiceError> {
        if self.store.staff(BOOTSTRAP_ADMIN).await?.is_some() {
            return Ok(None);
        }
        self.store
            .insert_staff(&StaffRecord {
                id: BOOTSTRAP_ADMIN.to_owned(),
                name: "Bootstrap administrator".to_owned(),
                role: custos_types::Role::Admin,
                org: self.config.company_org.clone(),
                status: StaffStatus::Active,
                created_at: now_millis(),
            })
            .await?;
        let (_, token) = auth::issue_token(&self.store, BOOTSTRAP_ADMIN).await?;
        Ok(Some(token))
    }
}
