//! The rules every value from outside meets before the service acts on it: ids, free
//! text, JSON documents. Errors name the field and the rule, never the value (it may be
//! personal data).

use crate::error::Code;
use custos_types::Channel;
use serde::de::DeserializeOwned;

use crate::error::ServiceError;

/// Parses a JSON body into `T`. The error names the position and kind of problem, never
/// the values (serde's messages may quote them).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(bytes).map_err(|e| json_error(&e, None))
}

/// Error for a JSON document that failed to parse; `line` overrides serde's line (NDJSON).
pub fn json_error(e: &serde_json::Error, line: Option<usize>) -> ServiceError {
    let line = line.unwrap_or(e.line());
    if e.is_data() && e.to_string().starts_with("unknown field") {
        ServiceError::bad_request(
            Code::UnknownField,
            format!(
                "unknown field in request body at line {line}, column {}",
                e.column()
            ),
        )
    } else if let Some(field) = missing_field(e) {
        ServiceError::bad_request(
            Code::InvalidBody,
            format!("request body lacks the required field `{field}` (line {line})"),
        )
    } else if e.is_data() {
        ServiceError::bad_request(
            Code::InvalidBody,
            format!(
                "request body has a missing or mistyped field at line {line}, column {}",
                e.column()
            ),
        )
    } else {
        ServiceError::bad_request(
            Code::MalformedJson,
            format!(
                "request body is not valid JSON (line {line}, column {})",
                e.column()
            ),
        )
    }
}

/// The name of a required field serde found missing. It comes from our own schema, never
/// from the request, so it may be echoed (checked to be a plain field name anyway).
fn missing_field(e: &serde_json::Error) -> Option<String> {
    let text = e.to_string();
    let name = text.strip_prefix("missing field `")?.split('`').next()?;
    (e.is_data()
        && !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    .then(|| name.to_owned())
}

/// Longest display name of a staff entry.
pub const MAX_STAFF_NAME_CHARS: usize = 100;

/// The states of an alert.
pub const ALERT_STATUSES: [&str; 3] = ["open", "acknowledged", "dismissed"];

/// Most customers one import request may carry.
pub const MAX_IMPORT: usize = 100_000;

/// Shortest accepted step-up justification: a sentence, not a token word.
pub const STEP_UP_MIN_CHARS: usize = 20;

/// Longest accepted step-up justification.
pub const STEP_UP_MAX_CHARS: usize = 1000;

/// Largest cosigned checkpoint accepted (a checkpoint plus a few dozen signatures).
pub const MAX_COSIGNED_NOTE: usize = 16 * 1024;

/// Personal fields a reveal may name, in the order they are shown.
pub const FIELDS: [&str; 4] = ["name", "phone", "email", "account_id"];

/// Longest customer name.
pub const MAX_CUSTOMER_NAME_CHARS: usize = 200;

/// Longest id of staff, orgs, tokens and alerts.
pub const MAX_ID_CHARS: usize = 64;

/// Longest reason (of a case, of a reveal).
pub const MAX_REASON_CHARS: usize = 500;

/// The [`Channel`] of `word`, or `invalid_channel`.
pub fn valid_channel(word: &str) -> Result<Channel, ServiceError> {
    word.parse().map_err(|_| {
        let words: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        ServiceError::bad_request(
            Code::InvalidChannel,
            format!("channel must be one of {}", words.join(", ")),
        )
    })
}

/// Ids of staff, orgs, tokens and alerts: 1–64 of `[A-Za-z0-9_.:-]`.
pub fn valid_id(what: &str, id: &str) -> Result<(), ServiceError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::bad_request(
            Code::InvalidId,
            format!("{what} id must be 1 to 64 characters of A-Z, a-z, 0-9, _ . : -"),
        ))
    }
}

/// Checks a free-text field's length without echoing it.
pub fn valid_text(what: &str, text: &str, max_chars: usize) -> Result<(), ServiceError> {
    valid_text_between(what, text, 1, max_chars)
}

/// Checks, without echoing it, that a free-text field has at most `max_chars`
/// characters as sent and at least `min_chars` (and one) once surrounding blanks are
/// trimmed: the OpenAPI description says exactly this (`api::doc`).
pub fn valid_text_between(
    what: &str,
    text: &str,
    min_chars: usize,
    max_chars: usize,
) -> Result<(), ServiceError> {
    let n = text.trim().chars().count();
    if n == 0 || n < min_chars || text.chars().count() > max_chars {
        Err(ServiceError::bad_request(
            Code::InvalidText,
            format!("{what} must be {min_chars} to {max_chars} characters"),
        ))
    } else {
        no_control_characters(what, text)
    }
}

/// Longest subject of an email sent through the relay.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// Longest text of an email sent through the relay.
pub const MAX_EMAIL_TEXT_CHARS: usize = 5000;

/// Longest text of an SMS sent through the relay (three concatenated messages).
pub const MAX_SMS_TEXT_CHARS: usize = 480;

/// The characters [`valid_message`] refuses: those of [`HIDDEN_CHARACTERS`] but line
/// feed and carriage return, which a message's paragraphs need.
pub const MESSAGE_HIDDEN_CHARACTERS: &str =
    r"\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff";

/// Checks, without echoing it, the text of a message to a customer: 1 to `max_chars`
/// characters (at least one not blank), line breaks allowed, no other control or
/// hidden character.
pub fn valid_message(what: &str, text: &str, max_chars: usize) -> Result<(), ServiceError> {
    if text.trim().is_empty() || text.chars().count() > max_chars {
        return Err(ServiceError::bad_request(
            Code::InvalidText,
            format!("{what} must be 1 to {max_chars} characters"),
        ));
    }
    let lines: String = text.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
    no_control_characters(what, &lines)
}

/// The characters [`no_control_characters`] refuses, as the body of a regular
/// expression's character class (for the OpenAPI description).
pub const HIDDEN_CHARACTERS: &str =
    r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff";

/// Refuses text holding a control character (NUL, line breaks, escapes) or an invisible
/// direction or width override: stored text is shown to people in the console and read
/// by other systems, where such characters cut, hide or reorder what is displayed.
pub fn no_control_characters(what: &str, text: &str) -> Result<(), ServiceError> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if text.chars().any(hidden) {
        Err(ServiceError::bad_request(
            Code::ControlCharacter,
            format!("{what} must not contain control, direction or zero-width characters"),
        ))
    } else {
        Ok(())
    }
}

/// `value` if it is from 1 to `max`; otherwise 400 `invalid_query` naming `what` (a
/// query option such as a page size: the description says its range, and the server
/// holds callers to it rather than quietly answering something else).
pub fn bounded<T>(what: &str, value: T, max: T) -> Result<T, ServiceError>
where
    T: Copy + PartialOrd + From<u8> + std::fmt::Display,
{
    if value >= T::from(1) && value <= max {
        Ok(value)
    } else {
        Err(ServiceError::bad_request(
            Code::InvalidQuery,
            format!("{what} is a whole number from 1 to {max}"),
        ))
    }
}
