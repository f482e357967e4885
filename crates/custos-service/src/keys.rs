//! Where the key-encryption keys (KEKs) live (`[keys]`), and the online rotations of the
//! KEK and of the blind-index key.
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
//!
//! # The blind-index key's rotation
//!
//! `POST /v1/keys/index/rotations` moves every customer's blind indexes to the next
//! version of the index key, in the same order as above, with these differences:
//!
//! - what is written is indexed under the new version from the start; until the rotation
//!   finishes, every lookup searches under both versions ([`follow_index_key`] sets the
//!   keyring's pair on each node), and each customer's row names its version;
//! - on PostgreSQL no customer moves before two refreshes have passed since the start, so
//!   that every node searches under both versions before any row leaves the old one;
//! - a batch opens each customer's sealed identifiers (stored normalised), indexes them
//!   under the new version in memory, and replaces the row's indexes only if the row is
//!   still under the version read and not erased (`key_rotation_step`, `reindexed:`);
//! - the end's check counts the customers not under the new version; the rotation is
//!   finished, and lookups search under the new version only, when there are none.

use std::sync::{Arc, Weak};
use std::time::Duration;

use custos_crypto::{IndexKind, IndexVersion, KekId, KekProvider, Keyring, MasterKey, Token};
use custos_store::{KeyRotation, Reindex, Rewrap, RotatedKey, Store};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::App;
use crate::config::KeysConfig;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::record::{Recorded, RequestMeta, SystemEvent};
use crate::vault::Opened;
use custos_types::clock::now_millis;

/// How often every node reads the latest rotation (to make its target current, and to
/// resume a walk no node is running).
pub const REFRESH: Duration = Duration::from_secs(2);
/// How long a node's lease to walk a rotation lasts unrenewed (PostgreSQL).
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

/// A rotation of the key-encryption key as the API shows it.
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
            rewrapped: rotation.map_or(0, |r| r.done),
            total: rotation.map_or(0, |r| r.total),
        }
    }
}

/// A rotation of the blind-index key as the API shows it.
#[derive(Serialize, Deserialize, Debug, Clone, utoipa::ToSchema)]
pub struct IndexRotationStatus {
    /// The rotation's number (from 1); 0 if the index key was never rotated.
    pub rotation: i64,
    /// The index key that indexes what is written, as `index:vN`.
    pub current_index_key: String,
    /// Whether every customer's indexes are under the current index key (until then,
    /// lookups search under the previous key too).
    pub finished: bool,
    /// Customers re-indexed so far by this rotation.
    pub reindexed: i64,
    /// Customers with a data key when the rotation started.
    pub total: i64,
}

impl IndexRotationStatus {
    fn of(rotation: Option<&KeyRotation>, current: IndexVersion) -> IndexRotationStatus {
        IndexRotationStatus {
            rotation: rotation.map_or(0, |r| r.id),
            current_index_key: current.to_string(),
            finished: rotation.is_none_or(|r| r.finished_at.is_some()),
            reindexed: rotation.map_or(0, |r| r.done),
            total: rotation.map_or(0, |r| r.total),
        }
    }
}

/// The key a rotation moves every customer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Kek(KekId),
    Index(IndexVersion),
}

impl Target {
    /// The target of `rotation`, a rotation of `key`.
    fn of(key: RotatedKey, rotation: &KeyRotation) -> Option<Target> {
        match key {
            RotatedKey::Kek => Some(Target::Kek(KekId {
                provider: KekProvider::parse(&rotation.provider)?,
                version: rotation.version,
            })),
            RotatedKey::BlindIndex => Some(Target::Index(IndexVersion(rotation.version))),
        }
    }

    fn key(self) -> RotatedKey {
        match self {
            Target::Kek(_) => RotatedKey::Kek,
            Target::Index(_) => RotatedKey::BlindIndex,
        }
    }

    /// The ledger's target word for the key.
    fn word(self) -> &'static str {
        match self {
            Target::Kek(_) => "kek",
            Target::Index(_) => "blind_index",
        }
    }

    /// The ledger's fact naming the target (`kek:pkcs11:v2`, `index:v2`).
    fn fact(self) -> String {
        match self {
            Target::Kek(kek) => format!("kek:{kek}"),
            Target::Index(version) => version.to_string(),
        }
    }

    /// What a step counts (`rewrapped`, `reindexed`).
    fn done_word(self) -> &'static str {
        match self {
            Target::Kek(_) => "rewrapped",
            Target::Index(_) => "reindexed",
        }
    }

    /// The lease that lets one node walk such a rotation (PostgreSQL).
    fn lease(self) -> &'static str {
        match self {
            Target::Kek(_) => "key_rotation",
            Target::Index(_) => "index_rotation",
        }
    }
}

