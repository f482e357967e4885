//! Where the key-encryption keys (KEKs) live (`[keys]`), and their online rotation.
//!
//! # The provider
//!
//! `[keys] provider = "file"` (the default) derives KEKs from the master key file;
//! `"pkcs11"` keeps them on a PKCS#11 token (`[keys.pkcs11]`: the module, the token's
//! label, a file holding the user PIN), where they are created and never leave. Either
//! way the keyring can unwrap under every KEK it can reach, so data keys wrapped before a
//! change of provider still open; the configured provider is the one the *next* rotation
//! moves every data key to.
//!
//! # Rotation
//!
//! An admin's `POST /v1/keys/rotations` creates the next KEK version of the configured
//! provider, makes it current (new customers' keys are wrapped under it from then on) and
//! starts re-wrapping every stored data key under it, in the background, while the server
//! serves: each read unwraps under whichever KEK its customer's key names, so reads work
//! throughout. The order of each step, for a crash at any point:
//!
//! 1. the admin's request is recorded in the ledger (`rotate_keys`) before anything moves;
//! 2. the KEK is created (on the token: idempotent by its label), then the rotation's row
//!    is written: from then on every node makes it current (a node reads the latest
//!    rotation every [`REFRESH`]);
//! 3. each batch: read `rotation_batch` (default [`crate::config::BATCH`]) customers after the cursor, re-wrap those not under the
//!    target, then store the batch, the cursor and the count in one transaction (a key
//!    is replaced only if it is still the one read: an erasure in between stays), then
//!    record the step in the ledger (`key_rotation_step`: the count and the cursor id).
//!    A crash between the two leaves a batch done but not recorded; the next step's
//!    record still carries the total, so nothing done is unrecorded for long;
//! 4. at the end of the walk, every customer's key is read again: a node that had not
//!    yet heard of the rotation may have wrapped one under the old KEK behind the cursor.
//!    If any is found the walk starts again; otherwise the rotation is marked finished and
//!    recorded (`key_rotation_finished`).
//!
//! A server that starts, or a node that takes the rotation's lease (PostgreSQL), resumes
//! an unfinished rotation from its cursor.

use std::sync::{Arc, Weak};
use std::time::Duration;

use custos_crypto::{KekId, KekProvider, Keyring, MasterKey, Token};
use custos_store::{KeyRotation, Rewrap};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::App;
use crate::config::KeysConfig;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::record::{Recorded, RequestMeta, SystemEvent};
use custos_types::clock::now_millis;

/// How often every node reads the latest rotation (to make its target current, and to
/// resume a walk no node is running).
pub const REFRESH: Duration = Duration::from_secs(2);
/// The lease that lets one node at a time walk a rotation (PostgreSQL).
const LEASE_NAME: &str = "key_rotation";
const LEASE_LENGTH: Duration = Duration::from_secs(30);

impl KeysConfig {
    /// The keyring: the master key's, with the token attached when `[keys.pkcs11]` is
    /// set (also with `provider = "file"`, so keys wrapped on the token still open after
    /// a rotation back to the file).
    pub fn open_keyring(&self, master: &MasterKey) -> Result<Keyring, (&'static str, String)> {
        let Some(p) = &self.pkcs11 else {
            return Ok(Keyring::new(master));
        };
        let pin = read_pin(&p.pin_file)?;
        let token =
            Token::open(&p.module, &p.token_label, &pin).map_err(|e| (e.code(), e.to_string()))?;
        Ok(Keyring::with_token(
            master,
            token,
            self.cache_keys,
            Duration::from_secs(self.cache_seconds),
        ))
    }
}

/// Reads the PIN file, refusing one that group or others may read.
fn read_pin(path: &std::path::Path) -> Result<Zeroizing<String>, (&'static str, String)> {
    use std::os::unix::fs::PermissionsExt as _;
    let fail = |why: String| ("key_provider", why);
    let meta = std::fs::metadata(path)
        .map_err(|e| fail(format!("cannot read the PIN file {}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(fail(format!(
            "the PIN file {} allows group/other access; run chmod 600",
            path.display()
        )));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| fail(format!("cannot read the PIN file {}: {e}", path.display())))?,
    );
    Ok(Zeroizing::new(text.trim().to_owned()))
}

/// A rotation as the API shows it.
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct RotationStatus {
    /// The rotation's number (from 1); 0 if the KEK was never rotated.
    pub rotation: i64,
    /// The KEK that wraps new data keys, as `provider:vN` (e.g. `pkcs11:v2`).
    pub current_kek: String,
    /// Whether every data key is under the current KEK.
    pub finished: bool,
    /// Data keys re-wrapped so far by this rotation.
    pub rewrapped: i64,
    /// Customers with a data key when the rotation started.
    pub total: i64,
}

