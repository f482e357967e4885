//! Client certificates of mutual TLS, as the service knows them: the fingerprint of the
//! certificate a connection presented, and the fingerprints `[mtls]` pins per principal.

use sha2::Digest;

/// A client certificate that the connection presented and TLS verified against the
/// configured client CA: the SHA-256 of its DER encoding, which `[mtls]` pins per
/// principal. Like [`crate::auth::SessionCredential`], it travels as a request extension that only
/// the server's TLS layer sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientCertificate(pub [u8; 32]);

impl ClientCertificate {
    /// The fingerprint of a certificate's DER encoding.
    pub fn of_der(der: &[u8]) -> ClientCertificate {
        ClientCertificate(sha2::Sha256::digest(der).into())
    }

    /// A configured fingerprint: 64 hex digits, in either case, colons allowed (as
    /// `openssl x509 -fingerprint -sha256` prints it).
    pub fn parse_fingerprint(pin: &str) -> Option<ClientCertificate> {
        let digits: String = pin.chars().filter(|&c| c != ':').collect();
        let mut bytes = [0; 32];
        hex::decode_to_slice(digits, &mut bytes).ok()?;
        Some(ClientCertificate(bytes))
    }

    /// Whether `pins` (from `[mtls]`) name this certificate.
    pub(crate) fn pinned_by(&self, pins: &[String]) -> bool {
        pins.iter()
            .any(|pin| ClientCertificate::parse_fingerprint(pin).as_ref() == Some(self))
    }
}
