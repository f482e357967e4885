//! `custos ledger ...`: the verifier key, whole-ledger verification (from a directory or
//! over HTTP, as an auditor or a simple witness runs it), entry proofs and their offline
//! check, and the offline check of evidence bundles. Verification trusts nothing but the
//! verifier key and an earlier checkpoint.

use std::path::{Path, PathBuf};

use custos_ledger::{
    DirSource, EvidenceError, FetchError, LedgerKey, ProofError, TileSource, VerifyError,
    check_bundle, check_proof, verify,
};
use custos_service::Config;

use crate::Failure;
use custos_client::{Client, Http};

use crate::api_client::{self, TokenArgs};
use custos_service::startup::{self, write_secret};
use custos_sim::outln;
use custos_sim::stdout::{self as output, printable};

/// `custos ledger` subcommands.
#[derive(clap::Subcommand)]
pub(crate) enum LedgerCommand {
    /// Print the checkpoint verifier key (C2SP signed-note verifier key format).
    Key {
        /// The server's data directory.
        #[arg(long, env = "CUSTOS_DATA_DIR")]
        data_dir: PathBuf,
        /// The server's configuration file (for `ledger_origin`).
        #[arg(long, env = "CUSTOS_CONFIG")]
        config: Option<PathBuf>,
        /// The data directory is a simulated-clock run's (`serve --simulated-clock`,
        /// `custos simulate`): its ledger origin is `<ledger_origin>/simulated`.
        #[arg(long)]
        simulated_clock: bool,
    },
    /// Recompute the whole tree from the tiles and check it against the latest signed
    /// checkpoint; with --state, prove consistency with the checkpoint saved there by the
    /// previous run, then save the new one.
    Verify {
        /// A ledger directory (e.g. DATA/ledger, or a mirror of one).
        #[arg(long, conflicts_with = "url")]
        dir: Option<PathBuf>,
        /// The server's URL: http://127.0.0.1:8700 or http://127.0.0.1:8700/ledger.
        #[arg(long)]
        url: Option<String>,
        /// The verifier key (as printed by `custos ledger key`).
        #[arg(long)]
        key: String,
        /// File holding the checkpoint verified last time; updated on success.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Token for entry bundles over HTTP (security_analyst or admin).
        #[command(flatten)]
        token: TokenArgs,
    },
    /// Print entry INDEX with its inclusion proof as a C2SP tlog-proof.
    Prove {
        /// Ledger index of the entry.
        index: u64,
        /// The running server's URL: http://127.0.0.1:8700 or http://127.0.0.1:8700/ledger.
        #[arg(long, conflicts_with = "data_dir")]
        url: Option<String>,
        /// Token (security_analyst or admin) for --url.
        #[command(flatten)]
        token: TokenArgs,
        /// Read a stopped server's data directory instead.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's configuration file (for `ledger_origin`), with --data-dir.
        #[arg(long)]
        config: Option<PathBuf>,
        /// With --data-dir: the data directory is a simulated-clock run's.
        #[arg(long)]
        simulated_clock: bool,
    },
    /// Check a tlog-proof file offline: the checkpoint signature and the inclusion proof.
    CheckProof {
        /// The proof file written by `custos ledger prove`.
        file: PathBuf,
        /// The verifier key.
        #[arg(long)]
        key: String,
    },
    /// Check an evidence bundle (custos-evidence/v1) offline: every entry's proof against
    /// the bundle's one signed checkpoint, and that every entry a subject cites was made
    /// by that subject (the entry's staff_id).
    CheckEvidence {
        /// The bundle (JSON).
        file: PathBuf,
        /// The verifier key.
        #[arg(long)]
        key: String,
    },
}

fn origin(config: Option<&Path>) -> Result<String, Failure> {
    Config::load(config)
        .map(|c| c.ledger_origin)
        .map_err(|e| Failure::new(e.code(), e.to_string()))
}

fn ledger_fatal(e: custos_ledger::LedgerError) -> Failure {
    Failure::new(e.code(), e.to_string())
}

