//! Schemas (OpenAPI) for the values the service checks by hand (ids, free text, phone
//! numbers, emails, account ids, customer attributes), each written from the same
//! constants as the check it describes ([`crate::input`], [`crate::ids`]), so the two
//! cannot drift apart.
//!
//! Patterns are written for ECMA 262 and Python alike (`\uXXXX` escapes, no lookaround),
//! the dialects of OpenAPI tools.

use serde_json::json;
use utoipa::openapi::{RefOr, Schema};

use crate::ids::IssuedId;
use crate::input::{
    ALERT_STATUSES, HIDDEN_CHARACTERS, MAX_COSIGNED_NOTE, MAX_EMAIL_TEXT_CHARS, MAX_ID_CHARS,
    MAX_IMPORT, MAX_REASON_CHARS, MAX_SMS_TEXT_CHARS, MAX_STAFF_NAME_CHARS, MAX_SUBJECT_CHARS,
    MESSAGE_HIDDEN_CHARACTERS, STEP_UP_MAX_CHARS, STEP_UP_MIN_CHARS,
};

/// Every character Rust's `str::trim` removes (Unicode `White_Space`), as the body of a
/// character class: values the server trims may carry them around what counts.
const WHITESPACE: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A schema from its JSON form. The forms are literals of this crate and of the
/// transport's description, so a failure is a bug caught by the tests that build the
/// document.
pub fn schema(value: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema literal")
}

/// Implements `ToSchema` for a marker type whose schema is the given JSON.
macro_rules! component {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                schema($schema)
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

/// The pattern of free text the server accepts (`valid_text_between`): no hidden
/// character anywhere, and at least `min` characters between the first and the last
/// that are not blank.
fn text_pattern(min: usize) -> String {
    text_pattern_without(HIDDEN_CHARACTERS, min)
}

/// [`text_pattern`] with `hidden` as the characters refused.
fn text_pattern_without(hidden: &str, min: usize) -> String {
    let any = format!("[^{hidden}]");
    let visible = format!("[^{hidden}{WHITESPACE}]");
    match min {
        ..=1 => format!("^{any}*{visible}{any}*$"),
        n => format!("^{any}*{visible}{any}{{{},}}{visible}{any}*$", n - 2),
    }
}

/// Free text of `min` to `max` characters (blanks around it count toward `max` only).
fn text(min: usize, max: usize, description: &str) -> serde_json::Value {
    json!({
        "type": "string",
        "minLength": min,
        "maxLength": max,
        "pattern": text_pattern(min),
        "description": format!("{description} {min} to {max} characters, at least {min} of them between the first and the last that are not blank; no control, direction or zero-width characters."),
    })
}

component!(
    /// Ids of staff, organisations, tokens and alerts (`valid_id`).
    Id => json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ID_CHARS,
        "pattern": format!("^[A-Za-z0-9_.:-]{{1,{MAX_ID_CHARS}}}$"),
        "description": format!("1 to {MAX_ID_CHARS} characters of A-Z, a-z, 0-9, _ . : -"),
    })
);
component!(
    /// Customer ids, as the server issues them.
    CustomerId => issued(IssuedId::Customer)
);
component!(
    /// Case ids, as the server issues them.
    CaseId => issued(IssuedId::Case)
);
component!(
    /// Contact ids, as the server issues them.
    ContactId => issued(IssuedId::Contact)
);
component!(
    /// Access request ids, as the server issues them.
    GrantId => issued(IssuedId::Grant)
);

fn issued(kind: IssuedId) -> serde_json::Value {
    json!({
        "type": "string",
        "pattern": kind.pattern(),
        "description": format!("A {} id as Custos issues it: {}", kind.name(), kind.shape()),
    })
}

