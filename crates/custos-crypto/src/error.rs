//! The crate's error type.

use std::path::{Path, PathBuf};

/// Errors returned by `custos-crypto`.
///
/// No variant ever carries a plaintext, a ciphertext, key material or the
/// input that failed validation: these errors end up in logs and HTTP
/// responses, and the input may be a customer's personal data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A sealed value (field or wrapped data key) failed authentication:
    /// wrong key, wrong customer, wrong field, or tampered bytes.
    #[error("sealed value failed authentication")]
    Unseal,
    /// A sealed value has an unknown version or is too short, or its
    /// plaintext has the wrong shape (e.g. not UTF-8 where text is expected).
    #[error("sealed value is malformed")]
    Malformed,
    /// The master key file could not be read, created, or was refused.
    #[error("master key file {}: {reason}", path.display())]
    KeyFile {
        /// Path of the key file.
        path: PathBuf,
        /// Why it failed (never contains key material).
        reason: String,
    },
    /// The key provider (a PKCS#11 token) failed or lacks a key: the module does not
    /// load, the token is missing, the PIN is refused, a KEK is absent.
    #[error("key provider: {reason}")]
    KeyProvider {
        /// What failed (a PKCS#11 return value's name, a label; never a PIN or a key).
        reason: String,
    },
    /// An input value failed validation. `kind` names what was expected
    /// (`"phone"`, `"email"`, `"account_id"`, or `"region"` for an unknown
    /// default phone region); the value itself is never included.
    #[error("not a valid {}", describe_kind(kind))]
    InvalidValue {
        /// What kind of value was expected.
        kind: &'static str,
    },
}

fn describe_kind(kind: &str) -> &str {
    match kind {
        "phone" => "phone number",
        "email" => "email address",
        "account_id" => "account id",
        "region" => "phone region code",
        other => other,
    }
}

impl CryptoError {
    /// A stable machine-readable code for this error, suitable for API
    /// responses and metrics labels: `unseal_failed`, `malformed_ciphertext`,
    /// `key_file`, `key_provider`, `invalid_phone`, `invalid_email`, `invalid_account_id`,
    /// `invalid_region` (or `invalid_value` for any other kind).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            CryptoError::Unseal => "unseal_failed",
            CryptoError::Malformed => "malformed_ciphertext",
            CryptoError::KeyFile { .. } => "key_file",
            CryptoError::KeyProvider { .. } => "key_provider",
            CryptoError::InvalidValue { kind } => match *kind {
                "phone" => "invalid_phone",
                "email" => "invalid_email",
                "account_id" => "invalid_account_id",
                "region" => "invalid_region",
                _ => "invalid_value",
            },
        }
    }

    pub(crate) fn key_provider(reason: impl Into<String>) -> Self {
        CryptoError::KeyProvider {
            reason: reason.into(),
        }
    }

    pub(crate) fn key_file(path: &Path, reason: impl Into<String>) -> Self {
        CryptoError::KeyFile {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(CryptoError::Unseal.code(), "unseal_failed");
        assert_eq!(CryptoError::Malformed.code(), "malformed_ciphertext");
        assert_eq!(
            CryptoError::key_file(Path::new("/x"), "r").code(),
            "key_file"
        );
        for (kind, code) in [
            ("phone", "invalid_phone"),
            ("email", "invalid_email"),
            ("account_id", "invalid_account_id"),
            ("region", "invalid_region"),
            ("other", "invalid_value"),
        ] {
            assert_eq!(CryptoError::InvalidValue { kind }.code(), code);
        }
    }

    #[test]
    fn messages() {
        assert_eq!(
            CryptoError::Unseal.to_string(),
            "sealed value failed authentication"
        );
        assert_eq!(
            CryptoError::InvalidValue { kind: "phone" }.to_string(),
            "not a valid phone number"
        );
        assert_eq!(
            CryptoError::key_file(Path::new("/k"), "bad").to_string(),
            "master key file /k: bad"
        );
    }
}
