//! The frame every console page shares: the HTML document, navigation by role, the
//! security headers, error pages and small formatting helpers.
//!
//! Every answer, including the framework's refusals (rewritten by [`guard`]), comes
//! with a strict Content-Security-Policy (no script at all, styles only from the
//! console's own stylesheet, forms only to the console), is never cached (pages may
//! show revealed values; the customer link's answers carry a session) and is never
//! framed.

use axum::extract::Request;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use custos_types::Role;
use maud::{DOCTYPE, Markup, html};

use super::session::{Session, Who};
use custos_gateway::error::Answered;
use custos_gateway::rejection::{self, Refusal};

/// The policy of every console page: nothing but the console's stylesheet, its own
/// forms and inline SVG without scripts.
pub(super) const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's stylesheet, shipped in the binary.
pub(super) const STYLESHEET: &str = include_str!("console.css");

/// Roles that work the analyst pages.
pub(super) fn is_analyst(role: Role) -> bool {
    matches!(role, Role::SecurityAnalyst | Role::Admin)
}

/// A full page with the frame for `session` (or for a visitor who is not signed in).
pub(super) fn document(title: &str, session: Option<&Session>, body: Markup) -> Response {
    respond(StatusCode::OK, title, session, body)
}

/// A page with a status other than 200.
pub(super) fn respond(
    status: StatusCode,
    title: &str,
    session: Option<&Session>,
    body: Markup,
) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Custos" }
                link rel="stylesheet" href="/console.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Custos" }
                    @if let Some(s) = session { (nav(s)) }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    with_headers(status, "text/html; charset=utf-8", markup.into_string())
}

fn nav(session: &Session) -> Markup {
    html! {
        nav aria-label="Main" {
            @match &session.who {
                Who::Staff { id, role, org, .. } => {
                    @if is_analyst(*role) {
                        a href="/alerts" { "Alerts" }
                        a href="/ledger" { "Ledger" }
                        a href="/trace" { "Leak trace" }
                    } @else {
                        a href="/cases" { "My cases" }
                    }
                    @if *role == Role::TeamLead {
                        a href="/approvals" { "Access requests" }
                    }
                    span.who { (id) " · " (role) " · " (org) }
                }
                Who::Customer { .. } => {
                    a href="/customer" { "Who accessed my data" }
                }
            }
            form.inline method="post" action="/signout" {
                (csrf_field(session))
                button type="submit" { "Sign out" }
            }
        }
    }
}

/// The hidden field every state-changing form carries.
pub(super) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A page saying a request was refused or failed: what happened, the stable code, and
/// what to do about it.
pub(super) fn problem(
    status: StatusCode,
    session: Option<&Session>,
    code: &str,
    message: &str,
    help: Option<Markup>,
) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => "Access denied",
        StatusCode::TOO_MANY_REQUESTS => "Quota reached",
        StatusCode::NOT_FOUND => "Not found",
        s if s.is_client_error() => "Request refused",
        _ => "Something went wrong",
    };
    respond(
        status,
        title,
        session,
        html! {
            section.problem role="alert" {
                p { (message) }
                p.code { "Code: " code { (code) } }
                @if let Some(help) = help { (help) }
            }
        },
    )
}

/// The page shown when the store cannot be reached for a session: refused, never
/// served without one.
pub(super) fn unavailable(e: &custos_store::StoreError) -> Response {
    problem(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        None,
        "store_unavailable",
        &format!(
            "Sessions cannot be read right now ({}); try again in a moment.",
            e.code()
        ),
        None,
    )
}

/// Serves the stylesheet (not cached either: every console answer is `no-store`, one
/// rule without exceptions; it is small).
pub(super) fn stylesheet() -> Response {
    with_headers(
        StatusCode::OK,
        "text/css; charset=utf-8",
        STYLESHEET.to_owned(),
    )
}

/// Middleware of every console route: request headers over the limit and the
/// framework's own refusals (a path segment that is not UTF-8, a query or form that
/// does not deserialize, a missing content type) become the console's error page with
/// a stable code; every answer gets the security headers.
pub(super) async fn guard(request: Request, next: Next) -> Response {
    if rejection::headers_too_large(request.headers()) {
        return refused(Refusal::HEADERS_TOO_LARGE);
    }
    let mut response = match rejection::foreign(next.run(request).await).await {
        Ok(refusal) => refused(refusal),
        Err(response) => response,
    };
    security_headers(response.headers_mut());
    response
}

/// The error page for a refusal made before any console handler ran.
fn refused(refusal: Refusal) -> Response {
    problem(
        refusal.status,
        None,
        refusal.code,
        refusal.message,
        Some(html! { p { a href="/" { "Back to the console" } } }),
    )
}

/// A body of `content_type` with the console's security headers.
pub(super) fn with_headers(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response {
    let mut r = (status, body).into_response();
    r.extensions_mut().insert(Answered);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    security_headers(h);
    r
}

/// The headers every console answer carries (see the module docs).
fn security_headers(h: &mut HeaderMap) {
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
}

/// A redirect (303, so a form's POST becomes a GET), with the security headers and any
/// cookies to set.
pub(super) fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut r = with_headers(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        String::new(),
    );
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(location) {
        h.insert(axum::http::header::LOCATION, v);
    }
    for c in cookies {
        if let Ok(v) = HeaderValue::from_str(c) {
            h.append(axum::http::header::SET_COOKIE, v);
        }
    }
    r
}

/// A time as every console page shows it: `2026-12-02 14:05:10 UTC` (no script runs in
/// the browser to turn it into the reader's zone, and UTC is what the ledger and the CLI
/// print).
pub(super) use custos_types::calendar::utc as when;

/// [`when`] in a table cell: it may wrap between the date and the time, never inside
/// either (a browser breaks a narrow column at a date's hyphens). One element, as a
/// reflowed row wants of a cell.
pub(super) fn when_cell(ms: i64) -> Markup {
    let text = when(ms);
    match text.split_once(' ') {
        Some((date, time)) => html! { span { span.nowrap { (date) } " " span.nowrap { (time) } } },
        None => html! { span { (text) } },
    }
}

/// A length of time in words, in its largest whole unit: a quota's window, a wait, an
/// age.
pub(super) fn duration(ms: i64) -> String {
    let mins = ms.max(0) / 60_000;
    match mins {
        0 => "less than a minute".to_owned(),
        1..=59 => format!("{mins} min"),
        60..=119 => "1 hour".to_owned(),
        120..=2879 => format!("{} hours", mins / 60),
        _ => format!("{} days", mins / 1440),
    }
}

/// How long ago `ms` was, at `now`.
pub(super) fn age(ms: i64, now: i64) -> String {
    // Saturating: a time from a record is data, not a trusted small number.
    match now.saturating_sub(ms) {
        ..60_000 => "just now".to_owned(),
        ago => format!("{} ago", duration(ago)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_words_in_the_largest_whole_unit() {
        assert_eq!(age(0, 90 * 60_000), "1 hour ago");
        assert_eq!(age(0, 30_000), "just now");
        assert_eq!(age(60_000, 0), "just now");
        assert_eq!(duration(3_600_000), "1 hour");
        assert_eq!(duration(86_400_000), "24 hours");
        assert_eq!(duration(12 * 60_000 + 59_999), "12 min");
        assert_eq!(duration(3 * 86_400_000), "3 days");
        assert_eq!(duration(1_000), "less than a minute");
    }
}
