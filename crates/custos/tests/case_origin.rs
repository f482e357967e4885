//! Integration tests: a case says where it came from (an inbound contact or none, and on
//! whose behalf the CRM opened it), and its ledger entry records that as facts in
//! `fields` with the assignee as `target` (custos_access::entry docs).

mod common;

use common::*;
use serde_json::{Value, json};

/// The access record of the request that gave `answer`.
fn record_of(records: &[Value], answer: &Answer) -> Value {
    let id = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    records
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no record for {id}"))
}

/// Ids of alice's open cases, as she sees them.
async fn open_cases(server: &Server, token: &str) -> Vec<String> {
    let me = server.client().get(token, "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.body);
    me.body["open_cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn case_origin_is_recorded_in_the_ledger() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();

        // A follow-up case alice asked the CRM for, with no inbound contact.
        let follow_up = c
            .post(
                &w.crm,
                "/v1/cases",
                json!({"customer": w.customer, "assignee": "alice", "channel": "email",
                       "reason": "promised call-back", "inbound": false, "requested_by": "alice"}),
            )
            .await;
        assert_eq!(follow_up.status, 201, "{}", follow_up.body);
        let follow_up_id = follow_up.body["id"].as_str().unwrap().to_owned();
        // Opened automatically for a call: the defaults.
        let call = c
            .post(
                &w.crm,
                "/v1/cases",
                json!({"customer": w.customer, "assignee": "bob", "channel": "phone",
                       "reason": "delivery question"}),
            )
            .await;
        assert_eq!(call.status, 201, "{}", call.body);

        let records = access_records(&server, "staff=crm").await;
        let r = record_of(&records, &follow_up);
        assert_eq!(r["action"], "create_case");
        assert_eq!(r["decision"], "allow");
        assert_eq!(r["case_id"], follow_up_id.as_str());
        assert_eq!(r["target"], "alice");
        assert_eq!(
            r["fields"],
            json!([
                "channel:email",
                "contact:none",
                "requested_by:alice",
                "provenance:requested"
            ])
        );
        let r = record_of(&records, &call);
        assert_eq!(r["target"], "bob");
        assert_eq!(
            r["fields"],
            json!(["channel:phone", "contact:inbound", "provenance:unverified"])
        );
        // No personal data and no free text: the reasons stay sealed in the store.
        let all = serde_json::to_string(&records).unwrap();
        for plain in [PHONE, NAME, "promised call-back", "delivery question"] {
            assert!(!all.contains(plain), "access records contain {plain}");
        }
        assert!(open_cases(&server, &w.agent).await.contains(&follow_up_id));
    }
}

#[tokio::test]
async fn a_bad_requester_is_refused_and_creates_nothing() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let before = open_cases(&server, &w.agent).await;
        let new_case = |requested_by: Value, inbound: Value| {
            json!({"customer": w.customer, "assignee": "alice", "channel": "phone",
                   "reason": "pretext", "inbound": inbound, "requested_by": requested_by})
        };

        let unknown = c
            .post(
                &w.crm,
                "/v1/cases",
                new_case(json!("mallory"), json!(false)),
            )
            .await;
        assert_eq!(unknown.status, 404, "{}", unknown.body);
        assert_eq!(unknown.code(), "not_found");
        assert!(unknown.text.contains("requested_by"), "{}", unknown.text);
        let malformed = c
            .post(&w.crm, "/v1/cases", new_case(json!("a b"), json!(false)))
            .await;
        assert_eq!(malformed.status, 400, "{}", malformed.body);
        assert_eq!(malformed.code(), "invalid_id");
        let not_bool = c
            .post(&w.crm, "/v1/cases", new_case(json!("alice"), json!("no")))
            .await;
        assert_eq!(not_bool.status, 400, "{}", not_bool.body);

        assert_eq!(open_cases(&server, &w.agent).await, before);
        let records = access_records(&server, "staff=crm").await;
        for answer in [&unknown, &malformed, &not_bool] {
            let r = record_of(&records, answer);
            assert_eq!(r["action"], "create_case");
            assert_eq!(r["decision"], "error", "{r}");
            // Facts are written only for a case that is created.
            assert_eq!(r["fields"], json!([]), "{r}");
        }
    }
}
