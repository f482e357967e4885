//! Envelope encryption: the keyring derived from the master key, per-customer
//! data keys, and sealing/opening of individual fields.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use aes_gcm_siv::aead::{Aead, AeadInOut, KeyInit as _, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::cache::DataKeyCache;
use crate::error::CryptoError;
use crate::index::{BlindIndex, IndexKey, IndexKeys, IndexKind, IndexVersion};
use crate::kek::{self, KekId, KekProvider};
use crate::mac::hmac_sha256;
use crate::master::MasterKey;
use crate::pkcs11::Token;

/// Version byte at the start of every sealed value, so the format (or the
/// algorithm) can change without guessing what old blobs are.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Domain-separation prefix of the associated data.
const AAD_LABEL: &[u8] = b"custos/field/v1";
/// Field name under which data keys are wrapped by the KEK.
const DATA_KEY_FIELD: &str = "data-key";

const CANARY_LABEL: &[u8] = b"custos/canary/v1";
const CANARY_HOLDER_LABEL: &[u8] = b"holder";
const CANARY_ID_FIELD: &str = "canary-id";
const LINK_LABEL: &[u8] = b"custos/customer-link/v1";
const PSEUDONYM_LABEL: &[u8] = b"custos/pseudonym/v1";

/// Associated data binding a sealed value to its customer and field.
/// Each component is length-prefixed so that ("ab", "c") and ("a", "bc")
/// produce different AAD.
fn aad(customer_id: &str, field: &str) -> Result<Vec<u8>, CryptoError> {
    let cid_len = u32::try_from(customer_id.len()).map_err(|_| CryptoError::Malformed)?;
    let field_len = u32::try_from(field.len()).map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(AAD_LABEL.len() + 8 + customer_id.len() + field.len());
    out.extend_from_slice(AAD_LABEL);
    out.extend_from_slice(&cid_len.to_be_bytes());
    out.extend_from_slice(customer_id.as_bytes());
    out.extend_from_slice(&field_len.to_be_bytes());
    out.extend_from_slice(field.as_bytes());
    Ok(out)
}

fn seal_with(
    key: &[u8; 32],
    customer_id: &str,
    field: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let aad = aad(customer_id, field)?;
    let cipher = Aes256GcmSiv::new(key.into());
    let nonce_bytes: [u8; NONCE_LEN] = crate::random_bytes();
    let nonce = Nonce::from(nonce_bytes);
    // Only fails for inputs beyond AES-GCM-SIV's 64 GiB limit.
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| CryptoError::Malformed)?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

fn open_with(
    key: &[u8; 32],
    customer_id: &str,
    field: &str,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let Some((&version, rest)) = sealed.split_first() else {
        return Err(CryptoError::Malformed);
    };
    if version != VERSION || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_from(nonce).map_err(|_| CryptoError::Malformed)?;
    let aad = aad(customer_id, field)?;
    let cipher = Aes256GcmSiv::new(key.into());
    // Decrypt in place into a buffer that is wiped on drop, so the plaintext
    // is never left in freed memory, whether decryption succeeds or not.
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    cipher
        .decrypt_in_place(&nonce, &aad, &mut *buf)
        .map_err(|_| CryptoError::Unseal)?;
    Ok(buf)
}

/// The keys derived from the [`MasterKey`], kept once and wiped when the last
/// [`Keyring`] sharing them drops.
#[derive(Zeroize, ZeroizeOnDrop)]
struct Derived {
    /// Kept to derive the file KEK of any version (`kek.rs`).
    master: [u8; 32],
    canary_key: [u8; 32],
    link_key: [u8; 32],
    pseudonym_key: [u8; 32],
}