fn key_failure(e: custos_crypto::CryptoError) -> ServiceError {
    ServiceError::key_provider(&e)
}

fn in_progress(what: &'static str) -> ServiceError {
    ServiceError::new(ErrorKind::Conflict, Code::RotationInProgress, what)
}

/// Makes `keyring` index under the latest index rotation's target, and look up under its
/// previous version too while it is unfinished; returns that rotation. Every holder of a
/// keyring that computes indexes follows this: the server every [`REFRESH`], and
/// `custos trace`, which reads the store without a server, once.
///
/// # Errors
///
/// A [`StoreError`](custos_store::StoreError) reading the rotation.
pub async fn follow_index_key(
    store: &Store,
    keyring: &Keyring,
) -> Result<Option<KeyRotation>, custos_store::StoreError> {
    let latest = store.latest_key_rotation(RotatedKey::BlindIndex).await?;
    if let Some(rotation) = &latest {
        let target = IndexVersion(rotation.version);
        // Versions grow by one (`start_index_rotation`), so the one before is the previous.
        let previous = rotation
            .finished_at
            .is_none()
            .then_some(IndexVersion(rotation.version.saturating_sub(1)));
        if keyring.index_version() != target {
            tracing::info!(index_key = %target, "the current blind-index key changed");
        }
        keyring.use_index_keys(target, previous);
    }
    Ok(latest)
}

impl App {
    /// Makes the latest KEK rotation's target the current KEK (at start, and on every
    /// node every [`REFRESH`]).
    pub(crate) async fn follow_key_rotation(&self) -> Result<Option<KeyRotation>, ServiceError> {
        let latest = self.store.latest_key_rotation(RotatedKey::Kek).await?;
        if let Some(Target::Kek(target)) =
            latest.as_ref().and_then(|r| Target::of(RotatedKey::Kek, r))
            && self.keyring.current_kek() != target
        {
            self.keyring.use_kek(target).map_err(key_failure)?;
            tracing::info!(kek = %target, "the current key-encryption key changed");
        }
        Ok(latest)
    }

    /// Follows both rotations (see [`App::follow_key_rotation`], [`follow_index_key`]);
    /// returns the unfinished ones with their targets.
    pub(crate) async fn follow_rotations(
        &self,
    ) -> Result<Vec<(Target, KeyRotation)>, ServiceError> {
        let kek = self.follow_key_rotation().await?;
        let index = follow_index_key(&self.store, &self.keyring).await?;
        Ok([(RotatedKey::Kek, kek), (RotatedKey::BlindIndex, index)]
            .into_iter()
            .filter_map(|(key, rotation)| {
                let rotation = rotation.filter(|r| r.finished_at.is_none())?;
                Some((Target::of(key, &rotation)?, rotation))
            })
            .collect())
    }

    /// Starts a rotation to the next KEK of the configured provider (`RotateKeys`: admins).
    pub async fn start_key_rotation(&self, meta: &RequestMeta) -> Recorded<RotationStatus> {
        let mut ex = self.begin(meta, custos_types::Action::RotateKeys);
        let result = async {
            self.authorize_vault(meta, &mut ex, custos_policy::Action::RotateKeys)
                .await?;
            let latest = self.follow_key_rotation().await?;
            if latest.as_ref().is_some_and(|r| r.finished_at.is_none()) {
                return Err(in_progress(
                    "a key rotation is still running; wait for it to finish",
                ));
            }
            let provider = self.config.keys.provider.provider();
            // Versions of a provider only grow; the file's first version exists unasked.
            let last = self
                .store
                .last_key_version(RotatedKey::Kek, provider.as_str())
                .await?;
            let floor = u32::from(provider == KekProvider::File);
            let target = KekId {
                provider,
                version: last.max(floor) + 1,
            };
            ex.target = Some(Target::Kek(target).word().to_owned());
            ex.fields.push(Target::Kek(target).fact());
            self.record_intent(&mut ex).await?;
            self.keyring.create_kek(target).map_err(key_failure)?;
            let Some(rotation) = self
                .store
                .start_key_rotation(
                    RotatedKey::Kek,
                    provider.as_str(),
                    target.version,
                    now_millis(),
                )
                .await?
            else {
                return Err(in_progress("another key rotation started meanwhile"));
            };
            self.keyring.use_kek(target).map_err(key_failure)?;
            self.rotation_wake.notify_one();
            Ok(RotationStatus::of(Some(&rotation), target))
        }
        .await;
        self.finish(ex, result).await
    }

