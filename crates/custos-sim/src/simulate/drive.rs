//! Turns the plan into requests to the real gateway, in process: the same router,
//! policy, quotas, ledger and detector as `custos serve`, with each request carrying its
//! simulated time (`X-Custos-Simulated-Time`).
//!
//! Time advances in five-minute slices. The scripts starting in a slice run concurrently
//! (each script's steps in order); before the next slice the driver waits until the
//! detector has read the whole ledger, as a detector keeping up in real time would have.
//! So an insider suspended at 10:03 gets nothing from 10:05 on: the slice bounds how
//! late an action takes effect (the detector itself keeps up within a second, see
//! BENCHMARKS.md), and is what keeps enough requests in flight for a fast run.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use futures::StreamExt;
use rand::Rng;
use tower::ServiceExt;

use custos_client::{
    AccessDecision, Answer, CallerIdentifier, Client, ClientError, ContactRequest, Method,
    NewAccessRequest, NewBreakGlass, NewCase, NewContact, NewStaff, RawAnswer, Request,
    RevealRequest, Search, Transport,
};
use custos_gateway::record::LEDGER_INDEX_HEADER;
use custos_service::SharedApp;
use custos_types::Role;
use custos_types::calendar::DAY_MS;

use super::company::{EPOCH_MS, local_time};
use super::plan::{Contact, Origin, Plan, Script, Work};
use super::rng;
use super::scenario::Unlock;

/// Scripts in flight at once.
const CONCURRENCY: usize = 128;
/// Customers per import request.
const IMPORT_CHUNK: usize = 5_000;
/// Length of a slice of simulated time.
const SLICE_MS: i64 = 5 * 60_000;
/// How long the run waits for the detector at the end of a slice before it gives up: far
/// longer than a slice's records take, short enough that a stopped detector ends the run.
const DETECTOR_WAIT: std::time::Duration = std::time::Duration::from_secs(120);
/// The CRM integration's staff id.
pub const CRM: &str = "sim-crm";
/// The contact centre's staff id: it reports the inbound contacts it routes.
pub const SWITCH: &str = "sim-switch";

/// The tokens of the company's systems that call Custos beside its people, and what
/// the approvers remember of the day.
struct Systems {
    /// The CRM: opens cases nobody's contact vouches for.
    crm: String,
    /// The contact centre: reports inbound contacts, which open verified cases.
    switch: String,
    /// Access requests approved today per requester (staff index, day), as the honest
    /// approvers who see the queue know them.
    approved: Mutex<HashMap<(usize, u32), u32>>,
}

/// The privacy-number pool the simulated company's PBX lends to the relay: enough for
/// every open case of a busy agent.
pub fn privacy_numbers() -> Vec<String> {
    (0..2_000).map(|n| format!("+861069{n:06}")).collect()
}

/// The gateway's router as a [`Transport`]: each request goes through the same router,
/// middleware and handlers as over HTTP, without a socket.
pub struct InProcess {
    router: Router,
}

impl Transport for InProcess {
    async fn send(&self, request: Request) -> Result<RawAnswer, ClientError> {
        let unreachable = |reason: String| ClientError::Unreachable {
            base: "the gateway in process".into(),
            reason,
        };
        let method = match request.method {
            Method::Get => axum::http::Method::GET,
            Method::Post => axum::http::Method::POST,
            Method::Delete => axum::http::Method::DELETE,
        };
        let mut builder = axum::http::Request::builder()
            .method(method)
            .uri(&request.path);
        if let Some(token) = &request.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let body = match request.body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let request = builder
            .body(body)
            .map_err(|e| ClientError::Request(e.to_string()))?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 << 20)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(RawAnswer {
            status: parts.status.as_u16(),
            headers: parts.headers,
            bytes: bytes.to_vec(),
        })
    }
}

/// The gateway as the driver uses it: the typed client over its router, and the app
/// (to wait for the detector).
pub struct Gateway {
    client: Client<InProcess>,
    app: SharedApp,
}

