//! Integration tests (issue 18, item 3): access requests with a second person's approval.
//! A case no channel vouches for shows fields only through a grant; company team leads
//! approve, never the requester and never someone of the requester's partner
//! organisation; every step is a ledger entry without the free text. Over real HTTP, on
//! SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

async fn unverified_case(c: &Client, crm: &str, customer: &str, assignee: &str) -> String {
    let r = c
        .post(
            crm,
            "/v1/cases",
            json!({"customer": customer, "assignee": assignee, "channel": "phone",
                   "reason": "caller asked about this account"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["provenance"], "unverified");
    r.body["id"].as_str().unwrap().to_owned()
}

async fn ask(c: &Client, token: &str, customer: &str, case: &str, fields: Value) -> Answer {
    c.post(
        token,
        "/v1/access-requests",
        json!({"customer": customer, "case": case, "fields": fields,
               "purpose": "customer lost the phone and calls from a relative's"}),
    )
    .await
}

fn queue_ids(queue: &Answer) -> Vec<String> {
    queue.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_approval_opens_the_fields_it_names_on_its_case() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let lead = server.staff("lead", "team_lead", "custos").await;
        let partner_lead = server.staff("plead", "team_lead", "huaxin-bpo").await;
        let dave = server.staff("dave", "support", "custos").await;
        let case = unverified_case(&c, &w.crm, &w.customer, "dave").await;
        let refused = c.reveal(&dave, &w.customer, &case, &["phone"]).await;
        assert_eq!(refused.status, 403, "{}", refused.body);

        let asked = ask(&c, &dave, &w.customer, &case, json!(["phone"])).await;
        assert_eq!(asked.status, 201, "{}", asked.body);
        assert_eq!(asked.body["status"], "pending");
        let id = asked.body["id"].as_str().unwrap().to_owned();
        // Only those who may decide see it: a company team lead, not a partner's, not
        // the requester.
        assert!(queue_ids(&c.get(&lead, "/v1/access-requests").await).contains(&id));
        for token in [&partner_lead, &dave, &w.agent] {
            let q = c.get(token, "/v1/access-requests").await;
            assert_eq!(q.status, 200, "{}", q.body);
            assert!(!queue_ids(&q).contains(&id), "{}", q.body);
        }
        let by_partner = c
            .post(
                &partner_lead,
                &format!("/v1/access-requests/{id}/approve"),
                json!({"reason": "fine"}),
            )
            .await;
        assert_eq!(by_partner.status, 403, "{}", by_partner.body);

        let approved = c
            .post(
                &lead,
                &format!("/v1/access-requests/{id}/approve"),
                json!({"reason": "verified by the relative's account question", "minutes": 10}),
            )
            .await;
        assert_eq!(approved.status, 200, "{}", approved.body);
        assert_eq!(approved.body["status"], "granted");
        let until = approved.body["grant_until"].as_i64().unwrap();
        let now = custos_types::clock::now_millis();
        assert!(until > now + 9 * 60_000 && until <= now + 10 * 60_000 + 5_000);
        let again = c
            .post(
                &lead,
                &format!("/v1/access-requests/{id}/deny"),
                json!({"reason": "changed my mind"}),
            )
            .await;
        assert_eq!(
            (again.status, again.code()),
            (409, "already_decided"),
            "{}",
            again.body
        );

        // The grant opens the phone, on that case only, to dave only.
        let revealed = c.reveal(&dave, &w.customer, &case, &["phone"]).await;
        assert_eq!(revealed.status, 200, "{}", revealed.body);
        assert_eq!(revealed.body["fields"]["phone"], "+8613800138000");
        let email = c.reveal(&dave, &w.customer, &case, &["email"]).await;
        assert_eq!(email.status, 403, "{}", email.body);
        let me = c.get(&dave, "/v1/me").await;
        assert_eq!(me.body["grants"][0]["id"], id.as_str(), "{}", me.body);

        // Every step is in the ledger, with the fields and the request, never the text.
        let records = access_records(&server, "").await;
        for action in ["request_access", "approve_access"] {
            let r = records
                .iter()
                .find(|r| r["action"] == action && r["decision"] == "allow")
                .unwrap_or_else(|| panic!("no {action} record"));
            assert_eq!(r["target"], id.as_str());
            assert_eq!(r["fields"], json!(["phone"]));
            assert_eq!(r["case_id"], case.as_str());
        }
        let all = serde_json::to_string(&records).unwrap();
        for text in ["relative", "verified by"] {
            assert!(!all.contains(text), "records hold {text}");
        }
    }
}

#[tokio::test]
async fn approvers_are_never_the_requester_nor_of_a_partner_ring() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let lead = server.staff("lead", "team_lead", "custos").await;
        let partner_lead = server.staff("plead", "team_lead", "huaxin-bpo").await;
        // The company lead asks on their own case: they cannot approve it themselves.
        let own = unverified_case(&c, &w.crm, &w.customer, "lead").await;
        let asked = ask(&c, &lead, &w.customer, &own, json!(["name"])).await;
        assert_eq!(asked.status, 201, "{}", asked.body);
        let id = asked.body["id"].as_str().unwrap();
        let r = c
            .post(
                &lead,
                &format!("/v1/access-requests/{id}/approve"),
                json!({"reason": "me"}),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body["error"]["policy"], "no-self-approval");
        // A partner agent's request: their own partner's lead cannot decide it.
        let bobs = unverified_case(&c, &w.crm, &w.customer, "bob").await;
        let asked = ask(&c, &w.partner_agent, &w.customer, &bobs, json!(["phone"])).await;
        let id = asked.body["id"].as_str().unwrap();
        let r = c
            .post(
                &partner_lead,
                &format!("/v1/access-requests/{id}/approve"),
                json!({"reason": "my team"}),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(r.body["error"]["policy"], "no-approval-within-the-org");
        // A denial leaves the fields closed.
        let r = c
            .post(
                &lead,
                &format!("/v1/access-requests/{id}/deny"),
                json!({"reason": "no contact behind it"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["status"], "denied");
        let reveal = c
            .reveal(&w.partner_agent, &w.customer, &bobs, &["phone"])
            .await;
        assert_eq!(reveal.status, 403, "{}", reveal.body);
    }
}

#[tokio::test]
async fn access_requests_are_checked() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let lead = server.staff("lead", "team_lead", "custos").await;
    // Someone else's case, an analyst, unknown fields: refused, nothing queued.
    for (token, fields, status, code) in [
        (&w.partner_agent, json!(["phone"]), 403, "forbidden"),
        (&w.analyst, json!(["phone"]), 403, "forbidden"),
        (&w.agent, json!(["ssn"]), 400, "invalid_field"),
        (&w.agent, json!([]), 400, "invalid_field"),
    ] {
        let r = ask(&c, token, &w.customer, &w.case, fields).await;
        assert_eq!((r.status, r.code()), (status, code), "{}", r.body);
    }
    assert!(queue_ids(&c.get(&lead, "/v1/access-requests").await).is_empty());
    let asked = ask(&c, &w.agent, &w.customer, &w.case, json!(["phone"])).await;
    let id = asked.body["id"].as_str().unwrap();
    for (path, body, status, code) in [
        (
            format!("/v1/access-requests/{id}/approve"),
            json!({"reason": "ok", "minutes": 0}),
            400,
            "invalid_grant_minutes",
        ),
        (
            format!("/v1/access-requests/{id}/approve"),
            json!({"reason": "ok", "minutes": 241}),
            400,
            "invalid_grant_minutes",
        ),
        (
            "/v1/access-requests/req_0000000000000000/approve".to_owned(),
            json!({"reason": "ok"}),
            404,
            "not_found",
        ),
        (
            "/v1/access-requests/13800138000/approve".to_owned(),
            json!({"reason": "ok"}),
            400,
            "invalid_id",
        ),
    ] {
        let r = c.post(&lead, &path, body).await;
        assert_eq!((r.status, r.code()), (status, code), "{path}: {}", r.body);
    }
    assert_eq!(
        queue_ids(&c.get(&lead, "/v1/access-requests").await),
        [id.to_owned()]
    );
}

/// Break-glass (issue 18, item 4): fields at once with a written reason, an alert at
/// once that only two different analysts clear, and a ceiling per person.
#[tokio::test]
async fn break_glass_opens_at_once_alerts_and_is_rationed() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let dave = server.staff("dave", "support", "custos").await;
        let second_analyst = server.staff("sec2", "security_analyst", "custos").await;
        let case = unverified_case(&c, &w.crm, &w.customer, "dave").await;
        let glass = |reason: &'static str| json!({"customer": w.customer, "case": case, "fields": ["phone"], "reason": reason});
        let short = c.post(&dave, "/v1/break-glass", glass("urgent")).await;
        assert_eq!(
            (short.status, short.code()),
            (400, "invalid_text"),
            "{}",
            short.body
        );
        let reason = "ambulance crew on the line needs the customer's number now";
        let taken = c.post(&dave, "/v1/break-glass", glass(reason)).await;
        assert_eq!(taken.status, 201, "{}", taken.body);
        assert_eq!(taken.body["kind"], "break_glass");
        assert_eq!(taken.body["status"], "granted");
        let until = taken.body["grant_until"].as_i64().unwrap();
        assert!(until > custos_types::clock::now_millis() + 14 * 60_000);
        let revealed = c.reveal(&dave, &w.customer, &case, &["phone"]).await;
        assert_eq!(revealed.status, 200, "{}", revealed.body);

        // An alert at once; it leaves the queue only after two different analysts.
        let alerts = alerts_of(&c, &w.analyst, "dave").await;
        let alert = alerts
            .iter()
            .find(|a| a["kind"] == "break_glass")
            .unwrap_or_else(|| panic!("no break_glass alert: {alerts:?}"));
        let path = format!("/v1/alerts/{}/acknowledge", alert["id"].as_str().unwrap());
        let first = c.post_empty(&w.analyst, &path).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(
            (&first.body["status"], &first.body["reviews"]),
            (&json!("open"), &json!(1))
        );
        let alert_path = format!("/v1/alerts/{}", alert["id"].as_str().unwrap());
        let read = c.get(&w.analyst, &alert_path).await;
        assert_eq!(read.body["reviewed_by"], json!(["sec"]), "{}", read.body);
        let again = c.post_empty(&w.analyst, &path).await;
        assert_eq!(
            (again.status, again.code()),
            (409, "already_reviewed"),
            "{}",
            again.body
        );
        let second = c.post_empty(&second_analyst, &path).await;
        assert_eq!(second.status, 200, "{}", second.body);
        assert_eq!(
            (&second.body["status"], &second.body["reviews"]),
            (&json!("acknowledged"), &json!(2))
        );

        // Two per 30 days by default: the third is refused, and changes nothing.
        let r = c.post(&dave, "/v1/break-glass", glass(reason)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let r = c.post(&dave, "/v1/break-glass", glass(reason)).await;
        assert_eq!(
            (r.status, r.code()),
            (429, "break_glass_exhausted"),
            "{}",
            r.body
        );
        let records = serde_json::to_string(&access_records(&server, "").await).unwrap();
        assert!(
            !records.contains("ambulance"),
            "the reason is never recorded"
        );
    }
}
