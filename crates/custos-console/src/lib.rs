//! The web console: server-rendered pages for security analysts, agents and customers,
//! served at `/` beside the API ([`site`]; no JavaScript, no external resources).
//!
//! The console holds no data and decides nothing. Every page reads and acts through the
//! API with an internal call ([`Console::call`]) that carries the session's credential
//! as a request extension: the same authentication, Cedar policy, quotas and ledger
//! record as any API client, and the same error codes, which the console shows in plain
//! words. What each part owns:
//!
//! * [`session`]: cookies, sessions, CSRF, idle timeout;
//! * [`page`]: the document frame, the Content-Security-Policy and other headers;
//! * [`signin`]: signing in with a staff token or a customer access link, signing out;
//! * [`sso`]: single sign-on with the company's identity provider (OpenID Connect);
//! * [`agent`]: my cases, the masked customer card, contact through the relays, reveals
//!   with a reason, quotas;
//! * [`analyst`]: the alert queue and its actions, a person's and a company's activity;
//! * [`chart`]: the activity chart (server-side SVG);
//! * [`ledger`]: the checkpoint, full verification, an entry with its proof;
//! * [`trace`]: leak upload, ranked suspects, the evidence bundle;
//! * [`customer`]: a customer's view of every access to their record.

mod agent;
mod analyst;
mod approvals;
mod chart;
mod customer;
mod ledger;
mod page;
mod session;
mod signin;
mod sso;
mod trace;

use custos_types::Role;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use tower::ServiceExt as _;

use self::page::is_analyst;
use self::session::{Session, Sessions, Who};
use custos_service::SharedApp;
use custos_service::auth::SessionCredential;

/// Largest answer of the API the console reads (an evidence bundle can be large).
const MAX_REPLY: usize = 64 * 1024 * 1024;

/// The console's shared state.
pub(crate) struct Console {
    app: SharedApp,
    /// The API router, called in process.
    api: Router,
    sessions: Sessions,
}

type Shared = Arc<Console>;

/// The whole site: the API (`custos_gateway`) and the console at `/`, which calls the
/// API in process for everything it shows or does.
pub fn site(app: SharedApp) -> Router {
    let api = custos_gateway::api::api(app.clone());
    let console = router(app, custos_gateway::api::observed(api.clone()));
    custos_gateway::api::outer_layers(api.merge(console))
}

/// The console's routes, calling `api` for everything they show or do.
fn router(app: SharedApp, api: Router) -> Router {
    let config = &app.config().console;
    let sessions = Sessions::new(
        app.console_sessions(),
        Duration::from_secs(u64::from(config.idle_minutes) * 60),
        Duration::from_secs(u64::from(config.max_hours) * 3600),
        app.config().secure_cookie(),
    );
    let console = Arc::new(Console { app, api, sessions });
    Router::new()
        .route("/", get(home))
        .route("/console.css", get(|| async { page::stylesheet() }))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signin/oidc", get(sso::start))
        .route("/signin/oidc/callback", get(sso::callback))
        .route("/signout", post(signin::signout))
        .route("/cases", get(agent::cases))
        .route("/cases/{case}", get(agent::card))
        .route("/cases/{case}/reveal", post(agent::reveal))
        .route("/cases/{case}/contact", post(agent::contact))
        .route("/cases/{case}/ask", post(agent::ask))
        .route("/cases/{case}/break-glass", post(agent::break_glass))
        .route("/approvals", get(approvals::queue))
        .route("/approvals/{id}/{act}", post(approvals::decide))
        .route("/alerts", get(analyst::queue))
        .route("/alerts/{id}", get(analyst::alert))
        .route("/alerts/{id}/{act}", post(analyst::alert_act))
        .route("/staff/{id}", get(analyst::person))
        .route("/staff/{id}/{act}", post(analyst::person_act))
        .route("/orgs/{org}", get(analyst::org))
        .route("/ledger", get(ledger::overview))
        .route("/ledger/verify", post(ledger::verify))
        .route("/ledger/entry", get(ledger::entry))
        .route("/trace", get(trace::form).post(trace::upload))
        .route("/trace/evidence.json", get(trace::evidence))
        .route("/customer/enter", get(signin::customer_link))
        .route("/customer", get(customer::accesses))
        .route("/customer/copy", get(customer::copy_page))
        .route("/customer/copy.json", get(customer::copy_file))
        .with_state(console)
        .layer(axum::middleware::from_fn(page::guard))
}

