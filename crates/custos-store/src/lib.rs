//! Storage for Custos: staff, API-token hashes, customers, cases, privacy-number
//! bindings and access records.
//!
//! The store never sees plaintext personal data: customer fields arrive sealed by
//! custos-crypto and are found through keyed-hash (blind) indexes. Two backends sit
//! behind one [`Store`] type:
//!
//! - **SQLite** — the embedded default: one file (mode 0600) in WAL mode with
//!   `synchronous=FULL`, so a write is on disk when the call returns.
//! - **PostgreSQL** — for production and for more than one gateway node.
//!
//! The SQL is shared wherever both databases accept it (sqlx lets SQLite use `$1`
//! placeholders too); only the bulk access-record append differs, because each database
//! unpacks a JSON array in its own way.

mod error;
mod hot;
mod model;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Database, Pool, QueryBuilder};

pub use error::StoreError;
use error::{db_err, migrate_err};
pub use model::{
    AccessFilter, AccessRecord, CaseRecord, CaseStatus, ContactRecord, CustomerRecord, IndexColumn,
    StaffRecord, StaffStatus, TokenRecord,
};

/// How long an SQLite connection waits for another connection's write lock before failing.
/// Writes are short (group commit batches them), so a long wait means something is stuck.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The page cache per SQLite connection, in KiB as `PRAGMA cache_size` takes it (negative).
const SQLITE_CACHE_KIB: &str = "-65536";

/// SQLite allows one writer at a time anyway; extra connections serve concurrent reads.
const SQLITE_MAX_CONNECTIONS: u32 = 8;

/// Which database a [`Store`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

#[derive(Clone)]
enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Handle to the store; cheap to clone (the connection pools and the hot state are
/// reference-counted, so every clone sees every write).
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    /// Tokens, staff and open cases in memory, on SQLite (the `hot` module's docs).
    hot: Option<Arc<hot::HotState>>,
    /// Point reads without a thread hand-off, on SQLite (the `reader` module's docs).
    reader: Option<Arc<reader::SyncReader>>,
}

/// Runs one body against whichever pool the store has. The body is expanded once per
/// backend, so it is type-checked for each database and the SQL is written only once.
/// The second form also binds `$sql` to a backend-specific statement.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pools {
            Pools::Sqlite($pool) => $body,
            Pools::Postgres($pool) => $body,
        }
    };
    ($store:expr, |$pool:ident, $sql:ident = { sqlite: $s:expr, postgres: $p:expr $(,)? }| $body:expr) => {
        match &$store.pools {
            Pools::Sqlite($pool) => {
                let $sql = $s;
                $body
            }
            Pools::Postgres($pool) => {
                let $sql = $p;
                $body
            }
        }
    };
}

mod detection;
pub use detection::{AlertRecord, AllocatableCanary, CanaryMark};
mod trace;
pub use trace::{Exposure, Holdings};
mod activity;
pub use activity::HourlyActivity;
mod contacts;
mod grants;
pub use grants::{GrantDecision, GrantRecord};
mod calls;
pub use calls::CallBinding;
mod imports;
pub use imports::ImportReceipt;
mod console_sessions;
pub use console_sessions::{ConsoleSession, ConsoleSessions, SessionSubject};
mod leases;
pub use leases::Leases;
mod provisioning;
pub use provisioning::{ScimGroup, ScimUser};
mod export;
mod used_tokens;
pub use used_tokens::UsedTokens;
mod quota_charges;
pub use quota_charges::{QuotaCharge, SharedQuotas};
mod backup;
mod retention;
pub use backup::{PgSnapshot, postgres_is_empty, snapshot_sqlite};
pub use retention::RetentionCounts;
mod shared_ledger;
pub use shared_ledger::{Integration, SharedLedger, StoredCheckpoint};

// Column lists, spelled once and spliced into statements with `concat!` so every
// statement stays a `&'static str` (which is what sqlx accepts as safe SQL).
macro_rules! staff_cols {
    () => {
        "id, name, role, org, status, created_at"
    };
}
macro_rules! token_cols {
    () => {
        "id, staff_id, hash, created_at, revoked_at"
    };
}
macro_rules! customer_cols {
    () => {
        "id, wrapped_key, name, phone, email, account_id, attributes, phone_idx, email_idx, account_idx, created_at, index_version"
    };
}
// Declared after the column macros they use.
mod key_rotations;
mod reader;
pub use key_rotations::{KeyRotation, Reindex, Rewrap, RotatedKey};

macro_rules! case_cols {
    () => {
        "id, customer_id, assignee, channel, reason, status, created_by, created_at, closed_at, provenance, campaign, contact_id"
    };
}
macro_rules! access_cols {
    () => {
        "seq, request_id, at, staff_id, org, role, action, customer_id, fields, case_id, target, decision, reason_code, client"
    };
}

