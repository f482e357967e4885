//! Blind-index types, and the versions of the blind-index key. The computation itself is
//! [`crate::Keyring::blind_index`].
//!
//! # Versions
//!
//! Index key version n = HMAC-SHA256(master, "custos/index/v{n}"); version 1 is the
//! first wave's key. While a rotation moves the stored indexes from one version to the
//! next, a lookup computes the value's index under both ([`crate::Keyring::lookup_indexes`]):
//! each stored row is under exactly one of them, and two versions' indexes of any values
//! collide only with the probability of an HMAC-SHA256 collision, so a lookup by both
//! finds each row once.

use std::fmt;

use zeroize::Zeroizing;

/// Which kind of value a blind index was computed over. Part of the HMAC
/// input, so equal strings of different kinds never share an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// An E.164 phone number (see [`crate::normalize_phone`]).
    Phone,
    /// A normalised email address (see [`crate::normalize_email`]).
    Email,
    /// A normalised account id (see [`crate::normalize_account_id`]).
    AccountId,
}

impl IndexKind {
    /// Stable label used in the HMAC input (and usable as a storage column
    /// value): `"phone"`, `"email"` or `"account_id"`. Changing these would
    /// invalidate every stored index.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            IndexKind::Phone => "phone",
            IndexKind::Email => "email",
            IndexKind::AccountId => "account_id",
        }
    }
}

/// A keyed hash (HMAC-SHA256) of a normalised value, stored so records can
/// be found by exact match without storing the value in clear.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlindIndex(pub [u8; 32]);

impl BlindIndex {
    /// Lower-case hex encoding (64 characters).
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

// Showing the hex is acceptable: without the index key it reveals nothing
// about the value, and it helps when debugging lookups.
impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlindIndex({})", self.to_hex())
    }
}

/// A version of the blind-index key (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexVersion(pub u32);

impl IndexVersion {
    /// The first wave's index key, the one every store starts with.
    pub const FIRST: IndexVersion = IndexVersion(1);

    /// The next version.
    #[must_use]
    pub fn next(self) -> IndexVersion {
        IndexVersion(self.0.saturating_add(1))
    }

    /// The HMAC label that derives this version's key from the master key.
    fn label(self) -> String {
        format!("custos/index/v{}", self.0)
    }
}

impl fmt::Display for IndexVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "index:v{}", self.0)
    }
}

/// One version's key.
pub(crate) struct IndexKey {
    pub(crate) version: IndexVersion,
    pub(crate) key: Zeroizing<[u8; 32]>,
}

impl IndexKey {
    pub(crate) fn derive(master: &[u8; 32], version: IndexVersion) -> IndexKey {
        IndexKey {
            version,
            key: Zeroizing::new(crate::mac::hmac_sha256(
                master,
                &[version.label().as_bytes()],
            )),
        }
    }

    /// HMAC-SHA256(key, kind label || 0x00 || normalized).
    pub(crate) fn index(&self, kind: IndexKind, normalized: &str) -> BlindIndex {
        BlindIndex(crate::mac::hmac_sha256(
            &self.key,
            &[kind.label().as_bytes(), &[0u8], normalized.as_bytes()],
        ))
    }
}

/// The keys in use: `current` indexes what is written; `previous`, during a rotation
/// away from it, is looked up too.
pub(crate) struct IndexKeys {
    pub(crate) current: IndexKey,
    pub(crate) previous: Option<IndexKey>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert_eq!(IndexKind::Phone.label(), "phone");
        assert_eq!(IndexKind::Email.label(), "email");
        assert_eq!(IndexKind::AccountId.label(), "account_id");
    }

    #[test]
    fn hex_and_debug() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xAB;
        let idx = BlindIndex(bytes);
        let hex = idx.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex.starts_with("ab00"));
        assert_eq!(format!("{idx:?}"), format!("BlindIndex({hex})"));
    }
}
