//! A PKCS#11 token that holds the key-encryption keys.
//!
//! Each KEK version is an AES-256 secret key created on the token (`CKA_TOKEN`,
//! `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`), labelled `custos-kek-v{n}`. Custos hands the
//! token a data key with a fresh 96-bit nonce and the customer's associated data and gets
//! back AES-256-GCM's ciphertext and tag (`CKM_AES_GCM`, PKCS#11 v2.40 §2.12.3); to
//! unwrap, the token decrypts and checks the tag. The KEK's bytes never reach this
//! process. Random 96-bit nonces keep a key below NIST SP 800-38D §8.3's limit of 2^32
//! invocations for any realistic number of customers and rotations.
//!
//! Sessions are pooled: a PKCS#11 session serves one thread at a time, and opening one
//! per call costs more than the operation. The user logs in once; the login holds for
//! every session of this application while one stays open (PKCS#11 v2.40 §5.6), and the
//! pool always keeps one.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::kek::KekId;

const NONCE_LEN: usize = 12;
const TAG_BITS: u64 = 128;
/// Sessions kept open for reuse; more may be open at once under load, and are closed
/// when returned to a full pool.
const POOL_SIZE: usize = 8;

/// A logged-in PKCS#11 token holding Custos's key-encryption keys.
pub struct Token {
    context: Pkcs11,
    slot: Slot,
    label: String,
    sessions: Mutex<Vec<Session>>,
    keys: Mutex<HashMap<u32, ObjectHandle>>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.label)
    }
}

/// A token's failure as [`CryptoError::KeyProvider`]: the call and the PKCS#11 return
/// value's name (`PinIncorrect`, …), never a key or a PIN.
fn failed(what: &str, e: &Pkcs11Error) -> CryptoError {
    match e {
        Pkcs11Error::Pkcs11(rv, _) => CryptoError::key_provider(format!("{what}: {rv:?}")),
        other => CryptoError::key_provider(format!("{what}: {other}")),
    }
}

