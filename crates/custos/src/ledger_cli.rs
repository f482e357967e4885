//! `custos ledger ...`: the verifier key, whole-ledger verification (from a directory or
//! over HTTP, as an auditor or a simple witness runs it), entry proofs and their offline
//! check, and the offline check of evidence bundles. Verification trusts nothing but the
//! verifier key and an earlier checkpoint.

use std::path::{Path, PathBuf};

use custos_gateway::Config;
use custos_ledger::{
    CheckedBundle, DirSource, FetchError, LedgerKey, TileSource, check_bundle, check_proof, verify,
};

use crate::Fatal;
use crate::serve::{self, write_secret};

/// `custos ledger` subcommands.
#[derive(clap::Subcommand)]
pub enum LedgerCommand {
    /// Print the checkpoint verifier key (C2SP signed-note verifier key format).
    Key {
        /// The server's data directory.
        #[arg(long, env = "CUSTOS_DATA_DIR")]
        data_dir: PathBuf,
        /// The server's configuration file (for `ledger_origin`).
        #[arg(long, env = "CUSTOS_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Recompute the whole tree from the tiles and check it against the latest signed
    /// checkpoint; with --state, prove consistency with the checkpoint saved there by the
    /// previous run, then save the new one.
    Verify {
        /// A ledger directory (e.g. DATA/ledger, or a mirror of one).
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        dir: Option<PathBuf>,
        /// The ledger's base URL, e.g. http://127.0.0.1:8700/ledger.
        #[arg(long)]
        url: Option<String>,
        /// The verifier key (as printed by `custos ledger key`).
        #[arg(long)]
        key: String,
        /// File holding the checkpoint verified last time; updated on success.
        #[arg(long)]
        state: Option<PathBuf>,
        /// Bearer token for entry bundles over HTTP (security_analyst or admin).
        #[arg(long, env = "CUSTOS_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Print entry INDEX with its inclusion proof as a C2SP tlog-proof.
    Prove {
        /// Ledger index of the entry.
        index: u64,
        /// The server's base URL, e.g. http://127.0.0.1:8700 (asks the running server).
        #[arg(
            long,
            conflicts_with = "data_dir",
            required_unless_present = "data_dir"
        )]
        url: Option<String>,
        /// Bearer token (security_analyst or admin) for --url.
        #[arg(long, env = "CUSTOS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Read a stopped server's data directory instead.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The server's configuration file (for `ledger_origin`), with --data-dir.
        #[arg(long)]
        config: Option<PathBuf>,
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

fn origin(config: Option<&Path>) -> Result<String, Fatal> {
    Config::load(config)
        .map(|c| c.ledger_origin)
        .map_err(|e| Fatal::new(e.code(), e.to_string()))
}

fn ledger_fatal(e: custos_ledger::LedgerError) -> Fatal {
    Fatal::new(e.code(), e.to_string())
}

/// Runs one `custos ledger` subcommand.
pub async fn run(command: LedgerCommand) -> Result<(), Fatal> {
    match command {
        LedgerCommand::Key { data_dir, config } => {
            let path = serve::ledger_key_path(&data_dir);
            if !path.is_file() {
                return Err(Fatal::new(
                    "no_ledger_key",
                    format!(
                        "{} does not exist: start the server once to create it",
                        path.display()
                    ),
                ));
            }
            let (key, _) = LedgerKey::load_or_create(&path, &origin(config.as_deref())?)
                .map_err(ledger_fatal)?;
            println!("{}", key.verifier_key());
            Ok(())
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
                    Fatal::new("state_file", format!("cannot read {}: {e}", p.display()))
                })?),
                _ => None,
            };
            let source: Box<dyn TileSource + Send> = match (dir, url) {
                (Some(dir), _) => Box::new(DirSource::new(dir)),
                (None, Some(url)) => Box::new(HttpSource::new(&url, token)?),
                (None, None) => return Err(Fatal::new("usage", "give --dir or --url")),
            };
            let report = tokio::task::spawn_blocking(move || {
                verify(source.as_ref(), &key, previous.as_deref())
            })
            .await
            .map_err(|e| Fatal::new("verify", e.to_string()))?;
            let report = report.map_err(|e| {
                let at = e
                    .first_bad_index()
                    .map(|i| format!(" (first bad entry: index {i})"))
                    .unwrap_or_default();
                Fatal::new(e.code(), format!("ledger verification FAILED: {e}{at}"))
            })?;
            println!(
                "ledger verified: size {} root {}",
                report.size,
                hex::encode(report.root)
            );
            match report.previous_size {
                Some(old) if report.consistent_with_previous => {
                    println!("consistent with the saved checkpoint of size {old}");
                }
                _ => println!("no saved checkpoint to compare with"),
            }
            if let Some(path) = state {
                // Saved only after success: a failed run keeps the last good checkpoint.
                write_state(&path, &report.checkpoint)?;
            }
            Ok(())
        }
        LedgerCommand::Prove {
            index,
            url,
            token,
            data_dir,
            config,
        } => {
            let proof = match (url, data_dir) {
                (Some(url), _) => {
                    let token = token.ok_or_else(|| {
                        Fatal::new("usage", "--url needs --token or CUSTOS_TOKEN")
                    })?;
                    let response = reqwest::Client::new()
                        .get(format!(
                            "{}/v1/ledger/proof/entry?index={index}",
                            url.trim_end_matches('/')
                        ))
                        .bearer_auth(token)
                        .send()
                        .await
                        .map_err(|e| Fatal::new("http", e.to_string()))?;
                    let status = response.status();
                    let body = response
                        .text()
                        .await
                        .map_err(|e| Fatal::new("http", e.to_string()))?;
                    if !status.is_success() {
                        return Err(Fatal::new("http", format!("{status}: {body}")));
                    }
                    body
                }
                (None, Some(dir)) => {
                    // Never create a key or a ledger on a mistyped path.
                    if !serve::ledger_key_path(&dir).is_file() {
                        return Err(Fatal::new(
                            "no_ledger_key",
                            format!("{} holds no ledger key", dir.display()),
                        ));
                    }
                    let (ledger, _) = serve::open_ledger(&dir, &origin(config.as_deref())?)?;
                    ledger.tlog_proof(index).map_err(ledger_fatal)?
                }
                (None, None) => return Err(Fatal::new("usage", "give --url or --data-dir")),
            };
            print!("{proof}");
            if !proof.ends_with('\n') {
                println!();
            }
            Ok(())
        }
        LedgerCommand::CheckProof { file, key } => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                Fatal::new("proof_file", format!("cannot read {}: {e}", file.display()))
            })?;
            let checked = check_proof(&text, &key)
                .map_err(|e| Fatal::new(e.code(), format!("proof check FAILED: {e}")))?;
            println!(
                "proof verified: entry {} is in the tree of size {} with root {}",
                checked.index,
                checked.size,
                hex::encode(checked.root)
            );
            if let Some(entry) = checked.entry {
                println!("{}", String::from_utf8_lossy(&entry));
            }
            Ok(())
        }
        LedgerCommand::CheckEvidence { file, key } => {
            let bytes = std::fs::read(&file).map_err(|e| {
                Fatal::new(
                    "evidence_file",
                    format!("cannot read {}: {e}", file.display()),
                )
            })?;
            let checked = check_bundle(&bytes, &key)
                .map_err(|e| Fatal::new(e.code(), format!("evidence check FAILED: {e}")))?;
            check_subjects(&checked)?;
            println!(
                "evidence verified: {} entries against the signed checkpoint of {} at size {} (root {})",
                checked.entries.len(),
                printable(&checked.origin),
                checked.size,
                hex::encode(checked.root)
            );
            for s in &checked.subjects {
                println!(
                    "{}: {} ({} entries verified, each made by {})",
                    printable(&s.subject),
                    printable(&s.claim),
                    s.entries.len(),
                    printable(&s.subject)
                );
            }
            Ok(())
        }
    }
}