impl RotationStatus {
    fn of(rotation: Option<&KeyRotation>, current: KekId) -> RotationStatus {
        RotationStatus {
            rotation: rotation.map_or(0, |r| r.id),
            current_kek: current.to_string(),
            finished: rotation.is_none_or(|r| r.finished_at.is_some()),
            rewrapped: rotation.map_or(0, |r| r.rewrapped),
            total: rotation.map_or(0, |r| r.total),
        }
    }
}

/// The KEK a rotation moves to.
fn target_of(rotation: &KeyRotation) -> Option<KekId> {
    Some(KekId {
        provider: KekProvider::parse(&rotation.provider)?,
        version: rotation.version,
    })
}

pub(crate) fn key_failure(e: custos_crypto::CryptoError) -> ServiceError {
    tracing::error!(code = e.code(), error = %e, "key provider failed");
    ServiceError::new(
        ErrorKind::Unavailable,
        Code::KeyProviderUnavailable,
        "the key provider is unavailable; try again later",
    )
}

impl App {
    /// Makes the latest rotation's target the current KEK (at start, and on every node
    /// every [`REFRESH`]).
    pub(crate) async fn follow_key_rotation(&self) -> Result<Option<KeyRotation>, ServiceError> {
        let latest = self.store.latest_key_rotation().await?;
        if let Some(target) = latest.as_ref().and_then(target_of)
            && self.keyring.current_kek() != target
        {
            self.keyring.use_kek(target).map_err(key_failure)?;
            tracing::info!(kek = %target, "the current key-encryption key changed");
        }
        Ok(latest)
    }

