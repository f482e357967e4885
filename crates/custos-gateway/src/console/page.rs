//! The frame every console page shares: the HTML document, navigation by role, the
//! security headers, error pages and small formatting helpers.
//!
//! Every page answers with a strict Content-Security-Policy (no script at all, styles
//! only from the console's own stylesheet, forms only to the console), is never cached
//! (pages may show revealed values) and is never framed.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::{Session, Who};

/// The policy of every console page: nothing but the console's stylesheet, its own
/// forms and inline SVG without scripts.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's stylesheet, shipped in the binary.
pub const STYLESHEET: &str = include_str!("console.css");

/// Roles that work the analyst pages.
pub fn is_analyst(role: &str) -> bool {
    matches!(role, "security_analyst" | "admin")
}

/// A full page with the frame for `session` (or for a visitor who is not signed in).
pub fn document(title: &str, session: Option<&Session>, body: Markup) -> Response {
    respond(StatusCode::OK, title, session, body)
}

/// A page with a status other than 200.
pub fn respond(
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
                    @if is_analyst(role) {
                        a href="/alerts" { "Alerts" }
                        a href="/ledger" { "Ledger" }
                        a href="/trace" { "Leak trace" }
                    } @else {
                        a href="/cases" { "My cases" }
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
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A page saying a request was refused or failed: what happened, the stable code, and
/// what to do about it.
pub fn problem(
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

/// Serves the stylesheet.
pub fn stylesheet() -> Response {
    let mut r = with_headers(
        StatusCode::OK,
        "text/css; charset=utf-8",
        STYLESHEET.to_owned(),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    r
}

/// A body of `content_type` with the console's security headers.
pub fn with_headers(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
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
    r
}

/// A redirect (303, so a form's POST becomes a GET), with the security headers and any
/// cookies to set.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
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

pub use custos_store::calendar::utc as when;

/// How long ago `ms` was, at `now`, in the largest whole unit.
pub fn age(ms: i64, now: i64) -> String {
    let mins = (now - ms).max(0) / 60_000;
    match mins {
        0 => "just now".to_owned(),
        1..=59 => format!("{mins} min ago"),
        60..=2879 => format!("{} h ago", mins / 60),
        _ => format!("{} days ago", mins / 1440),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_in_the_largest_whole_unit() {
        assert_eq!(age(0, 90 * 60_000), "1 h ago");
        assert_eq!(age(0, 30_000), "just now");
    }
}
