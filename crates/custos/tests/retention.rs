//! Retention on both stores, with requests in simulated time: access-index rows older
//! than `[retention] access_index_days` go at the next run (at start, then periodically),
//! newer ones stay; the run is a `retention_run` ledger entry; the ledger itself keeps
//! every entry and verifies against a checkpoint saved before the run.

mod common;

use common::*;
use serde_json::json;

const DAY: i64 = 24 * 3_600_000;

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
async fn records_older_than_the_limit_leave_the_index_and_never_the_ledger() {
    for backend in Backend::all() {
        let mut server = Server::start_with(
            backend,
            Options {
                args: vec!["--simulated-clock".into()],
                ..Options::default()
            },
        )
        .await;
        let w = world(&server).await;
        let c = server.client();
        let now = i64::try_from(unix_now()).unwrap() * 1000;
        let (old, recent) = (now - 4 * 365 * DAY, now - 365 * DAY);
        let r = reveal_at(&c, &w, old).await;
        let old_index = ledger_index(&r);
        let r = reveal_at(&c, &w, recent).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let times = |records: Vec<serde_json::Value>| -> Vec<i64> {
            records.iter().map(|r| r["at"].as_i64().unwrap()).collect()
        };
        assert_eq!(
            times(access_records(&server, "staff=alice").await),
            [old, recent]
        );
        checkpoint_covering(&c, ledger_index(&r) + 1, CHECKPOINT_WAIT).await;
        let o = custos(&[
            "ledger",
            "key",
            "--simulated-clock",
            "--data-dir",
            server.data_dir().to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let key = stdout(&o).trim().to_owned();
        let state = server.dir.path().join("auditor.checkpoint");
        verify_ledger(&server.base, &key, &server.admin, &state);

        // The next run (at start) takes what is older than three years, and says so first.
        server.restart();
        let deadline = std::time::Instant::now() + CHECKPOINT_WAIT;
        let run = loop {
            let system = access_records(&server, "staff=system").await;
            if let Some(run) = system.iter().find(|r| r["action"] == "retention_run") {
                break run.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{backend:?}: no retention run"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let facts = run["fields"].to_string();
        assert!(
            facts.contains("\"access_records:1\""),
            "{backend:?}: {facts}"
        );
        assert!(facts.contains("access_index_before:"), "{facts}");
        assert_eq!(
            times(access_records(&server, "staff=alice").await),
            [recent],
            "{backend:?}"
        );

        // The ledger still holds the old entry, and only grew.
        let c = server.client();
        let r = c
            .get(
                &server.admin,
                &format!("/v1/ledger/entries?from={old_index}&limit=1"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["entries"][0]["at"], old, "{backend:?}: {}", r.body);
        checkpoint_covering(&c, run["seq"].as_u64().unwrap() + 1, CHECKPOINT_WAIT).await;
        let out = verify_ledger(&server.base, &key, &server.admin, &state);
        assert!(out.contains("consistent"), "{out}");

        // Outside a run, the access index still refuses a delete through SQL.
        let refused = match &server.database_url {
            Some(url) => {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query("DELETE FROM access_records WHERE seq >= 0")
                    .execute(&mut conn)
                    .await
                    .unwrap_err()
            }
            None => {
                use sqlx::Connection;
                let url = format!("sqlite://{}", server.sqlite_path().display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("DELETE FROM access_records WHERE seq >= 0")
                    .execute(&mut conn)
                    .await
                    .unwrap_err()
            }
        };
        assert!(refused.to_string().contains("append-only"), "{refused}");

        // Nothing more to take: a second start records no run.
        server.restart();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let runs = access_records(&server, "staff=system")
            .await
            .into_iter()
            .filter(|r| r["action"] == "retention_run")
            .count();
        assert_eq!(runs, 1, "{backend:?}");
    }
}

#[test]
fn a_limit_under_three_years_is_refused_unless_allowed() {
    let e = refused_start("[retention]\naccess_index_days = 365\n");
    assert!(e.contains("retention.access_index_days"), "{e}");
}
