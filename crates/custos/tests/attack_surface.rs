//! The classes of problem an outside attack run found, each over real HTTP against the
//! real binary: who can ever read plaintext, caching, ids that could carry personal data
//! into the ledger, control characters, the simulated clock, the search oracle's timing,
//! `/v1/me` for suspended staff, and witness cosignatures.

mod common;

use common::*;
use serde_json::json;

/// Every role a staff entry can have, and whether it serves customers.
const ROLES: [(&str, bool); 6] = [
    ("support", true),
    ("sales", true),
    ("team_lead", true),
    ("security_analyst", false),
    ("admin", false),
    ("integration", false),
];

/// A phone number sent where an id belongs: it must never reach the ledger.
const NUMBER_AS_ID: &str = "13955554444";

/// Inserts an open case straight into the SQLite store, as one created before the
/// gateway refused such assignees would be.
async fn legacy_case(server: &Server, customer: &str, assignee: &str) -> String {
    use sqlx::Connection;
    let id = format!("case_{}", hex::encode(rand::random::<[u8; 8]>()));
    let url = format!("sqlite://{}", server.sqlite_path().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO cases (id, customer_id, assignee, channel, reason, status, created_by, created_at) \
         VALUES (?, ?, ?, 'phone', x'00', 'open', 'crm', 1)",
    )
    .bind(&id)
    .bind(customer)
    .bind(assignee)
    .execute(&mut conn)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn only_roles_that_serve_customers_ever_see_a_value() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    for (role, serves) in ROLES {
        for org in ["custos", "huaxin-bpo"] {
            let id = format!("{role}-{org}");
            let token = server.staff(&id, role, org).await;
            let r = c
                .post(
                    &w.crm,
                    "/v1/cases",
                    json!({"customer": w.customer, "assignee": id, "channel": "phone", "reason": "self"}),
                )
                .await;
            // A case on a role that does not serve customers: refused at creation, and
            // (for one made before that rule) useless for reading.
            let case = if serves {
                assert_eq!(r.status, 201, "{id}: {}", r.text);
                // The customer calls: the contact vouches for the case, so fields reveal.
                let call = c.post_contact(&w.switch, PHONE, &id).await;
                assert_eq!(call.body["case"], r.body["id"], "{id}: {}", call.text);
                r.body["id"].as_str().unwrap().to_owned()
            } else {
                assert_eq!(
                    (r.status, r.code()),
                    (409, "assignee_not_serving"),
                    "{id}: {}",
                    r.text
                );
                legacy_case(&server, &w.customer, &id).await
            };
            let view = c.view(&token, &w.customer, &case).await;
            let reveal = c.reveal(&token, &w.customer, &case, &["phone"]).await;
            if serves {
                assert_eq!(view.status, 200, "{id}: {}", view.text);
                assert_eq!(reveal.body["fields"]["phone"], "+8613800138000", "{id}");
            } else {
                for r in [&view, &reveal] {
                    assert_eq!(r.status, 403, "{id}: {}", r.text);
                    assert!(r.text.contains("serves-customers"), "{id}: {}", r.text);
                    assert!(!r.text.contains("138"), "{id}: {}", r.text);
                }
            }
        }
    }
    // The CRM's own token: no case for itself, and no read through anyone's case.
    let r = c
        .post(
            &w.crm,
            "/v1/cases",
            json!({"customer": w.customer, "assignee": "crm", "channel": "phone", "reason": "self"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "assignee_not_serving"));
    let own = legacy_case(&server, &w.customer, "crm").await;
    for case in [own.as_str(), w.case.as_str()] {
        let r = c
            .reveal(
                &w.crm,
                &w.customer,
                case,
                &["name", "phone", "email", "account_id"],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
    // Refused attempts are recorded, under the deciding rule.
    let denied = access_records(&server, "staff=crm")
        .await
        .into_iter()
        .filter(|r| r["action"] == "reveal")
        .map(|r| (r["decision"].clone(), r["reason_code"].clone()))
        .collect::<Vec<_>>();
    assert_eq!(denied.len(), 2);
    assert!(denied.iter().all(|d| d.0 == "deny" && d.1 == "forbidden"));
}

#[tokio::test]
async fn no_answer_of_the_api_may_be_cached() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let mut answers = vec![
        ("view", c.view(&w.agent, &w.customer, &w.case).await),
        (
            "reveal",
            c.reveal(&w.agent, &w.customer, &w.case, &["phone"]).await,
        ),
        (
            "search",
            c.get(&w.agent, "/v1/customers?phone=13800138000").await,
        ),
        ("me", c.get(&w.agent, "/v1/me").await),
        (
            "token",
            c.post_empty(&server.admin, "/v1/staff/alice/tokens").await,
        ),
        (
            "link",
            c.post_empty(&w.crm, &format!("/v1/customers/{}/link", w.customer))
                .await,
        ),
        (
            "accesses",
            c.get(&w.crm, &format!("/v1/customers/{}/accesses", w.customer))
                .await,
        ),
        ("access list", c.get(&server.admin, "/v1/access").await),
        ("checkpoint", c.get("", "/ledger/checkpoint").await),
        ("health", c.get("", "/healthz").await),
        ("unauthenticated", c.get("nope", "/v1/me").await),
        ("not found", c.get(&w.agent, "/v1/nothing-here").await),
        ("bad id", c.get(&w.agent, "/v1/customers/not-an-id").await),
    ];
    answers.push(("openapi", c.get("", "/openapi.json").await));
    for (what, a) in &answers {
        assert_eq!(
            a.headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{what}: {} {:?}",
            a.status,
            a.headers
        );
    }
    assert_eq!(answers[1].1.status, 200, "{}", answers[1].1.text);
}

/// Every place a customer or case id enters a request, sent a phone number instead:
/// refused with `invalid_id`, and neither the ledger, the store, nor the log holds it.
#[tokio::test]
async fn a_value_sent_as_an_id_never_reaches_the_record() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let n = NUMBER_AS_ID;
    let answers = vec![
        c.view(&w.agent, n, &w.case).await,
        c.view(&w.agent, &w.customer, n).await,
        c.reveal(&w.agent, n, &w.case, &["phone"]).await,
        c.reveal(&w.agent, &w.customer, n, &["phone"]).await,
        c.post(
            &w.crm,
            "/v1/cases",
            json!({"customer": n, "assignee": "alice", "channel": "phone", "reason": "x"}),
        )
        .await,
        c.post_empty(&w.agent, &format!("/v1/cases/{n}/close"))
            .await,
        c.get(&server.admin, &format!("/v1/access?customer={n}"))
            .await,
        c.get(&w.agent, &format!("/v1/customers/cus_{n}")).await,
        c.get(&w.crm, &format!("/v1/customers/{n}/accesses")).await,
        c.post_empty(&w.crm, &format!("/v1/customers/{n}/link"))
            .await,
    ];
    for a in &answers {
        assert_eq!((a.status, a.code()), (400, "invalid_id"), "{}", a.text);
        assert!(!a.text.contains(n), "{}", a.text);
    }
    // The refusals are recorded, as malformed, without the value.
    let entries = c
        .get(&server.admin, "/v1/ledger/entries?from=0&limit=1000")
        .await;
    assert_eq!(entries.status, 200, "{}", entries.text);
    let malformed = entries.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["fields"].as_array().is_some_and(|f| {
                f.iter()
                    .any(|f| f.as_str().unwrap_or("").starts_with("malformed:"))
            })
        })
        .count();
    assert_eq!(malformed, answers.len(), "{}", entries.text);
    assert!(!entries.text.contains(n));
    let log = std::fs::read(server.log_path()).unwrap_or_default();
    assert!(
        !contains(&log, n.as_bytes()),
        "the server log holds the value"
    );
    for file in server.stored_files() {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !contains(&bytes, n.as_bytes()),
            "{} holds the value",
            file.display()
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn control_characters_are_refused_in_every_text_field() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let bad = [
        "Zhang\u{0}Wei",
        "Zhang\nWei",
        "Zhang\u{1b}[2JWei",
        "Zhang\u{202e}ieW",
        "Zh\u{200b}ang",
    ];
    for text in bad {
        let customer = json!({"name": text, "phone": "13900139000"});
        let with_attribute = json!({"name": "Li Na", "attributes": {"note": text}});
        let with_attribute_name = json!({"name": "Li Na", "attributes": {text: "x"}});
        let answers = [
            c.post(&w.crm, "/v1/customers", customer).await,
            c.post(&w.crm, "/v1/customers", with_attribute).await,
            c.post(&w.crm, "/v1/customers", with_attribute_name).await,
            c.post(
                &w.crm,
                "/v1/cases",
                json!({"customer": w.customer, "assignee": "alice", "channel": "phone", "reason": text}),
            )
            .await,
            c.post(
                &w.agent,
                &format!("/v1/customers/{}/reveal", w.customer),
                json!({"fields": ["phone"], "case": w.case, "reason": text}),
            )
            .await,
            c.post(
                &server.admin,
                "/v1/staff",
                json!({"id": "carol", "name": text, "role": "support", "org": "custos"}),
            )
            .await,
        ];
        for a in &answers {
            assert_eq!(
                (a.status, a.code()),
                (400, "control_character"),
                "{text:?}: {}",
                a.text
            );
        }
    }
    // Nothing was created: alice still has her one case, carol does not exist.
    let me = c.get(&w.agent, "/v1/me").await;
    assert_eq!(me.body["open_cases"].as_array().unwrap().len(), 1);
    let r = c.post_empty(&server.admin, "/v1/staff/carol/tokens").await;
    assert_eq!(r.status, 404, "{}", r.text);
}

