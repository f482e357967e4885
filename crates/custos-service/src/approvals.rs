//! Access requests with a second person's approval: what stands in for the channel when
//! no contact vouches for a case (`unverified`, `requested`). The agent asks for fields
//! on their own open case with a purpose; an approver decides with a reason; an approval
//! is a grant of those fields, on that case, to that agent, until a time. Who may approve
//! is the policy's (`company-leads-approve`, `no-self-approval`,
//! `no-approval-within-the-org`): company team leads, never the requester, never someone
//! of the requester's own organisation. Every step is a ledger entry.
//!
//! The purpose and the decision's reason are free text: sealed under the customer's data
//! key, shown only to the approvers and the requester, never recorded.

use custos_policy::{AccessRequest, Action, Resource};
use custos_store::{CaseRecord, CaseStatus, GrantDecision, GrantRecord};
use custos_types::calendar::DAY_MS;
use custos_types::{GrantKind, GrantStatus};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::auth::Caller;
use crate::case_record::case_context;
use crate::error::{Code, ErrorKind, ServiceError};
use crate::ids::IssuedId;
use crate::input::{
    FIELDS, MAX_REASON_CHARS, STEP_UP_MAX_CHARS, STEP_UP_MIN_CHARS, valid_text, valid_text_between,
};
use crate::record::{Exchange, Recorded, RequestMeta};
use crate::schema::{CaseId, CustomerId, GrantId, Id, Reason, RevealFields, StepUpReason};
use crate::vault::Opened;

/// How a new grant comes about.
enum Asked {
    /// Pending until an approver decides.
    Approval,
    /// Taken at once, until a time (unix milliseconds).
    BreakGlass { until: i64 },
}

/// Most pending requests one read of the queue lists.
const MAX_QUEUE: u32 = 200;
/// How long an approval holds unless the approver says otherwise, and at most (minutes).
const DEFAULT_GRANT_MINUTES: u32 = 30;
/// The longest grant an approver may give (minutes).
pub const MAX_GRANT_MINUTES: u32 = 240;

/// A request for fields of a customer on one's own open case.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccessRequest {
    #[schema(value_type = CustomerId)]
    customer: String,
    #[schema(value_type = CaseId)]
    case: String,
    /// The fields asked for.
    #[schema(value_type = RevealFields)]
    fields: Vec<String>,
    /// Why, for the approver (sealed; never recorded).
    #[schema(value_type = Reason)]
    purpose: String,
}

/// Break-glass: fields of a customer taken at once, on one's own open case.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBreakGlass {
    #[schema(value_type = CustomerId)]
    customer: String,
    #[schema(value_type = CaseId)]
    case: String,
    /// The fields taken.
    #[schema(value_type = RevealFields)]
    fields: Vec<String>,
    /// The emergency, in words (sealed; never recorded).
    #[schema(value_type = StepUpReason)]
    reason: String,
}

/// An approver's decision.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why (sealed; never recorded).
    #[schema(value_type = Reason)]
    reason: String,
    /// How long an approval holds, in minutes (1 to 240; default 30). Ignored on a denial.
    #[schema(minimum = 1, maximum = 240)]
    minutes: Option<u32>,
}

/// An access request as its requester and approvers see it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessRequestView {
    #[schema(value_type = GrantId)]
    id: String,
    /// `approval` or `break_glass`.
    #[schema(value_type = String, example = "approval")]
    kind: GrantKind,
    #[schema(value_type = Id)]
    requester: String,
    /// The requester's organisation.
    requester_org: String,
    #[schema(value_type = CustomerId)]
    customer: String,
    #[schema(value_type = CaseId)]
    case: String,
    /// The fields asked for.
    fields: Vec<String>,
    /// Why the requester asks.
    purpose: String,
    /// `pending`, `granted` or `denied`.
    #[schema(value_type = String, example = "pending")]
    status: GrantStatus,
    /// Until when a grant holds, unix milliseconds.
    grant_until: Option<i64>,
    created_at: i64,
}

