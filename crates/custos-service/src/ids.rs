//! The ids Custos issues itself, and their one shape.
//!
//! Customer, case, contact and access request ids are made here and nowhere else: a fixed prefix and 16 lowercase
//! hex digits of randomness. A request naming one is checked against that shape before
//! the id may reach an access record, because the ledger is append-only: a phone number
//! or an email sent where an id belongs (`GET /v1/customers/13955554444`) must never be
//! written into it. Anything else is refused as `invalid_id` and recorded as malformed,
//! without its value (see [`crate::input::Exchange::name_customer`]).

use crate::ServiceError;
use crate::error::Code;

/// Prefix of customer ids.
pub const CUSTOMER_PREFIX: &str = "cus_";
/// Prefix of case ids.
pub const CASE_PREFIX: &str = "case_";
/// Prefix of contact ids.
pub const CONTACT_PREFIX: &str = "contact_";
/// Prefix of access request (and break-glass) ids.
pub const GRANT_PREFIX: &str = "req_";
/// Hex digits after the prefix (8 random bytes).
const HEX_DIGITS: usize = 16;

/// A kind of id Custos issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuedId {
    /// `cus_` + 16 hex digits.
    Customer,
    /// `case_` + 16 hex digits.
    Case,
    /// `contact_` + 16 hex digits.
    Contact,
    /// `req_` + 16 hex digits: an access request or a break-glass.
    Grant,
}

impl IssuedId {
    fn prefix(self) -> &'static str {
        match self {
            IssuedId::Customer => CUSTOMER_PREFIX,
            IssuedId::Case => CASE_PREFIX,
            IssuedId::Contact => CONTACT_PREFIX,
            IssuedId::Grant => GRANT_PREFIX,
        }
    }

    /// The word used in errors and in the record of a malformed id.
    pub fn name(self) -> &'static str {
        match self {
            IssuedId::Customer => "customer",
            IssuedId::Case => "case",
            IssuedId::Contact => "contact",
            IssuedId::Grant => "access request",
        }
    }

    /// This kind's shape as a regular expression (for the OpenAPI description).
    pub fn pattern(self) -> String {
        format!("^{}[0-9a-f]{{{HEX_DIGITS}}}$", self.prefix())
    }

    /// This kind's shape in words.
    pub fn shape(self) -> String {
        format!(
            "{} followed by {HEX_DIGITS} lowercase hex digits",
            self.prefix()
        )
    }

    /// A fresh random id of this kind.
    pub fn generate(self) -> String {
        format!(
            "{}{}",
            self.prefix(),
            hex::encode(custos_crypto::random_bytes::<8>())
        )
    }

    /// Whether `id` has this kind's shape exactly (lowercase hex, as issued).
    pub fn is_well_formed(self, id: &str) -> bool {
        id.strip_prefix(self.prefix()).is_some_and(|hex| {
            hex.len() == HEX_DIGITS && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
    }

    /// `Ok` for a well-formed id; else 400 `invalid_id`, without echoing the value.
    pub fn check(self, id: &str) -> Result<(), ServiceError> {
        if self.is_well_formed(id) {
            Ok(())
        } else {
            Err(ServiceError::bad_request(
                Code::InvalidId,
                format!("{} id must be {}", self.name(), self.shape()),
            ))
        }
    }
}

/// A fresh customer id.
pub fn new_customer_id() -> String {
    IssuedId::Customer.generate()
}

/// A fresh case id.
pub fn new_case_id() -> String {
    IssuedId::Case.generate()
}

/// A fresh contact id.
pub fn new_contact_id() -> String {
    IssuedId::Contact.generate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_well_formed_and_nothing_else_is() {
        for kind in [
            IssuedId::Customer,
            IssuedId::Case,
            IssuedId::Contact,
            IssuedId::Grant,
        ] {
            let id = kind.generate();
            assert!(kind.is_well_formed(&id), "{id}");
            assert!(kind.check(&id).is_ok());
        }
        let bad = [
            "13955554444",
            "cus_13955554444",
            "cus_0123456789ABCDEF",
            "cus_0123456789abcde",
            "cus_0123456789abcdef0",
            "case_0123456789abcdef",
            "zhang@example.com",
            "",
            "cus_",
            "cus_0123456789abcdeg",
            "cus_0123456789abcd\u{0}f",
        ];
        for id in bad {
            assert!(!IssuedId::Customer.is_well_formed(id), "{id:?}");
            let e = IssuedId::Customer.check(id).unwrap_err();
            assert_eq!(e.code, "invalid_id");
            assert!(!e.message.contains("1395555"), "{}", e.message);
        }
        assert!(IssuedId::Case.is_well_formed("case_0123456789abcdef"));
        assert!(!IssuedId::Case.is_well_formed("cus_0123456789abcdef"));
    }
}