component!(
    /// A role the default policy knows.
    Role => json!({"type": "string", "enum": custos_types::Role::ALL})
);
component!(
    /// Whether a staff entry may act.
    StaffStatus => json!({"type": "string", "enum": ["active", "suspended"]})
);
component!(
    /// The state of an alert.
    AlertStatus => json!({"type": "string", "enum": ALERT_STATUSES})
);
component!(
    /// A personal field a reveal may name.
    RevealField => json!({"type": "string", "enum": crate::input::FIELDS})
);
component!(
    /// The fields a reveal names.
    RevealFields => json!({
        "type": "array",
        "items": {"$ref": "#/components/schemas/RevealField"},
        "minItems": 1,
        "maxItems": crate::input::FIELDS.len(),
        "uniqueItems": true,
        "description": "Each field once, at least one.",
    })
);
component!(
    /// Revealed values by field name.
    RevealedFields => {
        let value = json!({"type": ["string", "null"], "description": "The full value; null if the customer has none."});
        let properties: serde_json::Map<_, _> =
            crate::input::FIELDS.iter().map(|f| ((*f).to_owned(), value.clone())).collect();
        json!({
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
            "description": "Each field named in the request, with its full value.",
        })
    }
);
component!(
    /// The one key a search is by: a query parameter named after it.
    SearchKey => json!({
        "type": "object",
        "properties": {
            "phone": {"$ref": "#/components/schemas/Phone"},
            "email": {"$ref": "#/components/schemas/Email"},
            "account_id": {"$ref": "#/components/schemas/AccountId"},
        },
        "additionalProperties": false,
        "minProperties": 1,
        "maxProperties": 1,
        "description": "Exactly one of phone, email, account_id.",
    })
);
component!(
    /// An NDJSON body of new customers.
    NdjsonCustomers => json!({
        "type": "array",
        "items": {"$ref": "#/components/schemas/NewCustomer"},
        "minItems": 1,
        "maxItems": MAX_IMPORT,
        "description": "One NewCustomer per line.",
    })
);
component!(
    /// A channel a contact can come through.
    Channel => json!({
        "type": "string",
        "enum": custos_types::Channel::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
    })
);
component!(
    /// A staff entry's display name.
    StaffName => text(1, MAX_STAFF_NAME_CHARS, "Display name:")
);
component!(
    /// A customer's full name.
    CustomerName => text(1, crate::input::MAX_CUSTOMER_NAME_CHARS, "Full name:")
);
component!(
    /// Why a case is opened, or why fields are revealed.
    Reason => text(1, MAX_REASON_CHARS, "Reason:")
);
component!(
    /// A relay a contact goes through.
    ContactChannel => json!({"type": "string", "enum": custos_types::ContactChannel::ALL})
);
component!(
    /// The subject of an email sent through the relay.
    Subject => text(1, MAX_SUBJECT_CHARS, "Subject:")
);

/// The text of a message sent through a relay: line breaks allowed.
fn message(max: usize, what: &str) -> serde_json::Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max,
        "pattern": text_pattern_without(MESSAGE_HIDDEN_CHARACTERS, 1),
        "description": format!("{what} 1 to {max} characters, at least one not blank; line breaks allowed, no other control, direction or zero-width characters."),
    })
}

component!(
    /// The text of an email sent through the relay.
    EmailText => message(MAX_EMAIL_TEXT_CHARS, "The email's text:")
);
component!(
    /// The text of an SMS sent through the relay.
    SmsText => message(MAX_SMS_TEXT_CHARS, "The SMS's text:")
);
component!(
    /// A contact's body: each channel with the message it carries (none for a call).
    ContactBody => {
        let case = json!({"$ref": "#/components/schemas/CaseId", "description": "An open case assigned to the caller for this customer."});
        let none = json!({"type": "null"});
        let variant = |channel: &str, subject: serde_json::Value, text: serde_json::Value, required: &[&str]| json!({
            "type": "object",
            "properties": {"case": case, "channel": {"type": "string", "enum": [channel]}, "subject": subject, "text": text},
            "required": required,
            "additionalProperties": false,
        });
        json!({
            "description": "`call`: no message (dial the privacy number answered). `email`: a subject and a text. `sms`: a text. The message is sent as written and neither stored nor recorded.",
            "oneOf": [
                variant("call", none.clone(), none.clone(), &["case", "channel"]),
                variant("email", json!({"$ref": "#/components/schemas/Subject"}), json!({"$ref": "#/components/schemas/EmailText"}), &["case", "channel", "subject", "text"]),
                variant("sms", none, json!({"$ref": "#/components/schemas/SmsText"}), &["case", "channel", "text"]),
            ],
        })
    }
);
component!(
    /// A phone number in E.164 form: a privacy number of the pool, a resolved number.
    E164 => json!({
        "type": "string",
        "pattern": "^\\+[1-9][0-9]{1,14}$",
        "examples": ["+8610000001"],
        "description": "+, a country code not starting with 0, at most 15 digits in all.",
    })
);
component!(
    /// The customer app's signed assertion: a compact JWT (`custos_jwt`'s shape and
    /// length limit).
    AppAssertion => json!({
        "type": "string",
        "maxLength": custos_jwt::MAX_TOKEN_BYTES,
        "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$",
        "description": format!("A compact JWS: three base64url parts joined by dots, at most {} characters, signed by the app's identity provider with an accepted asymmetric algorithm (never none or HMAC).", custos_jwt::MAX_TOKEN_BYTES),
    })
);
component!(
    /// A step-up justification.
    StepUpReason => text(
        STEP_UP_MIN_CHARS,
        STEP_UP_MAX_CHARS,
        "Why this reveal is needed despite the restriction:"
    )
);