impl Gateway {
    /// Wraps a started app.
    pub fn new(app: SharedApp) -> Gateway {
        Gateway {
            client: Client::new(InProcess {
                router: custos_gateway::router(app.clone()),
            }),
            app,
        }
    }

    /// The client, with requests carrying simulated time `at`.
    fn at(&self, at: i64) -> Client<InProcess> {
        self.client.at(at)
    }

    /// Waits until the detector has read every ledger entry (including its own).
    async fn detector_caught_up(&self) -> Result<(), String> {
        if self.app.detector_caught_up(DETECTOR_WAIT).await {
            Ok(())
        } else {
            Err(format!(
                "the detector has stopped, or not caught up within {DETECTOR_WAIT:?}"
            ))
        }
    }
}

/// What happened to one insider during the run.
#[derive(Clone, Debug, Default)]
pub struct InsiderOutcome {
    /// Time of the first abusive access attempt (view or search).
    pub first_abuse: Option<i64>,
    /// Real customers whose fields were revealed to them in abusive contacts.
    pub revealed: HashSet<u32>,
    /// Canary customers they tried to open.
    pub canaries_touched: u32,
    /// Canaries Custos allocated to them whose fields they revealed (vault numbers):
    /// part of what a leak of theirs carries.
    pub allocated_revealed: HashSet<u32>,
    /// Abusive requests refused (quota, policy, suspension).
    pub refused: u64,
    /// Ledger indexes of the records of their abusive requests (views, reveals,
    /// searches, closings, queue looks made as part of the abuse): an alert on them is
    /// a detection only when it cites one of these.
    pub abusive_entries: HashSet<u64>,
}

/// Totals of the run with protections on.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Per insider, in plan order.
    pub insiders: Vec<InsiderOutcome>,
    /// Requests sent.
    pub requests: u64,
    /// Honest contacts worked.
    pub honest_contacts: u64,
    /// Cases on allocated canaries worked in honest work.
    pub honest_canary_cases: u64,
    /// Honest views or reveals refused.
    pub honest_refused: u64,
    /// Honest contacts in which the person asked for a field in full (a reveal, or an
    /// access request for one).
    pub honest_reveal_contacts: u64,
    /// Honest contacts in which the person reached the customer through the relay.
    pub honest_relay_contacts: u64,
    /// Honest access requests, and how many of them were approved.
    pub honest_requests: (u64, u64),
    /// People who worked, per day summed (the staff-days of the false-alert rate): those
    /// who handle contacts, on their working days, not suspended before the day began.
    pub staff_days: u64,
    /// Staff ids, in company order.
    pub staff_ids: Vec<String>,
    /// The vault the run created.
    pub vault: Vault,
}

/// The vault as created, real customers then canaries (index = the plan's customer
/// number).
#[derive(Clone, Debug, Default)]
pub struct Vault {
    /// Customer ids the gateway gave.
    pub ids: Vec<String>,
    /// The customers in plaintext, as imported.
    pub people: Vec<crate::demo::data::DemoCustomer>,
    /// Vault number of each canary, by id.
    pub canary_numbers: HashMap<String, u32>,
}

