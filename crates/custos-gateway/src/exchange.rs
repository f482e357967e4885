//! One request, one access record: [`Exchange`] collects what the request touched, and
//! [`App::finish`] makes the record durable *before* the answer is released.
//!
//! Order, for every data request:
//! 1. the handler authenticates, decides, charges the quota and prepares its answer
//!    (nothing is sent yet);
//! 2. `finish` appends the access record and waits until it is durable (group commit);
//! 3. only then is the answer returned; if the record could not be written, the prepared
//!    answer is dropped and the caller gets 503 `ledger_unavailable` (fail closed).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use custos_detector::RestrictionKind;
use custos_store::AccessRecord;
use custos_types::clock::now_millis;
use custos_types::{Action, CUSTOMER_ID, Decision, RecordedRole, SYSTEM_ID, UNAUTHENTICATED_ID};
use serde::de::DeserializeOwned;

use crate::App;
use crate::auth::{self, Caller, SessionCredential};
use crate::error::{ApiError, Details};
use crate::ids::IssuedId;
use crate::quota::{Active, Charge};

/// Request header with the time of a simulated request, unix milliseconds; accepted only
/// by a server started with `--simulated-clock`.
pub const SIMULATED_TIME_HEADER: &str = "x-custos-simulated-time";

/// The latest simulated time accepted: the last millisecond of year 9999. Every time
/// computed from a request's time (quota windows, link expiry, restriction ends) stays
/// far inside `i64` from there.
pub const MAX_SIMULATED_TIME_MS: i64 = 253_402_300_799_999;

/// How far a caller's simulated time may fall behind the latest time they used: enough
/// for a driver's overlapping work to arrive out of order (the simulator closes a case
/// up to 25 minutes after the contact while the next slice starts 5 minutes later), and
/// no more than the shortest quota window. Quotas themselves never judge a window at an
/// earlier time than the latest (see [`crate::quota::Quotas::advance_clock`]), so the
/// tolerance moves records, never ceilings.
pub const SIMULATED_REWIND_TOLERANCE_MS: i64 = 60 * 60_000;

/// Response header carrying the ledger index of the request's record.
pub const LEDGER_INDEX_HEADER: &str = "x-custos-ledger-index";

/// Response header carrying the request's id (that of its access record).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Request metadata every handler needs: headers, the client address, and the console
/// session a call was made for.
pub struct RequestInfo {
    /// The request headers.
    pub headers: HeaderMap,
    /// The TCP peer, when the server runs with connect info.
    pub client: Option<SocketAddr>,
    /// Set only on the console's internal calls (see [`SessionCredential`]).
    pub session: Option<SessionCredential>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestInfo {
            headers: parts.headers.clone(),
            client: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
            session: parts.extensions.get::<SessionCredential>().cloned(),
        })
    }
}

/// What one request touched; becomes its access record.
#[derive(Debug)]
pub struct Exchange {
    request_id: String,
    at: i64,
    client: Option<String>,
    action: Action,
    caller: Option<Caller>,
    /// The customer the request concerned, if any: always a well-formed issued id
    /// ([`Exchange::name_customer`]), so no value sent where an id belongs reaches the
    /// append-only ledger.
    customer_id: Option<String>,
    /// Field names revealed or searched by; for `create_case`, the case's facts
    /// (`channel:…`, `contact:…`, `requested_by:…`: see [`custos_access::entry`]).
    pub fields: Vec<String>,
    /// The case the request named, if any; well-formed like `customer_id`.
    case_id: Option<String>,
    /// What an administrative action acted on (a staff id, a token id); for
    /// `create_case`, the assignee.
    pub target: Option<String>,
    /// Why an allowed request was allowed (the deciding policy), or a search's outcome.
    pub reason: Option<String>,
    /// A bad or forbidden simulated time, reported by [`App::authenticate`].
    clock_error: Option<ApiError>,
    /// The ledger index of the record made before the act, if [`App::record_intent`] ran.
    intent_index: Option<u64>,
    /// Whether the request came from a customer signed in with their access link.
    customer_principal: bool,
    /// The kind of id the request named in a malformed way, if any (recorded without
    /// its value).
    malformed: Option<IssuedId>,
}