/// `/`: the start page of the signed-in role, or the sign-in page.
async fn home(visitor: Option<Visitor>) -> Response {
    let target = match visitor.as_ref().map(|v| &v.session.who) {
        None => "/signin",
        Some(Who::Customer { .. }) => "/customer",
        Some(Who::Staff { role, .. }) if is_analyst(*role) => "/alerts",
        Some(Who::Staff { .. }) => "/cases",
    };
    page::see_other(target, &[])
}

/// The TCP peer of a request, when the server runs with connect info.
pub(crate) struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// A signed-in browser making a request.
pub(crate) struct Visitor {
    /// The session's key in the store.
    key: String,
    /// The session.
    session: Session,
    /// The TCP peer, passed on to the API for its record.
    client: Option<SocketAddr>,
}

impl FromRequestParts<Shared> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Shared) -> Result<Self, Response> {
        let Some((key, session)) = console
            .sessions
            .get(&parts.headers)
            .await
            .map_err(|e| page::unavailable(&e))?
        else {
            // Reading pages need a session; say so rather than show an empty page.
            return Err(page::see_other("/signin", &[]));
        };
        let Ok(ClientAddr(client)) = ClientAddr::from_request_parts(parts, console).await;
        Ok(Visitor {
            key,
            session,
            client,
        })
    }
}

impl axum::extract::OptionalFromRequestParts<Shared> for Visitor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Shared,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(
            <Visitor as FromRequestParts<Shared>>::from_request_parts(parts, console)
                .await
                .ok(),
        )
    }
}

impl Visitor {
    /// The staff role, or a page saying the console part is not for this visitor.
    fn staff_role(&self) -> Page<Role> {
        match &self.session.who {
            Who::Staff { role, .. } => Ok(*role),
            Who::Customer { .. } => Err(self.not_for_you().into()),
        }
    }

    /// The staff id of a staff session.
    fn staff_id(&self) -> Option<&str> {
        match &self.session.who {
            Who::Staff { id, .. } => Some(id),
            Who::Customer { .. } => None,
        }
    }

    /// Passes for security analysts and admins only.
    fn analyst(&self) -> Page<()> {
        if is_analyst(self.staff_role()?) {
            Ok(())
        } else {
            Err(self.not_for_you().into())
        }
    }

    fn not_for_you(&self) -> Response {
        page::problem(
            StatusCode::FORBIDDEN,
            Some(&self.session),
            "console_forbidden",
            "This page is not part of your role's console.",
            None,
        )
    }

    /// Checks a form's CSRF token.
    fn check_csrf(&self, token: &str) -> Page<()> {
        if session::csrf_ok(&self.session, token) {
            Ok(())
        } else {
            Err(page::problem(
                StatusCode::FORBIDDEN,
                Some(&self.session),
                "csrf_failed",
                "The form was not sent from this console session (or the page was too old). Go back, reload the page and try again.",
                None,
            ).into())
        }
    }
}

/// A page shown instead of the one asked for: a refusal, an API error in plain words,
/// or the way to sign in. Boxed, because a response is large and travels in `Err`.
pub(crate) struct Detour(Box<Response>);

impl From<Response> for Detour {
    fn from(page: Response) -> Self {
        Detour(Box::new(page))
    }
}

impl IntoResponse for Detour {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// What a page handler builds: the page, or the one shown instead.
type Page<T = Response> = Result<T, Detour>;

/// The console pages a form may send the browser back to after it acted, as route
/// templates (`*`: one id segment). Kept next to [`router`]: each is one of its GET
/// pages.
const RETURN_PAGES: &[&str] = &[
    "/",
    "/cases",
    "/cases/*",
    "/alerts",
    "/alerts/*",
    "/staff/*",
    "/orgs/*",
    "/ledger",
    "/trace",
    "/customer",
];

/// `candidate` if it is the address of one of the console's own pages
/// ([`RETURN_PAGES`], ids as the API spells them, and for the alert queue its `status`
/// filter), else `fallback`. An allow-list rather than a filter: browsers read `/\host`,
/// `/<TAB>/host` and the like as another host, so nothing but a known shape is followed.
fn return_to<'a>(candidate: Option<&'a str>, fallback: &'a str) -> &'a str {
    candidate.filter(|c| is_return_page(c)).unwrap_or(fallback)
}

fn is_return_page(candidate: &str) -> bool {
    let (path, query) = match candidate.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (candidate, None),
    };
    // Each segment as `valid_id` allows an id (no `%`, `\`, blanks or controls), and
    // never `.` or `..`.
    let segment_ok =
        |s: &str| custos_service::input::valid_id("page", s).is_ok() && s != "." && s != "..";
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    };
    if !segments.iter().all(|s| segment_ok(s)) {
        return false;
    }
    let matches = RETURN_PAGES.iter().any(|template| {
        let wanted: Vec<&str> = template[1..].split('/').filter(|s| !s.is_empty()).collect();
        wanted.len() == segments.len()
            && wanted
                .iter()
                .zip(&segments)
                .all(|(w, s)| *w == "*" || w == s)
    });
    let query_ok = match query {
        None => true,
        Some(q) => {
            path == "/alerts"
                && matches!(
                    q,
                    "status=open" | "status=acknowledged" | "status=dismissed" | "status=all"
                )
        }
    };
    matches && query_ok
}