/// Custos's keys: the key-encryption keys (KEKs) that wrap per-customer data keys, and
/// the keys derived from the [`MasterKey`]: the blind-index key, the key that marks
/// canary customers, the key that signs customer access links and the key that turns
/// staff ids into pseudonyms for customers.
///
/// KEKs are named by [`KekId`]; the current one wraps new data keys, and every one this
/// keyring can reach unwraps (file KEKs of any version; a token's KEKs when a [`Token`]
/// is attached). With a token, unwrapped data keys are cached (bounded in size and
/// time, wiped on eviction).
///
/// Cloning shares the keys (one copy in memory), the token, the cache and the current
/// KEK: [`Keyring::use_kek`] on one clone is seen by all. `Debug` never shows key bytes.
#[derive(Clone)]
pub struct Keyring {
    derived: Arc<Derived>,
    token: Option<Arc<Token>>,
    cache: Option<Arc<DataKeyCache>>,
    current: Arc<AtomicU64>,
    index_keys: Arc<RwLock<IndexKeys>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Keyring(..)")
    }
}

impl Keyring {
    /// Derives the keyring with the file KEKs only, the current KEK being
    /// [`KekId::FIRST`]: KEK version n = HMAC-SHA256(master, "custos/kek/v{n}"), index
    /// key version n = HMAC-SHA256(master, "custos/index/v{n}") (version 1 current), canary key = HMAC-SHA256(master,
    /// "custos/canary/v1"), link key = HMAC-SHA256(master, "custos/customer-link/v1"),
    /// pseudonym key = HMAC-SHA256(master, "custos/pseudonym/v1").
    #[must_use]
    pub fn new(master: &MasterKey) -> Keyring {
        let m = master.as_bytes();
        Keyring {
            derived: Arc::new(Derived {
                master: *m,
                canary_key: hmac_sha256(m, &[CANARY_LABEL]),
                link_key: hmac_sha256(m, &[LINK_LABEL]),
                pseudonym_key: hmac_sha256(m, &[PSEUDONYM_LABEL]),
            }),
            token: None,
            cache: None,
            current: Arc::new(AtomicU64::new(KekId::FIRST.pack())),
            index_keys: Arc::new(RwLock::new(IndexKeys {
                current: IndexKey::derive(m, IndexVersion::FIRST),
                previous: None,
            })),
        }
    }

    /// As [`Keyring::new`], with `token`'s KEKs reachable too, and a cache of at most
    /// `cache_keys` unwrapped data keys, none kept longer than `cache_ttl`.
    #[must_use]
    pub fn with_token(
        master: &MasterKey,
        token: Token,
        cache_keys: usize,
        cache_ttl: Duration,
    ) -> Keyring {
        Keyring {
            token: Some(Arc::new(token)),
            cache: Some(Arc::new(DataKeyCache::new(cache_keys, cache_ttl))),
            ..Keyring::new(master)
        }
    }

    pub(crate) fn link_key(&self) -> &[u8; 32] {
        &self.derived.link_key
    }

    /// The attached token, if any.
    #[must_use]
    pub fn token(&self) -> Option<&Token> {
        self.token.as_deref()
    }

    /// The KEK that wraps new data keys.
    #[must_use]
    pub fn current_kek(&self) -> KekId {
        KekId::unpack(self.current.load(Ordering::Acquire))
    }

    /// Makes `kek` the KEK that wraps new data keys, in every clone of this keyring.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyProvider`] if `kek` is a token's and no token is attached or the
    /// token lacks it.
    pub fn use_kek(&self, kek: KekId) -> Result<(), CryptoError> {
        if kek.provider == KekProvider::Pkcs11 && !self.reach_token()?.has_kek(kek)? {
            return Err(CryptoError::key_provider(format!(
                "the token has no key {}",
                kek.token_label()
            )));
        }
        self.current.store(kek.pack(), Ordering::Release);
        Ok(())
    }

    /// Makes KEK `kek` exist: a file KEK always does (it is derived); a token's is
    /// created on the token, sensitive and not extractable, if missing.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyProvider`] if the token is missing or refuses.
    pub fn create_kek(&self, kek: KekId) -> Result<(), CryptoError> {
        match kek.provider {
            KekProvider::File => Ok(()),
            KekProvider::Pkcs11 => self.reach_token()?.create_kek(kek),
        }
    }