impl Exchange {
    /// The request's time, unix milliseconds: the real clock, or the simulated time the
    /// request carried on a server with a simulated clock.
    pub fn at(&self) -> i64 {
        self.at
    }

    /// Names the customer the request concerns. An id not of the issued shape
    /// ([`IssuedId::Customer`]) is refused as `invalid_id` and recorded only as
    /// malformed ([`custos_types::facts::malformed`]), never with its value: it may be a
    /// phone number.
    pub fn name_customer(&mut self, id: &str) -> Result<(), ApiError> {
        self.customer_id = self.well_formed(IssuedId::Customer, id)?;
        Ok(())
    }

    /// Names the case the request concerns; checked like [`Exchange::name_customer`].
    pub fn name_case(&mut self, id: &str) -> Result<(), ApiError> {
        self.case_id = self.well_formed(IssuedId::Case, id)?;
        Ok(())
    }

    /// Names an issued id (a customer's, for the customer portal) as what an act is on;
    /// checked like [`Exchange::name_customer`].
    pub fn name_target(&mut self, kind: IssuedId, id: &str) -> Result<(), ApiError> {
        self.target = self.well_formed(kind, id)?;
        Ok(())
    }

    fn well_formed(&mut self, kind: IssuedId, id: &str) -> Result<Option<String>, ApiError> {
        match kind.check(id) {
            Ok(()) => Ok(Some(id.to_owned())),
            Err(e) => {
                self.malformed = Some(kind);
                Err(e)
            }
        }
    }

    /// Records the request as made by a customer (signed in with a customer access
    /// link) rather than by staff: principal `customer`, role `customer`, org `-`.
    pub fn set_customer_principal(&mut self) {
        self.customer_principal = true;
    }
}

impl App {
    /// Starts the record of a request for `action`.
    pub fn begin(&self, info: &RequestInfo, action: Action) -> Exchange {
        let (at, clock_error) = match self.request_time(&info.headers) {
            Ok(at) => (at, None),
            Err(e) => (now_millis(), Some(e)),
        };
        Exchange {
            request_id: format!("req_{}", hex::encode(custos_crypto::random_bytes::<12>())),
            at,
            client: info.client.map(|c| c.ip().to_string()),
            action,
            caller: None,
            customer_id: None,
            fields: Vec::new(),
            case_id: None,
            target: None,
            reason: None,
            clock_error,
            intent_index: None,
            customer_principal: false,
            malformed: None,
        }
    }

