//! Canary customers and the detector, end to end: planted through `custos canary plant`,
//! indistinguishable in the API, and any touch suspends the person, with an alert that
//! names the ledger entry; the detector resumes after a restart without acting twice.

mod common;

use common::*;
use serde_json::{Value, json};

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test]
async fn canary_touch_suspends_and_alerts() {
    for backend in Backend::all() {
        let mut server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let canaries = plant_canaries(&server, 5);
        assert_eq!(canaries.len(), 5);
        assert!(
            canaries.iter().all(|id| id.starts_with("cus_")),
            "{canaries:?}"
        );

        // Honest work raises nothing.
        let real = c.view(&w.agent, &w.customer, &w.case).await;
        assert_eq!(real.status, 200);

        // A pretext case for a canary: the view is served like any other...
        let case = c.open_case(&w.crm, &canaries[0], "alice").await;
        let seen = c.view(&w.agent, &canaries[0], &case).await;
        assert_eq!(seen.status, 200, "{}", seen.text);
        assert_eq!(keys(&seen.body), keys(&real.body));
        let index: u64 = seen.headers["x-custos-ledger-index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // ...and then the person is suspended, with a critical alert naming the entry.
        let alerts = alerts_of(&c, &w.analyst, "alice").await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let a = &alerts[0];
        assert_eq!(
            (
                a["kind"].as_str(),
                a["severity"].as_str(),
                a["action"].as_str()
            ),
            (Some("canary_hit"), Some("critical"), Some("suspended"))
        );
        assert_eq!(a["entries"], json!([index]));
        assert!(a["reasons"][0].as_str().unwrap().contains("canary"));
        let again = c.view(&w.agent, &w.customer, &w.case).await;
        assert_eq!(again.status, 403, "suspended: {}", again.text);

        // A denied touch counts too: bob names a canary with no case for it.
        let denied = c
            .view(&w.partner_agent, &canaries[1], &w.partner_case)
            .await;
        assert_eq!(denied.status, 403);
        assert_eq!(alerts_of(&c, &w.analyst, "bob").await.len(), 1);

        // The detector's act is in the ledger; acknowledging the alert is too.
        let records = access_records(&server, "").await;
        assert!(records.iter().any(|r| r["staff_id"] == "detector"
            && r["action"] == "suspend_staff"
            && r["target"] == "alice"
            && r["reason_code"] == "canary_hit"));
        let id = a["id"].as_str().unwrap();
        let r = c
            .post_empty(&w.analyst, &format!("/v1/alerts/{id}/acknowledge"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = c.get(&w.analyst, "/v1/alerts?status=acknowledged").await;
        assert_eq!(r.body["alerts"][0]["id"], id);
        // One alert by its id: for analysts only, with its new status.
        let r = c.get(&w.analyst, &format!("/v1/alerts/{id}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            (&r.body["id"], &r.body["status"], &r.body["staff_id"]),
            (&a["id"], &json!("acknowledged"), &json!("alice"))
        );
        assert_eq!(
            c.get(&w.agent, &format!("/v1/alerts/{id}")).await.status,
            403
        );
        let r = c.get(&w.analyst, "/v1/alerts/alr_missing").await;
        assert_eq!((r.status, r.code()), (404, "not_found"), "{}", r.text);
        assert!(
            access_records(&server, "staff=sec")
                .await
                .iter()
                .any(|r| r["action"] == "acknowledge_alert" && r["target"] == id)
        );
        // No one can take the detector's or the server's name to hide from the detector.
        for reserved in ["detector", "system"] {
            let r = c
                .post(
                    &server.admin,
                    "/v1/staff",
                    json!({"id": reserved, "name": "Hidden", "role": "support", "org": "custos"}),
                )
                .await;
            assert_eq!((r.status, r.code()), (409, "reserved_id"), "{}", r.text);
        }
        // Agents cannot read or handle alerts.
        assert_eq!(c.get(&w.agent, "/v1/alerts").await.status, 403);
        let r = c.get(&w.analyst, "/v1/alerts?status=bogus").await;
        assert_eq!((r.status, r.code()), (400, "invalid_query"));

        // After a restart the detector resumes: a new hit is found, old ones not re-raised.
        server.restart();
        let c = server.client();
        let carol = server.staff("carol", "support", "custos").await;
        assert_eq!(
            c.view(&carol, &canaries[2], "case_0000000000000000")
                .await
                .status,
            403
        );
        assert_eq!(alerts_of(&c, &w.analyst, "carol").await.len(), 1);
        assert_eq!(alerts_of(&c, &w.analyst, "alice").await.len(), 1);
        assert_eq!(alerts_of(&c, &w.analyst, "bob").await.len(), 1);
    }
}

/// A canary may not share a phone, email or account id with a stored customer: an honest
/// search for that customer would trip it.
#[tokio::test]
async fn colliding_canaries_are_refused() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let line = json!({"name": "Li Na", "phone": PHONE, "email": "other@example.com", "account_id": "ACC-9"});
    let r = c
        .post_raw(&server.admin, "/v1/canaries", format!("{line}\n"))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (409, "canary_collision"),
        "{}",
        r.text
    );
    // The same canary with its own phone is accepted: the phone was the collision.
    let line = json!({"name": "Li Na", "phone": "13912345678", "email": "other@example.com", "account_id": "ACC-9"});
    let r = c
        .post_raw(&server.admin, "/v1/canaries", format!("{line}\n"))
        .await;
    assert_eq!(
        (r.status, r.body["imported"].as_u64()),
        (200, Some(1)),
        "{}",
        r.text
    );
    // Only admins plant.
    let r = c
        .post_raw(&w.agent, "/v1/canaries", format!("{line}\n"))
        .await;
    assert_eq!(r.status, 403);
}
