//! `custos`: the customer-data vault and the one door staff reach it through.
//!
//! A thin binary: argument parsing and start-up live here, everything else in the
//! library crates (see the workspace README for the data flow).

mod api_client;
mod backup_cli;
mod bench_cli;
mod canary_cli;
mod customer_cli;
mod demo;
mod import_cli;
mod keys_cli;
mod ledger_cli;
mod serve;
mod simulate_cli;
mod tls;
mod trace_cli;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use custos_sim::{Ending, Failure};

#[derive(Parser)]
#[command(
    name = "custos",
    version,
    about = "Custos: the customer-data vault and the one door staff reach it through"
)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "CUSTOS_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(serve::ServeArgs),
    /// Back up a data directory's store and ledger at one signed checkpoint, while its
    /// server serves (keys are not copied).
    Backup(backup_cli::BackupArgs),
    /// Restore a backup into a new data directory.
    Restore(backup_cli::RestoreArgs),
    /// Run the gateway on 127.0.0.1:8700 with ./custos-data, loading a demo company if empty.
    Demo(demo::DemoArgs),
    /// Benchmarks: protected lookups over HTTP, ledger appends and proofs.
    #[command(subcommand)]
    Bench(bench_cli::BenchCommand),
    /// Canary customers: plant them through the running server.
    #[command(subcommand)]
    Canary(canary_cli::CanaryCommand),
    /// Customers: access links that show a customer every access to their record.
    #[command(subcommand)]
    Customer(customer_cli::CustomerCommand),
    /// Import customers from an NDJSON file through the running server, in batches,
    /// resumable: run the same command again after an interruption.
    Import(import_cli::ImportArgs),
    /// Keys: rotate the key-encryption key or the blind-index key, and follow a rotation.
    #[command(subcommand)]
    Keys(keys_cli::KeysCommand),
    /// The ledger: verifier key, verification, entry proofs.
    #[command(subcommand)]
    Ledger(ledger_cli::LedgerCommand),
    /// Drive a synthetic company with insider scenarios through the real gateway and
    /// report what the protections caught.
    Simulate(simulate_cli::SimulateArgs),
    /// Trace a leaked list of customers to the staff it most likely came from.
    Trace(trace_cli::TraceArgs),
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUSTOS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // A log line that cannot be written is lost, never a panic: tracing-subscriber reports
    // its own write errors with `eprintln!`, which panics when standard error fails.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .log_internal_errors(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// Standard error for the log. A write that fails (a full disk under a redirected log,
/// `/dev/full`, a closed pipe) drops the line and reports success, so logging never takes
/// a request or the server down.
struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo's terminal shows progress and where things are, not one line per request.
    let default_filter = match cli.command {
        Command::Serve(_) => "info",
        Command::Demo(_)
        | Command::Bench(_)
        | Command::Ledger(_)
        | Command::Canary(_)
        | Command::Customer(_)
        | Command::Keys(_)
        | Command::Import(_)
        | Command::Trace(_)
        | Command::Backup(_)
        | Command::Restore(_) => "warn",
        // Every alert of a run is in its report.
        Command::Simulate(_) => "error",
    };
    init_logging(cli.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            custos_sim::stdout::note(format_args!(
                "error[runtime]: cannot start the async runtime: {e}"
            ));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Bench(command) => bench_cli::run(command).await,
            Command::Ledger(command) => ledger_cli::run(command).await,
            Command::Canary(command) => canary_cli::run(command).await,
            Command::Customer(command) => customer_cli::run(command).await,
            Command::Keys(command) => keys_cli::run(command).await,
            Command::Import(args) => import_cli::run(args).await,
            Command::Simulate(args) => simulate_cli::run(args).await,
            Command::Trace(args) => trace_cli::run(args).await,
            Command::Backup(args) => backup_cli::backup(args).await,
            Command::Restore(args) => backup_cli::restore(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.ending() {
            Ending::OutputClosed => ExitCode::SUCCESS,
            Ending::Failed => {
                custos_sim::stdout::note(&e);
                ExitCode::from(1)
            }
            Ending::Error => {
                custos_sim::stdout::note(&e);
                ExitCode::from(2)
            }
        },
    }
}