/// Every entry a subject cites must be a Custos access record made by that subject: the
/// proofs only show the entries are in the log, not that they are about whom the bundle
/// says. Messages name indexes, never what the entries hold.
fn check_subjects(checked: &CheckedBundle) -> Result<(), Fatal> {
    for s in &checked.subjects {
        for &index in &s.entries {
            let bytes = checked.entry(index).ok_or_else(|| {
                Fatal::new(
                    "evidence_missing_entry",
                    format!("evidence check FAILED: entry {index} is not in the bundle"),
                )
            })?;
            let record = custos_access::entry::decode(index, bytes).map_err(|e| {
                Fatal::new(
                    e.code(),
                    format!("evidence check FAILED: entry {index} is not a Custos access record"),
                )
            })?;
            if record.staff_id != s.subject {
                return Err(Fatal::new(
                    "evidence_subject_mismatch",
                    format!(
                        "evidence check FAILED: entry {index}, cited for {}, was made by someone else",
                        printable(&s.subject)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Text from a bundle, safe for a terminal: control characters (escape sequences) become `?`.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Replaces the state file atomically (temp file, fsync, rename), so a crash leaves the
/// old or the new checkpoint, never half of one.
fn write_state(path: &Path, checkpoint: &str) -> Result<(), Fatal> {
    let tmp = path.with_extension("tmp");
    write_secret(&tmp, checkpoint.trim_end())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        Fatal::new(
            "state_file",
            format!("cannot write {}: {e}", path.display()),
        )
    })
}

/// A [`TileSource`] over HTTP. `verify` is synchronous, so each fetch blocks on the
/// runtime from the blocking thread it runs on.
struct HttpSource {
    base: String,
    token: Option<String>,
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl HttpSource {
    fn new(base: &str, token: Option<String>) -> Result<HttpSource, Fatal> {
        Ok(HttpSource {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client: reqwest::Client::new(),
            runtime: tokio::runtime::Handle::current(),
        })
    }
}

impl TileSource for HttpSource {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, FetchError> {
        self.runtime.block_on(async {
            let mut request = self.client.get(format!("{}/{path}", self.base));
            if let Some(token) = &self.token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await?;
            match response.status() {
                reqwest::StatusCode::NOT_FOUND => Ok(None),
                s if s.is_success() => Ok(Some(response.bytes().await?.to_vec())),
                s => Err(format!("{path}: HTTP {s}").into()),
            }
        })
    }
}
