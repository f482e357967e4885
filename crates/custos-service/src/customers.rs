//! Customers: creation and import (sealed on the way in), canaries, the masked view,
//! field reveals and search through blind indexes; and who may see a customer's record,
//! under what conditions (a case, a step-up justification while restricted).

use crate::error::Code;
use std::collections::BTreeSet;
use std::num::NonZeroUsize;

use custos_crypto::IndexKind;
use custos_policy::{AccessRequest, Action, Resource};
use custos_store::{CanaryMark, CaseRecord, CaseStatus, IndexColumn};
use custos_types::Provenance;
use serde::{Deserialize, Serialize};

use crate::App;
use crate::auth::Caller;
use crate::case_record::case_context;
use crate::error::{ErrorKind, ServiceError};
use crate::import::Imported;
use crate::input::FIELDS;
use crate::input::{
    MAX_REASON_CHARS, STEP_UP_MAX_CHARS, STEP_UP_MIN_CHARS, valid_text, valid_text_between,
};
use crate::quota::Charge;
use crate::record::{Exchange, Recorded, RequestMeta};
use crate::schema::{CaseId, CustomerId, Reason, RevealFields, RevealedFields, StepUpReason};
use crate::vault::hexes;
use crate::vault::{self, MaskedCustomer, NewCustomer, Opened};

/// Header naming the case a view is for.
pub const CASE_HEADER: &str = "x-custos-case";

/// What a search accepts, said when it is given anything else (the values themselves
/// are never echoed).
pub const SEARCH_KEYS: &str = "search takes exactly one of phone, email, account_id";

/// A well-formed customer id that is never issued (all zero): what a search with no
/// match looks up open cases for, so that a miss costs what a hit does.
const NO_CUSTOMER: &str = "cus_0000000000000000";

/// The new customer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedCustomer {
    #[schema(value_type = CustomerId)]
    id: String,
}

/// A reveal: which fields, for which case, and why.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
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

/// The fields a reveal shows in full.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Revealed {
    /// Field name → full value (null if the customer has no such field).
    #[schema(value_type = RevealedFields)]
    fields: serde_json::Map<String, serde_json::Value>,
}

/// Exactly one of the three keys (described as the `SearchKey` object).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    phone: Option<String>,
    email: Option<String>,
    account_id: Option<String>,
}

/// The customers a search found on the caller's open cases, masked.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResults {
    results: Vec<MaskedCustomer>,
}