    /// The latest KEK rotation's progress (`RotateKeys`: admins).
    pub async fn key_rotation_status(&self, meta: &RequestMeta) -> Recorded<RotationStatus> {
        let mut ex = self.begin(meta, custos_types::Action::ReadKeyRotation);
        let result = async {
            self.authorize_vault(meta, &mut ex, custos_policy::Action::RotateKeys)
                .await?;
            ex.target = Some("kek".to_owned());
            let latest = self.follow_key_rotation().await?;
            Ok(RotationStatus::of(
                latest.as_ref(),
                self.keyring.current_kek(),
            ))
        }
        .await;
        self.finish(ex, result).await
    }

    /// Starts a rotation to the next blind-index key (`RotateKeys`: admins): what is
    /// written is indexed under it at once, lookups search under both keys, and every
    /// stored customer is re-indexed in the background.
    pub async fn start_index_rotation(&self, meta: &RequestMeta) -> Recorded<IndexRotationStatus> {
        let mut ex = self.begin(meta, custos_types::Action::RotateKeys);
        let result = async {
            self.authorize_vault(meta, &mut ex, custos_policy::Action::RotateKeys)
                .await?;
            let latest = follow_index_key(&self.store, &self.keyring).await?;
            if latest.as_ref().is_some_and(|r| r.finished_at.is_none()) {
                return Err(in_progress(
                    "a blind-index key rotation is still running; wait for it to finish",
                ));
            }
            let provider = KekProvider::File.as_str();
            let last = self
                .store
                .last_key_version(RotatedKey::BlindIndex, provider)
                .await?;
            let target = IndexVersion(last.max(IndexVersion::FIRST.0)).next();
            ex.target = Some(Target::Index(target).word().to_owned());
            ex.fields.push(Target::Index(target).fact());
            self.record_intent(&mut ex).await?;
            let Some(rotation) = self
                .store
                .start_key_rotation(RotatedKey::BlindIndex, provider, target.0, now_millis())
                .await?
            else {
                return Err(in_progress(
                    "another blind-index key rotation started meanwhile",
                ));
            };
            follow_index_key(&self.store, &self.keyring).await?;
            self.rotation_wake.notify_one();
            Ok(IndexRotationStatus::of(Some(&rotation), target))
        }
        .await;
        self.finish(ex, result).await
    }

    /// The latest blind-index key rotation's progress (`RotateKeys`: admins).
    pub async fn index_rotation_status(&self, meta: &RequestMeta) -> Recorded<IndexRotationStatus> {
        let mut ex = self.begin(meta, custos_types::Action::ReadKeyRotation);
        let result = async {
            self.authorize_vault(meta, &mut ex, custos_policy::Action::RotateKeys)
                .await?;
            ex.target = Some("blind_index".to_owned());
            let latest = follow_index_key(&self.store, &self.keyring).await?;
            Ok(IndexRotationStatus::of(
                latest.as_ref(),
                self.keyring.index_version(),
            ))
        }
        .await;
        self.finish(ex, result).await
    }

    /// Follows rotations for as long as the server lives: every [`REFRESH`] (or when
    /// woken by a new rotation) makes the latest targets current and walks an unfinished
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

