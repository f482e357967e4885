//! What the company's identity provider provisions (SCIM 2.0): users, which are staff
//! entries, and groups with their members. The service (`custos-service`'s
//! `provisioning`) decides what a change does to the staff entry; here each change is
//! one transaction, and a change made against an older version than the stored one
//! changes nothing (`Ok(false)`), so two nodes or two calls cannot overwrite each other.

use crate::error::db_err;
use crate::{Pools, StaffRecord, Store, StoreError};

/// A provisioned user: what the provider said about staff entry `staff_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimUser {
    /// The staff entry (and the user's `userName` and SCIM id).
    pub staff_id: String,
    /// `displayName`, as sent.
    pub display_name: Option<String>,
    /// `externalId`, as sent.
    pub external_id: Option<String>,
    /// `active`, as sent; `None` when not sent.
    pub active: Option<bool>,
    /// Whether provisioning (not a person) suspended the staff entry.
    pub held: bool,
    /// Grows by one with each change.
    pub version: i64,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Last change, unix milliseconds.
    pub modified_at: i64,
}

/// A provisioned group and its members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimGroup {
    /// The SCIM id, given by Custos.
    pub id: String,
    /// `displayName`: what the configuration maps to a role.
    pub display_name: String,
    /// `externalId`, as sent.
    pub external_id: Option<String>,
    /// Staff ids of the members, in the order first given.
    pub members: Vec<String>,
    /// Grows by one with each change.
    pub version: i64,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Last change, unix milliseconds.
    pub modified_at: i64,
}

macro_rules! user_cols {
    () => {
        "staff_id, display_name, external_id, active, held, version, created_at, modified_at"
    };
}
macro_rules! group_cols {
    () => {
        "id, display_name, external_id, version, created_at, modified_at"
    };
}
const SELECT_USERS: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM scim_users WHERE deleted_at IS NULL ORDER BY created_at, staff_id"
);
const SELECT_USER: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM scim_users WHERE staff_id = $1 AND deleted_at IS NULL"
);
const SELECT_GROUPS: &str = concat!(
    "SELECT ",
    group_cols!(),
    " FROM scim_groups ORDER BY created_at, id"
);
const SELECT_GROUP: &str = concat!("SELECT ", group_cols!(), " FROM scim_groups WHERE id = $1");
// A deleted user's tombstone keeps its hold: only the provider brings them back.
const RELEASE_HOLD: &str =
    "UPDATE scim_users SET held = $2 WHERE staff_id = $1 AND deleted_at IS NULL";
const SELECT_HELD: &str = "SELECT held FROM scim_users WHERE staff_id = $1";

type UserRow = (
    String,
    Option<String>,
    Option<String>,
    Option<bool>,
    bool,
    i64,
    i64,
    i64,
);
type GroupRow = (String, String, Option<String>, i64, i64, i64);

fn user(r: UserRow) -> ScimUser {
    ScimUser {
        staff_id: r.0,
        display_name: r.1,
        external_id: r.2,
        active: r.3,
        held: r.4,
        version: r.5,
        created_at: r.6,
        modified_at: r.7,
    }
}

fn group(r: GroupRow, members: Vec<String>) -> ScimGroup {
    ScimGroup {
        id: r.0,
        display_name: r.1,
        external_id: r.2,
        members,
        version: r.3,
        created_at: r.4,
        modified_at: r.5,
    }
}

const INSERT_USER: &str = "INSERT INTO scim_users (staff_id, user_name_key, display_name, external_id, \
     active, held, version, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const UPDATE_USER: &str = "UPDATE scim_users SET display_name = $2, external_id = $3, active = $4, \
     held = $5, version = $6, modified_at = $7 WHERE staff_id = $1 AND version = $8 AND deleted_at IS NULL";
const DELETE_USER_MEMBERSHIPS: &str = "DELETE FROM scim_members WHERE staff_id = $1";
const DELETE_USER: &str = "UPDATE scim_users SET deleted_at = $3, held = $4 \
     WHERE staff_id = $1 AND version = $2 AND deleted_at IS NULL";
const INSERT_GROUP: &str = "INSERT INTO scim_groups (id, display_name, external_id, version, created_at, \
     modified_at) VALUES ($1, $2, $3, $4, $5, $6)";
const UPDATE_GROUP: &str = "UPDATE scim_groups SET display_name = $2, external_id = $3, version = $4, \
     modified_at = $5 WHERE id = $1 AND version = $6";
const DELETE_MEMBERS: &str = "DELETE FROM scim_members WHERE group_id = $1";
const INSERT_MEMBER: &str =
    "INSERT INTO scim_members (group_id, staff_id, position) VALUES ($1, $2, $3)";
const DELETE_GROUP: &str = "DELETE FROM scim_groups WHERE id = $1 AND version = $2";
const SELECT_MEMBERS: &str =
    "SELECT group_id, staff_id FROM scim_members ORDER BY group_id, position";
const SELECT_MEMBERS_OF: &str =
    "SELECT staff_id FROM scim_members WHERE group_id = $1 ORDER BY position";