/// The approver's queue.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccessRequestQueue {
    /// Pending requests this caller may decide, oldest first.
    requests: Vec<AccessRequestView>,
}

impl App {
    /// Asks for fields of a customer on the caller's own open case (`request_access`).
    pub async fn request_access(
        &self,
        meta: &RequestMeta,
        input: Result<NewAccessRequest, ServiceError>,
    ) -> Recorded<AccessRequestView> {
        let mut ex = self.begin(meta, custos_types::Action::RequestAccess);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            let input = input?;
            let (case, fields) = self
                .own_case_for(
                    &mut ex,
                    &caller,
                    Action::RequestAccess,
                    (&input.customer, &input.case, &input.fields),
                )
                .await?;
            valid_text("purpose", &input.purpose, MAX_REASON_CHARS)?;
            self.new_grant(
                &mut ex,
                &caller,
                &case,
                fields,
                &input.purpose,
                Asked::Approval,
            )
            .await
        }
        .await;
        self.finish(ex, result).await
    }

    /// Takes fields of a customer at once on the caller's own open case (`break_glass`):
    /// a grant for `[break_glass] minutes`, at most `per_30_days` per person, which the
    /// detector turns into a `break_glass` alert as soon as it reads the record.
    pub async fn break_glass(
        &self,
        meta: &RequestMeta,
        input: Result<NewBreakGlass, ServiceError>,
    ) -> Recorded<AccessRequestView> {
        let mut ex = self.begin(meta, custos_types::Action::BreakGlass);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            let input = input?;
            let (case, fields) = self
                .own_case_for(
                    &mut ex,
                    &caller,
                    Action::BreakGlass,
                    (&input.customer, &input.case, &input.fields),
                )
                .await?;
            valid_text_between("reason", &input.reason, STEP_UP_MIN_CHARS, STEP_UP_MAX_CHARS)?;
            let rules = &self.config.break_glass;
            let taken = self
                .store
                .count_grants_since(&caller.staff.id, GrantKind::BreakGlass, ex.at() - 30 * DAY_MS)
                .await?;
            if taken >= u64::from(rules.per_30_days) {
                return Err(ServiceError::new(
                    ErrorKind::TooManyRequests,
                    Code::BreakGlassExhausted,
                    format!(
                        "break-glass is limited to {} per person in any 30 days; ask for an approval instead",
                        rules.per_30_days
                    ),
                ));
            }
            let until = ex.at() + i64::from(rules.minutes) * 60_000;
            self.new_grant(
                &mut ex,
                &caller,
                &case,
                fields,
                &input.reason,
                Asked::BreakGlass { until },
            )
            .await
        }
        .await;
        self.finish(ex, result).await
    }

    /// What an access request and a break-glass check first: the `(customer, case,
    /// fields)` they name, and the policy's answer, which binds them to an open case of
    /// the caller's own for that customer. Returns that case and the fields in order.
    async fn own_case_for(
        &self,
        ex: &mut Exchange,
        caller: &Caller,
        action: Action,
        (customer, case, fields): (&str, &str, &[String]),
    ) -> Result<(CaseRecord, Vec<String>), ServiceError> {
        ex.name_customer(customer)?;
        ex.name_case(case)?;
        let fields = requested_fields(fields)?;
        ex.fields = fields.clone();
        let case = self.store.case(case).await?;
        self.authorize(
            ex,
            &AccessRequest {
                principal: caller.principal(),
                action,
                resource: Resource::Customer { id: customer },
                case: case.as_ref().map(case_context),
                granted: false,
            },
        )?;
        let case = case.ok_or_else(|| ServiceError::not_found("case"))?;
        Ok((case, fields))
    }

    /// Records and stores a grant of `fields` on `case` to the caller, `text` (the
    /// purpose, or the emergency) sealed under the customer's key.
    async fn new_grant(
        &self,
        ex: &mut Exchange,
        caller: &Caller,
        case: &CaseRecord,
        fields: Vec<String>,
        text: &str,
        asked: Asked,
    ) -> Result<AccessRequestView, ServiceError> {
        let customer = self
            .store
            .customer(&case.customer_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("customer"))?;
        let id = IssuedId::Grant.generate();
        ex.target = Some(id.clone());
        let purpose =
            Opened::new(&self.keyring, &customer)?.seal_text(&purpose_context(&id), text.trim())?;
        let (kind, status, decided_by, decided_at, grant_until) = match asked {
            Asked::Approval => (GrantKind::Approval, GrantStatus::Pending, None, None, None),
            Asked::BreakGlass { until } => (
                GrantKind::BreakGlass,
                GrantStatus::Granted,
                Some(caller.staff.id.clone()),
                Some(ex.at()),
                Some(until),
            ),
        };
        let grant = GrantRecord {
            id,
            kind,
            requester: caller.staff.id.clone(),
            requester_org: caller.staff.org.clone(),
            customer_id: customer.id.clone(),
            case_id: case.id.clone(),
            fields,
            purpose,
            status,
            decided_by,
            decided_at,
            decision_reason: None,
            grant_until,
            created_at: ex.at(),
        };
        self.record_intent(ex).await?;
        self.store.insert_grant(&grant).await?;
        self.grant_view(grant).await
    }

    /// The pending requests the caller may decide (`read_access_requests`).
    pub async fn access_request_queue(&self, meta: &RequestMeta) -> Recorded<AccessRequestQueue> {
        let mut ex = self.begin(meta, custos_types::Action::ReadAccessRequests);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            let mut requests = Vec::new();
            for grant in self.store.pending_grants(MAX_QUEUE).await? {
                let decision = self.policy.decide(&decide_request(&caller, &grant));
                if decision.allowed {
                    requests.push(self.grant_view(grant).await?);
                }
            }
            ex.reason = Some("queue".to_owned());
            Ok(AccessRequestQueue { requests })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Approves (a grant until a time) or denies pending request `id` (`approve_access`,
    /// `deny_access`).
    pub async fn decide_access(
        &self,
        meta: &RequestMeta,
        id: &str,
        approve: bool,
        input: Result<Decision, ServiceError>,
    ) -> Recorded<AccessRequestView> {
        let action = if approve {
            custos_types::Action::ApproveAccess
        } else {
            custos_types::Action::DenyAccess
        };
        let mut ex = self.begin(meta, action);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            IssuedId::Grant.check(id)?;
            ex.target = Some(id.to_owned());
            let grant = self
                .store
                .grant(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("access request"))?;
            ex.name_customer(&grant.customer_id)?;
            ex.name_case(&grant.case_id)?;
            self.authorize(&mut ex, &decide_request(&caller, &grant))?;
            let input = input?;
            valid_text("reason", &input.reason, MAX_REASON_CHARS)?;
            let minutes = input.minutes.unwrap_or(DEFAULT_GRANT_MINUTES);
            if approve && !(1..=MAX_GRANT_MINUTES).contains(&minutes) {
                return Err(ServiceError::bad_request(
                    Code::InvalidGrantMinutes,
                    format!("minutes must be from 1 to {MAX_GRANT_MINUTES}"),
                ));
            }
            if grant.status != GrantStatus::Pending {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::AlreadyDecided,
                    "the request is decided already",
                ));
            }
            let customer = self
                .store
                .customer(&grant.customer_id)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            let reason = Opened::new(&self.keyring, &customer)?
                .seal_text(&decision_context(id), input.reason.trim())?;
            ex.fields = grant.fields.clone();
            let (status, grant_until) = if approve {
                (
                    GrantStatus::Granted,
                    Some(ex.at() + i64::from(minutes) * 60_000),
                )
            } else {
                (GrantStatus::Denied, None)
            };
            self.record_intent(&mut ex).await?;
            let decided = self
                .store
                .decide_grant(
                    id,
                    &GrantDecision {
                        status,
                        decided_by: &caller.staff.id,
                        at: ex.at(),
                        reason: &reason,
                        grant_until,
                    },
                )
                .await?;
            if !decided {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::AlreadyDecided,
                    "the request is decided already",
                ));
            }
            self.grant_view(GrantRecord {
                status,
                grant_until,
                decided_by: Some(caller.staff.id.clone()),
                decided_at: Some(ex.at()),
                ..grant
            })
            .await
        }
        .await;
        self.finish(ex, result).await
    }

    /// `staff`'s grants in force at `now` on `case` for its customer (none once the case
    /// has closed).
    pub(crate) async fn grants_in_force_on(
        &self,
        staff: &str,
        case: &CaseRecord,
        now: i64,
    ) -> Result<Vec<GrantRecord>, ServiceError> {
        if case.status != CaseStatus::Open {
            return Ok(Vec::new());
        }
        let mut grants = self.store.grants_in_force(staff, now).await?;
        grants.retain(|g| g.case_id == case.id && g.customer_id == case.customer_id);
        Ok(grants)
    }

    /// `staff`'s grants in force at `now`, as `GET /v1/me` lists them.
    pub(crate) async fn grants_of(
        &self,
        staff: &str,
        now: i64,
    ) -> Result<Vec<AccessRequestView>, ServiceError> {
        let mut views = Vec::new();
        for grant in self.store.grants_in_force(staff, now).await? {
            views.push(self.grant_view(grant).await?);
        }
        Ok(views)
    }

    async fn grant_view(&self, grant: GrantRecord) -> Result<AccessRequestView, ServiceError> {
        let customer = self
            .store
            .customer(&grant.customer_id)
            .await?
            .ok_or_else(ServiceError::internal)?;
        let purpose = Opened::new(&self.keyring, &customer)?
            .open_text(&purpose_context(&grant.id), &grant.purpose)?;
        Ok(AccessRequestView {
            purpose: purpose.as_str().to_owned(),
            id: grant.id,
            kind: grant.kind,
            requester: grant.requester,
            requester_org: grant.requester_org,
            customer: grant.customer_id,
            case: grant.case_id,
            fields: grant.fields,
            status: grant.status,
            grant_until: grant.grant_until,
            created_at: grant.created_at,
        })
    }
}