    fn reach_token(&self) -> Result<&Token, CryptoError> {
        self.token
            .as_deref()
            .ok_or_else(|| CryptoError::key_provider("no PKCS#11 token is configured"))
    }

    /// The file KEK of `kek`'s version.
    fn file_kek(&self, kek: KekId) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac_sha256(
            &self.derived.master,
            &[kek.file_label().as_bytes()],
        ))
    }

    /// Wraps `key` for `customer_id` under `kek` (format 2, see `kek.rs`).
    fn wrap(&self, customer_id: &str, key: &DataKey, kek: KekId) -> Result<Vec<u8>, CryptoError> {
        let sealed = match kek.provider {
            KekProvider::File => {
                let mut sealed =
                    seal_with(&self.file_kek(kek), customer_id, DATA_KEY_FIELD, &key.key)?;
                // `seal_with` leads with its own version byte; the format-2 header replaces it.
                sealed.remove(0);
                sealed
            }
            KekProvider::Pkcs11 => {
                self.reach_token()?
                    .encrypt(kek, &aad(customer_id, DATA_KEY_FIELD)?, &key.key)?
            }
        };
        let mut out = Vec::with_capacity(kek::FORMAT_2_HEADER + sealed.len());
        out.extend_from_slice(&kek.header());
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Generates a fresh random data key for `customer_id` and returns it
    /// together with its wrapped form under the current KEK, which is what gets
    /// stored. The wrapped key only unwraps for the same customer id.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyProvider`] if the current KEK's token fails;
    /// [`CryptoError::Malformed`] only if `customer_id` is absurdly long
    /// (over 4 GiB).
    pub fn new_data_key(&self, customer_id: &str) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let key = DataKey {
            key: crate::random_bytes(),
        };
        let wrapped = self.wrap(customer_id, &key, self.current_kek())?;
        Ok((key, wrapped))
    }

    /// Unwraps a data key previously produced by [`Keyring::new_data_key`] (or
    /// [`Keyring::rewrap_data_key`]) for the same `customer_id`, under whichever KEK
    /// wrapped it.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Unseal`] if the wrapped key was made for another
    /// customer, under another master key or token key, or was tampered with;
    /// [`CryptoError::Malformed`] if it is not a wrapped key at all;
    /// [`CryptoError::KeyProvider`] if its KEK is on a token this keyring cannot reach.
    pub fn unwrap_data_key(
        &self,
        customer_id: &str,
        wrapped: &[u8],
    ) -> Result<DataKey, CryptoError> {
        let parts = kek::split(wrapped)?;
        let plain = match parts.kek.provider {
            KekProvider::File if parts.format == 1 => open_with(
                &self.file_kek(parts.kek),
                customer_id,
                DATA_KEY_FIELD,
                parts.sealed,
            )?,
            KekProvider::File => {
                let mut versioned = Vec::with_capacity(1 + parts.sealed.len());
                versioned.push(VERSION);
                versioned.extend_from_slice(parts.sealed);
                open_with(
                    &self.file_kek(parts.kek),
                    customer_id,
                    DATA_KEY_FIELD,
                    &versioned,
                )?
            }
            KekProvider::Pkcs11 => {
                if let Some(key) = self
                    .cache
                    .as_ref()
                    .and_then(|c| c.get(customer_id, wrapped))
                {
                    return Ok(DataKey { key: *key });
                }
                let plain = self.reach_token()?.decrypt(
                    parts.kek,
                    &aad(customer_id, DATA_KEY_FIELD)?,
                    parts.sealed,
                )?;
                let key = DataKey::try_from_slice(&plain)?;
                if let Some(cache) = &self.cache {
                    cache.insert(customer_id, wrapped, &Zeroizing::new(key.key));
                }
                return Ok(key);
            }
        };
        DataKey::try_from_slice(&plain)
    }

    /// Re-wraps `customer_id`'s data key under KEK `to`, for a rotation. The data key,
    /// and so every sealed field, stays as it was.
    ///
    /// # Errors
    ///
    /// As [`Keyring::unwrap_data_key`], and [`CryptoError::KeyProvider`] if `to` is a
    /// token's KEK this keyring cannot reach.
    pub fn rewrap_data_key(
        &self,
        customer_id: &str,
        wrapped: &[u8],
        to: KekId,
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self.unwrap_data_key(customer_id, wrapped)?;
        self.wrap(customer_id, &key, to)
    }

    /// Which KEK wrapped `wrapped`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] if it is not a wrapped key.
    pub fn kek_of(wrapped: &[u8]) -> Result<KekId, CryptoError> {
        kek::split(wrapped).map(|parts| parts.kek)
    }

    /// Drops any cached copy of `customer_id`'s data key (at erasure).
    pub fn forget_data_key(&self, customer_id: &str) {
        if let Some(cache) = &self.cache {
            cache.forget(customer_id);
        }
    }

    /// How many unwrapped data keys the cache holds now (0 without a token).
    #[must_use]
    pub fn cached_data_keys(&self) -> usize {
        self.cache.as_ref().map_or(0, |c| c.len())
    }

    /// How a customer sees a staff member: `staff-` and 8 hex digits of
    /// HMAC-SHA256(pseudonym key, staff id). Stable (two accesses by one person
    /// show as one pseudonym) but not reversible without the master key, so a
    /// customer can tell "the same person again" without learning who.
    #[must_use]
    pub fn staff_pseudonym(&self, staff_id: &str) -> String {
        let tag = hmac_sha256(&self.derived.pseudonym_key, &[staff_id.as_bytes()]);
        format!("staff-{}", hex::encode(&tag[..4]))
    }

    /// The mark that says "this customer is a canary" without naming it:
    /// HMAC-SHA256(canary key, customer id), hex. Only a holder of the master
    /// key can tell which stored customers the marks belong to.
    #[must_use]
    pub fn canary_mark(&self, customer_id: &str) -> String {
        hex::encode(hmac_sha256(
            &self.derived.canary_key,
            &[customer_id.as_bytes()],
        ))
    }

    /// The mark that says "this canary was allocated to this person" without naming
    /// either: HMAC-SHA256(canary key, "holder" || len(customer id) || customer id ||
    /// staff id), hex. The length prefix keeps `("ab", "c")` and `("a", "bc")` apart.
    #[must_use]
    pub fn canary_holder_mark(&self, customer_id: &str, staff_id: &str) -> String {
        let len = u64::try_from(customer_id.len()).unwrap_or(u64::MAX);
        hex::encode(hmac_sha256(
            &self.derived.canary_key,
            &[
                CANARY_HOLDER_LABEL,
                &len.to_be_bytes(),
                customer_id.as_bytes(),
                staff_id.as_bytes(),
            ],
        ))
    }

    /// The AEAD key for canary ids, HMAC-SHA256(canary key, "canary-id"): one key per
    /// primitive.
    fn canary_id_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hmac_sha256(
            &self.derived.canary_key,
            &[CANARY_ID_FIELD.as_bytes()],
        ))
    }

    /// Seals a canary's customer id so the server can later allocate the canary without
    /// the database saying which customer it is: AES-256-GCM-SIV under a key derived from the
    /// canary key, bound to the canary's mark (`canary_mark`).
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] only for ids beyond AES-GCM-SIV's limits.
    pub fn seal_canary_id(&self, customer_id: &str) -> Result<Vec<u8>, CryptoError> {
        let mark = self.canary_mark(customer_id);
        seal_with(
            &self.canary_id_key(),
            &mark,
            CANARY_ID_FIELD,
            customer_id.as_bytes(),
        )
    }

    /// Opens what [`Keyring::seal_canary_id`] sealed under `mark`, and checks that the id
    /// is the one the mark names.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Unseal`] if the value was sealed under another mark or key, was
    /// modified, or names a customer whose mark is not `mark`;
    /// [`CryptoError::Malformed`] if it has the wrong version, length or encoding.
    pub fn open_canary_id(&self, mark: &str, sealed: &[u8]) -> Result<String, CryptoError> {
        let bytes = open_with(&self.canary_id_key(), mark, CANARY_ID_FIELD, sealed)?;
        let id = String::from_utf8(bytes.to_vec()).map_err(|_| CryptoError::Malformed)?;
        if !crate::constant_time_eq(self.canary_mark(&id).as_bytes(), mark.as_bytes()) {
            return Err(CryptoError::Unseal);
        }
        Ok(id)
    }

    /// Computes the blind index of an already-normalised value under the current index
    /// key (what is stored): HMAC-SHA256(index key, kind label || 0x00 || normalized).
    ///
    /// The kind label keeps, say, an account id and an email with the same
    /// text from colliding; normalise first (see [`crate::normalize_phone`]
    /// etc.) so equivalent spellings give the same index.
    #[must_use]
    pub fn blind_index(&self, kind: IndexKind, normalized: &str) -> BlindIndex {
        self.index_keys().current.index(kind, normalized)
    }

    /// The indexes a lookup of `normalized` searches: under the current index key, and
    /// during a rotation under the previous one too (see `index.rs`).
    #[must_use]
    pub fn lookup_indexes(&self, kind: IndexKind, normalized: &str) -> Vec<BlindIndex> {
        let keys = self.index_keys();
        std::iter::once(&keys.current)
            .chain(&keys.previous)
            .map(|key| key.index(kind, normalized))
            .collect()
    }

    /// The blind index of `normalized` under index key `version` (to re-index a stored
    /// value, or to compare with an index kept from before a rotation).
    #[must_use]
    pub fn blind_index_under(
        &self,
        version: IndexVersion,
        kind: IndexKind,
        normalized: &str,
    ) -> BlindIndex {
        let keys = self.index_keys();
        match [Some(&keys.current), keys.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| key.version == version)
        {
            Some(key) => key.index(kind, normalized),
            None => IndexKey::derive(&self.derived.master, version).index(kind, normalized),
        }
    }

    /// The index key version that indexes what is written.
    #[must_use]
    pub fn index_version(&self) -> IndexVersion {
        self.index_keys().current.version
    }

    /// Makes `current` the index key of what is written, in every clone of this
    /// keyring; with `previous` (during a rotation) looked up too.
    pub fn use_index_keys(&self, current: IndexVersion, previous: Option<IndexVersion>) {
        let mut keys = self
            .index_keys
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if keys.current.version == current && keys.previous.as_ref().map(|k| k.version) == previous
        {
            return;
        }
        *keys = IndexKeys {
            current: IndexKey::derive(&self.derived.master, current),
            previous: previous.map(|v| IndexKey::derive(&self.derived.master, v)),
        };
    }

    fn index_keys(&self) -> std::sync::RwLockReadGuard<'_, IndexKeys> {
        // The keys are replaced whole under the write lock, so a panic elsewhere cannot
        // leave them half-written.
        self.index_keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A customer's 32-byte data key, used to seal and open that customer's
