//! What a case stores beside its customer: the facts its `create_case` entry records, and
//! the binding of its sealed reason. Shared by the cases themselves, canary allocation
//! (which opens cases of its own) and the pages that show a case's reason.

use custos_policy::CaseContext;
use custos_store::{CaseRecord, CaseStatus};
use custos_types::{Channel, Provenance};

use crate::error::ServiceError;
use crate::vault::Opened;

/// The `create_case` entry's facts ([`custos_types::facts::CaseFacts`]): where the case
/// came from, with the `contact:` fact its provenance implies.
pub(crate) fn case_facts(
    channel: Channel,
    provenance: Provenance,
    requested_by: Option<&str>,
    campaign: Option<&str>,
) -> Vec<String> {
    custos_types::facts::CaseFacts {
        channel: Some(channel.as_str()),
        inbound: provenance.inbound(),
        requested_by,
        provenance: Some(provenance),
        campaign,
    }
    .to_fields()
}

/// What Cedar is told about a stored case.
pub(crate) fn case_context(case: &CaseRecord) -> CaseContext<'_> {
    CaseContext {
        id: &case.id,
        customer: &case.customer_id,
        assignee: &case.assignee,
        open: case.status == CaseStatus::Open,
        provenance: case.provenance,
    }
}

/// What a case's sealed reason is bound to (with its customer): the case itself.
pub(crate) fn reason_context(case_id: &str) -> String {
    format!("case_reason/{case_id}")
}

/// The reason `case` was opened for, as written; `opened` is its customer.
pub(crate) fn reason_of(opened: &Opened<'_>, case: &CaseRecord) -> Result<String, ServiceError> {
    let reason = opened.open_text(&reason_context(&case.id), &case.reason)?;
    Ok(reason.as_str().to_owned())
}
