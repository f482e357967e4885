//! Integration tests (issue 18, items 1 and 2): the contact centre reports contacts with
//! the caller's identifier as the channel saw it; a case's provenance follows from who
//! vouches for the contact, and the default policy reveals only on `verified` cases.
//! Over real HTTP, on SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

/// The access record of the request that gave `answer`.
async fn record_of(server: &Server, answer: &Answer) -> Value {
    let id = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    access_records(server, "")
        .await
        .into_iter()
        .find(|r| r["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no record for {id}"))
}

async fn case_of(c: &Client, crm: &str, body: Value) -> Answer {
    c.post(crm, "/v1/cases", body).await
}

/// A call from the customer's own number opens a verified case, on which fields reveal;
/// the ledger names the customer, the case and the agent, with no number in it.
#[tokio::test]
async fn a_call_from_the_customers_number_opens_a_verified_case() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let carol = server.staff("carol", "support", "custos").await;
        // Written another way than on file: matched after normalisation.
        let call = c
            .post_contact(&w.switch, "+86 138-0013-8000", "carol")
            .await;
        assert_eq!(call.status, 201, "{}", call.body);
        assert_eq!(call.body["matches"], 1);
        assert_eq!(call.body["customer"], w.customer.as_str());
        assert_eq!(call.body["provenance"], "verified");
        let case = call.body["case"].as_str().unwrap().to_owned();
        let r = record_of(&server, &call).await;
        assert_eq!(r["action"], "post_contact");
        assert_eq!(r["decision"], "allow");
        assert_eq!(r["customer_id"], w.customer.as_str());
        assert_eq!(r["case_id"], case.as_str());
        assert_eq!(r["target"], "carol");
        assert_eq!(
            r["fields"],
            json!(["channel:phone", "contact:inbound", "provenance:verified"])
        );
        let revealed = c.reveal(&carol, &w.customer, &case, &["phone"]).await;
        assert_eq!(revealed.status, 200, "{}", revealed.body);
        assert_eq!(revealed.body["fields"]["phone"], "+8613800138000");
        // The second call of the same customer to the same agent joins the open case.
        let again = c.post_contact(&w.switch, PHONE, "carol").await;
        assert_eq!(again.body["case"], case.as_str(), "{}", again.body);
        // Neither the number nor the customer's other data reach the record or a file.
        let all = serde_json::to_string(&access_records(&server, "").await).unwrap();
        for plain in [PHONE, "13800138000", NAME, EMAIL] {
            assert!(!all.contains(plain), "access records contain {plain}");
        }
        for file in server.stored_files() {
            if file.ends_with("admin.token") || file.ends_with("master.key") {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes.windows(11).any(|w| w == PHONE.as_bytes()),
                "{} holds the number",
                file.display()
            );
        }
    }
}

/// Every provenance, and what each allows: a view on any open case of one's own, a
/// reveal only on a verified one; a contact from the customer's number vouches for a
/// case the CRM opened on its word.
#[tokio::test]
async fn reveals_need_a_verified_case_and_a_contact_vouches_for_one() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let dave = server.staff("dave", "support", "custos").await;
        let cases = [
            (
                "unverified",
                json!({"customer": w.customer, "assignee": "dave", "channel": "phone", "reason": "says they called"}),
            ),
            (
                "requested",
                json!({"customer": w.customer, "assignee": "dave", "channel": "phone", "reason": "promised call-back", "requested_by": "dave"}),
            ),
            (
                "outbound",
                json!({"customer": w.customer, "assignee": "dave", "channel": "phone", "reason": "renewal offer", "campaign": "renewals-2026"}),
            ),
        ];
        let mut opened = Vec::new();
        for (provenance, body) in cases {
            let r = case_of(&c, &w.crm, body).await;
            assert_eq!(r.status, 201, "{provenance}: {}", r.body);
            assert_eq!(r.body["provenance"], provenance);
            let case = r.body["id"].as_str().unwrap().to_owned();
            let record = record_of(&server, &r).await;
            let facts = record["fields"].as_array().unwrap();
            assert!(
                facts.contains(&json!(format!("provenance:{provenance}"))),
                "{record}"
            );
            let view = c.view(&dave, &w.customer, &case).await;
            assert_eq!(view.status, 200, "{provenance}: {}", view.body);
            let reveal = c.reveal(&dave, &w.customer, &case, &["phone"]).await;
            assert_eq!(reveal.status, 403, "{provenance}: {}", reveal.body);
            assert_eq!(reveal.code(), "forbidden");
            assert!(reveal.message().contains(provenance), "{}", reveal.body);
            opened.push(case);
        }
        // An outbound case comes from a system, never an admin's hand.
        let by_admin = case_of(
            &c,
            &server.admin,
            json!({"customer": w.customer, "assignee": "dave", "channel": "phone", "reason": "x", "campaign": "c1"}),
        )
        .await;
        assert_eq!(by_admin.status, 403, "{}", by_admin.body);
        assert_eq!(by_admin.body["error"]["policy"], "campaigns-from-systems");
        // One origin only.
        let two = case_of(
            &c,
            &w.crm,
            json!({"customer": w.customer, "assignee": "dave", "channel": "phone", "reason": "x", "campaign": "c1", "requested_by": "dave"}),
        )
        .await;
        assert_eq!(two.status, 409, "{}", two.body);
        assert_eq!(two.code(), "invalid_origin");

        // The customer calls dave: the newest of his open cases for them is vouched for.
        let call = c.post_contact(&w.switch, PHONE, "dave").await;
        assert_eq!(call.status, 201, "{}", call.body);
        let vouched = call.body["case"].as_str().unwrap();
        assert!(opened.contains(&vouched.to_owned()), "{}", call.body);
        let reveal = c.reveal(&dave, &w.customer, vouched, &["phone"]).await;
        assert_eq!(reveal.status, 200, "{}", reveal.body);
    }
}

