//! Signing in and out. Staff sign in with their API token: the console checks it with
//! `GET /v1/me` (so the sign-in is recorded like any request) and keeps only its hash in
//! the session. With `[idp.console]`, the page also offers single sign-on with the
//! company's identity provider (`sso.rs`). A customer signs in by opening their customer access link; the link's
//! token leaves the address bar at once (a redirect), it opens one session only, and
//! the session ends when the link does.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use custos_crypto::LinkError;
use custos_types::Role;
use maud::html;
use serde::Deserialize;

use super::page::{self, respond};
use super::session::{SIGNIN_COOKIE, Who};
use super::{Call, ClientAddr, Page, Shared, Visitor};
use custos_service::auth::{SessionCredential, token_hash};
use custos_store::SessionSubject;

#[derive(Deserialize)]
pub(super) struct SigninForm {
    token: String,
    signin: String,
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub(super) csrf: String,
}

/// Who `GET /v1/me` says the caller is.
#[derive(Deserialize)]
pub(super) struct Me {
    pub(super) id: String,
    pub(super) role: Role,
    pub(super) org: String,
}

/// What a suspended person is told when they try to sign in.
pub(super) const SUSPENDED: &str = "Your access is suspended. Contact your team lead or the security team; every request while suspended is recorded.";

/// `GET /signin`.
pub(super) async fn form(State(console): State<Shared>) -> Response {
    signin_page(&console, StatusCode::OK, None)
}

/// The sign-in page, with `error` above the form.
pub(super) fn signin_page(console: &Shared, status: StatusCode, error: Option<&str>) -> Response {
    let (token, cookie) = console.sessions.signin_token();
    let sso = console.app.console_sso().map(|s| s.provider_name());
    let mut response = respond(
        status,
        "Sign in",
        None,
        html! {
            @if let Some(error) = error {
                p.problem role="alert" { (error) }
            }
            @if let Some(provider) = sso {
                p { a.button href="/signin/oidc" { "Sign in with " (provider) } }
                p.muted { "Or sign in with a staff token:" }
            }
            form.stack method="post" action="/signin" {
                input type="hidden" name="signin" value=(token);
                label for="token" { "Staff token" }
                input #token type="password" name="token" autocomplete="off" required
                    aria-describedby="token-help";
                p #token-help .muted {
                    "Paste the API token you were issued (it starts with cst_). The console keeps only its hash; revoking the token ends the session."
                }
                button type="submit" { "Sign in" }
            }
            p.muted { "Customers: open the access link you were given." }
        },
    );
    if let Ok(v) = cookie.parse() {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, v);
    }
    response
}

/// `POST /signin`.
pub(super) async fn submit(
    State(console): State<Shared>,
    headers: HeaderMap,
    ClientAddr(client): ClientAddr,
    Form(form): Form<SigninForm>,
) -> Response {
    if !console.sessions.signin_token_ok(&headers, &form.signin) {
        return signin_page(
            &console,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired or was not sent from this page. Please try again."),
        );
    }
    let invalid = || {
        signin_page(
            &console,
            StatusCode::UNAUTHORIZED,
            Some("That token is not valid, or it was revoked."),
        )
    };
    let Some(token_hash) = token_hash(&form.token) else {
        return invalid();
    };
    let credential = SessionCredential::Staff {
        token_hash: token_hash.clone(),
    };
    let reply = console
        .call(&credential, client, Method::GET, "/v1/me", Call::default())
        .await;
    // `/v1/me` refuses a valid token only for a suspended person: say so, not "invalid".
    if reply.status == StatusCode::FORBIDDEN {
        return signin_page(&console, StatusCode::FORBIDDEN, Some(SUSPENDED));
    }
    if !reply.status.is_success() {
        return invalid();
    }
    let Ok(me) = serde_json::from_slice::<Me>(&reply.body) else {
        return invalid();
    };
    let subject = SessionSubject::Staff {
        token_hash,
        staff_id: me.id,
        role: me.role,
        org: me.org,
    };
    match console.sessions.open(subject).await {
        Ok(session) => page::see_other("/", &[session, console.sessions.clear(SIGNIN_COOKIE)]),
        Err(e) => page::unavailable(&e),
    }
}

/// `POST /signout`.
pub(super) async fn signout(
    State(console): State<Shared>,
    visitor: Visitor,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Page {
    visitor.check_csrf(&form.csrf)?;
    let cleared = console
        .sessions
        .close(&headers)
        .await
        .map_err(|e| page::unavailable(&e))?;
    Ok(page::see_other("/signin", &[cleared]))
}

/// `GET /customer/enter?link=…`: a customer opens their access link. The link must be
/// in its issued form (the query exactly `link=<token>`), and opens one session only:
/// the answer is a redirect to `/customer` with the session cookie, so the token leaves
/// the address bar at once, and a second visit with the same link opens nothing (the
/// same customer's own live session is sent on to their page).
pub(super) async fn customer_link(
    State(console): State<Shared>,
    visitor: Option<Visitor>,
    uri: Uri,
) -> Response {
    let now = custos_types::clock::now_millis();
    let opened = link_token(&uri).and_then(|token| {
        let (id, until) = console.app.open_customer_link(token, now)?;
        Ok((token, id, until))
    });
    let (token, id, until) = match opened {
        Ok(opened) => opened,
        Err(e) => return link_refused(e.code(), &e.to_string()),
    };
    let claimed = match console.sessions.claim_link(token, until, now).await {
        Ok(claimed) => claimed,
        Err(e) => return page::unavailable(&e),
    };
    if !claimed {
        if let Some(Who::Customer { id: own, .. }) = visitor.as_ref().map(|v| &v.session.who)
            && *own == id
        {
            return page::see_other("/customer", &[]);
        }
        return link_refused(
            "link_used",
            "This access link was already used to open your page, and opens it only once.",
        );
    }
    match console
        .sessions
        .open(SessionSubject::Customer {
            customer_id: id,
            until,
        })
        .await
    {
        Ok(session) => page::see_other("/customer", &[session]),
        Err(e) => page::unavailable(&e),
    }
}

/// The token of a link address: the query must be exactly `link=<token>` with the
/// token's own characters (those of an id and of base64url; no percent-encoding, no
/// other parameter), so one link has one address.
fn link_token(uri: &Uri) -> Result<&str, LinkError> {
    let query = uri.query().unwrap_or("");
    match query.strip_prefix("link=") {
        Some(token)
            if !token.is_empty()
                && token.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':')
                }) =>
        {
            Ok(token)
        }
        _ if query.contains("link=") => Err(LinkError::NotCanonical),
        _ => Err(LinkError::Invalid),
    }
}

fn link_refused(code: &str, message: &str) -> Response {
    page::problem(
        StatusCode::UNAUTHORIZED,
        None,
        code,
        message,
        Some(html! {
            p { "Ask the company's customer service for a new link to see who accessed your data." }
        }),
    )
}
