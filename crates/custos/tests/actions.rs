//! The detector's restrictions, end to end: a burst of views raises `risk_lower_quota`;
//! the gateway then lowers the person's quotas and asks for a step-up justification on
//! reveals, says so in `GET /v1/me`, keeps it across a restart and lifts it when the
//! alert is dismissed; the alert reaches a webhook (a real HTTP receiver in the test).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::*;
use serde_json::{Value, json};

/// A justification long enough for a step-up (at least 20 characters).
const STEP_UP: &str = "customer disputes a refund on the phone right now";

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// Normal support quotas, and a detector tuned so that a modest burst of views is a
/// `risk_lower_quota` finding: peers only (no one has own history in a test), the
/// step-up and lower-quota thresholds equal (so the first finding lowers the quota),
/// suspension out of reach.
fn config(webhook: Option<SocketAddr>) -> String {
    let mut toml = String::from(
        r#"
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
"#,
    );
    if let Some(addr) = webhook {
        toml.push_str(&format!(
            "\n[alerts]\nwebhook_url = \"http://{addr}/hook\"\nwebhook_timeout_ms = 2000\n"
        ));
    }
    toml
}

/// One delivery the receiver accepted: its `X-Custos-Alert-Id` and body.
type Delivery = (Option<String>, Value);

/// What the webhook receiver got.
#[derive(Clone, Default)]
struct Received {
    attempts: Arc<Mutex<u32>>,
    deliveries: Arc<Mutex<Vec<Delivery>>>,
}

async fn hook(State(r): State<Received>, headers: HeaderMap, body: String) -> StatusCode {
    let attempt = {
        let mut n = r.attempts.lock().unwrap();
        *n += 1;
        *n
    };
    // The first attempt fails: delivery must retry.
    if attempt == 1 {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let id = headers
        .get("x-custos-alert-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    r.deliveries.lock().unwrap().push((id, body));
    StatusCode::NO_CONTENT
}

/// A webhook receiver on a free loopback port.
async fn receiver() -> (SocketAddr, Received) {
    let received = Received::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, received)
}

/// Waits (bounded) for `n` webhook deliveries.
async fn deliveries(received: &Received, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = received.deliveries.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "webhook got {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Requests as `token`, at the simulated time `at` if given.
struct Agent<'a> {
    c: &'a Client,
    token: &'a str,
    at: Option<i64>,
}

impl Agent<'_> {
    fn timed(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let r = r.bearer_auth(self.token);
        match self.at {
            Some(at) => r.header("x-custos-simulated-time", at.to_string()),
            None => r,
        }
    }

    async fn me(&self) -> Answer {
        let c = self.c;
        c.send(self.timed(c.http.get(format!("{}/v1/me", c.base))))
            .await
    }

    async fn view(&self, customer: &str, case: &str) -> Answer {
        let c = self.c;
        c.send(
            self.timed(c.http.get(format!("{}/v1/customers/{customer}", c.base)))
                .header("x-custos-case", case),
        )
        .await
    }

    async fn reveal(&self, customer: &str, case: &str, step_up: Option<&str>) -> Answer {
        let c = self.c;
        let mut body = json!({"fields": ["phone"], "case": case, "reason": "call-back"});
        if let Some(s) = step_up {
            body["step_up_reason"] = json!(s);
        }
        c.send(
            self.timed(
                c.http
                    .post(format!("{}/v1/customers/{customer}/reveal", c.base)),
            )
            .json(&body),
        )
        .await
    }
}

