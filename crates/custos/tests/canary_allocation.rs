//! Canary allocation end to end (issue 5, item 5): with `[canaries] allocation_rate`, a
//! case the CRM opens for a person brings a case on a canary allocated to them alone among
//! their peers; their own work on it raises nothing, anyone else's touch of it is a canary
//! hit, and a leak that carries it names them in the trace.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::Value;

/// Every case opened for a person is followed by an allocation attempt.
const ALWAYS: &str = "[canaries]\nallocation_rate = 1.0\n";

async fn open_cases(c: &Client, token: &str) -> Vec<Value> {
    let me = c.get(token, "/v1/me").await;
    assert_eq!(me.status, 200, "{}", me.text);
    me.body["open_cases"].as_array().unwrap().clone()
}

/// The open cases of `token`'s holder on one of `canaries`.
async fn canary_cases(c: &Client, token: &str, canaries: &HashSet<String>) -> Vec<Value> {
    open_cases(c, token)
        .await
        .into_iter()
        .filter(|case| canaries.contains(case["customer"].as_str().unwrap()))
        .collect()
}

#[tokio::test]
async fn allocated_canaries_fingerprint_one_person_per_peer_group() {
    for backend in Backend::all() {
        let server = Server::start_with(
            backend,
            Options {
                config_toml: Some(ALWAYS.to_owned()),
                ..Options::default()
            },
        )
        .await;
        // world() opens a case for alice and bob before any canary exists: nothing to give.
        let w = world(&server).await;
        let c = server.client();
        assert_eq!(open_cases(&c, &w.agent).await.len(), 1);
        let dave = server.staff("dave", "support", "custos").await;
        let canaries: HashSet<String> = plant_canaries(&server, 2).into_iter().collect();

        // A customer chats with alice from their own number: the contact centre's answer
        // names only that customer's case; alice's queue shows one more, on a canary,
        // through the same channel and as verified as the case beside it.
        let second = c
            .create_customer(
                &w.crm,
                "Li Na",
                "13900139000",
                "li.na@example.com",
                "ACC-0000000002",
            )
            .await;
        let opened = c
            .post(
                &w.switch,
                "/v1/contacts",
                serde_json::json!({"channel": "chat", "caller": {"phone": "13900139000"}, "agent": "alice"}),
            )
            .await;
        assert_eq!(opened.status, 201, "{}", opened.text);
        assert_eq!(opened.body["customer"], second.as_str(), "{}", opened.text);
        let alices = canary_cases(&c, &w.agent, &canaries).await;
        assert_eq!(alices.len(), 1, "{alices:?}");
        assert_eq!(alices[0]["channel"], "chat");
        assert_eq!(alices[0]["provenance"], "verified");
        // Not opened in the millisecond of the case beside it (a tell): dated as a case that waited
        // on the queue 2 to 30 minutes.
        let crm_opened_at = open_cases(&c, &w.agent)
            .await
            .iter()
            .filter(|case| !canaries.contains(case["customer"].as_str().unwrap()))
            .filter_map(|case| case["created_at"].as_i64())
            .max()
            .unwrap();
        let queued = crm_opened_at - alices[0]["created_at"].as_i64().unwrap();
        assert!((120_000..1_800_000).contains(&queued), "{queued} ms");
        let alice_canary = alices[0]["customer"].as_str().unwrap().to_owned();
        let alice_case = alices[0]["id"].as_str().unwrap().to_owned();

        // Her peer gets the other canary; then the pool is spent for their group.
        c.open_case(&w.crm, &w.customer, "dave").await;
        let daves = canary_cases(&c, &dave, &canaries).await;
        assert_eq!(daves.len(), 1, "{daves:?}");
        assert_ne!(daves[0]["customer"], alice_canary.as_str());
        c.open_case(&w.crm, &w.customer, "alice").await;
        c.open_case(&w.crm, &w.customer, "dave").await;
        assert_eq!(canary_cases(&c, &w.agent, &canaries).await.len(), 1);
        assert_eq!(canary_cases(&c, &dave, &canaries).await.len(), 1);
        // Another organisation is not her peer group: bob may get either.
        c.open_case(&w.crm, &w.customer, "bob").await;
        assert_eq!(canary_cases(&c, &w.partner_agent, &canaries).await.len(), 1);

        // Alice works her canary's case like any other: served, and no alert.
        let view = c.view(&w.agent, &alice_canary, &alice_case).await;
        assert_eq!(view.status, 200, "{}", view.text);
        let reveal = c
            .reveal(&w.agent, &alice_canary, &alice_case, &["phone", "name"])
            .await;
        assert_eq!(reveal.status, 200, "{}", reveal.text);
        let phone = reveal.body["fields"]["phone"].as_str().unwrap().to_owned();

        // Her canary reached by anyone else is a hit: the CRM opens dave a pretext case.
        let pretext = c.open_case(&w.crm, &alice_canary, "dave").await;
        assert_eq!(c.view(&dave, &alice_canary, &pretext).await.status, 200);
        let daves_alerts = alerts_of(&c, &w.analyst, "dave").await;
        assert_eq!(daves_alerts[0]["kind"], "canary_hit");
        // The detector reads the ledger in order: alice's earlier touches were read, and
        // raised nothing.
        let all = c.get(&w.analyst, "/v1/alerts").await;
        assert!(
            all.body["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["staff_id"] != "alice"),
            "{}",
            all.text
        );
        assert_eq!(c.view(&w.agent, &w.customer, &w.case).await.status, 200);

        // The allocation is in the ledger, as the system's act, naming case and person.
        let records = access_records(&server, &format!("customer={alice_canary}")).await;
        let allocation = records
            .iter()
            .find(|r| r["action"] == "allocate_canary")
            .expect("an allocation entry");
        assert_eq!(
            (
                &allocation["staff_id"],
                &allocation["target"],
                &allocation["case_id"]
            ),
            (
                &Value::from("system"),
                &Value::from("alice"),
                &Value::from(alice_case.as_str())
            )
        );

        // A leak carrying her canary names her as the one it was allocated to.
        let leak = format!("phone,name\n{phone},x\n{PHONE},y\n");
        let traced = c.trace_upload(&w.analyst, "", leak.as_bytes()).await;
        assert_eq!(traced.status, 200, "{}", traced.text);
        let found = &traced.body["canaries"];
        assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
        assert_eq!(found[0]["customer"], alice_canary.as_str());
        let exposed: Vec<(&str, bool)> = found[0]["exposed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["staff"].as_str().unwrap(),
                    e["allocated"].as_bool().unwrap(),
                )
            })
            .collect();
        assert!(exposed.contains(&("alice", true)), "{exposed:?}");
        assert!(exposed.contains(&("dave", false)), "{exposed:?}");
        assert_eq!(
            traced.body["suspects"][0]["staff"], "alice",
            "{}",
            traced.text
        );
    }
}

