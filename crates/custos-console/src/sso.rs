//! Single sign-on with the company's identity provider (`[idp.console]`): OpenID
//! Connect's authorization code flow with PKCE, the relying party's protocol in
//! `custos_service::oidc`, the browser's side here.
//!
//! * `GET /signin/oidc` starts a sign-in: a fresh secret ([`Flow`]) goes into a cookie
//!   (HttpOnly, SameSite=Lax — the provider sends the browser back with a cross-site
//!   top-level GET, which a Strict cookie would not accompany — limited to
//!   `/signin/oidc` and ten minutes), and the browser to the provider's authorization
//!   endpoint with `state`, `nonce` and the S256 `code_challenge` derived from it.
//! * `GET /signin/oidc/callback` takes the provider's answer: the `state` must be the one
//!   derived from this browser's cookie; a provider error, an `iss` of another issuer, a
//!   code the token endpoint does not exchange (a code is exchanged once: a replayed
//!   callback ends here) or an ID token that does not pass (signature, issuer, audience =
//!   client id, times, nonce) each end on the sign-in page with a 4xx and a plain
//!   message. A state that passed is then used once (kept, hashed, with the used
//!   customer links until the flow would have expired, so one sign-in opens one session
//!   on any node; claimed only after the provider vouched for the person, so made-up
//!   callbacks cannot fill that table). The cookie is cleared by every answer.
//! * The person is then signed in through the API, as with a token: `GET /v1/me` with
//!   the session credential, a recorded request, where Custos's staff entry decides —
//!   someone not provisioned is 401, a suspended person 403 by policy, a role or
//!   organisation claim that disagrees with the entry 401 `identity_mismatch`. Only then
//!   is a session opened, the same as a token's (cookie, CSRF, idle and absolute limits).
//!
//! How the session ends. It is bound to the staff entry, not to a token: the session
//! keeps the staff id with the role and organisation the entry had at sign-in
//! (`SessionCredential::SingleSignOn`), and every call the console makes loads that
//! entry again. So Custos's status check on each request is the safety net: a person
//! suspended (by an analyst, the detector, or provisioning) is refused by policy from
//! the next request on; one whose entry is removed, or whose role or organisation
//! changes, is unauthenticated and sent to the sign-in page; and ending a person's
//! credentials (`Store::end_credentials`, which SCIM deprovisioning calls) deletes the
//! session outright. A local token minted per sign-in was the other choice: it would
//! also end with a token revocation, but it leaves an unusable token row per sign-in
//! that nothing expires, and shows in the person's token list as one they never had.
//! Nothing personal is logged: a refusal logs its code only.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use custos_service::auth::SessionCredential;
use custos_service::oidc::{Flow, SsoError};
use custos_store::SessionSubject;
use maud::html;
use serde::Deserialize;

use super::page;
use super::session::{SIGNIN_COOKIE, SSO_SECONDS};
use super::signin::{Me, SUSPENDED, signin_page};
use super::{Call, ClientAddr, Shared};

/// The provider's answer on the callback (other parameters are ignored).
#[derive(Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// The error codes a provider may send back (RFC 6749 §4.1.2.1, OpenID Connect Core
/// §3.1.2.6): shown as sent; any other is shown as `refused`.
const PROVIDER_ERRORS: &[&str] = &[
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
];

fn not_configured() -> Response {
    page::problem(
        StatusCode::NOT_FOUND,
        None,
        "sso_not_configured",
        "Single sign-on is not configured here. Sign in with your staff token.",
        Some(html! { p { a href="/signin" { "Sign in" } } }),
    )
}

/// `GET /signin/oidc`: to the provider.
pub(super) async fn start(State(console): State<Shared>) -> Response {
    let Some(sso) = console.app.console_sso() else {
        return not_configured();
    };
    let flow = Flow::new();
    match sso.authorization_url(&flow).await {
        Ok(address) => page::see_other(
            &address,
            &[console.sessions.sso_cookie(flow.cookie_value())],
        ),
        Err(e) => {
            tracing::warn!(code = e.code(), "console sign-on could not start");
            signin_page(
                &console,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(&format!(
                    "{} cannot be reached right now; try again in a moment, or sign in with your staff token.",
                    sso.provider_name()
                )),
            )
        }
    }
}

