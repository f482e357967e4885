//! Web console sessions and used customer links: in the store, so that every gateway
//! node serves every browser and a restart signs no one out. The console's cookies,
//! timeouts and CSRF live in the console (`custos-console/src/session.rs`); this module
//! only keeps the rows. A transport gets [`ConsoleSessions`], a handle to these rows
//! alone, never the [`Store`].

use custos_types::Role;

use crate::error::db_err;
use crate::{Pools, Store, StoreError};

const INSERT: &str = "INSERT INTO console_sessions \
     (key, kind, token_hash, staff_id, role, org, customer_id, until, created_at, last_seen) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const SELECT: &str = "SELECT key, kind, token_hash, staff_id, role, org, customer_id, until, \
     created_at, last_seen FROM console_sessions WHERE key = $1";
const EXPIRE: &str = "DELETE FROM console_sessions WHERE last_seen < $1 OR created_at < $2";
const COUNT: &str = "SELECT COUNT(*) FROM console_sessions";
const DROP_OLDEST: &str = "DELETE FROM console_sessions WHERE key IN \
     (SELECT key FROM console_sessions ORDER BY last_seen LIMIT 1)";
const TOUCH: &str = "UPDATE console_sessions SET last_seen = $2 WHERE key = $1";
const DELETE: &str = "DELETE FROM console_sessions WHERE key = $1";
const SET_EVIDENCE: &str = "UPDATE console_sessions SET evidence = $2 WHERE key = $1";
const SELECT_EVIDENCE: &str = "SELECT evidence FROM console_sessions WHERE key = $1";
const EXPIRE_LINKS: &str = "DELETE FROM used_links WHERE until <= $1";
const COUNT_LINKS: &str = "SELECT COUNT(*) FROM used_links";
const CLAIM_LINK: &str =
    "INSERT INTO used_links (key, until) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";

/// Who a session speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionSubject {
    /// A staff member, signed in with a token.
    Staff {
        /// SHA-256 hex of the token: every call of the session authenticates with it.
        token_hash: String,
        /// Staff id, role and organisation at sign-in (for display only).
        staff_id: String,
        /// Role at sign-in.
        role: Role,
        /// Organisation at sign-in.
        org: String,
    },
    /// A staff member, signed in by single sign-on with the identity provider: no token,
    /// every call of the session loads the staff entry by id (stored as a `staff` row
    /// without a token hash, so the table needs no new kind).
    SingleSignOn {
        /// Staff id.
        staff_id: String,
        /// Role at sign-in: the session ends if the entry's role changes.
        role: Role,
        /// Organisation at sign-in: likewise.
        org: String,
    },
    /// A customer, signed in with their access link.
    Customer {
        /// The customer.
        customer_id: String,
        /// When the link, and so the session, ends (unix ms).
        until: i64,
    },
}

/// One console session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsoleSession {
    /// SHA-256 hex of the session id.
    pub key: String,
    /// Who it speaks for.
    pub subject: SessionSubject,
    /// When it opened (unix ms).
    pub created_at: i64,
    /// When it was last used, as last written (unix ms).
    pub last_seen: i64,
}

/// The console's rows of the store, and nothing else; cheap to clone.
#[derive(Clone)]
pub struct ConsoleSessions {
    store: Store,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    key: String,
    kind: String,
    token_hash: Option<String>,
    staff_id: Option<String>,
    role: Option<String>,
    org: Option<String>,
    customer_id: Option<String>,
    until: Option<i64>,
    created_at: i64,
    last_seen: i64,
}

impl TryFrom<SessionRow> for ConsoleSession {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Database("malformed console session row".into());
        let subject = match (r.kind.as_str(), r.until) {
            ("staff", _) if r.token_hash.is_none() => SessionSubject::SingleSignOn {
                staff_id: r.staff_id.ok_or_else(corrupt)?,
                role: r.role.ok_or_else(corrupt)?.parse().map_err(|_| corrupt())?,
                org: r.org.ok_or_else(corrupt)?,
            },
            ("staff", _) => SessionSubject::Staff {
                token_hash: r.token_hash.ok_or_else(corrupt)?,
                staff_id: r.staff_id.ok_or_else(corrupt)?,
                role: r.role.ok_or_else(corrupt)?.parse().map_err(|_| corrupt())?,
                org: r.org.ok_or_else(corrupt)?,
            },
            ("customer", Some(until)) => SessionSubject::Customer {
                customer_id: r.customer_id.ok_or_else(corrupt)?,
                until,
            },
            _ => return Err(corrupt()),
        };
        Ok(ConsoleSession {
            key: r.key,
            subject,
            created_at: r.created_at,
            last_seen: r.last_seen,
        })
    }
}

