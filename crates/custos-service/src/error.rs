//! Service errors as data: a kind (what the transport turns into a status), a stable
//! code, and a message that never carries personal data or echoes request values.

use serde::{Deserialize, Serialize};

/// What sort of failure an error is; the transport maps each to one status (the HTTP
/// gateway: `custos_gateway`'s error mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or a value in it is not valid.
    BadRequest,
    /// No valid credential.
    Unauthenticated,
    /// Policy, a restriction or a rule refuses the caller.
    Forbidden,
    /// The thing named does not exist.
    NotFound,
    /// The request conflicts with what exists.
    Conflict,
    /// The resource changed since the version the request names (`If-Match`).
    PreconditionFailed,
    /// The thing named existed and is gone for good (an erased customer).
    Gone,
    /// A body larger than the limit.
    PayloadTooLarge,
    /// A quota is used up.
    TooManyRequests,
    /// The ledger (or another part the answer depends on) is unavailable.
    Unavailable,
    /// A system Custos hands a request on to (an SMTP relay, an SMS gateway) failed.
    BadGateway,
    /// A fault of the server; details go to the log only.
    Internal,
}

impl ErrorKind {
    /// Whether the access record of a request failing so says `deny` (rather than
    /// `error`): authentication, policy and quotas refused it.
    pub fn is_denial(self) -> bool {
        matches!(
            self,
            ErrorKind::Unauthenticated | ErrorKind::Forbidden | ErrorKind::TooManyRequests
        )
    }
}

/// The stable codes of the service's own errors: each is written once, here. A code a
/// lower crate's error defines (normalisation, trace input, the ledger) passes through
/// as [`Code::Part`], owned by that crate's error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// `already_decided`.
    AlreadyDecided,
    /// `already_reviewed`.
    AlreadyReviewed,
    /// `app_assertion_not_configured`.
    AppAssertionNotConfigured,
    /// `app_assertion_replayed`.
    AppAssertionReplayed,
    /// `assignee_not_serving`.
    AssigneeNotServing,
    /// `bad_note`.
    BadNote,
    /// `break_glass_exhausted`.
    BreakGlassExhausted,
    /// `canary_collision`.
    CanaryCollision,
    /// `canary_not_erasable`.
    CanaryNotErasable,
    /// `erased`.
    Erased,
    /// `client_certificate_required`.
    ClientCertificateRequired,
    /// `clock_backwards`.
    ClockBackwards,
    /// `identity_mismatch`.
    IdentityMismatch,
    /// `case_closed`.
    CaseClosed,
    /// `conflict`.
    Conflict,
    /// `contact_expired`.
    ContactExpired,
    /// `contact_mismatch`.
    ContactMismatch,
    /// `control_character`.
    ControlCharacter,
    /// `empty_import`.
    EmptyImport,
    /// `idempotency_key_reused`.
    IdempotencyKeyReused,
    /// `evidence_not_checkpointed`.
    EvidenceNotCheckpointed,
    /// `forbidden`.
    Forbidden,
    /// `internal`.
    Internal,
    /// `invalid_body`.
    InvalidBody,
    /// `invalid_channel`.
    InvalidChannel,
    /// `invalid_caller`.
    InvalidCaller,
    /// `invalid_field`.
    InvalidField,
    /// `invalid_header`.
    InvalidHeader,
    /// `invalid_grant_minutes`.
    InvalidGrantMinutes,
    /// `invalid_id`.
    InvalidId,
    /// `invalid_link_hours`.
    InvalidLinkHours,
    /// `invalid_origin`.
    InvalidOrigin,
    /// `invalid_query`.
    InvalidQuery,
    /// `invalid_role`.
    InvalidRole,
    /// `invalid_simulated_time`.
    InvalidSimulatedTime,
    /// `invalid_text`.
    InvalidText,
    /// `invalid_upload`.
    InvalidUpload,
    /// `key_provider_unavailable`.
    KeyProviderUnavailable,
    /// `ledger_unavailable`.
    LedgerUnavailable,
    /// `malformed_json`.
    MalformedJson,
    /// `not_found`.
    NotFound,
    /// `not_your_record`.
    NotYourRecord,
    /// `payload_too_large`.
    PayloadTooLarge,
    /// `precondition_failed`.
    PreconditionFailed,
    /// `provisioning_holds`.
    ProvisioningHolds,
    /// `quota_exceeded`.
    QuotaExceeded,
    /// `rotation_in_progress`.
    RotationInProgress,
    /// `reserved_id`.
    ReservedId,
    /// `simulated_clock_disabled`.
    SimulatedClockDisabled,
    /// `simulated_time_rewind`.
    SimulatedTimeRewind,
    /// `step_up_required`.
    StepUpRequired,
    /// `store_unavailable`.
    StoreUnavailable,
    /// `time_out_of_range`.
    TimeOutOfRange,
    /// `too_many_records`.
    TooManyRecords,
    /// `trace_bad_region`.
    TraceBadRegion,
    /// `unauthenticated`.
    Unauthenticated,
    /// `unknown_field`.
    UnknownField,
    /// `no_call_binding`.
    NoCallBinding,
    /// `no_contact_field`.
    NoContactField,
    /// `number_pool_exhausted`.
    NumberPoolExhausted,
    /// `relay_failed`.
    RelayFailed,
    /// `relay_not_configured`.
    RelayNotConfigured,
    /// A code defined by a lower crate's error type, passed through unchanged.
    Part(&'static str),
}