const SELECT_GROUPS_OF: &str = "SELECT g.id, g.display_name, g.external_id, g.version, g.created_at, \
     g.modified_at FROM scim_groups g JOIN scim_members m ON m.group_id = g.id \
     WHERE m.staff_id = $1 ORDER BY g.created_at, g.id";
const UPDATE_STAFF_ACCESS: &str =
    "UPDATE staff SET name = $2, role = $3, org = $4, status = $5 WHERE id = $1";
const REVOKE_ALL_TOKENS: &str =
    "UPDATE tokens SET revoked_at = $2 WHERE staff_id = $1 AND revoked_at IS NULL RETURNING id";
const END_SESSIONS: &str = "DELETE FROM console_sessions WHERE staff_id = $1";

impl Store {
    /// Every provisioned user, oldest first.
    pub async fn scim_users(&self) -> Result<Vec<ScimUser>, StoreError> {
        let rows: Vec<UserRow> = with_pool!(self, |pool| sqlx::query_as(SELECT_USERS)
            .fetch_all(pool)
            .await
            .map_err(db_err)?);
        Ok(rows.into_iter().map(user).collect())
    }

    /// The provisioned user of staff entry `staff_id`, if any.
    pub async fn scim_user(&self, staff_id: &str) -> Result<Option<ScimUser>, StoreError> {
        let row: Option<UserRow> = with_pool!(self, |pool| sqlx::query_as(SELECT_USER)
            .bind(staff_id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?);
        Ok(row.map(user))
    }

    /// Stores a new staff entry and its provisioned user together;
    /// [`StoreError::Conflict`] if the id is taken, also in another case.
    pub async fn insert_scim_user(
        &self,
        staff: &StaffRecord,
        u: &ScimUser,
    ) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(crate::INSERT_STAFF)
                .bind(staff.id.as_str())
                .bind(staff.name.as_str())
                .bind(staff.role.as_str())
                .bind(staff.org.as_str())
                .bind(staff.status.as_str())
                .bind(staff.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(INSERT_USER)
                .bind(u.staff_id.as_str())
                .bind(u.staff_id.to_lowercase())
                .bind(u.display_name.as_deref())
                .bind(u.external_id.as_deref())
                .bind(u.active)
                .bind(u.held)
                .bind(u.version)
                .bind(u.created_at)
                .bind(u.modified_at)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
        });
        if let Some(hot) = &self.hot {
            hot.staff_inserted(staff);
        }
        Ok(())
    }

    /// Replaces the provisioned user `u` if its stored version is `expected`; `false`
    /// (nothing changed) otherwise.
    pub async fn update_scim_user(&self, u: &ScimUser, expected: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| sqlx::query(UPDATE_USER)
            .bind(u.staff_id.as_str())
            .bind(u.display_name.as_deref())
            .bind(u.external_id.as_deref())
            .bind(u.active)
            .bind(u.held)
            .bind(u.version)
            .bind(u.modified_at)
            .bind(expected)
            .execute(pool)
            .await
            .map_err(db_err)?
            .rows_affected());
        Ok(done > 0)
    }

    /// Deletes the provisioned user `staff_id` (at version `expected`) at `at`: its group
    /// memberships go, and its row stays as a tombstone that holds the staff entry
    /// (which stays too). `false` if the version moved on.
    pub async fn delete_scim_user(
        &self,
        staff_id: &str,
        expected: i64,
        at: i64,
    ) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(DELETE_USER_MEMBERSHIPS)
                .bind(staff_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let done = sqlx::query(DELETE_USER)
                .bind(staff_id)
                .bind(expected)
                .bind(at)
                .bind(true)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            if done > 0 {
                tx.commit().await.map_err(db_err)?;
            }
            done
        });
        Ok(done > 0)
    }

    /// Every provisioned group with its members, oldest first.
    pub async fn scim_groups(&self) -> Result<Vec<ScimGroup>, StoreError> {
        let (rows, members): (Vec<GroupRow>, Vec<(String, String)>) = with_pool!(self, |pool| {
            let rows = sqlx::query_as(SELECT_GROUPS)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            let members = sqlx::query_as(SELECT_MEMBERS)
                .fetch_all(pool)
                .await
                .map_err(db_err)?;
            (rows, members)
        });
        let mut by_group: std::collections::HashMap<String, Vec<String>> =
            std::collections::HashMap::new();
        for (g, s) in members {
            by_group.entry(g).or_default().push(s);
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let m = by_group.remove(&r.0).unwrap_or_default();
                group(r, m)
            })
            .collect())
    }

    /// The provisioned group `id` with its members, if any.
    pub async fn scim_group(&self, id: &str) -> Result<Option<ScimGroup>, StoreError> {
        let found: Option<(GroupRow, Vec<(String,)>)> = with_pool!(self, |pool| {
            let row: Option<GroupRow> = sqlx::query_as(SELECT_GROUP)
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(db_err)?;
            match row {
                None => None,
                Some(row) => Some((
                    row,
                    sqlx::query_as(SELECT_MEMBERS_OF)
                        .bind(id)
                        .fetch_all(pool)
                        .await
                        .map_err(db_err)?,
                )),
            }
        });
        Ok(found.map(|(row, members)| group(row, members.into_iter().map(|(s,)| s).collect())))
    }

    /// The groups staff entry `staff_id` is a member of, oldest first (members not
    /// filled in).
    pub async fn scim_groups_of(&self, staff_id: &str) -> Result<Vec<ScimGroup>, StoreError> {
        let rows: Vec<GroupRow> = with_pool!(self, |pool| sqlx::query_as(SELECT_GROUPS_OF)
            .bind(staff_id)
            .fetch_all(pool)
            .await
            .map_err(db_err)?);
        Ok(rows.into_iter().map(|r| group(r, Vec::new())).collect())
    }

    /// Stores a new group with its members (each a provisioned user, else
    /// [`StoreError::NotFound`]).
    pub async fn insert_scim_group(&self, g: &ScimGroup) -> Result<(), StoreError> {
        self.write_group(g, None).await.map(|_| ())
    }

    /// Replaces group `g` and its members if its stored version is `expected`; `false`
    /// (nothing changed) otherwise.
    pub async fn update_scim_group(
        &self,
        g: &ScimGroup,
        expected: i64,
    ) -> Result<bool, StoreError> {
        self.write_group(g, Some(expected)).await
    }

    async fn write_group(&self, g: &ScimGroup, expected: Option<i64>) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let written = match expected {
                None => sqlx::query(INSERT_GROUP)
                    .bind(g.id.as_str())
                    .bind(g.display_name.as_str())
                    .bind(g.external_id.as_deref())
                    .bind(g.version)
                    .bind(g.created_at)
                    .bind(g.modified_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected(),
                Some(expected) => sqlx::query(UPDATE_GROUP)
                    .bind(g.id.as_str())
                    .bind(g.display_name.as_str())
                    .bind(g.external_id.as_deref())
                    .bind(g.version)
                    .bind(g.modified_at)
                    .bind(expected)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected(),
            };
            if written == 0 {
                return Ok(false);
            }
            sqlx::query(DELETE_MEMBERS)
                .bind(g.id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            for (position, staff_id) in g.members.iter().enumerate() {
                sqlx::query(INSERT_MEMBER)
                    .bind(g.id.as_str())
                    .bind(staff_id.as_str())
                    .bind(position as i64)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
        });
        Ok(true)
    }

    /// Removes group `id` (at version `expected`) and its memberships; `false` if the
    /// version moved on or there is no such group.
    pub async fn delete_scim_group(&self, id: &str, expected: i64) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            sqlx::query(DELETE_MEMBERS)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let done = sqlx::query(DELETE_GROUP)
                .bind(id)
                .bind(expected)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            if done > 0 {
                tx.commit().await.map_err(db_err)?;
            }
            done
        });
        Ok(done > 0)
    }

    /// Sets what provisioning decides of staff entry `s.id`: name, role, organisation and
    /// status; `false` if there is no such entry.
    pub async fn set_staff_access(&self, s: &StaffRecord) -> Result<bool, StoreError> {
        let done = with_pool!(self, |pool| sqlx::query(UPDATE_STAFF_ACCESS)
            .bind(s.id.as_str())
            .bind(s.name.as_str())
            .bind(s.role.as_str())
            .bind(s.org.as_str())
            .bind(s.status.as_str())
            .execute(pool)
            .await
            .map_err(db_err)?
            .rows_affected());
        if done > 0
            && let Some(hot) = &self.hot
        {
            hot.staff_inserted(s);
        }
        Ok(done > 0)
    }

    /// Ends every credential of staff entry `staff_id` at `at`: all its tokens are revoked
    /// and all its console sessions closed. Returns how many tokens were revoked.
    pub async fn end_credentials(&self, staff_id: &str, at: i64) -> Result<usize, StoreError> {
        let revoked: Vec<(String,)> = with_pool!(self, |pool| {
            let mut tx = pool.begin().await.map_err(db_err)?;
            let revoked = sqlx::query_as(REVOKE_ALL_TOKENS)
                .bind(staff_id)
                .bind(at)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(END_SESSIONS)
                .bind(staff_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            revoked
        });
        if let Some(hot) = &self.hot {
            for (id,) in &revoked {
                hot.token_revoked(id);
            }
        }
        Ok(revoked.len())
    }

    /// Closes every console session of staff entry `staff_id`.
    pub async fn end_console_sessions(&self, staff_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(END_SESSIONS)
                .bind(staff_id)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    /// Whether provisioning holds staff entry `staff_id` suspended (also once the
    /// provider deleted the user).
    pub async fn held_by_provisioning(&self, staff_id: &str) -> Result<bool, StoreError> {
        let held: Option<bool> = with_pool!(self, |pool| sqlx::query_scalar(SELECT_HELD)
            .bind(staff_id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?);
        Ok(held == Some(true))
    }

    /// A person suspended staff entry `staff_id`: provisioning no longer holds it, so a
    /// later `active: true` from the provider does not lift the person's suspension.
    pub async fn release_provisioning_hold(&self, staff_id: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(RELEASE_HOLD)
                .bind(staff_id)
                .bind(false)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }
}