    /// The time a request happens at: the real clock, or with `--simulated-clock` the
    /// time in its [`SIMULATED_TIME_HEADER`]. The header without the flag is refused: a
    /// real server never lets a caller choose the time of its records.
    fn request_time(&self, headers: &HeaderMap) -> Result<i64, ApiError> {
        let Some(value) = headers.get(SIMULATED_TIME_HEADER) else {
            return Ok(now_millis());
        };
        if !self.config.simulated_clock {
            return Err(ApiError::bad_request(
                "simulated_clock_disabled",
                "this server uses the real clock; it was not started with --simulated-clock",
            ));
        }
        value
            .to_str()
            .ok()
            // One spelling per time: digits only, no sign, no leading zero.
            .filter(|v| !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|t| (1..=MAX_SIMULATED_TIME_MS).contains(t))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_simulated_time",
                    format!("the simulated time is a whole number of unix milliseconds from 1 to {MAX_SIMULATED_TIME_MS} (the end of year 9999)"),
                )
            })
    }

    /// Authenticates the request and remembers the caller for the record.
    pub async fn authenticate(
        &self,
        info: &RequestInfo,
        ex: &mut Exchange,
    ) -> Result<Caller, ApiError> {
        if let Some(e) = ex.clock_error.take() {
            return Err(e);
        }
        let caller = auth::authenticate(
            &self.store,
            &self.config.company_org,
            &info.headers,
            info.session.as_ref(),
        )
        .await?;
        ex.caller = Some(caller.clone());
        if self.config.simulated_clock {
            // Time moves forward per caller: going back to a used-up window is refused.
            self.quotas
                .advance_clock(&caller.staff.id, ex.at, SIMULATED_REWIND_TOLERANCE_MS)
                .map_err(|latest| {
                    ApiError::bad_request(
                        "simulated_time_rewind",
                        format!(
                            "simulated time only moves forward for each caller: yours was already at {latest} (unix ms); a request may be at most {} minutes earlier",
                            SIMULATED_REWIND_TOLERANCE_MS / 60_000
                        ),
                    )
                })?;
        }
        Ok(caller)
    }

    /// Asks Cedar; a denial becomes a 403 carrying the deciding policy's id.
    pub fn authorize(
        &self,
        ex: &mut Exchange,
        request: &custos_policy::AccessRequest<'_>,
    ) -> Result<(), ApiError> {
        let decision = self.policy.decide(request);
        metrics::counter!("custos_decisions_total",
            "action" => request.action.as_str(),
            "outcome" => if decision.allowed { Decision::Allow } else { Decision::Deny }.as_str())
        .increment(1);
        if decision.allowed {
            ex.reason = Some(decision.reason_code);
            Ok(())
        } else {
            Err(ApiError::forbidden(&decision.reason_code))
        }
    }

    /// Authenticates and asks Cedar about an action on the vault as a whole.
    pub async fn authorize_vault(
        &self,
        info: &RequestInfo,
        ex: &mut Exchange,
        action: custos_policy::Action,
    ) -> Result<Caller, ApiError> {
        let caller = self.authenticate(info, ex).await?;
        self.authorize(
            ex,
            &custos_policy::AccessRequest {
                principal: caller.principal(),
                action,
                resource: custos_policy::Resource::Vault,
                case: None,
            },
        )?;
        Ok(caller)
    }

    /// Takes `charge` from the caller's ceilings (lowered under a `lower_quota`
    /// restriction), at the request's time, or answers 429.
    pub fn charge(
        &self,
        ex: &Exchange,
        caller: &Caller,
        charge: Charge<'_>,
    ) -> Result<(), ApiError> {
        let limits = self.config.quota_for(caller.staff.role.as_str());
        self.quotas
            .try_charge(&caller.staff.id, &limits, charge, ex.at)
            .map_err(|e| {
                metrics::counter!("custos_quota_rejections_total", "quota" => e.which).increment(1);
                let error = ApiError::quota_exceeded(e.which, e.window_secs, e.retry_after_secs);
                match e.lowered_until {
                    // Say why the ceiling is lower than the caller may expect.
                    Some(until_ms) => {
                        let quota = *error.details.clone().unwrap_or_default();
                        ApiError {
                            message: format!(
                                "{}; it is lowered to {}% of its limit by a risk alert until {until_ms} (unix ms), see GET /v1/me",
                                error.message,
                                (self.config.restrictions.lower_quota_share * 100.0).round()
                            ),
                            details: Some(Box::new(Details {
                                quota: quota.quota,
                                window_secs: quota.window_secs,
                                retry_after: quota.retry_after,
                                ..self.restriction_details(Active {
                                    kind: RestrictionKind::LowerQuota,
                                    until_ms,
                                })
                            })),
                            ..error
                        }
                    }
                    None => error,
                }
            })
    }

    /// The facts of the restriction `active` behind a refusal, for its [`Details`].
    pub fn restriction_details(&self, active: Active) -> Details {
        Details {
            restriction: Some(active.kind.as_str().to_owned()),
            restricted_until: Some(active.until_ms),
            quota_share: (active.kind == RestrictionKind::LowerQuota)
                .then_some(self.config.restrictions.lower_quota_share),
            ..Details::default()
        }
    }

    /// Makes the request's record durable, then releases the answer (see module docs).
    pub async fn finish(&self, ex: Exchange, result: Result<Response, ApiError>) -> Response {
        let (decision, reason_code) = match &result {
            Ok(_) => (
                Decision::Allow,
                ex.reason.clone().unwrap_or_else(|| "ok".to_owned()),
            ),
            Err(e) if is_denial(e.status) => (Decision::Deny, e.code.to_owned()),
            Err(e) => (Decision::Error, e.code.to_owned()),
        };
        let index = match (ex.intent_index, &result) {
            // The act's record was made durable before the act (`record_intent`).
            (Some(index), Ok(_)) => index,
            // Otherwise (no intent, or the act failed after it) record the outcome.
            _ => match self
                .access
                .record(self.record_of(&ex, decision, reason_code))
                .await
            {
                Ok(index) => index,
                Err(e) => {
                    tracing::error!(request_id = %ex.request_id, error = %e, "refusing request: access record not durable");
                    return with_request_id(
                        ApiError::ledger_unavailable().into_response(),
                        &ex.request_id,
                    );
                }
            },
        };
        let mut response = with_request_id(
            result.unwrap_or_else(IntoResponse::into_response),
            &ex.request_id,
        );
        // Where the record is: the caller can later ask for its inclusion proof.
        response
            .headers_mut()
            .insert(LEDGER_INDEX_HEADER, HeaderValue::from(index));
        response
    }

    /// For acts that change the store (staff, tokens, alerts, canaries): makes the
    /// request's record durable *before* the change, so an act the ledger cannot record
    /// does not happen (fail closed). If the change then fails, [`App::finish`] records
    /// that outcome as a second entry with the same request id.
    pub async fn record_intent(&self, ex: &mut Exchange) -> Result<(), ApiError> {
        let reason = ex.reason.clone().unwrap_or_else(|| "ok".to_owned());
        let index = self
            .access
            .record(self.record_of(ex, Decision::Allow, reason))
            .await
            .map_err(|e| {
                tracing::error!(request_id = %ex.request_id, error = %e, "refusing act: its record is not durable");
                ApiError::ledger_unavailable()
            })?;
        ex.intent_index = Some(index);
        Ok(())
    }

    /// The access record of `ex` with `decision` and `reason_code`.
    fn record_of(&self, ex: &Exchange, decision: Decision, reason_code: String) -> AccessRecord {
        let (staff_id, org, role) = match &ex.caller {
            Some(c) => (
                c.staff.id.clone(),
                c.staff.org.clone(),
                RecordedRole::Staff(c.staff.role),
            ),
            None if ex.customer_principal => (
                CUSTOMER_ID.to_owned(),
                "-".to_owned(),
                RecordedRole::Customer,
            ),
            None => (
                UNAUTHENTICATED_ID.to_owned(),
                UNAUTHENTICATED_ID.to_owned(),
                RecordedRole::Unauthenticated,
            ),
        };
        AccessRecord {
            seq: 0,
            request_id: ex.request_id.clone(),
            at: ex.at,
            staff_id,
            org,
            role,
            action: ex.action,
            customer_id: ex.customer_id.clone(),
            // A malformed id is recorded as such, never with its value.
            fields: match ex.malformed {
                Some(kind) => vec![custos_types::facts::malformed(kind.name())],
                None => ex.fields.clone(),
            },
            case_id: ex.case_id.clone(),
            target: ex.target.clone(),
            decision,
            reason_code,
            client: ex.client.clone(),
        }
    }
}