/// The Cedar question "may `caller` decide `grant`".
fn decide_request<'a>(caller: &'a Caller, grant: &'a GrantRecord) -> AccessRequest<'a> {
    AccessRequest {
        principal: caller.principal(),
        action: Action::DecideAccess,
        resource: Resource::AccessRequest {
            id: &grant.id,
            requester: &grant.requester,
            requester_org: &grant.requester_org,
        },
        case: None,
        granted: false,
    }
}

/// The fields of a request: one or more of the personal fields, each once, in the
/// order of [`FIELDS`].
fn requested_fields(fields: &[String]) -> Result<Vec<String>, ServiceError> {
    if fields.is_empty() || fields.iter().any(|f| !FIELDS.contains(&f.as_str())) {
        return Err(ServiceError::bad_request(
            Code::InvalidField,
            format!("fields must be one or more of {}", FIELDS.join(", ")),
        ));
    }
    Ok(FIELDS
        .iter()
        .filter(|f| fields.iter().any(|g| g == *f))
        .map(|f| (*f).to_owned())
        .collect())
}

/// What a request's sealed purpose is bound to (with its customer).
fn purpose_context(id: &str) -> String {
    format!("access_request_purpose/{id}")
}

/// What a decision's sealed reason is bound to (with its customer).
fn decision_context(id: &str) -> String {
    format!("access_request_decision/{id}")
}