/// Who may read entry bundles and proofs over HTTP.
const WHOSE: &str = "a security_analyst or admin token";

/// The ledger origin of the data directory `data_dir` (from the configuration, with
/// `/simulated` for a simulated-clock run's), checked against its key file, which must
/// exist: a mistyped path never gets a new key. A simulated run's key asked for as a
/// real one (or the reverse) is refused with a hint rather than a bare origin mismatch.
fn data_dir_origin(
    data_dir: &Path,
    config: Option<&Path>,
    simulated_clock: bool,
) -> Result<(LedgerKey, String), Failure> {
    let path = startup::ledger_key_path(data_dir);
    if !path.is_file() {
        // DATA/ledger given for DATA is the likely slip.
        let parent = data_dir
            .parent()
            .filter(|p| data_dir.ends_with("ledger") && startup::ledger_key_path(p).is_file());
        let hint = match parent {
            Some(p) => format!(" (did you mean --data-dir {}?)", p.display()),
            None => ": start the server once to create it".to_owned(),
        };
        return Err(Failure::new(
            "no_ledger_key",
            format!("{} does not exist{hint}", path.display()),
        ));
    }
    let real = origin(config)?;
    let simulated = format!("{real}/simulated");
    let (wanted, other) = if simulated_clock {
        (simulated, real)
    } else {
        (real, simulated)
    };
    match LedgerKey::load_or_create(&path, &wanted) {
        Ok((key, _)) => Ok((key, wanted)),
        Err(e) => {
            // Which kind of run made the key decides the hint.
            if LedgerKey::load_or_create(&path, &other).is_ok() {
                let message = if simulated_clock {
                    format!(
                        "{} was made for the real origin {other:?}, not a simulated-clock run's: leave out --simulated-clock",
                        path.display()
                    )
                } else {
                    format!(
                        "{} was made for origin {other:?}: this data directory is a simulated-clock run's (serve --simulated-clock or custos simulate; its records are not real events); pass --simulated-clock to use it",
                        path.display()
                    )
                };
                Err(Failure::new("simulated_ledger", message))
            } else {
                Err(ledger_fatal(e))
            }
        }
    }
}

