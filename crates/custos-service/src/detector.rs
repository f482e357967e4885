//! The detector on this node. A node that owns its store (SQLite) runs it from the
//! start. Nodes that share a PostgreSQL database run it only while they hold the
//! `detector` lease (docs/MULTI_NODE.md, "One detector, never acting twice").
//!
//! The lease runs [`LEASE`] by the database's clock and is renewed every [`RENEW`].
//! This node stops detecting:
//! - as soon as a renewal is refused (another node holds the lease);
//! - or when renewals have failed for [`LEASE`] less [`MARGIN`] by its own clock (it is
//!   cut off from the database, and another node may take the lease soon).
//!
//! Another node takes the lease once it has expired, so a dead holder is replaced within
//! [`LEASE`] + [`RENEW`]. The new holder rebuilds the model from the stored cursor, as a
//! restart does. The old one's last acts are harmless: acting is idempotent (an alert's
//! id derives from the rule, the person and the entry).

use std::sync::Arc;
use std::time::{Duration, Instant};

use custos_detector::Tenure;
use custos_store::Leases;
use tokio::sync::watch;

use crate::App;

/// The lease's name.
const DETECTOR: &str = "detector";

/// How long a lease runs from its last renewal, by the database's clock.
const LEASE: Duration = Duration::from_secs(5);

/// How often the holder renews, and another node tries to take it.
const RENEW: Duration = Duration::from_secs(1);

/// How much before the lease's end, by its own clock, a holder whose renewals fail
/// stops: room for the renewal's round trip and for the clocks' rates.
const MARGIN: Duration = Duration::from_secs(1);

impl App {
    /// Starts the detector: at once on a node that owns its store, else under the
    /// lease (module docs).
    pub(crate) async fn start_detector(self: &Arc<Self>) -> Result<(), String> {
        match self.store.leases() {
            None => self.run_detector(Tenure::default()).await,
            Some(leases) => {
                let holder = format!(
                    "{}-{}",
                    std::process::id(),
                    hex::encode(custos_crypto::random_bytes::<6>())
                );
                tokio::spawn(hold_lease(Arc::downgrade(self), leases, holder));
                Ok(())
            }
        }
    }

    async fn run_detector(self: &Arc<Self>, tenure: Tenure) -> Result<(), String> {
        custos_detector::start(
            self.access.clone(),
            self.store.clone(),
            self.keyring.clone(),
            self.config.detector.clone(),
            if self.config.simulated_clock {
                custos_detector::Clock::Records
            } else {
                custos_detector::Clock::Real
            },
            // The gateway enforces the detector's restrictions (and rebuilt those of
            // recent alerts in `App::start`).
            custos_detector::Actions {
                restrict: Some(self.restriction_hook()),
                alerts: self.config.alerts.clone(),
            },
            self.detector.clone(),
            tenure,
        )
        .await
    }
}

/// Takes and renews the lease for as long as the gateway lives, running the detector
/// while it is held.
async fn hold_lease(app: std::sync::Weak<App>, leases: Leases, holder: String) {
    // While held: what tells the running detector to stop, and the last renewal.
    let mut held: Option<(watch::Sender<bool>, Instant)> = None;
    loop {
        let Some(gateway) = app.upgrade() else {
            return;
        };
        match leases.hold(DETECTOR, &holder, LEASE).await {
            Ok(true) => match &mut held {
                Some((_, renewed)) => *renewed = Instant::now(),
                None => {
                    let (tell, tenure) = watch::channel(true);
                    match gateway.run_detector(Tenure::lease(tenure)).await {
                        Ok(()) => {
                            tracing::info!(holder, "this node holds the detector lease");
                            held = Some((tell, Instant::now()));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start the detector; giving its lease up");
                            let _ = leases.release(DETECTOR, &holder).await;
                        }
                    }
                }
            },
            Ok(false) => {
                if let Some((tell, _)) = held.take() {
                    tell.send_replace(false);
                    tracing::warn!(holder, "another node holds the detector lease now");
                }
            }
            Err(e) => {
                if let Some((tell, renewed)) = &held
                    && renewed.elapsed() >= LEASE - MARGIN
                {
                    tell.send_replace(false);
                    held = None;
                    tracing::error!(error = %e, "the detector lease cannot be renewed; this node stops detecting");
                }
            }
        }
        drop(gateway);
        tokio::time::sleep(RENEW).await;
    }
}
