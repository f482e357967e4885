//! `custos serve --simulated-clock`: an outside driver sets each request's time, records
//! and quota windows follow it, and the ledger's origin says it is simulated; a real
//! server refuses the header.

mod common;

use common::*;
use serde_json::json;

const T0: i64 = 1_900_000_000_000;
const HOUR: i64 = 3_600_000;

async fn reveal_at(c: &Client, w: &World, at: i64) -> Answer {
    c.send(
        c.http
            .post(format!("{}/v1/customers/{}/reveal", c.base, w.customer))
            .bearer_auth(&w.agent)
            .header("x-custos-simulated-time", at.to_string())
            .json(&json!({"fields": ["phone"], "case": w.case, "reason": "call-back"})),
    )
    .await
}

#[tokio::test]
async fn requests_carry_their_own_time() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some("[quota.support]\nreveals_per_hour = 2\n".into()),
            args: vec!["--simulated-clock".into()],
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let c = server.client();
    assert_eq!(reveal_at(&c, &w, T0).await.status, 200);
    assert_eq!(reveal_at(&c, &w, T0 + 1).await.status, 200);
    let r = reveal_at(&c, &w, T0 + 2).await;
    assert_eq!((r.status, r.code()), (429, "quota_exceeded"));
    // An hour later in simulated time the window has moved on.
    let r = reveal_at(&c, &w, T0 + HOUR + 1).await;
    assert_eq!(r.status, 200, "{}", r.text);

    let records = access_records(&server, "staff=alice").await;
    let times: Vec<i64> = records
        .iter()
        .filter(|r| r["action"] == "reveal")
        .map(|r| r["at"].as_i64().unwrap())
        .collect();
    assert_eq!(times, [T0, T0 + 1, T0 + 2, T0 + HOUR + 1]);

    let note = c.get("", "/ledger/checkpoint").await.text;
    assert_eq!(note.lines().next(), Some("custos.local/ledger/simulated"));

    let r = c
        .send(
            c.http
                .get(format!("{}/v1/customers/{}", c.base, w.customer))
                .bearer_auth(&w.agent)
                .header("x-custos-case", &w.case)
                .header("x-custos-simulated-time", "yesterday"),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_simulated_time"));
}

#[tokio::test]
async fn a_real_server_refuses_a_simulated_time() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let r = reveal_at(&c, &w, T0).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "simulated_clock_disabled"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("13800138000"));
    // The refusal is recorded (before the caller is identified), at the real time.
    let records = access_records(&server, "").await;
    let refused = records
        .iter()
        .find(|r| r["reason_code"] == "simulated_clock_disabled")
        .expect("recorded");
    assert!(refused["at"].as_i64().unwrap() < T0);
}
