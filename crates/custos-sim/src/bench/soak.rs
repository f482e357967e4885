//! `custos bench soak`: the demo company under a steady mixed load for minutes or hours,
//! against a server loaded by `custos demo` (run by `bench/soak.sh`, which also verifies
//! the ledger before and after).
//!
//! Operations are dispatched at a fixed rate (open loop) with at most `concurrency` in
//! flight, in a fixed mix: masked views, reveals, searches, cases opened and closed by
//! the CRM, leak traces, ledger reads and console pages. Each window of `window` seconds
//! prints one JSON line (requests, p50/p99, refusals by status and code, server errors,
//! the server's resident memory); the last line sums up and says whether the run held:
//! no server error (5xx or no answer) and resident memory grown by less than
//! `max_rss_growth` percent from the end of the warm-up to the end.
//!
//! Refusals (4xx) are the server doing its job — the detector may restrict an agent who
//! works far faster than any person — so they are counted by code, not failed on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use custos_client::{
    Answer, Client, ClientError, Http, Method, NewCase, Request, RevealRequest, Search,
};
use custos_types::Role;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::Failure;
use crate::demo::data::{self as demo_data, DEMO_SEED, DemoCustomer};
use crate::demo::{activity, load};

/// Options of `custos bench soak`.
#[derive(clap::Args)]
pub struct SoakArgs {
    /// The `demo-tokens.json` written by `custos demo` (holds the URL, tokens and cases).
    #[arg(long)]
    tokens: PathBuf,
    /// Measured seconds, after the warm-up.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Unmeasured seconds first; resident memory's baseline is read at their end.
    #[arg(long, default_value_t = 30)]
    warmup: u64,
    /// Operations started per second, in all.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Operations in flight at most; when all are busy, the rate drops.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds per report line.
    #[arg(long, default_value_t = 60)]
    window: u64,
    /// The server's process id: its resident memory is read from /proc/PID/status.
    #[arg(long)]
    pid: Option<u32>,
    /// The most resident memory may grow, in percent of the baseline, for the run to hold.
    #[arg(long, default_value_t = 10.0)]
    max_rss_growth: f64,
}

/// What the soak does, and how often in every hundred operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// A masked view of a customer on the agent's own open case.
    View,
    /// One field revealed in full on the agent's own open case.
    Reveal,
    /// A search by phone among the agent's open cases' customers.
    Search,
    /// The CRM opens a case for an agent, then closes it.
    Case,
    /// An analyst traces a leaked list of 20 customers.
    Trace,
    /// An analyst reads the checkpoint and an entry's proof.
    LedgerRead,
    /// A console page, as an agent or the analyst.
    Console,
}

impl Op {
    const MIX: [(Op, u64); 7] = [
        (Op::View, 50),
        (Op::Reveal, 8),
        (Op::Search, 10),
        (Op::Case, 5),
        (Op::Trace, 2),
        (Op::LedgerRead, 15),
        (Op::Console, 10),
    ];

    /// The `n`th operation: a fixed permutation of the hundred slots, so that rare
    /// operations are spread over each hundred rather than bunched.
    fn nth(n: u64) -> Op {
        let mut slot = (n * 37) % 100;
        for (op, weight) in Op::MIX {
            if slot < weight {
                return op;
            }
            slot -= weight;
        }
        Op::View
    }

    fn name(self) -> &'static str {
        match self {
            Op::View => "view",
            Op::Reveal => "reveal",
            Op::Search => "search",
            Op::Case => "case",
            Op::Trace => "trace",
            Op::LedgerRead => "ledger_read",
            Op::Console => "console",
        }
    }
}

/// An agent the soak works as: a token and its open cases with the customers' phones.
struct Agent {
    id: String,
    token: String,
    /// (case id, customer id, customer's phone).
    cases: Vec<(String, String, String)>,
}

/// Everything the operations need, shared by all of them.
struct World {
    client: Client<Http>,
    /// A client that does not follow redirects, for the console's sign-in.
    browser: reqwest::Client,
    base: String,
    agents: Vec<Agent>,
    analyst: String,
    crm: String,
    customers: Vec<DemoCustomer>,
    /// Console sessions (cookie headers) by staff token; signed in again when expired.
    sessions: Mutex<BTreeMap<String, String>>,
}