impl Token {
    /// Loads the PKCS#11 module at `module`, finds the token labelled `label` and logs in
    /// as its user with `pin`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyProvider`] if the module does not load, no token has that label,
    /// or the login fails.
    pub fn open(module: &Path, label: &str, pin: &str) -> Result<Token, CryptoError> {
        let context = Pkcs11::new(module).map_err(|e| {
            CryptoError::key_provider(format!(
                "cannot load the PKCS#11 module {}: {e}",
                module.display()
            ))
        })?;
        match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            // Another opening in this process initialised the module already.
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(failed("C_Initialize", &e)),
        }
        let slots = context
            .get_slots_with_token()
            .map_err(|e| failed("C_GetSlotList", &e))?;
        let slot = slots
            .into_iter()
            .find(|slot| {
                context
                    .get_token_info(*slot)
                    .is_ok_and(|info| info.label().trim_end() == label)
            })
            .ok_or_else(|| CryptoError::key_provider(format!("no token labelled {label:?}")))?;
        let session = context
            .open_rw_session(slot)
            .map_err(|e| failed("C_OpenSession", &e))?;
        match session.login(UserType::User, Some(&AuthPin::from(pin.to_owned()))) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => return Err(failed("C_Login", &e)),
        }
        Ok(Token {
            context,
            slot,
            label: label.to_owned(),
            sessions: Mutex::new(vec![session]),
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `f` on a pooled session.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CryptoError>,
    ) -> Result<T, CryptoError> {
        let pooled = self.sessions.lock().ok().and_then(|mut pool| pool.pop());
        let session = match pooled {
            Some(session) => session,
            None => self
                .context
                .open_rw_session(self.slot)
                .map_err(|e| failed("C_OpenSession", &e))?,
        };
        let result = f(&session);
        if let Ok(mut pool) = self.sessions.lock()
            && pool.len() < POOL_SIZE
        {
            pool.push(session);
        }
        result
    }

    /// The handle of KEK `version`, looked up once by its label.
    fn key(&self, session: &Session, kek: KekId) -> Result<ObjectHandle, CryptoError> {
        if let Some(handle) = self
            .keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(&kek.version).copied())
        {
            return Ok(handle);
        }
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(kek.token_label().into_bytes()),
            ])
            .map_err(|e| failed("C_FindObjects", &e))?;
        let handle = match found.as_slice() {
            [handle] => *handle,
            [] => {
                return Err(CryptoError::key_provider(format!(
                    "the token has no key {}",
                    kek.token_label()
                )));
            }
            _ => {
                return Err(CryptoError::key_provider(format!(
                    "the token has several keys labelled {}",
                    kek.token_label()
                )));
            }
        };
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(kek.version, handle);
        }
        Ok(handle)
    }

    /// Whether the token holds KEK `kek`.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyProvider`] if the token cannot be searched.
    pub fn has_kek(&self, kek: KekId) -> Result<bool, CryptoError> {
        self.with_session(|session| match self.key(session, kek) {
            Ok(_) => Ok(true),
            Err(CryptoError::KeyProvider { reason }) if reason.starts_with("the token has no") => {
                Ok(false)
            }
            Err(e) => Err(e),
        })
    }

    /// Creates KEK `kek` on the token: AES-256, a token object, sensitive, never
    /// extractable, for encryption and decryption only. Does nothing if it exists.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyProvider`] if the token refuses.
    pub fn create_kek(&self, kek: KekId) -> Result<(), CryptoError> {
        if self.has_kek(kek)? {
            return Ok(());
        }
        self.with_session(|session| {
            let handle = session
                .generate_key(
                    &Mechanism::AesKeyGen,
                    &[
                        Attribute::Class(ObjectClass::SECRET_KEY),
                        Attribute::KeyType(KeyType::AES),
                        Attribute::ValueLen(32.into()),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Sensitive(true),
                        Attribute::Extractable(false),
                        Attribute::Encrypt(true),
                        Attribute::Decrypt(true),
                        Attribute::Wrap(false),
                        Attribute::Unwrap(false),
                        Attribute::Label(kek.token_label().into_bytes()),
                    ],
                )
                .map_err(|e| failed("C_GenerateKey", &e))?;
            if let Ok(mut keys) = self.keys.lock() {
                keys.insert(kek.version, handle);
            }
            Ok(())
        })
    }

    /// Whether KEK `kek` is marked sensitive and not extractable on the token, as
    /// [`Token::create_kek`] made it: its value cannot be read out.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyProvider`] if the key is missing or its attributes unreadable.
    pub fn kek_stays_on_token(&self, kek: KekId) -> Result<bool, CryptoError> {
        self.with_session(|session| {
            let handle = self.key(session, kek)?;
            let attributes = session
                .get_attributes(
                    handle,
                    &[AttributeType::Sensitive, AttributeType::Extractable],
                )
                .map_err(|e| failed("C_GetAttributeValue", &e))?;
            let mut sensitive = false;
            let mut extractable = true;
            for attribute in attributes {
                match attribute {
                    Attribute::Sensitive(value) => sensitive = value,
                    Attribute::Extractable(value) => extractable = value,
                    _ => {}
                }
            }
            Ok(sensitive && !extractable)
        })
    }

    /// AES-256-GCM encryption by KEK `kek`: returns `nonce || ciphertext || tag`.
    pub(crate) fn encrypt(
        &self,
        kek: KekId,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let nonce: [u8; NONCE_LEN] = crate::random_bytes();
        self.with_session(|session| {
            let handle = self.key(session, kek)?;
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())
                .map_err(|e| failed("CK_GCM_PARAMS", &e))?;
            let sealed = session
                .encrypt(&Mechanism::AesGcm(params), handle, plaintext)
                .map_err(|e| failed("C_Encrypt", &e))?;
            let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&sealed);
            Ok(out)
        })
    }

    /// The inverse of [`Token::encrypt`].
    ///
    /// # Errors
    ///
    /// [`CryptoError::Unseal`] if the tag does not verify (another key, another
    /// customer, tampered bytes); [`CryptoError::Malformed`] if too short;
    /// [`CryptoError::KeyProvider`] if the token fails otherwise.
    pub(crate) fn decrypt(
        &self,
        kek: KekId,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.with_session(|session| {
            let handle = self.key(session, kek)?;
            let mut iv = [0u8; NONCE_LEN];
            iv.copy_from_slice(nonce);
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())
                .map_err(|e| failed("CK_GCM_PARAMS", &e))?;
            match session.decrypt(&Mechanism::AesGcm(params), handle, ciphertext) {
                Ok(plain) => Ok(Zeroizing::new(plain)),
                // The standard says a failed tag is CKR_ENCRYPTED_DATA_INVALID; SoftHSM 2.6
                // answers CKR_GENERAL_ERROR. Either way the key handle and session were
                // good, so it is this value that did not authenticate.
                Err(Pkcs11Error::Pkcs11(
                    RvError::EncryptedDataInvalid
                    | RvError::EncryptedDataLenRange
                    | RvError::GeneralError,
                    _,
                )) => Err(CryptoError::Unseal),
                Err(e) => Err(failed("C_Decrypt", &e)),
            }
        })
    }
}
