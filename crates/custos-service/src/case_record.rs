//! What a case stores beside its customer: the facts its `create_case` entry records, and
//! the binding of its sealed reason. Shared by the cases themselves, canary allocation
//! (which opens cases of its own) and the pages that show a case's reason.

use custos_store::CaseRecord;

use crate::error::ServiceError;
use crate::vault::Opened;

/// The `create_case` entry's facts ([`custos_types::facts::CaseFacts`]).
pub(crate) fn case_facts(channel: &str, inbound: bool, requested_by: Option<&str>) -> Vec<String> {
    custos_types::facts::CaseFacts {
        channel: Some(channel),
        inbound,
        requested_by,
    }
    .to_fields()
}

/// What a case's sealed reason is bound to (with its customer): the case itself.
pub(crate) fn reason_context(case_id: &str) -> String {
    format!("case_reason/{case_id}")
}

/// The reason `case` was opened for, as written; `opened` is its customer.
pub(crate) fn reason_of(opened: &Opened<'_>, case: &CaseRecord) -> Result<String, ServiceError> {
    let reason = opened
        .key()
        .open_string(&case.customer_id, &reason_context(&case.id), &case.reason)
        .map_err(|_| ServiceError::internal())?;
    Ok(reason.as_str().to_owned())
}