/// One window's counts.
#[derive(Default)]
struct Window {
    latencies_us: Vec<u64>,
    by_op: BTreeMap<&'static str, u64>,
    /// Refusals and failures, as `"<status> <code>"` or `"no_answer"`.
    refusals: BTreeMap<String, u64>,
    server_errors: u64,
}

impl Window {
    fn record(&mut self, op: Op, outcome: &Outcome, elapsed: Duration) {
        *self.by_op.entry(op.name()).or_default() += 1;
        self.latencies_us.push(elapsed.as_micros() as u64);
        match outcome {
            Outcome::Answered(status, _) if (200..400).contains(status) => {}
            Outcome::Answered(status, code) => {
                let code = if code.is_empty() { "-" } else { code };
                *self.refusals.entry(format!("{status} {code}")).or_default() += 1;
                if *status >= 500 {
                    self.server_errors += 1;
                }
            }
            Outcome::NoAnswer => {
                *self.refusals.entry("no_answer".to_owned()).or_default() += 1;
                self.server_errors += 1;
            }
        }
    }

    fn absorb(&mut self, other: &Window) {
        self.latencies_us.extend(&other.latencies_us);
        for (k, v) in &other.by_op {
            *self.by_op.entry(k).or_default() += v;
        }
        for (k, v) in &other.refusals {
            *self.refusals.entry(k.clone()).or_default() += v;
        }
        self.server_errors += other.server_errors;
    }

    /// The window as JSON (sorts its latencies).
    fn report(&mut self, seconds: f64) -> serde_json::Value {
        self.latencies_us.sort_unstable();
        let pct = |p: f64| {
            let l = &self.latencies_us;
            l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
                .map_or(0.0, |us| *us as f64 / 1000.0)
        };
        json!({
            "requests": self.latencies_us.len(),
            "per_s": (self.latencies_us.len() as f64 / seconds.max(1e-9)).round(),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "by_op": self.by_op, "refusals": self.refusals,
            "server_errors": self.server_errors,
        })
    }
}

/// The per-window lines, in order, and their sum.
struct Report {
    windows: Arc<Mutex<BTreeMap<u64, Window>>>,
    window: u64,
    duration: u64,
    pid: Option<u32>,
    /// Windows reported so far.
    reported: u64,
    summary: Window,
    over_time: Vec<serde_json::Value>,
}

impl Report {
    /// Prints the line of every window before `end` (and within the run) not yet
    /// printed, with the server's resident memory now.
    fn through(&mut self, end: u64) -> Result<(), Failure> {
        while self.reported < end && self.reported * self.window < self.duration {
            let n = self.reported;
            let mut w = self
                .windows
                .lock()
                .ok()
                .and_then(|mut m| m.remove(&n))
                .unwrap_or_default();
            let seconds = self.window.min(self.duration - n * self.window);
            let mut line = w.report(seconds as f64);
            let rss = self.pid.and_then(resident_kib);
            line["window"] = json!(n);
            line["rss_kib"] = json!(rss);
            crate::outln!("{line}")?;
            self.over_time.push(json!({
                "window": n, "p50_ms": line["p50_ms"], "p99_ms": line["p99_ms"], "rss_kib": rss,
            }));
            self.summary.absorb(&w);
            self.reported += 1;
        }
        Ok(())
    }
}

/// How one request ended: the status and error code of an answer, or none.
enum Outcome {
    Answered(u16, String),
    NoAnswer,
}

impl From<&Result<Answer, ClientError>> for Outcome {
    fn from(r: &Result<Answer, ClientError>) -> Outcome {
        match r {
            Ok(a) => Outcome::Answered(a.status, a.code().to_owned()),
            Err(_) => Outcome::NoAnswer,
        }
    }
}

