//! Reading access records (security analysts, admins) and the caller's own situation.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_detector::RestrictionKind;
use custos_policy::Action;
use custos_store::{AccessFilter, AccessRecord, StaffStatus};
use serde::{Deserialize, Serialize};

use super::doc::{CaseId, Channel, CustomerId, Id, Role};
use super::json;
use crate::exchange::{RequestInfo, parse_query, valid_id};
use crate::quota::Remaining;
use crate::vault::Opened;
use crate::{ApiError, Quota, SharedApp};

/// Most records one call returns.
const MAX_RECORDS: u32 = 10_000;

/// Filters; all optional.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct AccessQuery {
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

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct AccessList {
    #[schema(value_type = Vec<Object>)]
    records: Vec<AccessRecord>,
}

/// Access records, oldest first (security_analyst, admin).
#[utoipa::path(get, path = "/v1/access", tag = "access", params(AccessQuery),
    responses(
        (status = 200, body = AccessList, description = "the records"),
        (status = 400, description = "`invalid_query`: an unknown or malformed filter; `invalid_id`: a malformed staff or customer id"),
        (status = 403, description = "`forbidden`: only security analysts and admins read access records")),
    security(("bearer" = [])))]
pub(super) async fn list_access(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::ReadAccess);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ReadAccess)
            .await?;
        let q: AccessQuery = parse_query(
            query,
            "filters are staff, customer, since, after, limit (numbers where numeric)",
        )?;
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
            limit: super::bounded("limit", q.limit.unwrap_or(MAX_RECORDS), MAX_RECORDS)?,
        };
        let records = app.access.read(&filter).await.map_err(|e| {
            tracing::error!(error = %e, "reading access records failed");
            ApiError::ledger_unavailable()
        })?;
        Ok(json(StatusCode::OK, AccessList { records }))
    }
    .await;
    app.finish(ex, result).await
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct OpenCase {
    #[schema(value_type = CaseId)]
    id: String,
    #[schema(value_type = CustomerId)]
    customer: String,
    #[schema(value_type = Channel)]
    channel: String,
    /// Why the case was opened, as the CRM wrote it: what tells one case from another.
    reason: String,
    created_at: i64,
}

/// A restriction the detector imposed on the caller after a risk alert.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Restricted {
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

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Me {
    #[schema(value_type = Id)]
    id: String,
    name: String,
    #[schema(value_type = Role)]
    role: String,
    #[schema(value_type = Id)]
    org: String,
    #[schema(value_type = super::doc::StaffStatus)]
    status: String,
    /// The caller's ceilings now (lowered while `restricted` says so).
    limits: Quota,
    /// What is left of each ceiling now.
    remaining: Remaining,
    /// The restriction in force on the caller after a risk alert, if any.
    restricted: Option<Restricted>,
    /// The caller's open cases, newest first (at most 100).
    open_cases: Vec<OpenCase>,
}

/// The caller: identity, remaining quotas and open cases. A suspended person is told
/// only that: 403 `forbidden` (policy `suspended`), nothing about their cases or customers.
#[utoipa::path(get, path = "/v1/me", tag = "access",
    responses(
        (status = 200, body = Me, description = "the caller"),
        (status = 403, description = "`forbidden` (policy `suspended`): the caller is suspended")),
    security(("bearer" = [])))]
pub(super) async fn me(State(app): State<SharedApp>, info: RequestInfo) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::Me);
    let result = async {
        let caller = app.authenticate(&info, &mut ex).await?;
        let staff = &caller.staff;
        if staff.status == StaffStatus::Suspended {
            return Err(ApiError::forbidden("suspended"));
        }
        let limits = app.config.quota_for(staff.role.as_str());
        let mut open_cases = Vec::new();
        for case in app.store.open_cases(&staff.id, None, 100).await? {
            // A case names an existing customer (the store refuses one that does not).
            let customer = app
                .store
                .customer(&case.customer_id)
                .await?
                .ok_or_else(ApiError::internal)?;
            let reason = super::cases::reason_of(&Opened::new(&app.keyring, &customer)?, &case)?;
            open_cases.push(OpenCase {
                id: case.id,
                customer: case.customer_id,
                channel: case.channel,
                reason,
                created_at: case.created_at,
            });
        }
        Ok(json(
            StatusCode::OK,
            Me {
                id: staff.id.clone(),
                name: staff.name.clone(),
                role: staff.role.as_str().to_owned(),
                org: staff.org.clone(),
                status: staff.status.as_str().to_owned(),
                limits: app.quotas.effective(&staff.id, &limits, ex.at()).0,
                remaining: app.quotas.remaining(&staff.id, &limits, ex.at()),
                restricted: app.quotas.restriction(&staff.id, ex.at()).map(|active| {
                    let note = match active.kind {
                        RestrictionKind::LowerQuota => format!(
                            "a risk alert lowered your quotas to {}% of their limits; every reveal needs step_up_reason (at least 20 characters saying why)",
                            (app.config.restrictions.lower_quota_share * 100.0).round()
                        ),
                        RestrictionKind::StepUp => "a risk alert requires step_up_reason (at least 20 characters saying why) on every reveal".to_owned(),
                    };
                    Restricted {
                        kind: active.kind.as_str().to_owned(),
                        until: active.until_ms,
                        quota_share: app.restriction_details(active).quota_share,
                        note,
                    }
                }),
                open_cases,
            },
        ))
    }
    .await;
    app.finish(ex, result).await
}
