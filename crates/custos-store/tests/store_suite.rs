//! One behaviour suite, run against both backends.
//!
//! Every behaviour is an `async fn(Store)`; the `suite!` macro turns each into one
//! SQLite test (a fresh file in a temp dir) and one PostgreSQL test (a fresh database
//! `custos_test_<unique>` created through `TEST_POSTGRES_URL`, dropped afterwards),
//! so the tests run in parallel without sharing state.
//!
//! An unreachable PostgreSQL fails the PostgreSQL tests; set `TEST_SKIP_POSTGRES=1`
//! to skip them deliberately.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use custos_store::{
    AccessFilter, AccessRecord, AllocatableCanary, Backend, CallBinding, CanaryMark, CaseRecord,
    CaseStatus, ContactRecord, CustomerRecord, Exposure, Holdings, ImportReceipt, IndexColumn,
    QuotaCharge, StaffRecord, StaffStatus, Store, StoreError, TokenRecord,
};
use custos_types::clock::now_millis;
use custos_types::{Action, Decision, Provenance, RecordedRole, Role};
use sqlx::Connection;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

// ----- harness -----

/// Runs `test` on a fresh SQLite store. The test runs in its own task so that a failing
/// assertion still lets the store close before the panic is re-raised.
async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open_sqlite(&dir.path().join("custos.db"))
        .await
        .expect("open sqlite");
    assert_eq!(store.backend(), Backend::Sqlite);
    let outcome = tokio::spawn(test(store.clone())).await;
    store.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Runs `test` on a fresh PostgreSQL store, dropping its database afterwards (also when
/// the test fails).
async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(Store) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    with_postgres_database(|url| async move {
        let store = Store::open_postgres(&url, 4).await.expect("open postgres");
        assert_eq!(store.backend(), Backend::Postgres);
        let outcome = tokio::spawn(test(store.clone())).await;
        store.close().await;
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    })
    .await;
}

/// Runs `test` with the URL of a fresh PostgreSQL database, dropped afterwards (also when
/// the test fails); skipped with `TEST_SKIP_POSTGRES=1`.
async fn with_postgres_database<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if std::env::var("TEST_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
        eprintln!("PostgreSQL test skipped: TEST_SKIP_POSTGRES=1");
        return;
    }
    let admin_url =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is unreachable via TEST_POSTGRES_URL (default {DEFAULT_PG_URL}): {e}; \
             set TEST_SKIP_POSTGRES=1 to skip the PostgreSQL tests"
            )
        });
    let name = unique_database_name();
    // The name is generated here from digits only, so formatting it into SQL is safe.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let outcome = tokio::spawn(test(with_database(&admin_url, &name))).await;
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    let _ = admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.expect("drop test database");
}

fn unique_database_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "custos_test_{}_{}_{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its database name replaced by `database` (query parameters kept).
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Declares each behaviour once per backend.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(super::$name).await;
                }
            )*
        }
    };
}

suite!(
    index_rotation_moves_each_customer_once,
    staff_insert_conflict_and_status,
    tokens_lookup_by_hash_and_revoke,
    token_rules_unknown_staff_and_duplicate_hash,
    customers_round_trip_and_count,
    customers_batch_is_all_or_nothing,
    customers_batch_spanning_statements_is_all_or_nothing,
    import_receipts_are_written_with_their_customers,
    customers_by_index_returns_every_match,
    cases_open_close_and_filters,
    case_rules_unknown_customer_and_duplicate_id,
    access_index_keeps_ledger_seq_and_skips_replays,
    access_filters,
    access_batch_of_1000_in_one_call,
    clones_share_the_store,
    trace_reads_indexes_exposures_and_holdings,
    canary_allocation_one_per_peer_group_least_held_first,
    holdings_summaries_equal_a_scan_of_the_records,
    retention_deletes_only_older_records_and_keeps_the_summaries_true,
    contacts_round_trip_and_vouch_only_open_cases,
    call_bindings_unique_per_agent_while_in_force,
    quota_charges_keep_a_customers_latest_view_only,
);

// ----- builders -----

fn staff(id: &str) -> StaffRecord {
    StaffRecord {
        id: id.to_owned(),
        name: format!("Name of {id}"),
        role: Role::Support,
        org: "acme".to_owned(),
        status: StaffStatus::Active,
        created_at: 1_700_000_000_000,
    }
}

fn token(id: &str, staff_id: &str, hash: &str) -> TokenRecord {
    TokenRecord {
        id: id.to_owned(),
        staff_id: staff_id.to_owned(),
        hash: hash.to_owned(),
        created_at: 1_700_000_000_100,
        revoked_at: None,
    }
}

fn customer(id: &str, created_at: i64) -> CustomerRecord {
    CustomerRecord {
        id: id.to_owned(),
        wrapped_key: vec![1, 2, 3, 0, 255],
        name: format!("sealed-name-{id}").into_bytes(),
        phone: Some(vec![0xde, 0xad]),
        email: None,
        account_id: Some(vec![0]),
        attributes: None,
        phone_idx: Some(format!("phone-{id}")),
        email_idx: None,
        account_idx: Some(format!("acct-{id}")),
        created_at,
        index_version: 1,
    }
}

fn case(id: &str, customer_id: &str, assignee: &str, created_at: i64) -> CaseRecord {
    CaseRecord {
        id: id.to_owned(),
        customer_id: customer_id.to_owned(),
        assignee: assignee.to_owned(),
        channel: custos_types::Channel::Phone,
        reason: vec![9, 8, 7],
        status: CaseStatus::Open,
        created_by: "lead".to_owned(),
        created_at,
        closed_at: None,
        provenance: Provenance::Requested,
        campaign: None,
        contact_id: None,
    }
}

fn access(
    n: usize,
    staff_id: &str,
    customer_id: Option<&str>,
    decision: Decision,
    at: i64,
) -> AccessRecord {
    AccessRecord {
        seq: i64::try_from(n).unwrap(), // the entry's ledger index
        request_id: format!("req-{n}"),
        at,
        staff_id: staff_id.to_owned(),
        org: "acme".to_owned(),
        role: RecordedRole::Staff(Role::Support),
        action: Action::Reveal,
        customer_id: customer_id.map(str::to_owned),
        fields: vec!["phone".to_owned(), "email".to_owned()],
        case_id: n.is_multiple_of(2).then(|| format!("case-{n}")),
        target: n.is_multiple_of(5).then(|| format!("tok-{n}")),
        decision,
        reason_code: "ok".to_owned(),
        client: n.is_multiple_of(3).then(|| "crm/1.0".to_owned()),
    }
}

fn all_access() -> AccessFilter {
    AccessFilter::default()
}

/// Records equal except for the store-assigned `seq`.
fn request_ids(records: &[AccessRecord]) -> Vec<&str> {
    records.iter().map(|r| r.request_id.as_str()).collect()
}

fn assert_seq_strictly_increasing(records: &[AccessRecord]) {
    for pair in records.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "seq not increasing: {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
}

// ----- behaviours -----

