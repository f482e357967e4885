//! `custos simulate`: its options, and the run (`custos_sim::simulate::run`) on a gateway
//! opened in process with a simulated clock, as `custos serve` opens one.

use std::path::PathBuf;

use custos_sim::simulate::run::{self, Opened, Opening, Options};

use crate::Failure;
use crate::serve::{self, ServeArgs};

/// Options of `custos simulate`.
#[derive(clap::Args)]
pub(crate) struct SimulateArgs {
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
    /// Write the evaluation as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the per-person, per-day feature table as CSV here (for `bench/iforest.py`).
    #[arg(long)]
    pub features: Option<PathBuf>,
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

/// Runs `custos simulate`.
pub(crate) async fn run(args: SimulateArgs) -> Result<(), Failure> {
    let options = Options {
        scenarios: args.scenarios,
        staff: args.staff,
        days: args.days,
        seed: args.seed,
        customers: args.customers,
        canaries: args.canaries,
        allocation_pool: args.allocation_pool,
        allocation_rate: args.allocation_rate,
        allocation_rate_self_requested: args.allocation_rate_self_requested,
        report: args.report,
        features: args.features,
        config: args.config,
        data_dir: args.data_dir,
        quiet: args.quiet,
        cut_leak: args.cut_leak,
        rows: args.rows,
        noise: args.noise,
        out: args.out,
        truth: args.truth,
        trace_eval: args.trace_eval,
        leaks_per_insider: args.leaks_per_insider,
    };
    let database_url = args.database_url;
    run::run(&options, |opening| open(opening, database_url)).await
}

/// Opens the run's gateway as `custos serve --simulated-clock` would, without listening.
async fn open(opening: Opening, database_url: Option<String>) -> Result<Opened, Failure> {
    let serve_args = ServeArgs {
        data_dir: opening.data_dir,
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        config: Some(opening.config),
        policies: None,
        database_url,
        simulated_clock: true,
    };
    let (app, admin_token_path) = serve::open(&serve_args).await?;
    match serve::read_token_file(&admin_token_path) {
        Ok(admin) => Ok((app, admin)),
        Err(e) => {
            // Opened: the writer publishes its last checkpoint before the run ends.
            app.access.close().await;
            app.store.close().await;
            Err(e)
        }
    }
}
