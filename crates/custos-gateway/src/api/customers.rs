//! Customers: creation and import (sealed on the way in), the masked view, field reveals
//! and search through blind indexes.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use custos_crypto::IndexKind;
use custos_policy::{AccessRequest, Action, CaseContext, Resource};
use custos_store::{CanaryMark, CaseStatus, CustomerRecord, IndexColumn};
use serde::{Deserialize, Serialize};

use super::doc::{
    CaseId, CustomerId, NdjsonCustomers, Reason, RevealFields, RevealedFields, SearchKey,
    StepUpReason,
};
use super::json;
use crate::exchange::{
    Exchange, MAX_REASON_CHARS, RequestInfo, json_error, parse_json, parse_query, read_body,
    valid_text, valid_text_between,
};
use crate::quota::Charge;
use crate::vault::{self, FIELDS, MaskedCustomer, NewCustomer, Opened};
use crate::{ApiError, App, SharedApp, auth::Caller};

/// Header naming the case a view is for.
pub const CASE_HEADER: &str = "x-custos-case";

/// A well-formed customer id that is never issued (all zero): what a search with no
/// match looks up open cases for, so that a miss costs what a hit does.
const NO_CUSTOMER: &str = "cus_0000000000000000";

/// Most customers one import request may carry.
pub(crate) const MAX_IMPORT: usize = 100_000;

/// Shortest accepted step-up justification: a sentence, not a token word.
pub(crate) const STEP_UP_MIN_CHARS: usize = 20;

/// Longest accepted step-up justification.
pub(crate) const STEP_UP_MAX_CHARS: usize = 1000;

/// The new customer.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = CreatedCustomer)]
pub(super) struct Created {
    #[schema(value_type = CustomerId)]
    id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Imported {
    imported: usize,
    /// The new customers' ids, in input order.
    #[schema(value_type = Vec<CustomerId>)]
    ids: Vec<String>,
}

/// A reveal: which fields, for which case, and why.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RevealRequest {
    /// Each field once.
    #[schema(value_type = RevealFields)]
    fields: Vec<String>,
    /// An open case assigned to the caller for this customer.
    #[schema(value_type = CaseId)]
    case: String,
    /// Why the agent needs the full values (checked, not stored: it may itself hold
    /// personal data).
    #[schema(value_type = Reason)]
    reason: String,
    /// Required while a risk alert restricts the caller (`GET /v1/me` says so under
    /// `restricted`): why this reveal is needed despite it, at least 20 characters.
    /// Checked, not stored (it may hold personal data); the record says one was given
    /// (reason code `step_up:<policy>`).
    #[schema(value_type = Option<StepUpReason>)]
    step_up_reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Revealed {
    /// Field name → full value (null if the customer has no such field).
    #[schema(value_type = RevealedFields)]
    fields: serde_json::Map<String, serde_json::Value>,
}

/// Exactly one of the three keys (described as the `SearchKey` object).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchParams {
    phone: Option<String>,
    email: Option<String>,
    account_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct SearchResults {
    results: Vec<MaskedCustomer>,
}

/// Create one customer (admin, integration).
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = NewCustomer,
    responses(
        (status = 201, body = Created, description = "created",
            links(("Accesses" = (operation_id = "accesses", parameters(("id" = "$response.body#/id")))),
                  ("Link" = (operation_id = "issue_link", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "a field is not valid (`invalid_text`, `control_character`, `invalid_phone`, `invalid_email`, `invalid_account_id`) or the body is not this JSON (`malformed_json`, `invalid_body`, `unknown_field`)"),
        (status = 403, description = "`forbidden`: only admins and integrations create customers")),
    security(("bearer" = [])))]
pub(super) async fn create_customer(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::CreateCustomer);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::CreateCustomer)
            .await?;
        let id = crate::ids::new_customer_id();
        let input: NewCustomer = parse_json(&read_body(body, app.config.body_limit_bytes).await?)?;
        let record = vault::seal_customer(&app.keyring, &app.config.default_region, &id, &input)?;
        ex.name_customer(&id)?;
        app.record_intent(&mut ex).await?;
        app.store
            .insert_customers(std::slice::from_ref(&record))
            .await?;
        Ok(json(StatusCode::CREATED, Created { id }))
    }
    .await;
    app.finish(ex, result).await
}