/// Runs one `custos ledger` subcommand.
pub(crate) async fn run(command: LedgerCommand) -> Result<(), Failure> {
    match command {
        LedgerCommand::Key {
            data_dir,
            config,
            simulated_clock,
        } => {
            let (key, _) = data_dir_origin(&data_dir, config.as_deref(), simulated_clock)?;
            outln!("{}", key.verifier_key())
        }
        LedgerCommand::Verify {
            dir,
            url,
            key,
            state,
            token,
        } => {
            let previous = match &state {
                Some(p) if p.exists() => Some(std::fs::read_to_string(p).map_err(|e| {
                    Failure::new("state_file", format!("cannot read {}: {e}", p.display()))
                })?),
                _ => None,
            };
            // Why the source could not be read, when it could not: reported as such,
            // never as a verification failure.
            let unreadable = std::sync::Arc::new(std::sync::Mutex::new(None::<Failure>));
            let source: Box<dyn TileSource + Send> = match (dir, url) {
                (Some(dir), _) => {
                    check_ledger_dir(&dir)?;
                    Box::new(DirSource::new(dir))
                }
                (None, Some(url)) => Box::new(HttpSource {
                    client: api_client::client(&url),
                    token: token.get()?,
                    runtime: tokio::runtime::Handle::current(),
                    unreadable: unreadable.clone(),
                }),
                (None, None) => {
                    return Err(Failure::new(
                        "usage",
                        "give --dir DIR (a ledger directory, e.g. DATA/ledger) or --url URL (the server, e.g. http://127.0.0.1:8700)",
                    ));
                }
            };
            let report = tokio::task::spawn_blocking(move || {
                verify(source.as_ref(), &key, previous.as_deref())
            })
            .await
            .map_err(|e| Failure::new("verify", e.to_string()))?;
            let report = report.map_err(|e| match e {
                VerifyError::Fetch { .. } => unreadable
                    .lock()
                    .ok()
                    .and_then(|mut u| u.take())
                    .unwrap_or_else(|| {
                        Failure::new("ledger_unreadable", format!("cannot read the ledger: {e}"))
                    }),
                VerifyError::BadKey(_) => Failure::new(
                    e.code(),
                    format!("{e} (give the key `custos ledger key` prints)"),
                ),
                _ => {
                    let at = e
                        .first_bad_index()
                        .map(|i| format!(" (first bad entry: index {i})"))
                        .unwrap_or_default();
                    Failure::failed(e.code(), format!("ledger verification FAILED: {e}{at}"))
                }
            })?;
            outln!(
                "ledger verified: size {} root {}",
                report.size,
                hex::encode(report.root)
            )?;
            if let Some(path) = &state {
                // Saved only after success: a failed run keeps the last good checkpoint.
                // Before the last line, so a closed output cannot skip it.
                write_state(path, &report.checkpoint)?;
            }
            match report.previous_size {
                Some(old) if report.consistent_with_previous => {
                    outln!("consistent with the saved checkpoint of size {old}")
                }
                _ => outln!("no saved checkpoint to compare with"),
            }
        }
        LedgerCommand::Prove {
            index,
            url,
            token,
            data_dir,
            config,
            simulated_clock,
        } => {
            let proof = match (url, data_dir) {
                (Some(url), _) => {
                    let token = token.require(WHOSE)?;
                    let answer = api_client::client(&url)
                        .get(&token, &format!("/v1/ledger/proof/entry?index={index}"))
                        .await?;
                    custos_sim::accepted(answer, WHOSE)?.text
                }
                (None, Some(dir)) => {
                    let (key, origin) = data_dir_origin(&dir, config.as_deref(), simulated_clock)?;
                    let ledger =
                        custos_ledger::Ledger::open(&startup::ledger_dir(&dir), &origin, key)
                            .map_err(|e| match e {
                                custos_ledger::LedgerError::Locked(_) => {
                                    let busy = startup::in_use(&dir);
                                    Failure::new(
                                        busy.code.to_owned(),
                                        format!("{}; or ask it with --url", busy.message),
                                    )
                                }
                                e => ledger_fatal(e),
                            })?;
                    ledger.tlog_proof(index).map_err(ledger_fatal)?
                }
                (None, None) => {
                    return Err(Failure::new(
                        "usage",
                        "give --url URL (the running server, e.g. http://127.0.0.1:8700) or --data-dir DIR (a stopped server's data directory)",
                    ));
                }
            };
            output::text(&proof)?;
            if !proof.ends_with('\n') {
                outln!()?;
            }
            Ok(())
        }
        LedgerCommand::CheckProof { file, key } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Failure::new("proof_file", format!("cannot read {}: {e}", file.display()))
            })?;
            let checked = check_proof(&text, &key).map_err(|e| match e {
                ProofError::BadKey(_) => Failure::new(
                    e.code(),
                    format!("{e} (give the key `custos ledger key` prints)"),
                ),
                _ => Failure::failed(e.code(), format!("proof check FAILED: {e}")),
            })?;
            outln!(
                "proof verified: entry {} is in the tree of size {} with root {}",
                checked.index,
                checked.size,
                hex::encode(checked.root)
            )?;
            if let Some(entry) = checked.entry {
                outln!("{}", String::from_utf8_lossy(&entry))?;
            }
            Ok(())
        }
        LedgerCommand::CheckEvidence { file, key } => {
            let bytes = std::fs::read(&file).map_err(|e| {
                Failure::new(
                    "evidence_file",
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            let checked = check_bundle(&bytes, &key).map_err(|e| match e {
                EvidenceError::BadKey(_) => Failure::new(
                    e.code(),
                    format!("{e} (give the key `custos ledger key` prints)"),
                ),
                _ => Failure::failed(e.code(), format!("evidence check FAILED: {e}")),
            })?;
            // The proofs only show the entries are in the log, not whom they are about.
            custos_access::evidence::check_subjects(&checked).map_err(|e| {
                let message = printable(&e.to_string());
                Failure::failed(e.code(), format!("evidence check FAILED: {message}"))
            })?;
            outln!(
                "evidence verified: {} entries against the signed checkpoint of {} at size {} (root {})",
                checked.entries.len(),
                printable(&checked.origin),
                checked.size,
                hex::encode(checked.root)
            )?;
            for s in &checked.subjects {
                outln!(
                    "{}: {} ({} entries verified, each made by {})",
                    printable(&s.subject),
                    printable(&s.claim),
                    s.entries.len(),
                    printable(&s.subject)
                )?;
            }
            Ok(())
        }
    }
}

/// Refuses, before verifying, a `--dir` that is no ledger directory at all: a missing
/// path, a data directory (which holds `ledger/`), anything without a checkpoint or
/// tiles. These are usage mistakes and must not read as a tampered ledger. A directory
/// with tiles but no checkpoint is a ledger that lost it: verification reports that.
fn check_ledger_dir(dir: &Path) -> Result<(), Failure> {
    if !dir.is_dir() {
        return Err(Failure::new(
            "ledger_unreadable",
            format!(
                "cannot read the ledger: {} is not a directory (give a ledger directory, e.g. DATA/ledger)",
                dir.display()
            ),
        ));
    }
    if dir.join("checkpoint").exists() || dir.join("tile").is_dir() {
        return Ok(());
    }
    let hint = if startup::ledger_dir(dir).is_dir() {
        format!(
            "{} is a data directory: did you mean {}?",
            dir.display(),
            startup::ledger_dir(dir).display()
        )
    } else {
        format!(
            "{} holds no ledger (no checkpoint, no tiles): give a ledger directory, e.g. DATA/ledger",
            dir.display()
        )
    };
    Err(Failure::new(
        "not_a_ledger_dir",
        format!("cannot read the ledger: {hint}"),
    ))
}

/// Replaces the state file atomically (temp file, fsync, rename), so a crash leaves the
/// old or the new checkpoint, never half of one.
fn write_state(path: &Path, checkpoint: &str) -> Result<(), Failure> {
    let tmp = path.with_extension("tmp");
    write_secret(&tmp, checkpoint.trim_end())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        Failure::new(
            "state_file",
            format!("cannot write {}: {e}", path.display()),
        )
    })
}

