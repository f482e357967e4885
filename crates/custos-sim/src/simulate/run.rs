//! A whole simulator run: the options of `custos simulate`, a fresh data directory (a
//! temporary one by default), the simulated company's configuration, the gateway opened
//! in process with a simulated clock, the drive, and the reports.
//!
//! The gateway opens as `custos serve --simulated-clock` would (`custos_service::startup`),
//! and this module never binds a port.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use custos_service::Config;
use custos_service::startup::{self, Opened, StartOptions};
use custos_types::Role;

use crate::Failure;
use crate::simulate::company::{Company, EPOCH_MS};
use crate::simulate::drive::{self, Gateway};
use crate::simulate::plan::{Plan, Vault, World};
use crate::simulate::report::{self, RaisedAlert};
use crate::simulate::scenario::Scenario;
use crate::simulate::{export, leak, replay, trace_eval};

/// What a run is asked to do: the options of `custos simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Scenario files (TOML); the shipped ones are in `scenarios/`.
    #[arg(long = "scenario", required = true, num_args = 1..)]
    pub scenarios: Vec<PathBuf>,
    /// People on staff.
    #[arg(long, default_value_t = 5000)]
    pub staff: u32,
    /// Days simulated.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Seed: the same seed and options give the same company, traffic and insiders.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Real customers in the vault.
    #[arg(long, default_value_t = 200_000)]
    pub customers: u32,
    /// Canary customers planted among them.
    #[arg(long, default_value_t = 100)]
    pub canaries: u32,
    /// Canaries planted for allocation only, beyond `--canaries`: no one's own pick
    /// reaches them (see `--allocation-rate`).
    #[arg(long, default_value_t = 0)]
    pub allocation_pool: u32,
    /// Sets the configuration's `[canaries] allocation_rate`: the chance, per case the CRM
    /// opens for a person, that Custos also gives them a canary on a case of its own.
    #[arg(long)]
    pub allocation_rate: Option<f64>,
    /// Sets `[canaries] allocation_rate_self_requested`: the chance instead for a case a
    /// person asked for themselves.
    #[arg(long)]
    pub allocation_rate_self_requested: Option<f64>,
    /// Share of the honest contacts needing to reach the customer (a call back, a mail)
    /// that go through the relays instead of a reveal.
    #[arg(long, default_value_t = 0.95)]
    pub relay_adoption: f64,
    /// Share of inbound contacts made from a number or address not on file (their
    /// cases are `unverified`).
    #[arg(long, default_value_t = 0.05)]
    pub other_number_share: f64,
    /// Share of contacts that are outbound campaign assignments by the company's systems.
    #[arg(long, default_value_t = 0.03)]
    pub campaign_share: f64,
    /// Share of contacts that are follow-ups the agent asks for (80% of them about a
    /// customer of the agent's own contact of the last 7 days).
    #[arg(long, default_value_t = 0.03)]
    pub follow_up_share: f64,
    /// How many of one person's access requests an honest approver approves in a day.
    #[arg(long, default_value_t = 5)]
    pub approver_daily_limit: u32,
    /// Write the evaluation as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the per-person, per-day feature table as CSV here (for `bench/iforest.py`).
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Run with every detector action out of reach (the thresholds set to 1e9), so
    /// nothing the detector finds changes the traffic, and judge the detector by
    /// replaying the run's ledger under the configured thresholds: the run on which the
    /// detector and `bench/iforest.py` are scored alike. Quotas and the canary rule stay.
    #[arg(long)]
    pub no_actions: bool,
    /// Gateway configuration (TOML, as for `custos serve`); by default the simulated
    /// company's: UTC+8, working hours 07:00–22:00, agent quotas of 250 customers a day
    /// and 40 reveals an hour.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory for the run (must not exist); by default a temporary one in
    /// memory (/dev/shm where there is one: a simulation needs no durability, and its
    /// fsyncs would be most of its time), removed at the end.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL; without it the store is SQLite in the data directory.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Hide the progress bars.
    #[arg(long)]
    pub quiet: bool,
    /// Cut a test leak from what this insider (a staff id) or ring (a scenario's name)
    /// revealed in the run; written to `--out`, its truth to `--truth`.
    #[arg(long, requires = "out")]
    pub cut_leak: Option<String>,
    /// Rows of the cut leak.
    #[arg(long, default_value_t = 50)]
    pub rows: usize,
    /// Share of the cut leak's rows from elsewhere: customers the source never held and
    /// numbers not in the vault.
    #[arg(long, default_value_t = 0.3)]
    pub noise: f64,
    /// Where the cut leak goes.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the cut leak's truth goes (JSON).
    #[arg(long)]
    pub truth: Option<PathBuf>,
    /// Measure leak attribution: cut leaks of 3, 10 and 50 rows from every insider (and
    /// 1,000 rows from every ring), trace them, and add the scores to the report.
    #[arg(long)]
    pub trace_eval: bool,
    /// Leaks cut per insider and size for `--trace-eval`.
    #[arg(long, default_value_t = 5)]
    pub leaks_per_insider: u32,
}

