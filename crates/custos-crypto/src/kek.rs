//! Key-encryption keys (KEKs): which key wrapped a customer's data key, and the wrapped
//! key's format.
//!
//! A KEK is named by a [`KekId`]: the provider that holds it and a version. Versions
//! start at 1 and only grow; a rotation creates the next version and re-wraps every
//! data key under it.
//!
//! * [`KekProvider::File`]: version `n` is HMAC-SHA256(master key, `"custos/kek/v{n}"`),
//!   used with AES-256-GCM-SIV in this process. Anyone with the master key file can
//!   derive every version: rotating it retires a version, it does not protect against a
//!   copied key file.
//! * [`KekProvider::Pkcs11`]: version `n` is the AES-256 key labelled `custos-kek-v{n}`
//!   on the token, created there as sensitive and not extractable; wrapping and
//!   unwrapping are AES-256-GCM operations of the token (see `pkcs11.rs`).
//!
//! # Wrapped-key formats
//!
//! * Format 1 (the first wave, still read): `1 || nonce (12) || ciphertext || tag (16)`,
//!   always under the file KEK version 1.
//! * Format 2: `2 || provider (1: 0 file, 1 PKCS#11) || version (u32 BE) || nonce (12) ||
//!   ciphertext || tag (16)`.
//!
//! Both bind the customer id as associated data (`aad(customer id, "data-key")`), so a
//! wrapped key copied onto another customer fails to unwrap. The header names the key;
//! changing it selects another key, under which the tag fails.

use std::fmt;

use crate::error::CryptoError;

/// The leading byte of a format-2 wrapped key.
pub(crate) const FORMAT_2: u8 = 2;
/// Header length of a format-2 wrapped key: format, provider, version.
pub(crate) const FORMAT_2_HEADER: usize = 1 + 1 + 4;

/// Where a key-encryption key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KekProvider {
    /// Derived from the master key file, in this process.
    File,
    /// Held by a PKCS#11 token; it never leaves it.
    Pkcs11,
}

impl KekProvider {
    /// The provider's name in configuration, the API and the ledger: `file` or `pkcs11`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KekProvider::File => "file",
            KekProvider::Pkcs11 => "pkcs11",
        }
    }

    /// Parses [`KekProvider::as_str`]'s names.
    #[must_use]
    pub fn parse(name: &str) -> Option<KekProvider> {
        match name {
            "file" => Some(KekProvider::File),
            "pkcs11" => Some(KekProvider::Pkcs11),
            _ => None,
        }
    }

    fn byte(self) -> u8 {
        match self {
            KekProvider::File => 0,
            KekProvider::Pkcs11 => 1,
        }
    }

    fn from_byte(byte: u8) -> Option<KekProvider> {
        match byte {
            0 => Some(KekProvider::File),
            1 => Some(KekProvider::Pkcs11),
            _ => None,
        }
    }
}

/// One key-encryption key: its provider and version (from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KekId {
    /// Where the key lives.
    pub provider: KekProvider,
    /// Its version; a rotation creates the next one.
    pub version: u32,
}

impl KekId {
    /// The first wave's key: the file KEK, version 1.
    pub const FIRST: KekId = KekId {
        provider: KekProvider::File,
        version: 1,
    };

    /// The id packed into a `u64` (provider in the high half), for an atomic.
    pub(crate) fn pack(self) -> u64 {
        (u64::from(self.provider.byte()) << 32) | u64::from(self.version)
    }

    /// The inverse of [`KekId::pack`]; `pack` is the only writer, so an unknown
    /// provider byte cannot occur and falls back to the first key.
    pub(crate) fn unpack(packed: u64) -> KekId {
        let provider = u8::try_from(packed >> 32)
            .ok()
            .and_then(KekProvider::from_byte)
            .unwrap_or(KekProvider::File);
        KekId {
            provider,
            version: (packed & 0xffff_ffff) as u32,
        }
    }

    /// The format-2 header naming this key.
    pub(crate) fn header(self) -> [u8; FORMAT_2_HEADER] {
        let v = self.version.to_be_bytes();
        [FORMAT_2, self.provider.byte(), v[0], v[1], v[2], v[3]]
    }

    /// The token label of a PKCS#11 KEK of this version.
    pub(crate) fn token_label(self) -> String {
        format!("custos-kek-v{}", self.version)
    }

    /// The derivation label of a file KEK of this version.
    pub(crate) fn file_label(self) -> String {
        format!("custos/kek/v{}", self.version)
    }
}

impl fmt::Display for KekId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:v{}", self.provider.as_str(), self.version)
    }
}

/// A wrapped key split into the key that wrapped it and the sealed part
/// (`nonce || ciphertext || tag`); format 1's sealed part keeps its version byte, which
/// the format-1 opener expects.
pub(crate) struct WrappedParts<'a> {
    pub(crate) kek: KekId,
    pub(crate) sealed: &'a [u8],
    pub(crate) format: u8,
}

/// Reads which key wrapped `wrapped`.
///
/// # Errors
///
/// [`CryptoError::Malformed`] for an empty value, an unknown format or provider, or a
/// version 0.
pub(crate) fn split(wrapped: &[u8]) -> Result<WrappedParts<'_>, CryptoError> {
    match wrapped.first() {
        Some(1) => Ok(WrappedParts {
            kek: KekId::FIRST,
            sealed: wrapped,
            format: 1,
        }),
        Some(&FORMAT_2) if wrapped.len() > FORMAT_2_HEADER => {
            let provider = KekProvider::from_byte(wrapped[1]).ok_or(CryptoError::Malformed)?;
            let version = u32::from_be_bytes([wrapped[2], wrapped[3], wrapped[4], wrapped[5]]);
            if version == 0 {
                return Err(CryptoError::Malformed);
            }
            Ok(WrappedParts {
                kek: KekId { provider, version },
                sealed: &wrapped[FORMAT_2_HEADER..],
                format: FORMAT_2,
            })
        }
        _ => Err(CryptoError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_and_name() {
        for id in [
            KekId::FIRST,
            KekId {
                provider: KekProvider::Pkcs11,
                version: 7,
            },
            KekId {
                provider: KekProvider::File,
                version: u32::MAX,
            },
        ] {
            assert_eq!(KekId::unpack(id.pack()), id);
            assert_eq!(
                split(&[&id.header()[..], &[0u8; 28]].concat()).unwrap().kek,
                id
            );
        }
        assert_eq!(KekId::FIRST.to_string(), "file:v1");
        assert_eq!(KekProvider::parse("pkcs11"), Some(KekProvider::Pkcs11));
        assert_eq!(KekProvider::parse("hsm"), None);
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in [
            &b""[..],
            &[0u8, 1, 2][..],
            &[2u8, 0, 0, 0, 0, 1][..],       // header only
            &[2u8, 9, 0, 0, 0, 1, 5][..],    // unknown provider
            &[2u8, 0, 0, 0, 0, 0, 5][..],    // version 0
            &[3u8, 0, 0, 0, 0, 1, 5, 5][..], // unknown format
        ] {
            assert!(matches!(split(bad), Err(CryptoError::Malformed)), "{bad:?}");
        }
        assert_eq!(split(&[1u8, 2, 3]).unwrap().kek, KekId::FIRST);
    }
}