/// Runs the soak and prints a JSON line per window and a summary line.
pub async fn run(args: SoakArgs) -> Result<(), Failure> {
    let world = Arc::new(world(&args).await?);
    super::note(
        "soak",
        &format!(
            "{} agents, {} ops/s, {} s warm-up, {} s measured",
            world.agents.len(),
            args.rate,
            args.warmup,
            args.duration
        ),
    );
    let rss = |pid: Option<u32>| pid.and_then(resident_kib);
    let ledger_start = ledger_size(&world).await;

    let windows: Arc<Mutex<BTreeMap<u64, Window>>> = Arc::default();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let end = measure_from + Duration::from_secs(args.duration);
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut ticker =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let counter = Arc::new(AtomicU64::new(0));

    let mut rss_start = None;
    let mut report = Report {
        windows: windows.clone(),
        window: args.window,
        duration: args.duration,
        pid: args.pid,
        reported: 0,
        summary: Window::default(),
        over_time: Vec::new(),
    };
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if rss_start.is_none() && now >= measure_from {
            rss_start = rss(args.pid);
        }
        // Every window that has ended, a second later: operations land in the window
        // they started in, and the last of them may still be in flight.
        let ended = now.saturating_duration_since(measure_from + Duration::from_secs(1));
        report.through(ended.as_secs() / args.window.max(1))?;
        if now >= end {
            break;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let world = world.clone();
        let windows = windows.clone();
        tokio::spawn(async move {
            let op = Op::nth(n);
            let started = Instant::now();
            let outcomes = world.perform(op, n).await;
            let elapsed = started.elapsed();
            drop(permit);
            if started < measure_from {
                return;
            }
            let window = (started - measure_from).as_secs() / args.window.max(1);
            if let Ok(mut m) = windows.lock() {
                let w = m.entry(window).or_default();
                for outcome in &outcomes {
                    w.record(op, outcome, elapsed / outcomes.len().max(1) as u32);
                }
            }
        });
    }
    // Let what is in flight land, then report the last windows.
    let _ = slots.acquire_many(args.concurrency.max(1) as u32).await;
    report.through(u64::MAX)?;
    let Report {
        mut summary,
        over_time,
        ..
    } = report;
    let rss_end = rss(args.pid);
    let ledger_end = ledger_size(&world).await;
    let growth = match (rss_start, rss_end) {
        (Some(a), Some(b)) if a > 0 => Some((b as f64 - a as f64) * 100.0 / a as f64),
        _ => None,
    };
    let holds = summary.server_errors == 0 && growth.is_none_or(|g| g < args.max_rss_growth);
    let mut line = summary.report(args.duration as f64);
    line["seconds"] = json!(args.duration);
    line["rate"] = json!(args.rate);
    line["concurrency"] = json!(args.concurrency);
    line["rss_kib_start"] = json!(rss_start);
    line["rss_kib_end"] = json!(rss_end);
    line["rss_growth_pct"] = json!(growth.map(|g| (g * 10.0).round() / 10.0));
    line["ledger_size_start"] = json!(ledger_start);
    line["ledger_size_end"] = json!(ledger_end);
    line["over_time"] = json!(over_time);
    line["holds"] = json!(holds);
    super::emit(&json!({ "soak": line }))?;
    if !holds {
        return Err(Failure::failed(
            "soak_failed",
            format!(
                "{} server errors, resident memory grew {}",
                summary.server_errors,
                growth.map_or("(unknown)".to_owned(), |g| format!("{g:.1}%"))
            ),
        ));
    }
    Ok(())
}

/// Reads the tokens file, regenerates the demo's customers (for phones and leak files),
/// and keeps the agents who may still work (the demo's own insiders are suspended).
async fn world(args: &SoakArgs) -> Result<World, Failure> {
    let loaded = load::read_tokens(&args.tokens).ok_or_else(|| {
        Failure::new(
            "bench_tokens",
            format!("cannot read {}", args.tokens.display()),
        )
    })?;
    let company = demo_data::generate(loaded.customer_ids.len(), DEMO_SEED);
    let phone_of: BTreeMap<&str, &str> = loaded
        .customer_ids
        .iter()
        .map(String::as_str)
        .zip(company.customers.iter().map(|c| c.phone.as_str()))
        .collect();
    let pool = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| Failure::new("bench_client", e.to_string()))?;
    let client = Client::new(Http::with_client(pool, &loaded.url));
    let mut agents = Vec::new();
    for s in &loaded.staff {
        if !matches!(s.role, Role::Support | Role::Sales | Role::TeamLead) || s.cases.is_empty() {
            continue;
        }
        if !client.me(&s.token).await.is_ok_and(|a| a.is_success()) {
            continue;
        }
        let cases = s
            .cases
            .iter()
            .filter_map(|(case, customer)| {
                let phone = phone_of.get(customer.as_str())?;
                Some((case.clone(), customer.clone(), (*phone).to_owned()))
            })
            .collect();
        agents.push(Agent {
            id: s.id.clone(),
            token: s.token.clone(),
            cases,
        });
    }
    if agents.is_empty() {
        return Err(Failure::new(
            "bench_tokens",
            "no agent in the tokens file may work (all suspended, or no open cases)",
        ));
    }
    let token_of = |id: &str| activity::staff(&loaded, id).map(|s| s.token.clone());
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::new("bench_client", e.to_string()))?;
    Ok(World {
        base: custos_client::base_url(&loaded.url),
        analyst: token_of(activity::ANALYST)?,
        crm: token_of(activity::CRM)?,
        client,
        browser,
        agents,
        customers: company.customers,
        sessions: Mutex::default(),
    })
}

