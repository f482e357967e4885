//! The HTTP API's JSON request bodies: `custos_service::input::parse_json` into each body
//! type the gateway reads (the first byte picks the type). A refusal is a 400 with one of
//! the three body codes and a message from a fixed template, never quoting the input.
#![no_main]

use custos_service::input::parse_json;
use custos_service::{Code, ErrorKind, ServiceError};
use custos_service::{approvals, cases, contact, customers, inbound, staff, transparency};
use libfuzzer_sys::fuzz_target;

/// Parses `body` as `T`, keeping only whether and how it failed.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(), ServiceError> {
    parse_json::<T>(body).map(drop)
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let result = match pick % 11 {
        0 => parse::<custos_service::vault::NewCustomer>(body),
        1 => parse::<customers::RevealRequest>(body),
        2 => parse::<cases::NewCase>(body),
        3 => parse::<inbound::NewContact>(body),
        4 => parse::<approvals::NewAccessRequest>(body),
        5 => parse::<approvals::Decision>(body),
        6 => parse::<approvals::NewBreakGlass>(body),
        7 => parse::<contact::ContactRequest>(body),
        8 => parse::<contact::ResolveRequest>(body),
        9 => parse::<Option<transparency::LinkRequest>>(body),
        _ => parse::<staff::NewStaff>(body),
    };
    if let Err(e) = result {
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let template = match e.code {
            Code::MalformedJson => "request body is not valid JSON (line ",
            Code::UnknownField => "unknown field in request body at line ",
            Code::InvalidBody if e.message.starts_with("request body lacks") => {
                "request body lacks the required field `"
            }
            Code::InvalidBody => "request body has a missing or mistyped field at line ",
            other => panic!("unexpected code {}", other.as_str()),
        };
        assert!(e.message.starts_with(template), "{}", e.message);
        assert!(
            e.message.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
            "{}",
            e.message
        );
    }
});
