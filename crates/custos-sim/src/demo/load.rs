//! Loads a [`DemoCompany`] into a running gateway through its public HTTP API, exactly
//! as an operator and a CRM integration would.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use custos_client::{
    Answer, CallerIdentifier, Client, ClientError, Http, NewCase, NewContact, NewStaff,
};
use custos_types::Role;

use crate::demo::data::DemoCompany;
use crate::progress::bar;

/// Customers per import request.
const IMPORT_CHUNK: usize = 1000;
/// Requests in flight while loading.
const PARALLEL: usize = 8;

/// A staff member's sign-in, as written to `demo-tokens.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StaffToken {
    /// Staff id.
    pub id: String,
    /// Role.
    pub role: Role,
    /// Org.
    pub org: String,
    /// Bearer token.
    pub token: String,
    /// The staff member's open cases as (case id, customer id).
    pub cases: Vec<(String, String)>,
}

/// What a load produced.
#[derive(Debug, Serialize, Deserialize)]
pub struct Loaded {
    /// Base URL of the gateway.
    pub url: String,
    /// Customer ids in the order of [`DemoCompany::customers`].
    pub customer_ids: Vec<String>,
    /// Every staff member's token and cases.
    pub staff: Vec<StaffToken>,
}

/// A load failure, with the step that failed.
#[derive(Debug, thiserror::Error)]
#[error("demo load failed at {step}: {reason}")]
pub struct LoadError {
    step: &'static str,
    reason: String,
}

impl LoadError {
    fn at(step: &'static str) -> impl Fn(ClientError) -> LoadError {
        move |e| LoadError {
            step,
            reason: e.to_string(),
        }
    }

    /// A refused call, with the server's code (never the body: it may name a customer).
    fn refused(step: &'static str, answer: &Answer) -> LoadError {
        LoadError {
            step,
            reason: format!("HTTP {} {}", answer.status, answer.code()),
        }
    }
}

/// Passes a successful answer through; a refusal is the step's failure.
fn accepted(step: &'static str, answer: Answer) -> Result<Answer, LoadError> {
    if answer.is_success() {
        Ok(answer)
    } else {
        Err(LoadError::refused(step, &answer))
    }
}

/// Loads `company` with `cases_per_agent` open cases per agent; `quiet` hides progress.
pub async fn load(
    client: &Client<Http>,
    admin_token: &str,
    company: &DemoCompany,
    cases_per_agent: usize,
    quiet: bool,
) -> Result<Loaded, LoadError> {
    let progress = bar(company.staff.len(), "staff", quiet);
    let staff: Vec<StaffToken> = futures::stream::iter(&company.staff)
        .map(|s| {
            let progress = &progress;
            async move {
                let new = NewStaff {
                    id: &s.id,
                    name: &s.name,
                    role: s.role,
                    org: s.org,
                };
                let created = client
                    .create_staff(admin_token, &new)
                    .await
                    .map_err(LoadError::at("staff"))?;
                accepted("staff", created)?;
                let issued = client
                    .issue_token(admin_token, &s.id)
                    .await
                    .map_err(LoadError::at("tokens"))?;
                let issued = accepted("tokens", issued)?;
                progress.inc(1);
                Ok::<_, LoadError>(StaffToken {
                    id: s.id.clone(),
                    role: s.role,
                    org: s.org.to_owned(),
                    token: issued.body["token"].as_str().unwrap_or_default().to_owned(),
                    cases: Vec::new(),
                })
            }
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    progress.finish();

    let progress = bar(company.customers.len(), "customers", quiet);
    let mut customer_ids = Vec::with_capacity(company.customers.len());
    for chunk in company.customers.chunks(IMPORT_CHUNK) {
        let ndjson = custos_client::ndjson(chunk).map_err(LoadError::at("import"))?;
        let imported = client
            .import(admin_token, ndjson)
            .await
            .map_err(LoadError::at("import"))?;
        let imported = accepted("import", imported)?;
        let ids = imported.body["ids"].as_array().cloned().unwrap_or_default();
        customer_ids.extend(ids.iter().filter_map(|v| v.as_str().map(str::to_owned)));
        progress.inc(chunk.len() as u64);
    }
    progress.finish();

    let token_of = |role: Role| {
        staff
            .iter()
            .find(|s| s.role == role)
            .map(|s| s.token.clone())
            .unwrap_or_default()
    };
    let crm = token_of(Role::Integration);
    let switch = token_of(Role::ContactCenter);
    let agents: Vec<usize> = (0..staff.len())
        .filter(|&i| company.staff[i].is_agent())
        .collect();
    let ids = &customer_ids;
    let plan: Vec<(usize, usize)> = agents
        .iter()
        .enumerate()
        .flat_map(|(n, &agent)| {
            (0..cases_per_agent).filter_map(move |k| {
                let customer = (n * cases_per_agent + k) * 7 % ids.len().max(1);
                (customer < ids.len()).then_some((agent, customer))
            })
        })
        .collect();
    let progress = bar(plan.len(), "cases", quiet);
    let channels = ["phone", "sms", "email", "chat"];
    let opened: Vec<(usize, String, String)> = futures::stream::iter(plan.into_iter().enumerate())
        .map(|(n, (agent, customer))| {
            let (crm, switch, progress) = (&crm, &switch, &progress);
            let assignee = &staff[agent].id;
            let person = &company.customers[customer];
            let id = &ids[customer];
            async move {
                // Every case starts as a contact the customer made from their own number
                // or address, routed to the agent by the contact centre: `verified`.
                let channel = channels[n % channels.len()];
                let caller = if channel == "email" {
                    CallerIdentifier::Email(&person.email)
                } else {
                    CallerIdentifier::Phone(&person.phone)
                };
                let contact = NewContact {
                    channel,
                    caller,
                    agent: assignee,
                    at: None,
                };
                let posted = client
                    .post_contact(switch, &contact)
                    .await
                    .map_err(LoadError::at("contacts"))?;
                let posted = accepted("contacts", posted)?;
                let case = match posted.body["case"].as_str() {
                    Some(case) => case.to_owned(),
                    // The identifier is more than one customer's: the CRM, which knows
                    // whom the caller asked about, opens the case on the contact.
                    None => {
                        let case = NewCase {
                            customer: id,
                            assignee,
                            channel,
                            reason: "asked where an order is",
                            inbound: true,
                            requested_by: None,
                            contact: posted.body["id"].as_str(),
                            campaign: None,
                        };
                        let created = client
                            .create_case(crm, &case)
                            .await
                            .map_err(LoadError::at("cases"))?;
                        let created = accepted("cases", created)?;
                        created.body["id"].as_str().unwrap_or_default().to_owned()
                    }
                };
                progress.inc(1);
                Ok::<_, LoadError>((agent, case, id.clone()))
            }
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    progress.finish();

    let mut staff = staff;
    for (agent, case, customer) in opened {
        staff[agent].cases.push((case, customer));
    }
    Ok(Loaded {
        url: client.transport().base().to_owned(),
        customer_ids,
        staff,
    })
}

/// Reads a `demo-tokens.json` written by `custos demo`.
pub fn read_tokens(path: &Path) -> Option<Loaded> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