impl World {
    /// Performs operation `op` (the `n`th), returning how each of its requests ended.
    async fn perform(&self, op: Op, n: u64) -> Vec<Outcome> {
        let agent = &self.agents[(n as usize / 7) % self.agents.len()];
        let (case, customer, phone) = &agent.cases[(n as usize / 3) % agent.cases.len()];
        match op {
            Op::View => vec![(&self.client.view(&agent.token, customer, case).await).into()],
            Op::Reveal => {
                let request = RevealRequest {
                    fields: &["phone"],
                    case,
                    reason: "the customer asked to confirm the number on file",
                    step_up_reason: None,
                };
                vec![(&self.client.reveal(&agent.token, customer, &request).await).into()]
            }
            Op::Search => {
                vec![(&self.client.search(&agent.token, Search::Phone(phone)).await).into()]
            }
            Op::Case => {
                let new = NewCase {
                    customer,
                    assignee: &agent.id,
                    channel: "phone",
                    reason: "billing question",
                    inbound: true,
                    requested_by: None,
                    contact: None,
                    campaign: None,
                };
                let opened = self.client.create_case(&self.crm, &new).await;
                let mut outcomes = vec![Outcome::from(&opened)];
                if let Some(id) = opened
                    .ok()
                    .and_then(|a| a.body["id"].as_str().map(String::from))
                {
                    outcomes.push((&self.client.close_case(&self.crm, &id).await).into());
                }
                outcomes
            }
            Op::Trace => vec![(&self.trace(n).await).into()],
            Op::LedgerRead => self.ledger_read(n).await,
            Op::Console => {
                let (token, path) = match n % 4 {
                    0 => (&self.analyst, "/alerts".to_owned()),
                    1 => (&self.analyst, "/ledger".to_owned()),
                    2 => (&agent.token, "/cases".to_owned()),
                    _ => (&agent.token, format!("/cases/{case}")),
                };
                vec![self.console_page(token, &path).await]
            }
        }
    }

    /// An analyst's trace of a leaked CSV of 20 demo customers (name and phone).
    async fn trace(&self, n: u64) -> Result<Answer, ClientError> {
        const BOUNDARY: &str = "custos-soak-boundary";
        let first = (n as usize * 20) % self.customers.len().max(1);
        let mut body = format!(
            "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"leak.csv\"\r\ncontent-type: text/csv\r\n\r\nname,phone\n"
        );
        for c in self.customers.iter().cycle().skip(first).take(20) {
            body.push_str(&format!("{},{}\n", c.name, c.phone));
        }
        body.push_str(&format!("\r\n--{BOUNDARY}--\r\n"));
        self.client
            .send(Request {
                method: Method::Post,
                path: "/v1/trace?top=5".to_owned(),
                token: Some(self.analyst.clone()),
                headers: Vec::new(),
                body: Some((
                    "multipart/form-data; boundary=custos-soak-boundary",
                    body.into_bytes(),
                )),
            })
            .await
    }

    /// The signed checkpoint, then the proof of an entry under it.
    async fn ledger_read(&self, n: u64) -> Vec<Outcome> {
        let checkpoint = self
            .client
            .get_raw(&self.analyst, "/ledger/checkpoint")
            .await;
        let size = checkpoint
            .as_ref()
            .ok()
            .and_then(|a| checkpoint_size(&a.bytes));
        let mut outcomes = vec![match &checkpoint {
            Ok(a) => Outcome::Answered(a.status, String::new()),
            Err(_) => Outcome::NoAnswer,
        }];
        if let Some(size) = size.filter(|s| *s > 0) {
            let path = format!("/v1/ledger/proof/entry?index={}", (n * 7919) % size);
            outcomes.push((&self.client.get(&self.analyst, &path).await).into());
        }
        outcomes
    }

