//! The web console over real HTTP, as a browser without JavaScript uses it: sign-in and
//! sessions, CSRF on every form, the security headers of every page, what each role may
//! open, reveals through the console landing in the ledger and the quota, and a customer
//! seeing those accesses through their link. (The pages in a real browser: tests/browser.)
//! The console is a client of the API; one backend is enough (the API's own tests cover
//! both).

mod common;

use std::collections::HashMap;

use common::*;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

/// A cookie-keeping, non-redirecting client: what a browser does, visible step by step.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
}

/// One console answer.
struct Page {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The stable code an error page shows.
    fn code(&self) -> &str {
        self.text
            .split_once("Code: <code>")
            .and_then(|(_, rest)| rest.split_once("</code>"))
            .map_or("", |(code, _)| code)
    }

    /// The value of the hidden input `name` (the first one).
    fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let (_, rest) = self
            .text
            .split_once(&marker)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.text));
        rest.split_once('"').unwrap().0.to_owned()
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

/// `application/x-www-form-urlencoded`, as a browser sends a form.
fn form(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A `multipart/form-data` body of text parts, in order, as a browser sends a form with
/// a file; the part named `file` is sent as a file.
fn multipart(parts: &[(&str, &str)]) -> (String, String) {
    let boundary = "----formboundary7MA4YWxkTrZu0gW";
    let mut body = String::new();
    for (name, value) in parts {
        let filename = if *name == "file" {
            "; filename=\"leak.csv\"\r\nContent-Type: text/csv"
        } else {
            ""
        };
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: server.base.clone(),
            cookies: HashMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie)
        };
        let response = request.send().await.expect("request sent");
        let page = Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("body"),
        };
        for c in page.set_cookies() {
            let pair = c.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn upload(&mut self, path: &str, parts: &[(&str, &str)]) -> Page {
        let (content_type, body) = multipart(parts);
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        self.send(request).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(fields));
        self.send(request).await
    }

    /// Signs in with a staff token through the sign-in form; returns the session's CSRF
    /// token (from the page it lands on).
    async fn sign_in(&mut self, token: &str) -> String {
        let signin = self.get("/signin").await;
        assert_eq!(signin.status, 200);
        let r = self
            .post(
                "/signin",
                &[("signin", &signin.hidden("signin")), ("token", token)],
            )
            .await;
        assert_eq!((r.status, r.location()), (303, "/"), "{}", r.text);
        let home = self.get("/").await;
        let start = self.get(home.location()).await;
        assert_eq!(start.status, 200, "{}", start.text);
        start.hidden("csrf")
    }
}

/// Asserts the security headers every console answer carries.
fn assert_strict(page: &Page) {
    let h = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let csp = h("content-security-policy");
    for directive in [
        "default-src 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "CSP {csp:?} lacks {directive}");
    }
    assert!(!csp.contains("script-src"), "no script is ever allowed");
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("x-frame-options"), "DENY");
}

/// A case the CRM opens for `assignee` on the world's customer, with no contact behind
/// it: `unverified`, so a reveal on it needs an approval or a break-glass.
async fn unverified_case(c: &Client, w: &World, assignee: &str) -> String {
    let opened = c
        .post(
            &w.crm,
            "/v1/cases",
            json!({"customer": w.customer, "assignee": assignee, "channel": "phone",
                   "reason": "caller asked about this account"}),
        )
        .await;
    assert_eq!(opened.body["provenance"], "unverified", "{}", opened.body);
    opened.body["id"].as_str().unwrap().to_owned()
}

