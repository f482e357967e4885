//! SCIM errors as data: an HTTP status, the `scimType` RFC 7644 §3.12 defines for it
//! (when it defines one), and a detail that never echoes a value from the request.

use std::fmt;

/// The `scimType` values of RFC 7644 §3.12 (Table 9) this crate gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimType {
    /// The filter syntax is invalid or names what cannot be filtered.
    InvalidFilter,
    /// A value conflicts with a unique one (`userName`, a group's `displayName`).
    Uniqueness,
    /// The request tried to change what cannot change.
    Mutability,
    /// The body is not a SCIM message of the expected kind.
    InvalidSyntax,
    /// A PATCH path is malformed.
    InvalidPath,
    /// A PATCH path or filter matched nothing it could change.
    NoTarget,
    /// A value is missing, of the wrong type, or not acceptable.
    InvalidValue,
}

impl ScimType {
    /// Every type, for reading a code back.
    const ALL: [ScimType; 7] = [
        ScimType::InvalidFilter,
        ScimType::Uniqueness,
        ScimType::Mutability,
        ScimType::InvalidSyntax,
        ScimType::InvalidPath,
        ScimType::NoTarget,
        ScimType::InvalidValue,
    ];

    /// The stable error code Custos gives this refusal (its API's and ledger's form).
    pub fn code(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "scim_invalid_filter",
            ScimType::Uniqueness => "scim_uniqueness",
            ScimType::Mutability => "scim_mutability",
            ScimType::InvalidSyntax => "scim_invalid_syntax",
            ScimType::InvalidPath => "scim_invalid_path",
            ScimType::NoTarget => "scim_no_target",
            ScimType::InvalidValue => "scim_invalid_value",
        }
    }

    /// The type whose [`ScimType::code`] is `code`.
    pub fn from_code(code: &str) -> Option<ScimType> {
        ScimType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
        }
    }
}

/// A refusal of a SCIM request that this crate's checks found (always a 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimError {
    /// What kind of fault it is.
    pub scim_type: ScimType,
    /// What is wrong, without the request's values.
    pub detail: String,
}

impl ScimError {
    pub(crate) fn new(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError {
            scim_type,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.scim_type.as_str(), self.detail)
    }
}

impl std::error::Error for ScimError {}