    /// A console page as the staff member with `token`, signing in first (again, if the
    /// session expired).
    async fn console_page(&self, token: &str, path: &str) -> Outcome {
        for _ in 0..2 {
            let cookie = match self.session(token).await {
                Ok(c) => c,
                Err(outcome) => return outcome,
            };
            let page = self
                .browser
                .get(format!("{}{path}", self.base))
                .header("cookie", &cookie)
                .send()
                .await;
            let Ok(page) = page else {
                return Outcome::NoAnswer;
            };
            let to_signin = page
                .headers()
                .get("location")
                .is_some_and(|l| l.as_bytes().starts_with(b"/signin"));
            if !to_signin {
                let status = page.status().as_u16();
                return match page.bytes().await {
                    Ok(_) => Outcome::Answered(status, String::new()),
                    Err(_) => Outcome::NoAnswer,
                };
            }
            if let Ok(mut s) = self.sessions.lock() {
                s.remove(token);
            }
        }
        Outcome::Answered(401, "console_signin".to_owned())
    }

    /// The console session's cookie header for `token`, signing in through the form.
    async fn session(&self, token: &str) -> Result<String, Outcome> {
        if let Some(c) = self
            .sessions
            .lock()
            .ok()
            .and_then(|s| s.get(token).cloned())
        {
            return Ok(c);
        }
        let form = self
            .browser
            .get(format!("{}/signin", self.base))
            .send()
            .await
            .map_err(|_| Outcome::NoAnswer)?;
        let mut cookies = set_cookies(form.headers());
        let status = form.status().as_u16();
        let text = form.text().await.map_err(|_| Outcome::NoAnswer)?;
        let Some(signin) = hidden_field(&text, "signin") else {
            return Err(Outcome::Answered(status, "console_signin".to_owned()));
        };
        let answer = self
            .browser
            .post(format!("{}/signin", self.base))
            .header("cookie", cookie_header(&cookies))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "signin={}&token={}",
                utf8_percent_encode(&signin, NON_ALPHANUMERIC),
                utf8_percent_encode(token, NON_ALPHANUMERIC)
            ))
            .send()
            .await
            .map_err(|_| Outcome::NoAnswer)?;
        let status = answer.status().as_u16();
        if status != 303 {
            return Err(Outcome::Answered(status, "console_signin".to_owned()));
        }
        cookies.extend(set_cookies(answer.headers()));
        let header = cookie_header(&cookies);
        if let Ok(mut s) = self.sessions.lock() {
            s.insert(token.to_owned(), header.clone());
        }
        Ok(header)
    }
}

/// The ledger's size from its signed checkpoint, if the server answers.
async fn ledger_size(world: &World) -> Option<u64> {
    let answer = world
        .client
        .get_raw(&world.analyst, "/ledger/checkpoint")
        .await
        .ok()?;
    checkpoint_size(&answer.bytes)
}

/// The tree size, the second line of a checkpoint (C2SP tlog-checkpoint).
fn checkpoint_size(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes)
        .ok()?
        .lines()
        .nth(1)?
        .parse()
        .ok()
}

/// Resident memory of process `pid` in KiB (`VmRSS` in /proc/PID/status).
fn resident_kib(pid: u32) -> Option<u64> {
    let status =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The `name=value` pairs a response sets, by name.
fn set_cookies(headers: &reqwest::header::HeaderMap) -> BTreeMap<String, String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn cookie_header(cookies: &BTreeMap<String, String>) -> String {
    cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The value of the hidden form field `name` on a console page.
fn hidden_field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let (_, rest) = page.split_once(&marker)?;
    Some(rest.split_once('"')?.0.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hundred_operations_follow_the_mix() {
        let mut counts = BTreeMap::new();
        for n in 0..100 {
            *counts.entry(Op::nth(n)).or_insert(0u64) += 1;
        }
        let expected: BTreeMap<Op, u64> = Op::MIX.into_iter().collect();
        assert_eq!(counts, expected);
    }

    #[test]
    fn a_checkpoint_gives_its_size() {
        let note = b"example.com/custos\n1234\nqUv0gYn8x0bGzV2m+7B2XxY8mN5d7W1cI2Jb9a6KkZI=\n\n\xe2\x80\x94 x\n";
        assert_eq!(checkpoint_size(note), Some(1234));
        assert_eq!(checkpoint_size(b"only one line"), None);
    }
}