/// Loads the company into the gateway and runs the plan day by day.
pub async fn run(
    gateway: &Gateway,
    admin_token: &str,
    plan: &Plan,
    seed: u64,
    progress: &indicatif::ProgressBar,
) -> Result<Outcome, String> {
    let setup_at = EPOCH_MS - DAY_MS;
    let tokens = create_staff(gateway, admin_token, plan, setup_at).await?;
    let systems = Systems {
        crm: tokens
            .get(CRM)
            .cloned()
            .ok_or("the CRM integration has no token")?,
        switch: tokens
            .get(SWITCH)
            .cloned()
            .ok_or("the contact centre has no token")?,
        approved: Mutex::new(HashMap::new()),
    };
    let vault = create_vault(gateway, admin_token, plan, seed, setup_at).await?;
    let staff_tokens: Vec<String> = plan
        .company
        .staff
        .iter()
        .map(|p| tokens.get(&p.id).cloned().unwrap_or_default())
        .collect();
    let mut outcome = Outcome {
        insiders: vec![InsiderOutcome::default(); plan.insiders.len()],
        staff_ids: plan.company.staff.iter().map(|p| p.id.clone()).collect(),
        ..Outcome::default()
    };
    let mut locked_out: HashSet<usize> = HashSet::new();
    for day in 0..plan.company.days {
        outcome.staff_days += (0..plan.company.staff.len())
            .filter(|&s| {
                plan.works(s, day)
                    && plan.company.staff[s].contacts_per_day > 0.0
                    && !locked_out.contains(&s)
            })
            .count() as u64;
        let scripts = plan.day(day);
        let mut start = 0;
        while start < scripts.len() {
            let slice = (scripts[start].at - local_time(day, 0.0)).div_euclid(SLICE_MS);
            let end = start
                + scripts[start..]
                    .iter()
                    .take_while(|s| (s.at - local_time(day, 0.0)).div_euclid(SLICE_MS) == slice)
                    .count();
            let batch = scripts[start..end]
                .iter()
                .filter(|s| !locked_out.contains(&s.staff));
            let results: Vec<Result<Done, String>> = futures::stream::iter(batch)
                .map(|script| run_script(gateway, &systems, &staff_tokens, &vault, plan, script))
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for done in results {
                let done = done?;
                outcome.requests += done.requests;
                match done.insider {
                    Some(i) => {
                        let o = &mut outcome.insiders[i];
                        if let Some(t) = done.first_access {
                            o.first_abuse = Some(o.first_abuse.map_or(t, |f| f.min(t)));
                        }
                        if let Some(c) = done.revealed {
                            o.revealed.insert(c);
                        }
                        o.allocated_revealed.extend(done.allocated_revealed);
                        o.canaries_touched += u32::from(done.canary);
                        o.refused += done.refused;
                        o.abusive_entries.extend(done.entries);
                    }
                    None => {
                        outcome.honest_contacts += u64::from(done.contact);
                        outcome.honest_canary_cases += done.canary_cases;
                        outcome.honest_refused += done.refused;
                        outcome.honest_reveal_contacts += u64::from(done.asked_in_full);
                        outcome.honest_relay_contacts += u64::from(done.relayed);
                        outcome.honest_requests.0 += u64::from(done.requested.is_some());
                        outcome.honest_requests.1 += u64::from(done.requested == Some(true));
                    }
                }
                if let Some((i, at, entry)) = done.accomplice {
                    let o = &mut outcome.insiders[i];
                    o.first_abuse = Some(o.first_abuse.map_or(at, |f| f.min(at)));
                    o.abusive_entries.insert(entry);
                }
                if done.suspended {
                    // A suspended person notices and stops trying.
                    locked_out.insert(done.staff);
                }
            }
            gateway.detector_caught_up().await?;
            start = end;
        }
        progress.inc(1);
    }
    gateway.detector_caught_up().await?;
    outcome.vault = vault;
    Ok(outcome)
}

/// What one script did.
struct Done {
    staff: usize,
    insider: Option<usize>,
    requests: u64,
    contact: bool,
    first_access: Option<i64>,
    revealed: Option<u32>,
    allocated_revealed: Vec<u32>,
    /// Cases on allocated canaries worked.
    canary_cases: u64,
    canary: bool,
    refused: u64,
    suspended: bool,
    /// Ledger indexes of the person's requests (kept for abusive scripts only).
    entries: Vec<u64>,
    /// Whether a field was asked for in full (a reveal or an access request).
    asked_in_full: bool,
    /// Whether the customer was reached through the relay.
    relayed: bool,
    /// An access request made: whether it was approved.
    requested: Option<bool>,
    /// A colluding approver's approval: the approver (insider index), when, its ledger
    /// index.
    accomplice: Option<(usize, i64, u64)>,
}

