//! Integration tests: reveal-free contact over real HTTP on both stores. A call binds a
//! privacy number that the PBX (a `telephony` principal) resolves while the case is
//! open; an email goes to a real SMTP server (aiosmtpd, tests/relay/smtp_server.py); an
//! SMS to a real HTTP server that checks the signature. Contacts charge like reveals, and
//! no failure passes on the address or the number.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// The customer's phone and email as Custos stores them (normalised).
const PHONE_E164: &str = "+8613800138000";
const EMAIL_NORMAL: &str = "zhang.wei@example.com";
const X1: &str = "+8610000001";
const X2: &str = "+8610000002";
const SMS_SECRET: &str = "relay-test-secret-0123456789";

/// The python of tests/relay/.venv, made once per test binary.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/relay/venv.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("run venv.sh");
        assert!(
            out.status.success(),
            "venv.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// A real SMTP server on a loopback port; the messages it took arrive on `messages`.
struct Smtp {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    messages: mpsc::Receiver<Value>,
}

impl Smtp {
    fn start(reject: bool) -> Smtp {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/relay/smtp_server.py"
        );
        let mut command = Command::new(python());
        command.arg(script);
        if reject {
            command.arg("--reject");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP server");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a first line").unwrap();
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if tx.send(serde_json::from_str(&line).unwrap()).is_err() {
                    break;
                }
            }
        });
        Smtp {
            child,
            _stdin: stdin,
            port,
            messages,
        }
    }

    fn next_message(&self) -> Value {
        self.messages
            .recv_timeout(Duration::from_secs(10))
            .expect("a message reached the SMTP server")
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the SMS gateway received: the body and whether its signature held.
#[derive(Clone, Default)]
struct Gateway {
    received: Arc<Mutex<Vec<(Value, bool)>>>,
}

/// A real HTTP server standing for the SMS gateway: checks `X-Custos-Signature`, keeps
/// what it got, and answers `status`.
async fn sms_gateway(status: StatusCode) -> (String, Gateway) {
    let gateway = Gateway::default();
    let kept = gateway.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let timestamp = header("x-custos-timestamp");
                let mut mac =
                    <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SMS_SECRET.as_bytes())
                        .unwrap();
                mac.update(format!("{timestamp}.").as_bytes());
                mac.update(&body);
                let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                let fresh = timestamp
                    .parse::<i64>()
                    .is_ok_and(|t| (t - custos_types::clock::now_millis() / 1000).abs() < 60);
                let valid = fresh && header("x-custos-signature") == expected;
                kept.received
                    .lock()
                    .unwrap()
                    .push((serde_json::from_slice(&body).unwrap(), valid));
                if valid {
                    status
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, gateway)
}

/// The configuration of a server with the pool (X1, X2), and the SMTP relay and SMS
/// gateway when given; support staff may reveal `reveals` fields an hour.
fn relay_config(
    dir: &std::path::Path,
    smtp: Option<u16>,
    sms: Option<&str>,
    reveals: u32,
) -> String {
    let mut toml = format!(
        "[quota.support]\ncustomers_per_day = 80\nreveals_per_hour = {reveals}\nsearches_per_day = 200\n\n\
         [relay]\nnumbers = [\"{X1}\", \"{X2}\"]\n"
    );
    if let Some(port) = smtp {
        toml.push_str(&format!(
            "\n[relay.email]\nhost = \"127.0.0.1\"\nport = {port}\nfrom = \"Example Support <support@example.com>\"\ntls = \"none\"\n"
        ));
    }
    if let Some(url) = sms {
        let secret = dir.join("sms.secret");
        std::fs::write(&secret, format!("{SMS_SECRET}\n")).unwrap();
        toml.push_str(&format!(
            "\n[relay.sms]\nurl = \"{url}\"\nsecret_file = \"{}\"\n",
            secret.display()
        ));
    }
    toml
}

async fn start(backend: Backend, config: String) -> Server {
    Server::start_with(
        backend,
        Options {
            config_toml: Some(config),
            ..Options::default()
        },
    )
    .await
}

async fn contact(c: &Client, token: &str, customer: &str, body: Value) -> Answer {
    c.post(token, &format!("/v1/customers/{customer}/contact"), body)
        .await
}

async fn resolve(c: &Client, token: &str, agent: &str, number: &str) -> Answer {
    c.post(
        token,
        "/v1/telephony/resolve",
        json!({"agent": agent, "virtual_number": number}),
    )
    .await
}

