//! A typed client of the Custos API.
//!
//! One client serves every caller that is not a browser: the CLI's commands, the demo's
//! loader and working day, the simulator, the benchmarks and the integration tests. The
//! calls are typed ([`Client::view`], [`Client::reveal`], [`Client::create_case`], …);
//! each returns the server's [`Answer`] as it came (status, JSON body, text), because
//! callers differ in what a refusal means to them: a test asserts its code, the
//! simulator counts it, the CLI prints it.
//!
//! The client does not know how a request travels. [`Http`] sends it over HTTP; the
//! simulator implements [`Transport`] to hand requests to the gateway's router in
//! process, with each request carrying its simulated time ([`Client::at`]).

mod http;
mod wire;

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

pub use ::http::HeaderMap;

pub use crate::http::{Http, base_url};
pub use crate::wire::{
    AccessDecision, CallerIdentifier, ContactRequest, NewAccessRequest, NewBreakGlass, NewCase,
    NewContact, NewStaff, RevealRequest, Search,
};

/// The header naming the case a view is made under.
pub const CASE_HEADER: &str = "x-custos-case";
/// The header carrying a request's simulated time (servers started with a simulated
/// clock only).
pub const SIMULATED_TIME_HEADER: &str = "x-custos-simulated-time";

/// HTTP methods the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// DELETE.
    Delete,
}

/// A request as the client built it, for a [`Transport`] to deliver.
#[derive(Clone, Debug)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Bearer token.
    pub token: Option<String>,
    /// Further headers (the case, the simulated time).
    pub headers: Vec<(&'static str, String)>,
    /// Body and its content type.
    pub body: Option<(&'static str, Vec<u8>)>,
}

/// The server's answer: status, headers, the body as JSON (`Null` when it is not JSON)
/// and as text.
#[derive(Clone, Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The headers (`Retry-After`, `X-Request-Id`, `X-Custos-Ledger-Index`, …).
    pub headers: HeaderMap,
    /// The body as JSON, or `Null`.
    pub body: Value,
    /// The body as text (lossy UTF-8).
    pub text: String,
}

impl Answer {
    /// Reads a raw answer's body as JSON and as text.
    pub fn new(raw: RawAnswer) -> Answer {
        Answer {
            status: raw.status,
            body: serde_json::from_slice(&raw.bytes).unwrap_or(Value::Null),
            text: String::from_utf8_lossy(&raw.bytes).into_owned(),
            headers: raw.headers,
        }
    }

    /// The error code of a refusal (`{"error":{"code":…}}`), or `""`.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The error message of a refusal, or `""`.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A 4xx status: the server refused the request.
    pub fn is_refused(&self) -> bool {
        (400..500).contains(&self.status)
    }
}

/// The server's answer as bytes, for what is not JSON (ledger tiles, signed notes).
#[derive(Clone, Debug)]
pub struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub bytes: Vec<u8>,
}

/// A request that got no answer from the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or the connection failed mid-answer. The message
    /// names neither the URL's query nor the body (they may name a customer).
    #[error("cannot reach {base}: {reason}")]
    Unreachable {
        /// The server's base URL, or how the transport names the server.
        base: String,
        /// What failed.
        reason: String,
    },
    /// The request could not be built (a body that does not serialise).
    #[error("cannot build the request: {0}")]
    Request(String),
}

/// Delivers a [`Request`] and returns the server's [`Answer`].
pub trait Transport: Send + Sync {
    /// Sends one request.
    fn send(&self, request: Request)
    -> impl Future<Output = Result<RawAnswer, ClientError>> + Send;
}

/// The typed client over a transport. Cheap to clone.
pub struct Client<T> {
    transport: Arc<T>,
    at: Option<i64>,
}

impl<T> Clone for Client<T> {
    fn clone(&self) -> Self {
        Client {
            transport: self.transport.clone(),
            at: self.at,
        }
    }
}

