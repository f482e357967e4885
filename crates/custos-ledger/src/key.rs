//! The log's Ed25519 checkpoint signing key.
//!
//! Stored in the signed-note private key format used by Go's
//! `golang.org/x/mod/sumdb/note` (`PRIVATE+KEY+<name>+<id>+<base64(0x01‖seed)>`),
//! so standard tooling can read it. The file is created with mode 0600 and a
//! key file readable by group or others is refused.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::prelude::*;
use ed25519_dalek::{Signer as _, SigningKey};
use zeroize::Zeroizing;

use crate::error::LedgerError;
use crate::storage::{fsync_dir, parent_dir};

const ALG_ED25519: u8 = 0x01;

/// An Ed25519 key that signs this log's checkpoints as the note key named
/// after the log origin. Secret bytes are zeroized on drop and never shown
/// by `Debug`.
pub struct LedgerKey {
    origin: String,
    // ed25519-dalek's SigningKey zeroizes itself on drop (its `zeroize` feature).
    signing: SigningKey,
    key_id: u32,
}

impl fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerKey")
            .field("origin", &self.origin)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl LedgerKey {
    /// Loads the key at `path`, or creates it with a fresh random key (mode
    /// 0600, written to a temporary file, fsynced and renamed into place).
    /// Returns the key and whether it was created.
    ///
    /// `origin` is the checkpoint origin line and the note key name; it must
    /// be a valid note key name (non-empty, no spaces or `+`), and an existing
    /// key file must have been created for the same origin.
    pub fn load_or_create(path: &Path, origin: &str) -> Result<(LedgerKey, bool), LedgerError> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(LedgerError::BadKey(format!(
                "origin {origin:?} is not a valid note key name"
            )));
        }
        match std::fs::metadata(path) {
            Ok(meta) => {
                if meta.permissions().mode() & 0o077 != 0 {
                    return Err(LedgerError::BadKey(format!(
                        "{} is readable by group or others; chmod 600 it",
                        path.display()
                    )));
                }
                let text = Zeroizing::new(
                    std::fs::read_to_string(path).map_err(|e| LedgerError::io(path, e))?,
                );
                Ok((Self::parse(text.trim_end(), origin)?, false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = Zeroizing::new([0u8; 32]);
                getrandom::fill(seed.as_mut())
                    .map_err(|e| LedgerError::BadKey(format!("no randomness: {e}")))?;
                let key = Self::from_seed(&seed, origin);
                key.write_new(path)?;
                Ok((key, true))
            }
            Err(e) => Err(LedgerError::io(path, e)),
        }
    }

    fn from_seed(seed: &[u8; 32], origin: &str) -> LedgerKey {
        let signing = SigningKey::from_bytes(seed);
        let key_id = signed_note::key_id(origin, &public_key_material(&signing));
        LedgerKey {
            origin: origin.to_owned(),
            signing,
            key_id,
        }
    }

    fn parse(text: &str, origin: &str) -> Result<LedgerKey, LedgerError> {
        let bad = |why: &str| LedgerError::BadKey(format!("key file: {why}"));
        let rest = text
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("not a PRIVATE+KEY file"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("malformed"));
        };
        if name != origin {
            return Err(bad(&format!(
                "made for origin {name:?}, not {origin:?} (a new origin is a new log)"
            )));
        }
        let raw = Zeroizing::new(BASE64_STANDARD.decode(b64).map_err(|_| bad("bad base64"))?);
        if raw.len() != 33 || raw[0] != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&raw[1..]);
        let key = Self::from_seed(&seed, origin);
        if id != format!("{:08x}", key.key_id) {
            return Err(bad("key ID does not match the key"));
        }
        Ok(key)
    }

    fn write_new(&self, path: &Path) -> Result<(), LedgerError> {
        let mut raw = Zeroizing::new(vec![ALG_ED25519]);
        raw.extend_from_slice(self.signing.as_bytes());
        let text = Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{:08x}+{}\n",
            self.origin,
            self.key_id,
            BASE64_STANDARD.encode(&*raw)
        ));
        let dir = parent_dir(path);
        std::fs::create_dir_all(&dir).map_err(|e| LedgerError::io(&dir, e))?;
        let tmp = path.with_extension("tmp");
        let io = |e| LedgerError::io(&tmp, e);
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        // Never replace an existing key: link fails if `path` appeared meanwhile.
        std::fs::hard_link(&tmp, path).map_err(|e| LedgerError::io(path, e))?;
        std::fs::remove_file(&tmp).map_err(io)?;
        fsync_dir(&dir)
    }

    /// The log origin this key signs for (the note key name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The signed-note key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The verifier key, `<origin>+<8 hex key id>+<base64(0x01‖public key)>`
    /// (C2SP signed-note, "Verifier keys").
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.origin, &self.signing.verifying_key())
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }
}

fn public_key_material(k: &SigningKey) -> Vec<u8> {
    let mut v = vec![ALG_ED25519];
    v.extend_from_slice(&k.verifying_key().to_bytes());
    v
}

impl signed_note::Signer for LedgerKey {
    fn name(&self) -> &str {
        &self.origin
    }
    fn key_id(&self) -> u32 {
        self.key_id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.signing.sign(msg).to_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_same_key_mode_0600_debug_hides_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/ledger.key");
        let (k1, created) = LedgerKey::load_or_create(&path, "custos.example/ledger").unwrap();
        assert!(created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (k2, created) = LedgerKey::load_or_create(&path, "custos.example/ledger").unwrap();
        assert!(!created);
        assert_eq!(k1.verifier_key(), k2.verifier_key());
        // C2SP signed-note "Verifier keys": name+8 hex id+base64(0x01||key).
        let vk = k1.verifier_key();
        let parts: Vec<&str> = vk.splitn(3, '+').collect();
        assert_eq!(parts[0], "custos.example/ledger");
        assert_eq!(parts[1].len(), 8);
        let raw = BASE64_STANDARD.decode(parts[2]).unwrap();
        assert_eq!(raw.len(), 33);
        assert_eq!(raw[0], 1);
        signed_note::StandardVerifier::new(&vk).unwrap();

        let dbg = format!("{k1:?}");
        let file = std::fs::read_to_string(&path).unwrap();
        // PRIVATE+KEY+<origin>+<id>+<base64>; base64 itself may contain '+'.
        let secret_b64 = file.trim_end().splitn(5, '+').nth(4).unwrap();
        assert!(secret_b64.len() >= 40, "{secret_b64}");
        assert!(!dbg.contains(secret_b64));
        assert!(!dbg.contains(&hex::encode(k1.signing.as_bytes())));

        let err = LedgerKey::load_or_create(&path, "other.example/log").unwrap_err();
        assert_eq!(err.code(), "bad_key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = LedgerKey::load_or_create(&path, "custos.example/ledger").unwrap_err();
        assert_eq!(err.code(), "bad_key");
    }
}