/// Something the server itself did, for the ledger (recorded as the `system` principal).
pub struct SystemEvent {
    /// The entry's action.
    pub action: Action,
    /// When, unix milliseconds.
    pub at: i64,
    /// The customer it concerns, if any.
    pub customer_id: Option<String>,
    /// The case it concerns, if any.
    pub case_id: Option<String>,
    /// The person or object it names.
    pub target: Option<String>,
    /// Facts of the event (ids and fixed words only, never personal data).
    pub fields: Vec<String>,
    /// Why.
    pub reason_code: String,
}

impl App {
    /// Records an event of the server itself (start with its configuration digest, key
    /// creation) in the ledger, as the `system` principal, at the current time.
    pub async fn record_event(
        &self,
        action: Action,
        target: String,
        reason_code: String,
    ) -> Result<u64, ApiError> {
        self.record_system(SystemEvent {
            action,
            at: now_millis(),
            customer_id: None,
            case_id: None,
            target: Some(target),
            fields: Vec::new(),
            reason_code,
        })
        .await
    }

    /// Records `event` in the ledger as the `system` principal; returns its index.
    pub async fn record_system(&self, event: SystemEvent) -> Result<u64, ApiError> {
        let action = event.action;
        let record = AccessRecord {
            seq: 0,
            request_id: format!("evt_{}", hex::encode(custos_crypto::random_bytes::<12>())),
            at: event.at,
            staff_id: SYSTEM_ID.to_owned(),
            org: self.config.company_org.clone(),
            role: RecordedRole::System,
            action,
            customer_id: event.customer_id,
            fields: event.fields,
            case_id: event.case_id,
            target: event.target,
            decision: Decision::Allow,
            reason_code: event.reason_code,
            client: None,
        };
        self.access.record(record).await.map_err(|e| {
            tracing::error!(error = %e, action = action.as_str(), "server event not recorded");
            ApiError::ledger_unavailable()
        })
    }
}

