//! Customers: who may see a customer's record, and under what conditions (a case, a
//! step-up justification while restricted).

use custos_policy::{AccessRequest, Action, CaseContext, Resource};
use custos_store::CaseStatus;

use crate::App;
use crate::auth::Caller;
use crate::error::{ErrorKind, ServiceError};
use crate::input::{STEP_UP_MAX_CHARS, STEP_UP_MIN_CHARS};
use crate::record::Exchange;

/// Header naming the case a view is for.
pub const CASE_HEADER: &str = "x-custos-case";

impl App {
    /// Refuses a reveal without a step-up justification while a `step_up` or
    /// `lower_quota` restriction is in force on the caller at the request's time.
    pub fn require_step_up(
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
    pub async fn authorize_with_case(
        &self,
        ex: &mut Exchange,
        caller: &Caller,
        action: Action,
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
        result.map_err(|e| ServiceError {
            message: format!(
                "{}; name an open case assigned to you for this customer in {CASE_HEADER} (ask the CRM to open one)",
                e.message
            ),
            ..e
        })
    }
}