/// Import customers as NDJSON, one per line; all or nothing (admin).
#[utoipa::path(post, path = "/v1/customers/import", tag = "customers",
    request_body(content = NdjsonCustomers, content_type = "application/x-ndjson",
        description = "One new customer per line (blank lines are skipped), at least one."),
    responses(
        (status = 200, body = Imported, description = "all imported"),
        (status = 400, description = "a line is not a valid customer (the message names it), none is given (`empty_import`), or there are too many (`too_many_records`)"),
        (status = 403, description = "`forbidden`: only admins import")),
    security(("bearer" = [])))]
pub(super) async fn import(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::ImportCustomers);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ImportCustomers)
            .await?;
        let records = parse_import(&app, body).await?;
        app.record_intent(&mut ex).await?;
        insert_all(&app, records).await
    }
    .await;
    app.finish(ex, result).await
}

/// Stores sealed customers (after their record is durable) and answers with their ids.
async fn insert_all(app: &App, records: Vec<CustomerRecord>) -> Result<Response, ApiError> {
    app.store.insert_customers(&records).await?;
    let ids: Vec<String> = records.into_iter().map(|r| r.id).collect();
    Ok(json(
        StatusCode::OK,
        Imported {
            imported: ids.len(),
            ids,
        },
    ))
}

/// Reads an NDJSON body of new customers and seals each (all or nothing); errors name
/// the line.
async fn parse_import(app: &App, body: Body) -> Result<Vec<CustomerRecord>, ApiError> {
    let bytes = read_body(body, app.config.import_limit_bytes).await?;
    let mut records = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if records.len() == MAX_IMPORT {
            return Err(ApiError::bad_request(
                "too_many_records",
                format!("at most {MAX_IMPORT} customers per import"),
            ));
        }
        let input: NewCustomer =
            serde_json::from_slice(line).map_err(|e| json_error(&e, Some(n + 1)))?;
        let id = crate::ids::new_customer_id();
        let record = vault::seal_customer(&app.keyring, &app.config.default_region, &id, &input)
            .map_err(|e| ApiError {
                message: format!("line {}: {}", n + 1, e.message),
                ..e
            })?;
        records.push(record);
    }
    if records.is_empty() {
        return Err(ApiError::bad_request(
            "empty_import",
            "the body holds no customer: send one JSON object per line",
        ));
    }
    Ok(records)
}

/// Plant canary customers (admin): NDJSON like an import. They are stored exactly like
/// other customers; only a keyed mark, which the detector reads, says what they are. Any
/// later view, reveal or search hit on one suspends the person, except the person Custos
/// allocated it to (`[canaries] allocation_rate`). Keep the returned ids secret: the CRM
/// must never open a case for them.
#[utoipa::path(post, path = "/v1/canaries", tag = "customers",
    request_body(content = NdjsonCustomers, content_type = "application/x-ndjson",
        description = "One canary per line, as in an import."),
    responses(
        (status = 200, body = Imported, description = "all planted"),
        (status = 400, description = "a line is not a valid customer (the message names it), none is given (`empty_import`), or there are too many (`too_many_records`)"),
        (status = 403, description = "`forbidden`: only admins plant canaries"),
        (status = 409, description = "`canary_collision`: a canary shares a phone, email or account id with a stored customer")),
    security(("bearer" = [])))]