async fn staff_insert_conflict_and_status(store: Store) {
    assert_eq!(store.staff("alice").await.unwrap(), None);
    store.insert_staff(&staff("bob")).await.unwrap();
    store.insert_staff(&staff("alice")).await.unwrap();
    assert_eq!(store.staff("alice").await.unwrap(), Some(staff("alice")));

    let mut again = staff("alice");
    again.name = "Someone else".to_owned();
    let err = store.insert_staff(&again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(err.code(), "conflict");
    assert_eq!(
        store.staff("alice").await.unwrap(),
        Some(staff("alice")),
        "conflict changed nothing"
    );

    let all = store.all_staff().await.unwrap();
    assert_eq!(all, vec![staff("alice"), staff("bob")], "ordered by id");

    assert!(
        store
            .set_staff_status("alice", StaffStatus::Suspended)
            .await
            .unwrap()
    );
    assert_eq!(
        store.staff("alice").await.unwrap().unwrap().status,
        StaffStatus::Suspended
    );
    assert_eq!(
        store.staff("bob").await.unwrap().unwrap().status,
        StaffStatus::Active
    );
    // Setting the same status again still finds the person.
    assert!(
        store
            .set_staff_status("alice", StaffStatus::Suspended)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_staff_status("alice", StaffStatus::Active)
            .await
            .unwrap()
    );
    assert_eq!(
        store.staff("alice").await.unwrap().unwrap().status,
        StaffStatus::Active
    );
    assert!(
        !store
            .set_staff_status("nobody", StaffStatus::Suspended)
            .await
            .unwrap()
    );
}

async fn tokens_lookup_by_hash_and_revoke(store: Store) {
    store.insert_staff(&staff("alice")).await.unwrap();
    store.insert_staff(&staff("bob")).await.unwrap();
    store
        .insert_token(&token("t1", "alice", "hash-1"))
        .await
        .unwrap();
    store
        .insert_token(&token("t2", "alice", "hash-2"))
        .await
        .unwrap();
    store
        .insert_token(&token("t3", "bob", "hash-3"))
        .await
        .unwrap();

    let (who, tok) = store
        .staff_by_token_hash("hash-2")
        .await
        .unwrap()
        .expect("active token");
    assert_eq!(who, staff("alice"));
    assert_eq!(tok, token("t2", "alice", "hash-2"));
    assert_eq!(
        store.staff_by_token_hash("no-such-hash").await.unwrap(),
        None
    );

    // A suspended person is still found: the caller decides what suspension means.
    store
        .set_staff_status("bob", StaffStatus::Suspended)
        .await
        .unwrap();
    let (who, _) = store.staff_by_token_hash("hash-3").await.unwrap().unwrap();
    assert_eq!(who.status, StaffStatus::Suspended);

    assert!(store.revoke_token("t2", 1_700_000_001_000).await.unwrap());
    assert_eq!(
        store.staff_by_token_hash("hash-2").await.unwrap(),
        None,
        "revoked token hidden"
    );
    assert!(
        store.staff_by_token_hash("hash-1").await.unwrap().is_some(),
        "other tokens unaffected"
    );
    assert!(
        !store.revoke_token("t2", 1_700_000_002_000).await.unwrap(),
        "already revoked"
    );
    assert!(!store.revoke_token("nope", 1).await.unwrap());

    let tokens = store.tokens_of("alice").await.unwrap();
    assert_eq!(tokens.len(), 2);
    let t2 = tokens.iter().find(|t| t.id == "t2").unwrap();
    assert_eq!(
        t2.revoked_at,
        Some(1_700_000_001_000),
        "first revocation time kept"
    );
    assert_eq!(
        tokens.iter().find(|t| t.id == "t1").unwrap().revoked_at,
        None
    );
    assert_eq!(store.tokens_of("nobody").await.unwrap(), vec![]);
}

async fn token_rules_unknown_staff_and_duplicate_hash(store: Store) {
    let err = store
        .insert_token(&token("t1", "ghost", "hash-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    store.insert_staff(&staff("alice")).await.unwrap();
    store
        .insert_token(&token("t1", "alice", "hash-1"))
        .await
        .unwrap();
    let err = store
        .insert_token(&token("t2", "alice", "hash-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict),
        "duplicate hash: {err:?}"
    );
    let err = store
        .insert_token(&token("t1", "alice", "hash-9"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "duplicate id: {err:?}");
    assert_eq!(store.tokens_of("alice").await.unwrap().len(), 1);
}

async fn customers_round_trip_and_count(store: Store) {
    assert_eq!(store.count_customers().await.unwrap(), 0);
    store.insert_customers(&[]).await.unwrap();
    let full = CustomerRecord {
        email: Some(vec![]),
        attributes: Some(b"{\"tier\":\"gold\"}".to_vec()),
        email_idx: Some("e".repeat(64)),
        index_version: 3,
        ..customer("c-full", 5)
    };
    let sparse = CustomerRecord {
        phone: None,
        account_id: None,
        phone_idx: None,
        account_idx: None,
        ..customer("c-sparse", 6)
    };
    store
        .insert_customers(&[full.clone(), sparse.clone()])
        .await
        .unwrap();
    assert_eq!(store.customer("c-full").await.unwrap(), Some(full));
    assert_eq!(store.customer("c-sparse").await.unwrap(), Some(sparse));
    assert_eq!(store.customer("c-none").await.unwrap(), None);
    assert_eq!(store.count_customers().await.unwrap(), 2);
}

async fn index_rotation_moves_each_customer_once(store: Store) {
    use custos_store::{Reindex, RotatedKey};
    let ids = ["c-1", "c-2", "c-3", "c-4"];
    let customers: Vec<CustomerRecord> = ids.iter().map(|id| customer(id, 1)).collect();
    store.insert_customers(&customers).await.unwrap();
    assert!(store.erase_customer("c-4").await.unwrap());
    let key = RotatedKey::BlindIndex;
    assert_eq!(store.latest_key_rotation(key).await.unwrap(), None);
    let rotation = store
        .start_key_rotation(key, "file", 2, 10)
        .await
        .unwrap()
        .unwrap();
    // The rotations of each key are counted apart.
    assert_eq!(
        store.latest_key_rotation(RotatedKey::Kek).await.unwrap(),
        None
    );
    assert_eq!((rotation.id, rotation.total, rotation.done), (1, 3, 0));
    assert_eq!(
        store.start_key_rotation(key, "file", 3, 11).await.unwrap(),
        None,
        "one rotation of a key at a time"
    );
    assert_eq!(store.customers_not_indexed_under(2).await.unwrap(), 3);
    let batch = store.customers_not_indexed_after(None, 2, 2).await.unwrap();
    let read: Vec<&str> = batch.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(read, ["c-1", "c-2"]);
    let moved = |id: &str, old_version| Reindex {
        customer_id: id.to_owned(),
        old_version,
        version: 2,
        phone_idx: Some(format!("phone2-{id}")),
        email_idx: None,
        account_idx: Some(format!("acct2-{id}")),
    };
    // c-2 was read under another version than it is: it stays as it is.
    let done = store
        .store_reindexed(rotation.id, &[moved("c-1", 1), moved("c-2", 7)], "c-2")
        .await
        .unwrap();
    assert_eq!(done, 1);
    let c1 = store.customer("c-1").await.unwrap().unwrap();
    assert_eq!(
        (c1.index_version, c1.phone_idx.as_deref(), c1.email_idx),
        (2, Some("phone2-c-1"), None)
    );
    assert_eq!(store.customer("c-2").await.unwrap().unwrap(), customers[1]);
    // After the cursor: c-3 only (c-4 is erased); an erased customer is never re-indexed.
    let batch = store
        .customers_not_indexed_after(Some("c-2"), 2, 10)
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].id, "c-3");
    let done = store
        .store_reindexed(rotation.id, &[moved("c-3", 1), moved("c-4", 1)], "c-4")
        .await
        .unwrap();
    assert_eq!(done, 1);
    let c4 = store.customer("c-4").await.unwrap().unwrap();
    assert_eq!((c4.phone_idx, c4.index_version), (None, 1));
    let latest = store.latest_key_rotation(key).await.unwrap().unwrap();
    assert_eq!((latest.cursor.as_deref(), latest.done), (Some("c-4"), 2));
    // c-2 is left behind: the walk starts again and finds only it.
    assert_eq!(store.customers_not_indexed_under(2).await.unwrap(), 1);
    store
        .restart_key_rotation_walk(key, rotation.id)
        .await
        .unwrap();
    let batch = store
        .customers_not_indexed_after(None, 2, 10)
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    assert_eq!(
        store
            .store_reindexed(rotation.id, &[moved("c-2", 1)], "c-2")
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.customers_not_indexed_under(2).await.unwrap(), 0);
    store
        .finish_key_rotation(key, rotation.id, 20)
        .await
        .unwrap();
    // A finished rotation moves nothing more.
    assert_eq!(
        store
            .store_reindexed(rotation.id, &[moved("c-1", 2)], "c-9")
            .await
            .unwrap(),
        0
    );
    let latest = store.latest_key_rotation(key).await.unwrap().unwrap();
    assert_eq!((latest.finished_at, latest.done), (Some(20), 3));
    assert_eq!(store.last_key_version(key, "file").await.unwrap(), 2);
    assert_eq!(
        store
            .last_key_version(RotatedKey::Kek, "file")
            .await
            .unwrap(),
        0
    );
}

async fn customers_batch_is_all_or_nothing(store: Store) {
    store
        .insert_customers(&[customer("c1", 1), customer("c2", 2)])
        .await
        .unwrap();

    // A duplicate of an existing id late in the batch: nothing of the batch is stored.
    let err = store
        .insert_customers(&[customer("c3", 3), customer("c4", 4), customer("c1", 5)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(store.customer("c3").await.unwrap(), None);
    assert_eq!(store.customer("c4").await.unwrap(), None);
    assert_eq!(
        store.customer("c1").await.unwrap(),
        Some(customer("c1", 1)),
        "existing row untouched"
    );

    // A duplicate inside the batch itself.
    let err = store
        .insert_customers(&[customer("c5", 5), customer("c5", 6)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(store.customer("c5").await.unwrap(), None);
    assert_eq!(store.count_customers().await.unwrap(), 2);

    // The store is still usable after the rolled-back batches.
    let batch: Vec<CustomerRecord> = (0..300)
        .map(|i| customer(&format!("bulk-{i:03}"), 10 + i))
        .collect();
    store.insert_customers(&batch).await.unwrap();
    assert_eq!(store.count_customers().await.unwrap(), 302);
}

async fn customers_batch_spanning_statements_is_all_or_nothing(store: Store) {
    // Over one statement's worth of rows (500), with the duplicate in the last statement:
    // the statements before it are rolled back too.
    let mut batch: Vec<CustomerRecord> = (0..1_201)
        .map(|i| customer(&format!("many-{i:04}"), i))
        .collect();
    batch.push(customer("many-0003", 9_999));
    let err = store.insert_customers(&batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(store.count_customers().await.unwrap(), 0);

    batch.pop();
    store.insert_customers(&batch).await.unwrap();
    assert_eq!(store.count_customers().await.unwrap(), 1_201);
    // Every row went in whole, the last statement's short chunk too.
    for i in [0, 499, 500, 999, 1_000, 1_200] {
        let id = format!("many-{i:04}");
        assert_eq!(store.customer(&id).await.unwrap(), Some(customer(&id, i)));
    }
}

async fn import_receipts_are_written_with_their_customers(store: Store) {
    let receipt = |staff: &str, key: &str, ids: &[&str]| ImportReceipt {
        staff_id: staff.to_owned(),
        key: key.to_owned(),
        body_hash: "ab".repeat(32),
        ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        created_at: 7,
    };
    assert_eq!(store.import_receipt("admin", "k1").await.unwrap(), None);
    let first = receipt("admin", "k1", &["r1", "r2"]);
    assert!(
        store
            .insert_customers_with_receipt(&[customer("r1", 1), customer("r2", 2)], &first)
            .await
            .unwrap()
    );
    assert_eq!(
        store.import_receipt("admin", "k1").await.unwrap(),
        Some(first)
    );

    // The same key again: nothing of the second batch is stored, the receipt is unchanged.
    let again = receipt("admin", "k1", &["r3"]);
    assert!(
        !store
            .insert_customers_with_receipt(&[customer("r3", 3)], &again)
            .await
            .unwrap()
    );
    assert_eq!(store.customer("r3").await.unwrap(), None);
    assert_eq!(
        store
            .import_receipt("admin", "k1")
            .await
            .unwrap()
            .unwrap()
            .ids,
        vec!["r1", "r2"]
    );

    // Keys are per staff member.
    let other = receipt("admin2", "k1", &["r4"]);
    assert!(
        store
            .insert_customers_with_receipt(&[customer("r4", 4)], &other)
            .await
            .unwrap()
    );

    // A batch that fails leaves no receipt behind, so it can be sent again.
    let failing = receipt("admin", "k2", &["r5", "r1"]);
    let err = store
        .insert_customers_with_receipt(&[customer("r5", 5), customer("r1", 6)], &failing)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(store.import_receipt("admin", "k2").await.unwrap(), None);
    assert_eq!(store.count_customers().await.unwrap(), 3);
}

async fn customers_by_index_returns_every_match(store: Store) {
    let shared_phone = "ab".repeat(32);
    let a = CustomerRecord {
        phone_idx: Some(shared_phone.clone()),
        email_idx: Some("mail-a".into()),
        ..customer("a", 20)
    };
    let b = CustomerRecord {
        phone_idx: Some(shared_phone.clone()),
        ..customer("b", 10)
    };
    let c = customer("c", 30);
    store
        .insert_customers(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap();

    let by_phone = store
        .customers_by_index(IndexColumn::Phone, &shared_phone, 10)
        .await
        .unwrap();
    assert_eq!(
        by_phone,
        vec![b.clone(), a.clone()],
        "every match, oldest first"
    );
    let limited = store
        .customers_by_index(IndexColumn::Phone, &shared_phone, 1)
        .await
        .unwrap();
    assert_eq!(limited, vec![b.clone()]);
    let unlimited = store
        .customers_by_index(IndexColumn::Phone, &shared_phone, 0)
        .await
        .unwrap();
    assert_eq!(unlimited.len(), 2, "0 means no limit");

    assert_eq!(
        store
            .customers_by_index(IndexColumn::Email, "mail-a", 10)
            .await
            .unwrap(),
        vec![a]
    );
    assert_eq!(
        store
            .customers_by_index(IndexColumn::AccountId, "acct-c", 10)
            .await
            .unwrap(),
        vec![c]
    );
    // Index columns are not interchangeable.
    assert!(
        store
            .customers_by_index(IndexColumn::Email, &shared_phone, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .customers_by_index(IndexColumn::AccountId, "phone-c", 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn trace_reads_indexes_exposures_and_holdings(store: Store) {
    store
        .insert_customers(&[customer("a", 1), customer("b", 2), customer("c", 3)])
        .await
        .unwrap();
    // More indexes than one statement binds: the known ones sit past the first batch.
    let mut wanted: Vec<String> = (0..1500).map(|i| format!("unknown-{i}")).collect();
    wanted.extend(["phone-c".to_owned(), "phone-a".to_owned()]);
    let mut found = store
        .customers_by_indexes(IndexColumn::Phone, &wanted)
        .await
        .unwrap();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("phone-a".to_owned(), "a".to_owned()),
            ("phone-c".to_owned(), "c".to_owned())
        ]
    );
    assert!(
        store
            .customers_by_indexes(IndexColumn::AccountId, &["phone-a".to_owned()])
            .await
            .unwrap()
            .is_empty(),
        "index columns are not interchangeable"
    );

    let act = |n: usize,
               staff: &str,
               org: &str,
               action: Action,
               customer: &str,
               decision: Decision,
               at| {
        AccessRecord {
            org: org.to_owned(),
            action,
            ..access(n, staff, Some(customer), decision, at)
        }
    };
    store
        .append_access(&[
            act(0, "alice", "acme", Action::View, "a", Decision::Allow, 100),
            act(
                1,
                "alice",
                "acme",
                Action::Reveal,
                "a",
                Decision::Allow,
                110,
            ),
            act(2, "alice", "acme", Action::View, "b", Decision::Allow, 120),
            act(3, "bob", "acme", Action::View, "a", Decision::Allow, 130),
            act(4, "bob", "acme", Action::Reveal, "c", Decision::Deny, 140),
            act(5, "bob", "partner", Action::View, "b", Decision::Allow, 150),
            act(6, "carol", "acme", Action::Reveal, "c", Decision::Allow, 10),
            act(7, "dave", "acme", Action::Search, "c", Decision::Allow, 160),
            act(
                8,
                "alice",
                "acme",
                Action::Reveal,
                "b",
                Decision::Allow,
                500,
            ),
        ])
        .await
        .unwrap();

    // Window [100, 500): carol's reveal is before it, alice's reveal of b at its end.
    let ids: Vec<String> = ["a", "b", "c"].map(str::to_owned).to_vec();
    let exposures = store.exposures(&ids, 100, 500).await.unwrap();
    let seen: Vec<(&str, &str, i64, i64, bool)> = exposures
        .iter()
        .map(|e: &Exposure| {
            (
                e.staff_id.as_str(),
                e.customer_id.as_str(),
                e.first_at,
                e.last_at,
                e.reveal,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("alice", "a", 100, 110, true),
            ("alice", "b", 120, 120, false),
            ("bob", "a", 130, 130, false),
            ("bob", "b", 150, 150, false),
        ],
        "allowed views and reveals in the window, one per person and customer, by first \
         access; no denial, no search, nothing outside the window"
    );
    assert!(
        store
            .exposures(&ids[2..], 100, 500)
            .await
            .unwrap()
            .is_empty()
    );
    let whole = store.exposures(&ids, 0, i64::MAX).await.unwrap();
    assert_eq!(whole.len(), 5, "carol's reveal of c is in the whole log");
    assert!(
        whole
            .iter()
            .any(|e| e.staff_id == "alice" && e.customer_id == "b" && e.reveal)
    );

    // Evidence: the person's ledger entries in the window, in order.
    assert_eq!(
        store.exposure_seqs("alice", 100, 500).await.unwrap(),
        vec![
            (0, "a".to_owned()),
            (1, "a".to_owned()),
            (2, "b".to_owned())
        ]
    );
    assert!(
        store
            .exposure_seqs("dave", 0, i64::MAX)
            .await
            .unwrap()
            .is_empty()
    );

    let people: Vec<String> = ["alice", "bob", "carol", "dave"]
        .map(str::to_owned)
        .to_vec();
    let holdings = store.holdings(&people, 500).await.unwrap();
    assert_eq!(
        holdings,
        vec![
            Holdings {
                staff_id: "alice".into(),
                org: "acme".into(),
                revealed: 1,
                viewed_only: 1,
            },
            Holdings {
                staff_id: "bob".into(),
                org: "partner".into(),
                revealed: 0,
                viewed_only: 2,
            },
            Holdings {
                staff_id: "carol".into(),
                org: "acme".into(),
                revealed: 1,
                viewed_only: 0,
            },
        ],
        "one customer counts once, revealed if any reveal before the end; held since \
         before any start; the latest org"
    );
    let later = store.holdings(&people, 1000).await.unwrap();
    assert_eq!(later[0].revealed, 2, "alice revealed b later");
    assert_eq!(later[0].viewed_only, 0);
    assert_eq!(later.len(), 3, "dave only searched");
    let only_bob = store.holdings(&people[1..2], 1000).await.unwrap();
    assert_eq!(only_bob.len(), 1);
    assert_eq!(only_bob[0].staff_id, "bob");
    assert!(
        store.holdings(&people, 50).await.unwrap().len() == 1,
        "only carol by 50"
    );
}

/// A log with repeats, reveals after views, out-of-order times, denials, searches, a
/// move between organisations and replayed batches, in the shape the indexer writes it.
fn constructed_log() -> Vec<AccessRecord> {
    let mut state: u64 = 0x5eed;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) % n
    };
    (0..600)
        .map(|n| {
            let staff = format!("s{}", next(7));
            let customer = format!("c{}", next(40));
            let action =
                [Action::View, Action::View, Action::Reveal, Action::Search][next(4) as usize];
            let decision = if next(10) == 0 {
                Decision::Deny
            } else {
                Decision::Allow
            };
            let at = 1000 + i64::try_from(n * 10 + next(50)).unwrap();
            AccessRecord {
                org: if n > 400 && staff == "s3" {
                    "partner"
                } else {
                    "acme"
                }
                .to_owned(),
                action,
                ..access(n as usize, &staff, Some(&customer), decision, at)
            }
        })
        .collect()
}

/// An exposure as compared: person, customer, first and last access, revealed.
type ExposureRow = (String, String, i64, i64, bool);

/// What `exposures` and `holdings` must say, computed from the records themselves.
fn expected_from_records(
    log: &[AccessRecord],
    since: i64,
    until: i64,
) -> (Vec<ExposureRow>, Vec<Holdings>) {
    use std::collections::BTreeMap;
    let exposing = |r: &&AccessRecord| {
        r.decision == Decision::Allow && matches!(r.action, Action::View | Action::Reveal)
    };
    let mut pairs: BTreeMap<(String, String), (i64, i64, bool)> = BTreeMap::new();
    for r in log
        .iter()
        .filter(exposing)
        .filter(|r| r.at >= since && r.at < until)
    {
        let key = (r.staff_id.clone(), r.customer_id.clone().unwrap());
        let e = pairs.entry(key).or_insert((r.at, r.at, false));
        e.0 = e.0.min(r.at);
        e.1 = e.1.max(r.at);
        e.2 |= r.action == Action::Reveal;
    }
    let mut exposures: Vec<_> = pairs
        .into_iter()
        .map(|((s, c), (first, last, reveal))| (s, c, first, last, reveal))
        .collect();
    exposures.sort_by(|a, b| (a.2, &a.0, &a.1).cmp(&(b.2, &b.0, &b.1)));

    let mut held: BTreeMap<String, BTreeMap<String, bool>> = BTreeMap::new();
    for r in log.iter().filter(exposing).filter(|r| r.at < until) {
        let revealed = held
            .entry(r.staff_id.clone())
            .or_default()
            .entry(r.customer_id.clone().unwrap())
            .or_default();
        *revealed |= r.action == Action::Reveal;
    }
    let holdings = held
        .into_iter()
        .map(|(staff_id, customers)| {
            let org = log
                .iter()
                .filter(|r| r.staff_id == staff_id && r.at < until)
                .max_by_key(|r| r.seq)
                .unwrap()
                .org
                .clone();
            let revealed = customers.values().filter(|&&r| r).count() as u64;
            Holdings {
                staff_id,
                org,
                revealed,
                viewed_only: customers.len() as u64 - revealed,
            }
        })
        .collect();
    (exposures, holdings)
}

/// Checks the store's summaries against a scan of `log`, for the whole log and windows
/// that cut through people's accesses.
async fn assert_summaries_match(store: &Store, log: &[AccessRecord]) {
    let customers: Vec<String> = (0..40).map(|c| format!("c{c}")).collect();
    let staff: Vec<String> = (0..7).map(|s| format!("s{s}")).collect();
    for (since, until) in [
        (0, i64::MAX),
        (1000, 7100),
        (2500, i64::MAX),
        (0, 3000),
        (2000, 4000),
        (4321, 4322),
    ] {
        let (exposures, holdings) = expected_from_records(log, since, until);
        let got: Vec<_> = store
            .exposures(&customers, since, until)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.staff_id, e.customer_id, e.first_at, e.last_at, e.reveal))
            .collect();
        assert_eq!(got, exposures, "exposures in [{since}, {until})");
        assert_eq!(
            store.holdings(&staff, until).await.unwrap(),
            holdings,
            "holdings at {until}"
        );
    }
}

async fn holdings_summaries_equal_a_scan_of_the_records(store: Store) {
    let log = constructed_log();
    // In the indexer's chunks, each batch replaying part of the one before (a restart).
    for start in (0..log.len()).step_by(100) {
        let from = start.saturating_sub(30);
        store
            .append_access(&log[from..(start + 100).min(log.len())])
            .await
            .unwrap();
    }
    assert_summaries_match(&store, &log).await;
}

async fn retention_deletes_only_older_records_and_keeps_the_summaries_true(store: Store) {
    let log = constructed_log();
    store.append_access(&log).await.unwrap();
    let cutoff = 4000;
    let older = log.iter().filter(|r| r.at < cutoff).count() as u64;
    let (exposures, _) = expected_from_records(&log, 0, i64::MAX);
    let kept: Vec<_> = exposures.iter().filter(|e| e.3 >= cutoff).collect();
    let due = store.retention_counts(cutoff, 0).await.unwrap();
    assert_eq!(due.access_records, older);
    assert_eq!(due.holdings, (exposures.len() - kept.len()) as u64);
    assert_eq!(store.apply_retention(cutoff, 0).await.unwrap(), due);
    let left = store
        .access_records(&AccessFilter::default())
        .await
        .unwrap();
    assert_eq!(left.len(), log.len() - older as usize);
    assert!(left.iter().all(|r| r.at >= cutoff));
    // Each person's counts are those of the holdings still there.
    let staff: Vec<String> = (0..7).map(|s| format!("s{s}")).collect();
    let mut expected: Vec<(String, u64, u64)> = staff
        .iter()
        .map(|s| {
            let mine = kept.iter().filter(|e| &e.0 == s);
            let revealed = mine.clone().filter(|e| e.4).count() as u64;
            (s.clone(), revealed, mine.count() as u64 - revealed)
        })
        .filter(|(_, r, v)| r + v > 0)
        .collect();
    expected.sort();
    let got: Vec<(String, u64, u64)> = store
        .holdings(&staff, i64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|h| (h.staff_id, h.revealed, h.viewed_only))
        .collect();
    assert_eq!(got, expected);
    // Nothing older is left: a second run deletes nothing.
    assert_eq!(
        store.retention_counts(cutoff, 0).await.unwrap(),
        Default::default()
    );
}

async fn canary_allocation_one_per_peer_group_least_held_first(store: Store) {
    let canary = |mark: &str, sealed: Option<&[u8]>| CanaryMark {
        mark: mark.to_owned(),
        sealed_id: sealed.map(<[u8]>::to_vec),
    };
    store
        .insert_canary_marks(&[
            canary("m1", Some(b"s1")),
            canary("m2", Some(b"s2")),
            // Planted before allocation existed: never offered.
            canary("m_old", None),
        ])
        .await
        .unwrap();
    let marks = |list: Vec<AllocatableCanary>| -> Vec<(String, i64)> {
        list.into_iter().map(|c| (c.mark, c.holders)).collect()
    };
    let offered = store
        .allocatable_canaries("acme/support", 10)
        .await
        .unwrap();
    assert_eq!(offered.len(), 2);
    assert!(offered.iter().all(|c| c.holders == 0 && c.mark != "m_old"));
    let m1 = offered.iter().find(|c| c.mark == "m1").unwrap();
    assert_eq!(m1.sealed_id, b"s1".to_vec());

    assert!(
        store
            .insert_canary_allocation("h_alice", "m1", "acme/support")
            .await
            .unwrap()
    );
    // The same person again, or a peer of hers (a race lost): refused, nothing stored.
    assert!(
        !store
            .insert_canary_allocation("h_alice", "m1", "acme/support")
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_canary_allocation("h_bob", "m1", "acme/support")
            .await
            .unwrap()
    );
    // Her peers are offered only what no peer holds; another group, the least held first.
    assert_eq!(
        marks(
            store
                .allocatable_canaries("acme/support", 10)
                .await
                .unwrap()
        ),
        vec![("m2".to_owned(), 0)]
    );
    assert_eq!(
        marks(
            store
                .allocatable_canaries("partner/sales", 10)
                .await
                .unwrap()
        ),
        vec![("m2".to_owned(), 0), ("m1".to_owned(), 1)]
    );
    assert!(
        store
            .insert_canary_allocation("h_carol", "m1", "partner/sales")
            .await
            .unwrap()
    );
    assert!(
        store
            .insert_canary_allocation("h_dave", "m2", "acme/support")
            .await
            .unwrap()
    );
    assert!(
        store
            .allocatable_canaries("acme/support", 10)
            .await
            .unwrap()
            .is_empty()
    );
    let mut holders = store.canary_holder_marks().await.unwrap();
    holders.sort();
    assert_eq!(holders, vec!["h_alice", "h_carol", "h_dave"]);
    assert_eq!(store.canary_marks().await.unwrap().len(), 3);
    assert!(store.is_canary_mark("m2").await.unwrap());
    assert!(!store.is_canary_mark("h_alice").await.unwrap());
}

async fn cases_open_close_and_filters(store: Store) {
    store
        .insert_customers(&[customer("c1", 1), customer("c2", 2)])
        .await
        .unwrap();
    store
        .insert_case(&case("k1", "c1", "alice", 100))
        .await
        .unwrap();
    store
        .insert_case(&case("k2", "c2", "alice", 200))
        .await
        .unwrap();
    store
        .insert_case(&case("k3", "c1", "bob", 300))
        .await
        .unwrap();
    store
        .insert_case(&case("k4", "c1", "alice", 400))
        .await
        .unwrap();
    assert_eq!(
        store.case("k1").await.unwrap(),
        Some(case("k1", "c1", "alice", 100))
    );
    assert_eq!(store.case("nope").await.unwrap(), None);
    assert_eq!(store.count_open_cases().await.unwrap(), 4);

    let ids = |cases: Vec<CaseRecord>| cases.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.open_cases("alice", None, 0).await.unwrap()),
        ["k4", "k2", "k1"]
    );
    assert_eq!(
        ids(store.open_cases("alice", None, 2).await.unwrap()),
        ["k4", "k2"]
    );
    assert_eq!(
        ids(store.open_cases("alice", Some("c1"), 10).await.unwrap()),
        ["k4", "k1"]
    );
    assert_eq!(
        ids(store.open_cases("alice", Some("c1"), 1).await.unwrap()),
        ["k4"]
    );
    assert_eq!(
        ids(store.open_cases("bob", Some("c2"), 10).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(store.open_cases("carol", None, 10).await.unwrap()),
        Vec::<String>::new()
    );

    assert!(store.close_case("k1", 500).await.unwrap());
    assert!(
        !store.close_case("k1", 600).await.unwrap(),
        "already closed"
    );
    assert!(!store.close_case("nope", 600).await.unwrap());
    let closed = store.case("k1").await.unwrap().unwrap();
    assert_eq!(closed.status, CaseStatus::Closed);
    assert_eq!(closed.closed_at, Some(500));
    assert_eq!(
        ids(store.open_cases("alice", Some("c1"), 10).await.unwrap()),
        ["k4"]
    );
    assert_eq!(store.count_open_cases().await.unwrap(), 3);
}

async fn call_bindings_unique_per_agent_while_in_force(store: Store) {
    store
        .insert_customers(&[customer("c1", 1), customer("c2", 2)])
        .await
        .unwrap();
    for (id, cus, who) in [
        ("k1", "c1", "alice"),
        ("k2", "c2", "alice"),
        ("k3", "c1", "bob"),
        ("k4", "c2", "alice"),
    ] {
        store.insert_case(&case(id, cus, who, 100)).await.unwrap();
    }
    let bind = |case: &str, staff: &str, cus: &str, number: &str| CallBinding {
        case_id: case.into(),
        staff_id: staff.into(),
        customer_id: cus.into(),
        number: number.into(),
        created_at: 200,
    };
    let x1 = "+8610000001";
    let x2 = "+8610000002";
    store
        .insert_call_binding(&bind("k1", "alice", "c1", x1))
        .await
        .unwrap();
    // The same number serves another agent at once.
    store
        .insert_call_binding(&bind("k3", "bob", "c1", x1))
        .await
        .unwrap();
    // One number leads an agent to one customer; one customer is reached through one number.
    assert!(matches!(
        store
            .insert_call_binding(&bind("k2", "alice", "c2", x1))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .insert_call_binding(&bind("k4", "alice", "c1", x2))
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(matches!(
        store
            .insert_call_binding(&bind("nope", "alice", "c2", x2))
            .await,
        Err(StoreError::NotFound)
    ));
    store
        .insert_call_binding(&bind("k2", "alice", "c2", x2))
        .await
        .unwrap();
    assert_eq!(
        store.call_binding_to("alice", "c1").await.unwrap(),
        Some(bind("k1", "alice", "c1", x1))
    );
    assert_eq!(
        store.call_binding_of("alice", x2).await.unwrap(),
        Some(bind("k2", "alice", "c2", x2))
    );
    assert_eq!(store.call_binding_of("carol", x2).await.unwrap(), None);
    let mut numbers = store.call_numbers_of("alice").await.unwrap();
    numbers.sort();
    assert_eq!(numbers, [x1, x2]);

    // Closing the case ends the binding: the number is free for the agent again.
    assert!(store.close_case("k1", 300).await.unwrap());
    assert_eq!(
        store.call_binding_of("alice", x1).await.unwrap(),
        None,
        "case closed"
    );
    assert_eq!(store.call_numbers_of("alice").await.unwrap(), [x2]);
    assert_eq!(
        store.call_binding_of("bob", x1).await.unwrap(),
        Some(bind("k3", "bob", "c1", x1))
    );
    // x1 is free for alice again, but c2 is still reached through x2.
    assert!(matches!(
        store
            .insert_call_binding(&bind("k4", "alice", "c2", x1))
            .await,
        Err(StoreError::Conflict)
    ));
    store.close_case("k2", 400).await.unwrap();
    store
        .insert_call_binding(&bind("k4", "alice", "c2", x1))
        .await
        .unwrap();
    assert_eq!(
        store.call_binding_to("alice", "c2").await.unwrap(),
        Some(bind("k4", "alice", "c2", x1))
    );
}

async fn case_rules_unknown_customer_and_duplicate_id(store: Store) {
    let err = store
        .insert_case(&case("k1", "ghost", "alice", 1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(err.code(), "not_found");
    store.insert_customers(&[customer("c1", 1)]).await.unwrap();
    store
        .insert_case(&case("k1", "c1", "alice", 1))
        .await
        .unwrap();
    let err = store
        .insert_case(&case("k1", "c1", "bob", 2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    assert_eq!(store.case("k1").await.unwrap().unwrap().assignee, "alice");
}

async fn contacts_round_trip_and_vouch_only_open_cases(store: Store) {
    let contact = ContactRecord {
        id: "t1".to_owned(),
        channel: custos_types::Channel::Phone,
        agent: "alice".to_owned(),
        identifier_kind: IndexColumn::Phone,
        identifier_idx: "phone-c1".to_owned(),
        identifier_version: 2,
        at: 90,
        created_by: "switch".to_owned(),
        created_at: 100,
    };
    store.insert_contact(&contact).await.unwrap();
    assert_eq!(store.contact("t1").await.unwrap(), Some(contact.clone()));
    assert_eq!(store.contact("t2").await.unwrap(), None);
    let err = store.insert_contact(&contact).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");

    store.insert_customers(&[customer("c1", 1)]).await.unwrap();
    let outbound = CaseRecord {
        provenance: Provenance::Outbound,
        campaign: Some("renewals".to_owned()),
        ..case("k1", "c1", "alice", 100)
    };
    store.insert_case(&outbound).await.unwrap();
    assert_eq!(store.case("k1").await.unwrap(), Some(outbound));
    store
        .insert_case(&case("k2", "c1", "alice", 100))
        .await
        .unwrap();
    assert!(
        store
            .vouch_case("k2", Provenance::Verified, "t1")
            .await
            .unwrap()
    );
    let vouched = store.case("k2").await.unwrap().unwrap();
    assert_eq!(vouched.provenance, Provenance::Verified);
    assert_eq!(vouched.contact_id.as_deref(), Some("t1"));
    assert!(store.close_case("k1", 200).await.unwrap());
    assert!(
        !store
            .vouch_case("k1", Provenance::Verified, "t1")
            .await
            .unwrap(),
        "a closed case keeps its provenance"
    );
    assert_eq!(
        store.case("k1").await.unwrap().unwrap().provenance,
        Provenance::Outbound
    );
}

async fn access_index_keeps_ledger_seq_and_skips_replays(store: Store) {
    store.append_access(&[]).await.unwrap();
    assert!(
        store
            .access_records(&all_access())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.max_access_seq().await.unwrap(), None);

    let mut tricky = access(2, "alice", Some("c1"), Decision::Allow, 50);
    tricky.fields = vec![
        "na\"me".into(),
        "邮箱".into(),
        "back\\slash".into(),
        String::new(),
    ];
    tricky.reason_code = "it's \"quoted\"".into();
    tricky.at = i64::MAX - 1; // large values survive the JSON round trip exactly
    let first = vec![
        access(0, "alice", Some("c1"), Decision::Allow, 30),
        access(1, "bob", None, Decision::Deny, 10),
        tricky,
        AccessRecord {
            fields: vec![],
            ..access(3, "carol", Some("c2"), Decision::Allow, 20)
        },
    ];
    store.append_access(&first).await.unwrap();
    let second = vec![
        access(4, "alice", None, Decision::Deny, 5),
        access(5, "bob", Some("c1"), Decision::Allow, 6),
    ];
    store.append_access(&second).await.unwrap();
    assert_eq!(store.max_access_seq().await.unwrap(), Some(5));

    // A replay after a restart offers rows already indexed: they are skipped, never
    // overwritten (the row for a ledger index is written once).
    let replay: Vec<AccessRecord> = second
        .iter()
        .map(|r| AccessRecord {
            reason_code: "rewritten".into(),
            ..r.clone()
        })
        .collect();
    store.append_access(&replay).await.unwrap();

    let stored = store.access_records(&all_access()).await.unwrap();
    let expected: Vec<AccessRecord> = first.into_iter().chain(second).collect();
    assert_eq!(stored, expected);
}

async fn access_filters(store: Store) {
    let batch = vec![
        access(0, "alice", Some("c1"), Decision::Allow, 100),
        access(1, "bob", Some("c1"), Decision::Deny, 200),
        access(2, "alice", Some("c2"), Decision::Deny, 300),
        access(3, "alice", None, Decision::Allow, 400),
        access(4, "bob", Some("c2"), Decision::Allow, 500),
    ];
    store.append_access(&batch).await.unwrap();
    let all = store.access_records(&all_access()).await.unwrap();
    assert_eq!(all.len(), 5);
    let ids = |filter: AccessFilter| {
        let store = store.clone();
        async move { request_ids(&store.access_records(&filter).await.unwrap()).join(",") }
    };

    assert_eq!(
        ids(AccessFilter {
            staff_id: Some("alice".into()),
            ..all_access()
        })
        .await,
        "req-0,req-2,req-3"
    );
    assert_eq!(
        ids(AccessFilter {
            customer_id: Some("c1".into()),
            ..all_access()
        })
        .await,
        "req-0,req-1"
    );
    assert_eq!(
        ids(AccessFilter {
            since: Some(300),
            ..all_access()
        })
        .await,
        "req-2,req-3,req-4"
    );
    assert_eq!(
        ids(AccessFilter {
            after_seq: Some(all[2].seq),
            ..all_access()
        })
        .await,
        "req-3,req-4"
    );
    assert_eq!(
        ids(AccessFilter {
            decision: Some(Decision::Deny),
            ..all_access()
        })
        .await,
        "req-1,req-2"
    );
    assert_eq!(
        ids(AccessFilter {
            limit: 2,
            ..all_access()
        })
        .await,
        "req-0,req-1"
    );
    assert_eq!(
        ids(AccessFilter {
            staff_id: Some("alice".into()),
            customer_id: Some("c2".into()),
            since: Some(100),
            after_seq: Some(all[0].seq),
            decision: Some(Decision::Deny),
            limit: 10,
        })
        .await,
        "req-2"
    );
    assert_eq!(
        ids(AccessFilter {
            staff_id: Some("nobody".into()),
            ..all_access()
        })
        .await,
        ""
    );
    assert_eq!(
        ids(AccessFilter {
            after_seq: Some(all[4].seq),
            ..all_access()
        })
        .await,
        ""
    );
}

async fn access_batch_of_1000_in_one_call(store: Store) {
    let batch: Vec<AccessRecord> = (0..1000)
        .map(|n| {
            access(
                n,
                if n.is_multiple_of(2) { "alice" } else { "bob" },
                Some("c1"),
                Decision::Allow,
                now_millis(),
            )
        })
        .collect();
    let started = Instant::now();
    store.append_access(&batch).await.unwrap();
    let took = started.elapsed();
    eprintln!("appended 1000 access records in one call in {took:?}");

    let stored = store.access_records(&all_access()).await.unwrap();
    assert_eq!(stored.len(), 1000);
    assert_seq_strictly_increasing(&stored);
    assert_eq!(stored, batch);
    let page = store
        .access_records(&AccessFilter {
            after_seq: Some(stored[499].seq),
            limit: 100,
            ..all_access()
        })
        .await
        .unwrap();
    assert_eq!(page.first().map(|r| r.request_id.as_str()), Some("req-500"));
    assert_eq!(page.len(), 100);
}

async fn clones_share_the_store(store: Store) {
    let other = store.clone();
    assert_eq!(other.backend(), store.backend());
    other.insert_staff(&staff("alice")).await.unwrap();
    assert_eq!(store.staff("alice").await.unwrap(), Some(staff("alice")));
}

// ----- SQLite only -----

#[cfg(unix)]
#[tokio::test]
async fn sqlite_file_is_private_and_reopens() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    store.insert_staff(&staff("alice")).await.unwrap();
    store
        .append_access(&[access(1, "alice", None, Decision::Allow, 1)])
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "database file");
    let wal = dir.path().join("vault.db-wal");
    assert!(wal.exists(), "WAL mode is on");
    assert_eq!(mode(&wal), 0o600, "WAL file");
    store.close().await;

    // A file with a loose mode is tightened on open; data and sequence survive reopening.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(store.staff("alice").await.unwrap(), Some(staff("alice")));
    store
        .append_access(&[access(2, "alice", None, Decision::Allow, 2)])
        .await
        .unwrap();
    let stored = store.access_records(&all_access()).await.unwrap();
    assert_eq!(request_ids(&stored), ["req-1", "req-2"]);
    assert_seq_strictly_increasing(&stored);
    store.close().await;
}

/// The SQLite store answers tokens, staff and open cases from memory (`hot` module): what
/// it answers after a reopen is what the file holds, every write through the store is
/// seen by the next read, and a row written around the store is still found.
#[tokio::test]
async fn sqlite_hot_state_follows_the_file_and_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let store = Store::open_sqlite(&path).await.unwrap();
    for id in ["alice", "bob"] {
        store.insert_staff(&staff(id)).await.unwrap();
    }
    store
        .insert_token(&token("t1", "alice", "hash-1"))
        .await
        .unwrap();
    store
        .insert_token(&token("t2", "bob", "hash-2"))
        .await
        .unwrap();
    store.insert_customers(&[customer("c1", 1)]).await.unwrap();
    for (id, at) in [("k1", 10), ("k2", 20), ("k3", 30)] {
        store
            .insert_case(&case(id, "c1", "alice", at))
            .await
            .unwrap();
    }
    store.close_case("k2", 40).await.unwrap();
    store
        .set_staff_status("bob", StaffStatus::Suspended)
        .await
        .unwrap();
    store.revoke_token("t1", 50).await.unwrap();
    store.close().await;

    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(store.staff_by_token_hash("hash-1").await.unwrap(), None);
    let (bob, _) = store.staff_by_token_hash("hash-2").await.unwrap().unwrap();
    assert_eq!(bob.status, StaffStatus::Suspended, "suspension survives");
    let open: Vec<String> = store
        .open_cases("alice", Some("c1"), 0)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(open, ["k3", "k1"], "open only, newest first");
    assert_eq!(
        store
            .open_cases("alice", Some("c1"), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.case("k2").await.unwrap().unwrap().status,
        CaseStatus::Closed,
        "a closed case is read from the file"
    );

    // Reinstating, vouching and closing are seen by the next read.
    store
        .set_staff_status("bob", StaffStatus::Active)
        .await
        .unwrap();
    assert_eq!(
        store.staff("bob").await.unwrap().unwrap().status,
        StaffStatus::Active
    );
    store
        .insert_contact(&ContactRecord {
            id: "ct1".into(),
            channel: custos_types::Channel::Phone,
            agent: "alice".into(),
            identifier_kind: IndexColumn::Phone,
            identifier_idx: "idx".into(),
            identifier_version: 1,
            at: 60,
            created_by: "switch".into(),
            created_at: 60,
        })
        .await
        .unwrap();
    assert!(
        store
            .vouch_case("k3", Provenance::Verified, "ct1")
            .await
            .unwrap()
    );
    assert_eq!(
        store.case("k3").await.unwrap().unwrap().provenance,
        Provenance::Verified
    );
    store.close_case("k3", 70).await.unwrap();
    assert_eq!(
        store.case("k3").await.unwrap().unwrap().status,
        CaseStatus::Closed
    );
    let open = store.open_cases("alice", Some("c1"), 0).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].id, "k1");

    // A case inserted beside the store (as an old deployment's data may be) is found.
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO cases (id, customer_id, assignee, channel, reason, status, created_by, created_at) \
         VALUES ('k9', 'c1', 'bob', 'phone', x'00', 'open', 'crm', 90)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    assert_eq!(store.case("k9").await.unwrap().unwrap().assignee, "bob");
    assert_eq!(
        store.open_cases("bob", Some("c1"), 0).await.unwrap().len(),
        1
    );
    store.close().await;
}

/// On SQLite a customer is read on the caller's thread (`reader` module): each read sees
/// every commit before it, a missing id is `None`, and a closed store refuses with an
/// error instead of reading.
#[tokio::test]
async fn sqlite_point_reads_see_each_commit_and_stop_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("custos.db"))
        .await
        .unwrap();
    assert_eq!(store.customer("c1").await.unwrap(), None);
    store.insert_customers(&[customer("c1", 1)]).await.unwrap();
    // The connection that answered `None` above answers again, from a new snapshot.
    assert_eq!(store.customer("c1").await.unwrap(), Some(customer("c1", 1)));
    for n in 2..40 {
        let id = format!("c{n}");
        store.insert_customers(&[customer(&id, n)]).await.unwrap();
        assert_eq!(store.customer(&id).await.unwrap(), Some(customer(&id, n)));
    }
    store.close().await;
    let err = store.customer("c1").await.unwrap_err();
    assert_eq!(err.code(), "database");
}

/// Stores indexed before the holdings summaries existed get them filled by the
/// migration, and kept up from then on.
#[tokio::test]
async fn sqlite_migration_fills_holdings_of_records_indexed_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("custos.db");
    let log = constructed_log();
    let store = Store::open_sqlite(&path).await.unwrap();
    store.append_access(&log[..450]).await.unwrap();
    store.close().await;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    // Back to the schema before migration `0004_holdings` (its tables, trigger and
    // record gone), so that reopening runs it on the records already indexed.
    for sql in [
        "DROP TRIGGER access_records_holdings",
        "DROP TABLE access_holdings",
        "DROP TABLE staff_holdings",
        "DELETE FROM _sqlx_migrations WHERE version = 4",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = Store::open_sqlite(&path).await.unwrap();
    assert_summaries_match(&store, &log[..450]).await;
    store.append_access(&log[400..]).await.unwrap();
    assert_summaries_match(&store, &log).await;
    store.close().await;
}

#[tokio::test]
async fn postgres_migration_fills_holdings_of_records_indexed_before() {
    with_postgres_database(|url| async move {
        let log = constructed_log();
        let store = Store::open_postgres(&url, 2).await.unwrap();
        store.append_access(&log[..450]).await.unwrap();
        store.close().await;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        for sql in [
            "DROP TRIGGER access_records_holdings ON access_records",
            "DROP FUNCTION access_records_holdings()",
            "DROP TABLE access_holdings",
            "DROP TABLE staff_holdings",
            "DELETE FROM _sqlx_migrations WHERE version = 4",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
        let store = Store::open_postgres(&url, 2).await.unwrap();
        assert_summaries_match(&store, &log[..450]).await;
        store.append_access(&log[400..]).await.unwrap();
        assert_summaries_match(&store, &log).await;
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn sqlite_missing_directory_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open_sqlite(&dir.path().join("no/such/dir/custos.db"))
        .await
        .err()
        .expect("error");
    assert_eq!(err.code(), "database");
    assert!(
        !err.to_string().contains("no/such/dir"),
        "paths stay out of messages: {err}"
    );
}

#[tokio::test]
async fn closed_store_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("custos.db"))
        .await
        .unwrap();
    store.close().await;
    let err = store.staff("alice").await.unwrap_err();
    // Unavailable, not failed: a caller refuses the request (503) rather than erring.
    assert_eq!(err.code(), "unavailable");
}

/// Quota charges, shared on PostgreSQL (one node on SQLite counts in memory): a stored
/// view replaces the person's earlier views of that customer, since only a customer's
/// latest opening counts, and leaves their reveals, searches, other customers and other
/// people alone.
async fn quota_charges_keep_a_customers_latest_view_only(store: Store) {
    let Some(quotas) = store.shared_quotas() else {
        assert_eq!(store.backend(), Backend::Sqlite);
        return;
    };
    let view = |at, customer: &str| QuotaCharge {
        at,
        customer_id: Some(customer.to_owned()),
        reveals: 0,
        search: false,
    };
    let reveal = QuotaCharge {
        at: 2,
        customer_id: Some("a".to_owned()),
        reveals: 2,
        search: false,
    };
    let search = QuotaCharge {
        at: 3,
        customer_id: None,
        reveals: 0,
        search: true,
    };
    for (staff, charge) in [
        ("s", view(1, "a")),
        ("s", reveal.clone()),
        ("s", search.clone()),
        ("s", view(4, "b")),
        ("t", view(5, "a")),
        ("s", view(6, "a")),
    ] {
        let taken = quotas
            .charge(staff, 0, move |_| Ok::<_, ()>(Some(charge)))
            .await
            .unwrap();
        assert_eq!(taken, Ok(()));
    }
    assert_eq!(
        quotas.charges("s", 0).await.unwrap(),
        [reveal, search, view(4, "b"), view(6, "a")]
    );
    assert_eq!(quotas.charges("t", 0).await.unwrap(), [view(5, "a")]);
}

#[tokio::test]
async fn postgres_bad_url_is_a_clean_error() {
    let err = Store::open_postgres("postgres://user:hunter2@127.0.0.1:1/db?sslmode=bogus", 2)
        .await
        .err()
        .expect("error");
    assert_eq!(err.code(), "database");
    assert!(
        !err.to_string().contains("hunter2"),
        "no password in: {err}"
    );
}

#[test]
fn database_url_rewriting() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h:5432", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h/postgres?sslmode=disable", "x"),
        "postgres://u@h/x?sslmode=disable"
    );
}