/// A contact no customer's identifier matches is kept; a case the CRM opens on it is
/// verified only for a customer whose identifier it is, for the agent it was routed to,
/// while it is fresh.
#[tokio::test]
async fn a_contact_from_elsewhere_gives_an_unverified_case() {
    for backend in Backend::all() {
        let server = Server::start_with(
            backend,
            Options {
                env: vec![("CUSTOS_CONTACTS__MAX_AGE_MINUTES".into(), "1".into())],
                ..Options::default()
            },
        )
        .await;
        let w = world(&server).await;
        let c = server.client();
        let other = c.post_contact(&w.switch, "13911112222", "alice").await;
        assert_eq!(other.status, 201, "{}", other.body);
        assert_eq!(other.body["matches"], 0);
        assert_eq!(other.body["case"], Value::Null);
        let contact = other.body["id"].as_str().unwrap().to_owned();
        let body = |assignee: &str| {
            json!({"customer": w.customer, "assignee": assignee, "channel": "phone",
                   "reason": "caller says it is about this account", "contact": contact})
        };
        let r = case_of(&c, &w.crm, body("alice")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["provenance"], "unverified");
        let case = r.body["id"].as_str().unwrap().to_owned();
        let reveal = c.reveal(&w.agent, &w.customer, &case, &["phone"]).await;
        assert_eq!(reveal.status, 403, "{}", reveal.body);
        // Routed to alice: not a way to give bob a case.
        let r = case_of(&c, &w.crm, body("bob")).await;
        assert_eq!(r.status, 409, "{}", r.body);
        assert_eq!(r.code(), "contact_mismatch");

        // A contact from the customer's own number that the CRM opens the case on.
        let dated = custos_types::clock::now_millis() - 57_000;
        let own = c
            .post(
                &w.switch,
                "/v1/contacts",
                json!({"channel": "sms", "caller": {"phone": PHONE}, "agent": "bob", "at": dated}),
            )
            .await;
        assert_eq!(own.status, 201, "{}", own.body);
        let own_id = own.body["id"].as_str().unwrap().to_owned();
        let opened = c
            .post(
                &w.crm,
                "/v1/cases",
                json!({"customer": w.customer, "assignee": "bob", "channel": "sms",
                       "reason": "texted about a parcel", "contact": own_id}),
            )
            .await;
        assert_eq!(opened.status, 201, "{}", opened.body);
        assert_eq!(opened.body["provenance"], "verified");
        // A minute after the contact, it opens nothing any more.
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
        let late = c
            .post(
                &w.crm,
                "/v1/cases",
                json!({"customer": w.customer, "assignee": "bob", "channel": "sms",
                       "reason": "texted about a parcel", "contact": own_id}),
            )
            .await;
        assert_eq!(late.status, 409, "{}", late.body);
        assert_eq!(late.code(), "contact_expired");
    }
}

/// Only the contact centre reports contacts; bad reports get a clear code and open no
/// case.
#[tokio::test]
async fn contact_reports_are_the_contact_centres_and_checked() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        for token in [&w.crm, &w.agent, &w.analyst, &server.admin] {
            let r = c.post_contact(token, PHONE, "alice").await;
            assert_eq!(r.status, 403, "{}", r.body);
        }
        let now = custos_types::clock::now_millis();
        let bad = [
            (
                json!({"channel": "phone", "caller": {"phone": PHONE, "email": EMAIL}, "agent": "alice"}),
                400,
                "invalid_caller",
            ),
            (
                json!({"channel": "phone", "caller": {}, "agent": "alice"}),
                400,
                "invalid_caller",
            ),
            (
                json!({"channel": "email", "caller": {"phone": PHONE}, "agent": "alice"}),
                400,
                "invalid_caller",
            ),
            (
                json!({"channel": "fax", "caller": {"phone": PHONE}, "agent": "alice"}),
                400,
                "invalid_channel",
            ),
            (
                json!({"channel": "phone", "caller": {"phone": "not a number"}, "agent": "alice"}),
                400,
                "invalid_phone",
            ),
            (
                json!({"channel": "phone", "caller": {"phone": PHONE}, "agent": "alice", "at": now - 13 * 3_600_000}),
                400,
                "time_out_of_range",
            ),
            (
                json!({"channel": "phone", "caller": {"phone": PHONE}, "agent": "alice", "at": now + 3_600_000}),
                400,
                "time_out_of_range",
            ),
            (
                json!({"channel": "phone", "caller": {"phone": PHONE}, "agent": "nobody"}),
                404,
                "not_found",
            ),
            (
                json!({"channel": "phone", "caller": {"phone": PHONE}, "agent": "sec"}),
                409,
                "assignee_not_serving",
            ),
            (
                json!({"channel": "phone", "caller": {"phone": PHONE}, "agent": "alice", "extra": 1}),
                400,
                "unknown_field",
            ),
        ];
        let cases_before = c.get(&w.agent, "/v1/me").await.body["open_cases"].clone();
        for (body, status, code) in bad {
            let r = c.post(&w.switch, "/v1/contacts", body.clone()).await;
            assert_eq!(r.status, status, "{body}: {}", r.body);
            assert_eq!(r.code(), code, "{body}: {}", r.body);
            assert!(!r.text.contains("13800138000"), "{}", r.text);
        }
        let cases_after = c.get(&w.agent, "/v1/me").await.body["open_cases"].clone();
        assert_eq!(cases_before, cases_after);
    }
}