impl App {
    /// Creates one customer (`create_customer`: admins, integrations); `customer` is the
    /// new customer as decoded by the transport.
    pub async fn create_customer(
        &self,
        meta: &RequestMeta,
        customer: Result<NewCustomer, ServiceError>,
    ) -> Recorded<CreatedCustomer> {
        let mut ex = self.begin(meta, custos_types::Action::CreateCustomer);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::CreateCustomer)
                .await?;
            let id = crate::ids::new_customer_id();
            let input = customer?;
            let record =
                vault::seal_customer(&self.keyring, &self.config.default_region, &id, &input)?;
            ex.name_customer(&id)?;
            self.record_intent(&mut ex).await?;
            self.store
                .insert_customers(std::slice::from_ref(&record))
                .await?;
            Ok(CreatedCustomer { id })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Plants canary customers (`import_customers`: admins); `ndjson` is the body as
    /// read by the transport, like an import's. They are stored exactly like other
    /// customers; only a keyed mark, which the detector reads, says what they are.
    pub async fn plant_canaries(
        &self,
        meta: &RequestMeta,
        ndjson: Result<Vec<u8>, ServiceError>,
    ) -> Recorded<Imported> {
        let mut ex = self.begin(meta, custos_types::Action::PlantCanaries);
        let result = async {
            self.authorize_vault(meta, &mut ex, Action::ImportCustomers)
                .await?;
            // The collision check below compares indexes under the current key only.
            if self
                .store
                .latest_key_rotation(custos_store::RotatedKey::BlindIndex)
                .await?
                .is_some_and(|r| r.finished_at.is_none())
            {
                return Err(ServiceError::new(
                    ErrorKind::Conflict,
                    Code::RotationInProgress,
                    "the blind-index key is rotating; plant canaries when it has finished",
                ));
            }
            let records = self.seal_ndjson(ndjson?, NonZeroUsize::MIN).await?;
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
                        Some(index) => self.store.customers_by_index(column, index, 1).await?,
                        None => Vec::new(),
                    };
                    if let Some(existing) = found.first() {
                        // The answer says a value belongs to a customer: the record says whose,
                        // so the question is traceable like a search.
                        ex.name_customer(&existing.id)?;
                        return Err(ServiceError::new(
ErrorKind::Conflict,
                            Code::CanaryCollision,
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
                        mark: self.keyring.canary_mark(&r.id),
                        sealed_id: Some(
                            self.keyring
                                .seal_canary_id(&r.id)
                                .map_err(|_| ServiceError::internal())?,
                        ),
                    })
                })
                .collect::<Result<Vec<_>, ServiceError>>()?;
            self.store.insert_canary_marks(&marks).await?;
            // The record comes after the marks (the detector reloads them when it reads it)
            // and before the customers exist (no canary without its record).
            self.record_intent(&mut ex).await?;
            self.insert_all(records).await
        }
        .await;
        self.finish(ex, result).await
    }

    /// The masked view of customer `id`, for the case the request names (`case`, as
    /// decoded by the transport; `None`: no case named, and so a denial).
    pub async fn view_customer(
        &self,
        meta: &RequestMeta,
        id: &str,
        case: Result<Option<&str>, ServiceError>,
    ) -> Recorded<MaskedCustomer> {
        let mut ex = self.begin(meta, custos_types::Action::View);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            ex.name_customer(id)?;
            let case = case?;
            self.authorize_with_case(&mut ex, &caller, &[Action::View], id, case)
                .await?;
            self.charge(&ex, &caller, Charge::Customer { id, reveals: 0 })
                .await?;
            let record = self
                .store
                .customer(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            Opened::new(&self.keyring, &record)?.masked()
        }
        .await;
        self.finish(ex, result).await
    }

    /// Reveals the fields `request` names of customer `id` in full, for its case, with
    /// its reason; each field is its own Cedar action. `request` is as decoded by the
    /// transport.
    pub async fn reveal_fields(
        &self,
        meta: &RequestMeta,
        id: &str,
        request: Result<RevealRequest, ServiceError>,
    ) -> Recorded<Revealed> {
        let mut ex = self.begin(meta, custos_types::Action::Reveal);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            ex.name_customer(id)?;
            let request = request?;
            let fields: BTreeSet<&str> = request.fields.iter().map(String::as_str).collect();
            if fields.is_empty() || fields.len() != request.fields.len() {
                return Err(ServiceError::bad_request(
                    Code::InvalidField,
                    "name each field once, at least one",
                ));
            }
            let actions = request
                .fields
                .iter()
                .map(|f| Action::reveal(f))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ServiceError::bad_request(
                        Code::InvalidField,
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
            self.authorize_with_case(&mut ex, &caller, &actions, id, Some(&request.case))
                .await?;
            // After the policy (a reveal it refuses is refused for that reason), before the
            // quota (a refused reveal takes nothing from it).
            self.require_step_up(&ex, &caller, request.step_up_reason.is_some())?;
            if request.step_up_reason.is_some() {
                // The justification stays out of the ledger; that one was given goes in.
                ex.reason = ex
                    .reason
                    .take()
                    .map(|policy| custos_types::facts::step_up_reason(&policy));
            }
            let count = u32::try_from(request.fields.len()).unwrap_or(u32::MAX);
            self.charge(&ex, &caller, Charge::Customer { id, reveals: count })
                .await?;
            let record = self
                .store
                .customer(id)
                .await?
                .ok_or_else(|| ServiceError::not_found("customer"))?;
            let opened = Opened::new(&self.keyring, &record)?;
            let mut out = serde_json::Map::new();
            for field in &request.fields {
                let value = opened
                    .field(field)?
                    .map(|v| serde_json::Value::String(v.as_str().to_owned()));
                out.insert(field.clone(), value.unwrap_or(serde_json::Value::Null));
            }
            Ok(Revealed { fields: out })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Searches by exactly one of phone, email or account id (`params`, as decoded by
    /// the transport). Results are masked and limited to customers on the caller's open
    /// cases; anything else gives an empty list (and is recorded), so a search is no
    /// oracle for who is a customer.
    pub async fn search_customers(
        &self,
        meta: &RequestMeta,
        params: Result<SearchParams, ServiceError>,
    ) -> Recorded<SearchResults> {
        let mut ex = self.begin(meta, custos_types::Action::Search);
        let result = async {
            let caller = self.authenticate(meta, &mut ex).await?;
            let params = params?;
            let (kind, column, normalized) =
                match (&params.phone, &params.email, &params.account_id) {
                    (Some(p), None, None) => (
                        IndexKind::Phone,
                        IndexColumn::Phone,
                        custos_crypto::normalize_phone(p, &self.config.default_region),
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
                    _ => return Err(ServiceError::bad_request(Code::InvalidQuery, SEARCH_KEYS)),
                };
            ex.fields = vec![kind.label().to_owned()];
            // The role gate comes before the quota, the quota before any lookup.
            self.authorize(
                &mut ex,
                &AccessRequest {
                    principal: caller.principal(),
                    action: Action::Search,
                    resource: Resource::Customer { id: "-" },
                    case: None,
                    granted: false,
                },
            )?;
            self.charge(&ex, &caller, Charge::Search).await?;
            let normalized = normalized
                .map_err(|e| ServiceError::bad_request(Code::Part(e.code()), e.to_string()))?;
            let indexes = hexes(self.keyring.lookup_indexes(kind, &normalized));
            // Ids only (a covering index): the sealed record is read for a customer served.
            let mut candidates: Vec<String> = self
                .store
                .customers_by_indexes(column, &indexes)
                .await?
                .into_iter()
                .map(|(_, id)| id)
                .collect();
            candidates.sort_unstable();
            if self.config.search_limit > 0 {
                candidates.truncate(self.config.search_limit as usize);
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
                let cases = self
                    .store
                    .open_cases(&caller.staff.id, Some(probe), 1)
                    .await?;
                let Some(case) = cases.first() else { continue };
                let allowed = self.policy.decide(&AccessRequest {
                    principal: caller.principal(),
                    action: Action::View,
                    resource: Resource::Customer { id: probe },
                    case: Some(case_context(case)),
                    granted: false,
                });
                if !allowed.allowed {
                    continue;
                }
                let Some(record) = self.store.customer(probe).await? else {
                    continue;
                };
                if results.is_empty() {
                    ex.name_customer(probe)?;
                }
                results.push(Opened::new(&self.keyring, &record)?.masked()?);
            }
            ex.reason = Some(
                match (candidates.is_empty(), results.is_empty()) {
                    (true, _) => "no_match",
                    (false, true) => "no_open_case",
                    (false, false) => "on_open_case",
                }
                .to_owned(),
            );
            Ok(SearchResults { results })
        }
        .await;
        self.finish(ex, result).await
    }

    /// Stores sealed customers (after their record is durable) and answers with their ids.
    /// Refuses a reveal without a step-up justification while a `step_up` or
    /// `lower_quota` restriction is in force on the caller at the request's time.
    fn require_step_up(
        &self,
        ex: &Exchange,
        caller: &Caller,
        justified: bool,
    ) -> Result<(), ServiceError> {
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
        Err(ServiceError {
            details: Some(Box::new(self.restriction_details(active))),
            ..ServiceError::new(
                ErrorKind::Forbidden,
                Code::StepUpRequired,
                format!(
                    "a risk alert on your recent access requires a step-up justification for every reveal until {} (unix ms){lowered}: send step_up_reason with the request, {STEP_UP_MIN_CHARS} to {STEP_UP_MAX_CHARS} characters saying why this reveal is needed (it is checked, not stored; security reviews the alert)",
                    active.until_ms
                ),
            )
        })
    }

    /// Loads the case a request names and asks Cedar whether each of `actions` on
    /// `customer` is allowed with it (a reveal is one action per field), in order; the
    /// first refusal is the answer. An unknown case id gives no case context (and so a
    /// denial).
    pub(crate) async fn authorize_with_case(
        &self,
        ex: &mut Exchange,
        caller: &Caller,
        actions: &[Action],
        customer: &str,
        case_id: Option<&str>,
    ) -> Result<(), ServiceError> {
        let case = match case_id {
            Some(id) => {
                ex.name_case(id)?;
                self.store.case(id).await?
            }
            None => None,
        };
        // The caller's grants, read once for all the fields, and only when one is asked.
        let grants = match &case {
            Some(case) if actions.iter().any(|a| a.revealed_field().is_some()) => {
                self.grants_in_force_on(&caller.staff.id, case, ex.at())
                    .await?
            }
            _ => Vec::new(),
        };
        for &action in actions {
            let granted = action
                .revealed_field()
                .is_some_and(|field| grants.iter().any(|g| g.fields.iter().any(|f| f == field)));
            self.authorize(
                ex,
                &AccessRequest {
                    principal: caller.principal(),
                    action,
                    resource: Resource::Customer { id: customer },
                    case: case.as_ref().map(case_context),
                    granted,
                },
            )
            .map_err(|e| with_case_hint(e, caller, action, customer, case.as_ref()))?;
        }
        Ok(())
    }
}

/// A refusal of `action` on `customer`, with a hint at what would be allowed.
fn with_case_hint(
    e: ServiceError,
    caller: &Caller,
    action: Action,
    customer: &str,
    case: Option<&CaseRecord>,
) -> ServiceError {
    // A suspended person is refused whatever case they name: a hint about cases would
    // send them looking for one.
    if caller.staff.status == custos_store::StaffStatus::Suspended {
        return e;
    }
    let hint = match case {
        Some(c)
            if action != Action::View
                && c.status == CaseStatus::Open
                && c.assignee == caller.staff.id
                && c.customer_id == customer
                && c.provenance != Provenance::Verified =>
        {
            format!(
                "a field is shown in full only on a case the contact centre verified, and this case is {}: reach the customer through POST /v1/customers/{{id}}/contact instead",
                c.provenance
            )
        }
        _ => format!(
            "name an open case assigned to you for this customer in {CASE_HEADER} (ask the CRM to open one)"
        ),
    };
    ServiceError {
        message: format!("{}; {hint}", e.message),
        ..e
    }
}
