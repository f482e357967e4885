//! Blind-index types. The computation itself is [`crate::Keyring::blind_index`].

use std::fmt;

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