async fn run_script(
    gateway: &Gateway,
    systems: &Systems,
    tokens: &[String],
    vault: &Vault,
    plan: &Plan,
    script: &Script,
) -> Result<Done, String> {
    let person = &plan.company.staff[script.staff];
    let token = tokens[script.staff].as_str();
    let mut done = Done {
        staff: script.staff,
        insider: script.insider,
        requests: 0,
        contact: false,
        first_access: None,
        revealed: None,
        allocated_revealed: Vec::new(),
        canary_cases: 0,
        canary: false,
        refused: 0,
        suspended: false,
        entries: Vec::new(),
        asked_in_full: false,
        relayed: false,
        requested: None,
        accomplice: None,
    };
    match &script.work {
        Work::Probe(target) => {
            let phone = match target {
                Some(c) => vault.people[*c as usize].phone.clone(),
                None => {
                    let mut rng = rng::stream(script.at as u64, "probe", script.staff as u64);
                    format!("139{:08}", rng.random_range(0..100_000_000u32))
                }
            };
            done.first_access = Some(script.at);
            let answer = gateway
                .at(script.at)
                .search(token, Search::Phone(&phone))
                .await
                .map_err(|e| e.to_string())?;
            note(&mut done, &answer);
        }
        Work::Contact(contact) => {
            done.contact = true;
            work_contact(
                gateway,
                systems,
                tokens,
                vault,
                plan,
                script,
                person.id.as_str(),
                contact,
                &mut done,
            )
            .await?;
        }
    }
    Ok(done)
}

/// The CRM opens a case for `customer`, on `contact_id` if a contact stands behind it.
#[allow(clippy::too_many_arguments)]
async fn open_case(
    gateway: &Gateway,
    systems: &Systems,
    customer: &str,
    staff_id: &str,
    channel: &str,
    contact: &Contact,
    contact_id: Option<&str>,
    at: i64,
    done: &mut Done,
) -> Result<String, String> {
    let campaign = format!("campaign-{}", at.div_euclid(7 * DAY_MS));
    let case = NewCase {
        customer,
        assignee: staff_id,
        channel,
        reason: match contact.origin {
            Origin::Caller | Origin::OtherNumber => "customer enquiry",
            Origin::FollowUp => "follow-up",
            Origin::Campaign => "renewal campaign",
        },
        inbound: contact.origin.inbound(),
        requested_by: (contact.origin == Origin::FollowUp).then_some(staff_id),
        contact: contact_id,
        campaign: (contact.origin == Origin::Campaign).then_some(campaign.as_str()),
    };
    let created = gateway
        .at(at)
        .create_case(&systems.crm, &case)
        .await
        .map_err(|e| e.to_string())?;
    done.requests += 1;
    created.body["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "the CRM could not open a case: {} {}",
                created.status, created.body
            )
        })
}