/// Two quiet colleagues of alice (support at custos) view one customer each; then alice
/// views six: the detector's peers-only score crosses the lower-quota threshold.
async fn burst(server: &Server, w: &World, at: Option<i64>) {
    let c = server.client();
    for (peer, tag) in [("carol", 90), ("dave", 91)] {
        let token = server.staff(peer, "support", "custos").await;
        let (customer, case) = customers_with_cases(&c, &w.crm, peer, 1, tag)
            .await
            .remove(0);
        let agent = Agent {
            c: &c,
            token: &token,
            at,
        };
        assert_eq!(agent.view(&customer, &case).await.status, 200);
    }
    let alice = Agent {
        c: &c,
        token: &w.agent,
        at,
    };
    for (i, (customer, case)) in customers_with_cases(&c, &w.crm, "alice", 6, 10)
        .await
        .iter()
        .enumerate()
    {
        let alice = Agent {
            at: at.map(|t| t + i64::try_from(i).unwrap() * 1000),
            ..alice
        };
        let r = alice.view(customer, case).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lower_quota_is_enforced_until_the_alert_is_dismissed() {
    for backend in Backend::all() {
        let (addr, received) = receiver().await;
        let mut server = Server::start_with(
            backend,
            Options {
                config_toml: Some(config(Some(addr))),
                ..Options::default()
            },
        )
        .await;
        let w = world(&server).await;
        let c = server.client();
        burst(&server, &w, None).await;

        let alerts = alerts_of(&c, &w.analyst, "alice").await;
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        let alert = &alerts[0];
        assert_eq!(
            (alert["kind"].as_str(), alert["action"].as_str()),
            (Some("risk_lower_quota"), Some("quota_lowered")),
            "{alert}"
        );
        let id = alert["id"].as_str().unwrap().to_owned();
        let until = alert["created_at"].as_i64().unwrap() + DAY;
        // No one else was flagged.
        let all = c.get(&w.analyst, "/v1/alerts").await;
        assert_eq!(
            all.body["alerts"].as_array().unwrap().len(),
            1,
            "{}",
            all.text
        );

        // (a) alice sees the restriction and a quarter of each limit, less what she used.
        let alice = Agent {
            c: &c,
            token: &w.agent,
            at: None,
        };
        let me = alice.me().await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.body["restricted"]["kind"], "lower_quota", "{}", me.text);
        assert_eq!(me.body["restricted"]["until"], until);
        assert!(
            me.body["restricted"]["note"]
                .as_str()
                .unwrap()
                .contains("step_up_reason")
        );
        assert_eq!(
            me.body["remaining"],
            json!({"customers_per_day": 20 - 6, "reveals_per_hour": 5, "searches_per_day": 50})
        );
        assert_eq!(
            me.body["limits"],
            json!({"customers_per_day": 20, "reveals_per_hour": 5, "searches_per_day": 50}),
            "the lowered ceilings"
        );
        // A colleague is not concerned.
        let bob = Agent {
            c: &c,
            token: &w.partner_agent,
            at: None,
        };
        let me = bob.me().await;
        assert_eq!(me.body["restricted"], Value::Null, "{}", me.text);
        assert_eq!(me.body["remaining"]["reveals_per_hour"], 20);
        assert_eq!(me.body["limits"]["reveals_per_hour"], 20);

        // (b) a reveal needs a step-up justification; without one it is refused (and
        // recorded), with one it is served.
        let r = alice.reveal(&w.customer, &w.case, None).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "step_up_required"),
            "{}",
            r.text
        );
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(message.contains("step_up_reason"), "{message}");
        // The facts beside the message, for clients that word them themselves.
        assert_eq!(
            (
                &r.body["error"]["restriction"],
                &r.body["error"]["restricted_until"],
                &r.body["error"]["quota_share"]
            ),
            (&json!("lower_quota"), &json!(until), &json!(0.25)),
            "{}",
            r.text
        );
        let r = alice.reveal(&w.customer, &w.case, Some("too short")).await;
        assert_eq!((r.status, r.code()), (400, "invalid_text"), "{}", r.text);
        let r = alice.reveal(&w.customer, &w.case, Some(STEP_UP)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["fields"]["phone"], "+8613800138000");

        // (c) the lowered ceiling: 5 reveals an hour instead of 20.
        for _ in 0..4 {
            let r = alice.reveal(&w.customer, &w.case, Some(STEP_UP)).await;
            assert_eq!(r.status, 200, "{}", r.text);
        }
        let r = alice.reveal(&w.customer, &w.case, Some(STEP_UP)).await;
        assert_eq!((r.status, r.code()), (429, "quota_exceeded"), "{}", r.text);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("lowered to 25%")
        );
        let e = &r.body["error"];
        assert_eq!(
            (&e["quota"], &e["window_secs"], &e["restriction"]),
            (
                &json!("reveals_per_hour"),
                &json!(3600),
                &json!("lower_quota")
            ),
            "{}",
            r.text
        );
        assert_eq!(
            e["retry_after"].as_u64(),
            r.headers["retry-after"]
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
        );

        // The ledger has the detector's act, the refusal and the step-ups, never the
        // justification's text.
        let records = access_records(&server, "").await;
        assert!(records.iter().any(|r| r["staff_id"] == "detector"
            && r["action"] == "lower_quota"
            && r["target"] == "alice"
            && r["reason_code"] == "risk_lower_quota"));
        let reveals: Vec<&Value> = records
            .iter()
            .filter(|r| r["staff_id"] == "alice" && r["action"] == "reveal")
            .collect();
        assert_eq!(
            (
                reveals[0]["decision"].as_str(),
                reveals[0]["reason_code"].as_str()
            ),
            (Some("deny"), Some("step_up_required"))
        );
        let stepped: Vec<&&Value> = reveals
            .iter()
            .filter(|r| r["decision"] == "allow")
            .collect();
        assert_eq!(stepped.len(), 5);
        assert!(stepped.iter().all(|r| {
            r["reason_code"].as_str().unwrap().starts_with("step_up:")
                && r["fields"] == json!(["phone"])
        }));
        let everything = serde_json::to_string(&records).unwrap();
        assert!(!everything.contains(STEP_UP));

        // (d) the webhook got the alert (after one failed attempt), and nothing else.
        let got = deliveries(&received, 1).await;
        assert_eq!(got.len(), 1, "{got:?}");
        let (header, body) = &got[0];
        assert_eq!(header.as_deref(), Some(id.as_str()));
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["kind"], "risk_lower_quota");
        assert_eq!(body["subject"], "alice");
        assert_eq!(body["org"], "custos");
        assert_eq!(body["action"], "quota_lowered");
        assert_eq!(body["entries"], alert["entries"]);
        assert_eq!(body["created_at"], alert["created_at"]);
        assert!(!body["reasons"].as_array().unwrap().is_empty());
        let mut keys: Vec<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "action",
                "created_at",
                "entries",
                "id",
                "kind",
                "org",
                "reasons",
                "severity",
                "subject"
            ]
        );
        assert!(*received.attempts.lock().unwrap() >= 2);
        // No personal data in it: not the customers' names, phones or emails.
        let text = body.to_string();
        for pii in [NAME, PHONE, "Customer 10", "1391234", "@example.com"] {
            assert!(!text.contains(pii), "{pii} in {text}");
        }

        // A restart keeps the restriction (re-applied from the alert) and the usage.
        server.restart();
        let c = server.client();
        let alice = Agent {
            c: &c,
            token: &w.agent,
            at: None,
        };
        let me = alice.me().await;
        assert_eq!(me.body["restricted"]["kind"], "lower_quota", "{}", me.text);
        assert_eq!(me.body["restricted"]["until"], until);
        assert_eq!(me.body["remaining"]["reveals_per_hour"], 0);
        let r = alice.reveal(&w.customer, &w.case, None).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "step_up_required"),
            "{}",
            r.text
        );

        // (e) dismissing the alert lifts the restriction at once: the normal quota
        // applies again (5 of 20 reveals used, 7 customers: the burst's 6 and the
        // revealed one), no step-up needed.
        let r = c
            .post_empty(&w.analyst, &format!("/v1/alerts/{id}/dismiss"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let me = alice.me().await;
        assert_eq!(me.body["restricted"], Value::Null, "{}", me.text);
        assert_eq!(
            me.body["remaining"],
            json!({"customers_per_day": 80 - 7, "reveals_per_hour": 15, "searches_per_day": 200})
        );
        let r = alice.reveal(&w.customer, &w.case, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        // And it stays lifted across a restart.
        server.restart();
        let c = server.client();
        let alice = Agent {
            c: &c,
            token: &w.agent,
            at: None,
        };
        assert_eq!(alice.me().await.body["restricted"], Value::Null);
        // The webhook saw nothing more (a dismissal is not an alert).
        assert_eq!(received.deliveries.lock().unwrap().len(), 1);
    }
}

/// Under a simulated clock the restriction runs for 24 hours of the requests' time from
/// the triggering record, also when re-applied after a restart (where "now" is unknown).
#[tokio::test]
async fn under_a_simulated_clock_the_restriction_follows_the_records_time() {
    const T0: i64 = 1_900_000_000_000;
    let mut server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some(config(None)),
            args: vec!["--simulated-clock".into()],
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    burst(&server, &w, Some(T0)).await;
    let c = server.client();
    let alerts = alerts_of(&c, &w.analyst, "alice").await;
    let created = alerts[0]["created_at"].as_i64().unwrap();
    // The alert carries the time of the record that raised it (the burst's last views).
    assert!((T0..T0 + 10_000).contains(&created), "{created}");
    let until = created + DAY;

    server.restart();
    let c = server.client();
    let at = |t| Agent {
        c: &c,
        token: &w.agent,
        at: Some(t),
    };
    let me = at(T0 + HOUR).me().await;
    assert_eq!(me.body["restricted"]["until"], until, "{}", me.text);
    let r = at(T0 + HOUR).reveal(&w.customer, &w.case, None).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "step_up_required"),
        "{}",
        r.text
    );
    // At its end it is over, without anyone lifting it.
    let me = at(until).me().await;
    assert_eq!(me.body["restricted"], Value::Null, "{}", me.text);
    assert_eq!(me.body["remaining"]["reveals_per_hour"], 20);
    let r = at(until + 1).reveal(&w.customer, &w.case, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// A webhook that would send alerts over a network in clear, or a share out of range,
/// stops the server at start with a message naming the key (never the URL).
#[test]
fn unusable_alert_and_restriction_settings_are_refused_at_start() {
    for (toml, key) in [
        (
            "[alerts]\nwebhook_url = \"http://alerts.example.com/hook?token=s3cret\"\n",
            "alerts.webhook_url must use https",
        ),
        (
            "[alerts]\nwebhook_url = \"https://alerts.example.com/hook\"\nwebhook_timeout_ms = 0\n",
            "alerts.webhook_timeout_ms",
        ),
        (
            "[restrictions]\nlower_quota_share = 2.0\n",
            "restrictions.lower_quota_share",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(&config, toml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_custos"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("d"))
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("config_invalid") && err.contains(key), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