/// The card lists a grant of the phone on `case`, and a reveal with `reason` shows it.
async fn the_grant_opens_the_phone(b: &mut Browser, case: &str, csrf: &str, reason: &str) {
    let card = b.get(&format!("/cases/{case}")).await;
    assert!(card.text.contains("Granted: Phone until"), "{}", card.text);
    let r = b
        .post(
            &format!("/cases/{case}/reveal"),
            &[("csrf", csrf), ("field", "phone"), ("reason", reason)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(PHONE), "{}", r.text);
}

/// Remaining reveals this hour, from the API.
async fn reveals_left(c: &Client, token: &str) -> u64 {
    let me = c.get(token, "/v1/me").await;
    me.body["remaining"]["reveals_per_hour"].as_u64().unwrap()
}

#[tokio::test]
async fn staff_sessions_forms_and_what_each_role_opens() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let mut b = Browser::new(&server);

    // Without a session every page leads to the sign-in page, which sets only the
    // short-lived double-submit cookie, HttpOnly and SameSite=Strict.
    let r = b.get("/").await;
    assert_eq!((r.status, r.location()), (303, "/signin"));
    assert_eq!(b.get("/cases").await.location(), "/signin");
    assert_eq!(b.get("/alerts").await.location(), "/signin");
    let signin = b.get("/signin").await;
    assert_strict(&signin);
    let cookies = signin.set_cookies();
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    assert!(cookies[0].starts_with("custos_signin="), "{cookies:?}");
    assert!(
        cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Strict"),
        "{cookies:?}"
    );
    assert!(
        !cookies[0].contains("Secure"),
        "no TLS configured: {cookies:?}"
    );
    assert!(
        signin.text.contains("<label for=\"token\">"),
        "labelled input"
    );
    // Without [idp.console] there is no single sign-on: no button, and its routes say so.
    assert!(
        !signin.text.contains("/signin/oidc"),
        "no single sign-on offered"
    );
    for path in ["/signin/oidc", "/signin/oidc/callback?code=c&state=s"] {
        let r = b.get(path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(r.text.contains("sso_not_configured"), "{}", r.text);
        assert!(r.set_cookies().is_empty(), "{path} sets no cookie");
    }

    // A sign-in form not from this browser's sign-in page is refused; so is a bad token.
    let mut other = Browser::new(&server);
    let r = other
        .post(
            "/signin",
            &[("signin", &signin.hidden("signin")), ("token", &w.agent)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(!other.cookies.contains_key("custos_session"));
    let fresh = b.get("/signin").await;
    let r = b
        .post(
            "/signin",
            &[("signin", &fresh.hidden("signin")), ("token", "cst_nope")],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(!b.cookies.contains_key("custos_session"));

    // The agent signs in: a session cookie, and their cases.
    let before = reveals_left(&c, &w.agent).await;
    let csrf = b.sign_in(&w.agent).await;
    let cases = b.get("/cases").await;
    assert_strict(&cases);
    assert!(cases.text.contains(&format!("/cases/{}", w.case)));
    assert!(
        !cases.text.contains(&w.partner_case),
        "bob's case is not mine"
    );
    assert!(cases.text.contains("id=\"quotas\""));

    // The card is masked: no full value of the customer on the page or in any link.
    let card = b.get(&format!("/cases/{}", w.case)).await;
    assert_eq!(card.status, 200, "{}", card.text);
    assert_strict(&card);
    for value in [PHONE, EMAIL, ACCOUNT] {
        assert!(!card.text.contains(value), "{value} shown unmasked");
    }
    assert!(
        card.text.contains("8000"),
        "the masked phone keeps its last four"
    );

    // A reveal without the session's CSRF token changes nothing.
    let reveals = |records: &[serde_json::Value]| {
        records
            .iter()
            .filter(|r| r["action"] == "reveal" && r["staff_id"] == "alice")
            .count()
    };
    let recorded = reveals(&access_records(&server, "").await);
    let reveal_path = format!("/cases/{}/reveal", w.case);
    let reveal_form = [
        ("field", "phone"),
        ("reason", "confirm the delivery number"),
    ];
    let r = b
        .post(
            &reveal_path,
            &[&reveal_form[..], &[("csrf", "forged")]].concat(),
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{}", r.text);
    assert!(!r.text.contains(PHONE));
    assert_eq!(reveals(&access_records(&server, "").await), recorded);
    assert_eq!(reveals_left(&c, &w.agent).await, before);

    // With it: the value is shown once, the ledger has the reveal, the quota dropped.
    let r = b
        .post(
            &reveal_path,
            &[&reveal_form[..], &[("csrf", &csrf)]].concat(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_strict(&r);
    assert!(r.text.contains(PHONE), "{}", r.text);
    assert_eq!(reveals(&access_records(&server, "").await), recorded + 1);
    assert_eq!(reveals_left(&c, &w.agent).await, before - 1);
    assert!(
        r.text
            .contains(&format!("<strong>{}</strong> of", before - 1)),
        "the page shows the quota after the reveal"
    );

    // Someone else's case does not open, and the page says why and what to do.
    let r = b.get(&format!("/cases/{}", w.partner_case)).await;
    assert_eq!((r.status, r.code()), (403, "no_open_case"), "{}", r.text);
    assert!(r.text.contains("ask for a case to be opened in the CRM"));
    // Analyst pages are not part of an agent's console.
    for path in [
        "/alerts",
        "/ledger",
        "/trace",
        "/staff/alice",
        "/orgs/custos",
    ] {
        let r = b.get(path).await;
        assert_eq!((r.status, r.code()), (403, "console_forbidden"), "{path}");
    }
    let r = b
        .post("/staff/bob/suspend", &[("csrf", &csrf), ("back", "/cases")])
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(c.get(&w.partner_agent, "/v1/me").await.status, 200);

    // The session cookie is not an API credential.
    let r = b.get("/v1/me").await;
    assert_eq!(r.status, 401, "{}", r.text);

    // Signing out needs the CSRF token, then ends the session for good.
    let old = b.cookies.clone();
    let r = b.post("/signout", &[("csrf", "forged")]).await;
    assert_eq!(r.status, 403);
    let r = b.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!((r.status, r.location()), (303, "/signin"));
    assert_eq!(b.get("/cases").await.location(), "/signin");
    b.cookies = old;
    assert_eq!(
        b.get("/cases").await.location(),
        "/signin",
        "old cookie dead"
    );
}

#[tokio::test]
async fn a_revoked_token_or_a_suspension_ends_what_the_session_can_do() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();

    // A second token for alice, to revoke while a session uses it.
    let issued = c.post_empty(&server.admin, "/v1/staff/alice/tokens").await;
    let token = issued.body["token"].as_str().unwrap().to_owned();
    let token_id = issued.body["token_id"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&server);
    b.sign_in(&token).await;
    assert_eq!(b.get("/cases").await.status, 200);

    // The analyst suspends alice from her page; her open session is refused with the
    // reason, and the form goes back only to a console page.
    let mut analyst = Browser::new(&server);
    let csrf = analyst.sign_in(&w.analyst).await;
    let person = analyst.get("/staff/alice").await;
    assert_eq!(person.status, 200, "{}", person.text);
    assert_strict(&person);
    assert!(person.text.contains("<svg"), "the activity chart");
    let r = analyst
        .post(
            "/staff/alice/suspend",
            &[("csrf", &csrf), ("back", "//elsewhere.example/")],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/alerts"), "{}", r.text);
    let r = b.get(&format!("/cases/{}", w.case)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("Your access is suspended"), "{}", r.text);
    // Signing in anew while suspended says so, not "invalid token".
    let mut fresh = Browser::new(&server);
    let signin = fresh.get("/signin").await;
    let r = fresh
        .post(
            "/signin",
            &[("signin", &signin.hidden("signin")), ("token", &token)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("Your access is suspended"), "{}", r.text);
    assert!(!r.text.contains(&w.case), "{}", r.text);
    let r = analyst
        .post(
            "/staff/alice/resume",
            &[("csrf", &csrf), ("back", "/staff/alice")],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/staff/alice"));
    assert_eq!(b.get(&format!("/cases/{}", w.case)).await.status, 200);

    // Revoking the token ends the session at its next request.
    let r = c
        .post_empty(&server.admin, &format!("/v1/tokens/{token_id}/revoke"))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(b.get("/cases").await.location(), "/signin");

    // The analyst's other pages: the organisation, the ledger with a full verification
    // and an entry with its inclusion proof.
    let org = analyst.get("/orgs/huaxin-bpo").await;
    assert_eq!(org.status, 200, "{}", org.text);
    assert!(org.text.contains("<svg"));
    let ledger = analyst.get("/ledger").await;
    assert_eq!(ledger.status, 200, "{}", ledger.text);
    // The root hash as the CLI prints it: hex of the checkpoint's base64 root.
    let shown = |text: &str| {
        let cp_root = text
            .split("<pre>")
            .nth(1)
            .and_then(|note| note.lines().nth(2))
            .unwrap_or_default()
            .to_owned();
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(cp_root.trim())
            .unwrap_or_default();
        (raw.len() == 32).then(|| hex::encode(raw))
    };
    let hex_root = shown(&ledger.text).expect("a checkpoint with a root");
    assert!(ledger.text.contains(&hex_root), "{}", ledger.text);
    let r = analyst.post("/ledger/verify", &[("csrf", "forged")]).await;
    assert_eq!((r.status, r.code()), (403, "csrf_failed"));
    let r = analyst.post("/ledger/verify", &[("csrf", &csrf)]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.contains("Verified: the ledger is intact."),
        "{}",
        r.text
    );
    checkpoint_covering(&c, 1, CHECKPOINT_WAIT).await;
    let r = analyst.get("/ledger/entry?index=0").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("id=\"proof\""), "{}", r.text);

    // A leak upload: refused without the CSRF token as its first part (nothing traced,
    // nothing recorded), traced with it; the token is never in an address.
    let form = analyst.get("/trace").await;
    assert!(form.text.contains("action=\"/trace\""), "{}", form.text);
    let leak = format!("name,phone\nsomeone,{PHONE}\nother,13900000000\n");
    let traces = |records: &[serde_json::Value]| {
        records
            .iter()
            .filter(|r| r["action"] == "trace_leak")
            .count()
    };
    for parts in [
        vec![("csrf", "forged"), ("file", leak.as_str())],
        vec![("file", leak.as_str()), ("csrf", csrf.as_str())],
        vec![("file", leak.as_str())],
    ] {
        let r = analyst.upload("/trace", &parts).await;
        assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{}", r.text);
    }
    assert_eq!(traces(&access_records(&server, "").await), 0);
    let r = analyst
        .upload("/trace", &[("csrf", &csrf), ("file", &leak)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("<dd id=\"rows\">2</dd>"), "{}", r.text);
    assert!(
        r.text.contains("<dd id=\"matched\">1 (1 customers)</dd>"),
        "{}",
        r.text
    );
    assert!(!r.text.contains(PHONE), "the leaked values are not shown");
    assert_eq!(traces(&access_records(&server, "").await), 1);

    // The form says what the reader decodes and takes the accesses' window, which the
    // API gets as given: it says what is wrong with one; a good one is on the report.
    for encoding in [
        "UTF-8 (with or without a byte-order mark)",
        "UTF-16 with a byte-order mark",
        "GB18030",
        "name=\"since\"",
        "name=\"until\"",
    ] {
        assert!(form.text.contains(encoding), "{encoding} in {}", form.text);
    }
    let window = |since, until| {
        [
            ("csrf", csrf.as_str()),
            ("since", since),
            ("until", until),
            ("file", leak.as_str()),
        ]
    };
    let r = analyst
        .upload("/trace", &window("2030-01-02", "2030-01-01"))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (400, "trace_bad_window"),
        "{}",
        r.text
    );
    let r = analyst.upload("/trace", &window("2000-01-01", "")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text
            .contains("<dd id=\"window\">from 2000-01-01 00:00:00 UTC up to now</dd>"),
        "{}",
        r.text
    );
    let r = analyst
        .upload(
            "/trace",
            &[("csrf", &csrf), ("region", "US"), ("file", &leak)],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_upload"), "{}", r.text);
}

#[tokio::test]
async fn a_customer_link_shows_every_access_and_nothing_else() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();

    // Alice reveals the phone; bob, a partner agent, is refused the email by policy.
    assert_eq!(
        c.reveal(&w.agent, &w.customer, &w.case, &["phone"])
            .await
            .status,
        200
    );
    let r = c
        .reveal(&w.partner_agent, &w.customer, &w.partner_case, &["email"])
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // The CRM issues a link; an agent may not.
    let link_path = format!("/v1/customers/{}/link", w.customer);
    let r = c.post(&w.agent, &link_path, json!({})).await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = c.post(&w.crm, &link_path, json!({"valid_hours": 2})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let path = r.body["path"].as_str().unwrap().to_owned();

    // Opening it: the token leaves the address bar at once for a session cookie.
    let mut b = Browser::new(&server);
    let r = b.get(&path).await;
    assert_eq!((r.status, r.location()), (303, "/customer"), "{}", r.text);
    assert!(b.cookies.contains_key("custos_session"));
    let page = b.get("/customer").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_strict(&page);
    let table = page
        .text
        .split_once("id=\"accesses\"")
        .expect("the accesses table")
        .1;
    assert!(table.contains("saw in full: phone"), "{table}");
    assert!(
        table.contains("refused"),
        "the refused reveal is listed too"
    );
    assert!(table.contains("huaxin-bpo") && table.contains("support"));
    assert!(
        table.contains("phone: Inbound phone contact"),
        "the case's reason"
    );
    // Staff appear by pseudonym, never by id or name; the values never appear.
    assert!(table.contains("staff-"));
    for hidden in ["alice", "bob", "Staff alice", PHONE, EMAIL] {
        assert!(!page.text.contains(hidden), "{hidden} on the customer page");
    }

    // The customer's session opens nothing else.
    for path in ["/cases", "/alerts", "/ledger", "/staff/alice"] {
        let r = b.get(path).await;
        assert_eq!((r.status, r.code()), (403, "console_forbidden"), "{path}");
    }

    // The same list for the company's own portal, through the API.
    let r = c
        .get(&w.crm, &format!("/v1/customers/{}/accesses", w.customer))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let accesses = r.body["accesses"].as_array().unwrap();
    assert!(
        accesses
            .iter()
            .any(|a| a["action"] == "reveal" && a["fields"] == json!(["phone"]))
    );
    assert!(!r.text.contains("alice") && !r.text.contains(PHONE));
    let r = c
        .get(&w.agent, &format!("/v1/customers/{}/accesses", w.customer))
        .await;
    assert_eq!(r.status, 403);

    // A tampered or foreign link opens nothing.
    let mut stranger = Browser::new(&server);
    let tampered = path.replace(&w.customer, "cus_0000000000000000");
    let r = stranger.get(&tampered).await;
    assert_eq!((r.status, r.code()), (401, "link_invalid"), "{}", r.text);
    let r = stranger.get("/customer/enter?link=cl1.x").await;
    assert_eq!(r.status, 401);
    assert!(!stranger.cookies.contains_key("custos_session"));
}

/// The customer's own copy (PIPL art. 45, GDPR art. 15): their data in full and every
/// access, as a file and as a page, for them alone; the download is in the ledger.
#[tokio::test]
async fn a_customer_downloads_their_own_copy_and_no_one_else_does() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let r = c.reveal(&w.agent, &w.customer, &w.case, &["phone"]).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // No staff credential gets the copy: not the portal, not an admin, not an agent.
    let copy_path = format!("/v1/customers/{}/copy", w.customer);
    for token in [&w.crm, &server.admin, &w.agent, &w.analyst] {
        let r = c.get(token, &copy_path).await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert!(!r.text.contains(NAME) && !r.text.contains("13800138000"));
    }

    let r = c
        .post(
            &w.crm,
            &format!("/v1/customers/{}/link", w.customer),
            json!({}),
        )
        .await;
    let path = r.body["path"].as_str().unwrap().to_owned();
    let mut b = Browser::new(&server);
    assert_eq!(b.get(&path).await.status, 303);
    let page = b.get("/customer").await;
    assert!(page.text.contains("/customer/copy.json"), "{}", page.text);

    let file = b.get("/customer/copy.json").await;
    assert_eq!(file.status, 200, "{}", file.text);
    assert_eq!(
        file.headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok()),
        Some("attachment; filename=\"my-data.json\"")
    );
    let copy: serde_json::Value = serde_json::from_str(&file.text).unwrap();
    assert_eq!(copy["customer"], w.customer.as_str());
    assert_eq!(copy["data"]["name"], NAME);
    assert!(
        copy["data"]["phone"]
            .as_str()
            .unwrap()
            .contains("13800138000"),
        "{copy}"
    );
    assert_eq!(copy["data"]["account_id"], ACCOUNT);
    assert!(
        copy["accesses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "reveal" && a["fields"] == json!(["phone"])),
        "{copy}"
    );
    let printable = b.get("/customer/copy").await;
    assert_eq!(printable.status, 200, "{}", printable.text);
    assert_strict(&printable);
    assert!(printable.text.contains(NAME) && printable.text.contains("saw in full: phone"));

    // Each download is recorded as the customer's, naming them and what the copy held.
    let records = access_records(&server, &format!("customer={}", w.customer)).await;
    let copies: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["action"] == "customer_copy")
        .collect();
    assert_eq!(copies.len(), 2, "{records:?}");
    assert!(
        copies.iter().all(|r| r["decision"] == "allow"
            && r["fields"].as_array().unwrap().contains(&json!("name")))
    );
}

/// Asserts a console error page with `status` and `code`, and its security headers.
fn assert_problem(page: &Page, status: u16, code: &str, what: &str) {
    assert_eq!(
        (page.status, page.code()),
        (status, code),
        "{what}: {}",
        page.text
    );
    assert!(
        page.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/html")),
        "{what}"
    );
    assert_strict(page);
}

#[tokio::test]
async fn a_form_goes_back_only_to_one_of_the_console_pages() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let mut analyst = Browser::new(&server);
    let csrf = analyst.sign_in(&w.analyst).await;
    // Resuming an active person changes nothing; each answer is the redirect `back`.
    for bad in [
        "/\\evil.example/phish",
        "/\t/evil.example/phish",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\\/evil.example",
        "//evil.example",
        "///evil.example",
        "/%5Cevil.example",
        "/%09/evil.example",
        "/%2F%2Fevil.example",
        "/%2f%2fevil.example",
        "/staff/%2F%2Fevil.example",
        "/staff/bob\u{0}",
        "https://evil.example/",
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "/unknown",
        "/staff/bob/../../evil",
        "/staff/bob?x=//evil.example",
        " /staff/bob",
    ] {
        let r = analyst
            .post("/staff/bob/resume", &[("csrf", &csrf), ("back", bad)])
            .await;
        assert_eq!(
            (r.status, r.location()),
            (303, "/alerts"),
            "{bad:?}: {}",
            r.text
        );
        assert_strict(&r);
    }
    for good in [
        "/staff/bob",
        "/orgs/huaxin-bpo",
        "/alerts?status=all",
        "/alerts",
    ] {
        let r = analyst
            .post("/staff/bob/resume", &[("csrf", &csrf), ("back", good)])
            .await;
        assert_eq!((r.status, r.location()), (303, good), "{}", r.text);
    }
}

#[tokio::test]
async fn the_framework_refusals_on_console_paths_are_console_pages() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let mut analyst = Browser::new(&server);
    let csrf = analyst.sign_in(&w.analyst).await;
    let mut agent = Browser::new(&server);
    let agent_csrf = agent.sign_in(&w.agent).await;

    // Bad UTF-8 in every kind of path parameter of the console.
    for path in ["/alerts/%FF", "/staff/%FF%FE", "/orgs/%C3%28"] {
        let r = analyst.get(path).await;
        assert_problem(&r, 400, "invalid_path", path);
    }
    let r = agent.get("/cases/%FF").await;
    assert_problem(&r, 400, "invalid_path", "/cases/%FF");
    for path in ["/alerts/%FF/acknowledge", "/staff/bob/%FF"] {
        let r = analyst.post(path, &[("csrf", &csrf)]).await;
        assert_problem(&r, 400, "invalid_path", path);
    }
    let r = agent
        .post("/cases/%FF/reveal", &[("csrf", &agent_csrf)])
        .await;
    assert_problem(&r, 400, "invalid_path", "reveal");

    // A query that does not deserialize.
    let r = analyst.get("/ledger/entry?index=abc").await;
    assert_problem(&r, 400, "invalid_query", "index=abc");

    // Forms with a field missing: a reveal, the sign-in, an analyst's act.
    let reveal = format!("/cases/{}/reveal", w.case);
    let r = agent.post(&reveal, &[("csrf", &agent_csrf)]).await;
    assert_problem(&r, 422, "invalid_form", "reveal without fields");
    let mut visitor = Browser::new(&server);
    let r = visitor.post("/signin", &[("token", "cst_x")]).await;
    assert_problem(&r, 422, "invalid_form", "sign-in without its token");
    let r = analyst.post("/staff/bob/suspend", &[]).await;
    assert_problem(&r, 422, "invalid_form", "act without csrf");

    // Forms without their content type.
    for (b, path) in [
        (&mut visitor, "/signin"),
        (&mut analyst, "/ledger/verify"),
        (&mut agent, reveal.as_str()),
    ] {
        let request = b
            .http
            .post(format!("{}{path}", b.base))
            .body(format!("csrf={csrf}"));
        let r = b.send(request).await;
        assert_problem(&r, 415, "unsupported_media_type", path);
    }

    // Oversized request headers, signed in or not.
    for path in ["/signin", "/customer", "/alerts", "/customer/enter?link=x"] {
        let request = analyst
            .http
            .get(format!("{}{path}", analyst.base))
            .header("x-filler", "f".repeat(60 * 1024));
        let r = analyst.send(request).await;
        assert_problem(&r, 431, "headers_too_large", path);
    }

    // Nothing of the refused requests happened: bob is not suspended.
    assert_eq!(
        server.client().get(&w.partner_agent, "/v1/me").await.status,
        200
    );
    // Every console answer is no-store, the stylesheet too.
    let css = visitor.get("/console.css").await;
    assert_eq!(css.status, 200);
    assert_strict(&css);
}

#[tokio::test]
async fn a_customer_link_opens_one_session_in_its_issued_form_only() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let link_path = format!("/v1/customers/{}/link", w.customer);

    // 24 hours by default, at most 168.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let r = c.post(&w.crm, &link_path, json!({})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let validity = r.body["expires_at"].as_i64().unwrap() - before;
    assert!(
        (24 * 3_600_000 - 60_000..=24 * 3_600_000 + 60_000).contains(&validity),
        "{validity}"
    );
    let r = c
        .post(&w.crm, &link_path, json!({"valid_hours": 169}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_link_hours"));
    let r = c
        .post(&w.crm, &link_path, json!({"valid_hours": 168}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let token = r.body["token"].as_str().unwrap().to_owned();
    let path = r.body["path"].as_str().unwrap().to_owned();
    assert_eq!(path, format!("/customer/enter?link={token}"));
    let expiry = token.split('.').nth(2).unwrap().to_owned();

    // Other spellings of the same link open nothing, and do not use it up.
    let mut stranger = Browser::new(&server);
    let respelt = |from: &str, to: &str| token.replacen(from, to, 1);
    for variant in [
        format!(
            "/customer/enter?link={}",
            respelt(&format!(".{expiry}."), &format!(".0{expiry}."))
        ),
        format!(
            "/customer/enter?link={}",
            respelt(&format!(".{expiry}."), &format!(".%2B{expiry}."))
        ),
        format!(
            "/customer/enter?link={}",
            respelt(&format!(".{expiry}."), &format!(".+{expiry}."))
        ),
        format!("/customer/enter?link={}", token.replace('.', "%2E")),
        format!("/customer/enter?link={token}&x=1"),
        format!("/customer/enter?x=1&link={token}"),
        format!("/customer/enter?link={token}&link={token}"),
        format!("/customer/enter?link={token}%20"),
    ] {
        let r = stranger.get(&variant).await;
        assert_problem(&r, 401, "link_not_canonical", &variant);
        assert!(
            !stranger.cookies.contains_key("custos_session"),
            "{variant}"
        );
    }
    let r = stranger.get("/customer/enter").await;
    assert_problem(&r, 401, "link_invalid", "no link");

    // The first visit: a session cookie and a redirect to an address without the secret.
    let mut b = Browser::new(&server);
    let r = b.get(&path).await;
    assert_eq!((r.status, r.location()), (303, "/customer"), "{}", r.text);
    assert_strict(&r);
    let cookie = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("custos_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains(&token));
    let page = b.get("/customer").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(!page.text.contains(&token), "the secret is not on the page");

    // Again in the same browser: on to the page, no second session.
    let r = b.get(&path).await;
    assert_eq!((r.status, r.location()), (303, "/customer"), "{}", r.text);
    assert!(r.set_cookies().is_empty(), "{:?}", r.set_cookies());
    // Anywhere else, the used link opens nothing.
    let mut other = Browser::new(&server);
    let r = other.get(&path).await;
    assert_problem(&r, 401, "link_used", "second browser");
    assert!(!other.cookies.contains_key("custos_session"));
    assert_eq!(other.get("/customer").await.location(), "/signin");
    // The first session goes on.
    assert_eq!(b.get("/customer").await.status, 200);
}

/// An alert page offers the action that fits the person's state: a canary hit suspended
/// them, so Resume; once resumed, Suspend.
#[tokio::test]
async fn an_alert_offers_the_action_that_fits_the_person() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let canaries = plant_canaries(&server, 1);
    let r = c
        .view(&w.agent, &canaries[0], "case_0000000000000000")
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let alerts = alerts_of(&c, &w.analyst, "alice").await;
    let id = alerts[0]["id"].as_str().unwrap().to_owned();
    // The detector's suspension lands shortly after its alert.
    for _ in 0..100 {
        if c.get(&w.agent, "/v1/me").await.status == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut analyst = Browser::new(&server);
    let csrf = analyst.sign_in(&w.analyst).await;
    let page = analyst.get(&format!("/alerts/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Resume this person"), "{}", page.text);
    assert!(!page.text.contains("Suspend this person"), "{}", page.text);
    let r = analyst
        .post(
            "/staff/alice/resume",
            &[("csrf", &csrf), ("back", &format!("/alerts/{id}"))],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let page = analyst.get(&format!("/alerts/{id}")).await;
    assert!(page.text.contains("Suspend this person"), "{}", page.text);
    assert!(!page.text.contains("Resume this person"), "{}", page.text);
}

/// Normal support quotas, and a detector tuned so that a few new customers in a row are
/// a `risk_lower_quota` finding: peers only, the step-up and lower-quota thresholds
/// equal, suspension out of reach.
const RESTRICTING: &str = r#"
[quota.support]
customers_per_day = 80
reveals_per_hour = 20
searches_per_day = 200

[detector.score.warmup]
min_days = 1000
min_peers = 0

[detector.score.thresholds]
step_up = 1.0
lower_quota = 1.0
suspend = 1000.0
"#;

/// Two quiet colleagues of alice view one customer each; alice views her world case's
/// customer `repeats` times (nothing the score weighs: one customer), then six new ones,
/// which raises `risk_lower_quota`. Returns that alert.
async fn restricted_alice(server: &Server, w: &World, repeats: usize) -> serde_json::Value {
    let c = server.client();
    for (i, peer) in ["carol", "dave"].into_iter().enumerate() {
        let token = server.staff(peer, "support", "custos").await;
        let customer = c
            .create_customer(
                &w.crm,
                &format!("Peer {i}"),
                &format!("1391111000{i}"),
                &format!("p{i}@example.com"),
                &format!("ACC-11{i:08}"),
            )
            .await;
        let case = c.open_case(&w.crm, &customer, peer).await;
        assert_eq!(c.view(&token, &customer, &case).await.status, 200);
    }
    for _ in 0..repeats {
        let r = c.view(&w.agent, &w.customer, &w.case).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for i in 0..6 {
        let customer = c
            .create_customer(
                &w.crm,
                &format!("Customer {i}"),
                &format!("1392222000{i}"),
                &format!("c{i}@example.com"),
                &format!("ACC-22{i:08}"),
            )
            .await;
        let case = c.open_case(&w.crm, &customer, "alice").await;
        let r = c.view(&w.agent, &customer, &case).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let alerts = alerts_of(&c, &w.analyst, "alice").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "risk_lower_quota", "{}", alerts[0]);
    alerts[0].clone()
}

/// The ledger indexes an alert page links to, in order.
fn entry_links(page: &Page) -> Vec<u64> {
    page.text
        .split("href=\"/ledger/entry?index=")
        .skip(1)
        .map(|rest| rest.split_once('"').unwrap().0.parse().unwrap())
        .collect()
}

/// A risk alert cites every entry of the person's day behind it, and its page lists them
/// all, 50 a page; the queue says in plain words what drove it, not only the score.
#[tokio::test]
async fn an_alert_page_lists_every_cited_entry_and_the_queue_says_why() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some(RESTRICTING.to_owned()),
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let alert = restricted_alice(&server, &w, 55).await;
    let cited: Vec<u64> = alert["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_u64().unwrap())
        .collect();
    // The 55 views of one customer and the new customers' views up to the finding.
    assert!(cited.len() > 55, "{alert}");
    assert!(
        cited.windows(2).all(|p| p[0] < p[1]),
        "oldest first: {cited:?}"
    );

    let mut analyst = Browser::new(&server);
    analyst.sign_in(&w.analyst).await;
    let id = alert["id"].as_str().unwrap();
    let first = analyst.get(&format!("/alerts/{id}")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(entry_links(&first), cited[..50], "the first 50, in order");
    assert!(
        first
            .text
            .contains(&format!("Entries 1–50 of {}", cited.len())),
        "{}",
        first.text
    );
    assert!(first.text.contains(&format!("/alerts/{id}?page=2")));
    let second = analyst.get(&format!("/alerts/{id}?page=2")).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(entry_links(&second), cited[50..], "the rest");
    assert!(second.text.contains(&format!("/alerts/{id}?page=1")));
    // The page number is bounded, and must be one.
    assert_eq!(
        entry_links(&analyst.get(&format!("/alerts/{id}?page=0")).await),
        cited[..50]
    );
    assert_eq!(
        entry_links(&analyst.get(&format!("/alerts/{id}?page=99")).await),
        cited[50..]
    );
    let r = analyst.get(&format!("/alerts/{id}?page=two")).await;
    assert_eq!(r.status, 400, "{}", r.text);

    // The queue names what drove the score (the reasons after the score line).
    let reasons: Vec<&str> = alert["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(reasons[0].starts_with("risk score"), "{reasons:?}");
    let queue = analyst.get("/alerts").await;
    let driver = reasons[1].split(';').next().unwrap();
    assert!(queue.text.contains(driver), "{driver} in {}", queue.text);
}

/// Agents read restrictions and the refusals they cause in words and UTC times: no unix
/// milliseconds, API paths or request field names. Their cases say why each was opened.
#[tokio::test]
async fn an_agent_reads_restrictions_and_refusals_in_words() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some(RESTRICTING.to_owned()),
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let c = server.client();
    let refund = c
        .post(
            &w.crm,
            "/v1/cases",
            json!({"customer": w.customer, "assignee": "alice", "channel": "chat", "reason": "Refund for order 4411 not received"}),
        )
        .await;
    assert_eq!(refund.status, 201, "{}", refund.text);
    restricted_alice(&server, &w, 0).await;
    let until = c.get(&w.agent, "/v1/me").await.body["restricted"]["until"]
        .as_i64()
        .unwrap();
    let for_programs = |page: &Page| {
        for machine in ["unix ms", "/v1/", "step_up_reason", &until.to_string()] {
            assert!(!page.text.contains(machine), "{machine} in {}", page.text);
        }
    };

    let mut b = Browser::new(&server);
    let csrf = b.sign_in(&w.agent).await;
    let cases = b.get("/cases").await;
    assert_eq!(cases.status, 200, "{}", cases.text);
    for_programs(&cases);
    assert!(cases.text.contains("Refund for order 4411 not received"));
    assert!(cases.text.contains("delivery question"));
    assert!(
        cases
            .text
            .contains("lowered your quotas to 25% of their limits until 20"),
        "{}",
        cases.text
    );
    let card = b.get(&format!("/cases/{}", w.case)).await;
    assert_eq!(card.status, 200, "{}", card.text);
    for_programs(&card);
    assert!(card.text.contains("Step-up justification"));

    // A reveal without the justification (the form asks for it; the API refuses).
    let reveal = format!("/cases/{}/reveal", w.case);
    let r = b
        .post(
            &reveal,
            &[("csrf", &csrf), ("field", "phone"), ("reason", "call back")],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (403, "step_up_required"),
        "{}",
        r.text
    );
    for_programs(&r);
    assert!(
        r.text
            .contains("every reveal needs a step-up justification"),
        "{}",
        r.text
    );

    // The lowered hourly ceiling (5 of 20), then the refusal says when it refills.
    let justified = [
        ("csrf", csrf.as_str()),
        ("field", "phone"),
        ("reason", "call back"),
        (
            "justification",
            "the customer disputes a refund on the phone now",
        ),
    ];
    for _ in 0..5 {
        let r = b.post(&reveal, &justified).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = b.post(&reveal, &justified).await;
    assert_eq!((r.status, r.code()), (429, "quota_exceeded"), "{}", r.text);
    for_programs(&r);
    for words in [
        "field reveals over 1 hour",
        "It refills over 1 hour",
        "lowered your quotas to 25% of their limits",
    ] {
        assert!(r.text.contains(words), "{words} in {}", r.text);
    }
}

#[tokio::test]
async fn the_card_offers_contact_before_reveal_and_a_call_shows_only_the_privacy_number() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some("[relay]\nnumbers = [\"+8610000001\"]\n".to_owned()),
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let c = server.client();
    let mut b = Browser::new(&server);
    let csrf = b.sign_in(&w.agent).await;
    let card = b.get(&format!("/cases/{}", w.case)).await;
    assert_eq!(card.status, 200, "{}", card.text);
    let (contact, reveal) = (
        card.text
            .find("Contact the customer")
            .expect("a contact form"),
        card.text.find("Reveal a field").expect("a reveal form"),
    );
    assert!(contact < reveal, "contact is offered first");

    let contacts = |records: &[serde_json::Value]| {
        records
            .iter()
            .filter(|r| r["action"] == "contact" && r["staff_id"] == "alice")
            .count()
    };
    let path = format!("/cases/{}/contact", w.case);
    let call = [("channel", "call"), ("subject", ""), ("text", "")];
    let r = b
        .post(&path, &[&call[..], &[("csrf", "forged")]].concat())
        .await;
    assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{}", r.text);
    assert_eq!(contacts(&access_records(&server, "").await), 0);

    let before = reveals_left(&c, &w.agent).await;
    let r = b
        .post(&path, &[&call[..], &[("csrf", &csrf)]].concat())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_strict(&r);
    assert!(r.text.contains("+8610000001"), "{}", r.text);
    assert!(
        !r.text.contains(PHONE),
        "the customer's number is never shown"
    );
    assert_eq!(contacts(&access_records(&server, "").await), 1);
    assert_eq!(reveals_left(&c, &w.agent).await, before - 1);

    // No SMTP relay on this server: the page says so with the API's code.
    let email = [
        ("channel", "email"),
        ("subject", "Your order"),
        ("text", "Hello"),
    ];
    let r = b
        .post(&path, &[&email[..], &[("csrf", &csrf)]].concat())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "relay_not_configured"),
        "{}",
        r.text
    );
}

/// The approver's queue (issue 18, item 3): a company team lead sees a pending access
/// request with its purpose and approves it with a reason, after which the agent's
/// reveal passes; a partner's team lead is refused by the policy, in words and with the
/// code; a forged form changes nothing.
#[tokio::test]
async fn a_company_lead_approves_an_access_request_in_the_queue() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let lead = server.staff("lead", "team_lead", "custos").await;
    let partner_lead = server.staff("plead", "team_lead", "huaxin-bpo").await;
    let dave = server.staff("dave", "support", "huaxin-bpo").await;
    let case = unverified_case(&c, &w, "dave").await;
    assert_eq!(
        c.reveal(&dave, &w.customer, &case, &["phone"]).await.status,
        403
    );
    let asked = c
        .post(
            &dave,
            "/v1/access-requests",
            json!({"customer": w.customer, "case": case, "fields": ["phone"],
                   "purpose": "customer lost the phone and calls from a relative's"}),
        )
        .await;
    assert_eq!(asked.status, 201, "{}", asked.body);
    let id = asked.body["id"].as_str().unwrap().to_owned();
    let approve = format!("/approvals/{id}/approve");

    // A partner's lead: the page shows no request of theirs to decide, and deciding
    // anyway is refused by the policy.
    let mut p = Browser::new(&server);
    let p_csrf = p.sign_in(&partner_lead).await;
    let page = p.get("/approvals").await;
    assert_eq!(page.status, 200);
    assert!(!page.text.contains(&id), "{}", page.text);
    let r = p
        .post(&approve, &[("csrf", &p_csrf), ("reason", "looks fine")])
        .await;
    assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.text);

    // The company lead: the request, its purpose, and the forms.
    let mut b = Browser::new(&server);
    let csrf = b.sign_in(&lead).await;
    let page = b.get("/approvals").await;
    assert_eq!(page.status, 200);
    assert_strict(&page);
    assert!(
        page.text.contains("href=\"/approvals\""),
        "no link in the navigation"
    );
    for shown in [id.as_str(), "dave", "calls from a relative", &case] {
        assert!(page.text.contains(shown), "{shown} not in {}", page.text);
    }
    let r = b
        .post(&approve, &[("csrf", "forged"), ("reason", "looks fine")])
        .await;
    assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{}", r.text);
    assert_eq!(
        c.reveal(&dave, &w.customer, &case, &["phone"]).await.status,
        403
    );
    let r = b
        .post(
            &approve,
            &[
                ("csrf", &csrf),
                ("reason", "the relative answered the account question"),
                ("minutes", "10"),
            ],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, "/approvals"), "{}", r.text);
    assert!(!b.get("/approvals").await.text.contains(&id));
    let revealed = c.reveal(&dave, &w.customer, &case, &["phone"]).await;
    assert_eq!(revealed.status, 200, "{}", revealed.body);
    // Decided once: a second decision is refused with its code.
    let r = b
        .post(
            &format!("/approvals/{id}/deny"),
            &[("csrf", &csrf), ("reason", "no")],
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "already_decided"), "{}", r.text);
}

/// Break-glass review in the console (issue 18, item 4): the alert page says how many of
/// the two reviews it has and by whom; the first analyst's acknowledgement is a review
/// that leaves it open, and they are not offered a second; another analyst closes it.
#[tokio::test]
async fn a_break_glass_leaves_the_queue_after_two_analysts_review_it() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let dave = server.staff("dave", "support", "custos").await;
    let second = server.staff("sec2", "security_analyst", "custos").await;
    let case = unverified_case(&c, &w, "dave").await;
    let taken = c
        .post(
            &dave,
            "/v1/break-glass",
            json!({"customer": w.customer, "case": case, "fields": ["phone"],
                   "reason": "ambulance crew on the line needs the customer's number now"}),
        )
        .await;
    assert_eq!(taken.status, 201, "{}", taken.body);
    let alerts = alerts_of(&c, &w.analyst, "dave").await;
    let id = alerts
        .iter()
        .find(|a| a["kind"] == "break_glass")
        .and_then(|a| a["id"].as_str())
        .unwrap_or_else(|| panic!("no break_glass alert: {alerts:?}"))
        .to_owned();
    let at = format!("/alerts/{id}");

    let mut first = Browser::new(&server);
    let csrf = first.sign_in(&w.analyst).await;
    let queue = first.get("/alerts").await;
    assert!(queue.text.contains("0 of 2 reviews"), "{}", queue.text);
    let page = first.get(&at).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("0 of 2 different analysts"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("Review and acknowledge"),
        "{}",
        page.text
    );
    let r = first
        .post(
            &format!("{at}/acknowledge"),
            &[("csrf", &csrf), ("back", &at)],
        )
        .await;
    assert_eq!((r.status, r.location()), (303, at.as_str()), "{}", r.text);
    let page = first.get(&at).await;
    assert!(
        page.text.contains("1 of 2 different analysts: sec"),
        "{}",
        page.text
    );
    assert!(page.text.contains("reviewed-already"), "{}", page.text);
    assert!(
        !page.text.contains("Review and acknowledge"),
        "{}",
        page.text
    );
    assert!(page.text.contains(">open<"), "{}", page.text);
    // Posting anyway is refused with its code, and adds no review.
    let r = first
        .post(&format!("{at}/dismiss"), &[("csrf", &csrf), ("back", &at)])
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "already_reviewed"),
        "{}",
        r.text
    );

    let mut other = Browser::new(&server);
    let csrf = other.sign_in(&second).await;
    let page = other.get(&at).await;
    assert!(
        page.text.contains("Review and acknowledge"),
        "{}",
        page.text
    );
    let r = other
        .post(
            &format!("{at}/acknowledge"),
            &[("csrf", &csrf), ("back", &at)],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let page = other.get(&at).await;
    assert!(
        page.text.contains("2 of 2 different analysts: sec, sec2"),
        "{}",
        page.text
    );
    assert!(page.text.contains(">acknowledged<"), "{}", page.text);
    assert!(!other.get("/alerts").await.text.contains(&id));
}

/// The agent's card offers break-glass, folded away below the reveal: it opens the field
/// at once on the case, the analysts' queue gets the alert, and the person's ration ends
/// it (default 2 in any 30 days) with its code on the page.
#[tokio::test]
async fn an_agent_breaks_glass_from_the_card_and_the_analysts_see_it() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let dave = server.staff("dave", "support", "custos").await;
    let case = unverified_case(&c, &w, "dave").await;

    let mut b = Browser::new(&server);
    let csrf = b.sign_in(&dave).await;
    let card = b.get(&format!("/cases/{case}")).await;
    assert_eq!(card.status, 200, "{}", card.text);
    let (reveal_at, glass_at) = (
        card.text.find("Reveal a field").unwrap(),
        card.text.find("Emergency access (break-glass)").unwrap(),
    );
    assert!(reveal_at < glass_at, "break-glass comes after the reveal");
    assert!(!card.text.contains(PHONE), "{}", card.text);

    let at = format!("/cases/{case}/break-glass");
    let emergency = "ambulance crew on the line needs the customer's number now";
    let r = b
        .post(
            &at,
            &[
                ("csrf", "forged"),
                ("field", "phone"),
                ("reason", emergency),
            ],
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{}", r.text);
    let r = b
        .post(
            &at,
            &[("csrf", &csrf), ("field", "phone"), ("reason", "urgent")],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_text"), "{}", r.text);
    // Neither refusal took anything.
    let me = c.get(&dave, "/v1/me").await;
    assert_eq!(me.body["grants"], json!([]), "{}", me.body);

    let r = b
        .post(
            &at,
            &[("csrf", &csrf), ("field", "phone"), ("reason", emergency)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("open on this case until"), "{}", r.text);
    the_grant_opens_the_phone(&mut b, &case, &csrf, "call the ambulance crew back").await;
    let alerts = alerts_of(&c, &w.analyst, "dave").await;
    assert!(
        alerts.iter().any(|a| a["kind"] == "break_glass"),
        "{alerts:?}"
    );

    // The ration: the second is granted, the third refused with its code.
    let r = b
        .post(
            &at,
            &[("csrf", &csrf), ("field", "email"), ("reason", emergency)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = b
        .post(
            &at,
            &[("csrf", &csrf), ("field", "name"), ("reason", emergency)],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (429, "break_glass_exhausted"),
        "{}",
        r.text
    );
}

/// The agent's card on a case no channel vouches for offers "Ask for access"; the
/// request waits for a company lead, and once approved the card lists the grant and the
/// reveal opens. A verified case offers no such form.
#[tokio::test]
async fn an_agent_asks_for_access_from_the_card_and_sees_the_grant() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let lead = server.staff("lead", "team_lead", "custos").await;
    let dave = server.staff("dave", "support", "huaxin-bpo").await;
    let case = unverified_case(&c, &w, "dave").await;

    let mut alice = Browser::new(&server);
    alice.sign_in(&w.agent).await;
    let card = alice.get(&format!("/cases/{}", w.case)).await;
    assert_eq!(card.status, 200, "{}", card.text);
    assert!(!card.text.contains("Ask for access"), "{}", card.text);

    let mut b = Browser::new(&server);
    let csrf = b.sign_in(&dave).await;
    let card = b.get(&format!("/cases/{case}")).await;
    assert_eq!(card.status, 200, "{}", card.text);
    assert!(card.text.contains("Ask for access"), "{}", card.text);
    assert!(!card.text.contains("id=\"grants\""), "{}", card.text);
    let ask = format!("/cases/{case}/ask");
    let purpose = "customer lost the phone and calls from a relative's";
    let r = b
        .post(
            &ask,
            &[("csrf", "forged"), ("field", "phone"), ("purpose", purpose)],
        )
        .await;
    assert_eq!((r.status, r.code()), (403, "csrf_failed"), "{}", r.text);
    let too_long = "a".repeat(2000);
    let r = b
        .post(
            &ask,
            &[("csrf", &csrf), ("field", "phone"), ("purpose", &too_long)],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_text"), "{}", r.text);
    let r = b
        .post(
            &ask,
            &[("csrf", &csrf), ("field", "phone"), ("purpose", purpose)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.contains("waits for a company team lead"),
        "{}",
        r.text
    );
    let queue = c.get(&lead, "/v1/access-requests").await;
    let requests = queue.body["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{}", queue.body);
    assert_eq!(requests[0]["purpose"], purpose);
    assert_eq!(requests[0]["fields"], json!(["phone"]));
    let id = requests[0]["id"].as_str().unwrap();
    assert!(r.text.contains(id), "{}", r.text);
    let decided = c
        .post(
            &lead,
            &format!("/v1/access-requests/{id}/approve"),
            json!({"reason": "the relative answered the account question"}),
        )
        .await;
    assert_eq!(decided.status, 200, "{}", decided.body);

    the_grant_opens_the_phone(&mut b, &case, &csrf, "call the customer back").await;
}

/// Sessions live in the store: a browser signed in at one node is served by another
/// with the same session (and its CSRF token), a restart signs no one out, and signing
/// out at one node ends the session at every node.
#[tokio::test]
async fn a_session_is_served_by_every_node_and_survives_a_restart() {
    if !Backend::all().contains(&Backend::Postgres) {
        return;
    }
    let mut a = Server::start(Backend::Postgres).await;
    let b = a.join();
    let w = world(&a).await;
    let mut browser = Browser::new(&a);
    let csrf = browser.sign_in(&w.agent).await;

    browser.base = b.base.clone();
    let cases = browser.get("/cases").await;
    assert_eq!(cases.status, 200, "{}", cases.text);
    assert_eq!(
        cases.hidden("csrf"),
        csrf,
        "the same session at the other node"
    );

    a.restart();
    browser.base = a.base.clone();
    let cases = browser.get("/cases").await;
    assert_eq!(cases.status, 200, "after a restart: {}", cases.text);

    let session = browser.cookies["custos_session"].clone();
    browser.base = b.base.clone();
    let out = browser.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(
        (out.status, out.location()),
        (303, "/signin"),
        "{}",
        out.text
    );
    // The cookie the browser held, presented again at A, opens nothing.
    let mut replay = Browser::new(&a);
    replay.cookies.insert("custos_session".into(), session);
    let r = replay.get("/cases").await;
    assert_eq!((r.status, r.location()), (303, "/signin"), "{}", r.text);
}
