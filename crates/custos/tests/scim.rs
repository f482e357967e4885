//! Provisioning from the identity provider (SCIM 2.0, RFC 7644) against a live server, on
//! both stores: groups give roles only as `[scim] groups` maps them; deprovisioning
//! (`active: false`, leaving every mapped group, DELETE) takes effect on the person's
//! next request and ends their tokens; a person's own suspension outlasts the provider;
//! versions guard every change; every call is a ledger entry of the `scim` principal.
//! (The protocol's conformance as a whole is checked by scim2-tester, tests/scim/.)

mod common;

use common::*;
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

const CONFIG: &str = r#"[scim]
groups = [
  { group = "Custos Support", role = "support" },
  { group = "Huaxin BPO Agents", role = "support", org = "huaxin-bpo" },
  { group = "Team Leads", role = "team_lead" },
]
"#;

/// A SCIM request with `token`, `If-Match` if given, and a JSON body if given.
async fn scim(
    c: &Client,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    if_match: Option<&str>,
) -> Answer {
    let mut request = c
        .http
        .request(method, format!("{}/scim/v2{path}", c.base))
        .bearer_auth(token)
        .header("content-type", "application/scim+json");
    if let Some(tag) = if_match {
        request = request.header("if-match", tag);
    }
    if let Some(body) = body {
        request = request.body(body.to_string());
    }
    c.send(request).await
}

