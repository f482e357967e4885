//! The approver's queue: the pending access requests the API lets the visitor decide
//! (`GET /v1/access-requests`), each approved or denied with a reason. Who may decide is
//! the policy's (company team leads; never the requester, never someone of the
//! requester's own partner organisation): a refusal comes back from the API and is shown
//! in words, as on every page.

use axum::Form;
use axum::extract::{Path, State};
use maud::html;
use serde::Deserialize;
use serde_json::json;

use super::page::{self, age, csrf_field, document};
use super::{Page, Shared, Visitor, segment};

#[derive(Deserialize)]
struct Queue {
    requests: Vec<PendingRequest>,
}

/// A pending request as the queue shows it.
#[derive(Deserialize)]
struct PendingRequest {
    id: String,
    requester: String,
    requester_org: String,
    customer: String,
    case: String,
    fields: Vec<String>,
    purpose: String,
    created_at: i64,
}

#[derive(Deserialize)]
pub(super) struct DecideForm {
    csrf: String,
    /// Why (required by the API).
    reason: String,
    /// How long an approval holds, in minutes; empty for the API's default.
    minutes: Option<String>,
}

/// `GET /approvals`: the pending access requests.
pub(super) async fn queue(State(console): State<Shared>, visitor: Visitor) -> Page {
    visitor.staff_role()?;
    let queue: Queue = console.get(&visitor, "/v1/access-requests").await?;
    let now = custos_types::clock::now_millis();
    Ok(document(
        "Access requests",
        Some(&visitor.session),
        html! {
            p { "Fields asked for on cases no channel vouches for. Approve only what the purpose explains; an approval is a grant of these fields, on this case, for a limited time." }
            @if queue.requests.is_empty() {
                p { "No request is waiting." }
            } @else {
                table {
                    thead { tr { th { "Request" } th { "Asked" } th { "By" } th { "Customer / case" } th { "Fields" } th { "Purpose" } th { "Decision" } } }
                    tbody {
                        @for r in &queue.requests {
                            tr {
                                td { (r.id) }
                                td { (age(r.created_at, now)) }
                                td { (r.requester) " · " (r.requester_org) }
                                td { (r.customer) br; (r.case) }
                                td { (r.fields.join(", ")) }
                                td { (r.purpose) }
                                td {
                                    form method="post" action=(format!("/approvals/{}/approve", segment(&r.id))) {
                                        (csrf_field(&visitor.session))
                                        label { "Reason " input type="text" name="reason" required maxlength="500"; }
                                        label { "Minutes " input type="number" name="minutes" min="1" max="240" placeholder="30"; }
                                        button type="submit" { "Approve" }
                                    }
                                    form method="post" action=(format!("/approvals/{}/deny", segment(&r.id))) {
                                        (csrf_field(&visitor.session))
                                        label { "Reason " input type="text" name="reason" required maxlength="500"; }
                                        button type="submit" { "Deny" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// `POST /approvals/{id}/{approve|deny}`.
pub(super) async fn decide(
    State(console): State<Shared>,
    visitor: Visitor,
    Path((id, act)): Path<(String, String)>,
    Form(form): Form<DecideForm>,
) -> Page {
    if !matches!(act.as_str(), "approve" | "deny") {
        return Err(visitor.not_for_you().into());
    }
    visitor.staff_role()?;
    visitor.check_csrf(&form.csrf)?;
    let minutes = match form.minutes.as_deref().map(str::trim) {
        None | Some("") => None,
        // A number the API does not accept is refused there, with its code.
        Some(m) => Some(m.parse::<u32>().unwrap_or(0)),
    };
    let body = json!({ "reason": form.reason, "minutes": minutes });
    console
        .post::<serde_json::Value>(
            &visitor,
            &format!("/v1/access-requests/{}/{act}", segment(&id)),
            Some(&body),
        )
        .await?;
    Ok(page::see_other("/approvals", &[]))
}