/// A value set in a configuration: the table (dotted path), the key, the value.
type Setting = (&'static str, &'static str, f64);

/// A copy of the configuration at `path` with `settings` applied, written into the data
/// directory as `name`; its path. (Validated, like any, when the gateway loads it.)
fn with_settings(
    path: &Path,
    settings: &[Setting],
    data_dir: &Path,
    name: &str,
) -> Result<PathBuf, Failure> {
    let bad = |e: String| Failure::new("config_invalid", e);
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e| bad(format!("{}: {e}", path.display())))?;
    for (tables, key, value) in settings {
        let mut at = &mut table;
        for name in tables.split('.') {
            let entry = at
                .entry(name)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(inner) = entry else {
                return Err(bad(format!("{}: {tables} is not a table", path.display())));
            };
            at = inner;
        }
        at.insert((*key).to_owned(), toml::Value::Float(*value));
    }
    let out = data_dir.join(name);
    let text = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
    std::fs::write(&out, text)
        .map_err(|e| Failure::new("data_dir", format!("cannot write {}: {e}", out.display())))?;
    Ok(out)
}

/// The detector's action thresholds, and the value that puts them out of reach.
const ACTION_THRESHOLDS: [&str; 3] = ["step_up", "lower_quota", "suspend"];
const OUT_OF_REACH: f64 = 1e9;

/// The simulated company's gateway configuration: its time zone, working hours, and
/// quotas sized for its launch days (×3 demand: up to ~250 customers for a busy agent).
const COMPANY_CONFIG: &str = "\
# The simulated company works at UTC+8, in shifts between 07:00 and 22:00.
[detector.features]
utc_offset_minutes = 480
shift_start_hour = 7
shift_end_hour = 22

# Agents' ceilings cover a launch day of a busy agent; the detector covers the rest.
[quota.support]
customers_per_day = 250
reveals_per_hour = 40
searches_per_day = 400

[quota.sales]
customers_per_day = 250
reveals_per_hour = 40
searches_per_day = 400
";

