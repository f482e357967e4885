//! Cases: what opens a customer's record to a person. The case facts recorded with
//! `create_case`, the binding of a case's sealed reason, the rule on who may be given a
//! case.

use custos_access::entry::{
    CASE_CHANNEL, CASE_CONTACT_INBOUND, CASE_CONTACT_NONE, CASE_REQUESTED_BY,
};
use custos_policy::{AccessRequest, Action, CaseContext, Resource};
use custos_store::{CaseRecord, StaffRecord};

use crate::App;
use crate::auth::Caller;
use crate::error::{ErrorKind, ServiceError};
use crate::vault::Opened;

/// The `create_case` entry's facts, in the order custos_access::entry documents.
pub fn case_facts(channel: &str, inbound: bool, requested_by: Option<&str>) -> Vec<String> {
    let mut facts = vec![
        format!("{CASE_CHANNEL}{channel}"),
        if inbound {
            CASE_CONTACT_INBOUND
        } else {
            CASE_CONTACT_NONE
        }
        .to_owned(),
    ];
    if let Some(requester) = requested_by {
        facts.push(format!("{CASE_REQUESTED_BY}{requester}"));
    }
    facts
}

impl App {
    /// Refuses a case for anyone the policy would not let read this customer under it
    /// (`serves-customers`: security analysts, admins, the CRM and other integrations).
    /// A case is how a record opens, so a case for such a person is either useless or a
    /// way around the policy. The assignee is asked about in good standing: a suspended
    /// person may still be given cases, which they cannot use until resumed.
    pub fn require_serving_assignee(
        &self,
        assignee: &StaffRecord,
        customer: &str,
        case_id: &str,
    ) -> Result<(), ServiceError> {
        let person = Caller::of(assignee.clone(), &self.config.company_org);
        let decision = self.policy.decide(&AccessRequest {
            principal: custos_policy::Principal {
                suspended: false,
                ..person.principal()
            },
            action: Action::View,
            resource: Resource::Customer { id: customer },
            case: Some(CaseContext {
                id: case_id,
                customer,
                assignee: &assignee.id,
                open: true,
            }),
        });
        if decision.allowed {
            Ok(())
        } else {
            // The request is well formed; the assignee's role is what stands in the way.
            Err(ServiceError::new(
                ErrorKind::Conflict,
                "assignee_not_serving",
                format!(
                    "cases are assigned only to staff whose role serves customers; the policy refuses this assignee ({})",
                    decision.reason_code
                ),
            ))
        }
    }
}

/// What a case's sealed reason is bound to (with its customer): the case itself.
pub fn reason_context(case_id: &str) -> String {
    format!("case_reason/{case_id}")
}

/// The reason `case` was opened for, as written; `opened` is its customer.
pub fn reason_of(opened: &Opened<'_>, case: &CaseRecord) -> Result<String, ServiceError> {
    let reason = opened
        .key()
        .open_string(&case.customer_id, &reason_context(&case.id), &case.reason)
        .map_err(|_| ServiceError::internal())?;
    Ok(reason.as_str().to_owned())
}