impl<T: Transport> Client<T> {
    /// A client sending through `transport`.
    pub fn new(transport: T) -> Client<T> {
        Client {
            transport: Arc::new(transport),
            at: None,
        }
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// The same client, with every request carrying simulated time `at_ms` (unix ms).
    pub fn at(&self, at_ms: i64) -> Client<T> {
        Client {
            transport: self.transport.clone(),
            at: Some(at_ms),
        }
    }

    /// Sends a request built by hand (the simulated time is added when set).
    pub async fn send(&self, request: Request) -> Result<Answer, ClientError> {
        Ok(Answer::new(self.send_raw(request).await?))
    }

    /// The same, answering the body's bytes as they came.
    pub async fn send_raw(&self, mut request: Request) -> Result<RawAnswer, ClientError> {
        if let Some(at) = self.at {
            request
                .headers
                .push((SIMULATED_TIME_HEADER, at.to_string()));
        }
        self.transport.send(request).await
    }

    /// `GET path`, answering the body's bytes (ledger tiles, checkpoints, proofs).
    pub async fn get_raw(&self, token: &str, path: &str) -> Result<RawAnswer, ClientError> {
        self.send_raw(Self::request(Method::Get, token, path)).await
    }

    fn request(method: Method, token: &str, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            token: (!token.is_empty()).then(|| token.to_owned()),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET path` with `token` (an empty token sends none).
    pub async fn get(&self, token: &str, path: &str) -> Result<Answer, ClientError> {
        self.send(Self::request(Method::Get, token, path)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: &impl Serialize,
    ) -> Result<Answer, ClientError> {
        let bytes = serde_json::to_vec(body).map_err(|e| ClientError::Request(e.to_string()))?;
        self.post_raw(token, path, "application/json", bytes).await
    }

    /// `POST path` with a body of the given content type.
    pub async fn post_raw(
        &self,
        token: &str,
        path: &str,
        content_type: &'static str,
        bytes: Vec<u8>,
    ) -> Result<Answer, ClientError> {
        let mut request = Self::request(Method::Post, token, path);
        request.body = Some((content_type, bytes));
        self.send(request).await
    }

    /// `POST path` without a body.
    pub async fn post_empty(&self, token: &str, path: &str) -> Result<Answer, ClientError> {
        self.send(Self::request(Method::Post, token, path)).await
    }

    /// The masked customer, under `case`.
    pub async fn view(
        &self,
        token: &str,
        customer: &str,
        case: &str,
    ) -> Result<Answer, ClientError> {
        let mut request = Self::request(Method::Get, token, format!("/v1/customers/{customer}"));
        request.headers.push((CASE_HEADER, case.to_owned()));
        self.send(request).await
    }

    /// Reveals fields of a customer in full.
    pub async fn reveal(
        &self,
        token: &str,
        customer: &str,
        request: &RevealRequest<'_>,
    ) -> Result<Answer, ClientError> {
        self.post(token, &format!("/v1/customers/{customer}/reveal"), request)
            .await
    }

    /// Contacts a customer through a relay (a privacy-number call, an email, an SMS)
    /// without their number or address being shown.
    pub async fn contact(
        &self,
        token: &str,
        customer: &str,
        request: &ContactRequest<'_>,
    ) -> Result<Answer, ClientError> {
        self.post(token, &format!("/v1/customers/{customer}/contact"), request)
            .await
    }

    /// Asks for fields of a customer on one's own open case; an approver decides.
    pub async fn request_access(
        &self,
        token: &str,
        request: &NewAccessRequest<'_>,
    ) -> Result<Answer, ClientError> {
        self.post(token, "/v1/access-requests", request).await
    }

    /// Approves (`approve`) or denies pending access request `id`.
    pub async fn decide_access(
        &self,
        token: &str,
        id: &str,
        approve: bool,
        decision: &AccessDecision<'_>,
    ) -> Result<Answer, ClientError> {
        let verb = if approve { "approve" } else { "deny" };
        self.post(token, &format!("/v1/access-requests/{id}/{verb}"), decision)
            .await
    }

    /// Takes fields of a customer at once on one's own open case (break-glass).
    pub async fn break_glass(
        &self,
        token: &str,
        request: &NewBreakGlass<'_>,
    ) -> Result<Answer, ClientError> {
        self.post(token, "/v1/break-glass", request).await
    }

    /// Searches the caller's open cases' customers by one identifier.
    pub async fn search(&self, token: &str, by: Search<'_>) -> Result<Answer, ClientError> {
        self.get(token, &by.path()).await
    }

    /// Opens a case (the CRM, an admin).
    pub async fn create_case(
        &self,
        token: &str,
        case: &NewCase<'_>,
    ) -> Result<Answer, ClientError> {
        self.post(token, "/v1/cases", case).await
    }

    /// Reports a contact routed to an agent (the contact centre).
    pub async fn post_contact(
        &self,
        token: &str,
        contact: &NewContact<'_>,
    ) -> Result<Answer, ClientError> {
        self.post(token, "/v1/contacts", contact).await
    }

    /// Closes a case.
    pub async fn close_case(&self, token: &str, case: &str) -> Result<Answer, ClientError> {
        self.post_empty(token, &format!("/v1/cases/{case}/close"))
            .await
    }

    /// The caller: identity, quotas left, restrictions, open cases.
    pub async fn me(&self, token: &str) -> Result<Answer, ClientError> {
        self.get(token, "/v1/me").await
    }

    /// Creates a staff member (admin).
    pub async fn create_staff(
        &self,
        token: &str,
        staff: &NewStaff<'_>,
    ) -> Result<Answer, ClientError> {
        self.post(token, "/v1/staff", staff).await
    }

    /// Issues a bearer token for a staff member (admin); the token is `body.token`.
    pub async fn issue_token(&self, token: &str, staff: &str) -> Result<Answer, ClientError> {
        self.post_empty(token, &format!("/v1/staff/{staff}/tokens"))
            .await
    }

    /// Imports customers from NDJSON, all or none (admin, integration).
    pub async fn import(&self, token: &str, ndjson: Vec<u8>) -> Result<Answer, ClientError> {
        self.import_batch(token, ndjson, None, 1).await
    }

    /// Imports one batch of a file: with `key`, a resend of the same batch stores nothing
    /// new and is answered with the first send's ids; `first_line` is the number of the
    /// batch's first line in the file, which the server's errors then name.
    pub async fn import_batch(
        &self,
        token: &str,
        ndjson: Vec<u8>,
        key: Option<&str>,
        first_line: u64,
    ) -> Result<Answer, ClientError> {
        let mut request = Self::request(Method::Post, token, "/v1/customers/import");
        if let Some(key) = key {
            request.headers.push(("idempotency-key", key.to_owned()));
        }
        if first_line != 1 {
            request
                .headers
                .push(("x-custos-first-line", first_line.to_string()));
        }
        request.body = Some(("application/x-ndjson", ndjson));
        self.send(request).await
    }

    /// Plants canary customers from NDJSON (admin).
    pub async fn plant_canaries(
        &self,
        token: &str,
        ndjson: Vec<u8>,
    ) -> Result<Answer, ClientError> {
        self.post_raw(token, "/v1/canaries", "application/x-ndjson", ndjson)
            .await
    }

    /// Issues a customer access link valid for `hours` (the server's default when `None`).
    pub async fn issue_link(
        &self,
        token: &str,
        customer: &str,
        hours: Option<u32>,
    ) -> Result<Answer, ClientError> {
        let path = format!("/v1/customers/{customer}/link");
        match hours {
            Some(h) => {
                self.post(token, &path, &serde_json::json!({ "valid_hours": h }))
                    .await
            }
            None => self.post_empty(token, &path).await,
        }
    }
}

/// Serialises customers as NDJSON, one object per line, for [`Client::import`] and
/// [`Client::plant_canaries`].
pub fn ndjson<S: Serialize>(items: &[S]) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|e| ClientError::Request(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}