/// Characters a phone number may hold (`custos_crypto::normalize_phone`).
const PHONE_CHARACTERS: &str =
    r"0-9+().\- \t\u3000\xa0\uff10-\uff19\uff0b\uff0d\u2010-\u2015\u2212\uff08\uff09\uff0e";

component!(
    /// A phone number in any common notation.
    Phone => json!({
        "type": "string",
        "format": "phone",
        "examples": ["13800138000", "+86 138 0013 8000", "+1 650 253 0000"],
        "pattern": format!("^[{WHITESPACE}]*[{PHONE_CHARACTERS}]{{1,{}}}[{WHITESPACE}]*$", custos_crypto::MAX_PHONE_CHARS),
        "description": format!("A phone number that is valid in its numbering plan (format `phone`): at most {} digits (ASCII or full-width), spaces, + ( ) . and dashes, blanks around it ignored. Without a country code it is read in the server's default region.", custos_crypto::MAX_PHONE_CHARS),
    })
);
component!(
    /// An email address.
    Email => {
        // Blank and control characters, and the @, are refused inside an address.
        let not = r"\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000@";
        json!({
            "type": "string",
            "examples": ["zhang.wei@example.com"],
            "maxLength": custos_crypto::MAX_EMAIL_CHARS,
            "pattern": format!(r"^[{WHITESPACE}]*[^{not}]+@[^{not}.]+(\.[^{not}.]+)+[{WHITESPACE}]*$"),
            "description": "An email address as the server reads it (looser than RFC 5322, so no `format`): one @, a domain with a dot and no empty label, no blank or control character inside; blanks around it ignored. Compared without regard to case.",
        })
    }
);
component!(
    /// The company's own account id.
    AccountId => json!({
        "type": "string",
        "pattern": format!("^[{WHITESPACE}]*[A-Za-z0-9_-]{{1,{}}}[{WHITESPACE}]*$", custos_crypto::MAX_ACCOUNT_ID_CHARS),
        "examples": ["ACC-0000000001"],
        "description": format!("1 to {} characters of A-Z, a-z, 0-9, _ and -, blanks around them ignored; compared without regard to case.", custos_crypto::MAX_ACCOUNT_ID_CHARS),
    })
);
component!(
    /// One value of a customer's free attributes: any JSON whose strings (keys and
    /// values, at any depth) hold no control, direction or zero-width character.
    AttributeValue => {
        let plain = format!("^[^{HIDDEN_CHARACTERS}]*$");
        json!({
            "description": "Any JSON value; its strings, keys included, hold no control, direction or zero-width character.",
            "anyOf": [
                {"type": "string", "pattern": plain},
                {"type": ["number", "boolean", "null"]},
                {"type": "array", "items": {"$ref": "#/components/schemas/AttributeValue"}},
                {
                    "type": "object",
                    "propertyNames": {"type": "string", "pattern": plain},
                    "additionalProperties": {"$ref": "#/components/schemas/AttributeValue"},
                },
            ],
        })
    }
);
component!(
    /// A customer's free attributes.
    Attributes => json!({
        "type": "object",
        "description": "Free attributes, sealed like every other field; only their names are ever shown.",
        "propertyNames": {"type": "string", "pattern": format!("^[^{HIDDEN_CHARACTERS}]*$")},
        "additionalProperties": {"$ref": "#/components/schemas/AttributeValue"},
    })
);

component!(
    /// A checkpoint with cosignature lines, as a witness sends it back.
    CosignedNote => json!({
        "type": "string",
        "maxLength": MAX_COSIGNED_NOTE,
        "description": "The current checkpoint as served by /ledger/checkpoint, with the witness's cosignature line added (C2SP tlog-cosignature), UTF-8. Whether it is accepted depends on its signatures, which no schema can say.",
    })
);
