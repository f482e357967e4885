//! Reading access records (security analysts, admins) and the caller's own situation:
//! identity, ceilings, restriction and open cases.

use custos_detector::RestrictionKind;
use custos_policy::Action;
use custos_store::{AccessFilter, AccessRecord, StaffStatus};
use serde::{Deserialize, Serialize};

use crate::input::{bounded, valid_id};
use crate::quota::{Active, Remaining};
use crate::record::{Recorded, RequestMeta};
use crate::schema::{CaseId, Channel, CustomerId, Id, Role};
use crate::vault::Opened;
use crate::{App, Quota, ServiceError};

/// Most records one call returns.
const MAX_RECORDS: u32 = 10_000;

/// Most open cases [`App::me`] lists.
const MAX_OPEN_CASES: u32 = 100;

/// Filters on access records; all optional.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    /// Staff id.
    #[param(value_type = Option<Id>)]
    staff: Option<String>,
    /// Customer id.
    #[param(value_type = Option<CustomerId>)]
    customer: Option<String>,
    /// Unix milliseconds; records at or after.
    since: Option<i64>,
    /// Sequence number; records after it (for paging).
    after: Option<i64>,
    /// At most this many, 1 to 10,000 (default 10,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<u32>,
}

/// Access records, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessList {
    #[schema(value_type = Vec<Object>)]
    records: Vec<AccessRecord>,
}

/// One of the caller's open cases.
#[derive(Serialize, utoipa::ToSchema)]
pub struct OpenCase {
    #[schema(value_type = CaseId)]
    id: String,
    #[schema(value_type = CustomerId)]
    customer: String,
    #[schema(value_type = Channel)]
    channel: custos_types::Channel,
    /// Why the case was opened, as the CRM wrote it: what tells one case from another.
    reason: String,
    created_at: i64,
    /// Who vouches that the customer is in contact: fields reveal only on `verified`
    /// cases under the default policy.
    #[schema(value_type = String, example = "verified")]
    provenance: custos_types::Provenance,
}

/// A restriction the detector imposed on the caller after a risk alert.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Restricted {
    /// `lower_quota` (quotas lowered, reveals need `step_up_reason`) or `step_up`
    /// (reveals need `step_up_reason`).
    #[schema(pattern = "^(lower_quota|step_up)$")]
    kind: String,
    /// When it ends, unix milliseconds (security may lift it earlier).
    until: i64,
    /// The share of each limit left (0 to 1), for `lower_quota`.
    quota_share: Option<f64>,
    /// What it means, in plain words.
    note: String,
}

/// The caller: identity, ceilings, what is left of them, restriction and open cases.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    #[schema(value_type = Id)]
    id: String,
    name: String,
    #[schema(value_type = Role)]
    #[schema(value_type = crate::schema::Role)]
    role: custos_types::Role,
    #[schema(value_type = Id)]
    org: String,
    #[schema(value_type = crate::schema::StaffStatus)]
    status: String,
    /// The caller's ceilings now (lowered while `restricted` says so).
    limits: Quota,
    /// What is left of each ceiling now.
    remaining: Remaining,
    /// The restriction in force on the caller after a risk alert, if any.
    restricted: Option<Restricted>,
    /// The caller's open cases, newest first (at most 100).
    open_cases: Vec<OpenCase>,
    /// Fields approved to the caller (or taken by break-glass) and still in force.
    grants: Vec<crate::approvals::AccessRequestView>,
}

impl App {
    /// Access records matching `query`, oldest first (`read_access`: security analysts,
    /// admins); `query` is the filters as decoded by the transport.
    pub async fn read_access(
        &self,
        meta: &RequestMeta,
        query: Result<AccessQuery, ServiceError>,
    ) -> Recorded<AccessList> {
        let mut ex = self.begin(meta, custos_types::Action::ReadAccess);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ReadAccess)
                .await?;
            let q = query?;
            if let Some(s) = &q.staff {
                valid_id("staff", s)?;
            }
            if let Some(c) = &q.customer {
                ex.name_customer(c)?;
            }
            let filter = AccessFilter {
                staff_id: q.staff,
                customer_id: q.customer,
                since: q.since,
                after_seq: q.after,
                decision: None,
                limit: bounded("limit", q.limit.unwrap_or(MAX_RECORDS), MAX_RECORDS)?,
            };
            let records = self.access.read(&filter).await.map_err(|e| {
                tracing::error!(error = %e, "reading access records failed");
                ServiceError::ledger_unavailable()
            })?;
            Ok(AccessList { records })
        }
        .await;
        self.finish(ex, result).await
    }

    /// The caller's own situation. A suspended person is told only that: `forbidden`
    /// (policy `suspended`), nothing about their cases or customers.
    pub async fn me(&self, meta: &RequestMeta) -> Recorded<Me> {
        let mut ex = self.begin(meta, custos_types::Action::Me);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            let staff = &caller.staff;
            if staff.status == StaffStatus::Suspended {
                return Err(ServiceError::forbidden("suspended"));
            }
            let limits = self.config.quota_for(staff.role);
            let mut open_cases = Vec::new();
            for case in self
                .store
                .open_cases(&staff.id, None, MAX_OPEN_CASES)
                .await?
            {
                // A case names an existing customer (the store refuses one that does not).
                let customer = self
                    .store
                    .customer(&case.customer_id)
                    .await?
                    .ok_or_else(ServiceError::internal)?;
                let reason =
                    crate::case_record::reason_of(&Opened::new(&self.keyring, &customer)?, &case)?;
                open_cases.push(OpenCase {
                    id: case.id,
                    customer: case.customer_id,
                    channel: case.channel,
                    reason,
                    created_at: case.created_at,
                    provenance: case.provenance,
                });
            }
            Ok(Me {
                id: staff.id.clone(),
                name: staff.name.clone(),
                role: staff.role,
                org: staff.org.clone(),
                status: staff.status.as_str().to_owned(),
                limits: self.quotas.effective(&staff.id, &limits, ex.at()).0,
                remaining: self.quotas.remaining(&staff.id, &limits, ex.at()).await?,
                restricted: self
                    .quotas
                    .restriction(&staff.id, ex.at())
                    .map(|active| self.restricted(active)),
                open_cases,
                grants: self.grants_of(&staff.id, ex.at()).await?,
            })
        }
        .await;
        self.finish(ex, result).await
    }

    /// The restriction `active` as the caller is told of it.
    fn restricted(&self, active: Active) -> Restricted {
        let note = match active.kind {
            RestrictionKind::LowerQuota => format!(
                "a risk alert lowered your quotas to {}% of their limits; every reveal needs step_up_reason (at least 20 characters saying why)",
                (self.config.restrictions.lower_quota_share * 100.0).round()
            ),
            RestrictionKind::StepUp => "a risk alert requires step_up_reason (at least 20 characters saying why) on every reveal".to_owned(),
        };
        Restricted {
            kind: active.kind.as_str().to_owned(),
            until: active.until_ms,
            quota_share: self.restriction_details(active).quota_share,
            note,
        }
    }
}
