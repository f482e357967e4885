//! Refusals made before any handler of ours runs, over real HTTP on the API: a path
//! segment that is not UTF-8 in every kind of path parameter, oversized request
//! headers, and a time computation that would overflow. Each answer is the JSON error
//! envelope with a stable code and is never cached. (The console's side: tests/console.rs.)

mod common;

use common::*;
use serde_json::json;

/// Asserts the envelope, its code and `no-store`.
fn assert_envelope(r: &Answer, status: u16, code: &str, what: &str) {
    assert_eq!((r.status, r.code()), (status, code), "{what}: {}", r.text);
    let h = |name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert!(
        h("content-type").starts_with("application/json"),
        "{what}: {}",
        h("content-type")
    );
    assert_eq!(h("cache-control"), "no-store", "{what}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {}",
        r.text
    );
}

#[tokio::test]
async fn framework_refusals_on_the_api_are_json_envelopes_with_stable_codes() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();

    // Bad UTF-8 in each kind of path parameter: one id, an id before an action, the
    // tile wildcard; each route family with the token that may use it.
    let bad_paths = [
        (&w.agent, "GET", "/v1/customers/%FF%FE".to_owned()),
        (&w.agent, "POST", "/v1/customers/%FF/reveal".to_owned()),
        (&w.crm, "GET", "/v1/customers/%C3%28/accesses".to_owned()),
        (&w.crm, "POST", "/v1/customers/%FF/link".to_owned()),
        (&w.analyst, "GET", "/v1/alerts/%FF".to_owned()),
        (&w.analyst, "POST", "/v1/alerts/%FF/acknowledge".to_owned()),
        (&w.analyst, "GET", "/v1/staff/%FF/activity".to_owned()),
        (&w.analyst, "GET", "/v1/orgs/%FF/activity".to_owned()),
        (&server.admin, "POST", "/v1/staff/%FF/suspend".to_owned()),
        (&server.admin, "POST", "/v1/staff/%FF/tokens".to_owned()),
        (&server.admin, "POST", "/v1/tokens/%FF/revoke".to_owned()),
        (&w.crm, "POST", "/v1/cases/%FF/close".to_owned()),
        (&w.analyst, "GET", "/ledger/tile/0/%FF".to_owned()),
        (&w.analyst, "GET", "/ledger/tile/%FF%FE/000".to_owned()),
    ];
    for (token, method, path) in &bad_paths {
        let url = format!("{}{path}", server.base);
        let request = match *method {
            "GET" => c.http.get(url),
            _ => c
                .http
                .post(url)
                .header("content-type", "application/json")
                .body("{}"),
        };
        let r = c
            .send(
                request
                    .bearer_auth(token)
                    .header("x-custos-case", w.case.as_str()),
            )
            .await;
        assert_envelope(&r, 400, "invalid_path", &format!("{method} {path}"));
    }

    // Oversized headers: a 60 KB Authorization, and many small headers adding up.
    let huge = format!("Bearer {}", "a".repeat(60 * 1024));
    let r = c
        .send(
            c.http
                .get(format!("{}/v1/me", server.base))
                .header("authorization", huge.as_str()),
        )
        .await;
    assert_envelope(&r, 431, "headers_too_large", "60 KB Authorization");
    let mut request = c.http.get(format!("{}/ledger/checkpoint", server.base));
    for i in 0..40 {
        request = request.header(format!("x-filler-{i}"), "b".repeat(500));
    }
    let r = c.send(request).await;
    assert_envelope(&r, 431, "headers_too_large", "many headers");
    // Headers of an ordinary size still pass.
    let r = c
        .send(
            c.http
                .get(format!("{}/v1/me", server.base))
                .bearer_auth(&w.agent)
                .header("x-filler", "c".repeat(4 * 1024)),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // A method the route does not have, and an unknown route: already ours, unchanged.
    let r = c
        .send(c.http.delete(format!("{}/v1/me", server.base)))
        .await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
    let r = c.send(c.http.get(format!("{}/v1/%FF", server.base))).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
}

#[tokio::test]
async fn a_link_expiry_past_the_end_of_time_is_refused_not_wrapped() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            args: vec!["--simulated-clock".into()],
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let c = server.client();
    let path = format!("{}/v1/customers/{}/link", server.base, w.customer);
    for at in [i64::MAX, i64::MAX - 1_000] {
        let r = c
            .send(
                c.http
                    .post(&path)
                    .bearer_auth(&w.crm)
                    .header("x-custos-simulated-time", at.to_string())
                    .json(&json!({"valid_hours": 1})),
            )
            .await;
        // The link's arithmetic refuses it (`time_out_of_range`); a bound on the header
        // itself may refuse it first (`invalid_simulated_time`). Never a link.
        assert_eq!(r.status, 400, "{at}: {}", r.text);
        assert!(
            matches!(r.code(), "time_out_of_range" | "invalid_simulated_time"),
            "{at}: {}",
            r.text
        );
        assert!(r.body.get("token").is_none());
    }
}
