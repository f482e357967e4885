//! Loads a [`DemoCompany`] into a running gateway through its public HTTP API, exactly
//! as an operator and a CRM integration would.

use std::path::Path;

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::demo_data::DemoCompany;

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
    pub role: String,
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

fn fail(step: &'static str) -> impl Fn(reqwest::Error) -> LoadError {
    move |e| LoadError {
        step,
        reason: e.without_url().to_string(),
    }
}

/// A progress bar over `len` items named `what` (hidden when `quiet`).
pub fn bar(len: usize, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

async fn post(
    client: &reqwest::Client,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, reqwest::Error> {
    let mut request = client.post(url).bearer_auth(token);
    if let Some(b) = body {
        request = request.json(&b);
    }
    request.send().await?.error_for_status()?.json().await
}

/// Loads `company` with `cases_per_agent` open cases per agent; `quiet` hides progress.
pub async fn load(
    base: &str,
    admin_token: &str,
    company: &DemoCompany,
    cases_per_agent: usize,
    quiet: bool,
) -> Result<Loaded, LoadError> {
    let client = reqwest::Client::new();

    let progress = bar(company.staff.len(), "staff", quiet);
    let staff: Vec<StaffToken> = futures::stream::iter(&company.staff)
        .map(|s| {
            let client = &client;
            let progress = &progress;
            async move {
                let body =
                    serde_json::json!({"id": s.id, "name": s.name, "role": s.role, "org": s.org});
                post(client, format!("{base}/v1/staff"), admin_token, Some(body))
                    .await
                    .map_err(fail("staff"))?;
                let issued = post(
                    client,
                    format!("{base}/v1/staff/{}/tokens", s.id),
                    admin_token,
                    None,
                )
                .await
                .map_err(fail("tokens"))?;
                progress.inc(1);
                Ok::<_, LoadError>(StaffToken {
                    id: s.id.clone(),
                    role: s.role.to_owned(),
                    org: s.org.to_owned(),
                    token: issued["token"].as_str().unwrap_or_default().to_owned(),
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
        let mut ndjson = Vec::new();
        for c in chunk {
            serde_json::to_writer(&mut ndjson, c).map_err(|e| LoadError {
                step: "import",
                reason: e.to_string(),
            })?;
            ndjson.push(b'\n');
        }
        let response: serde_json::Value = client
            .post(format!("{base}/v1/customers/import"))
            .bearer_auth(admin_token)
            .header("content-type", "application/x-ndjson")
            .body(ndjson)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(fail("import"))?
            .json()
            .await
            .map_err(fail("import"))?;
        let ids = response["ids"].as_array().cloned().unwrap_or_default();
        customer_ids.extend(ids.iter().filter_map(|v| v.as_str().map(str::to_owned)));
        progress.inc(chunk.len() as u64);
    }
    progress.finish();

    let crm = staff
        .iter()
        .find(|s| s.role == "integration")
        .map(|s| s.token.clone())
        .unwrap_or_default();
    let agents: Vec<usize> = (0..staff.len())
        .filter(|&i| company.staff[i].is_agent())
        .collect();
    let ids = &customer_ids;
    let plan: Vec<(usize, String)> = agents
        .iter()
        .enumerate()
        .flat_map(|(n, &agent)| {
            (0..cases_per_agent).filter_map(move |k| {
                let customer = (n * cases_per_agent + k) * 7 % ids.len().max(1);
                ids.get(customer).map(|c| (agent, c.clone()))
            })
        })
        .collect();
    let progress = bar(plan.len(), "cases", quiet);
    let channels = ["phone", "chat", "email", "store"];
    // Varied, as a CRM's are: the reason is what tells an agent's cases apart.
    let reasons = [
        "asked where an order is",
        "wants to change the delivery address",
        "reports a double charge on the card",
        "asks to update the phone number",
        "return of a damaged item",
    ];
    let opened: Vec<(usize, String, String)> = futures::stream::iter(plan.into_iter().enumerate())
        .map(|(n, (agent, customer))| {
            let client = &client;
            let crm = &crm;
            let progress = &progress;
            let assignee = staff[agent].id.clone();
            async move {
                let body = serde_json::json!({
                    "customer": customer, "assignee": assignee,
                    "channel": channels[n % channels.len()], "reason": reasons[n % reasons.len()],
                });
                let created = post(client, format!("{base}/v1/cases"), crm, Some(body))
                    .await
                    .map_err(fail("cases"))?;
                progress.inc(1);
                Ok::<_, LoadError>((
                    agent,
                    created["id"].as_str().unwrap_or_default().to_owned(),
                    customer,
                ))
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
        url: base.to_owned(),
        customer_ids,
        staff,
    })
}

/// Reads a `demo-tokens.json` written by `custos demo`.
pub fn read_tokens(path: &Path) -> Option<Loaded> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
