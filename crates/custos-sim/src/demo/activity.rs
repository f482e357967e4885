//! The demo's short working day, in seconds, through the real API: colleagues do an
//! ordinary morning's work, a partner sales agent opens far more customers than their
//! peers (the CRM opened cases for every one of them), and a partner support agent
//! searches for a planted canary's phone number. The real detector, reading the ledger,
//! raises real alerts about the two of them. No one whose token the demo prints for the
//! walkthrough takes part.

use std::collections::HashSet;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use custos_client::{Answer, Client, ContactRequest, Http, NewCase, RevealRequest, Search};
use custos_service::{DirectAccess, SharedApp};

use crate::Failure;
use crate::demo::canaries;
use crate::demo::load::{Loaded, StaffToken};

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

/// The demo staff member `id`.
pub fn staff<'a>(loaded: &'a Loaded, id: &str) -> Result<&'a StaffToken, Failure> {
    loaded
        .staff
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| Failure::new("demo_activity", format!("no demo staff member {id}")))
}

/// A refusal where the day needs success, with the server's code.
fn refused(what: &str, answer: &Answer) -> Failure {
    Failure::new(
        "demo_activity",
        format!("{what}: HTTP {} {}", answer.status, answer.code()),
    )
}

/// How long the first start waits for the detector to read the demo's working day.
const ALERT_WAIT: Duration = Duration::from_secs(30);

/// The working day ([`run`]) on the demo's own gateway, then a bounded wait until its
/// detector has read everything the day wrote; notes each insider it has not alerted
/// about yet.
pub async fn run_and_await_alerts(
    app: &SharedApp,
    direct: &DirectAccess,
    client: &Client<Http>,
    admin_token: &str,
    loaded: &Loaded,
) -> Result<(), Failure> {
    let store_err = |e: custos_store::StoreError| Failure::new(e.code(), e.to_string());
    crate::stdout::note(format_args!("A short working day, with two insiders ..."));
    let insiders = run(client, admin_token, loaded).await?;
    if !app.detector_caught_up(ALERT_WAIT).await {
        crate::stdout::note(format_args!(
            "the detector has not caught up after {ALERT_WAIT:?}; alerts may follow"
        ));
    }
    let alerts = direct
        .store(app)
        .alerts(None, 1000)
        .await
        .map_err(store_err)?;
    for who in insiders {
        if !alerts.iter().any(|a| a.staff_id == who) {
            crate::stdout::note(format_args!("no alert about {who} yet"));
        }
    }
    Ok(())
}

/// Runs the working day against the gateway (`admin_token` plants the canaries);
/// returns the staff ids the detector is expected to alert about.
pub async fn run(
    client: &Client<Http>,
    admin_token: &str,
    loaded: &Loaded,
) -> Result<[&'static str; 2], Failure> {
    let reveal_phone = |case| RevealRequest {
        fields: &["phone"],
        case,
        reason: "call the customer back",
        step_up_reason: None,
    };

    // Ordinary work: each colleague opens their customers and calls one back through a
    // privacy number (no reveal).
    let colleagues = COLLEAGUES
        .iter()
        .map(|id| staff(loaded, id))
        .collect::<Result<Vec<_>, _>>()?;
    futures::stream::iter(colleagues)
        .map(|who| async move {
            for (n, (case, customer)) in who.cases.iter().enumerate() {
                let view = client.view(&who.token, customer, case).await?;
                if view.status != 200 {
                    let what = format!("{} could not open their case's customer", who.id);
                    return Err(refused(&what, &view));
                }
                if n == 0 {
                    let call = ContactRequest {
                        case,
                        channel: "call",
                        subject: None,
                        text: None,
                    };
                    let bound = client.contact(&who.token, customer, &call).await?;
                    if bound.status != 200 {
                        let what = format!("{} could not call their case's customer", who.id);
                        return Err(refused(&what, &bound));
                    }
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
        .map(|customer| async move {
            let case = NewCase {
                customer,
                assignee: HARVESTER,
                channel: "phone",
                reason: "follow-up on a sales lead",
                inbound: true,
                requested_by: None,
                contact: None,
                campaign: None,
            };
            let created = client.create_case(&crm.token, &case).await?;
            if created.status != 201 {
                return Err(refused("the CRM could not open a case", &created));
            }
            let id = created.body["id"].as_str().unwrap_or_default().to_owned();
            Ok((id, customer))
        })
        .buffered(PARALLEL)
        .try_collect()
        .await?;
    // Refusals are expected once the detector lowers the harvester's quota.
    for (case, customer) in &cases {
        client.view(&harvester.token, customer, case).await?;
        client
            .reveal(&harvester.token, customer, &reveal_phone(case))
            .await?;
    }

    // The canary searcher: looks a planted canary up by its phone number.
    let canaries = match canaries::plant(client, admin_token, CANARIES).await? {
        Ok(planted) => planted,
        Err(answer) => return Err(refused("cannot plant the canaries", &answer)),
    };
    let searcher = staff(loaded, CANARY_SEARCHER)?;
    if let Some((_, canary)) = canaries.first() {
        client
            .search(&searcher.token, Search::Phone(&canary.phone))
            .await?;
    }
    Ok([HARVESTER, CANARY_SEARCHER])
}