/// `value` as one segment of an API path: an id from an address cannot reach another
/// route (`/`, `?`, `..`).
fn segment(value: &str) -> percent_encoding::PercentEncode<'_> {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
}

/// An API answer.
pub(crate) struct Reply {
    status: StatusCode,
    body: Bytes,
}

/// The API's error envelope.
#[derive(serde::Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    #[serde(flatten)]
    details: custos_service::Details,
}

/// What an internal call carries besides method and path.
#[derive(Default)]
struct Call {
    content_type: Option<String>,
    body: Option<Body>,
    case: Option<String>,
}

impl Console {
    /// Calls the API in process with `credential`, for a browser at `client` (see the
    /// module docs).
    async fn call(
        &self,
        credential: &SessionCredential,
        client: Option<SocketAddr>,
        method: Method,
        uri: &str,
        call: Call,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(ct) = &call.content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        if let Some(case) = &call.case {
            request = request.header(custos_service::customers::CASE_HEADER, case);
        }
        let Ok(mut request) = request.body(call.body.unwrap_or_else(Body::empty)) else {
            return Reply::failed();
        };
        request.extensions_mut().insert(credential.clone());
        if let Some(client) = client {
            request.extensions_mut().insert(ConnectInfo(client));
        }
        let response = match self.api.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        match axum::body::to_bytes(response.into_body(), MAX_REPLY).await {
            Ok(body) => Reply { status, body },
            Err(_) => Reply::failed(),
        }
    }

    /// A GET of `uri` decoded as `T`, or the page that explains why not.
    async fn get<T: DeserializeOwned>(&self, visitor: &Visitor, uri: &str) -> Page<T> {
        self.call_as(visitor, Method::GET, uri, Call::default())
            .await
            .decode(visitor)
    }

    /// A POST to `uri`, with a JSON body if any, decoded as `T`, or the page that
    /// explains why not.
    async fn post<T: DeserializeOwned>(
        &self,
        visitor: &Visitor,
        uri: &str,
        body: Option<&serde_json::Value>,
    ) -> Page<T> {
        let call = match body {
            Some(body) => Call {
                content_type: Some("application/json".to_owned()),
                body: Some(Body::from(body.to_string())),
                case: None,
            },
            None => Call::default(),
        };
        self.call_as(visitor, Method::POST, uri, call)
            .await
            .decode(visitor)
    }

    /// [`Console::call`] for a signed-in visitor.
    async fn call_as(&self, visitor: &Visitor, method: Method, uri: &str, call: Call) -> Reply {
        self.call(
            &visitor.session.credential,
            visitor.client,
            method,
            uri,
            call,
        )
        .await
    }
}

impl Reply {
    fn failed() -> Reply {
        Reply {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Bytes::from_static(
                br#"{"error":{"code":"internal","message":"the console could not reach the API"}}"#,
            ),
        }
    }

    /// The body as `T` when the call succeeded, else the page for its error.
    fn decode<T: DeserializeOwned>(self, visitor: &Visitor) -> Page<T> {
        if !self.status.is_success() {
            return Err(self.problem(visitor).into());
        }
        serde_json::from_slice(&self.body).map_err(|_| {
            Detour::from(page::problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(&visitor.session),
                "internal",
                "The API answered in a form the console does not read.",
                None,
            ))
        })
    }

    /// The page for an API error: what happened (the message, which says why and what
    /// to do, or for the refusals an agent meets the console's own words from the
    /// error's facts) and its code.
    fn problem(&self, visitor: &Visitor) -> Response {
        let error = match serde_json::from_slice::<ErrorEnvelope>(&self.body) {
            Ok(e) => e.error,
            Err(_) => ErrorBody {
                code: "internal".to_owned(),
                message: "The request failed.".to_owned(),
                details: custos_service::Details::default(),
            },
        };
        // A session whose token was revoked or whose person was removed is over.
        if self.status == StatusCode::UNAUTHORIZED {
            return page::see_other("/signin", &[]);
        }
        let message = in_words(&error, custos_types::clock::now_millis())
            .unwrap_or_else(|| error.message.clone());
        let help = help_for(&error, &visitor.session);
        page::problem(
            self.status,
            Some(&visitor.session),
            &error.code,
            &message,
            help,
        )
    }
}