fn is_denial(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    )
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    response
}

/// The quota charge an allowed record stands for, for rebuilding counters.
pub fn charge_of(r: &AccessRecord) -> Option<Charge<'_>> {
    match (r.action, r.customer_id.as_deref()) {
        (Action::View, Some(id)) => Some(Charge::Customer { id, reveals: 0 }),
        (Action::Reveal, Some(id)) => Some(Charge::Customer {
            id,
            reveals: u32::try_from(r.fields.len()).unwrap_or(u32::MAX),
        }),
        (Action::Search, _) => Some(Charge::Search),
        _ => None,
    }
}

/// Reads a body of at most `limit` bytes; over the limit is 413 `payload_too_large`.
pub async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes or could not be read"),
        )
    })
}

/// Parses a JSON body into `T`. The error names the position and kind of problem, never
/// the values (serde's messages may quote them).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| json_error(&e, None))
}

/// Error for a JSON document that failed to parse; `line` overrides serde's line (NDJSON).
pub fn json_error(e: &serde_json::Error, line: Option<usize>) -> ApiError {
    let line = line.unwrap_or(e.line());
    if e.is_data() && e.to_string().starts_with("unknown field") {
        ApiError::bad_request(
            "unknown_field",
            format!(
                "unknown field in request body at line {line}, column {}",
                e.column()
            ),
        )
    } else if let Some(field) = missing_field(e) {
        ApiError::bad_request(
            "invalid_body",
            format!("request body lacks the required field `{field}` (line {line})"),
        )
    } else if e.is_data() {
        ApiError::bad_request(
            "invalid_body",
            format!(
                "request body has a missing or mistyped field at line {line}, column {}",
                e.column()
            ),
        )
    } else {
        ApiError::bad_request(
            "malformed_json",
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

/// Parses a query string into `T`; `expected` tells the caller what is accepted (the
/// values themselves are never echoed).
pub fn parse_query<T: DeserializeOwned>(
    raw: Option<String>,
    expected: &str,
) -> Result<T, ApiError> {
    let invalid = || ApiError::bad_request("invalid_query", expected.to_owned());
    let uri: axum::http::Uri = format!("/?{}", raw.unwrap_or_default())
        .parse()
        .map_err(|_| invalid())?;
    axum::extract::Query::<T>::try_from_uri(&uri)
        .map(|q| q.0)
        .map_err(|_| invalid())
}

/// Longest id of staff, orgs, tokens and alerts.
pub const MAX_ID_CHARS: usize = 64;

/// Longest reason (of a case, of a reveal).
pub const MAX_REASON_CHARS: usize = 500;

/// Ids of staff, orgs, tokens and alerts: 1–64 of `[A-Za-z0-9_.:-]`.
pub fn valid_id(what: &str, id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_id",
            format!("{what} id must be 1 to 64 characters of A-Z, a-z, 0-9, _ . : -"),
        ))
    }
}

/// Checks a free-text field's length without echoing it.
pub fn valid_text(what: &str, text: &str, max_chars: usize) -> Result<(), ApiError> {
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
) -> Result<(), ApiError> {
    let n = text.trim().chars().count();
    if n == 0 || n < min_chars || text.chars().count() > max_chars {
        Err(ApiError::bad_request(
            "invalid_text",
            format!("{what} must be {min_chars} to {max_chars} characters"),
        ))
    } else {
        no_control_characters(what, text)
    }
}

/// The characters [`no_control_characters`] refuses, as the body of a regular
/// expression's character class (for the OpenAPI description).
pub const HIDDEN_CHARACTERS: &str =
    r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff";

/// Refuses text holding a control character (NUL, line breaks, escapes) or an invisible
/// direction or width override: stored text is shown to people in the console and read
/// by other systems, where such characters cut, hide or reorder what is displayed.
pub fn no_control_characters(what: &str, text: &str) -> Result<(), ApiError> {
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    if text.chars().any(hidden) {
        Err(ApiError::bad_request(
            "control_character",
            format!("{what} must not contain control, direction or zero-width characters"),
        ))
    } else {
        Ok(())
    }
}
