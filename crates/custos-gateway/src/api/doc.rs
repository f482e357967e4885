//! The OpenAPI description's shared parts.
//!
//! * Schemas for the values the server checks by hand (ids, free text, phone numbers,
//!   emails, account ids, customer attributes), each written from the same constants as
//!   the check it describes, so the two cannot drift apart.
//! * [`Answers`]: the answers every operation of a kind can give, added in one place
//!   rather than in each handler's attribute: 400 wherever a part of the request can be
//!   malformed, 401 and 503 for a recorded (bearer) request, 413 with a body, 431
//!   always; the error envelope on every error answer; `Cache-Control` on every answer,
//!   the record's headers on a recorded one, `Retry-After` on a 429.
//!
//! Patterns are written for ECMA 262 and Python alike (`\uXXXX` escapes, no lookaround),
//! the dialects of OpenAPI tools.

use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, Ref, RefOr, Schema};

use crate::exchange::{HIDDEN_CHARACTERS, LEDGER_INDEX_HEADER, MAX_ID_CHARS, REQUEST_ID_HEADER};
use crate::ids::IssuedId;

/// Every character Rust's `str::trim` removes (Unicode `White_Space`), as the body of a
/// character class: values the server trims may carry them around what counts.
const WHITESPACE: &str = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// A schema from its JSON form. The forms are literals of this module, so a failure is
/// a bug caught by the tests that build the document.
fn schema(value: serde_json::Value) -> RefOr<Schema> {
    serde_json::from_value(value).expect("a valid schema literal")
}

/// Implements `ToSchema` for a marker type whose schema is the given JSON.
macro_rules! component {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub(crate) struct $name;
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
    let any = format!("[^{HIDDEN_CHARACTERS}]");
    let visible = format!("[^{HIDDEN_CHARACTERS}{WHITESPACE}]");
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

fn issued(kind: IssuedId) -> serde_json::Value {
    json!({
        "type": "string",
        "pattern": kind.pattern(),
        "description": format!("A {} id as Custos issues it: {}", kind.name(), kind.shape()),
    })
}

component!(
    /// A role the default policy knows.
    Role => json!({"type": "string", "enum": crate::api::staff::roles()})
);
component!(
    /// Whether a staff entry may act.
    StaffStatus => json!({"type": "string", "enum": ["active", "suspended"]})
);
component!(
    /// The state of an alert.
    AlertStatus => json!({"type": "string", "enum": crate::api::alerts::STATUSES})
);
component!(
    /// A personal field a reveal may name.
    RevealField => json!({"type": "string", "enum": crate::vault::FIELDS})
);
component!(
    /// The fields a reveal names.
    RevealFields => json!({
        "type": "array",
        "items": {"$ref": "#/components/schemas/RevealField"},
        "minItems": 1,
        "maxItems": crate::vault::FIELDS.len(),
        "uniqueItems": true,
        "description": "Each field once, at least one.",
    })
);
component!(
    /// Revealed values by field name.
    RevealedFields => {
        let value = json!({"type": ["string", "null"], "description": "The full value; null if the customer has none."});
        let properties: serde_json::Map<_, _> =
            crate::vault::FIELDS.iter().map(|f| ((*f).to_owned(), value.clone())).collect();
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
        "maxItems": crate::api::customers::MAX_IMPORT,
        "description": "One NewCustomer per line.",
    })
);
component!(
    /// A channel a contact can come through.
    Channel => json!({"type": "string", "enum": crate::api::cases::CHANNELS})
);
component!(
    /// A staff entry's display name.
    StaffName => text(1, crate::api::staff::MAX_NAME_CHARS, "Display name:")
);
component!(
    /// A customer's full name.
    CustomerName => text(1, crate::vault::MAX_NAME_CHARS, "Full name:")
);
component!(
    /// Why a case is opened, or why fields are revealed.
    Reason => text(1, crate::exchange::MAX_REASON_CHARS, "Reason:")
);
component!(
    /// A step-up justification.
    StepUpReason => text(
        crate::api::customers::STEP_UP_MIN_CHARS,
        crate::api::customers::STEP_UP_MAX_CHARS,
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
    /// The multipart body of a trace.
    TraceUpload => json!({
        "type": "object",
        "properties": {
            "file": {
                "type": "string",
                "format": "binary",
                "contentMediaType": "application/octet-stream",
                "description": "The leaked list: CSV, TSV or plain text in UTF-8, UTF-16 or GB18030, holding phone numbers, emails or account ids.",
            },
        },
        "required": ["file"],
        "description": "One part named file; other parts are ignored.",
    })
);
component!(
    /// A checkpoint with cosignature lines, as a witness sends it back.
    CosignedNote => json!({
        "type": "string",
        "maxLength": crate::api::ledger::MAX_COSIGNED_NOTE,
        "description": "The current checkpoint as served by /ledger/checkpoint, with the witness's cosignature line added (C2SP tlog-cosignature), UTF-8. Whether it is accepted depends on its signatures, which no schema can say.",
    })
);

/// Adds the answers shared by operations of a kind (see the module docs).
pub(crate) struct Answers;

impl utoipa::Modify for Answers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let methods = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ];
            for operation in methods.into_iter().flatten() {
                complete(operation);
            }
        }
    }
}

