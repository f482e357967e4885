//! Cryptography for Custos: envelope encryption of customer fields, blind
//! indexes for exact-match search, and normalisation of searchable values.
//!
//! # Key hierarchy
//!
//! ```text
//! master key file (32 random bytes, mode 0600)
//!   ├── HMAC-SHA256(master, "custos/kek/v{n}") -> file key-encryption key (KEK) version n
//!   │     └── wraps each customer's data key (AES-256-GCM-SIV, AAD = customer id + "data-key")
//!   │         (or: a PKCS#11 token's AES-256 key `custos-kek-v{n}`, which never leaves the
//!   │          token, wraps it with AES-256-GCM; see `kek.rs` and `pkcs11.rs`)
//!   │           └── seals each field (AES-256-GCM-SIV, AAD = customer id + field name)
//!   ├── HMAC-SHA256(master, "custos/index/v1") -> blind-index key
//!   │     └── HMAC-SHA256 of a normalised phone / email / account id, for exact lookup
//!   ├── HMAC-SHA256(master, "custos/canary/v1") -> canary key (canary and holder marks, sealed canary ids)
//!   ├── HMAC-SHA256(master, "custos/customer-link/v1") -> signs customer access links
//!   └── HMAC-SHA256(master, "custos/pseudonym/v1") -> staff pseudonyms shown to customers
//! ```
//!
//! * [`MasterKey`] is loaded from (or created in) a key file; it is the only
//!   long-lived secret.
//! * [`Keyring`] holds the keys derived from it, and reaches the KEKs by [`KekId`]: the
//!   file's, and a PKCS#11 [`Token`]'s when one is attached. A rotation makes a new KEK
//!   current and re-wraps each data key ([`Keyring::rewrap_data_key`]). Deriving them (rather
//!   than using the master key directly) keeps encryption and indexing keys
//!   independent: a leaked index key decrypts nothing.
//! * Each customer has its own random [`DataKey`] (32 bytes), stored only in
//!   wrapped (encrypted) form next to the customer's record. The customer id
//!   is bound as associated data, so a wrapped key copied onto another
//!   customer's record fails to unwrap. Destroying a customer's wrapped key
//!   erases that customer's data (crypto-shredding).
//! * Every field is sealed with the customer's data key; the associated data
//!   binds the customer id and the field name, so a ciphertext moved to
//!   another customer or another field fails authentication
//!   ([`CryptoError::Unseal`]) instead of showing the wrong person's data.
//! * [`BlindIndex`] values are keyed hashes of normalised values (see
//!   [`normalize_phone`], [`normalize_email`], [`normalize_account_id`]) so
//!   the store can find a customer by phone, email or account id without
//!   keeping those values in clear.
//!
//! AES-GCM-SIV is used because it is nonce-misuse resistant: a repeated
//! random nonce only reveals that two plaintexts were equal, rather than
//! breaking confidentiality and integrity.
//!
//! # Sealed format
//!
//! `1 version byte (1) || 12-byte random nonce || ciphertext || 16-byte tag`,
//! with AAD = `"custos/field/v1" || u32-BE len || customer id || u32-BE len ||
//! field name` (length prefixes so `("ab", "c")` and `("a", "bc")` differ).
//!
//! Errors from this crate never contain personal data or key material.
//! [`MasterKey::load_or_create`] is Unix-only (it relies on permission bits).

mod cache;
mod envelope;
mod error;
mod index;
mod kek;
mod link;
mod mac;
mod master;
mod normalize;
mod pkcs11;

pub use envelope::{DataKey, Keyring};
pub use error::CryptoError;
pub use index::{BlindIndex, IndexKind, IndexVersion};
pub use kek::{KekId, KekProvider};
pub use link::LinkError;
pub use master::MasterKey;
pub use normalize::{
    MAX_ACCOUNT_ID_CHARS, MAX_EMAIL_CHARS, MAX_PHONE_CHARS, PHONE_PATTERNS_CACHED,
    normalize_account_id, normalize_email, normalize_phone, phone_char,
};
pub use pkcs11::Token;

use sha2::{Digest, Sha256};

/// Whether `a` and `b` are equal, in time that depends only on their lengths: for
/// comparing a secret with a guess (a link's tag, a CSRF token) without telling how
/// much of the guess was right.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

/// Returns `N` bytes from the operating system's random number generator.
///
/// # Panics
///
/// Panics only if the OS random number generator fails. There is no safe
/// way to continue without randomness (keys and nonces would be
/// predictable), and on supported platforms this does not happen after boot.
#[must_use]
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(err) = getrandom::fill(&mut buf) {
        // Deliberately not recoverable: see the doc comment.
        panic!("operating system random number generator failed: {err}");
    }
    buf
}

/// Lower-case hex SHA-256 of `data` (used to store hashes of bearer tokens,
/// never the tokens themselves).
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_bytes_differ() {
        let a: [u8; 32] = random_bytes();
        let b: [u8; 32] = random_bytes();
        assert_ne!(a, b);
        let empty: [u8; 0] = random_bytes();
        assert!(empty.is_empty());
    }

    #[test]
    fn sha256_hex_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex(b"").len(), 64);
    }
}
