//! The OpenAPI description's HTTP parts (the value schemas are the service's:
//! `custos_service::schema`).
//!
//! * [`Answers`]: the answers every operation of a kind can give, added in one place
//!   rather than in each handler's attribute: 400 wherever a part of the request can be
//!   malformed, 401 and 503 for a recorded (bearer) request, 413 with a body, 431
//!   always; the error envelope on every error answer; `Cache-Control` on every answer,
//!   the record's headers on a recorded one, `Retry-After` on a 429.
//! * The multipart body of a trace.

use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Content, Ref, RefOr, Schema};

use custos_service::schema::schema;

use crate::record::{LEDGER_INDEX_HEADER, REQUEST_ID_HEADER};

/// The multipart body of a trace.
pub(crate) struct TraceUpload;
impl utoipa::PartialSchema for TraceUpload {
    fn schema() -> RefOr<Schema> {
        schema(json!({
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
        }))
    }
}
impl utoipa::ToSchema for TraceUpload {}

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
            "`unauthenticated`: no bearer token (nor a client certificate pinned in `[mtls]`), or one that is unknown or revoked; `client_certificate_required`: the principal is served only over mutual TLS with its pinned certificate; an access token of the identity provider (`[idp]`) that does not pass: `token_expired`, `token_wrong_audience`, `token_bad_signature`, `identity_mismatch`, …",
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
    use custos_service::ids::IssuedId;
    use custos_service::input::HIDDEN_CHARACTERS;

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
            "AppAssertion",
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
        use custos_service::input::{valid_id, valid_text_between};
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