/// fields. Wiped on drop; `Debug` never shows the key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey {
    key: [u8; 32],
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A data key from 32 unwrapped bytes.
    fn try_from_slice(bytes: &[u8]) -> Result<DataKey, CryptoError> {
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(DataKey { key })
    }

    /// Encrypts `plaintext` as the value of `field` for `customer_id`.
    ///
    /// Output: version byte (1) || 12-byte random nonce || ciphertext+tag.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Malformed`] only for inputs beyond AES-GCM-SIV's
    /// limits (64 GiB plaintext, 4 GiB customer id or field name).
    pub fn seal(
        &self,
        customer_id: &str,
        field: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.key, customer_id, field, plaintext)
    }

    /// Decrypts a value sealed by [`DataKey::seal`] with the same customer
    /// id and field name. The plaintext is wiped when dropped.
    ///
    /// # Errors
    ///
    /// [`CryptoError::Unseal`] if the value was sealed for another customer
    /// or field, with another key, or was modified;
    /// [`CryptoError::Malformed`] if it has the wrong version or length.
    pub fn open(
        &self,
        customer_id: &str,
        field: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        open_with(&self.key, customer_id, field, sealed)
    }

    /// Like [`DataKey::open`], for text fields.
    ///
    /// # Errors
    ///
    /// As [`DataKey::open`], plus [`CryptoError::Malformed`] if the plaintext
    /// is not UTF-8.
    pub fn open_string(
        &self,
        customer_id: &str,
        field: &str,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, CryptoError> {
        let mut bytes = self.open(customer_id, field, sealed)?;
        // Move the bytes out (rather than copy) so only one buffer holds the
        // plaintext; the emptied Zeroizing<Vec> has nothing left to wipe.
        let owned = std::mem::take(&mut *bytes);
        match String::from_utf8(owned) {
            Ok(s) => Ok(Zeroizing::new(s)),
            Err(err) => {
                // Wipe the rejected bytes too: they are still plaintext.
                drop(Zeroizing::new(err.into_bytes()));
                Err(CryptoError::Malformed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring(seed: u8) -> Keyring {
        Keyring::new(&MasterKey::from_bytes([seed; 32]))
    }

    #[test]
    fn seal_open_round_trip() {
        let kr = keyring(1);
        let (dk, _) = kr.new_data_key("cust-1").unwrap();
        for plaintext in [&b""[..], b"13800138000", &[0u8; 1000][..]] {
            let sealed = dk.seal("cust-1", "phone", plaintext).unwrap();
            assert_eq!(sealed[0], VERSION);
            assert_eq!(sealed.len(), 1 + NONCE_LEN + plaintext.len() + TAG_LEN);
            assert_eq!(&*dk.open("cust-1", "phone", &sealed).unwrap(), plaintext);
        }
        let sealed = dk.seal("cust-1", "name", "张三".as_bytes()).unwrap();
        assert_eq!(&*dk.open_string("cust-1", "name", &sealed).unwrap(), "张三");
    }

    #[test]
    fn canary_ids_open_only_under_their_mark() {
        let kr = keyring(1);
        let sealed = kr.seal_canary_id("cus_canary").unwrap();
        let mark = kr.canary_mark("cus_canary");
        assert_eq!(kr.open_canary_id(&mark, &sealed).unwrap(), "cus_canary");
        // Moved to another canary's row, opened with another master key, or modified.
        let other = kr.canary_mark("cus_other");
        assert!(kr.open_canary_id(&other, &sealed).is_err());
        assert!(keyring(2).open_canary_id(&mark, &sealed).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(kr.open_canary_id(&mark, &flipped).is_err());
        // Holder marks tell people and canaries apart, and do not run the two together.
        assert_ne!(
            kr.canary_holder_mark("ab", "c"),
            kr.canary_holder_mark("a", "bc")
        );
        assert_ne!(
            kr.canary_holder_mark("c1", "alice"),
            kr.canary_holder_mark("c1", "bob")
        );
        assert_ne!(kr.canary_holder_mark("c1", "alice"), kr.canary_mark("c1"));
    }

    #[test]
    fn nonces_are_random() {
        let (dk, _) = keyring(1).new_data_key("c").unwrap();
        let a = dk.seal("c", "f", b"same").unwrap();
        let b = dk.seal("c", "f", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn ciphertext_swapped_between_customers_fails() {
        let kr = keyring(1);
        let (dk, _) = kr.new_data_key("alice").unwrap();
        let sealed = dk.seal("alice", "phone", b"13800138000").unwrap();
        // Same key, other customer id (e.g. a row copied onto bob's record).
        assert!(matches!(
            dk.open("bob", "phone", &sealed),
            Err(CryptoError::Unseal)
        ));
        // Bob's own key cannot open it either.
        let (bob_key, _) = kr.new_data_key("bob").unwrap();
        assert!(matches!(
            bob_key.open("bob", "phone", &sealed),
            Err(CryptoError::Unseal)
        ));
    }

    #[test]
    fn ciphertext_swapped_between_fields_fails() {
        let (dk, _) = keyring(1).new_data_key("alice").unwrap();
        let sealed = dk.seal("alice", "phone", b"13800138000").unwrap();
        assert!(matches!(
            dk.open("alice", "email", &sealed),
            Err(CryptoError::Unseal)
        ));
        assert!(matches!(
            dk.open_string("alice", "email", &sealed),
            Err(CryptoError::Unseal)
        ));
    }

    #[test]
    fn aad_is_length_prefixed() {
        assert_ne!(aad("ab", "c").unwrap(), aad("a", "bc").unwrap());
        let (dk, _) = keyring(1).new_data_key("ab").unwrap();
        let sealed = dk.seal("ab", "c", b"x").unwrap();
        assert!(matches!(
            dk.open("a", "bc", &sealed),
            Err(CryptoError::Unseal)
        ));
    }

    #[test]
    fn tampered_bytes_fail() {
        let (dk, _) = keyring(1).new_data_key("c").unwrap();
        let sealed = dk.seal("c", "f", b"hello world").unwrap();
        for i in 1..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(
                matches!(dk.open("c", "f", &t), Err(CryptoError::Unseal)),
                "byte {i}"
            );
        }
        // Version byte changed -> Malformed (unknown format), not Unseal.
        let mut t = sealed.clone();
        t[0] = 2;
        assert!(matches!(dk.open("c", "f", &t), Err(CryptoError::Malformed)));
        // Truncation.
        assert!(matches!(
            dk.open("c", "f", &sealed[..sealed.len() - 1]),
            Err(CryptoError::Unseal)
        ));
    }

    #[test]
    fn malformed_blobs() {
        let (dk, _) = keyring(1).new_data_key("c").unwrap();
        for blob in [&[][..], &[1], &[1; 28], &[0; 40]] {
            assert!(matches!(
                dk.open("c", "f", blob),
                Err(CryptoError::Malformed)
            ));
        }
        // Minimum valid length (empty plaintext) is accepted structurally.
        assert!(matches!(
            dk.open("c", "f", &[1; 29]),
            Err(CryptoError::Unseal)
        ));
    }

    #[test]
    fn open_string_rejects_non_utf8() {
        let (dk, _) = keyring(1).new_data_key("c").unwrap();
        let sealed = dk.seal("c", "f", &[0xff, 0xfe]).unwrap();
        assert!(matches!(
            dk.open_string("c", "f", &sealed),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn wrapped_key_round_trip_and_customer_binding() {
        let kr = keyring(1);
        let (dk, wrapped) = kr.new_data_key("alice").unwrap();
        let sealed = dk.seal("alice", "phone", b"1").unwrap();

        let unwrapped = kr.unwrap_data_key("alice", &wrapped).unwrap();
        assert_eq!(&*unwrapped.open("alice", "phone", &sealed).unwrap(), b"1");

        assert!(matches!(
            kr.unwrap_data_key("bob", &wrapped),
            Err(CryptoError::Unseal)
        ));
        // Another master key cannot unwrap it.
        assert!(matches!(
            keyring(2).unwrap_data_key("alice", &wrapped),
            Err(CryptoError::Unseal)
        ));
        // A field ciphertext is not a wrapped key (different key and field).
        assert!(matches!(
            kr.unwrap_data_key("alice", &sealed),
            Err(CryptoError::Unseal)
        ));
        let mut t = wrapped.clone();
        let last = t.len() - 1;
        t[last] ^= 0x80;
        assert!(matches!(
            kr.unwrap_data_key("alice", &t),
            Err(CryptoError::Unseal)
        ));
        assert!(matches!(
            kr.unwrap_data_key("alice", b""),
            Err(CryptoError::Malformed)
        ));
    }

    #[test]
    fn data_keys_are_distinct() {
        let kr = keyring(1);
        let (a, _) = kr.new_data_key("c").unwrap();
        let (b, _) = kr.new_data_key("c").unwrap();
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn derivation_matches_spec() {
        let master = [9u8; 32];
        let kr = Keyring::new(&MasterKey::from_bytes(master));
        // Cross-check the zero-padding trick against new_from_slice.
        use hmac::Mac as _;
        let mut mac = <crate::mac::HmacSha256 as hmac::KeyInit>::new_from_slice(&master).unwrap();
        mac.update(b"custos/kek/v1");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(*kr.file_kek(KekId::FIRST), expected);
        assert_ne!(*kr.file_kek(KekId::FIRST), *kr.index_keys().current.key);
    }

    #[test]
    fn hmac_known_vector() {
        // RFC 4231 test case 2 uses a short key ("Jefe"); zero-padded to 32
        // bytes gives the same HMAC, which checks the padding argument.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let out = hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn blind_index_properties() {
        let kr1 = keyring(1);
        let kr2 = keyring(2);
        let a = kr1.blind_index(IndexKind::Phone, "+8613800138000");
        assert_eq!(a, kr1.blind_index(IndexKind::Phone, "+8613800138000"));
        assert_eq!(
            a,
            kr1.clone().blind_index(IndexKind::Phone, "+8613800138000")
        );
        assert_ne!(a, kr2.blind_index(IndexKind::Phone, "+8613800138000"));
        assert_ne!(a, kr1.blind_index(IndexKind::Phone, "+8613800138001"));
        assert_ne!(
            kr1.blind_index(IndexKind::Email, "x"),
            kr1.blind_index(IndexKind::AccountId, "x")
        );
    }

    #[test]
    fn index_key_versions() {
        let kr = keyring(1);
        let phone = "+8613800138000";
        let v1 = kr.blind_index(IndexKind::Phone, phone);
        // Version 1 is the first wave's key: HMAC(master, "custos/index/v1").
        let first = hmac_sha256(&[1u8; 32], &[b"custos/index/v1"]);
        assert_eq!(
            v1.0,
            hmac_sha256(&first, &[b"phone", &[0u8], phone.as_bytes()])
        );
        assert_eq!(kr.lookup_indexes(IndexKind::Phone, phone), vec![v1]);
        let (one, two) = (IndexVersion::FIRST, IndexVersion::FIRST.next());
        let v2 = kr.blind_index_under(two, IndexKind::Phone, phone);
        assert_ne!(v1, v2);
        // A rotation: a clone sees the change, writes go under v2, lookups search both.
        let clone = kr.clone();
        kr.use_index_keys(two, Some(one));
        assert_eq!(clone.index_version(), two);
        assert_eq!(clone.blind_index(IndexKind::Phone, phone), v2);
        assert_eq!(clone.lookup_indexes(IndexKind::Phone, phone), vec![v2, v1]);
        assert_eq!(clone.blind_index_under(one, IndexKind::Phone, phone), v1);
        // Finished: only v2.
        kr.use_index_keys(two, None);
        assert_eq!(clone.lookup_indexes(IndexKind::Phone, phone), vec![v2]);
    }

    #[test]
    fn debug_is_redacted() {
        let kr = keyring(0xAB);
        let (dk, _) = kr.new_data_key("c").unwrap();
        assert_eq!(format!("{kr:?}"), "Keyring(..)");
        assert_eq!(format!("{dk:?}"), "DataKey(..)");
    }
}