/// Counts an answer to one of the person's requests.
fn note(done: &mut Done, answer: &Answer) {
    done.requests += 1;
    if done.insider.is_some()
        && let Some(index) = answer
            .headers
            .get(LEDGER_INDEX_HEADER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
    {
        done.entries.push(index);
    }
    if answer.is_refused() {
        done.refused += 1;
        if answer.body["error"]["policy"] == "suspended" {
            done.suspended = true;
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn work_contact(
    gateway: &Gateway,
    systems: &Systems,
    tokens: &[String],
    vault: &Vault,
    plan: &Plan,
    script: &Script,
    staff_id: &str,
    contact: &Contact,
    done: &mut Done,
) -> Result<(), String> {
    const CHANNELS: [&str; 4] = ["phone", "chat", "email", "store"];
    let token = tokens[script.staff].as_str();
    let customer = &vault.ids[contact.customer as usize];
    let at = script.at;
    let channel = CHANNELS[contact.customer as usize % 4];
    // Someone else's number or address: a prefix and a domain no customer has.
    let other_phone = format!(
        "170{:08}",
        rng::stream(at as u64, "other", script.staff as u64).random_range(0..100_000_000u32)
    );
    let other_email = format!("{}@elsewhere.example", other_phone);
    let caller = match contact.origin {
        // The customer called, wrote or came in: the contact centre reports the contact
        // with the number it came from, which vouches for the case (`verified`). (A
        // canary is no one: no contact of its own comes in.)
        Origin::Caller => vault
            .people
            .get(contact.customer as usize)
            .filter(|_| contact.customer < plan.vault.customers)
            .map(|person| (person.phone.as_str(), person.email.as_str())),
        // From another number: reported as well, and vouches for nothing.
        Origin::OtherNumber => Some((other_phone.as_str(), other_email.as_str())),
        Origin::FollowUp | Origin::Campaign => None,
    };
    let case_id = if let Some((phone, email)) = caller {
        let caller = if channel == "email" {
            CallerIdentifier::Email(email)
        } else {
            CallerIdentifier::Phone(phone)
        };
        let posted = gateway
            .at(at)
            .post_contact(
                &systems.switch,
                &NewContact {
                    channel,
                    caller,
                    agent: staff_id,
                    at: Some(at),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        done.requests += 1;
        match (posted.body["case"].as_str(), posted.body["id"].as_str()) {
            (Some(case), _) => case.to_owned(),
            // The number is no customer's, or more than one's: the CRM opens the case on
            // it.
            (None, Some(contact_id)) => {
                open_case(
                    gateway,
                    systems,
                    customer,
                    staff_id,
                    channel,
                    contact,
                    Some(contact_id),
                    at,
                    done,
                )
                .await?
            }
            _ => {
                return Err(format!(
                    "the contact centre could not report a contact: {} {}",
                    posted.status, posted.body
                ));
            }
        }
    } else {
        open_case(
            gateway, systems, customer, staff_id, channel, contact, None, at, done,
        )
        .await?
    };
    let is_canary = contact.customer >= plan.vault.customers;
    if contact.search_first {
        let phone = &vault.people[contact.customer as usize].phone;
        let answer = gateway
            .at(at + 3_000)
            .search(token, Search::Phone(phone))
            .await
            .map_err(|e| e.to_string())?;
        note(done, &answer);
    }
    let view_at = at + i64::from(contact.view_after_s) * 1000;
    done.first_access = Some(view_at);
    done.canary = is_canary;
    let view = gateway
        .at(view_at)
        .view(token, customer, &case_id)
        .await
        .map_err(|e| e.to_string())?;
    note(done, &view);
    if view.status != 200 {
        return Ok(());
    }
    let reveal_at = at + i64::from(contact.reveal_after_s) * 1000;
    if contact.relay_call {
        let answer = gateway
            .at(reveal_at - 5_000)
            .contact(
                token,
                customer,
                &ContactRequest {
                    case: &case_id,
                    channel: "call",
                    subject: None,
                    text: None,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        note(done, &answer);
        done.relayed = answer.is_success();
    }
    if !contact.reveal.is_empty() {
        done.asked_in_full = true;
        let mut request = RevealRequest {
            fields: &contact.reveal,
            case: &case_id,
            reason: "call-back",
            step_up_reason: None,
        };
        let mut answer = gateway
            .at(reveal_at)
            .reveal(token, customer, &request)
            .await
            .map_err(|e| e.to_string())?;
        note(done, &answer);
        let mut tried_at = reveal_at;
        if answer.code() == "step_up_required" {
            // Under a step-up the person justifies the reveal and tries again (an
            // insider as readily as anyone).
            request.step_up_reason = Some("customer asked to be called back about an order");
            tried_at += 20_000;
            answer = gateway
                .at(tried_at)
                .reveal(token, customer, &request)
                .await
                .map_err(|e| e.to_string())?;
            note(done, &answer);
        }
        // No channel vouches for the case: the fields need an approval or break-glass.
        if answer.status == 403 && contact.origin != Origin::Caller {
            let unlocked = unlock(
                gateway, systems, tokens, plan, script, customer, &case_id, contact, tried_at, done,
            )
            .await?;
            if let Some(granted_at) = unlocked {
                answer = gateway
                    .at(granted_at + 30_000)
                    .reveal(token, customer, &request)
                    .await
                    .map_err(|e| e.to_string())?;
                note(done, &answer);
            }
        }
        if answer.status == 200 && !is_canary {
            done.revealed = Some(contact.customer);
        }
    }
    if let Some(after) = contact.close_after_s {
        close_case(gateway, token, &case_id, at + i64::from(after) * 1000, done).await?;
    }
    let allocation = &gateway.app.config().canaries;
    if allocation.allocation_rate > 0.0 || allocation.allocation_rate_self_requested > 0.0 {
        // After the contact, a look at the queue: what Custos put there.
        let after = contact
            .close_after_s
            .unwrap_or(0)
            .max(contact.reveal_after_s)
            + 30;
        let fields = if contact.reveal.is_empty() {
            vec!["phone"]
        } else {
            contact.reveal.clone()
        };
        let wary = script
            .insider
            .is_some_and(|i| plan.scenarios[plan.insiders[i].scenario].skip_planted);
        work_allocated(
            gateway,
            token,
            vault,
            script,
            (!wary).then_some(&fields[..]),
            at + i64::from(after) * 1000,
            done,
        )
        .await?;
    }
    Ok(())
}

/// Asks for the fields a refused reveal wanted, as `contact.unlock` says: an access
/// request that an approver decides, or break-glass. When the fields may be revealed.
#[allow(clippy::too_many_arguments)]
async fn unlock(
    gateway: &Gateway,
    systems: &Systems,
    tokens: &[String],
    plan: &Plan,
    script: &Script,
    customer: &str,
    case_id: &str,
    contact: &Contact,
    at: i64,
    done: &mut Done,
) -> Result<Option<i64>, String> {
    let token = tokens[script.staff].as_str();
    match contact.unlock {
        Unlock::None => Ok(None),
        Unlock::BreakGlass => {
            let answer = gateway
                .at(at + 10_000)
                .break_glass(
                    token,
                    &NewBreakGlass {
                        customer,
                        case: case_id,
                        fields: &contact.reveal,
                        reason: "customer in distress on the line, must call back at once",
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            note(done, &answer);
            Ok(answer.is_success().then_some(at + 10_000))
        }
        Unlock::Request => {
            let asked_at = at + 30_000;
            let answer = gateway
                .at(asked_at)
                .request_access(
                    token,
                    &NewAccessRequest {
                        customer,
                        case: case_id,
                        fields: &contact.reveal,
                        purpose: "customer asked to be called back on another matter",
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            note(done, &answer);
            let Some(id) = answer.body["id"].as_str().filter(|_| answer.is_success()) else {
                return Ok(None);
            };
            let day = super::company::day_of(asked_at).max(0) as u32;
            let mut rng = rng::stream(asked_at as u64, "approval", script.staff as u64);
            let Some(approver) = plan.approver_for(script.staff, day, rng.random()) else {
                return Ok(None);
            };
            let accomplice = plan
                .insider_of(approver)
                .filter(|&i| plan.insiders[i].approver);
            // A colluding approver acts at once; an honest one when they next look at the
            // queue, and approves what they are shown unless one person has asked for
            // more in a day than they would believe.
            let (delay_s, approve) = match accomplice {
                Some(_) => (rng.random_range(30..180), true),
                None => {
                    let mut approved = systems.approved.lock().map_err(|e| e.to_string())?;
                    let count = approved.entry((script.staff, day)).or_insert(0);
                    let believed =
                        *count < plan.world.approver_daily_limit && rng.random_bool(0.95);
                    if believed {
                        *count += 1;
                    }
                    (rng.random_range(120..1200), believed)
                }
            };
            let decided_at = asked_at + delay_s * 1000;
            let decision = gateway
                .at(decided_at)
                .decide_access(
                    tokens[approver].as_str(),
                    id,
                    approve,
                    &AccessDecision {
                        reason: if approve {
                            "purpose fits the case"
                        } else {
                            "not plausible"
                        },
                        minutes: None,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            done.requests += 1;
            let granted = approve && decision.is_success();
            if let (Some(i), true) = (accomplice, granted)
                && let Some(entry) = decision
                    .headers
                    .get(LEDGER_INDEX_HEADER)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
            {
                done.accomplice = Some((i, decided_at, entry));
            }
            done.requested = Some(granted);
            Ok(granted.then_some(decided_at))
        }
    }
}

async fn close_case(
    gateway: &Gateway,
    token: &str,
    case_id: &str,
    at: i64,
    done: &mut Done,
) -> Result<(), String> {
    let answer = gateway
        .at(at)
        .close_case(token, case_id)
        .await
        .map_err(|e| e.to_string())?;
    note(done, &answer);
    Ok(())
}

/// Works the cases Custos opened on the person's queue for canaries allocated to them.
/// The simulated person knows them by their customer (a real one sees ordinary cases;
/// these are the only ones on the queue not from a contact of theirs). An honest person
/// views the customer and, half the time, reveals the phone to call back; an insider
/// at work reveals `fields`, as from every case; either closes the case. An insider who
/// skips whatever looks planted (`fields` is `None`) leaves them alone.
async fn work_allocated(
    gateway: &Gateway,
    token: &str,
    vault: &Vault,
    script: &Script,
    fields: Option<&[&str]>,
    at: i64,
    done: &mut Done,
) -> Result<(), String> {
    let me = gateway.at(at).me(token).await.map_err(|e| e.to_string())?;
    note(done, &me);
    let cases = me.body["open_cases"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut rng = rng::stream(at as u64, "allocated", script.staff as u64);
    for case in &cases {
        let (Some(case_id), Some(customer)) = (case["id"].as_str(), case["customer"].as_str())
        else {
            continue;
        };
        let Some(&number) = vault.canary_numbers.get(customer) else {
            continue;
        };
        let Some(fields) = fields else {
            continue;
        };
        done.canary_cases += 1;
        let view = gateway
            .at(at + 5_000)
            .view(token, customer, case_id)
            .await
            .map_err(|e| e.to_string())?;
        note(done, &view);
        if view.status != 200 {
            return Ok(());
        }
        let reveal = match script.insider {
            Some(_) => fields,
            None if rng.random_bool(0.5) => &["phone"][..],
            None => &[][..],
        };
        if !reveal.is_empty() {
            let request = RevealRequest {
                fields: reveal,
                case: case_id,
                reason: "call-back",
                step_up_reason: None,
            };
            let answer = gateway
                .at(at + 20_000)
                .reveal(token, customer, &request)
                .await
                .map_err(|e| e.to_string())?;
            note(done, &answer);
            if answer.status == 200 && script.insider.is_some() {
                done.allocated_revealed.push(number);
            }
        }
        close_case(gateway, token, case_id, at + 60_000, done).await?;
    }
    Ok(())
}

/// Creates every person and the CRM integration, and issues their tokens.
async fn create_staff(
    gateway: &Gateway,
    admin: &str,
    plan: &Plan,
    at: i64,
) -> Result<HashMap<String, String>, String> {
    let mut people: Vec<(String, Role, &str)> = plan
        .company
        .staff
        .iter()
        .map(|p| (p.id.clone(), p.role, plan.company.org_of(p).name))
        .collect();
    people.push((CRM.to_owned(), Role::Integration, plan.company.orgs[0].name));
    people.push((
        SWITCH.to_owned(),
        Role::ContactCenter,
        plan.company.orgs[0].name,
    ));
    let created: Vec<Result<(String, String), String>> = futures::stream::iter(people)
        .map(|(id, role, org)| async move {
            let client = gateway.at(at);
            let name = format!("Simulated {id}");
            let new = NewStaff {
                id: &id,
                name: &name,
                role,
                org,
            };
            let answer = client
                .create_staff(admin, &new)
                .await
                .map_err(|e| e.to_string())?;
            if answer.status != 201 {
                return Err(format!(
                    "cannot create {id}: {} {}",
                    answer.status, answer.body
                ));
            }
            let token = client
                .issue_token(admin, &id)
                .await
                .map_err(|e| e.to_string())?;
            let token = token.body["token"]
                .as_str()
                .ok_or_else(|| format!("no token for {id}: {}", token.body))?
                .to_owned();
            Ok((id, token))
        })
        .buffer_unordered(16)
        .collect()
        .await;
    created.into_iter().collect()
}

/// Imports the customers and plants the canaries; returns their ids and phones.
async fn create_vault(
    gateway: &Gateway,
    admin: &str,
    plan: &Plan,
    seed: u64,
    at: i64,
) -> Result<Vault, String> {
    let mut vault = Vault::default();
    let total = plan.vault.customers as usize;
    let mut serial = 0u64;
    let mut chunk_index = 0u64;
    while vault.ids.len() < total {
        let n = IMPORT_CHUNK.min(total - vault.ids.len());
        let mut rng = rng::stream(seed, "customers", chunk_index);
        chunk_index += 1;
        let people = crate::demo::data::people(&mut rng, n, serial);
        serial += n as u64;
        let ids = upload(gateway, admin, Upload::Customers, &people, at).await?;
        // Phones are unique within a chunk; a rare clash across chunks is refused by the
        // gateway as a whole chunk, which is then drawn again.
        let Some(ids) = ids else { continue };
        vault.ids.extend(ids);
        vault.people.extend(people);
    }
    // A canary sharing a phone with a customer is refused (409): draw again.
    let canaries = (plan.vault.canaries + plan.vault.allocation_pool) as usize;
    for attempt in 0..10 {
        if canaries == 0 {
            return Ok(vault);
        }
        let mut rng = rng::stream(seed, "canaries", attempt);
        let people = crate::demo::data::people(&mut rng, canaries, 1_000_000_000);
        if let Some(ids) = upload(gateway, admin, Upload::Canaries, &people, at).await? {
            vault.canary_numbers = (total..)
                .zip(&ids)
                .map(|(n, id)| (id.clone(), n as u32))
                .collect();
            vault.ids.extend(ids);
            vault.people.extend(people);
            return Ok(vault);
        }
    }
    Err("cannot plant canaries: every draw collided with a customer".into())
}

/// What an upload creates.
#[derive(Clone, Copy, Debug)]
enum Upload {
    Customers,
    Canaries,
}

/// Posts `people` as NDJSON; `None` when refused for a duplicate (409).
async fn upload(
    gateway: &Gateway,
    admin: &str,
    what: Upload,
    people: &[crate::demo::data::DemoCustomer],
    at: i64,
) -> Result<Option<Vec<String>>, String> {
    let ndjson = custos_client::ndjson(people).map_err(|e| e.to_string())?;
    let client = gateway.at(at);
    let answer = match what {
        Upload::Customers => client.import(admin, ndjson).await,
        Upload::Canaries => client.plant_canaries(admin, ndjson).await,
    }
    .map_err(|e| e.to_string())?;
    if answer.status == 409 {
        return Ok(None);
    }
    if !answer.is_success() {
        return Err(format!("{what:?}: {} {}", answer.status, answer.body));
    }
    let ids: Vec<String> = answer.body["ids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if ids.len() != people.len() {
        return Err(format!(
            "{what:?}: {} ids for {} customers",
            ids.len(),
            people.len()
        ));
    }
    Ok(Some(ids))
}