/// Off by default: cases bring nothing else, planted canaries or not.
#[tokio::test]
async fn no_allocation_unless_configured() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let canaries: HashSet<String> = plant_canaries(&server, 3).into_iter().collect();
    for _ in 0..5 {
        c.open_case(&w.crm, &w.customer, "alice").await;
    }
    assert!(canary_cases(&c, &w.agent, &canaries).await.is_empty());
    assert_eq!(open_cases(&c, &w.agent).await.len(), 6);
}

/// `allocation_rate_self_requested`: only the cases a person asked for themselves bring
/// a canary (the route to customers no contact brought).
#[tokio::test]
async fn self_requested_cases_can_carry_canaries_alone() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some("[canaries]\nallocation_rate_self_requested = 1.0\n".to_owned()),
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let c = server.client();
    server.staff("dave", "support", "custos").await;
    let canaries: HashSet<String> = plant_canaries(&server, 3).into_iter().collect();
    let open = |requested_by: Option<&str>| {
        let mut case = serde_json::json!({"customer": w.customer, "assignee": "alice", "channel": "phone", "reason": "follow-up", "inbound": false});
        if let Some(who) = requested_by {
            case["requested_by"] = who.into();
        }
        case
    };
    for asked_by in [None, Some("dave")] {
        let r = c.post(&w.crm, "/v1/cases", open(asked_by)).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    assert!(canary_cases(&c, &w.agent, &canaries).await.is_empty());
    let r = c.post(&w.crm, "/v1/cases", open(Some("alice"))).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(canary_cases(&c, &w.agent, &canaries).await.len(), 1);
}