impl Code {
    /// The code as the API and the ledger write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::AlreadyDecided => "already_decided",
            Code::AlreadyReviewed => "already_reviewed",
            Code::AppAssertionNotConfigured => "app_assertion_not_configured",
            Code::AppAssertionReplayed => "app_assertion_replayed",
            Code::AssigneeNotServing => "assignee_not_serving",
            Code::BadNote => "bad_note",
            Code::BreakGlassExhausted => "break_glass_exhausted",
            Code::CanaryCollision => "canary_collision",
            Code::CanaryNotErasable => "canary_not_erasable",
            Code::Erased => "erased",
            Code::CaseClosed => "case_closed",
            Code::Conflict => "conflict",
            Code::ContactExpired => "contact_expired",
            Code::ContactMismatch => "contact_mismatch",
            Code::ControlCharacter => "control_character",
            Code::EmptyImport => "empty_import",
            Code::IdempotencyKeyReused => "idempotency_key_reused",
            Code::EvidenceNotCheckpointed => "evidence_not_checkpointed",
            Code::Forbidden => "forbidden",
            Code::Internal => "internal",
            Code::InvalidBody => "invalid_body",
            Code::InvalidCaller => "invalid_caller",
            Code::InvalidChannel => "invalid_channel",
            Code::InvalidField => "invalid_field",
            Code::InvalidHeader => "invalid_header",
            Code::InvalidGrantMinutes => "invalid_grant_minutes",
            Code::InvalidId => "invalid_id",
            Code::InvalidLinkHours => "invalid_link_hours",
            Code::InvalidOrigin => "invalid_origin",
            Code::InvalidQuery => "invalid_query",
            Code::InvalidRole => "invalid_role",
            Code::InvalidSimulatedTime => "invalid_simulated_time",
            Code::InvalidText => "invalid_text",
            Code::InvalidUpload => "invalid_upload",
            Code::KeyProviderUnavailable => "key_provider_unavailable",
            Code::LedgerUnavailable => "ledger_unavailable",
            Code::MalformedJson => "malformed_json",
            Code::NotFound => "not_found",
            Code::NotYourRecord => "not_your_record",
            Code::PayloadTooLarge => "payload_too_large",
            Code::PreconditionFailed => "precondition_failed",
            Code::ProvisioningHolds => "provisioning_holds",
            Code::QuotaExceeded => "quota_exceeded",
            Code::RotationInProgress => "rotation_in_progress",
            Code::ReservedId => "reserved_id",
            Code::SimulatedClockDisabled => "simulated_clock_disabled",
            Code::SimulatedTimeRewind => "simulated_time_rewind",
            Code::StepUpRequired => "step_up_required",
            Code::StoreUnavailable => "store_unavailable",
            Code::TimeOutOfRange => "time_out_of_range",
            Code::TooManyRecords => "too_many_records",
            Code::TraceBadRegion => "trace_bad_region",
            Code::Unauthenticated => "unauthenticated",
            Code::ClientCertificateRequired => "client_certificate_required",
            Code::ClockBackwards => "clock_backwards",
            Code::IdentityMismatch => "identity_mismatch",
            Code::UnknownField => "unknown_field",
            Code::NoCallBinding => "no_call_binding",
            Code::NoContactField => "no_contact_field",
            Code::NumberPoolExhausted => "number_pool_exhausted",
            Code::RelayFailed => "relay_failed",
            Code::RelayNotConfigured => "relay_not_configured",
            Code::Part(code) => code,
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error answer: the kind, a stable code, a message and the facts beside it.
#[derive(Debug, Clone)]
pub struct ServiceError {
    /// What sort of failure; the transport's status.
    pub kind: ErrorKind,
    /// Stable, machine-readable code; also the access record's reason code.
    pub code: Code,
    /// Human-readable explanation without request values.
    pub message: String,
    /// Facts of the refusal beside the message, if it has any (boxed: errors travel in
    /// `Err`, and most have none).
    pub details: Option<Box<Details>>,
}

/// Facts of a refusal as data, beside its message, for clients that word it themselves
/// (the web console does) rather than parse the message. Each is present only where it
/// applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Details {
    /// The ceiling reached (`quota_exceeded`): `customers_per_day`, `reveals_per_hour`
    /// or `searches_per_day`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// The length of that ceiling's sliding window, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// Seconds until the ceiling admits the request again (also `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The risk-alert restriction behind the refusal: `lower_quota` (the ceiling was
    /// lowered) or `step_up` (`step_up_required`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restriction: Option<String>,
    /// When that restriction ends, unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted_until: Option<i64>,
    /// The policy that denied the request (`forbidden`): e.g. `suspended`,
    /// `serves-customers`, `partner-no-email`, or the id of a policy of the security
    /// team's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The share of each ceiling left under a `lower_quota` restriction (0 to 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_share: Option<f64>,
}