/// The access record of the request that gave `answer` (its first, the intent, if the
/// act then failed).
fn record_of(records: &[Value], answer: &Answer) -> Value {
    let id = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    records
        .iter()
        .find(|r| r["request_id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no record for {id}"))
}

#[tokio::test]
async fn a_call_binds_a_privacy_number_that_only_the_pbx_resolves_while_the_case_is_open() {
    for backend in Backend::all() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(backend, relay_config(dir.path(), None, None, 20)).await;
        let w = world(&server).await;
        let pbx = server.staff("pbx", "telephony", "custos").await;
        let c = server.client();
        let second = c
            .create_customer(&w.crm, "Li Na", "13900139000", "li.na@example.com", "ACC-2")
            .await;
        let third = c
            .create_customer(
                &w.crm,
                "Wang Fang",
                "13700137000",
                "wang.fang@example.com",
                "ACC-3",
            )
            .await;
        let second_case = c.open_case(&w.crm, &second, "alice").await;
        let third_case = c.open_case(&w.crm, &third, "alice").await;
        let call = |case: &str| json!({"case": case, "channel": "call"});

        let first = contact(&c, &w.agent, &w.customer, call(&w.case)).await;
        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body["channel"], "call");
        assert_eq!(first.body["status"], "bound");
        let x = first.body["virtual_number"].as_str().unwrap().to_owned();
        assert_eq!(x, X1);
        // The same agent and customer: the same number while the case is open.
        let again = contact(&c, &w.agent, &w.customer, call(&w.case)).await;
        assert_eq!(again.body["virtual_number"], X1, "{}", again.body);
        // Another customer of the same agent: another number.
        let other = contact(&c, &w.agent, &second, call(&second_case)).await;
        assert_eq!(other.body["virtual_number"], X2, "{}", other.body);
        // The number may serve another agent at once.
        let partner = contact(&c, &w.partner_agent, &w.customer, call(&w.partner_case)).await;
        assert_eq!(partner.body["virtual_number"], X1, "{}", partner.body);
        // Every number already leads alice to another customer.
        let exhausted = contact(&c, &w.agent, &third, call(&third_case)).await;
        assert_eq!(exhausted.status, 503, "{}", exhausted.body);
        assert_eq!(exhausted.code(), "number_pool_exhausted");
        // Someone else's case, and a message on a call, are refused.
        let foreign = contact(&c, &w.agent, &w.customer, call(&w.partner_case)).await;
        assert_eq!(foreign.status, 403, "{}", foreign.body);
        let chatty = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "call", "text": "hello"}),
        )
        .await;
        assert_eq!((chatty.status, chatty.code()), (400, "invalid_body"));
        let unknown = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "fax"}),
        )
        .await;
        assert_eq!((unknown.status, unknown.code()), (400, "invalid_channel"));
        // No email relay on this server.
        let email = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "email", "subject": "Your order", "text": "Hello"}),
        )
        .await;
        assert_eq!((email.status, email.code()), (409, "relay_not_configured"));

        // The PBX learns where X leads for the bound agent, and only for them.
        let resolved = resolve(&c, &pbx, "alice", X1).await;
        assert_eq!(resolved.status, 200, "{}", resolved.body);
        assert_eq!(resolved.body, json!({"number": PHONE_E164}));
        let resolved = resolve(&c, &pbx, "alice", X2).await;
        assert_eq!(resolved.body, json!({"number": "+8613900139000"}));
        assert_eq!(
            resolve(&c, &pbx, "bob", X1).await.body["number"],
            PHONE_E164
        );
        let unbound = resolve(&c, &pbx, "bob", X2).await;
        assert_eq!((unbound.status, unbound.code()), (404, "no_call_binding"));
        let bad = resolve(&c, &pbx, "alice", "13800138000").await;
        assert_eq!((bad.status, bad.code()), (400, "invalid_body"));
        // Nobody else may ask: not the agent, not the CRM, not an admin.
        for token in [&w.agent, &w.crm, &server.admin, &w.analyst] {
            let r = resolve(&c, token, "alice", X1).await;
            assert_eq!((r.status, r.code()), (403, "forbidden"), "{}", r.body);
        }

        // The ledger: the contact (its channel) and the resolve (customer and agent).
        let records = access_records(&server, "limit=1000").await;
        let r = record_of(&records, &first);
        assert_eq!(
            (
                &r["action"],
                &r["decision"],
                &r["customer_id"],
                &r["case_id"]
            ),
            (
                &json!("contact"),
                &json!("allow"),
                &json!(w.customer),
                &json!(w.case)
            )
        );
        assert_eq!(r["fields"], json!(["channel:call"]));
        let resolves: Vec<&Value> = records
            .iter()
            .filter(|r| r["action"] == "resolve_call" && r["decision"] == "allow")
            .collect();
        assert_eq!(resolves.len(), 3, "{resolves:?}");
        assert_eq!(resolves[0]["customer_id"], w.customer.as_str());
        assert_eq!(resolves[0]["case_id"], w.case.as_str());
        assert_eq!(resolves[0]["target"], "alice");
        assert_eq!(resolves[0]["staff_id"], "pbx");
        let all = serde_json::to_string(&records).unwrap();
        assert!(!all.contains("8613800138000"), "a number in the records");

        // A suspended agent's calls are no longer connected, and connected again on resume.
        let suspend = c.post_empty(&w.analyst, "/v1/staff/bob/suspend").await;
        assert_eq!(suspend.status, 200, "{}", suspend.body);
        let refused = resolve(&c, &pbx, "bob", X1).await;
        assert_eq!(
            (refused.status, refused.code()),
            (403, "forbidden"),
            "{}",
            refused.body
        );
        c.post_empty(&w.analyst, "/v1/staff/bob/resume").await;
        assert_eq!(resolve(&c, &pbx, "bob", X1).await.status, 200);

        // Closing the case ends the binding, and frees X1 for alice's next customer.
        let closed = c
            .post_empty(&w.agent, &format!("/v1/cases/{}/close", w.case))
            .await;
        assert_eq!(closed.status, 200, "{}", closed.body);
        let ended = resolve(&c, &pbx, "alice", X1).await;
        assert_eq!((ended.status, ended.code()), (404, "no_call_binding"));
        let after = contact(&c, &w.agent, &w.customer, call(&w.case)).await;
        assert_eq!(after.status, 403, "closed case: {}", after.body);
        let freed = contact(&c, &w.agent, &third, call(&third_case)).await;
        assert_eq!(freed.body["virtual_number"], X1, "{}", freed.body);
        assert_eq!(
            resolve(&c, &pbx, "alice", X1).await.body["number"],
            "+8613700137000"
        );
    }
}

