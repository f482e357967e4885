//! Contacts the contact centre reports, and the one change a contact makes to a case
//! already open: it vouches for it.

use custos_types::Provenance;

use crate::error::db_err;
use crate::{ContactRecord, IndexColumn, Pools, Store, StoreError, corrupt};

macro_rules! contact_cols {
    () => {
        "id, channel, agent, identifier_kind, identifier_idx, at, created_by, created_at, identifier_version"
    };
}

const INSERT_CONTACT: &str = concat!(
    "INSERT INTO contacts (",
    contact_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const SELECT_CONTACT: &str = concat!("SELECT ", contact_cols!(), " FROM contacts WHERE id = $1");
// Only an open case changes: a closed case's provenance is history.
const VOUCH_CASE: &str = "UPDATE cases SET provenance = $2, contact_id = $3 \
     WHERE id = $1 AND status = 'open'";

#[derive(sqlx::FromRow)]
struct ContactRow {
    id: String,
    channel: String,
    agent: String,
    identifier_kind: String,
    identifier_idx: String,
    at: i64,
    created_by: String,
    created_at: i64,
    identifier_version: i64,
}

impl Store {
    /// Adds a contact. [`StoreError::Conflict`] if the id exists.
    pub async fn insert_contact(&self, c: &ContactRecord) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(INSERT_CONTACT)
                .bind(c.id.as_str())
                .bind(c.channel.as_str())
                .bind(c.agent.as_str())
                .bind(c.identifier_kind.as_str())
                .bind(c.identifier_idx.as_str())
                .bind(c.at)
                .bind(c.created_by.as_str())
                .bind(c.created_at)
                .bind(i64::from(c.identifier_version))
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// The contact with `id`, if any.
    pub async fn contact(&self, id: &str) -> Result<Option<ContactRecord>, StoreError> {
        let row: Option<ContactRow> = with_pool!(self, |pool| {
            sqlx::query_as(SELECT_CONTACT)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?
        });
        row.map(|r| {
            Ok(ContactRecord {
                identifier_kind: IndexColumn::parse(&r.identifier_kind)
                    .ok_or_else(|| corrupt("contacts.identifier_kind"))?,
                channel: r.channel.parse().map_err(|_| corrupt("contacts.channel"))?,
                id: r.id,
                agent: r.agent,
                identifier_idx: r.identifier_idx,
                at: r.at,
                created_by: r.created_by,
                created_at: r.created_at,
                identifier_version: u32::try_from(r.identifier_version).unwrap_or(0),
            })
        })
        .transpose()
    }

    /// Sets the provenance of open case `case_id` and the contact behind it; `false` if
    /// there is no such open case.
    pub async fn vouch_case(
        &self,
        case_id: &str,
        provenance: Provenance,
        contact_id: &str,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            sqlx::query(VOUCH_CASE)
                .bind(case_id)
                .bind(provenance.as_str())
                .bind(contact_id)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        if let Some(hot) = &self.hot {
            hot.case_vouched(case_id, provenance, contact_id);
        }
        Ok(done > 0)
    }
}