pub(super) async fn plant_canaries(
    State(app): State<SharedApp>,
    info: RequestInfo,
    body: Body,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::PlantCanaries);
    let result = async {
        app.authorize_vault(&info, &mut ex, Action::ImportCustomers)
            .await?;
        let records = parse_import(&app, body).await?;
        // A canary sharing a phone, email or account id with a real customer would turn
        // an honest search for that customer into a canary hit.
        for record in &records {
            let indexes = [
                (IndexColumn::Phone, &record.phone_idx),
                (IndexColumn::Email, &record.email_idx),
                (IndexColumn::AccountId, &record.account_idx),
            ];
            for (column, index) in indexes {
                let found = match index {
                    Some(index) => app.store.customers_by_index(column, index, 1).await?,
                    None => Vec::new(),
                };
                if let Some(existing) = found.first() {
                    // The answer says a value belongs to a customer: the record says whose,
                    // so the question is traceable like a search.
                    ex.name_customer(&existing.id)?;
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "canary_collision",
                        "a canary shares a phone, email or account id with a stored customer; generate it anew",
                    ));
                }
            }
        }
        // Marks first: a mark without its customer is harmless, a canary without its
        // mark would be an unguarded fake record.
        // Each with its id sealed, so the server can later allocate it (crate::allocation).
        let marks = records
            .iter()
            .map(|r| {
                Ok(CanaryMark {
                    mark: app.keyring.canary_mark(&r.id),
                    sealed_id: Some(
                        app.keyring
                            .seal_canary_id(&r.id)
                            .map_err(|_| ApiError::internal())?,
                    ),
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        app.store.insert_canary_marks(&marks).await?;
        // The record comes after the marks (the detector reloads them when it reads it)
        // and before the customers exist (no canary without its record).
        app.record_intent(&mut ex).await?;
        insert_all(&app, records).await
    }
    .await;
    app.finish(ex, result).await
}

impl App {
    /// Refuses a reveal without a step-up justification while a `step_up` or
    /// `lower_quota` restriction is in force on the caller at the request's time.
    fn require_step_up(
        &self,
        ex: &Exchange,
        caller: &Caller,
        justified: bool,
    ) -> Result<(), ApiError> {
        let Some(active) = self.quotas.restriction(&caller.staff.id, ex.at()) else {
            return Ok(());
        };
        if justified {
            return Ok(());
        }
        let lowered = match active.kind {
            custos_detector::RestrictionKind::LowerQuota => " and your quotas are lowered",
            custos_detector::RestrictionKind::StepUp => "",
        };
        Err(ApiError {
            details: Some(Box::new(self.restriction_details(active))),
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                "step_up_required",
                format!(
                    "a risk alert on your recent access requires a step-up justification for every reveal until {} (unix ms){lowered}: send step_up_reason with the request, {STEP_UP_MIN_CHARS} to {STEP_UP_MAX_CHARS} characters saying why this reveal is needed (it is checked, not stored; security reviews the alert)",
                    active.until_ms
                ),
            )
        })
    }

    /// Loads the case a request names and asks Cedar whether `action` on `customer` is
    /// allowed with it. An unknown case id gives no case context (and so a denial).
    async fn authorize_with_case(
        &self,
        ex: &mut Exchange,
        caller: &Caller,
        action: Action,
        customer: &str,
        case_id: Option<&str>,
    ) -> Result<(), ApiError> {
        let case = match case_id {
            Some(id) => {
                ex.name_case(id)?;
                self.store.case(id).await?
            }
            None => None,
        };
        let result = self.authorize(
            ex,
            &AccessRequest {
                principal: caller.principal(),
                action,
                resource: Resource::Customer { id: customer },
                case: case.as_ref().map(|c| CaseContext {
                    id: &c.id,
                    customer: &c.customer_id,
                    assignee: &c.assignee,
                    open: c.status == CaseStatus::Open,
                }),
            },
        );
        result.map_err(|e| ApiError {
            message: format!(
                "{}; name an open case assigned to you for this customer in {CASE_HEADER} (ask the CRM to open one)",
                e.message
            ),
            ..e
        })
    }
}

/// The masked view of a customer, for the case named in `X-Custos-Case`.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    params(("id" = CustomerId, Path, description = "customer id"),
           ("X-Custos-Case" = CaseId, Header, description = "an open case assigned to the caller for this customer")),
    responses(
        (status = 200, body = MaskedCustomer, description = "the masked view"),
        (status = 403, description = "`forbidden`: the policy refuses (no open case of the caller for this customer, a suspended caller, a role that serves no customers)"),
        (status = 404, description = "`not_found`: no such customer"),
        (status = 429, description = "`quota_exceeded`: a quota of the caller is used up")),
    security(("bearer" = [])))]