impl Store {
    /// The handle to the console's sessions and used links.
    pub fn console_sessions(&self) -> ConsoleSessions {
        ConsoleSessions {
            store: self.clone(),
        }
    }
}

impl ConsoleSessions {
    /// Stores `session`, after deleting the sessions last seen before `idle_before` or
    /// opened before `opened_before`, and the least recently seen one when `max` are
    /// stored.
    pub async fn open(
        &self,
        session: &ConsoleSession,
        idle_before: i64,
        opened_before: i64,
        max: i64,
    ) -> Result<(), StoreError> {
        let (kind, token_hash, staff_id, role, org, customer_id, until) = match &session.subject {
            SessionSubject::Staff {
                token_hash,
                staff_id,
                role,
                org,
            } => (
                "staff",
                Some(token_hash.as_str()),
                Some(staff_id.as_str()),
                Some(role.as_str()),
                Some(org.as_str()),
                None,
                None,
            ),
            SessionSubject::SingleSignOn {
                staff_id,
                role,
                org,
            } => (
                "staff",
                None,
                Some(staff_id.as_str()),
                Some(role.as_str()),
                Some(org.as_str()),
                None,
                None,
            ),
            SessionSubject::Customer { customer_id, until } => (
                "customer",
                None,
                None,
                None,
                None,
                Some(customer_id.as_str()),
                Some(*until),
            ),
        };
        with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(EXPIRE)
                .bind(idle_before)
                .bind(opened_before)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let count: i64 = sqlx::query_scalar(COUNT)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            if count >= max {
                sqlx::query(DROP_OLDEST)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            sqlx::query(INSERT)
                .bind(&session.key)
                .bind(kind)
                .bind(token_hash)
                .bind(staff_id)
                .bind(role)
                .bind(org)
                .bind(customer_id)
                .bind(until)
                .bind(session.created_at)
                .bind(session.last_seen)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
        });
        Ok(())
    }

    /// The session stored under `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let row: Option<SessionRow> = with_pool!(self.store, |pool| {
            sqlx::query_as(SELECT)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        row.map(ConsoleSession::try_from).transpose()
    }

    /// Records that session `key` was used at `at`.
    pub async fn touch(&self, key: &str, at: i64) -> Result<(), StoreError> {
        with_pool!(self.store, |pool| {
            sqlx::query(TOUCH)
                .bind(key)
                .bind(at)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// Ends session `key` (its evidence bundle goes with it).
    pub async fn close(&self, key: &str) -> Result<(), StoreError> {
        with_pool!(self.store, |pool| {
            sqlx::query(DELETE)
                .bind(key)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// Keeps `evidence` (or none) as session `key`'s last evidence bundle.
    pub async fn set_evidence(&self, key: &str, evidence: Option<&[u8]>) -> Result<(), StoreError> {
        with_pool!(self.store, |pool| {
            sqlx::query(SET_EVIDENCE)
                .bind(key)
                .bind(evidence)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// Session `key`'s last evidence bundle, if any.
    pub async fn evidence(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let evidence: Option<Option<Vec<u8>>> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(SELECT_EVIDENCE)
                .bind(key)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        Ok(evidence.flatten())
    }

    /// Marks link `key` (valid until `until`) as used at `now`: `true` the first time,
    /// `false` when it was used before or `max` links are held (refusing is safe,
    /// forgetting a used link would not be). Links past their end are forgotten.
    pub async fn claim_link(
        &self,
        key: &str,
        until: i64,
        now: i64,
        max: i64,
    ) -> Result<bool, StoreError> {
        let claimed = with_pool!(self.store, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(EXPIRE_LINKS)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let count: i64 = sqlx::query_scalar(COUNT_LINKS)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_err)?;
            if count >= max {
                return Ok(false);
            }
            let done = sqlx::query(CLAIM_LINK)
                .bind(key)
                .bind(until)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            done.rows_affected() == 1
        });
        Ok(claimed)
    }
}