const INSERT_STAFF: &str = concat!(
    "INSERT INTO staff (",
    staff_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6)"
);
const SELECT_STAFF: &str = concat!("SELECT ", staff_cols!(), " FROM staff WHERE id = $1");
const SELECT_ALL_STAFF: &str = concat!("SELECT ", staff_cols!(), " FROM staff ORDER BY id");
const UPDATE_STAFF_STATUS: &str = "UPDATE staff SET status = $2 WHERE id = $1";
// An empty wrapped key marks an erased customer (`CustomerRecord::is_erased`).
const ERASE_CUSTOMER: &str = "UPDATE customers SET wrapped_key = $2, name = $2, phone = NULL, \
     email = NULL, account_id = NULL, attributes = NULL, phone_idx = NULL, email_idx = NULL, \
     account_idx = NULL WHERE id = $1 AND wrapped_key <> $2";
const ERASE_CONTACT_INDEXES: &str = "UPDATE contacts SET identifier_idx = '' WHERE id IN \
     (SELECT contact_id FROM cases WHERE customer_id = $1 AND contact_id IS NOT NULL)";

const INSERT_TOKEN: &str = concat!(
    "INSERT INTO tokens (",
    token_cols!(),
    ") VALUES ($1, $2, $3, $4, $5)"
);
const REVOKE_TOKEN: &str = "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const SELECT_TOKENS_OF: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM tokens WHERE staff_id = $1 ORDER BY created_at, id"
);
const SELECT_ACTIVE_TOKENS: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM tokens WHERE revoked_at IS NULL"
);
const SELECT_STAFF_BY_TOKEN_HASH: &str = "SELECT s.id, s.name, s.role, s.org, s.status, s.created_at, \
     t.id AS token_id, t.hash AS token_hash, t.created_at AS token_created_at, t.revoked_at AS token_revoked_at \
     FROM tokens t JOIN staff s ON s.id = t.staff_id \
     WHERE t.hash = $1 AND t.revoked_at IS NULL";

/// The head of a multi-row customer insert; `VALUES (…), (…)` follows.
const INSERT_CUSTOMERS_HEAD: &str = concat!("INSERT INTO customers (", customer_cols!(), ") ");
/// Customer rows per INSERT statement: 12 parameters a row keeps a statement at 6,000
/// bound parameters, well within SQLite's limit (32,766) and PostgreSQL's (65,535),
/// while a batch of 20,000 customers takes 40 statements instead of 20,000.
const CUSTOMER_ROWS_PER_STATEMENT: usize = 500;
const SELECT_CUSTOMER: &str = concat!("SELECT ", customer_cols!(), " FROM customers WHERE id = $1");
// One statement per index column: the column name cannot be a bound parameter.
const SELECT_CUSTOMERS_BY_PHONE: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE phone_idx = $1 ORDER BY created_at, id LIMIT $2"
);
const SELECT_CUSTOMERS_BY_EMAIL: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE email_idx = $1 ORDER BY created_at, id LIMIT $2"
);
const SELECT_CUSTOMERS_BY_ACCOUNT: &str = concat!(
    "SELECT ",
    customer_cols!(),
    " FROM customers WHERE account_idx = $1 ORDER BY created_at, id LIMIT $2"
);
const COUNT_CUSTOMERS: &str = "SELECT COUNT(*) FROM customers";

const INSERT_CASE: &str = concat!(
    "INSERT INTO cases (",
    case_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
);
const SELECT_CASE: &str = concat!("SELECT ", case_cols!(), " FROM cases WHERE id = $1");
const CLOSE_CASE: &str =
    "UPDATE cases SET status = 'closed', closed_at = $2 WHERE id = $1 AND status = 'open'";
const SELECT_OPEN_CASES: &str = concat!(
    "SELECT ",
    case_cols!(),
    " FROM cases WHERE assignee = $1 AND status = 'open' ORDER BY created_at DESC, id DESC LIMIT $2"
);
const SELECT_OPEN_CASES_FOR_CUSTOMER: &str = concat!(
    "SELECT ",
    case_cols!(),
    " FROM cases WHERE assignee = $1 AND status = 'open' AND customer_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3"
);
const SELECT_ALL_OPEN_CASES: &str =
    concat!("SELECT ", case_cols!(), " FROM cases WHERE status = 'open'");
const COUNT_OPEN_CASES: &str = "SELECT COUNT(*) FROM cases WHERE status = 'open'";

// The whole batch arrives as one JSON array and is inserted by one statement, ordered by
// array position so that sequence numbers follow the caller's order. `fields` travels as
// a JSON string holding the array, and is stored as that text.
// `ON CONFLICT DO NOTHING`: the indexer may replay entries it had already indexed before
// a restart; the row for a ledger index is written once and never changed.
const APPEND_ACCESS_SQLITE: &str = "INSERT INTO access_records \
     (seq, request_id, at, staff_id, org, role, action, customer_id, fields, case_id, target, decision, reason_code, client) \
     SELECT value ->> '$.seq', value ->> '$.request_id', value ->> '$.at', value ->> '$.staff_id', value ->> '$.org', \
            value ->> '$.role', value ->> '$.action', value ->> '$.customer_id', value ->> '$.fields', \
            value ->> '$.case_id', value ->> '$.target', value ->> '$.decision', value ->> '$.reason_code', value ->> '$.client' \
     FROM json_each($1) ORDER BY key ON CONFLICT (seq) DO NOTHING";