/// Runs the simulator as `custos simulate` does: checks the options, makes the data
/// directory, opens the gateway, drives the company and writes the
/// reports (the table to standard output). A temporary data directory is removed after.
pub async fn run(args: &Options) -> Result<(), Failure> {
    if !(0.0..=1.0).contains(&args.noise) || args.rows == 0 {
        return Err(Failure::new(
            "invalid_argument",
            "--rows must be at least 1 and --noise between 0 and 1",
        ));
    }
    let shares = [
        args.relay_adoption,
        args.other_number_share,
        args.campaign_share,
        args.follow_up_share,
    ];
    if shares.iter().any(|s| !(0.0..=1.0).contains(s))
        || args.campaign_share + args.follow_up_share > 1.0
    {
        return Err(Failure::new(
            "invalid_argument",
            "--relay-adoption, --other-number-share, --campaign-share and --follow-up-share must be between 0 and 1, and the last two add up to 1 at most",
        ));
    }
    if args.staff == 0 || args.days == 0 || args.customers == 0 {
        return Err(Failure::new(
            "invalid_argument",
            "--staff, --days and --customers must be at least 1",
        ));
    }
    let scenarios = args
        .scenarios
        .iter()
        .map(|p| Scenario::load(p).map_err(|e| Failure::new(e.code(), e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let (data_dir, temporary) = match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let shm = Path::new("/dev/shm");
            let base = if shm.is_dir() {
                shm.to_owned()
            } else {
                std::env::temp_dir()
            };
            (
                base.join(format!("custos-simulate-{}", std::process::id())),
                true,
            )
        }
    };
    if data_dir.exists() {
        return Err(Failure::new(
            "data_dir",
            format!(
                "{} exists; a simulation needs a fresh data directory",
                data_dir.display()
            ),
        ));
    }
    let result = simulate(args, scenarios, &data_dir).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

async fn simulate(
    args: &Options,
    scenarios: Vec<Scenario>,
    data_dir: &Path,
) -> Result<(), Failure> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        Failure::new(
            "data_dir",
            format!("cannot create {}: {e}", data_dir.display()),
        )
    })?;
    let config_path = match &args.config {
        Some(path) => path.clone(),
        None => {
            let path = data_dir.join("simulated-company.toml");
            let numbers: Vec<String> = drive::privacy_numbers()
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect();
            let text = format!(
                "{COMPANY_CONFIG}\n# The PBX's privacy numbers, lent to the call relay.\n[relay]\nnumbers = [{}]\n",
                numbers.join(", ")
            );
            std::fs::write(&path, text).map_err(|e| {
                Failure::new("data_dir", format!("cannot write {}: {e}", path.display()))
            })?;
            path
        }
    };
    let settings: Vec<Setting> = [
        ("allocation_rate", args.allocation_rate),
        (
            "allocation_rate_self_requested",
            args.allocation_rate_self_requested,
        ),
    ]
    .into_iter()
    .filter_map(|(key, rate)| rate.map(|r| ("canaries", key, r)))
    .collect();
    // The configuration the detector is judged under (for --no-actions, by replay).
    let judged_path = if settings.is_empty() {
        config_path
    } else {
        with_settings(
            &config_path,
            &settings,
            data_dir,
            "simulated-company-allocation.toml",
        )?
    };
    let judged =
        Config::load(Some(&judged_path)).map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let (config_path, config) = if args.no_actions {
        let out_of_reach =
            ACTION_THRESHOLDS.map(|key| ("detector.score.thresholds", key, OUT_OF_REACH));
        let path = with_settings(
            &judged_path,
            &out_of_reach,
            data_dir,
            "simulated-company-no-actions.toml",
        )?;
        let config =
            Config::load(Some(&path)).map_err(|e| Failure::new(e.code(), e.to_string()))?;
        (path, config)
    } else {
        (judged_path, judged.clone())
    };
    let quota: HashMap<Role, u32> = Role::ALL
        .iter()
        .filter_map(|&role| config.quota_for(role).customers_per_day.map(|q| (role, q)))
        .collect();
    let company = Company::generate(args.staff, args.days, args.seed);
    let vault = Vault {
        customers: args.customers,
        canaries: args.canaries,
        allocation_pool: args.allocation_pool,
    };
    let world = World {
        relay_adoption: args.relay_adoption,
        other_number_share: args.other_number_share,
        campaign_share: args.campaign_share,
        follow_up_share: args.follow_up_share,
        approver_daily_limit: args.approver_daily_limit,
    };
    let plan = Plan::new(company, vault, scenarios, quota, world, args.seed)
        .map_err(|e| Failure::new("scenario_invalid", e))?;
    let (opened, admin) = open(args, data_dir, config_path).await?;
    let app = opened.app.clone();
    let result = async {
        let gateway = Gateway::new(app.clone());
        crate::stdout::note(format_args!(
            "simulating {} staff ({} insiders in {} scenarios) over {} days, {} customers, seed {}",
            args.staff,
            plan.insiders.len(),
            plan.scenarios.len(),
            args.days,
            args.customers,
            args.seed
        ));
        for (scenario, cast) in plan.idle_scenarios() {
            crate::stdout::note(format_args!(
                "warning: scenario {}: its {cast} insider(s) never act in this run: they start on day {} to {} and the run has {} days (raise --days)",
                scenario.name, scenario.start_day[0], scenario.start_day[1], args.days
            ));
        }
        let progress = crate::progress::bar(args.days as usize, "days", args.quiet);
        let started = Instant::now();
        let outcome = drive::run(&gateway, admin.trim(), &plan, args.seed, &progress)
            .await
            .map_err(|e| Failure::new("simulation_failed", e))?;
        progress.finish();
        let wall = started.elapsed().as_secs_f64();
        let mut alerts = raised_alerts(&opened).await?;
        if args.no_actions {
            alerts.extend(
                replay::findings(&opened, judged.detector.clone())
                    .await
                    .map_err(|e| Failure::new("simulation_failed", e))?,
            );
        }
        let unprotected = report::unprotected_harvest(&plan);
        let mut report = report::evaluate(
            &plan,
            args.seed,
            &outcome,
            &alerts,
            &unprotected,
            EPOCH_MS,
            wall,
        );
        report.no_actions = args.no_actions;
        if args.trace_eval {
            let progress = crate::progress::bar(1, "tracing", args.quiet);
            let evaluation = trace_eval::evaluate(
                &opened,
                &plan,
                &outcome,
                args.seed,
                args.noise,
                args.leaks_per_insider,
            )
            .await
            .map_err(|e| Failure::new("simulation_failed", e))?;
            progress.finish_and_clear();
            report.trace = Some(evaluation);
        }
        crate::outln!("{}", report.table())?;
        if let Some(name) = &args.cut_leak {
            cut_leak(args, name, &opened, &plan, &outcome).await?;
        }
        if let Some(path) = &args.report {
            let json =
                serde_json::to_vec_pretty(&report).map_err(|e| Failure::new("report", e.to_string()))?;
            std::fs::write(path, json)
                .map_err(|e| Failure::new("report", format!("cannot write {}: {e}", path.display())))?;
            crate::outln!("report written to {}", path.display())?;
        }
        if let Some(path) = &args.features {
            let rows = export::features_csv(&opened, &plan, &outcome, path)
                .await
                .map_err(|e| Failure::new("report", e))?;
            crate::outln!("{rows} person-days written to {}", path.display())?;
        }
        Ok(())
    }
    .await;
    // The writer publishes a last checkpoint and stops before anyone removes the
    // directory (a temporary one is removed right after).
    opened.direct.close(&app).await;
    result
}

