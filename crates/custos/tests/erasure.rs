//! Erasure at a customer's request (crypto-shredding), on both stores: only the privacy
//! officer erases; afterwards every path to the customer answers 410 `erased` or finds
//! nothing; the stored row keeps no key, no sealed field and no blind index; the ledger
//! still verifies and an evidence bundle citing the customer still checks offline; a
//! canary is not erased.

mod common;

use common::*;
use custos_ledger::{DirSource, build_bundle};

#[tokio::test]
async fn an_erased_customer_is_gone_everywhere_and_the_record_still_holds() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let w = world(&server).await;
        let c = server.client();
        let dpo = server.staff("dpo", "privacy_officer", "custos").await;

        // Before: the agent serves the customer; the reveal is cited as evidence later.
        let r = c.reveal(&w.agent, &w.customer, &w.case, &["phone"]).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let cited = ledger_index(&r);
        let search = format!("/v1/customers?phone={PHONE}");
        assert_eq!(c.get(&w.agent, &search).await.status, 200);

        // Nobody else erases: not an admin, not the agent, not an analyst.
        for token in [&server.admin, &w.agent, &w.analyst] {
            let r = c
                .delete(token, &format!("/v1/customers/{}", w.customer))
                .await;
            assert_eq!(r.status, 403, "{}", r.text);
        }
        let r = c.delete(&dpo, "/v1/customers/cus_0123456789abcdef").await;
        assert_eq!(r.status, 404, "{}", r.text);

        let r = c
            .delete(&dpo, &format!("/v1/customers/{}", w.customer))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["erased"], true);
        let erasure = ledger_index(&r);

        // Every path to the customer: gone.
        let gone = |a: &Answer| {
            assert_eq!(a.status, 410, "{}", a.text);
            assert_eq!(a.body["error"]["code"], "erased");
        };
        gone(&c.view(&w.agent, &w.customer, &w.case).await);
        gone(&c.reveal(&w.agent, &w.customer, &w.case, &["name"]).await);
        gone(&c.view(&w.partner_agent, &w.customer, &w.partner_case).await);
        gone(
            &c.delete(&dpo, &format!("/v1/customers/{}", w.customer))
                .await,
        );
        let r = c.get(&w.agent, &search).await;
        assert!(
            r.status == 200 && r.body["results"].as_array().is_some_and(|a| a.is_empty()),
            "the blind index no longer finds them: {} {}",
            r.status,
            r.text
        );
        // The contact centre's next call from that number matches no one.
        let r = c.post_contact(&w.switch, PHONE, "alice").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_ne!(r.body["customer"], w.customer.as_str(), "{}", r.body);

        // The ledger names the erasure by id, and still verifies; the evidence citing the
        // customer (made before the erasure) still checks offline.
        let records = access_records(&server, &format!("customer={}", w.customer)).await;
        assert!(
            records
                .iter()
                .any(|r| r["action"] == "erase_customer" && r["staff_id"] == "dpo"),
            "{records:?}"
        );
        checkpoint_covering(&c, erasure + 1, CHECKPOINT_WAIT).await;
        let key = verifier_key(&server);
        let state = server.dir.path().join("verify-state");
        let out = verify_ledger(&server.base, &key, &server.admin, &state);
        assert!(out.contains("verified"), "{out}");
        let bundle = build_bundle(
            &DirSource::new(server.data_dir().join("ledger")),
            &key,
            vec![(
                "alice".into(),
                "revealed the customer's phone".into(),
                vec![cited],
            )],
        )
        .unwrap();
        let path = server.dir.path().join("evidence.json");
        std::fs::write(&path, serde_json::to_vec(&bundle).unwrap()).unwrap();
        let o = custos(&[
            "ledger",
            "check-evidence",
            path.to_str().unwrap(),
            "--key",
            &key,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));

        // The row holds nothing of the customer: no key, no sealed value, no index.
        if backend == Backend::Sqlite {
            let db = sqlx::SqlitePool::connect(&format!(
                "sqlite://{}?mode=ro",
                server.sqlite_path().display()
            ))
            .await
            .unwrap();
            let (key_len, name_len, phone, idx): (i64, i64, Option<Vec<u8>>, Option<String>) =
                sqlx::query_as("SELECT length(wrapped_key), length(name), phone, phone_idx FROM customers WHERE id = ?1")
                    .bind(&w.customer)
                    .fetch_one(&db)
                    .await
                    .unwrap();
            assert_eq!((key_len, name_len, phone, idx), (0, 0, None, None));
        }
    }
}

#[tokio::test]
async fn a_canary_is_not_erased() {
    let server = Server::start(Backend::Sqlite).await;
    let dpo = server.staff("dpo", "privacy_officer", "custos").await;
    let canary = plant_canaries(&server, 1).remove(0);
    let c = server.client();
    let r = c.delete(&dpo, &format!("/v1/customers/{canary}")).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["error"]["code"], "canary_not_erasable");
}
