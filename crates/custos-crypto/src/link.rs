//! Customer access links: a signed, expiring token that lets one customer see
//! who accessed their record, and nothing else.
//!
//! Format: `cl1.<customer id>.<expiry, unix ms>.<tag>`, where the tag is the
//! base64url (no padding) of HMAC-SHA256(link key, `cl1` || 0x00 || customer
//! id || 0x00 || expiry). Customer ids are opaque (`cus_…`), never personal
//! data, and hold no `.`; the whole token is URL-safe.

use base64::Engine as _;

use crate::envelope::{Keyring, hmac_sha256};

/// Version prefix of every link token.
const PREFIX: &str = "cl1";

/// Why a link token was refused. Carries nothing of the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link token, or its signature does not verify.
    #[error("the customer access link is not valid")]
    Invalid,
    /// A valid link whose time is over.
    #[error("the customer access link has expired; ask for a new one")]
    Expired,
}

impl LinkError {
    /// A stable machine-readable code: `link_invalid` or `link_expired`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            LinkError::Invalid => "link_invalid",
            LinkError::Expired => "link_expired",
        }
    }
}

impl Keyring {
    /// Signs a link for `customer_id` that is valid until `expires_at` (unix ms).
    #[must_use]
    pub fn customer_link(&self, customer_id: &str, expires_at: i64) -> String {
        let tag = self.link_tag(customer_id, expires_at);
        format!(
            "{PREFIX}.{customer_id}.{expires_at}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// Checks a link token at time `now` (unix ms); returns the customer id and
    /// the expiry. The signature is checked before the time, so a forged token
    /// is `Invalid` whatever time it claims.
    ///
    /// # Errors
    ///
    /// [`LinkError::Invalid`] for anything not signed by this keyring,
    /// [`LinkError::Expired`] for a genuine link past its time.
    pub fn open_customer_link(&self, token: &str, now: i64) -> Result<(String, i64), LinkError> {
        let mut parts = token.split('.');
        let (Some(PREFIX), Some(id), Some(expiry), Some(tag), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(LinkError::Invalid);
        };
        let expires_at: i64 = expiry.parse().map_err(|_| LinkError::Invalid)?;
        let given = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LinkError::Invalid)?;
        let expected = self.link_tag(id, expires_at);
        if !crate::constant_time_eq(&given, &expected) || id.is_empty() {
            return Err(LinkError::Invalid);
        }
        if now >= expires_at {
            return Err(LinkError::Expired);
        }
        Ok((id.to_owned(), expires_at))
    }

    fn link_tag(&self, customer_id: &str, expires_at: i64) -> [u8; 32] {
        hmac_sha256(
            &self.link_key,
            &[
                PREFIX.as_bytes(),
                &[0],
                customer_id.as_bytes(),
                &[0],
                expires_at.to_string().as_bytes(),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    fn keyring(byte: u8) -> Keyring {
        Keyring::new(&MasterKey::from_bytes([byte; 32]))
    }

    #[test]
    fn a_link_opens_for_its_customer_until_it_expires() {
        let k = keyring(7);
        let link = k.customer_link("cus_abc", 1_000);
        assert_eq!(
            k.open_customer_link(&link, 999),
            Ok(("cus_abc".to_owned(), 1_000))
        );
        assert_eq!(k.open_customer_link(&link, 1_000), Err(LinkError::Expired));
    }

    #[test]
    fn a_changed_or_foreign_link_is_invalid_whatever_time_it_claims() {
        let k = keyring(7);
        let link = k.customer_link("cus_abc", 1_000);
        // Another customer, a later expiry, another key, garbage: all invalid.
        let other_customer = link.replace("cus_abc", "cus_abd");
        let later = link.replace(".1000.", ".9999999.");
        for bad in [
            other_customer.as_str(),
            later.as_str(),
            "cl1.cus_abc.1000.AAAA",
            "cl1.cus_abc.1000",
            "",
            "cl2.cus_abc.1000.x.y",
        ] {
            assert_eq!(
                k.open_customer_link(bad, 0),
                Err(LinkError::Invalid),
                "{bad}"
            );
        }
        assert_eq!(
            keyring(8).open_customer_link(&link, 0),
            Err(LinkError::Invalid)
        );
    }

    #[test]
    fn pseudonyms_are_stable_per_person_and_differ_between_people() {
        let k = keyring(7);
        assert_eq!(k.staff_pseudonym("ag-1"), k.staff_pseudonym("ag-1"));
        assert_ne!(k.staff_pseudonym("ag-1"), k.staff_pseudonym("ag-2"));
        assert_ne!(
            k.staff_pseudonym("ag-1"),
            keyring(8).staff_pseudonym("ag-1")
        );
        assert!(k.staff_pseudonym("ag-1").starts_with("staff-"));
    }
}