/// The refusals an agent meets whose API message is for programs (times in unix ms,
/// field names), in words from the error's facts at `now`.
fn in_words(error: &ErrorBody, now: i64) -> Option<String> {
    let d = &error.details;
    let restricted = || {
        d.restriction
            .as_deref()
            .zip(d.restricted_until)
            .map(|(kind, until)| agent::restriction_words(kind, until, d.quota_share))
    };
    match error.code.as_str() {
        "quota_exceeded" => {
            let what = match d.quota.as_deref()? {
                "customers_per_day" => "different customers opened",
                "reveals_per_hour" => "field reveals",
                "searches_per_day" => "searches",
                _ => return None,
            };
            let window = page::duration(millis(d.window_secs?));
            let wait = millis(d.retry_after?);
            let mut text = format!(
                "You have reached your quota of {what} over {window}. The next one is possible in {} (at {}).",
                page::duration(wait),
                page::when(now.saturating_add(wait))
            );
            if let Some(restricted) = restricted() {
                text = format!("{text} {restricted}");
            }
            Some(text)
        }
        "step_up_required" => restricted(),
        _ => None,
    }
}

/// `secs` seconds in milliseconds (saturating: the count is data from an answer).
fn millis(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000)
}

/// What to do next, for the refusals an agent meets (a policy denial names its policy
/// as the `policy` fact).
fn help_for(error: &ErrorBody, session: &Session) -> Option<maud::Markup> {
    let policy = error.details.policy.as_deref();
    let refill;
    let text = match error.code.as_str() {
        "forbidden" if policy == Some("suspended") => {
            "Your access is suspended. Contact your team lead or the security team; every request while suspended is recorded."
        }
        "forbidden" if policy == Some("partner-no-email") => {
            "Partner staff never see a customer's email in full."
        }
        "forbidden" => {
            "Customer records open only for an open case assigned to you. If the customer is in contact with you, ask for a case to be opened in the CRM; it then appears under My cases."
        }
        "quota_exceeded" => {
            refill = match error.details.window_secs {
                Some(secs) => format!(
                    "Your quota protects customers from bulk harvesting. It refills over {}, as older uses leave the window; if your work needs more, ask your team lead.",
                    page::duration(millis(secs))
                ),
                None => "Your quota protects customers from bulk harvesting; if your work needs more, ask your team lead.".to_owned(),
            };
            &refill
        }
        "step_up_required" => {
            "Give a step-up justification (at least 20 characters) with the reveal; security reviews it."
        }
        _ => return None,
    };
    let back = match session.who {
        Who::Customer { .. } => "/customer",
        Who::Staff { .. } => "/",
    };
    Some(maud::html! {
        p { (text) }
        p { a href=(back) { "Back" } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_console_own_pages_are_return_addresses() {
        for good in [
            "/",
            "/alerts",
            "/alerts/al_1",
            "/alerts?status=all",
            "/staff/custos.support.001",
            "/orgs/huaxin-bpo",
            "/cases/case_1",
        ] {
            assert_eq!(return_to(Some(good), "/x"), good, "{good}");
        }
        for bad in [
            "//evil.example/phish",
            "/\\evil.example/phish",
            "/\\/evil.example",
            "/\t/evil.example/phish",
            "/\n/evil.example",
            "/alerts/\u{7f}",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/%2F%2Fevil.example",
            "/alerts/%2F%2Fevil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            " /alerts",
            "/alerts/",
            "/alerts/..",
            "/alerts/.",
            "/alerts/a/b",
            "/unknown",
            "/signout",
            "/alerts?status=open&x=1",
            "/alerts/a?status=all",
            "/alerts#x",
            "",
        ] {
            assert_eq!(return_to(Some(bad), "/alerts"), "/alerts", "{bad:?}");
        }
        assert_eq!(return_to(None, "/alerts"), "/alerts");
    }
}
