//! Customer access links: a signed, expiring token that lets one customer see
//! who accessed their record, and nothing else.
//!
//! Format: `cl1.<customer id>.<expiry, unix ms>.<tag>`, where the tag is the
//! base64url (no padding) of HMAC-SHA256(link key, `cl1` || 0x00 || customer
//! id || 0x00 || expiry). Customer ids are opaque (`cus_…`), never personal
//! data, and hold no `.`; the whole token is URL-safe.
//!
//! Each link has exactly one spelling: the expiry in plain decimal (no sign, no
//! leading zero) and the tag in canonical base64url. A token whose signature would
//! verify under another spelling of the same fields is refused as
//! [`LinkError::NotCanonical`], so one link is always one string (it can be recognised,
//! e.g. as already used, by its exact text).

use base64::Engine as _;

use crate::envelope::Keyring;
use crate::mac::hmac_sha256;

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
    /// Fields of a genuine link written in another spelling than the issued one.
    #[error("the customer access link is not in its issued form; open it exactly as given")]
    NotCanonical,
}

impl LinkError {
    /// A stable machine-readable code: `link_invalid`, `link_expired` or
    /// `link_not_canonical`.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            LinkError::Invalid => "link_invalid",
            LinkError::Expired => "link_expired",
            LinkError::NotCanonical => "link_not_canonical",
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
    /// [`LinkError::NotCanonical`] for a genuine link spelt otherwise than issued,
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
        // `parse` also reads `+5`, `05`: the tag signs the value, so only the exact
        // issued text is accepted. (The base64 decoder already refuses non-canonical
        // tags.)
        if expiry != expires_at.to_string() {
            return Err(LinkError::NotCanonical);
        }
        if now >= expires_at {
            return Err(LinkError::Expired);
        }
        Ok((id.to_owned(), expires_at))
    }

    fn link_tag(&self, customer_id: &str, expires_at: i64) -> [u8; 32] {
        hmac_sha256(
            self.link_key(),
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
    fn a_genuine_link_in_another_spelling_is_refused() {
        let k = keyring(7);
        let link = k.customer_link("cus_abc", 1_000);
        for respelt in [".+1000.", ".01000.", ".0001000."] {
            let other = link.replace(".1000.", respelt);
            assert_eq!(
                k.open_customer_link(&other, 0),
                Err(LinkError::NotCanonical),
                "{other}"
            );
        }
        // A tag with other trailing bits decodes to the same bytes in lenient decoders.
        let mut bits = link.clone();
        let last = bits.pop().unwrap();
        bits.push(if last == 'A' { 'B' } else { 'A' });
        assert!(k.open_customer_link(&bits, 0).is_err());
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
