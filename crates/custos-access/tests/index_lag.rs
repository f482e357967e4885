//! The access index and the ledger advance together: the group-commit writer waits for an
//! index more than `MAX_INDEX_LAG` entries behind, and an index that has stopped does not
//! stop the record (`sequencer` module docs). The index is stopped for real: another
//! connection holds the SQLite store's write lock.

use std::path::Path;
use std::time::{Duration, Instant};

use custos_access::{AccessLog, AccessRecord, MAX_INDEX_LAG};
use custos_ledger::{Ledger, LedgerKey};
use custos_store::Store;
use custos_types::{Action, Decision, Role};

const ORIGIN: &str = "custos.test/index-lag";

/// How long the writer waits for an index that does not move (`INDEX_WAIT`).
const INDEX_WAIT: Duration = Duration::from_secs(1);

fn record(n: u64) -> AccessRecord {
    AccessRecord {
        seq: 0,
        request_id: format!("req_{n:024x}"),
        at: 1_780_000_000_000 + n as i64,
        staff_id: format!("support-{:03}", n % 97),
        org: "custos".to_owned(),
        role: Role::Support.into(),
        action: Action::View,
        customer_id: Some(format!("cus_{n:016x}")),
        fields: Vec::new(),
        case_id: Some(format!("case_{n:016x}")),
        target: None,
        decision: Decision::Allow,
        reason_code: "ok".to_owned(),
        client: None,
    }
}

/// Appends `count` records from 256 concurrent writers; every one must be acknowledged.
async fn append(log: &AccessLog, from: u64, count: u64) {
    let writers = 256;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut n = from + w;
                while n < from + count {
                    log.record(record(n)).await.expect("the record is durable");
                    n += writers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer task");
    }
}

/// Holds the store's write lock until dropped, so that the index cannot write.
fn stop_index(db: &Path) -> rusqlite::Connection {
    let blocker = rusqlite::Connection::open(db).expect("open the store");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    blocker
}

async fn wait_until_indexed(log: &AccessLog) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while log.indexed() < log.size() {
        assert!(Instant::now() < deadline, "the index did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_waits_for_a_lagging_index_but_a_stopped_one_does_not_stop_the_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (key, _) = LedgerKey::load_or_create(&dir.path().join("ledger.key"), ORIGIN).expect("key");
    let ledger = Ledger::open(&dir.path().join("ledger"), ORIGIN, key).expect("ledger");
    let db = dir.path().join("custos.db");
    let store = Store::open_sqlite(&db).await.expect("store");
    let log = AccessLog::start(ledger, store).await.expect("access log");

    // Up to the bound the index is not waited for: it may lag while it is stopped. (The
    // writer looks before each batch, and every batch starts at most this far ahead.)
    let blocker = stop_index(&db);
    append(&log, 0, MAX_INDEX_LAG + 1).await;
    assert_eq!(log.size(), MAX_INDEX_LAG + 1);
    assert_eq!(log.indexed(), 0, "the index is stopped");

    // Past the bound: the next batch waits for the index, as long as the writer gives an
    // index that does not move.
    let started = Instant::now();
    log.record(record(1 << 40))
        .await
        .expect("durable after the wait");
    assert!(
        started.elapsed() >= INDEX_WAIT,
        "a record past the bound was durable after {:?}, without waiting for the index",
        started.elapsed()
    );

    // The index has not moved since: the record goes on without waiting (ten waits
    // would take ten seconds).
    let started = Instant::now();
    for n in 0..10 {
        log.record(record((1 << 41) + n)).await.expect("durable");
    }
    assert!(
        started.elapsed() < 5 * INDEX_WAIT,
        "a stopped index held the record for {:?}",
        started.elapsed()
    );
    assert_eq!(log.indexed(), 0, "the index is still stopped");

    // Once the store writes again the index catches up with every entry.
    drop(blocker);
    wait_until_indexed(&log).await;
    let size = log.size();

    // And the writer waits for it again the next time it falls behind.
    let blocker = stop_index(&db);
    append(&log, 1 << 42, MAX_INDEX_LAG + 1).await;
    let started = Instant::now();
    log.record(record(1 << 43))
        .await
        .expect("durable after the wait");
    assert!(
        started.elapsed() >= INDEX_WAIT,
        "after the index moved, the writer did not wait for it again ({:?})",
        started.elapsed()
    );
    drop(blocker);
    wait_until_indexed(&log).await;
    assert!(log.indexed() > size + MAX_INDEX_LAG);
    log.close().await;
}