pub(super) async fn view(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::View);
    let result = async {
        let caller = app.authenticate(&info, &mut ex).await?;
        ex.name_customer(&id)?;
        let case = info
            .headers
            .get(CASE_HEADER)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::bad_request("invalid_id", "case id must be ASCII"))
            })
            .transpose()?;
        app.authorize_with_case(&mut ex, &caller, Action::View, &id, case)
            .await?;
        app.charge(
            &ex,
            &caller,
            Charge::Customer {
                id: &id,
                reveals: 0,
            },
        )?;
        let record = app
            .store
            .customer(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("customer"))?;
        let masked = Opened::new(&app.keyring, &record)?.masked()?;
        Ok(json(StatusCode::OK, masked))
    }
    .await;
    app.finish(ex, result).await
}

/// Reveal named fields in full, for a case, with a reason; each field is its own Cedar action.
#[utoipa::path(post, path = "/v1/customers/{id}/reveal", tag = "customers",
    params(("id" = CustomerId, Path, description = "customer id")),
    request_body = RevealRequest,
    responses(
        (status = 200, body = Revealed, description = "the fields in full"),
        (status = 400, description = "a field is not valid (`invalid_field`, `invalid_id`, `invalid_text`, `control_character`) or the body is not this JSON"),
        (status = 403, description = "`forbidden`: the policy refuses a field or the case; `step_up_required`: a risk alert requires `step_up_reason`"),
        (status = 404, description = "`not_found`: no such customer"),
        (status = 429, description = "`quota_exceeded`: a quota of the caller is used up")),
    security(("bearer" = [])))]
pub(super) async fn reveal(
    State(app): State<SharedApp>,
    info: RequestInfo,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::Reveal);
    let result = async {
        let caller = app.authenticate(&info, &mut ex).await?;
        ex.name_customer(&id)?;
        let request: RevealRequest =
            parse_json(&read_body(body, app.config.body_limit_bytes).await?)?;
        let fields: BTreeSet<&str> = request.fields.iter().map(String::as_str).collect();
        if fields.is_empty() || fields.len() != request.fields.len() {
            return Err(ApiError::bad_request(
                "invalid_field",
                "name each field once, at least one",
            ));
        }
        let actions = request
            .fields
            .iter()
            .map(|f| Action::reveal(f))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_field",
                    format!(
                        "fields must be among {}; free attributes are listed by name only: \
                         no Cedar action reveals them, so their values never leave the vault",
                        FIELDS.join(", ")
                    ),
                )
            })?;
        ex.fields = request.fields.clone();
        valid_text("reason", &request.reason, MAX_REASON_CHARS)?;
        if let Some(text) = &request.step_up_reason {
            valid_text_between("step_up_reason", text, STEP_UP_MIN_CHARS, STEP_UP_MAX_CHARS)?;
        }
        for action in actions {
            app.authorize_with_case(&mut ex, &caller, action, &id, Some(&request.case))
                .await?;
        }
        // After the policy (a reveal it refuses is refused for that reason), before the
        // quota (a refused reveal takes nothing from it).
        app.require_step_up(&ex, &caller, request.step_up_reason.is_some())?;
        if request.step_up_reason.is_some() {
            // The justification stays out of the ledger; that one was given goes in.
            ex.reason = ex
                .reason
                .take()
                .map(|policy| custos_types::facts::step_up_reason(&policy));
        }
        let count = u32::try_from(request.fields.len()).unwrap_or(u32::MAX);
        app.charge(
            &ex,
            &caller,
            Charge::Customer {
                id: &id,
                reveals: count,
            },
        )?;
        let record = app
            .store
            .customer(&id)
            .await?
            .ok_or_else(|| ApiError::not_found("customer"))?;
        let opened = Opened::new(&app.keyring, &record)?;
        let mut out = serde_json::Map::new();
        for field in &request.fields {
            let value = opened
                .field(field)?
                .map(|v| serde_json::Value::String(v.as_str().to_owned()));
            out.insert(field.clone(), value.unwrap_or(serde_json::Value::Null));
        }
        Ok(json(StatusCode::OK, Revealed { fields: out }))
    }
    .await;
    app.finish(ex, result).await
}

