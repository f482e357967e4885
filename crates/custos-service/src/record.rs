//! One request, one access record. This module owns the product's core invariant:
//! **no answer without a durable record**.
//!
//! How the types hold it: an answer leaves the service only as a [`Recorded`], and only
//! [`App::finish`] makes one, after the request's access record is durable (or, if it
//! cannot be made durable, with the answer replaced by `ledger_unavailable`). A
//! transport turns a `Recorded` into its response; it has no other way to get at the
//! vault's data.
//!
//! Order, for every request:
//! 1. [`App::begin`] starts the request's [`Exchange`] (its time, its client);
//! 2. the operation authenticates, decides, charges the quota and prepares its answer
//!    (nothing is released yet), noting in the `Exchange` what it touched;
//! 3. acts that change state first make their record durable ([`App::record_intent`]):
//!    an act the ledger cannot record does not happen;
//! 4. [`App::finish`] appends the record (unless the intent already holds it) and waits
//!    until it is durable (group commit); only then is the answer released, as a
//!    [`Recorded`]. If the record could not be written, the prepared answer is dropped
//!    and the caller gets `ledger_unavailable` (fail closed).

use crate::error::Code;
use std::net::IpAddr;

use custos_detector::RestrictionKind;
use custos_store::AccessRecord;
use custos_types::clock::now_millis;
use custos_types::{Action, CUSTOMER_ID, Decision, RecordedRole, SYSTEM_ID, UNAUTHENTICATED_ID};

use crate::App;
use crate::auth::{self, Caller, SessionCredential};
use crate::client_certificate::ClientCertificate;
use crate::error::{Details, ServiceError};
use crate::ids::IssuedId;
use crate::quota::{Active, Charge, ChargeError};

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

/// What the service needs to know about a request besides its operation: who sends it,
/// at what time, from where. The transport fills it from its own framing.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    /// The credential as sent (for HTTP, the `Authorization` header's value); `None`
    /// when absent or not text.
    pub authorization: Option<String>,
    /// The simulated time the request carries, as sent (bytes, checked by the service);
    /// `None` when it carries none.
    pub simulated_time: Option<Vec<u8>>,
    /// The client's address, when the transport knows it.
    pub client: Option<IpAddr>,
    /// Set only on the console's internal calls (see [`SessionCredential`]).
    pub session: Option<SessionCredential>,
    /// The client certificate the connection presented and TLS verified, if any.
    pub client_certificate: Option<ClientCertificate>,
}

/// An answer whose access record is durable: the only form in which the service
/// releases one. Only [`App::finish`] makes it (its fields are private).
#[must_use = "a recorded answer is the request's answer: hand it to the caller"]
#[derive(Debug)]
pub struct Recorded<T> {
    outcome: Result<T, ServiceError>,
    request_id: String,
    ledger_index: Option<u64>,
}

impl<T> Recorded<T> {
    /// The answer, or the error the caller gets.
    pub fn outcome(&self) -> &Result<T, ServiceError> {
        &self.outcome
    }

    /// The answer, or the error the caller gets, taken out.
    pub fn into_outcome(self) -> Result<T, ServiceError> {
        self.outcome
    }

    /// The request's id (that of its access record).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Where the record is in the ledger (the caller can ask for its inclusion proof);
    /// `None` when it could not be written and the answer is `ledger_unavailable`.
    pub fn ledger_index(&self) -> Option<u64> {
        self.ledger_index
    }

    /// The same record with its answer turned into another form (e.g. a response body).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Recorded<U> {
        Recorded {
            outcome: self.outcome.map(f),
            request_id: self.request_id,
            ledger_index: self.ledger_index,
        }
    }
}

/// What one request touched; becomes its access record.
#[derive(Debug)]
pub(crate) struct Exchange {
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
    clock_error: Option<ServiceError>,
    /// The ledger index of the record made before the act, if [`App::record_intent`] ran.
    intent_index: Option<u64>,
    /// Whether the request came from a customer signed in with their access link.
    customer_principal: bool,
    /// The kind of id the request named in a malformed way, if any (recorded without
    /// its value).
    malformed: Option<IssuedId>,
}

impl Exchange {
    /// The request's id (that of its access record).
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The request's time, unix milliseconds: the real clock, or the simulated time the
    /// request carried on a server with a simulated clock.
    pub(crate) fn at(&self) -> i64 {
        self.at
    }

    /// Names the customer the request concerns. An id not of the issued shape
    /// ([`IssuedId::Customer`]) is refused as `invalid_id` and recorded only as
    /// malformed ([`custos_types::facts::malformed`]), never with its value: it may be a
    /// phone number.
    pub(crate) fn name_customer(&mut self, id: &str) -> Result<(), ServiceError> {
        self.customer_id = self.well_formed(IssuedId::Customer, id)?;
        Ok(())
    }

