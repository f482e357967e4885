//! Staff and service accounts: creation, tokens, suspension (admins; suspension also
//! security analysts). Each act is recorded before it happens.

use crate::error::Code;
use custos_policy::Action;
use custos_store::{StaffRecord, StaffStatus};

use custos_types::clock::now_millis;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, ServiceError};
use crate::input::{MAX_STAFF_NAME_CHARS, valid_id, valid_text};
use crate::record::{Recorded, RequestMeta};
use crate::schema::{Id, Role, StaffName};
use crate::{App, auth};

/// Ids the server's own ledger records use as their actor; no staff entry may take one.
pub(crate) const RESERVED_IDS: [&str; 3] = ["system", "detector", "-"];

/// A new staff entry (a person or, with role `integration`, a service account).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    /// Not one of the ids the server's own records use (`system`, `detector`, `-`).
    #[schema(value_type = Id)]
    id: String,
    #[schema(value_type = StaffName)]
    name: String,
    #[schema(value_type = Role)]
    role: String,
    /// The organisation: the company's own, or a partner company's.
    #[schema(value_type = Id)]
    org: String,
}

/// The new staff entry.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedStaff {
    #[schema(value_type = Id)]
    id: String,
}

/// A bearer token just issued.
#[derive(Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// Id to revoke the token with.
    #[schema(pattern = "^tok_[0-9a-f]{16}$")]
    token_id: String,
    /// The bearer token; shown once, stored only as a hash.
    #[schema(pattern = "^cst_[A-Za-z0-9_-]{43}$")]
    token: String,
}

/// A revoked token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Revoked {
    #[schema(value_type = Id)]
    id: String,
    /// Always true.
    revoked: bool,
}

/// A staff entry after its status changed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusChange {
    #[schema(value_type = Id)]
    id: String,
    #[schema(value_type = crate::schema::StaffStatus)]
    status: String,
}

impl App {
    /// Creates a staff entry (`ManageStaff`); `request` is the body as decoded by the
    /// transport.
    pub async fn create_staff(
        &self,
        meta: &RequestMeta,
        request: Result<NewStaff, ServiceError>,
    ) -> Recorded<CreatedStaff> {
        let mut ex = self.begin(meta, custos_types::Action::CreateStaff);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ManageStaff)
                .await?;
            let input = request?;
            valid_id("staff", &input.id)?;
            ex.target = Some(input.id.clone());
            if RESERVED_IDS.contains(&input.id.as_str()) {
                // Well formed, and taken: by the server itself.
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::ReservedId,
                    format!("staff ids {} are the server's own", RESERVED_IDS.join(", ")),
                ));
            }
            valid_id("org", &input.org)?;
            valid_text("name", &input.name, MAX_STAFF_NAME_CHARS)?;
            let role: custos_types::Role = input.role.parse().map_err(|_| {
                let roles: Vec<&str> = custos_types::Role::ALL.iter().map(|r| r.as_str()).collect();
                ServiceError::bad_request(
                    Code::InvalidRole,
                    format!("role must be one of {}", roles.join(", ")),
                )
            })?;
            self.record_intent(&mut ex).await?;
            self.store
                .insert_staff(&StaffRecord {
                    id: input.id.clone(),
                    name: input.name.trim().to_owned(),
                    role,
                    org: input.org,
                    status: StaffStatus::Active,
                    created_at: now_millis(),
                })
                .await?;
            Ok(CreatedStaff { id: input.id })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Issues a bearer token for staff entry `id` (`ManageStaff`).
    pub async fn issue_token(&self, meta: &RequestMeta, id: &str) -> Recorded<IssuedToken> {
        let mut ex = self.begin(meta, custos_types::Action::IssueToken);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ManageStaff)
                .await?;
            valid_id("staff", id)?;
            // Named in the record only once it is known to be a staff id, not any value.
            if self.store.staff(id).await?.is_none() {
                return Err(ServiceError::not_found("staff"));
            }
            ex.target = Some(id.to_owned());
            self.record_intent(&mut ex).await?;
            let (token_id, token) = auth::issue_token(&self.store, id).await?;
            Ok(IssuedToken { token_id, token })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Revokes token `id` (`ManageStaff`); it stops working on the next request.
    pub async fn revoke_token(&self, meta: &RequestMeta, id: &str) -> Recorded<Revoked> {
        let mut ex = self.begin(meta, custos_types::Action::RevokeToken);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ManageStaff)
                .await?;
            valid_id("token", id)?;
            ex.target = Some(id.to_owned());
            self.record_intent(&mut ex).await?;
            if !self.store.revoke_token(id, ex.at()).await? {
                return Err(ServiceError::not_found("active token"));
            }
            Ok(Revoked {
                id: id.to_owned(),
                revoked: true,
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Suspends staff entry `id` (`SuspendStaff`): denied everything from their next
    /// request on.
    pub async fn suspend_staff(&self, meta: &RequestMeta, id: &str) -> Recorded<StatusChange> {
        self.set_staff_status(
            meta,
            id,
            StaffStatus::Suspended,
            custos_types::Action::SuspendStaff,
        )
        .await
    }

    /// Makes a suspended staff entry `id` active again (`SuspendStaff`).
    pub async fn resume_staff(&self, meta: &RequestMeta, id: &str) -> Recorded<StatusChange> {
        self.set_staff_status(
            meta,
            id,
            StaffStatus::Active,
            custos_types::Action::ResumeStaff,
        )
        .await
    }

    /// Sets the status of staff entry `id`, recorded as `action`.
    async fn set_staff_status(
        &self,
        meta: &RequestMeta,
        id: &str,
        status: StaffStatus,
        action: custos_types::Action,
    ) -> Recorded<StatusChange> {
        let mut ex = self.begin(meta, action);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::SuspendStaff)
                .await?;
            valid_id("staff", id)?;
            // Named in the record only once it is known to be a staff id, not any value.
            if self.store.staff(id).await?.is_none() {
                return Err(ServiceError::not_found("staff"));
            }
            ex.target = Some(id.to_owned());
            // A person the identity provider deprovisioned is resumed there, not here.
            if status == StaffStatus::Active && self.store.held_by_provisioning(id).await? {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::ProvisioningHolds,
                    "the identity provider holds this person suspended (inactive or in no mapped group); resume them there",
                ));
            }
            self.record_intent(&mut ex).await?;
            if !self.store.set_staff_status(id, status).await? {
                return Err(ServiceError::not_found("staff"));
            }
            // A person's suspension outlasts whatever the provider says next.
            if status == StaffStatus::Suspended {
                self.store.release_provisioning_hold(id).await?;
            }
            Ok(StatusChange {
                id: id.to_owned(),
                status: status.as_str().to_owned(),
            })
        }
        .await;
        self.finish(ex, result).await
    }
}