/// Search by exactly one of phone, email or account_id. Results are masked and limited to
/// customers on the caller's open cases; anything else returns an empty list (and is
/// recorded), so a search is no oracle for who is a customer.
#[utoipa::path(get, path = "/v1/customers", tag = "customers",
    params(("key" = SearchKey, Query, style = Form, explode,
        description = "exactly one of `phone`, `email`, `account_id`, as a query parameter of that name")),
    responses(
        (status = 200, body = SearchResults, description = "the matches on the caller's open cases, masked (often none)"),
        (status = 400, description = "`invalid_query`: not exactly one key; `invalid_phone`, `invalid_email`, `invalid_account_id`: the value is not one"),
        (status = 403, description = "`forbidden`: the caller's role may not search"),
        (status = 429, description = "`quota_exceeded`: the caller's search quota is used up")),
    security(("bearer" = [])))]
pub(super) async fn search(
    State(app): State<SharedApp>,
    info: RequestInfo,
    RawQuery(query): RawQuery,
) -> Response {
    let mut ex = app.begin(&info, custos_types::Action::Search);
    let result = async {
        let caller = app.authenticate(&info, &mut ex).await?;
        let params: SearchParams = parse_query(
            query,
            "search takes exactly one of phone, email, account_id",
        )?;
        let (kind, column, normalized) = match (&params.phone, &params.email, &params.account_id) {
            (Some(p), None, None) => (
                IndexKind::Phone,
                IndexColumn::Phone,
                custos_crypto::normalize_phone(p, &app.config.default_region),
            ),
            (None, Some(e), None) => (
                IndexKind::Email,
                IndexColumn::Email,
                custos_crypto::normalize_email(e),
            ),
            (None, None, Some(a)) => (
                IndexKind::AccountId,
                IndexColumn::AccountId,
                custos_crypto::normalize_account_id(a),
            ),
            _ => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    "search takes exactly one of phone, email, account_id",
                ));
            }
        };
        ex.fields = vec![kind.label().to_owned()];
        // The role gate comes before the quota, the quota before any lookup.
        app.authorize(
            &mut ex,
            &AccessRequest {
                principal: caller.principal(),
                action: Action::Search,
                resource: Resource::Customer { id: "-" },
                case: None,
            },
        )?;
        app.charge(&ex, &caller, Charge::Search)?;
        let normalized = normalized.map_err(|e| ApiError::bad_request(e.code(), e.to_string()))?;
        let index = app.keyring.blind_index(kind, &normalized).to_hex();
        // Ids only (a covering index): the sealed record is read for a customer served.
        let mut candidates: Vec<String> = app
            .store
            .customers_by_indexes(column, std::slice::from_ref(&index))
            .await?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        candidates.sort_unstable();
        if app.config.search_limit > 0 {
            candidates.truncate(app.config.search_limit as usize);
        }
        // The record names the customer served, or else the first one matched: a match
        // the caller was not served is still a touch (canaries are found this way).
        if let Some(first) = candidates.first() {
            ex.name_customer(first)?;
        }
        let mut results = Vec::new();
        // The same store work whether or not the number belongs to a customer: one
        // open-case lookup per candidate, and one for a customer id no one has when
        // there is none; a record is read and unsealed only for a customer the caller
        // is served. Otherwise the answer's time would tell a number in the vault from
        // one that is not, on an empty result either way.
        let probes = candidates
            .iter()
            .map(String::as_str)
            .chain(candidates.is_empty().then_some(NO_CUSTOMER));
        for probe in probes {
            let cases = app
                .store
                .open_cases(&caller.staff.id, Some(probe), 1)
                .await?;
            let Some(case) = cases.first() else { continue };
            let allowed = app.policy.decide(&AccessRequest {
                principal: caller.principal(),
                action: Action::View,
                resource: Resource::Customer { id: probe },
                case: Some(CaseContext {
                    id: &case.id,
                    customer: &case.customer_id,
                    assignee: &case.assignee,
                    open: true,
                }),
            });
            if !allowed.allowed {
                continue;
            }
            let Some(record) = app.store.customer(probe).await? else {
                continue;
            };
            if results.is_empty() {
                ex.name_customer(probe)?;
            }
            results.push(Opened::new(&app.keyring, &record)?.masked()?);
        }
        ex.reason = Some(
            match (candidates.is_empty(), results.is_empty()) {
                (true, _) => "no_match",
                (false, true) => "no_open_case",
                (false, false) => "on_open_case",
            }
            .to_owned(),
        );
        Ok(json(StatusCode::OK, SearchResults { results }))
    }
    .await;
    app.finish(ex, result).await
}