/// `GET /signin/oidc/callback`: the provider's answer.
pub(super) async fn callback(
    State(console): State<Shared>,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Query(answer): Query<Callback>,
) -> Response {
    let Some(sso) = console.app.console_sso() else {
        return not_configured();
    };
    let provider = sso.provider_name();
    let clear = console.sessions.sso_cookie("");
    let refuse = |status: StatusCode, code: &str, message: &str| {
        tracing::info!(code, "console sign-on refused");
        let mut page = signin_page(&console, status, Some(message));
        if let Ok(v) = clear.parse() {
            page.headers_mut().append(axum::http::header::SET_COOKIE, v);
        }
        page
    };
    let Some(flow) = console
        .sessions
        .sso_flow(&headers)
        .and_then(|v| Flow::from_cookie(&v))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "sso_no_flow",
            "This sign-in was not started in this browser, or took longer than ten minutes. Please sign in again.",
        );
    };
    let Some(state) = answer.state.filter(|s| flow.state_matches(s)) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "sso_state_mismatch",
            "This sign-in's answer does not belong to the sign-in this browser started. Please sign in again.",
        );
    };
    if let Some(error) = answer.error {
        let code = PROVIDER_ERRORS
            .iter()
            .find(|c| **c == error)
            .copied()
            .unwrap_or("refused");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "sso_provider_error",
            &format!("{provider} did not sign you in ({code})."),
        );
    }
    // RFC 9207: an issuer that names itself must be ours (a mix-up of providers).
    if answer.iss.as_deref().is_some_and(|iss| iss != sso.issuer()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "sso_wrong_issuer",
            "The answer came from another identity provider. Please sign in again.",
        );
    }
    let Some(code) = answer.code else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "sso_no_code",
            "The identity provider's answer carries no sign-in code. Please sign in again.",
        );
    };
    let signed_on = match sso.finish(&flow, &code).await {
        Ok(s) => s,
        Err(e) => {
            let message = match &e {
                SsoError::Unavailable => format!("{provider} cannot be reached right now."),
                SsoError::Exchange(why) => {
                    format!("{provider} did not confirm the sign-in ({why}). Please sign in again.")
                }
                SsoError::IdToken(why) => format!(
                    "{provider}'s answer did not pass Custos's checks ({why}). Please sign in again; if it keeps failing, tell your administrator."
                ),
            };
            return refuse(StatusCode::UNAUTHORIZED, e.code(), &message);
        }
    };
    // One sign-in, one session: the state is claimed once the provider has vouched for
    // the person (not before, so that made-up callbacks cannot fill the store's used
    // entries, which customer links share). A replayed callback fails before this at
    // the token endpoint (a code is exchanged once), and here if it did not.
    let now = custos_types::clock::now_millis();
    let until = now.saturating_add(i64::try_from(SSO_SECONDS * 1000).unwrap_or(i64::MAX));
    match console.sessions.claim_sso_state(&state, until, now).await {
        Ok(true) => {}
        Ok(false) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "sso_state_used",
                "This sign-in was already used. Please sign in again.",
            );
        }
        Err(e) => return page::unavailable(&e),
    }
    let credential = SessionCredential::SingleSignOn {
        staff_id: signed_on.staff_id,
        role: signed_on.role,
        org: signed_on.org,
    };
    let reply = console
        .call(&credential, client, Method::GET, "/v1/me", Call::default())
        .await;
    if reply.status == StatusCode::FORBIDDEN {
        return refuse(StatusCode::FORBIDDEN, "sso_suspended", SUSPENDED);
    }
    let me = reply
        .status
        .is_success()
        .then(|| serde_json::from_slice::<Me>(&reply.body).ok())
        .flatten();
    let Some(me) = me else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "sso_not_provisioned",
            &format!(
                "{provider} signed you in, but Custos has no staff entry for you with that role and organisation. Ask your administrator for access."
            ),
        );
    };
    let subject = SessionSubject::SingleSignOn {
        staff_id: me.id,
        role: me.role,
        org: me.org,
    };
    match console.sessions.open(subject).await {
        Ok(session) => page::see_other(
            "/",
            &[session, console.sessions.clear(SIGNIN_COOKIE), clear],
        ),
        Err(e) => page::unavailable(&e),
    }
}