const APPEND_ACCESS_POSTGRES: &str = "INSERT INTO access_records \
     (seq, request_id, at, staff_id, org, role, action, customer_id, fields, case_id, target, decision, reason_code, client) \
     SELECT (e.v ->> 'seq')::BIGINT, e.v ->> 'request_id', (e.v ->> 'at')::BIGINT, e.v ->> 'staff_id', e.v ->> 'org', \
            e.v ->> 'role', e.v ->> 'action', e.v ->> 'customer_id', e.v ->> 'fields', \
            e.v ->> 'case_id', e.v ->> 'target', e.v ->> 'decision', e.v ->> 'reason_code', e.v ->> 'client' \
     FROM jsonb_array_elements($1::TEXT::JSONB) WITH ORDINALITY AS e(v, ord) ORDER BY e.ord \
     ON CONFLICT (seq) DO NOTHING";
const MAX_ACCESS_SEQ: &str = "SELECT MAX(seq) FROM access_records";
const SELECT_ACCESS: &str = concat!("SELECT ", access_cols!(), " FROM access_records WHERE TRUE");

/// `LIMIT` value for a caller's limit where 0 means "no limit". `i64::MAX` is accepted
/// by both databases, unlike SQLite's `-1` or PostgreSQL's `NULL`.
fn sql_limit(limit: u32) -> i64 {
    if limit == 0 {
        i64::MAX
    } else {
        i64::from(limit)
    }
}

