//! Bulk import: batches under an idempotency key are stored once whatever the resends
//! (both stores), and `custos import FILE` streams a file in batches, stops at a bad line
//! naming the file's line, and resumes without storing anything twice.

mod common;

use std::collections::HashSet;
use std::path::Path;

use common::{Backend, Server, custos, stderr, stdout};
use serde_json::Value;

/// Customers stored, counted in the store itself.
async fn customer_count(server: &Server) -> i64 {
    use sqlx::Connection;
    let count = "SELECT COUNT(*) FROM customers";
    match &server.database_url {
        None => {
            let url = format!("sqlite://{}?mode=ro", server.sqlite_path().display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(count)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
        Some(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query_scalar(count)
                .fetch_one(&mut conn)
                .await
                .unwrap()
        }
    }
}

/// `count` customers as NDJSON, numbered from `from` so that each batch is its own.
fn people(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| {
            format!(
                "{{\"name\":\"Person {i}\",\"phone\":\"+1 202 555 {:04}\",\"email\":\"p{i}@example.com\"}}\n",
                i % 10_000
            )
        })
        .collect()
}

async fn import(
    server: &Server,
    token: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> custos_client::Answer {
    let c = server.client();
    let mut request = c
        .http
        .post(format!("{}/v1/customers/import", server.base))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    c.send(request).await
}

fn ids(answer: &custos_client::Answer) -> Vec<String> {
    answer.body["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn a_keyed_batch_is_stored_once_whatever_the_resends() {
    for backend in Backend::all() {
        let server = Server::start(backend).await;
        let admin = server.admin.clone();
        let batch = people(0, 30);
        let key = [("idempotency-key", "batch-0001")];

        let first = import(&server, &admin, &batch, &key).await;
        assert_eq!(first.status, 200, "{backend:?}: {}", first.body);
        assert_eq!(first.body["replayed"], false);
        assert_eq!(ids(&first).len(), 30);
        assert_eq!(customer_count(&server).await, 30);

        // A resend after a lost answer: the same ids, nothing new stored.
        let again = import(&server, &admin, &batch, &key).await;
        assert_eq!(again.status, 200, "{}", again.body);
        assert_eq!(again.body["replayed"], true);
        assert_eq!(ids(&again), ids(&first));
        assert_eq!(customer_count(&server).await, 30);

        // The key of one batch on another body is a client's mistake, not a resend.
        let other = import(&server, &admin, &people(100, 30), &key).await;
        assert_eq!(other.status, 409, "{}", other.body);
        assert_eq!(other.code(), "idempotency_key_reused");
        assert_eq!(customer_count(&server).await, 30);

        // Concurrent sends of one new batch: one stores it, all answer its ids.
        let racing = people(200, 40);
        let key = [("idempotency-key", "batch-0002")];
        let answers =
            futures::future::join_all((0..4).map(|_| import(&server, &admin, &racing, &key))).await;
        let stored: HashSet<Vec<String>> = answers
            .iter()
            .map(|a| {
                assert_eq!(a.status, 200, "{}", a.body);
                ids(a)
            })
            .collect();
        assert_eq!(stored.len(), 1, "every send answers the same ids");
        assert_eq!(
            answers
                .iter()
                .filter(|a| a.body["replayed"] == false)
                .count(),
            1
        );
        assert_eq!(customer_count(&server).await, 70);

        // Keys are each staff member's own: another admin's batch under the same key is
        // another batch.
        let second_admin = server.staff("admin2", "admin", "custos").await;
        let theirs = import(&server, &second_admin, &people(300, 5), &key).await;
        assert_eq!(theirs.status, 200, "{}", theirs.body);
        assert_eq!(theirs.body["replayed"], false);
        assert_eq!(customer_count(&server).await, 75);

        // Malformed headers change nothing.
        for bad in [
            ("idempotency-key", "has space"),
            ("idempotency-key", &"k".repeat(129)),
            ("x-custos-first-line", "0"),
            ("x-custos-first-line", "twelve"),
        ] {
            let r = import(&server, &admin, &people(400, 3), &[bad]).await;
            assert_eq!(r.status, 400, "{bad:?}: {}", r.body);
            assert_eq!(r.code(), "invalid_header", "{bad:?}");
        }
        assert_eq!(customer_count(&server).await, 75);

        // A bad line is named by its number in the client's file.
        let mut with_bad = people(500, 2);
        with_bad.push_str("{\"name\": \"\"}\n");
        let r = import(
            &server,
            &admin,
            &with_bad,
            &[("x-custos-first-line", "20001")],
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.message().contains("line 20003"), "{}", r.message());
        assert_eq!(customer_count(&server).await, 75);
    }
}

fn run_import(server: &Server, file: &Path, extra: &[&str]) -> std::process::Output {
    let token_file = server.data_dir().join("admin.token");
    let mut args = vec![
        "import",
        file.to_str().unwrap(),
        "--url",
        &server.base,
        "--token-file",
        token_file.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    custos(&args)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_cli_streams_a_file_in_batches_and_resumes_without_doubles() {
    let server = Server::start(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("customers.ndjson");
    let ids_file = work.path().join("ids.txt");
    // Blank lines count as lines of the file but are no customers.
    let mut text = people(0, 25);
    text.push_str("\n   \n");
    text.push_str(&people(25, 25));
    std::fs::write(&file, &text).unwrap();

    let o = run_import(
        &server,
        &file,
        &["--batch", "7", "--ids", ids_file.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("imported 50 customers"),
        "{}",
        stdout(&o)
    );
    let first_ids = lines(&ids_file);
    assert_eq!(first_ids.len(), 50);
    assert_eq!(first_ids.iter().collect::<HashSet<_>>().len(), 50);
    assert_eq!(customer_count(&server).await, 50);
    let state_path = work.path().join("customers.ndjson.import-state");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(state["imported"], 50);
    assert_eq!(state["offset"], text.len());

    // Run again: the state says it is done.
    let o = run_import(&server, &file, &["--ids", ids_file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    assert_eq!(customer_count(&server).await, 50);

    // As if every answer had been lost after the server stored the batches: the state
    // back at the start. Each batch is sent again under its key and answered from its
    // receipt; nothing is stored twice and the ids file lists each id once.
    let mut rewound = state.clone();
    rewound["offset"] = 0.into();
    rewound["line"] = 1.into();
    rewound["imported"] = 0.into();
    rewound["ids_bytes"] = 0.into();
    rewound["last"] = Value::Null;
    std::fs::write(&state_path, serde_json::to_vec(&rewound).unwrap()).unwrap();
    let o = run_import(&server, &file, &["--ids", ids_file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("8 batches answered from an earlier send"),
        "{}",
        stdout(&o)
    );
    assert_eq!(customer_count(&server).await, 50);
    assert_eq!(lines(&ids_file), first_ids);

    // Another file under the same state is refused, and changes nothing.
    std::fs::write(&file, people(1000, 50)).unwrap();
    let o = run_import(&server, &file, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("error[state_mismatch]"),
        "{}",
        stderr(&o)
    );
    assert_eq!(customer_count(&server).await, 50);
}

#[tokio::test]
async fn the_cli_stops_at_a_bad_line_naming_it_and_resumes_there() {
    let server = Server::start(Backend::Sqlite).await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("base.ndjson");
    let ids_file = work.path().join("ids.txt");
    let mut text = people(0, 24);
    text.push_str("{\"name\":\"Bad Phone\",\"phone\":\"not a number\"}\n");
    text.push_str(&people(25, 15));
    std::fs::write(&file, &text).unwrap();

    let o = run_import(
        &server,
        &file,
        &["--batch", "10", "--ids", ids_file.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("line 25"), "{}", stderr(&o));
    assert!(stdout(&o).contains("stopped at line 21"), "{}", stdout(&o));
    // The two batches before the bad one are stored and listed. The batch after it may
    // have been in flight beside it (two are, by default) and stored too; it is not
    // listed, and a resume gets its ids from its receipt, not a second copy.
    let stored = customer_count(&server).await;
    assert!(stored == 20 || stored == 30, "{stored} stored");
    assert_eq!(lines(&ids_file).len(), 20);

    // The bad line mended (the file's length changes); the same command resumes at
    // line 21, and the mended batch is stored under a key of its own.
    let mended = text.replace(
        "{\"name\":\"Bad Phone\",\"phone\":\"not a number\"}",
        "{\"name\":\"Mended Phone\",\"phone\":\"+1 202 555 0199\"}",
    );
    assert_ne!(mended, text);
    std::fs::write(&file, &mended).unwrap();
    let o = run_import(
        &server,
        &file,
        &["--batch", "10", "--ids", ids_file.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("imported 20 customers"),
        "{}",
        stdout(&o)
    );
    assert_eq!(customer_count(&server).await, 40);
    let all = lines(&ids_file);
    assert_eq!(all.len(), 40);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 40);

    // Lines appended later are imported by the same command, from where it ended.
    let mut grown = mended.clone();
    grown.push_str(&people(100, 3));
    std::fs::write(&file, &grown).unwrap();
    let o = run_import(&server, &file, &["--ids", ids_file.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("imported 3 customers"),
        "{}",
        stdout(&o)
    );
    assert_eq!(customer_count(&server).await, 43);
    assert_eq!(lines(&ids_file).len(), 43);
}