/// Writes `--out` (and `--truth`): a leak cut from what `name` (a staff id or a ring
/// scenario's name) revealed.
async fn cut_leak(
    args: &Options,
    name: &str,
    opened: &Opened,
    plan: &Plan,
    outcome: &drive::Outcome,
) -> Result<(), Failure> {
    let insiders: Vec<usize> = (0..plan.insiders.len())
        .filter(|&i| {
            outcome.staff_ids[plan.insiders[i].staff] == name
                || plan.scenarios[plan.insiders[i].scenario].name == name
        })
        .collect();
    if insiders.is_empty() {
        return Err(Failure::new(
            "cut_leak_unknown",
            format!("{name} is neither an insider's staff id nor a scenario of this run"),
        ));
    }
    let numbers = trace_eval::customer_numbers(outcome);
    let source = trace_eval::source(opened, plan, outcome, &numbers, &insiders)
        .await
        .map_err(|e| Failure::new("simulation_failed", e))?;
    if source.revealed.is_empty() {
        let why = if insiders
            .iter()
            .all(|&i| plan.insiders[i].active_days.is_empty())
        {
            format!(
                "they never acted: their start day lies past the run's {} days (raise --days)",
                args.days
            )
        } else {
            let refused: u64 = insiders.iter().map(|&i| outcome.insiders[i].refused).sum();
            format!(
                "every reveal they tried was refused ({refused} refusals: quota, policy or suspension)"
            )
        };
        return Err(Failure::new(
            "cut_leak_empty",
            format!("{name} revealed no customer in this run, so there is nothing to leak: {why}"),
        ));
    }
    let mut rng = crate::simulate::rng::stream(args.seed, "cut-leak", 0);
    let leak = leak::cut(&source, args.rows, args.noise, &mut rng);
    let write = |path: &PathBuf, bytes: &[u8]| {
        std::fs::write(path, bytes)
            .map_err(|e| Failure::new("report", format!("cannot write {}: {e}", path.display())))
    };
    if let Some(path) = &args.out {
        write(path, &leak.bytes)?;
        crate::outln!(
            "leak of {} rows ({} from {name}) written to {}",
            leak.truth.rows,
            leak.truth.from_source,
            path.display()
        )?;
    }
    if let Some(path) = &args.truth {
        let json = serde_json::to_vec_pretty(&leak.truth)
            .map_err(|e| Failure::new("report", e.to_string()))?;
        write(path, &json)?;
    }
    Ok(())
}

/// Every alert with the simulated time of the ledger entry behind it.
async fn raised_alerts(opened: &Opened) -> Result<Vec<RaisedAlert>, Failure> {
    let fail = |e: String| Failure::new("simulation_failed", e);
    let alerts = opened
        .direct
        .store(&opened.app)
        .alerts(None, u32::MAX)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut raised = Vec::with_capacity(alerts.len());
    for alert in alerts {
        // The raising entry comes last (the others are the day that led to it).
        let Some(&seq) = alert.entries.last() else {
            continue;
        };
        let entry = opened
            .direct
            .access_log(&opened.app)
            .entries(seq, 1)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let at = entry.first().map_or(alert.created_at, |r| r.at);
        raised.push(RaisedAlert {
            subject: alert.staff_id,
            kind: alert.kind,
            suspended: alert.action == "suspended",
            at,
            entries: alert.entries,
        });
    }
    Ok(raised)
}

/// Opens the run's gateway as `custos serve --simulated-clock` would, without listening;
/// with its bootstrap admin's token.
async fn open(
    args: &Options,
    data_dir: &Path,
    config: PathBuf,
) -> Result<(Opened, String), Failure> {
    let options = StartOptions {
        data_dir: data_dir.to_owned(),
        config: Some(config),
        policies: None,
        database_url: args.database_url.clone(),
        simulated_clock: true,
        tls: false,
    };
    let opened = startup::open(&options).await?;
    match startup::read_token_file(&opened.admin_token_path) {
        Ok(admin) => Ok((opened, admin)),
        Err(e) => {
            // Opened: the writer publishes its last checkpoint before the run ends.
            opened.direct.close(&opened.app).await;
            Err(e.into())
        }
    }
}
