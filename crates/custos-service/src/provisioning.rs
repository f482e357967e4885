//! Provisioning from the company's identity provider (SCIM 2.0, RFC 7644): people join,
//! change group and leave there, and Custos follows. The wire format is `custos_scim`'s;
//! this module owns what a change does to a staff entry.
//!
//! - A User is a staff entry; its `userName` is the staff id, fixed once it exists.
//! - A Group is the provider's group. `[scim] groups` maps group names to a role (and an
//!   organisation): the first mapping, in the configuration's order, that names a group
//!   the person is in gives their role. A person in no mapped group has no role and is
//!   held suspended: provisioning can give no more than the mapping names.
//! - `active: false`, leaving every mapped group, or DELETE suspends the person and ends
//!   their tokens and console sessions, from the next request on. A deleted user stays
//!   as a tombstone that keeps the hold: no analyst's resume brings them back. A person suspended by
//!   someone (an analyst, the detector) stays suspended whatever the provider says;
//!   only a suspension provisioning made (`held`) is lifted by it.
//! - Every call, reads too, is a ledger entry made by the `scim` principal, and each
//!   change is recorded before it is made.
//! - A change names the version it was made against (an `If-Match` ETag, or the version
//!   read just before); a change against an older version changes nothing (412).

use custos_policy::Action;
use custos_scim::resource::{Meta, Projection, list_response};
use custos_scim::{Filter, GroupFields, ScimError, UserFields};
use custos_store::{ScimGroup, ScimUser, StaffRecord, StaffStatus};
use custos_types::Role;
use serde_json::Value;

use crate::App;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::input::{MAX_STAFF_NAME_CHARS, valid_id};
use crate::record::{Recorded, RequestMeta};

/// The two resource types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimKind {
    /// `/Users`: staff entries.
    User,
    /// `/Groups`: the provider's groups.
    Group,
}

/// What the service publishes about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScimDiscovery {
    /// `/ServiceProviderConfig`.
    ServiceProviderConfig,
    /// `/ResourceTypes` or one of them.
    ResourceTypes,
    /// `/Schemas` or one of them.
    Schemas,
}

/// A list query (RFC 7644 §3.4.2): filter, page and attributes.
#[derive(Debug, Default)]
pub struct ListQuery {
    /// The `filter`, as sent.
    pub filter: Option<String>,
    /// The 1-based index of the first result (default 1).
    pub start_index: Option<i64>,
    /// The most results (default and at most 1,000).
    pub count: Option<i64>,
    /// `attributes`.
    pub attributes: Option<String>,
    /// `excludedAttributes`.
    pub excluded_attributes: Option<String>,
}

/// The resource a change or a deletion names, and the version it was made against.
#[derive(Clone, Copy, Debug)]
pub struct ScimTarget<'a> {
    /// Users or groups.
    pub kind: ScimKind,
    /// The resource's id.
    pub id: &'a str,
    /// The `If-Match` header, if sent.
    pub if_match: Option<&'a str>,
}

/// A SCIM document with its ETag, if it is a resource.
#[derive(Debug)]
pub struct ScimDocument {
    /// The JSON body.
    pub body: Value,
    /// The resource's version as an ETag.
    pub etag: Option<String>,
}

fn scim_error(e: ScimError) -> ServiceError {
    ServiceError::bad_request(Code::Part(e.scim_type.code()), e.detail)
}

fn precondition_failed() -> ServiceError {
    ServiceError::new(
        ErrorKind::PreconditionFailed,
        Code::PreconditionFailed,
        "the resource changed since the version named in If-Match",
    )
}

fn user_meta(u: &ScimUser) -> Meta {
    Meta {
        created_ms: u.created_at,
        modified_ms: u.modified_at,
        version: u.version,
    }
}

fn group_meta(g: &ScimGroup) -> Meta {
    Meta {
        created_ms: g.created_at,
        modified_ms: g.modified_at,
        version: g.version,
    }
}

fn user_fields(u: &ScimUser) -> UserFields {
    UserFields {
        user_name: u.staff_id.clone(),
        display_name: u.display_name.clone(),
        active: u.active,
        external_id: u.external_id.clone(),
    }
}

fn group_fields(g: &ScimGroup) -> GroupFields {
    GroupFields {
        display_name: g.display_name.clone(),
        external_id: g.external_id.clone(),
        members: g.members.clone(),
    }
}

