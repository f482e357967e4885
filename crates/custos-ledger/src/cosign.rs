//! Witness cosignatures (C2SP tlog-cosignature, Ed25519 `cosignature/v1`).
//!
//! `signed_note` 0.2.0 only knows plain Ed25519 note keys (type 0x01), so
//! the cosignature verifier (key type 0x04, timestamped signed message) is
//! written here and plugged into its `Verifier` trait.

use base64::prelude::*;
use ed25519_dalek::{Signature, VerifyingKey};

const ALG_COSIGNATURE_V1: u8 = 0x04;

/// A witness's `cosignature/v1` public key.
#[derive(Clone, Debug)]
pub(crate) struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// Parses a verifier key `<name>+<hex id>+<base64(0x04‖32-byte key)>`.
    pub(crate) fn parse(vkey: &str) -> Result<Self, String> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id16), Some(b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed witness key".into());
        };
        if !signed_note::is_key_name_valid(name) || id16.len() != 8 {
            return Err("malformed witness key".into());
        }
        let id = u32::from_str_radix(id16, 16).map_err(|_| "bad witness key id")?;
        let raw = BASE64_STANDARD
            .decode(b64)
            .map_err(|_| "bad witness key base64")?;
        if raw.len() != 33 || raw[0] != ALG_COSIGNATURE_V1 {
            return Err("witness key is not an Ed25519 cosignature/v1 key (type 0x04)".into());
        }
        if signed_note::key_id(name, &raw) != id {
            return Err("witness key id does not match the key".into());
        }
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&raw[1..]);
        let key = VerifyingKey::from_bytes(&pk).map_err(|_| "bad witness public key")?;
        Ok(CosignatureVerifier {
            name: name.to_owned(),
            id,
            key,
        })
    }
}

/// The message a `cosignature/v1` signs (C2SP tlog-cosignature, "Ed25519
/// signed message"): header line, time line, then the note body.
pub(crate) fn signed_message(timestamp: u64, body: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        // timestamped_signature: u64 big-endian timestamp ‖ 64-byte signature.
        let Ok(sig) = <&[u8; 72]>::try_from(sig) else {
            return false;
        };
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&sig[..8]);
        let ts = u64::from_be_bytes(ts);
        if ts > i64::MAX as u64 {
            return false;
        }
        let mut s = [0u8; 64];
        s.copy_from_slice(&sig[8..]);
        self.key
            .verify_strict(&signed_message(ts, msg), &Signature::from_bytes(&s))
            .is_ok()
    }
}
