//! The demo's short working day, in seconds, through the real API: colleagues do an
//! ordinary morning's work, a partner sales agent opens far more customers than their
//! peers (the CRM opened cases for every one of them), and a partner support agent
//! searches for a planted canary's phone number. The real detector, reading the ledger,
//! raises real alerts about the two of them. No one whose token the demo prints for the
//! walkthrough takes part.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};

use custos::demo_load::{Loaded, StaffToken};

use crate::Fatal;
use crate::canary_cli;

/// The walkthrough's security analyst.
pub const ANALYST: &str = "custos.security_analyst.001";
/// The walkthrough's support agent at the company.
pub const AGENT: &str = "custos.support.001";
/// The walkthrough's support agent at a partner company.
pub const PARTNER_AGENT: &str = "huaxin-bpo.support.001";
/// The CRM integration's staff id.
pub const CRM: &str = "crm";

/// The harvester's peers (same partner, same role), who do ordinary work first.
const COLLEAGUES: [&str; 8] = [
    "dongfang-sales.sales.001",
    "dongfang-sales.sales.002",
    "dongfang-sales.sales.003",
    "dongfang-sales.sales.004",
    "dongfang-sales.sales.005",
    "dongfang-sales.sales.006",
    "dongfang-sales.sales.007",
    "dongfang-sales.sales.008",
];
/// Opens and reveals far more customers than their peers: `risk_step_up`, then
/// `risk_lower_quota` (whose lowered quota then stops them).
const HARVESTER: &str = "dongfang-sales.sales.014";
/// Customers the CRM opens cases for, for the harvester (within the sales quota of 80).
const HARVEST: usize = 40;
/// Searches for a canary's phone number: `canary_hit`, and suspension.
const CANARY_SEARCHER: &str = "lianxun-support.support.036";
/// Canaries planted among the customers.
const CANARIES: usize = 5;
/// Requests in flight.
const PARALLEL: usize = 8;

fn fatal(e: reqwest::Error) -> Fatal {
    Fatal::new("demo_activity", e.without_url().to_string())
}

/// The demo staff member `id`.
pub fn staff<'a>(loaded: &'a Loaded, id: &str) -> Result<&'a StaffToken, Fatal> {
    loaded
        .staff
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Fatal::new("demo_activity", format!("no demo staff member {id}")))
}

/// Sends a request; answers its status and JSON body (null if there is none).
async fn send(request: reqwest::RequestBuilder) -> Result<(u16, Value), Fatal> {
    let response = request.send().await.map_err(fatal)?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Runs the working day against the gateway at `base` (`admin_token` plants the
/// canaries); returns the staff ids the detector is expected to alert about.
pub async fn run(
    base: &str,
    admin_token: &str,
    loaded: &Loaded,
) -> Result<[&'static str; 2], Fatal> {
    let client = reqwest::Client::new();
    let view = |who: &StaffToken, customer: &str, case: &str| {
        client
            .get(format!("{base}/v1/customers/{customer}"))
            .bearer_auth(&who.token)
            .header("x-custos-case", case)
    };
    let reveal = |who: &StaffToken, customer: &str, case: &str| {
        client
            .post(format!("{base}/v1/customers/{customer}/reveal"))
            .bearer_auth(&who.token)
            .json(&json!({"fields": ["phone"], "case": case, "reason": "call the customer back"}))
    };

    // Ordinary work: each colleague opens their customers and calls one back.
    let colleagues = COLLEAGUES
        .iter()
        .map(|id| staff(loaded, id))
        .collect::<Result<Vec<_>, _>>()?;
    futures::stream::iter(colleagues)
        .map(|who| async move {
            for (n, (case, customer)) in who.cases.iter().enumerate() {
                let (status, body) = send(view(who, customer, case)).await?;
                if status != 200 {
                    return Err(Fatal::new(
                        "demo_activity",
                        format!(
                            "{} could not open their case's customer: {status} {body}",
                            who.id
                        ),
                    ));
                }
                if n == 0 {
                    send(reveal(who, customer, case)).await?;
                }
            }
            Ok(())
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<()>>()
        .await?;

    // The harvester: the CRM opens cases for many customers no walkthrough person
    // serves, and the harvester opens and reveals each of them.
    let crm = staff(loaded, CRM)?;
    let harvester = staff(loaded, HARVESTER)?;
    let served: HashSet<&str> = loaded
        .staff
        .iter()
        .flat_map(|s| s.cases.iter().map(|(_, c)| c.as_str()))
        .collect();
    let targets: Vec<&String> = loaded
        .customer_ids
        .iter()
        .rev()
        .filter(|c| !served.contains(&c.as_str()))
        .take(HARVEST)
        .collect();
    let cases: Vec<(String, &String)> = futures::stream::iter(targets)
        .map(|customer| {
            let request = client
                .post(format!("{base}/v1/cases"))
                .bearer_auth(&crm.token)
                .json(&json!({
                    "customer": customer, "assignee": HARVESTER,
                    "channel": "phone", "reason": "follow-up on a sales lead",
                }));
            async move {
                match send(request).await? {
                    (201, body) => {
                        Ok((body["id"].as_str().unwrap_or_default().to_owned(), customer))
                    }
                    (status, body) => Err(Fatal::new(
                        "demo_activity",
                        format!("the CRM could not open a case: {status} {body}"),
                    )),
                }
            }
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    // Refusals are expected once the detector lowers the harvester's quota.
    for (case, customer) in &cases {
        send(view(harvester, customer, case)).await?;
        send(reveal(harvester, customer, case)).await?;
    }

    // The canary searcher: looks a planted canary up by its phone number.
    let canaries = canary_cli::plant(base, admin_token, CANARIES).await?;
    let searcher = staff(loaded, CANARY_SEARCHER)?;
    if let Some((_, canary)) = canaries.first() {
        send(
            client
                // A national mobile number: digits only, nothing to escape.
                .get(format!("{base}/v1/customers?phone={}", canary.phone))
                .bearer_auth(&searcher.token),
        )
        .await?;
    }
    Ok([HARVESTER, CANARY_SEARCHER])
}
