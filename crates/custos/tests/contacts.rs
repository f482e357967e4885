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

/// The issuer and audience of the customer app's assertions in these tests.
const APP_ISSUER: &str = "https://login.example.com";
const APP_AUDIENCE: &str = "custos-contacts";

/// An app contact with the customer app's signed assertion opens a verified case for the
/// customer whose account id the assertion names; fields reveal on it; the ledger holds
/// neither the account id nor the assertion; the same assertion cannot vouch twice.
#[tokio::test]
async fn an_app_assertion_opens_a_verified_case_for_the_account_it_names() {
    let issuer = TokenIssuer::start(APP_ISSUER, APP_AUDIENCE);
    for backend in Backend::all() {
        let options = Options {
            config_toml: Some(app_assertion_config(&issuer)),
            ..Options::default()
        };
        let server = Server::start_with(backend, options).await;
        let w = world(&server).await;
        let c = server.client();
        let carol = server.staff("carol", "support", "custos").await;
        // Written another way than on file: matched after normalisation.
        let assertion = issuer.mint(&issuer.claims(&ACCOUNT.to_lowercase(), json!({})));
        let contact = c.post_app_contact(&w.switch, &assertion, "carol").await;
        assert_eq!(contact.status, 201, "{}", contact.body);
        assert_eq!(contact.body["matches"], 1);
        assert_eq!(contact.body["customer"], w.customer.as_str());
        assert_eq!(contact.body["provenance"], "verified");
        let case = contact.body["case"].as_str().unwrap().to_owned();
        let r = record_of(&server, &contact).await;
        assert_eq!(
            (&r["action"], &r["decision"]),
            (&json!("post_contact"), &json!("allow"))
        );
        assert_eq!(r["customer_id"], w.customer.as_str());
        assert_eq!(r["case_id"], case.as_str());
        assert_eq!(
            r["fields"],
            json!(["channel:app", "contact:inbound", "provenance:verified"])
        );
        let revealed = c.reveal(&carol, &w.customer, &case, &["account_id"]).await;
        assert_eq!(revealed.status, 200, "{}", revealed.body);
        assert_eq!(revealed.body["fields"]["account_id"], ACCOUNT);

        // Used once: the same assertion again, even for another agent, is refused.
        for agent in ["carol", "alice"] {
            let again = c.post_app_contact(&w.switch, &assertion, agent).await;
            assert_eq!(again.status, 400, "{}", again.body);
            assert_eq!(again.code(), "app_assertion_replayed");
        }
        // A fresh assertion of another account no customer has: kept, matching none.
        let stranger = issuer.mint(&issuer.claims("ACC-0099999999", json!({})));
        let kept = c.post_app_contact(&w.switch, &stranger, "carol").await;
        assert_eq!(kept.status, 201, "{}", kept.body);
        assert_eq!(
            (&kept.body["matches"], &kept.body["case"]),
            (&json!(0), &Value::Null)
        );

        // Neither the account id nor the assertion reaches the record, the log or a file.
        let all = serde_json::to_string(&access_records(&server, "").await).unwrap();
        let log = std::fs::read_to_string(server.log_path()).unwrap();
        for plain in [ACCOUNT, "ACC-0099999999", &assertion] {
            assert!(!all.contains(plain), "access records contain {plain:.20}");
            assert!(!log.contains(plain), "the log contains {plain:.20}");
        }
        for file in server.stored_files() {
            let bytes = std::fs::read(&file).unwrap_or_default();
            assert!(
                !bytes
                    .windows(ACCOUNT.len())
                    .any(|w| w == ACCOUNT.as_bytes()),
                "{} holds the account id",
                file.display()
            );
        }
    }
}