#[tokio::test]
async fn email_and_sms_reach_the_customer_through_real_relays_and_charge_quotas() {
    let smtp = Smtp::start(false);
    let (sms_url, gateway) = sms_gateway(StatusCode::OK).await;
    for backend in Backend::all() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(
            backend,
            relay_config(dir.path(), Some(smtp.port), Some(&sms_url), 4),
        )
        .await;
        let w = world(&server).await;
        let c = server.client();
        let text = "Dear customer,\nyour parcel 4711 leaves today.\nKind regards";

        let email = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "email", "subject": "Your parcel 4711", "text": text}),
        )
        .await;
        assert_eq!(email.status, 200, "{}", email.body);
        assert_eq!(email.body, json!({"channel": "email", "status": "sent"}));
        let message = smtp.next_message();
        assert_eq!(message["to"], json!([EMAIL_NORMAL]));
        assert_eq!(message["from"], "support@example.com");
        let data = message["data"].as_str().unwrap();
        assert!(data.contains("Subject: Your parcel 4711"), "{data}");
        assert!(data.contains("your parcel 4711 leaves today."), "{data}");
        assert!(data.contains(EMAIL_NORMAL), "{data}");
        // Partner staff may email through the relay: the address is never shown to them.
        let partner = contact(
            &c,
            &w.partner_agent,
            &w.customer,
            json!({"case": w.partner_case, "channel": "email", "subject": "Follow-up", "text": "Hello again"}),
        )
        .await;
        assert_eq!(partner.status, 200, "{}", partner.body);
        assert_eq!(smtp.next_message()["to"], json!([EMAIL_NORMAL]));
        assert!(!partner.text.contains(EMAIL_NORMAL));

        let sms = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "sms", "text": "Your courier arrives at 3 pm"}),
        )
        .await;
        assert_eq!(sms.status, 200, "{}", sms.body);
        let (body, signed) = gateway.received.lock().unwrap().last().cloned().unwrap();
        assert!(signed, "the signature holds");
        assert_eq!(body["to"], PHONE_E164);
        assert_eq!(body["text"], "Your courier arrives at 3 pm");
        assert_eq!(body["id"], sms.headers["x-request-id"].to_str().unwrap());

        // A message that does not fit its channel is refused and sends nothing.
        let refused = [
            json!({"case": w.case, "channel": "email", "text": "no subject"}),
            json!({"case": w.case, "channel": "sms", "subject": "x", "text": "hi"}),
            json!({"case": w.case, "channel": "sms", "text": "a\u{0007}b"}),
            json!({"case": w.case, "channel": "sms", "text": "x".repeat(481)}),
            json!({"case": w.case, "channel": "email", "subject": "a\nb", "text": "hi"}),
        ];
        let before = gateway.received.lock().unwrap().len();
        for body in refused {
            let r = contact(&c, &w.agent, &w.customer, body.clone()).await;
            assert_eq!(r.status, 400, "{body}: {}", r.body);
        }
        assert_eq!(gateway.received.lock().unwrap().len(), before);

        // Each contact took one reveal (of 4 an hour): email, SMS, and now a call.
        let call = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "call"}),
        )
        .await;
        assert_eq!(call.status, 200, "{}", call.body);
        let me = c.get(&w.agent, "/v1/me").await;
        assert_eq!(me.body["remaining"]["reveals_per_hour"], 1, "{}", me.body);
        let reveal = c.reveal(&w.agent, &w.customer, &w.case, &["phone"]).await;
        assert_eq!(reveal.status, 200, "{}", reveal.body);
        let over = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "call"}),
        )
        .await;
        assert_eq!(
            (over.status, over.code()),
            (429, "quota_exceeded"),
            "{}",
            over.body
        );
        // Counted again after a restart, from the ledger.
        let mut server = server;
        server.restart();
        let me = server.client().get(&w.agent, "/v1/me").await;
        assert_eq!(me.body["remaining"]["reveals_per_hour"], 0, "{}", me.body);
    }
}