    /// Names the case the request concerns; checked like [`Exchange::name_customer`].
    pub(crate) fn name_case(&mut self, id: &str) -> Result<(), ServiceError> {
        self.case_id = self.well_formed(IssuedId::Case, id)?;
        Ok(())
    }

    /// Names an issued id (a customer's, for the customer portal) as what an act is on;
    /// checked like [`Exchange::name_customer`].
    pub(crate) fn name_target(&mut self, kind: IssuedId, id: &str) -> Result<(), ServiceError> {
        self.target = self.well_formed(kind, id)?;
        Ok(())
    }

    fn well_formed(&mut self, kind: IssuedId, id: &str) -> Result<Option<String>, ServiceError> {
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
    pub(crate) fn set_customer_principal(&mut self) {
        self.customer_principal = true;
    }
}

impl App {
    /// Starts the record of a request for `action`.
    ///
    /// Its time is the wall clock as read, also after the clock was stepped back: a
    /// record's order is its ledger index, never its `at` (concurrent requests already
    /// reach the ledger out of `at` order). Clamping to the last time seen would stamp
    /// every record with the same false time until the clock caught up, hiding that it
    /// went back; instead the step shows where it matters for evidence: no checkpoint is
    /// signed until the clock passes the last one's time, and `/healthz` says
    /// `clock_backwards` meanwhile.
    pub(crate) fn begin(&self, meta: &RequestMeta, action: Action) -> Exchange {
        let (at, clock_error) = match self.request_time(meta.simulated_time.as_deref()) {
            Ok(at) => (at, None),
            Err(e) => (now_millis(), Some(e)),
        };
        Exchange {
            request_id: format!("req_{}", hex::encode(custos_crypto::random_bytes::<12>())),
            at,
            client: meta.client.map(|c| c.to_string()),
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
    /// simulated time it carries. Carrying one without the flag is refused: a real
    /// server never lets a caller choose the time of its records.
    fn request_time(&self, simulated: Option<&[u8]>) -> Result<i64, ServiceError> {
        let Some(value) = simulated else {
            return Ok(now_millis());
        };
        if !self.config.simulated_clock {
            return Err(ServiceError::bad_request(
                Code::SimulatedClockDisabled,
                "this server uses the real clock; it was not started with --simulated-clock",
            ));
        }
        std::str::from_utf8(value)
            .ok()
            // One spelling per time: digits only, no sign, no leading zero.
            .filter(|v| !v.starts_with('0') && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|t| (1..=MAX_SIMULATED_TIME_MS).contains(t))
            .ok_or_else(|| {
                ServiceError::bad_request(
Code::InvalidSimulatedTime,
                    format!("the simulated time is a whole number of unix milliseconds from 1 to {MAX_SIMULATED_TIME_MS} (the end of year 9999)"),
                )
            })
    }

    /// Authenticates the request and remembers the caller for the record.
    pub(crate) async fn authenticate(
        &self,
        meta: &RequestMeta,
        ex: &mut Exchange,
    ) -> Result<Caller, ServiceError> {
        if let Some(e) = ex.clock_error.take() {
            return Err(e);
        }
        let caller = auth::authenticate(
            &self.store,
            &self.config,
            meta.authorization.as_deref(),
            meta.session.as_ref(),
            meta.client_certificate.as_ref(),
            self.idp.as_ref(),
            self.console_sso.is_some(),
        )
        .await?;
        ex.caller = Some(caller.clone());
        if self.config.simulated_clock {
            // Time moves forward per caller: going back to a used-up window is refused.
            self.quotas
                .advance_clock(&caller.staff.id, ex.at, SIMULATED_REWIND_TOLERANCE_MS)
                .map_err(|latest| {
                    ServiceError::bad_request(
Code::SimulatedTimeRewind,
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
    pub(crate) fn authorize(
        &self,
        ex: &mut Exchange,
        request: &custos_policy::AccessRequest<'_>,
    ) -> Result<(), ServiceError> {
        let decision = self.policy.decide(request);
        metrics::counter!("custos_decisions_total",
            "action" => request.action.as_str(),
            "outcome" => if decision.allowed { Decision::Allow } else { Decision::Deny }.as_str())
        .increment(1);
        if decision.allowed {
            ex.reason = Some(decision.reason_code);
            Ok(())
        } else {
            Err(ServiceError::forbidden(&decision.reason_code))
        }
    }

    /// Authenticates and asks Cedar about an action on the vault as a whole.
    pub(crate) async fn authorize_vault(
        &self,
        meta: &RequestMeta,
        ex: &mut Exchange,
        action: custos_policy::Action,
    ) -> Result<Caller, ServiceError> {
        let caller = self.authenticate(meta, ex).await?;
        self.authorize(
            ex,
            &custos_policy::AccessRequest {
                principal: caller.principal(),
                action,
                resource: custos_policy::Resource::Vault,
                case: None,
                granted: false,
            },
        )?;
        Ok(caller)
    }

    /// Takes `charge` from the caller's ceilings (lowered under a `lower_quota`
    /// restriction), at the request's time, or answers 429.
    pub(crate) async fn charge(
        &self,
        ex: &Exchange,
        caller: &Caller,
        charge: Charge<'_>,
    ) -> Result<(), ServiceError> {
        let limits = self.config.quota_for(caller.staff.role);
        let e = match self
            .quotas
            .try_charge(&caller.staff.id, &limits, charge, ex.at)
            .await
        {
            Ok(()) => return Ok(()),
            // The shared counters cannot be read: refuse (fail closed).
            Err(ChargeError::Store(e)) => return Err(e.into()),
            Err(ChargeError::Exceeded(e)) => e,
        };
        Err({
            metrics::counter!("custos_quota_rejections_total", "quota" => e.which).increment(1);
            let error = ServiceError::quota_exceeded(e.which, e.window_secs, e.retry_after_secs);
            match e.lowered_until {
                // Say why the ceiling is lower than the caller may expect.
                Some(until_ms) => {
                    let quota = *error.details.clone().unwrap_or_default();
                    ServiceError {
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
    pub(crate) fn restriction_details(&self, active: Active) -> Details {
        Details {
            restriction: Some(active.kind.as_str().to_owned()),
            restricted_until: Some(active.until_ms),
            quota_share: (active.kind == RestrictionKind::LowerQuota)
                .then_some(self.config.restrictions.lower_quota_share),
            ..Details::default()
        }
    }

    /// Makes the request's record durable, then releases the answer (see module docs).
    pub(crate) async fn finish<T>(
        &self,
        ex: Exchange,
        result: Result<T, ServiceError>,
    ) -> Recorded<T> {
        let (decision, reason_code) = match &result {
            Ok(_) => (
                Decision::Allow,
                ex.reason.clone().unwrap_or_else(|| "ok".to_owned()),
            ),
            Err(e) if e.kind.is_denial() => (Decision::Deny, e.code.as_str().to_owned()),
            Err(e) => (Decision::Error, e.code.as_str().to_owned()),
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
                    return Recorded {
                        outcome: Err(ServiceError::ledger_unavailable()),
                        request_id: ex.request_id,
                        ledger_index: None,
                    };
                }
            },
        };
        Recorded {
            outcome: result,
            request_id: ex.request_id,
            ledger_index: Some(index),
        }
    }

    /// For acts that change the store (staff, tokens, alerts, canaries): makes the
    /// request's record durable *before* the change, so an act the ledger cannot record
    /// does not happen (fail closed). If the change then fails, [`App::finish`] records
    /// that outcome as a second entry with the same request id.
    pub(crate) async fn record_intent(&self, ex: &mut Exchange) -> Result<(), ServiceError> {
        let reason = ex.reason.clone().unwrap_or_else(|| "ok".to_owned());
        let index = self
            .access
            .record(self.record_of(ex, Decision::Allow, reason))
            .await
            .map_err(|e| {
                tracing::error!(request_id = %ex.request_id, error = %e, "refusing act: its record is not durable");
                ServiceError::ledger_unavailable()
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
    pub(crate) async fn record_event(
        &self,
        action: Action,
        target: String,
        reason_code: String,
    ) -> Result<u64, ServiceError> {
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
    pub(crate) async fn record_system(&self, event: SystemEvent) -> Result<u64, ServiceError> {
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
            ServiceError::ledger_unavailable()
        })
    }
}

/// The quota charge an allowed record stands for, for rebuilding counters.
pub fn charge_of(r: &AccessRecord) -> Option<Charge<'_>> {
    match (r.action, r.customer_id.as_deref()) {
        (Action::View, Some(id)) => Some(Charge::Customer { id, reveals: 0 }),
        (Action::Reveal, Some(id)) => Some(Charge::Customer {
            id,
            reveals: u32::try_from(r.fields.len()).unwrap_or(u32::MAX),
        }),
        // A contact is charged like a reveal of the field its relay fills in.
        (Action::Contact, Some(id)) => Some(Charge::Customer { id, reveals: 1 }),
        (Action::Search, _) => Some(Charge::Search),
        _ => None,
    }
}