/// Assertions that do not pass are refused with the verifier's code, recorded as such,
/// and neither open nor vouch for a case.
#[tokio::test]
async fn app_assertions_that_do_not_pass_are_refused_and_record_no_contact() {
    let issuer = TokenIssuer::start(APP_ISSUER, APP_AUDIENCE);
    let impostor = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    for backend in Backend::all() {
        let options = Options {
            config_toml: Some(app_assertion_config(&issuer)),
            ..Options::default()
        };
        let server = Server::start_with(backend, options).await;
        let w = world(&server).await;
        let c = server.client();
        let carol = server.staff("carol", "support", "custos").await;
        let now = unix_now();
        let claims = |changes: Value| issuer.claims(ACCOUNT, changes);
        let header = json!({"alg": "EdDSA", "kid": issuer.kid});
        let unsigned = |alg: &str| {
            let header = json!({"alg": alg, "kid": issuer.kid});
            format!(
                "{}.{}.",
                b64url(header.to_string().as_bytes()),
                b64url(claims(json!({})).to_string().as_bytes())
            )
        };
        // HS256 keyed with the provider's public key, which anyone can fetch.
        let hmac_with_public_key = {
            use hmac::{KeyInit, Mac};
            let header = json!({"alg": "HS256", "kid": issuer.kid});
            let input = format!(
                "{}.{}",
                b64url(header.to_string().as_bytes()),
                b64url(claims(json!({})).to_string().as_bytes())
            );
            let mut mac =
                hmac::Hmac::<sha2::Sha256>::new_from_slice(issuer.key.verifying_key().as_bytes())
                    .unwrap();
            mac.update(input.as_bytes());
            format!("{input}.{}", b64url(&mac.finalize().into_bytes()))
        };
        let refused = [
            (
                issuer.mint(&claims(json!({"iat": now - 900, "exp": now - 600}))),
                "token_expired",
            ),
            (
                issuer.mint(&claims(json!({"iat": now - 900}))),
                "token_too_old",
            ),
            (
                issuer.mint(&claims(json!({"aud": "another-service"}))),
                "token_wrong_audience",
            ),
            (
                issuer.mint(&claims(json!({"iss": "https://login.example.org"}))),
                "token_wrong_issuer",
            ),
            (
                sign_jwt(&impostor, &header, &claims(json!({}))),
                "token_bad_signature",
            ),
            (unsigned("none"), "token_algorithm_refused"),
            (hmac_with_public_key, "token_algorithm_refused"),
            (
                sign_jwt(
                    &issuer.key,
                    &json!({"alg": "EdDSA", "kid": "retired"}),
                    &claims(json!({})),
                ),
                "token_unknown_key",
            ),
            (
                issuer.mint(&claims(json!({"sub": null}))),
                "token_missing_claim",
            ),
            (
                issuer.mint(&claims(json!({"sub": "ACC 12"}))),
                "invalid_account_id",
            ),
            ("not.a.jwt!".to_owned(), "token_malformed"),
        ];
        let cases_before = c.get(&carol, "/v1/me").await.body["open_cases"].clone();
        for (assertion, code) in &refused {
            let r = c.post_app_contact(&w.switch, assertion, "carol").await;
            assert_eq!(r.status, 400, "{code}: {}", r.body);
            assert_eq!(r.code(), *code, "{}", r.body);
            assert!(!r.text.contains(ACCOUNT), "{}", r.text);
            let record = record_of(&server, &r).await;
            assert_eq!(record["decision"], "error", "{record}");
            assert_eq!(record["reason_code"], *code, "{record}");
            assert_eq!(record["customer_id"], Value::Null, "{record}");
            assert_eq!(record["case_id"], Value::Null, "{record}");
        }
        // An assertion belongs to an app contact, alone.
        let good = issuer.mint(&claims(json!({})));
        for caller in [
            json!({"channel": "phone", "caller": {"app_assertion": good}, "agent": "carol"}),
            json!({"channel": "chat", "caller": {"app_assertion": good}, "agent": "carol"}),
            json!({"channel": "app", "caller": {"app_assertion": good, "phone": PHONE}, "agent": "carol"}),
        ] {
            let r = c.post(&w.switch, "/v1/contacts", caller.clone()).await;
            assert_eq!(r.status, 400, "{caller}: {}", r.body);
            assert_eq!(r.code(), "invalid_caller");
        }
        let cases_after = c.get(&carol, "/v1/me").await.body["open_cases"].clone();
        assert_eq!(cases_before, cases_after);
        assert_eq!(cases_after, json!([]));
        // None of those used the good assertion up: it still vouches, once.
        let r = c.post_app_contact(&w.switch, &good, "carol").await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.body["provenance"], "verified");
    }
}

/// A server without `[contacts.app_assertion]` refuses assertions; one whose identity
/// provider cannot be reached starts all the same and refuses them until it can be.
#[tokio::test]
async fn app_assertions_need_their_configuration_and_their_key_set() {
    let issuer = TokenIssuer::start(APP_ISSUER, APP_AUDIENCE);
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let unreachable = format!(
        "[contacts.app_assertion]\njwks_url = \"http://{}/jwks.json\"\nissuer = \"{APP_ISSUER}\"\naudience = \"{APP_AUDIENCE}\"\n",
        gone.local_addr().unwrap()
    );
    drop(gone);
    for backend in Backend::all() {
        for (config, status, code) in [
            (None, 409, "app_assertion_not_configured"),
            (Some(unreachable.clone()), 503, "jwks_unavailable"),
        ] {
            let options = Options {
                config_toml: config,
                ..Options::default()
            };
            let server = Server::start_with(backend, options).await;
            let w = world(&server).await;
            let c = server.client();
            let assertion = issuer.mint(&issuer.claims(ACCOUNT, json!({})));
            let r = c.post_app_contact(&w.switch, &assertion, "alice").await;
            assert_eq!(r.status, status, "{}", r.body);
            assert_eq!(r.code(), code);
            let record = record_of(&server, &r).await;
            assert_eq!(record["reason_code"], code, "{record}");
        }
    }
    // The request body's description names the new caller.
    let server = Server::start(Backend::Sqlite).await;
    let c = server.client();
    let openapi = c
        .send(c.http.get(format!("{}/openapi.json", c.base)))
        .await
        .body;
    let caller = &openapi["components"]["schemas"]["CallerIdentifier"]["properties"];
    assert!(caller["app_assertion"].is_object(), "{caller}");
    assert_eq!(
        openapi["components"]["schemas"]["AppAssertion"]["maxLength"],
        8192
    );
}