/// A counter read from the database; `COUNT(*)` is never negative.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A query builder for the pool's database, so the builder's type follows the pool.
fn builder_for<DB: Database>(_pool: &Pool<DB>, init: &'static str) -> QueryBuilder<DB>
where
    DB::Arguments: Default,
{
    QueryBuilder::new(init)
}

impl Store {
    /// Opens (creating if missing) the SQLite database file at `path` and brings its
    /// schema up to date. The parent directory must exist. The file is made readable by
    /// its owner only.
    pub async fn open_sqlite(path: &Path) -> Result<Store, StoreError> {
        create_private_file(path).await?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            // WAL lets readers proceed during a write; FULL fsyncs the WAL on every
            // commit, which is what makes an access record durable when append returns.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            // The default 2 MB page cache holds little of the customer table's three
            // blind indexes, so a large import rereads their pages from the file;
            // negative means KiB, so 64 MiB per connection (an upper bound, filled
            // only as pages are read).
            .pragma("cache_size", SQLITE_CACHE_KIB)
            // Temporary tables and statement journals (a multi-row INSERT keeps one, to
            // undo the statement alone) in memory rather than in files.
            .pragma("temp_store", "memory")
            // An erased customer's wrapped data key is overwritten in the page it leaves
            // rather than left in free space (`fast`: without extra I/O; the rows are
            // smaller than a page).
            .pragma("secure_delete", "fast");
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            // A file has no peer that can hang up: the liveness ping sqlx sends before
            // lending a connection would be one more thread hand-off per query.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db_err)?;
        if let Err(e) = sqlx::migrate!("./migrations/sqlite").run(&pool).await {
            pool.close().await;
            return Err(migrate_err(e));
        }
        let mut store = Store {
            pools: Pools::Sqlite(pool),
            hot: None,
            reader: Some(Arc::new(reader::SyncReader::new(path))),
        };
        match store.load_hot_state().await {
            Ok(hot) => store.hot = Some(Arc::new(hot)),
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        }
        Ok(store)
    }

    /// Reads what the hot state mirrors: every staff member, the active tokens, the open
    /// cases.
    async fn load_hot_state(&self) -> Result<hot::HotState, StoreError> {
        let (tokens, open): (Vec<TokenRow>, Vec<CaseRow>) = with_pool!(self, |pool| {
            let tokens = sqlx::query_as(SELECT_ACTIVE_TOKENS)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            let open = sqlx::query_as(SELECT_ALL_OPEN_CASES)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            (tokens, open)
        });
        Ok(hot::HotState::load(
            self.all_staff().await?,
            tokens.into_iter().map(TokenRecord::from).collect(),
            open.into_iter()
                .map(CaseRecord::try_from)
                .collect::<Result<_, _>>()?,
        ))
    }

    /// Connects to PostgreSQL at `url` with at most `max_connections` connections (at
    /// least 1) and brings the schema up to date. Errors never echo the URL, which may
    /// hold a password.
    pub async fn open_postgres(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect(url)
            .await
            .map_err(db_err)?;
        // sqlx serialises concurrent migrators with an advisory lock, so several gateway
        // nodes may start at once.
        if let Err(e) = sqlx::migrate!("./migrations/postgres").run(&pool).await {
            pool.close().await;
            return Err(migrate_err(e));
        }
        Ok(Store {
            pools: Pools::Postgres(pool),
            hot: None,
            reader: None,
        })
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        match self.pools {
            Pools::Sqlite(_) => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes all connections, waiting for ones in use to be returned. Later calls on
    /// any clone of this store fail with [`StoreError::Database`].
    pub async fn close(&self) {
        if let Some(reader) = &self.reader {
            reader.close();
        }
        with_pool!(self, |pool| pool.close().await)
    }

    // ----- staff -----

    /// Adds a staff member; [`StoreError::Conflict`] if the id exists.
    pub async fn insert_staff(&self, s: &StaffRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(INSERT_STAFF)
                .bind(s.id.as_str())
                .bind(s.name.as_str())
                .bind(s.role.as_str())
                .bind(s.org.as_str())
                .bind(s.status.as_str())
                .bind(s.created_at)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        if let Some(hot) = &self.hot {
            hot.staff_inserted(s);
        }
        Ok(())
    }

    /// The staff member with `id`, if any.
    pub async fn staff(&self, id: &str) -> Result<Option<StaffRecord>, StoreError> {
        if let Some(staff) = self.hot.as_ref().and_then(|hot| hot.staff(id)) {
            return Ok(Some(staff));
        }
        let row: Option<StaffRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_STAFF)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        row.map(StaffRecord::try_from).transpose()
    }

    /// Every staff member, ordered by id.
    pub async fn all_staff(&self) -> Result<Vec<StaffRecord>, StoreError> {
        let rows: Vec<StaffRow> = with_pool!(self, |pool| sqlx::query_as(SELECT_ALL_STAFF)
            .fetch_all(pool)
            .await
            .map_err(db_err)?);
        rows.into_iter().map(StaffRecord::try_from).collect()
    }

    /// Sets a staff member's status; `false` if there is no such staff member.
    pub async fn set_staff_status(
        &self,
        id: &str,
        status: StaffStatus,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(UPDATE_STAFF_STATUS)
                .bind(id)
                .bind(status.as_str())
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        if let Some(hot) = &self.hot {
            hot.status_set(id, status);
        }
        Ok(done > 0)
    }

    // ----- tokens -----

    /// Stores a token (its hash only). [`StoreError::Conflict`] if the id or hash exists,
    /// [`StoreError::NotFound`] if the staff member does not exist.
    pub async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(INSERT_TOKEN)
                .bind(t.id.as_str())
                .bind(t.staff_id.as_str())
                .bind(t.hash.as_str())
                .bind(t.created_at)
                .bind(t.revoked_at)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        if let Some(hot) = &self.hot {
            hot.token_inserted(t);
        }
        Ok(())
    }

    /// Revokes a token at time `at`; `false` if there is no such token or it was
    /// already revoked (the first revocation time is kept).
    pub async fn revoke_token(&self, token_id: &str, at: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(REVOKE_TOKEN)
                .bind(token_id)
                .bind(at)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        if let Some(hot) = &self.hot {
            hot.token_revoked(token_id);
        }
        Ok(done > 0)
    }

    /// All tokens of a staff member, revoked ones included, oldest first.
    pub async fn tokens_of(&self, staff_id: &str) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_TOKENS_OF)
                .bind(staff_id)
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        Ok(rows.into_iter().map(TokenRecord::from).collect())
    }

    /// The staff member and token for an active (non-revoked) token with this hash.
    pub async fn staff_by_token_hash(
        &self,
        hash: &str,
    ) -> Result<Option<(StaffRecord, TokenRecord)>, StoreError> {
        if let Some(found) = self.hot.as_ref().and_then(|hot| hot.by_token(hash)) {
            return Ok(Some(found));
        }
        let row: Option<StaffTokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_STAFF_BY_TOKEN_HASH)
                .bind(hash)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        row.map(StaffTokenRow::split).transpose()
    }

    // ----- customers -----

    /// Inserts a batch of customers in one transaction: all or nothing.
    /// [`StoreError::Conflict`] (and nothing stored) if any id exists already or appears
    /// twice in the batch.
    pub async fn insert_customers(&self, batch: &[CustomerRecord]) -> Result<(), StoreError> {
        self.insert_customers_in_tx(batch, None).await.map(|_| ())
    }

    /// Inserts a batch of customers and the receipt of the import that sent them, in one
    /// transaction, so the receipt exists exactly when the customers do. `Ok(false)`
    /// (and nothing stored) if the staff member already has a receipt under that key;
    /// [`StoreError::Conflict`] as for [`Store::insert_customers`].
    pub async fn insert_customers_with_receipt(
        &self,
        batch: &[CustomerRecord],
        receipt: &ImportReceipt,
    ) -> Result<bool, StoreError> {
        self.insert_customers_in_tx(batch, Some(receipt)).await
    }

    async fn insert_customers_in_tx(
        &self,
        batch: &[CustomerRecord],
        receipt: Option<&ImportReceipt>,
    ) -> Result<bool, StoreError> {
        if batch.is_empty() && receipt.is_none() {
            return Ok(true);
        }
        with_pool!(self, |pool| {
            // Dropping the transaction on an early return rolls it back.
            let mut tx = pool.begin().await.map_err(db_err)?;
            if let Some(r) = receipt {
                // First, so a resent batch stops here before any customer is written.
                let inserted = sqlx::query(imports::INSERT_RECEIPT)
                    .bind(r.staff_id.as_str())
                    .bind(r.key.as_str())
                    .bind(r.body_hash.as_str())
                    .bind(r.ids.join(","))
                    .bind(r.created_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
                if inserted == 0 {
                    return Ok(false);
                }
            }
            // Many rows per statement: one statement per row made the round trips and
            // per-statement work, not the writing, the cost of a bulk import.
            for chunk in batch.chunks(CUSTOMER_ROWS_PER_STATEMENT) {
                let mut qb = builder_for(pool, INSERT_CUSTOMERS_HEAD);
                qb.push_values(chunk, |mut row, c| {
                    row.push_bind(c.id.as_str())
                        .push_bind(c.wrapped_key.as_slice())
                        .push_bind(c.name.as_slice())
                        .push_bind(c.phone.as_deref())
                        .push_bind(c.email.as_deref())
                        .push_bind(c.account_id.as_deref())
                        .push_bind(c.attributes.as_deref())
                        .push_bind(c.phone_idx.as_deref())
                        .push_bind(c.email_idx.as_deref())
                        .push_bind(c.account_idx.as_deref())
                        .push_bind(c.created_at)
                        .push_bind(i64::from(c.index_version));
                });
                qb.build().execute(&mut *tx).await.map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
        });
        Ok(true)
    }

    /// Erases customer `id` (crypto-shredding): their wrapped data key, every sealed
    /// field and their blind indexes (also those of the contacts that opened their cases)
    /// are destroyed in one transaction; the row keeps the id, so cases and records that
    /// name it stay whole. `false` if there is no such customer or it is erased already.
    pub async fn erase_customer(&self, id: &str) -> Result<bool, StoreError> {
        let erased = with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let erased = sqlx::query(ERASE_CUSTOMER)
                .bind(id)
                .bind(Vec::<u8>::new())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            if erased > 0 {
                sqlx::query(ERASE_CONTACT_INDEXES)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                tx.commit().await.map_err(db_err)?;
            }
            erased
        });
        Ok(erased > 0)
    }

    /// The customer with `id`, if any.
    pub async fn customer(&self, id: &str) -> Result<Option<CustomerRecord>, StoreError> {
        if let Some(reader) = &self.reader {
            let row: Option<CustomerRow> = reader.row(SELECT_CUSTOMER, [id])?;
            return Ok(row.map(CustomerRecord::from));
        }
        let row: Option<CustomerRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_CUSTOMER)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        Ok(row.map(CustomerRecord::from))
    }

    /// Every customer whose `column` index equals `index_hex` (several customers may
    /// share one), oldest first, at most `limit` of them (0 = no limit).
    pub async fn customers_by_index(
        &self,
        column: IndexColumn,
        index_hex: &str,
        limit: u32,
    ) -> Result<Vec<CustomerRecord>, StoreError> {
        let sql = match column {
            IndexColumn::Phone => SELECT_CUSTOMERS_BY_PHONE,
            IndexColumn::Email => SELECT_CUSTOMERS_BY_EMAIL,
            IndexColumn::AccountId => SELECT_CUSTOMERS_BY_ACCOUNT,
        };
        let rows: Vec<CustomerRow> = with_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(index_hex)
                .bind(sql_limit(limit))
                .fetch_all(pool)
                .await
                .map_err(db_err)?
        });
        Ok(rows.into_iter().map(CustomerRecord::from).collect())
    }

    /// How many customers are stored.
    pub async fn count_customers(&self) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, |pool| sqlx::query_scalar(COUNT_CUSTOMERS)
            .fetch_one(pool)
            .await
            .map_err(db_err)?);
        Ok(count(n))
    }

    // ----- cases -----

    /// Adds a case. [`StoreError::Conflict`] if the id exists, [`StoreError::NotFound`]
    /// if the customer does not exist.
    pub async fn insert_case(&self, c: &CaseRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(INSERT_CASE)
                .bind(c.id.as_str())
                .bind(c.customer_id.as_str())
                .bind(c.assignee.as_str())
                .bind(c.channel.as_str())
                .bind(c.reason.as_slice())
                .bind(c.status.as_str())
                .bind(c.created_by.as_str())
                .bind(c.created_at)
                .bind(c.closed_at)
                .bind(c.provenance.as_str())
                .bind(c.campaign.as_deref())
                .bind(c.contact_id.as_deref())
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        if let Some(hot) = &self.hot {
            hot.case_inserted(c);
        }
        Ok(())
    }

    /// The case with `id`, if any.
    pub async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        if let Some(case) = self.hot.as_ref().and_then(|hot| hot.open_case(id)) {
            return Ok(Some(case));
        }
        if let Some(reader) = &self.reader {
            let row: Option<CaseRow> = reader.row(SELECT_CASE, [id])?;
            return row.map(CaseRecord::try_from).transpose();
        }
        let row: Option<CaseRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_CASE)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        row.map(CaseRecord::try_from).transpose()
    }

    /// Closes an open case at time `at`, and with it (in the same statement, by the
    /// schema's trigger) its privacy-number bindings; `false` if there is no such case
    /// or it was already closed.
    pub async fn close_case(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(CLOSE_CASE)
                .bind(id)
                .bind(at)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        if let Some(hot) = &self.hot {
            hot.case_closed(id);
        }
        Ok(done > 0)
    }

    /// Open cases assigned to `assignee`, only about `customer` if given, newest first
    /// (a limited list shows the latest work), at most `limit` of them (0 = no limit).
    pub async fn open_cases(
        &self,
        assignee: &str,
        customer: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        if let (Some(hot), Some(customer)) = (&self.hot, customer) {
            let mut cases = hot.open_cases_about(assignee, customer);
            if !cases.is_empty() {
                if limit > 0 {
                    cases.truncate(limit as usize);
                }
                return Ok(cases);
            }
        }
        let limit = sql_limit(limit);
        let rows: Vec<CaseRow> = if let Some(reader) = &self.reader {
            match customer {
                None => reader.rows(SELECT_OPEN_CASES, rusqlite::params![assignee, limit])?,
                Some(customer) => reader.rows(
                    SELECT_OPEN_CASES_FOR_CUSTOMER,
                    rusqlite::params![assignee, customer, limit],
                )?,
            }
        } else {
            with_pool!(self, |pool| {
                match customer {
                    None => {
                        sqlx::query_as(SELECT_OPEN_CASES)
                            .bind(assignee)
                            .bind(limit)
                            .fetch_all(pool)
                            .await
                    }
                    Some(customer) => {
                        sqlx::query_as(SELECT_OPEN_CASES_FOR_CUSTOMER)
                            .bind(assignee)
                            .bind(customer)
                            .bind(limit)
                            .fetch_all(pool)
                            .await
                    }
                }
                .map_err(db_err)?
            })
        };
        rows.into_iter().map(CaseRecord::try_from).collect()
    }

    /// How many cases are open.
    pub async fn count_open_cases(&self) -> Result<u64, StoreError> {
        let n: i64 = with_pool!(self, |pool| sqlx::query_scalar(COUNT_OPEN_CASES)
            .fetch_one(pool)
            .await
            .map_err(db_err)?);
        Ok(count(n))
    }

    // ----- access records -----

    /// Indexes `batch` (records with their ledger index in `seq`), in order. A record
    /// whose `seq` is already indexed is skipped, so replaying the ledger after a restart
    /// is harmless. Durable when this returns (SQLite `synchronous=FULL`, PostgreSQL
    /// committed).
    pub async fn append_access(&self, batch: &[AccessRecord]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let json = access_batch_json(batch)?;
        with_pool!(self, |pool, sql = { sqlite: APPEND_ACCESS_SQLITE, postgres: APPEND_ACCESS_POSTGRES }| {
            sqlx::query(sql)
                .bind(json)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// The highest indexed ledger index, if any record is indexed.
    pub async fn max_access_seq(&self) -> Result<Option<i64>, StoreError> {
        let max: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar(MAX_ACCESS_SEQ)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        Ok(max)
    }

    /// Access records matching `filter`, ordered by `seq` ascending.
    pub async fn access_records(
        &self,
        filter: &AccessFilter,
    ) -> Result<Vec<AccessRecord>, StoreError> {
        // Only the conditions that are set go into the statement, so each combination
        // gets a plan that can use its index (an `$1 IS NULL OR ...` form could not).
        // Every fragment is a constant; values are always bound.
        let rows: Vec<AccessRow> = with_pool!(self, |pool| {
            let mut qb = builder_for(pool, SELECT_ACCESS);
            if let Some(staff_id) = &filter.staff_id {
                qb.push(" AND staff_id = ").push_bind(staff_id.as_str());
            }
            if let Some(customer_id) = &filter.customer_id {
                qb.push(" AND customer_id = ")
                    .push_bind(customer_id.as_str());
            }
            if let Some(since) = filter.since {
                qb.push(" AND at >= ").push_bind(since);
            }
            if let Some(after_seq) = filter.after_seq {
                qb.push(" AND seq > ").push_bind(after_seq);
            }
            if let Some(decision) = filter.decision {
                qb.push(" AND decision = ").push_bind(decision.as_str());
            }
            qb.push(" ORDER BY seq");
            if filter.limit > 0 {
                qb.push(" LIMIT ").push_bind(i64::from(filter.limit));
            }
            qb.build_query_as().fetch_all(pool).await.map_err(db_err)?
        });
        rows.into_iter().map(AccessRecord::try_from).collect()
    }
}

/// Creates the SQLite file (if missing) with mode 0600 before SQLite opens it, so it is
/// never readable by others, not even briefly; SQLite gives its `-wal` and `-shm` files
/// the same mode. An existing file is tightened to 0600 as well.
async fn create_private_file(path: &Path) -> Result<(), StoreError> {
    // The path is not included in errors: it is configuration, but keep messages uniform.
    let io_err = |e: std::io::Error| {
        StoreError::Database(format!("cannot create the database file: {}", e.kind()))
    };
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(path).await.map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .await
            .map_err(io_err)?;
    }
    drop(file);
    Ok(())
}

/// The JSON array bound to the append statement: one object per record, in order.
fn access_batch_json(batch: &[AccessRecord]) -> Result<String, StoreError> {
    #[derive(serde::Serialize)]
    struct Item<'a> {
        seq: i64,
        request_id: &'a str,
        at: i64,
        staff_id: &'a str,
        org: &'a str,
        role: &'a str,
        action: &'a str,
        customer_id: Option<&'a str>,
        // Already JSON text: stored as-is in the `fields` column.
        fields: String,
        case_id: Option<&'a str>,
        target: Option<&'a str>,
        decision: &'a str,
        reason_code: &'a str,
        client: Option<&'a str>,
    }
    let encode_err = |_| StoreError::Database("cannot encode access records".into());
    let items = batch
        .iter()
        .map(|r| {
            Ok(Item {
                seq: r.seq,
                request_id: &r.request_id,
                at: r.at,
                staff_id: &r.staff_id,
                org: &r.org,
                role: r.role.as_str(),
                action: r.action.as_str(),
                customer_id: r.customer_id.as_deref(),
                fields: serde_json::to_string(&r.fields).map_err(encode_err)?,
                case_id: r.case_id.as_deref(),
                target: r.target.as_deref(),
                decision: r.decision.as_str(),
                reason_code: &r.reason_code,
                client: r.client.as_deref(),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    serde_json::to_string(&items).map_err(encode_err)
}

// ----- rows as read from the database -----
//
// Private mirror types, so the public records do not depend on sqlx and so stored text
// such as a status is checked when read.

/// A stored value that does not fit the model (e.g. an unknown status); the message
/// names the column only.
fn corrupt(column: &str) -> StoreError {
    StoreError::Database(format!("unexpected stored value in column {column}"))
}

#[derive(sqlx::FromRow)]
struct StaffRow {
    id: String,
    name: String,
    role: String,
    org: String,
    status: String,
    created_at: i64,
}

impl TryFrom<StaffRow> for StaffRecord {
    type Error = StoreError;
    fn try_from(r: StaffRow) -> Result<Self, StoreError> {
        Ok(StaffRecord {
            status: StaffStatus::parse(&r.status).ok_or_else(|| corrupt("staff.status"))?,
            role: r.role.parse().map_err(|_| corrupt("staff.role"))?,
            id: r.id,
            name: r.name,
            org: r.org,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    staff_id: String,
    hash: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl From<TokenRow> for TokenRecord {
    fn from(r: TokenRow) -> Self {
        TokenRecord {
            id: r.id,
            staff_id: r.staff_id,
            hash: r.hash,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct StaffTokenRow {
    id: String,
    name: String,
    role: String,
    org: String,
    status: String,
    created_at: i64,
    token_id: String,
    token_hash: String,
    token_created_at: i64,
    token_revoked_at: Option<i64>,
}

impl StaffTokenRow {
    fn split(self) -> Result<(StaffRecord, TokenRecord), StoreError> {
        let token = TokenRecord {
            id: self.token_id,
            staff_id: self.id.clone(),
            hash: self.token_hash,
            created_at: self.token_created_at,
            revoked_at: self.token_revoked_at,
        };
        let staff = StaffRecord::try_from(StaffRow {
            id: self.id,
            name: self.name,
            role: self.role,
            org: self.org,
            status: self.status,
            created_at: self.created_at,
        })?;
        Ok((staff, token))
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct CustomerRow {
    id: String,
    wrapped_key: Vec<u8>,
    name: Vec<u8>,
    phone: Option<Vec<u8>>,
    email: Option<Vec<u8>>,
    account_id: Option<Vec<u8>>,
    attributes: Option<Vec<u8>>,
    phone_idx: Option<String>,
    email_idx: Option<String>,
    account_idx: Option<String>,
    created_at: i64,
    index_version: i64,
}

impl reader::FromReadRow for CustomerRow {
    fn from_read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(CustomerRow {
            id: row.get(0)?,
            wrapped_key: row.get(1)?,
            name: row.get(2)?,
            phone: row.get(3)?,
            email: row.get(4)?,
            account_id: row.get(5)?,
            attributes: row.get(6)?,
            phone_idx: row.get(7)?,
            email_idx: row.get(8)?,
            account_idx: row.get(9)?,
            created_at: row.get(10)?,
            index_version: row.get(11)?,
        })
    }
}

impl From<CustomerRow> for CustomerRecord {
    fn from(r: CustomerRow) -> Self {
        CustomerRecord {
            id: r.id,
            wrapped_key: r.wrapped_key,
            name: r.name,
            phone: r.phone,
            email: r.email,
            account_id: r.account_id,
            attributes: r.attributes,
            phone_idx: r.phone_idx,
            email_idx: r.email_idx,
            account_idx: r.account_idx,
            created_at: r.created_at,
            index_version: u32::try_from(r.index_version).unwrap_or(0),
        }
    }
}

#[derive(sqlx::FromRow)]
struct CaseRow {
    id: String,
    customer_id: String,
    assignee: String,
    channel: String,
    reason: Vec<u8>,
    status: String,
    created_by: String,
    created_at: i64,
    closed_at: Option<i64>,
    provenance: String,
    campaign: Option<String>,
    contact_id: Option<String>,
}

impl reader::FromReadRow for CaseRow {
    fn from_read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(CaseRow {
            id: row.get(0)?,
            customer_id: row.get(1)?,
            assignee: row.get(2)?,
            channel: row.get(3)?,
            reason: row.get(4)?,
            status: row.get(5)?,
            created_by: row.get(6)?,
            created_at: row.get(7)?,
            closed_at: row.get(8)?,
            provenance: row.get(9)?,
            campaign: row.get(10)?,
            contact_id: row.get(11)?,
        })
    }
}

impl TryFrom<CaseRow> for CaseRecord {
    type Error = StoreError;
    fn try_from(r: CaseRow) -> Result<Self, StoreError> {
        Ok(CaseRecord {
            status: CaseStatus::parse(&r.status).ok_or_else(|| corrupt("cases.status"))?,
            id: r.id,
            customer_id: r.customer_id,
            assignee: r.assignee,
            channel: r.channel.parse().map_err(|_| corrupt("cases.channel"))?,
            reason: r.reason,
            created_by: r.created_by,
            created_at: r.created_at,
            closed_at: r.closed_at,
            provenance: r
                .provenance
                .parse()
                .map_err(|_| corrupt("cases.provenance"))?,
            campaign: r.campaign,
            contact_id: r.contact_id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct AccessRow {
    seq: i64,
    request_id: String,
    at: i64,
    staff_id: String,
    org: String,
    role: String,
    action: String,
    customer_id: Option<String>,
    fields: String,
    case_id: Option<String>,
    target: Option<String>,
    decision: String,
    reason_code: String,
    client: Option<String>,
}

impl TryFrom<AccessRow> for AccessRecord {
    type Error = StoreError;
    fn try_from(r: AccessRow) -> Result<Self, StoreError> {
        Ok(AccessRecord {
            fields: serde_json::from_str(&r.fields)
                .map_err(|_| corrupt("access_records.fields"))?,
            role: r.role.parse().map_err(|_| corrupt("access_records.role"))?,
            action: r
                .action
                .parse()
                .map_err(|_| corrupt("access_records.action"))?,
            decision: r
                .decision
                .parse()
                .map_err(|_| corrupt("access_records.decision"))?,
            seq: r.seq,
            request_id: r.request_id,
            at: r.at,
            staff_id: r.staff_id,
            org: r.org,
            customer_id: r.customer_id,
            case_id: r.case_id,
            target: r.target,
            reason_code: r.reason_code,
            client: r.client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(role: &str, action: &str, decision: &str) -> AccessRow {
        AccessRow {
            seq: 0,
            request_id: "req_1".into(),
            at: 1,
            staff_id: "alice".into(),
            org: "acme".into(),
            role: role.into(),
            action: action.into(),
            customer_id: None,
            fields: "[]".into(),
            case_id: None,
            target: None,
            decision: decision.into(),
            reason_code: "ok".into(),
            client: None,
        }
    }

    #[test]
    fn a_stored_word_outside_the_vocabulary_is_an_error() {
        let record = AccessRecord::try_from(row("support", "view", "allow")).unwrap();
        assert_eq!(
            (record.role, record.action, record.decision),
            (
                custos_types::Role::Support.into(),
                custos_types::Action::View,
                custos_types::Decision::Allow
            )
        );
        for (role, action, decision, column) in [
            ("agent", "view", "allow", "access_records.role"),
            ("support", "peek", "allow", "access_records.action"),
            ("support", "view", "maybe", "access_records.decision"),
        ] {
            let e = AccessRecord::try_from(row(role, action, decision)).unwrap_err();
            assert!(
                matches!(&e, StoreError::Database(m) if m.ends_with(column)),
                "{e}"
            );
        }
    }
}