#[tokio::test]
async fn a_failing_relay_answers_relay_failed_and_passes_on_no_address() {
    let smtp = Smtp::start(true);
    let (sms_url, gateway) = sms_gateway(StatusCode::INTERNAL_SERVER_ERROR).await;
    for backend in Backend::all() {
        let dir = tempfile::tempdir().unwrap();
        let server = start(
            backend,
            relay_config(dir.path(), Some(smtp.port), Some(&sms_url), 20),
        )
        .await;
        let w = world(&server).await;
        let c = server.client();
        let email = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "email", "subject": "Your order", "text": "Hello"}),
        )
        .await;
        assert_eq!(
            (email.status, email.code()),
            (502, "relay_failed"),
            "{}",
            email.body
        );
        let sms = contact(
            &c,
            &w.agent,
            &w.customer,
            json!({"case": w.case, "channel": "sms", "text": "Hello"}),
        )
        .await;
        assert_eq!(
            (sms.status, sms.code()),
            (502, "relay_failed"),
            "{}",
            sms.body
        );
        assert!(gateway.received.lock().unwrap().last().unwrap().1, "signed");

        // The record says the contact was attempted, then failed.
        let records = access_records(&server, "limit=1000").await;
        let id = email.headers["x-request-id"].to_str().unwrap();
        let outcomes: Vec<(&Value, &Value)> = records
            .iter()
            .filter(|r| r["request_id"] == id)
            .map(|r| (&r["decision"], &r["reason_code"]))
            .collect();
        assert_eq!(outcomes.len(), 2, "{outcomes:?}");
        assert_eq!(outcomes[1], (&json!("error"), &json!("relay_failed")));
        // Neither the answers nor the records nor the log hold the address or number
        // (the SMTP server's refusal echoed the address).
        let log = std::fs::read_to_string(server.log_path()).unwrap();
        for text in [
            email.text.as_str(),
            sms.text.as_str(),
            &serde_json::to_string(&records).unwrap(),
            &log,
        ] {
            for plain in [EMAIL_NORMAL, "Zhang.Wei", "8613800138000", "no such user"] {
                assert!(!text.contains(plain), "{plain} in {text}");
            }
        }
    }
    drop(smtp);
}
