//! `custos trace FILE`: which staff a leaked list most likely came from, read from a data
//! directory (beside a running server: the store is read, the ledger's published tiles
//! are read, nothing is written), with an evidence bundle for the top suspects.

use std::path::PathBuf;

use custos_crypto::{Keyring, MasterKey};
use custos_ledger::{DirSource, LedgerKey, build_bundle};
use custos_store::Store;
use custos_trace::{STEPS, Step, TraceOptions, parse_time};

use crate::Failure;

/// Options of `custos trace`.
#[derive(clap::Args)]
pub(crate) struct TraceArgs {
    /// The leaked file: CSV, TSV or plain text, UTF-8, UTF-16 or GB18030. It is read
    /// into memory and not kept.
    pub file: PathBuf,
    /// The data directory of the server whose records are searched.
    #[arg(long, env = "CUSTOS_DATA_DIR")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL, when the server's store is PostgreSQL.
    #[arg(long, env = "CUSTOS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Accesses from this time on: unix ms, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC);
    /// by default from the first record.
    #[arg(long)]
    pub since: Option<String>,
    /// Accesses before this time (same forms); by default all.
    #[arg(long)]
    pub until: Option<String>,
    /// Country of phone numbers written without a country code.
    #[arg(long, default_value = "CN")]
    pub region: String,
    /// Suspects listed.
    #[arg(long, default_value_t = 20)]
    pub top: usize,
    /// The chance that a leaked row was obtained elsewhere than from Custos.
    #[arg(long, default_value_t = 0.3)]
    pub p_elsewhere: f64,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write an evidence bundle for the top suspects here (check it with
    /// `custos ledger check-evidence`).
    #[arg(long)]
    pub evidence: Option<PathBuf>,
    /// Suspects the evidence bundle covers.
    #[arg(long, default_value_t = 5)]
    pub evidence_top: usize,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `custos trace`.
pub(crate) async fn run(args: TraceArgs) -> Result<(), Failure> {
    let since = match &args.since {
        Some(t) => parse_time(t).map_err(trace_fatal)?,
        None => 0,
    };
    let until = match &args.until {
        Some(t) => parse_time(t).map_err(trace_fatal)?,
        // Past every record, also those of a simulated clock running ahead.
        None => i64::MAX,
    };
    let key_path = args.data_dir.join("master.key");
    if !key_path.is_file() {
        return Err(Failure::new(
            "data_dir",
            format!(
                "{} has no master key: give the data directory of a server",
                args.data_dir.display()
            ),
        ));
    }
    let (master, _) =
        MasterKey::load_or_create(&key_path).map_err(|e| Failure::new(e.code(), e.to_string()))?;
    let keyring = Keyring::new(&master);
    let store = match &args.database_url {
        Some(url) => Store::open_postgres(url, 4).await,
        None => {
            // A trace reads; it never creates a store. An empty one made here would
            // answer "0 matched": a false "this leak is not from us".
            let path = custos_service::startup::sqlite_path(&args.data_dir);
            if !path.is_file() {
                return Err(Failure::new(
                    "no_store",
                    format!(
                        "{} holds no {}: a server on PostgreSQL keeps its store there, so give --database-url",
                        args.data_dir.display(),
                        path.file_name().unwrap_or_default().to_string_lossy()
                    ),
                ));
            }
            Store::open_sqlite(&path).await
        }
    }
    .map_err(|e| Failure::new(e.code(), format!("cannot open the store: {e}")))?;
    // Under the index key the server uses (both, while it rotates).
    custos_service::keys::follow_index_key(&store, &keyring)
        .await
        .map_err(|e| {
            Failure::new(
                e.code(),
                format!("cannot read the index key's rotation: {e}"),
            )
        })?;
    let file = std::fs::read(&args.file).map_err(|e| {
        Failure::new(
            "trace_file",
            format!("cannot read {}: {e}", args.file.display()),
        )
    })?;
    let options = TraceOptions {
        since,
        until,
        default_region: args.region.clone(),
        top: args.top,
        p_elsewhere: args.p_elsewhere,
    };
    let bar = custos_sim::progress::bar(STEPS as usize, "tracing", args.quiet);
    let progress = |step: Step| {
        bar.set_message(match step {
            Step::Read(rows) => format!("{rows} rows"),
            Step::Matched(customers) => format!("{customers} customers"),
            Step::Gathered(pairs) => format!("{pairs} people × customers exposed"),
            Step::Ranked => "ranked".to_owned(),
        });
        bar.inc(1);
    };
    let result = custos_trace::trace(&store, &keyring, &file, &options, &progress).await;
    bar.finish_and_clear();
    store.close().await;
    let traced = result.map_err(trace_fatal)?;
    let report = &traced.report;
    custos_sim::stdout::text(&report.table())?;
    if let Some(path) = &args.report {
        let json =
            serde_json::to_vec_pretty(report).map_err(|e| Failure::new("report", e.to_string()))?;
        std::fs::write(path, json)
            .map_err(|e| Failure::new("report", format!("cannot write {}: {e}", path.display())))?;
        custos_sim::outln!("report written to {}", path.display())?;
    }
    if let Some(path) = &args.evidence {
        let subjects = traced.evidence_subjects(args.evidence_top);
        if subjects.is_empty() {
            return Err(Failure::new(
                "evidence_empty",
                "no suspect: there is no evidence to bundle",
            ));
        }
        let ledger_dir = custos_service::startup::ledger_dir(&args.data_dir);
        let source = DirSource::new(&ledger_dir);
        // The origin the checkpoints are signed for (a simulated run's differs).
        let origin = custos_service::startup::ledger_origin(&ledger_dir).map_err(|e| {
            let code = if e.code == "no_checkpoint" {
                "evidence_not_checkpointed"
            } else {
                e.code
            };
            Failure::new(code, e.message)
        })?;
        let (key, _) = LedgerKey::load_or_create(
            &custos_service::startup::ledger_key_path(&args.data_dir),
            &origin,
        )
        .map_err(|e| Failure::new(e.code(), e.to_string()))?;
        let bundle = build_bundle(&source, &key.verifier_key(), subjects)
            .map_err(|e| Failure::new(e.code(), format!("cannot build the evidence: {e}")))?;
        let json = serde_json::to_vec_pretty(&bundle)
            .map_err(|e| Failure::new("evidence", e.to_string()))?;
        std::fs::write(path, json).map_err(|e| {
            Failure::new("evidence", format!("cannot write {}: {e}", path.display()))
        })?;
        custos_sim::outln!(
            "evidence for {} suspects ({} ledger entries) written to {}; check it with `custos ledger check-evidence {} --key \"$(custos ledger key --data-dir …)\"`",
            bundle.subjects.len(),
            bundle.entries.len(),
            path.display(),
            path.display()
        )?;
    }
    Ok(())
}

fn trace_fatal(e: custos_trace::TraceError) -> Failure {
    Failure::new(e.code(), e.to_string())
}