/// Group ids Custos gives: `grp_` and 16 hex digits.
fn valid_group_id(id: &str) -> bool {
    id.len() == 20 && id.starts_with("grp_") && id[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `if_match` (if sent and not empty) names `meta`'s version.
fn check_if_match(if_match: Option<&str>, meta: &Meta) -> Result<(), ServiceError> {
    match if_match.filter(|t| !t.trim().is_empty()) {
        Some(tag) if !custos_scim::resource::if_match_holds(tag, meta) => {
            Err(precondition_failed())
        }
        _ => Ok(()),
    }
}

impl App {
    /// The `base` URL of resource locations: `[scim] base_url`, else from `host`.
    pub fn scim_base(&self, host: Option<&str>) -> String {
        match &self.config.scim.base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let scheme = if self.config.tls { "https" } else { "http" };
                format!("{scheme}://{}/scim/v2", host.unwrap_or("localhost"))
            }
        }
    }

    /// What the service publishes about itself; `id` names one resource type or schema.
    pub async fn scim_discovery(
        &self,
        meta: &RequestMeta,
        base: &str,
        what: ScimDiscovery,
        id: Option<&str>,
    ) -> Recorded<ScimDocument> {
        let mut ex = self.begin(meta, custos_types::Action::ScimRead);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ProvisionStaff)
                .await?;
            let body = match what {
                ScimDiscovery::ServiceProviderConfig => {
                    custos_scim::discovery::service_provider_config(base)
                }
                ScimDiscovery::ResourceTypes | ScimDiscovery::Schemas => {
                    let all = if what == ScimDiscovery::Schemas {
                        custos_scim::discovery::schemas(base)
                    } else {
                        custos_scim::discovery::resource_types(base)
                    };
                    match id {
                        None => {
                            let n = all.len();
                            list_response(all, n, 1)
                        }
                        Some(id) => all
                            .into_iter()
                            .find(|d| d["id"].as_str() == Some(id))
                            .ok_or_else(|| ServiceError::not_found("schema or resource type"))?,
                    }
                }
            };
            Ok(ScimDocument { body, etag: None })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Lists resources of the `kinds` named (`GET /Users`, `POST /Users/.search`, `POST
    /// /.search` for both), users first.
    pub async fn scim_list(
        &self,
        meta: &RequestMeta,
        base: &str,
        kinds: &[ScimKind],
        query: Result<ListQuery, ServiceError>,
    ) -> Recorded<ScimDocument> {
        let mut ex = self.begin(meta, custos_types::Action::ScimRead);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ProvisionStaff)
                .await?;
            let query = query?;
            let filter = query
                .filter
                .as_deref()
                .map(Filter::parse)
                .transpose()
                .map_err(scim_error)?;
            let projection = Projection::parse(
                query.attributes.as_deref(),
                query.excluded_attributes.as_deref(),
            );
            let max = custos_scim::discovery::MAX_RESULTS as i64;
            let start = query.start_index.unwrap_or(1).max(1);
            let count = query.count.unwrap_or(max).clamp(0, max);
            let groups = self.store.scim_groups().await?;
            let mut all: Vec<Value> = Vec::new();
            if kinds.contains(&ScimKind::User) {
                all.extend(self.store.scim_users().await?.iter().map(|u| {
                    user_fields(u).to_json(
                        &u.staff_id,
                        &groups_of(&groups, &u.staff_id),
                        &user_meta(u),
                        base,
                    )
                }));
            }
            if kinds.contains(&ScimKind::Group) {
                all.extend(
                    groups
                        .iter()
                        .map(|g| group_fields(g).to_json(&g.id, &group_meta(g), base)),
                );
            }
            let matching: Vec<Value> = all
                .into_iter()
                .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
                .collect();
            let total = matching.len();
            let page: Vec<Value> = matching
                .into_iter()
                .skip(usize::try_from(start - 1).unwrap_or(usize::MAX))
                .take(usize::try_from(count).unwrap_or(0))
                .map(|r| projection.apply(r))
                .collect();
            Ok(ScimDocument {
                body: list_response(page, total, usize::try_from(start).unwrap_or(1)),
                etag: None,
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// One user or group (`GET /Users/{id}`, `GET /Groups/{id}`).
    pub async fn scim_get(
        &self,
        meta: &RequestMeta,
        base: &str,
        kind: ScimKind,
        id: &str,
        projection: Result<(Option<String>, Option<String>), ServiceError>,
    ) -> Recorded<ScimDocument> {
        let mut ex = self.begin(meta, custos_types::Action::ScimRead);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ProvisionStaff)
                .await?;
            let (attributes, excluded) = projection?;
            let projection = Projection::parse(attributes.as_deref(), excluded.as_deref());
            let doc = self.scim_document(&mut ex, base, kind, id).await?;
            Ok(ScimDocument {
                body: projection.apply(doc.body),
                etag: doc.etag,
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Creates a user (a staff entry) or a group from `body`.
    pub async fn scim_create(
        &self,
        meta: &RequestMeta,
        base: &str,
        kind: ScimKind,
        body: Result<Value, ServiceError>,
    ) -> Recorded<ScimDocument> {
        let action = match kind {
            ScimKind::User => custos_types::Action::ScimCreateUser,
            ScimKind::Group => custos_types::Action::ScimCreateGroup,
        };
        let mut ex = self.begin(meta, action);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ProvisionStaff)
                .await?;
            let body = body?;
            let _serial = self.provisioning.lock().await;
            let now = ex.at();
            let id = match kind {
                ScimKind::User => {
                    let fields = UserFields::from_body(&body).map_err(scim_error)?;
                    let id = fields.user_name.clone();
                    valid_id("staff", &id).map_err(|e| {
                        ServiceError::bad_request(
                            Code::Part(custos_scim::ScimType::InvalidValue.code()),
                            format!("userName is the staff id: {}", e.message),
                        )
                    })?;
                    if crate::staff::RESERVED_IDS.contains(&id.as_str())
                        || self.store.staff(&id).await?.is_some()
                    {
                        return Err(ServiceError::conflict("a staff entry with this userName"));
                    }
                    ex.target = Some(id.clone());
                    self.record_intent(&mut ex).await?;
                    let user = ScimUser {
                        staff_id: id.clone(),
                        display_name: fields.display_name.clone(),
                        external_id: fields.external_id.clone(),
                        active: fields.active,
                        // No group yet: no role, so held until a mapped group gives one.
                        held: true,
                        version: 1,
                        created_at: now,
                        modified_at: now,
                    };
                    let staff = StaffRecord {
                        id: id.clone(),
                        name: staff_name(&fields),
                        role: Role::Support,
                        org: self.config.company_org.clone(),
                        status: StaffStatus::Suspended,
                        created_at: now,
                    };
                    self.store
                        .insert_scim_user(&staff, &user)
                        .await
                        .map_err(|e| match e {
                            custos_store::StoreError::Conflict => {
                                ServiceError::conflict("a user with this userName")
                            }
                            e => e.into(),
                        })?;
                    self.follow_provider(&id, now).await?;
                    id
                }
                ScimKind::Group => {
                    let fields = GroupFields::from_body(&body).map_err(scim_error)?;
                    self.check_members(&fields.members).await?;
                    let id = format!("grp_{}", hex::encode(custos_crypto::random_bytes::<8>()));
                    ex.target = Some(id.clone());
                    self.record_intent(&mut ex).await?;
                    let group = ScimGroup {
                        id: id.clone(),
                        display_name: fields.display_name,
                        external_id: fields.external_id,
                        members: fields.members,
                        version: 1,
                        created_at: now,
                        modified_at: now,
                    };
                    self.store.insert_scim_group(&group).await?;
                    for member in &group.members {
                        self.follow_provider(member, now).await?;
                    }
                    id
                }
            };
            self.scim_document(&mut ex, base, kind, &id).await
        }
        .await;
        self.finish(ex, result).await
    }

    /// Replaces (`PUT`, `patch: false`) or patches (`PATCH`, `patch: true`) the user or
    /// group `target` names with `body`, if its version is the one `If-Match` names (when
    /// sent).
    pub async fn scim_update(
        &self,
        meta: &RequestMeta,
        base: &str,
        target: ScimTarget<'_>,
        patch: bool,
        body: Result<Value, ServiceError>,
    ) -> Recorded<ScimDocument> {
        let ScimTarget { kind, id, if_match } = target;
        let action = match kind {
            ScimKind::User => custos_types::Action::ScimUpdateUser,
            ScimKind::Group => custos_types::Action::ScimUpdateGroup,
        };
        let mut ex = self.begin(meta, action);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ProvisionStaff)
                .await?;
            let body = body?;
            let _serial = self.provisioning.lock().await;
            let now = ex.at();
            match kind {
                ScimKind::User => {
                    let current = self.scim_user_named(&mut ex, id).await?;
                    let before = user_fields(&current);
                    let after = if patch {
                        before.patched(&body)
                    } else {
                        UserFields::from_body(&body)
                    }
                    .map_err(scim_error)?;
                    // The body is read before the version is checked: a malformed body
                    // is a 400 whatever the version.
                    check_if_match(if_match, &user_meta(&current))?;
                    if after.user_name != current.staff_id {
                        return Err(ServiceError::bad_request(
                            Code::Part(custos_scim::ScimType::Mutability.code()),
                            "userName is the staff id and cannot change",
                        ));
                    }
                    self.record_intent(&mut ex).await?;
                    let user = ScimUser {
                        display_name: after.display_name,
                        external_id: after.external_id,
                        active: after.active,
                        version: current.version + 1,
                        modified_at: now,
                        ..current.clone()
                    };
                    if !self.store.update_scim_user(&user, current.version).await? {
                        return Err(precondition_failed());
                    }
                    self.follow_provider(id, now).await?;
                }
                ScimKind::Group => {
                    let current = self.scim_group_named(&mut ex, id).await?;
                    let before = group_fields(&current);
                    let after = if patch {
                        before.patched(&body)
                    } else {
                        GroupFields::from_body(&body)
                    }
                    .map_err(scim_error)?;
                    self.check_members(&after.members).await?;
                    check_if_match(if_match, &group_meta(&current))?;
                    self.record_intent(&mut ex).await?;
                    let group = ScimGroup {
                        display_name: after.display_name,
                        external_id: after.external_id,
                        members: after.members,
                        version: current.version + 1,
                        modified_at: now,
                        ..current.clone()
                    };
                    if !self
                        .store
                        .update_scim_group(&group, current.version)
                        .await?
                    {
                        return Err(precondition_failed());
                    }
                    let mut touched = current.members.clone();
                    touched.extend(
                        group
                            .members
                            .iter()
                            .filter(|m| !current.members.contains(m))
                            .cloned(),
                    );
                    for member in &touched {
                        self.follow_provider(member, now).await?;
                    }
                }
            }
            self.scim_document(&mut ex, base, kind, id).await
        }
        .await;
        self.finish(ex, result).await
    }

    /// Deletes the user or group `target` names. A deleted user's staff entry stays,
    /// suspended, with its credentials ended: records and evidence name it.
    pub async fn scim_delete(&self, meta: &RequestMeta, target: ScimTarget<'_>) -> Recorded<()> {
        let ScimTarget { kind, id, if_match } = target;
        let action = match kind {
            ScimKind::User => custos_types::Action::ScimDeleteUser,
            ScimKind::Group => custos_types::Action::ScimDeleteGroup,
        };
        let mut ex = self.begin(meta, action);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ProvisionStaff)
                .await?;
            let _serial = self.provisioning.lock().await;
            let now = ex.at();
            match kind {
                ScimKind::User => {
                    let current = self.scim_user_named(&mut ex, id).await?;
                    check_if_match(if_match, &user_meta(&current))?;
                    self.record_intent(&mut ex).await?;
                    let groups = self.store.scim_groups_of(id).await?;
                    if !self
                        .store
                        .delete_scim_user(id, current.version, now)
                        .await?
                    {
                        return Err(precondition_failed());
                    }
                    // The groups lost a member: their versions move on.
                    for g in groups {
                        if let Some(g) = self.store.scim_group(&g.id).await? {
                            let bumped = ScimGroup {
                                version: g.version + 1,
                                modified_at: now,
                                ..g.clone()
                            };
                            self.store.update_scim_group(&bumped, g.version).await?;
                        }
                    }
                    if let Some(staff) = self.store.staff(id).await? {
                        self.store
                            .set_staff_access(&StaffRecord {
                                status: StaffStatus::Suspended,
                                ..staff
                            })
                            .await?;
                    }
                    self.store.end_credentials(id, now).await?;
                }
                ScimKind::Group => {
                    let current = self.scim_group_named(&mut ex, id).await?;
                    check_if_match(if_match, &group_meta(&current))?;
                    self.record_intent(&mut ex).await?;
                    if !self.store.delete_scim_group(id, current.version).await? {
                        return Err(precondition_failed());
                    }
                    for member in &current.members {
                        self.follow_provider(member, now).await?;
                    }
                }
            }
            Ok(())
        }
        .await;
        self.finish(ex, result).await
    }

    /// The provisioned user `id`, named in the record once known to be one.
    async fn scim_user_named(
        &self,
        ex: &mut crate::record::Exchange,
        id: &str,
    ) -> Result<ScimUser, ServiceError> {
        if valid_id("staff", id).is_err() {
            return Err(ServiceError::not_found("user"));
        }
        let user = self
            .store
            .scim_user(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("user"))?;
        ex.target = Some(id.to_owned());
        Ok(user)
    }

    /// The group `id`, named in the record once known to be one.
    async fn scim_group_named(
        &self,
        ex: &mut crate::record::Exchange,
        id: &str,
    ) -> Result<ScimGroup, ServiceError> {
        if !valid_group_id(id) {
            return Err(ServiceError::not_found("group"));
        }
        let group = self
            .store
            .scim_group(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("group"))?;
        ex.target = Some(id.to_owned());
        Ok(group)
    }

    /// The wire form of user or group `id`, with its ETag.
    async fn scim_document(
        &self,
        ex: &mut crate::record::Exchange,
        base: &str,
        kind: ScimKind,
        id: &str,
    ) -> Result<ScimDocument, ServiceError> {
        match kind {
            ScimKind::User => {
                let u = self.scim_user_named(ex, id).await?;
                let groups: Vec<(String, String)> = self
                    .store
                    .scim_groups_of(id)
                    .await?
                    .into_iter()
                    .map(|g| (g.id, g.display_name))
                    .collect();
                let meta = user_meta(&u);
                Ok(ScimDocument {
                    body: user_fields(&u).to_json(id, &groups, &meta, base),
                    etag: Some(meta.etag()),
                })
            }
            ScimKind::Group => {
                let g = self.scim_group_named(ex, id).await?;
                let meta = group_meta(&g);
                Ok(ScimDocument {
                    body: group_fields(&g).to_json(id, &meta, base),
                    etag: Some(meta.etag()),
                })
            }
        }
    }

    /// Every member must be a provisioned user.
    async fn check_members(&self, members: &[String]) -> Result<(), ServiceError> {
        for m in members {
            if valid_id("staff", m).is_err() || self.store.scim_user(m).await?.is_none() {
                return Err(ServiceError::bad_request(
                    Code::Part(custos_scim::ScimType::InvalidValue.code()),
                    "every member must be a provisioned user",
                ));
            }
        }
        Ok(())
    }

    /// Brings staff entry `staff_id` in line with what the provider says: its name, and
    /// the role and organisation its groups map to; suspends it (ending its credentials)
    /// when the provider made it inactive or no mapped group gives it a role, and lifts
    /// a suspension provisioning made once neither holds.
    async fn follow_provider(&self, staff_id: &str, now: i64) -> Result<(), ServiceError> {
        let (Some(user), Some(staff)) = (
            self.store.scim_user(staff_id).await?,
            self.store.staff(staff_id).await?,
        ) else {
            return Ok(());
        };
        let groups = self.store.scim_groups_of(staff_id).await?;
        let mapping = self.config.scim.groups.iter().find(|m| {
            groups
                .iter()
                .any(|g| g.display_name.trim().eq_ignore_ascii_case(m.group.trim()))
        });
        let wanted = user.active != Some(false) && mapping.is_some();
        let mut next = StaffRecord {
            name: staff_name(&user_fields(&user)),
            ..staff.clone()
        };
        if let Some(m) = mapping {
            next.role = m.role;
            next.org = m
                .org
                .clone()
                .unwrap_or_else(|| self.config.company_org.clone());
        }
        let mut held = user.held;
        let mut end_credentials = false;
        match (wanted, staff.status) {
            (false, StaffStatus::Active) => {
                next.status = StaffStatus::Suspended;
                held = true;
                end_credentials = true;
            }
            (true, StaffStatus::Suspended) if user.held => {
                next.status = StaffStatus::Active;
                held = false;
            }
            _ => {}
        }
        // A new role or organisation starts from fresh console sessions: a session keeps
        // the role it was opened with. Tokens name no role, so they stay.
        let end_sessions = next.role != staff.role || next.org != staff.org;
        if next != staff {
            self.store.set_staff_access(&next).await?;
        }
        if held != user.held {
            let u = ScimUser {
                held,
                ..user.clone()
            };
            self.store.update_scim_user(&u, user.version).await?;
        }
        if end_credentials {
            self.store.end_credentials(staff_id, now).await?;
        } else if end_sessions {
            self.store.end_console_sessions(staff_id).await?;
        }
        Ok(())
    }
}

/// The groups (id, name) `staff_id` is a member of.
fn groups_of(groups: &[ScimGroup], staff_id: &str) -> Vec<(String, String)> {
    groups
        .iter()
        .filter(|g| g.members.iter().any(|m| m == staff_id))
        .map(|g| (g.id.clone(), g.display_name.clone()))
        .collect()
}

/// The staff entry's name: the display name, else the user name, cut to its limit.
fn staff_name(fields: &UserFields) -> String {
    let name = fields
        .display_name
        .as_deref()
        .unwrap_or(&fields.user_name)
        .trim();
    name.chars().take(MAX_STAFF_NAME_CHARS).collect()
}