#[tokio::test]
async fn me_tells_a_suspended_person_only_that() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let r = c.post_empty(&w.analyst, "/v1/staff/alice/suspend").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let me = c.get(&w.agent, "/v1/me").await;
    assert_eq!(me.status, 403, "{}", me.text);
    assert!(me.text.contains("suspended"), "{}", me.text);
    for secret in [&w.case, &w.customer] {
        assert!(!me.text.contains(secret.as_str()), "{}", me.text);
    }
    c.post_empty(&w.analyst, "/v1/staff/alice/resume").await;
    let me = c.get(&w.agent, "/v1/me").await;
    assert_eq!(me.status, 200);
    assert!(me.text.contains(&w.case));
}

const T0: i64 = 1_900_000_000_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

async fn at(c: &Client, token: &str, req: reqwest::RequestBuilder, time: impl ToString) -> Answer {
    c.send(
        req.bearer_auth(token)
            .header("x-custos-simulated-time", time.to_string()),
    )
    .await
}

#[tokio::test]
async fn a_simulated_clock_never_rewinds_a_ceiling() {
    let server = Server::start_with(
        Backend::Sqlite,
        Options {
            config_toml: Some("[quota.support]\nreveals_per_hour = 10\n".into()),
            args: vec!["--simulated-clock".into()],
            ..Options::default()
        },
    )
    .await;
    let w = world(&server).await;
    let c = server.client();
    let reveal = |time: i64| {
        let req = c
            .http
            .post(format!("{}/v1/customers/{}/reveal", c.base, w.customer))
            .json(&json!({"fields": ["phone"], "case": w.case, "reason": "call-back"}));
        at(&c, &w.agent, req, time)
    };
    for i in 0..10 {
        assert_eq!(reveal(T0 + i).await.status, 200);
    }
    assert_eq!(reveal(T0 + 10).await.status, 429);
    assert_eq!(reveal(T0 + 2 * DAY).await.status, 200);
    // Back to the used-up hour: refused, and nothing is charged or revealed.
    for back in [T0, T0 + 20, T0 + 2 * DAY - HOUR - 1] {
        let r = reveal(back).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "simulated_time_rewind"),
            "{}",
            r.text
        );
    }
    // A little out of order is a driver's concurrency: allowed, but judged in the
    // latest window, which has 9 reveals left.
    let mut allowed = 0;
    for i in 0..12 {
        if reveal(T0 + 2 * DAY - 60_000 + i).await.status == 200 {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 9);

    // The header itself: whole unix milliseconds within year 9999, one spelling.
    let view = || {
        c.http
            .get(format!("{}/v1/customers/{}", c.base, w.customer))
            .header("x-custos-case", &w.case)
    };
    for bad in [
        i64::MAX.to_string(),
        "253402300800000".to_owned(),
        "-1".to_owned(),
        "0".to_owned(),
        "+1900000000000".to_owned(),
        "1.9e12".to_owned(),
        "01900000000000".to_owned(),
    ] {
        let r = at(&c, &w.agent, view(), bad.clone()).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "invalid_simulated_time"),
            "{bad:?}: {}",
            r.text
        );
    }
    // A customer link issued at the last accepted millisecond expires after it.
    let last = "253402300799999";
    let link = c
        .http
        .post(format!("{}/v1/customers/{}/link", c.base, w.customer));
    let r = at(&c, &w.crm, link, last).await;
    if r.status == 201 {
        let expires = r.body["expires_at"].as_i64().unwrap();
        assert!(expires > 253_402_300_799_999, "{}", r.text);
    } else {
        assert_eq!(r.status, 400, "{}", r.text);
    }
}