fn patch(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

fn etag(a: &Answer) -> String {
    a.headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .expect("an ETag")
        .to_owned()
}

/// The status and scimType of a SCIM error.
fn refusal(a: &Answer) -> (u16, String) {
    (
        a.status,
        a.body["scimType"].as_str().unwrap_or("").to_owned(),
    )
}

/// `/v1/me` as `token`: the status, and the role and organisation when served.
async fn me(c: &Client, token: &str) -> (u16, String, String) {
    let r = c.get(token, "/v1/me").await;
    (
        r.status,
        r.body["role"].as_str().unwrap_or("").to_owned(),
        r.body["org"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn groups_give_roles_and_deprovisioning_takes_effect_on_the_next_request() {
    for backend in Backend::all() {
        let server = Server::start_with(
            backend,
            Options {
                config_toml: Some(CONFIG.to_owned()),
                ..Options::default()
            },
        )
        .await;
        let c = server.client();
        let sync = server.staff("idp-sync", "scim", "custos").await;
        let crm = server.staff("crm", "integration", "custos").await;
        let switch = server.staff("switch", "contact_center", "custos").await;
        let customer = c.create_customer(&crm, NAME, PHONE, EMAIL, ACCOUNT).await;

        // A new user is a staff entry, held without a role until a mapped group names them.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::POST,
            "/Users",
            Some(json!({
            "schemas": [USER], "userName": "carol", "displayName": "Carol Chen", "active": true,
            "emails": [{"value": "not-kept@example.com"}]})),
            None,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body["id"], "carol");
        assert!(
            r.body.get("emails").is_none(),
            "attributes Custos does not use are not kept"
        );
        assert!(r.headers.get("location").is_some());
        let carol = c.post_empty(&server.admin, "/v1/staff/carol/tokens").await;
        let carol = carol.body["token"].as_str().expect("token").to_owned();
        assert_eq!(
            me(&c, &carol).await.0,
            403,
            "no mapped group: no role, held"
        );

        // A group no mapping names gives nothing; a mapped one gives its role.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::POST,
            "/Groups",
            Some(json!({
            "schemas": [GROUP], "displayName": "Everyone", "members": [{"value": "carol"}]})),
            None,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(me(&c, &carol).await.0, 403);
        let r = scim(&c, &sync, reqwest::Method::POST, "/Groups", Some(json!({
            "schemas": [GROUP], "displayName": "custos support", "members": [{"value": "carol", "type": "User"}]})), None).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let support = r.body["id"].as_str().unwrap().to_owned();
        assert_eq!(
            me(&c, &carol).await,
            (200, "support".into(), "custos".into())
        );
        // She serves a customer like anyone in her role.
        let case = c.verified_case(&switch, PHONE, "carol").await;
        assert_eq!(c.view(&carol, &customer, &case).await.status, 200);
        let u = scim(&c, &sync, reqwest::Method::GET, "/Users/carol", None, None).await;
        assert_eq!(
            u.body["groups"].as_array().map(Vec::len),
            Some(2),
            "{}",
            u.body
        );

        // The first mapping in the configuration's order decides: a partner's group.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::POST,
            "/Users",
            Some(json!({
            "schemas": [USER], "userName": "dan"})),
            None,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = scim(
            &c,
            &sync,
            reqwest::Method::POST,
            "/Groups",
            Some(json!({
            "schemas": [GROUP], "displayName": "Team Leads", "members": [{"value": "dan"}]})),
            None,
        )
        .await;
        let leads = r.body["id"].as_str().unwrap().to_owned();
        let r = scim(&c, &sync, reqwest::Method::POST, "/Groups", Some(json!({
            "schemas": [GROUP], "displayName": "Huaxin BPO Agents", "members": [{"value": "dan"}]})), None).await;
        assert_eq!(r.status, 201);
        let dan = c.post_empty(&server.admin, "/v1/staff/dan/tokens").await;
        let dan = dan.body["token"].as_str().unwrap().to_owned();
        assert_eq!(
            me(&c, &dan).await,
            (200, "support".into(), "huaxin-bpo".into())
        );
        // Leaving the partner's group: the next mapping (team lead, the company's own).
        let r = scim(
            &c,
            &sync,
            reqwest::Method::PATCH,
            "/Users/dan",
            Some(patch(json!([
            {"op": "replace", "path": "displayName", "value": "Dan"}]))),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let huaxin = scim(
            &c,
            &sync,
            reqwest::Method::GET,
            "/Groups?filter=displayName%20eq%20%22huaxin%20bpo%20agents%22",
            None,
            None,
        )
        .await;
        assert_eq!(huaxin.body["totalResults"], 1, "{}", huaxin.body);
        let huaxin = huaxin.body["Resources"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = scim(
            &c,
            &sync,
            reqwest::Method::PATCH,
            &format!("/Groups/{huaxin}"),
            Some(patch(json!([
            {"op": "remove", "path": "members[value eq \"dan\"]"}]))),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            me(&c, &dan).await,
            (200, "team_lead".into(), "custos".into())
        );
        // Leaving every mapped group: no role, held, tokens ended.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::DELETE,
            &format!("/Groups/{leads}"),
            None,
            None,
        )
        .await;
        assert_eq!(r.status, 204);
        assert_eq!(
            me(&c, &dan).await.0,
            401,
            "his token ended with his last role"
        );

        // active: false — refused on her very next request, her token gone for good.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::PATCH,
            "/Users/carol",
            Some(patch(json!([
            {"op": "Replace", "value": {"active": "False"}}]))),
            None,
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["active"], false);
        assert_eq!(c.view(&carol, &customer, &case).await.status, 401);
        let r = scim(
            &c,
            &sync,
            reqwest::Method::PATCH,
            "/Users/carol",
            Some(patch(json!([
            {"op": "replace", "path": "active", "value": true}]))),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(me(&c, &carol).await.0, 401, "a revoked token stays revoked");
        let carol = c.post_empty(&server.admin, "/v1/staff/carol/tokens").await;
        let carol = carol.body["token"].as_str().unwrap().to_owned();
        assert_eq!(me(&c, &carol).await.0, 200, "active again with a new token");

        // An analyst's suspension outlasts whatever the provider says next.
        let analyst = server.staff("sec", "security_analyst", "custos").await;
        assert_eq!(
            c.post_empty(&analyst, "/v1/staff/carol/suspend")
                .await
                .status,
            200
        );
        for active in [false, true] {
            let r = scim(
                &c,
                &sync,
                reqwest::Method::PATCH,
                "/Users/carol",
                Some(patch(json!([
                {"op": "replace", "path": "active", "value": active}]))),
                None,
            )
            .await;
            assert_eq!(r.status, 200);
        }
        assert_eq!(
            me(&c, &carol).await.0,
            403,
            "still suspended by the analyst"
        );
        assert_eq!(
            c.post_empty(&analyst, "/v1/staff/carol/resume")
                .await
                .status,
            200
        );
        // ... and a person the provider holds is resumed there, not by an analyst.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::PATCH,
            "/Users/carol",
            Some(patch(json!([
            {"op": "replace", "path": "active", "value": false}]))),
            None,
        )
        .await;
        assert_eq!(r.status, 200);
        let r = c.post_empty(&analyst, "/v1/staff/carol/resume").await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (409, Some("provisioning_holds")),
            "{}",
            r.body
        );

        // DELETE: gone from SCIM, the staff entry stays (records name it), suspended.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::DELETE,
            "/Users/carol",
            None,
            None,
        )
        .await;
        assert_eq!(r.status, 204);
        assert_eq!(
            scim(&c, &sync, reqwest::Method::GET, "/Users/carol", None, None)
                .await
                .status,
            404
        );
        let g = scim(
            &c,
            &sync,
            reqwest::Method::GET,
            &format!("/Groups/{support}"),
            None,
            None,
        )
        .await;
        assert!(g.body.get("members").is_none(), "{}", g.body);
        let records = access_records(&server, "staff=carol").await;
        assert!(!records.is_empty(), "her records stay");
        let r = scim(
            &c,
            &sync,
            reqwest::Method::POST,
            "/Users",
            Some(json!({
            "schemas": [USER], "userName": "carol"})),
            None,
        )
        .await;
        assert_eq!(
            refusal(&r),
            (409, "uniqueness".into()),
            "a staff id is never reused"
        );
        // A deleted person is brought back by the provider only: no analyst's resume,
        // not even after suspending them once more.
        for step in ["resume", "suspend", "resume"] {
            let r = c
                .post_empty(&analyst, &format!("/v1/staff/carol/{step}"))
                .await;
            if step == "resume" {
                assert_eq!(
                    (r.status, r.body["error"]["code"].as_str()),
                    (409, Some("provisioning_holds")),
                    "{}",
                    r.body
                );
            }
        }

        // Every call above was recorded as the scim principal's.
        let calls = access_records(&server, "staff=idp-sync&limit=1000").await;
        let actions: Vec<&str> = calls.iter().filter_map(|r| r["action"].as_str()).collect();
        for action in [
            "scim_create_user",
            "scim_update_user",
            "scim_delete_user",
            "scim_create_group",
            "scim_update_group",
            "scim_delete_group",
            "scim_read",
        ] {
            assert!(
                actions.contains(&action),
                "{action} missing from {actions:?}"
            );
        }
    }
}

#[tokio::test]
async fn versions_filters_and_refusals_change_nothing() {
    for backend in Backend::all() {
        let server = Server::start_with(
            backend,
            Options {
                config_toml: Some(CONFIG.to_owned()),
                ..Options::default()
            },
        )
        .await;
        let c = server.client();
        let sync = server.staff("idp-sync", "scim", "custos").await;
        let agent = server.staff("alice", "support", "custos").await;

        // Only the scim principal provisions; an admin too is refused.
        for token in [&server.admin, &agent] {
            let r = scim(&c, token, reqwest::Method::GET, "/Users", None, None).await;
            assert_eq!(r.status, 403, "{}", r.text);
            assert_eq!(
                r.body["schemas"][0],
                "urn:ietf:params:scim:api:messages:2.0:Error"
            );
        }
        assert_eq!(
            scim(
                &c,
                "cst_nothing",
                reqwest::Method::GET,
                "/Users",
                None,
                None
            )
            .await
            .status,
            401
        );

        for name in ["Erin", "erik", "frank"] {
            let r = scim(
                &c,
                &sync,
                reqwest::Method::POST,
                "/Users",
                Some(json!({
                "schemas": [USER], "userName": name, "externalId": format!("X-{name}")})),
                None,
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
        // userName is unique without regard to case (RFC 7643 §4.1.1).
        let r = scim(
            &c,
            &sync,
            reqwest::Method::POST,
            "/Users",
            Some(json!({"schemas": [USER], "userName": "ERIN"})),
            None,
        )
        .await;
        assert_eq!(refusal(&r), (409, "uniqueness".into()));
        // RFC 7644 §3.4.2.2 filters, with paging.
        let r = scim(
            &c,
            &sync,
            reqwest::Method::GET,
            "/Users?filter=userName%20sw%20%22ER%22&count=1&startIndex=2",
            None,
            None,
        )
        .await;
        assert_eq!(
            (
                r.body["totalResults"].as_u64(),
                r.body["itemsPerPage"].as_u64()
            ),
            (Some(2), Some(1)),
            "{}",
            r.body
        );
        let r = scim(&c, &sync, reqwest::Method::POST, "/Users/.search", Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "externalId eq \"X-frank\" or (userName eq \"nobody\")", "attributes": ["externalId"]})), None).await;
        assert_eq!(r.body["totalResults"], 1, "{}", r.body);
        assert!(r.body["Resources"][0].get("userName").is_none());
        for bad in ["userName%20xx%20%22a%22", "(userName%20pr", "%22"] {
            let r = scim(
                &c,
                &sync,
                reqwest::Method::GET,
                &format!("/Users?filter={bad}"),
                None,
                None,
            )
            .await;
            assert_eq!(
                refusal(&r),
                (400, "invalidFilter".into()),
                "{bad}: {}",
                r.text
            );
        }

        // A change against an old version changes nothing (RFC 7644 §3.14).
        let r = scim(&c, &sync, reqwest::Method::GET, "/Users/frank", None, None).await;
        let v1 = etag(&r);
        let r = scim(
            &c,
            &sync,
            reqwest::Method::PUT,
            "/Users/frank",
            Some(json!({
            "schemas": [USER], "userName": "frank", "displayName": "Frank"})),
            Some(&v1),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_ne!(etag(&r), v1);
        let r = scim(
            &c,
            &sync,
            reqwest::Method::PUT,
            "/Users/frank",
            Some(json!({
            "schemas": [USER], "userName": "frank", "displayName": "Stale"})),
            Some(&v1),
        )
        .await;
        assert_eq!(r.status, 412, "{}", r.text);
        let r = scim(
            &c,
            &sync,
            reqwest::Method::DELETE,
            "/Users/frank",
            None,
            Some(&v1),
        )
        .await;
        assert_eq!(r.status, 412);
        let r = scim(&c, &sync, reqwest::Method::GET, "/Users/frank", None, None).await;
        assert_eq!(r.body["displayName"], "Frank");

        // The staff id cannot change; bad bodies and members are refused with their type.
        let cases = [
            (
                reqwest::Method::PUT,
                "/Users/frank",
                json!({"schemas": [USER], "userName": "francis"}),
                400,
                "mutability",
            ),
            (
                reqwest::Method::POST,
                "/Users",
                json!({"schemas": [USER], "userName": "has space"}),
                400,
                "invalidValue",
            ),
            (
                reqwest::Method::POST,
                "/Users",
                json!({"schemas": [USER], "userName": "system"}),
                409,
                "uniqueness",
            ),
            (
                reqwest::Method::POST,
                "/Users",
                json!({"userName": "nobody"}),
                400,
                "invalidSyntax",
            ),
            (
                reqwest::Method::POST,
                "/Users",
                json!({"schemas": [USER], "userName": "x", "active": 3}),
                400,
                "invalidValue",
            ),
            (
                reqwest::Method::POST,
                "/Groups",
                json!({"schemas": [GROUP], "displayName": "G", "members": [{"value": "alice"}]}),
                400,
                "invalidValue",
            ),
            (
                reqwest::Method::PATCH,
                "/Users/frank",
                json!({"schemas": [PATCH], "Operations": [{"op": "remove"}]}),
                400,
                "noTarget",
            ),
            (
                reqwest::Method::PATCH,
                "/Users/frank",
                json!({"schemas": [PATCH], "Operations": [{"op": "jump", "path": "active"}]}),
                400,
                "invalidSyntax",
            ),
        ];
        for (method, path, body, status, scim_type) in cases {
            let r = scim(&c, &sync, method.clone(), path, Some(body.clone()), None).await;
            assert_eq!(
                refusal(&r),
                (status, scim_type.to_owned()),
                "{method} {path} {body}: {}",
                r.text
            );
        }
        let r = scim(
            &c,
            &sync,
            reqwest::Method::GET,
            "/Users?count=1000",
            None,
            None,
        )
        .await;
        assert_eq!(
            r.body["totalResults"], 3,
            "nothing refused was created: {}",
            r.body
        );
        let r = c
            .send(
                c.http
                    .post(format!("{}/scim/v2/Users", c.base))
                    .bearer_auth(&sync)
                    .body("{not json"),
            )
            .await;
        assert_eq!(refusal(&r), (400, "invalidSyntax".into()));
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/scim+json")
        );
    }
}