impl ServiceError {
    /// An error with the given status, code and message.
    pub fn new(kind: ErrorKind, code: Code, message: impl Into<String>) -> Self {
        ServiceError {
            kind,
            code,
            message: message.into(),
            details: None,
        }
    }
    /// 400 with a code.
    pub fn bad_request(code: Code, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, code, message)
    }
    /// 401: no or unknown bearer token.
    pub fn unauthenticated() -> Self {
        Self::new(
            ErrorKind::Unauthenticated,
            Code::Unauthenticated,
            "a valid bearer token is required",
        )
    }
    /// 403 from an authorization decision; `reason` is the deciding policy's id, also
    /// given as the `policy` fact.
    pub fn forbidden(reason: &str) -> Self {
        Self::new(
            ErrorKind::Forbidden,
            Code::Forbidden,
            format!("denied by policy ({reason})"),
        )
        .with_details(Details {
            policy: Some(reason.to_owned()),
            ..Details::default()
        })
    }
    /// The same error, carrying `details`.
    pub fn with_details(self, details: Details) -> Self {
        ServiceError {
            details: Some(Box::new(details)),
            ..self
        }
    }
    /// 404 for an id that does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            Code::NotFound,
            format!("{what} not found"),
        )
    }
    /// 410: the customer was erased at their request.
    pub fn erased() -> Self {
        Self::new(
            ErrorKind::Gone,
            Code::Erased,
            "this customer was erased at their request",
        )
    }
    /// 409 for an id that exists already.
    pub fn conflict(what: &str) -> Self {
        Self::new(
            ErrorKind::Conflict,
            Code::Conflict,
            format!("{what} already exists"),
        )
    }
    /// 503: the access record could not be made durable, so nothing is answered.
    pub fn ledger_unavailable() -> Self {
        Self::new(
            ErrorKind::Unavailable,
            Code::LedgerUnavailable,
            "the access record could not be written; the request was refused",
        )
    }
    /// 503: the key provider (a PKCS#11 token) failed; what failed goes to the log.
    pub fn key_provider(e: &custos_crypto::CryptoError) -> Self {
        tracing::error!(code = e.code(), error = %e, "key provider failed");
        Self::new(
            ErrorKind::Unavailable,
            Code::KeyProviderUnavailable,
            "the key provider is unavailable; try again later",
        )
    }
    /// 500 without details (they go to the log, never to the caller).
    pub fn internal() -> Self {
        Self::new(
            ErrorKind::Internal,
            Code::Internal,
            "internal error; see the server log",
        )
    }
    /// 429 for the ceiling `which` of a `window_secs` window, with the time until it
    /// admits the request again.
    pub fn quota_exceeded(which: &str, window_secs: u64, retry_after: u64) -> Self {
        ServiceError {
            details: Some(Box::new(Details {
                quota: Some(which.to_owned()),
                window_secs: Some(window_secs),
                retry_after: Some(retry_after.max(1)),
                ..Details::default()
            })),
            ..Self::new(
                ErrorKind::TooManyRequests,
                Code::QuotaExceeded,
                format!("quota {which} exhausted"),
            )
        }
    }
}

impl From<custos_store::StoreError> for ServiceError {
    fn from(e: custos_store::StoreError) -> Self {
        match e {
            custos_store::StoreError::Conflict => ServiceError::conflict("entry"),
            custos_store::StoreError::NotFound => ServiceError::not_found("entry"),
            // Refused, not failed: the node recovers by itself once the database is back.
            custos_store::StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "store unavailable");
                ServiceError::new(
                    ErrorKind::Unavailable,
                    Code::StoreUnavailable,
                    "the store does not answer; the request was refused",
                )
            }
            other => {
                tracing::error!(error = %other, "store error");
                ServiceError::internal()
            }
        }
    }
}
