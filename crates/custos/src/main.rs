//! `custos`: the customer-data vault and the one door staff reach it through.
//!
//! A thin binary: argument parsing and start-up live here, everything else in the
//! library crates (see the workspace README for the data flow).

mod api_client;
mod bench;
mod canary_cli;
mod customer_cli;
mod demo;
mod demo_activity;
mod ledger_cli;
mod output;
mod serve;
mod simulate_cli;
mod trace_cli;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Run the gateway on 127.0.0.1:8700 with ./custos-data, loading a demo company if empty.
    Demo(demo::DemoArgs),
    /// Benchmarks: protected lookups over HTTP, ledger appends and proofs.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Canary customers: plant them through the running server.
    #[command(subcommand)]
    Canary(canary_cli::CanaryCommand),
    /// Customers: access links that show a customer every access to their record.
    #[command(subcommand)]
    Customer(customer_cli::CustomerCommand),
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

/// Writes a line to standard error, ignoring failure (`eprintln!` would panic).
fn report(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Why a command ended without success; decides the exit status (see the README):
/// 1 when something was checked and found wrong, 2 for everything else that went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Usage, could not read, could not start: nothing was found wrong. Exit 2.
    Error,
    /// A ledger, proof or evidence bundle was checked and found wrong. Exit 1.
    Failed,
    /// Standard output was closed by its reader (`| head`): a normal end, exit 0.
    OutputClosed,
}

/// A command's failure: a message for the operator and a stable code.
#[derive(Debug)]
pub struct Fatal {
    code: std::borrow::Cow<'static, str>,
    message: String,
    ending: Ending,
}

impl Fatal {
    /// A failure that found nothing wrong in what it was to check (exit 2).
    fn new(code: impl Into<std::borrow::Cow<'static, str>>, message: impl Into<String>) -> Self {
        Fatal {
            code: code.into(),
            message: message.into(),
            ending: Ending::Error,
        }
    }

    /// A check that ran and found the ledger, proof or evidence wrong (exit 1).
    fn failed(code: impl Into<std::borrow::Cow<'static, str>>, message: impl Into<String>) -> Self {
        Fatal {
            ending: Ending::Failed,
            ..Fatal::new(code, message)
        }
    }

    /// Standard output was closed: the command ends quietly.
    fn output_closed() -> Self {
        Fatal {
            ending: Ending::OutputClosed,
            ..Fatal::new("output_closed", "standard output was closed")
        }
    }

    /// The stable code.
    fn code(&self) -> &str {
        &self.code
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
        | Command::Trace(_) => "warn",
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
            report(format_args!(
                "error[runtime]: cannot start the async runtime: {e}"
            ));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Bench(command) => bench::run(command).await,
            Command::Ledger(command) => ledger_cli::run(command).await,
            Command::Canary(command) => canary_cli::run(command).await,
            Command::Customer(command) => customer_cli::run(command).await,
            Command::Simulate(args) => simulate_cli::run(args).await,
            Command::Trace(args) => trace_cli::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.ending {
            Ending::OutputClosed => ExitCode::SUCCESS,
            Ending::Failed => {
                report(format_args!("error[{}]: {}", e.code, e.message));
                ExitCode::from(1)
            }
            Ending::Error => {
                report(format_args!("error[{}]: {}", e.code, e.message));
                ExitCode::from(2)
            }
        },
    }
}

/// Where the SQLite file lives inside a data directory.
fn sqlite_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("custos.db")
}