/// An error answer: the envelope, with `description`.
fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("Error"))),
        )
        .build()
}

/// Adds what `operation` can answer besides what its handler documents.
fn complete(operation: &mut Operation) {
    let recorded = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| error(description).into());
    };
    let reads_request = operation.request_body.is_some()
        || operation
            .parameters
            .as_ref()
            .is_some_and(|parameters| !parameters.is_empty());
    if recorded || reads_request {
        // The framework refuses what cannot be read (`invalid_path`, `invalid_query`); a
        // recorded request may carry a simulated time the server does not accept.
        add(
            "400",
            "a part of the request is malformed (`invalid_path`, `invalid_query`, `invalid_id`, ...), or it carried a simulated time this server does not accept (`simulated_clock_disabled`)",
        );
    }
    if recorded {
        add(
            "401",
            "`unauthenticated`: no bearer token, or one that is unknown or revoked",
        );
        add(
            "503",
            "`ledger_unavailable`: the access record could not be made durable, so the request was refused",
        );
    }
    if operation.request_body.is_some() {
        add(
            "413",
            "`payload_too_large`: the body is over the server's limit",
        );
    }
    add(
        "431",
        "`headers_too_large`: the request headers are over 16 KiB in all",
    );
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if status.starts_with(['4', '5']) && response.content.is_empty() {
            response.content.insert(
                "application/json".to_owned(),
                Content::new(Some(Ref::from_schema_name("Error"))).into(),
            );
        }
        // Set on every answer by `api::no_store`.
        response.headers.insert(
            "cache-control".to_owned(),
            HeaderBuilder::new()
                .schema(Some(schema(
                    json!({"type": "string", "pattern": "^no-store$"}),
                )))
                .description(Some(
                    "`no-store`: no answer may be kept by a browser, a proxy or a client cache.",
                ))
                .build()
                .into(),
        );
        if recorded {
            response.headers.insert(
                REQUEST_ID_HEADER.to_owned(),
                HeaderBuilder::new()
                    .schema(Some(schema(json!({"type": "string", "pattern": "^req_[0-9a-f]{24}$"}))))
                    .description(Some("The request's id in its access record (every answer but a framework refusal)."))
                    .build()
                    .into(),
            );
            response.headers.insert(
                LEDGER_INDEX_HEADER.to_owned(),
                HeaderBuilder::new()
                    .schema(Some(schema(json!({"type": "integer", "minimum": 0}))))
                    .description(Some("Ledger index of the request's access record: ask for its inclusion proof with it (every answer but a framework refusal or 503)."))
                    .build()
                    .into(),
            );
        }
        if status == "429" {
            response.headers.insert(
                "Retry-After".to_owned(),
                HeaderBuilder::new()
                    .schema(Some(schema(json!({"type": "integer", "minimum": 1}))))
                    .description(Some("Seconds until the quota admits the request again."))
                    .build()
                    .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole document builds (every schema literal is one utoipa reads) and says
    /// what it means to: an unknown keyword would be dropped silently on the way.
    #[test]
    fn every_component_survives_the_round_trip() {
        let document = serde_json::to_value(super::super::openapi()).unwrap();
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for name in [
            "Id",
            "CustomerId",
            "CaseId",
            "Phone",
            "Email",
            "AccountId",
            "Attributes",
            "AttributeValue",
            "SearchKey",
            "RevealFields",
            "TraceUpload",
            "Error",
        ] {
            assert!(schemas.contains_key(name), "{name} missing");
        }
        assert_eq!(schemas["SearchKey"]["maxProperties"], 1);
        assert_eq!(schemas["RevealFields"]["uniqueItems"], true);
        assert_eq!(
            schemas["Attributes"]["propertyNames"]["pattern"],
            format!("^[^{HIDDEN_CHARACTERS}]*$")
        );
    }

    /// Strings around every boundary of the character classes the patterns use.
    fn samples() -> Vec<String> {
        let mut chars: Vec<char> = (0u32..0x0300).filter_map(char::from_u32).collect();
        chars.extend(
            [
                0x1680, 0x1fff, 0x2000, 0x200a, 0x200b, 0x200f, 0x2010, 0x2015, 0x2027, 0x2028,
                0x2029, 0x202a, 0x202e, 0x202f, 0x2030, 0x205f, 0x2065, 0x2066, 0x2069, 0x206a,
                0x2212, 0x3000, 0x4e2d, 0xfeff, 0xff08, 0xff09, 0xff0b, 0xff0d, 0xff0e, 0xff10,
                0xff19, 0x1f600,
            ]
            .into_iter()
            .filter_map(char::from_u32),
        );
        let mut out = vec![String::new(), " ".into(), "a b".into(), "a@b.c".into()];
        for c in chars {
            for s in [
                format!("{c}"),
                format!("a{c}b"),
                format!(" {c}"),
                format!("{c} "),
                format!("{c}1380013800{c}"),
                format!("13800138000{c}"),
                format!("zw{c}@example.com"),
                format!("zw@exa{c}mple.com"),
                format!("{c}zw@example.com{c}"),
                format!("ACC{c}"),
            ] {
                out.push(s);
            }
        }
        out
    }

    /// Each pattern accepts exactly what the server's check accepts, character by
    /// character (lengths are held apart, by `maxLength` and the checks alike).
    #[test]
    fn patterns_accept_what_the_checks_accept() {
        use crate::exchange::{valid_id, valid_text_between};
        let document = serde_json::to_value(super::super::openapi()).unwrap();
        let schemas = &document["components"]["schemas"];
        let pattern = |name: &str| {
            regex::Regex::new(schemas[name]["pattern"].as_str().expect(name)).expect(name)
        };
        type Check<'a> = &'a dyn Fn(&str) -> bool;
        let cases: [(&str, Check); 7] = [
            ("Id", &|s| valid_id("x", s).is_ok()),
            ("CustomerId", &|s| IssuedId::Customer.is_well_formed(s)),
            ("Reason", &|s| valid_text_between("x", s, 1, 1000).is_ok()),
            ("StepUpReason", &|s| {
                valid_text_between("x", s, 20, 1000).is_ok()
            }),
            ("AccountId", &|s| {
                custos_crypto::normalize_account_id(s).is_ok()
            }),
            ("Email", &|s| custos_crypto::normalize_email(s).is_ok()),
            // A phone number's validity is more than its characters: the pattern says
            // which characters, and refuses no number the server takes.
            ("Phone", &|s| {
                custos_crypto::normalize_phone(s, "CN").is_ok()
            }),
        ];
        let long = "This reveal is needed for the refund".to_owned();
        for (name, check) in cases {
            let re = pattern(name);
            for s in samples()
                .into_iter()
                .chain([long.clone(), format!(" {long}\u{3000}")])
            {
                let (matches, accepted) = (re.is_match(&s), check(&s));
                if name == "Phone" {
                    assert!(
                        matches || !accepted,
                        "{name}: {s:?} accepted, not described"
                    );
                } else {
                    assert_eq!(matches, accepted, "{name}: {s:?}");
                }
            }
        }
    }
}