#[tokio::test]
async fn a_cosignature_post_changes_nothing_unless_it_brings_a_new_witness_signature() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    checkpoint_covering(&c, 1, CHECKPOINT_WAIT).await;
    let checkpoint_file = server.data_dir().join("ledger").join("checkpoint");
    let post = |body: String| {
        c.send(
            c.http
                .post(format!("{}/v1/ledger/cosignature", c.base))
                .header("content-type", "text/plain")
                .body(body),
        )
    };
    let forged_line = "— witness.example/w AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n";
    // The checkpoint moves on while entries arrive (once a second): repeat until a
    // round of posts met one checkpoint throughout.
    for round in 0.. {
        assert!(round < 20, "the checkpoint never held still");
        let note = c.get("", "/ledger/checkpoint").await.text;
        let before = std::fs::read(&checkpoint_file).unwrap();
        let modified = std::fs::metadata(&checkpoint_file)
            .unwrap()
            .modified()
            .unwrap();
        let mut codes = Vec::new();
        for body in [
            note.clone(),
            note.clone(),
            format!("{note}{forged_line}"),
            "not a note".to_owned(),
        ] {
            let r = post(body).await;
            assert_eq!(r.status, 400, "{}", r.text);
            codes.push(r.code().to_owned());
        }
        if c.get("", "/ledger/checkpoint").await.text != note {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            continue;
        }
        assert_eq!(
            codes[..2],
            ["no_new_cosignature", "no_new_cosignature"],
            "{codes:?}"
        );
        assert_eq!(codes[3], "bad_note", "{codes:?}");
        assert_eq!(std::fs::read(&checkpoint_file).unwrap(), before);
        assert_eq!(
            std::fs::metadata(&checkpoint_file)
                .unwrap()
                .modified()
                .unwrap(),
            modified
        );
        break;
    }
    let _ = w;
}

/// A missing required field is named (it comes from the schema); an unknown or mistyped
/// one is not echoed (it comes from the request, and may be personal data).
#[tokio::test]
async fn a_missing_field_is_named_and_nothing_sent_is_echoed() {
    let server = Server::start(Backend::Sqlite).await;
    let w = world(&server).await;
    let c = server.client();
    let r = c
        .post(
            &w.agent,
            &format!("/v1/customers/{}/reveal", w.customer),
            json!({"fields": ["phone"], "case": w.case}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"), "{}", r.text);
    assert!(r.text.contains("`reason`"), "{}", r.text);
    let r = c
        .post(
            &w.crm,
            "/v1/customers",
            json!({"name": "Li Na", "13900139000": "x"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "unknown_field"), "{}", r.text);
    assert!(!r.text.contains("13900139000"), "{}", r.text);
    let r = c
        .post(&w.crm, "/v1/customers", json!({"name": ["13900139000"]}))
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"), "{}", r.text);
    assert!(!r.text.contains("13900139000"), "{}", r.text);
}