    /// Walks `rotation` to `target` to its end, or until `lease` is lost.
    async fn walk_rotation(
        &self,
        target: Target,
        mut rotation: KeyRotation,
        lease: &RotationLease,
    ) -> Result<(), ServiceError> {
        let key = target.word();
        metrics::gauge!("custos_key_rotation_total", "key" => key).set(rotation.total as f64);
        if let Target::Index(_) = target
            && self.store.leases().is_some()
        {
            // A node looks up under the new key only once it has read the rotation: no
            // customer moves until every node has had time to (two refreshes).
            let settled = rotation.started_at + 2 * REFRESH.as_millis() as i64;
            let wait = settled - now_millis();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
            }
        }
        loop {
            if !lease.hold().await {
                return Ok(());
            }
            let step = match target {
                Target::Kek(kek) => self.rewrap_batch(kek, &rotation).await?,
                Target::Index(version) => self.reindex_batch(version, &rotation).await?,
            };
            let Some((last, moved)) = step else {
                if self.left_behind(target).await? > 0 {
                    self.store
                        .restart_key_rotation_walk(target.key(), rotation.id)
                        .await?;
                    rotation.cursor = None;
                    continue;
                }
                self.record_rotation(
                    target,
                    custos_types::Action::KeyRotationFinished,
                    vec![target.fact(), format!("total:{}", rotation.done)],
                )
                .await?;
                self.store
                    .finish_key_rotation(target.key(), rotation.id, now_millis())
                    .await?;
                if let Target::Index(_) = target {
                    follow_index_key(&self.store, &self.keyring).await?;
                }
                tracing::info!(key = %target.fact(), done = rotation.done, "key rotation finished");
                return Ok(());
            };
            rotation.cursor = Some(last.clone());
            rotation.done += i64::try_from(moved).unwrap_or(0);
            metrics::counter!("custos_key_rotation_rewrapped_total", "key" => key).increment(moved);
            metrics::gauge!("custos_key_rotation_rewrapped", "key" => key)
                .set(rotation.done as f64);
            if moved > 0 {
                self.record_rotation(
                    target,
                    custos_types::Action::KeyRotationStep,
                    vec![
                        target.fact(),
                        format!("{}:{moved}", target.done_word()),
                        format!("total:{}", rotation.done),
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

    /// Re-wraps the next batch of data keys after the rotation's cursor under `target`;
    /// the batch's last customer id and how many keys were replaced, `None` past the end.
    async fn rewrap_batch(
        &self,
        target: KekId,
        rotation: &KeyRotation,
    ) -> Result<Option<(String, u64)>, ServiceError> {
        let batch = self
            .store
            .wrapped_keys_after(rotation.cursor.as_deref(), self.config.keys.rotation_batch)
            .await?;
        let Some((last, _)) = batch.last() else {
            return Ok(None);
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
        Ok(Some((last, replaced)))
    }

    /// Re-indexes the next batch of customers after the rotation's cursor that are not
    /// under `target`: each one's sealed identifiers are opened (they are stored
    /// normalised) and their indexes computed under `target`, in memory only.
    async fn reindex_batch(
        &self,
        target: IndexVersion,
        rotation: &KeyRotation,
    ) -> Result<Option<(String, u64)>, ServiceError> {
        let batch = self
            .store
            .customers_not_indexed_after(
                rotation.cursor.as_deref(),
                target.0,
                self.config.keys.rotation_batch,
            )
            .await?;
        let Some(last) = batch.last().map(|c| c.id.clone()) else {
            return Ok(None);
        };
        let mut reindexes = Vec::with_capacity(batch.len());
        for customer in &batch {
            let opened = Opened::new(&self.keyring, customer)?;
            let index = |kind: IndexKind, field: &str| -> Result<Option<String>, ServiceError> {
                Ok(opened.field(field)?.map(|value| {
                    self.keyring
                        .blind_index_under(target, kind, &value)
                        .to_hex()
                }))
            };
            reindexes.push(Reindex {
                customer_id: customer.id.clone(),
                old_version: customer.index_version,
                version: target.0,
                phone_idx: index(IndexKind::Phone, "phone")?,
                email_idx: index(IndexKind::Email, "email")?,
                account_idx: index(IndexKind::AccountId, "account_id")?,
            });
        }
        let replaced = self
            .store
            .store_reindexed(rotation.id, &reindexes, &last)
            .await?;
        Ok(Some((last, replaced)))
    }

    /// Records a step of the rotation as the server's own entry, on the target key.
    async fn record_rotation(
        &self,
        target: Target,
        action: custos_types::Action,
        fields: Vec<String>,
    ) -> Result<u64, ServiceError> {
        self.record_system(SystemEvent {
            action,
            at: now_millis(),
            customer_id: None,
            case_id: None,
            target: Some(target.word().to_owned()),
            fields,
            reason_code: "key_rotation".to_owned(),
        })
        .await
    }

    /// How many customers are not under `target` (a node that had not yet heard of the
    /// rotation may have written one behind the cursor).
    async fn left_behind(&self, target: Target) -> Result<u64, ServiceError> {
        let target = match target {
            Target::Kek(kek) => kek,
            Target::Index(version) => {
                return Ok(self.store.customers_not_indexed_under(version.0).await?);
            }
        };
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
    name: &'static str,
    holder: String,
}

impl RotationLease {
    async fn hold(&self) -> bool {
        match &self.leases {
            None => true,
            Some(leases) => leases
                .hold(self.name, &self.holder, LEASE_LENGTH)
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
        match gateway.follow_rotations().await {
            Ok(unfinished) => {
                for (target, rotation) in unfinished {
                    let lease = RotationLease {
                        leases: gateway.store.leases(),
                        name: target.lease(),
                        holder: holder.clone(),
                    };
                    if let Err(e) = gateway.walk_rotation(target, rotation, &lease).await {
                        tracing::warn!(
                            code = e.code.as_str(),
                            key = target.word(),
                            "key rotation paused; it resumes by itself"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(code = e.code.as_str(), "cannot read the key rotations"),
        }
        drop(gateway);
        tokio::select! {
            () = tokio::time::sleep(REFRESH) => {}
            () = wake.notified() => {}
        }
    }
}