/// A [`TileSource`] over HTTP, at `<base>/ledger`. `verify` is synchronous, so each
/// fetch blocks on the runtime from the blocking thread it runs on.
struct HttpSource {
    client: Client<Http>,
    token: Option<String>,
    runtime: tokio::runtime::Handle,
    /// Why a fetch could not read the ledger (no token, refused, unreachable): set by the
    /// failing fetch, reported instead of a verification failure.
    unreadable: std::sync::Arc<std::sync::Mutex<Option<Failure>>>,
}

impl HttpSource {
    async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, Failure> {
        let token = self.token.as_deref().unwrap_or_default();
        let answer = self
            .client
            .get_raw(token, &format!("/ledger/{path}"))
            .await?;
        let base = self.client.transport().base();
        match answer.status {
            // No checkpoint at all is no Custos ledger at this address (a new server
            // publishes its first one within seconds); a missing tile under a
            // checkpoint is the ledger's fault and verification names it.
            404 if path == "checkpoint" => Err(Failure::new(
                "ledger_unreadable",
                format!(
                    "cannot read the ledger: {base}/ledger/checkpoint does not exist (is {base} a Custos server? give its base URL, e.g. http://127.0.0.1:8700)"
                ),
            )),
            404 => Ok(None),
            200..300 => Ok(Some(answer.bytes)),
            status => {
                let envelope = serde_json::from_slice(&answer.bytes).unwrap_or_default();
                Err(Failure::refusal(status, &envelope, WHOSE))
            }
        }
    }
}

impl TileSource for HttpSource {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, FetchError> {
        self.runtime.block_on(self.get(path)).map_err(|e| {
            let message = format!("{}: {}", e.code(), e.message());
            if let Ok(mut slot) = self.unreadable.lock() {
                slot.get_or_insert(e);
            }
            message.into()
        })
    }
}