    /// Starts a rotation to the next KEK of the configured provider (`RotateKeys`: admins).
    pub async fn start_key_rotation(&self, meta: &RequestMeta) -> Recorded<RotationStatus> {
        let mut ex = self.begin(meta, custos_types::Action::RotateKeys);
        let result = async {
            self.authorize_vault(meta, &mut ex, custos_policy::Action::RotateKeys)
                .await?;
            let latest = self.follow_key_rotation().await?;
            if latest.as_ref().is_some_and(|r| r.finished_at.is_none()) {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::RotationInProgress,
                    "a key rotation is still running; wait for it to finish",
                ));
            }
            let provider = self.config.keys.provider.provider();
            // Versions of a provider only grow; the file's first version exists unasked.
            let last = self.store.last_kek_version(provider.as_str()).await?;
            let floor = u32::from(provider == KekProvider::File);
            let target = KekId {
                provider,
                version: last.max(floor) + 1,
            };
            ex.target = Some("kek".to_owned());
            ex.fields.push(format!("kek:{target}"));
            self.record_intent(&mut ex).await?;
            self.keyring.create_kek(target).map_err(key_failure)?;
            let Some(rotation) = self
                .store
                .start_key_rotation(provider.as_str(), target.version, now_millis())
                .await?
            else {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::RotationInProgress,
                    "another key rotation started meanwhile",
                ));
            };
            self.keyring.use_kek(target).map_err(key_failure)?;
            self.rotation_wake.notify_one();
            Ok(RotationStatus::of(Some(&rotation), target))
        }
        .await;
        self.finish(ex, result).await
    }

    /// The latest rotation's progress (`RotateKeys`: admins).
    pub async fn key_rotation_status(&self, meta: &RequestMeta) -> Recorded<RotationStatus> {
        let mut ex = self.begin(meta, custos_types::Action::ReadKeyRotation);
        let result = async {
            self.authorize_vault(meta, &mut ex, custos_policy::Action::RotateKeys)
                .await?;
            let latest = self.follow_key_rotation().await?;
            Ok(RotationStatus::of(
                latest.as_ref(),
                self.keyring.current_kek(),
            ))
        }
        .await;
        self.finish(ex, result).await
    }

    /// Follows rotations for as long as the server lives: every [`REFRESH`] (or when
    /// woken by a new rotation) makes the latest target current and walks an unfinished
    /// rotation, on PostgreSQL only while this node holds the rotation's lease.
    pub(crate) fn keep_keys(self: &Arc<Self>) {
        let app = Arc::downgrade(self);
        let holder = format!(
            "{}-{}",
            std::process::id(),
            hex::encode(custos_crypto::random_bytes::<6>())
        );
        tokio::spawn(keep_keys(app, holder));
    }

    /// Walks rotation `rotation` to its end, or until `lease` is lost.
    async fn walk_rotation(
        &self,
        mut rotation: KeyRotation,
        lease: &RotationLease,
    ) -> Result<(), ServiceError> {
        let Some(target) = target_of(&rotation) else {
            return Err(ServiceError::internal());
        };
        metrics::gauge!("custos_key_rotation_total").set(rotation.total as f64);
        loop {
            if !lease.hold().await {
                return Ok(());
            }
            let batch = self
                .store
                .wrapped_keys_after(rotation.cursor.as_deref(), self.config.keys.rotation_batch)
                .await?;
            let Some((last, _)) = batch.last() else {
                if self.keys_not_under(target).await? > 0 {
                    self.store.restart_key_rotation_walk(rotation.id).await?;
                    rotation.cursor = None;
                    continue;
                }
                self.record_rotation(
                    custos_types::Action::KeyRotationFinished,
                    vec![
                        format!("kek:{target}"),
                        format!("total:{}", rotation.rewrapped),
                    ],
                )
                .await?;
                self.store
                    .finish_key_rotation(rotation.id, now_millis())
                    .await?;
                tracing::info!(kek = %target, rewrapped = rotation.rewrapped, "key rotation finished");
                return Ok(());
            };
            let last = last.clone();
            let mut rewraps = Vec::new();
            for (customer_id, old) in batch {
                if Keyring::kek_of(&old).ok() == Some(target) {
                    continue;
                }
                let new = self
                    .keyring
                    .rewrap_data_key(&customer_id, &old, target)
                    .map_err(key_failure)?;
                rewraps.push(Rewrap {
                    customer_id,
                    old,
                    new,
                });
            }
            let replaced = self
                .store
                .store_rewrapped_keys(rotation.id, &rewraps, &last)
                .await?;
            rotation.cursor = Some(last.clone());
            rotation.rewrapped += i64::try_from(replaced).unwrap_or(0);
            metrics::counter!("custos_key_rotation_rewrapped_total").increment(replaced);
            metrics::gauge!("custos_key_rotation_rewrapped").set(rotation.rewrapped as f64);
            if replaced > 0 {
                self.record_rotation(
                    custos_types::Action::KeyRotationStep,
                    vec![
                        format!("kek:{target}"),
                        format!("rewrapped:{replaced}"),
                        format!("total:{}", rotation.rewrapped),
                        format!("through:{last}"),
                    ],
                )
                .await?;
            }
            // Serving comes first: let waiting requests run between batches.
            match self.config.keys.rotation_pause_ms {
                0 => tokio::task::yield_now().await,
                ms => tokio::time::sleep(Duration::from_millis(ms)).await,
            }
        }
    }

    /// Records a step of the rotation as the server's own entry, on the target `kek`.
    async fn record_rotation(
        &self,
        action: custos_types::Action,
        fields: Vec<String>,
    ) -> Result<u64, ServiceError> {
        self.record_system(SystemEvent {
            action,
            at: now_millis(),
            customer_id: None,
            case_id: None,
            target: Some("kek".to_owned()),
            fields,
            reason_code: "key_rotation".to_owned(),
        })
        .await
    }

    /// How many stored data keys are not under `target`.
    async fn keys_not_under(&self, target: KekId) -> Result<u64, ServiceError> {
        let mut cursor: Option<String> = None;
        let mut left = 0u64;
        loop {
            let batch = self
                .store
                .wrapped_keys_after(cursor.as_deref(), 5_000)
                .await?;
            let Some((last, _)) = batch.last() else {
                return Ok(left);
            };
            cursor = Some(last.clone());
            left += batch
                .iter()
                .filter(|(_, w)| Keyring::kek_of(w).ok() != Some(target))
                .count() as u64;
        }
    }
}

/// Who may walk a rotation: on SQLite the one process; on PostgreSQL the node that holds
/// the rotation's lease, renewed before each batch.
struct RotationLease {
    leases: Option<custos_store::Leases>,
    holder: String,
}

impl RotationLease {
    async fn hold(&self) -> bool {
        match &self.leases {
            None => true,
            Some(leases) => leases
                .hold(LEASE_NAME, &self.holder, LEASE_LENGTH)
                .await
                .unwrap_or(false),
        }
    }
}

async fn keep_keys(app: Weak<App>, holder: String) {
    loop {
        let Some(gateway) = app.upgrade() else {
            return;
        };
        let wake = gateway.rotation_wake.clone();
        match gateway.follow_key_rotation().await {
            Ok(Some(rotation)) if rotation.finished_at.is_none() => {
                let lease = RotationLease {
                    leases: gateway.store.leases(),
                    holder: holder.clone(),
                };
                if let Err(e) = gateway.walk_rotation(rotation, &lease).await {
                    tracing::warn!(
                        code = e.code.as_str(),
                        "key rotation paused; it resumes by itself"
                    );
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(code = e.code.as_str(), "cannot read the key rotation"),
        }
        drop(gateway);
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            () = wake.notified() => {}
        }
    }
}
