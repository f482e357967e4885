//! `custos import FILE`: moves an existing customer base in through the running server's
//! API, streaming the NDJSON file in batches. Each batch is sent under an idempotency key
//! made of its content's hash and its first line's number, and the progress is written
//! to a state file after each batch the server stored, so an import cut off anywhere
//! (the client, the network, the server) is resumed by running the same command again:
//! the batch in flight is either stored and answered from its receipt, or stored now —
//! never twice. A file mended after the import stopped at a bad line resumes there too:
//! the mended batch is new content under a new key.
//!
//! Durability order, per batch: the server commits the batch and its receipt → the ids are
//! appended to `--ids` and synced → the state file is replaced (write, sync, rename). A
//! resume truncates `--ids` to the length the state names, so ids appended for a batch
//! whose state was not yet written are not listed twice.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use custos_client::{Answer, Client, Http};
use custos_service::input::MAX_IMPORT;
use custos_sim::{Failure, outln};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api_client::{self, TokenArgs};

/// `custos import` arguments.
#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// The NDJSON file: one new customer per line (`name`, and any of `phone`, `email`,
    /// `account_id`, `attributes`), as `POST /v1/customers/import` takes them.
    file: PathBuf,
    /// The server's base URL (a trailing `/ledger` is ignored).
    #[arg(long, default_value = "http://127.0.0.1:8700")]
    url: String,
    /// An admin's token.
    #[command(flatten)]
    token: TokenArgs,
    /// Customers per request, 1 to 100000. Each batch is stored all or nothing.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u32).range(1..=MAX_IMPORT as i64))]
    batch: u32,
    /// Batches in flight at once: the server seals one while it stores another.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=8))]
    parallel: u32,
    /// Where the progress is kept (default: FILE.import-state). Run the same command
    /// again to resume from it.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Append the new customers' ids here, one per line in the file's order.
    #[arg(long)]
    ids: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Who may import.
const WHOSE: &str = "an admin's token";

/// Most bytes one request carries, under the server's default body limit (64 MiB) for
/// any line lengths: a batch ends early when it would grow past this.
const MAX_BATCH_BYTES: usize = 32 << 20;

/// How often a batch that found the server unreachable or failing (5xx) is sent again
/// before the command stops (resumable) and says why.
const RETRIES: u32 = 5;

/// The progress of one file's import, as the state file keeps it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Progress {
    /// The batch size the import started with; a resume keeps it, so each batch is the
    /// same as before and so is its key.
    batch: u32,
    /// Byte offset of the first line not yet stored.
    offset: u64,
    /// Number of that line (1-based).
    line: u64,
    /// Customers stored so far.
    imported: u64,
    /// Length of the `--ids` file once the stored batches' ids are in it.
    ids_bytes: u64,
    /// The last batch stored: where it starts and the SHA-256 of its bytes, hex. A
    /// resume reads those bytes again, so a state is not applied to another file.
    last: Option<StoredBatch>,
}

/// Where a stored batch lies in the file, and what it held.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct StoredBatch {
    offset: u64,
    sha256: String,
}

/// One batch read from the file.
struct Batch {
    first_line: u64,
    /// SHA-256 of `body`, hex.
    sha256: String,
    next_offset: u64,
    next_line: u64,
    customers: u64,
    body: Vec<u8>,
}

/// Runs `custos import`.
pub(crate) async fn run(args: ImportArgs) -> Result<(), Failure> {
    let token = args.token.require(WHOSE)?;
    let started = Instant::now();
    let file = File::open(&args.file).map_err(|e| {
        Failure::new(
            "cannot_read",
            format!("cannot open {}: {e}", args.file.display()),
        )
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let state_path = args.state.clone().unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".import-state");
        PathBuf::from(name)
    });
    let mut progress = match read_state(&state_path)? {
        Some(saved) => {
            check_same_file(&file, &saved, &args.file, &state_path)?;
            saved
        }
        None => Progress {
            batch: args.batch,
            offset: 0,
            line: 1,
            imported: 0,
            ids_bytes: 0,
            last: None,
        },
    };
    if progress.offset >= size && progress.imported > 0 {
        outln!(
            "{} is imported already: {} customers (per {}); nothing to do",
            args.file.display(),
            progress.imported,
            state_path.display()
        )?;
        return Ok(());
    }
    let resumed_at = progress.imported;
    let mut ids = args
        .ids
        .as_deref()
        .map(|path| open_ids(path, progress.ids_bytes))
        .transpose()?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    reader
        .seek(SeekFrom::Start(progress.offset))
        .map_err(|e| read_failure(&args.file, &e))?;
    let bar = custos_sim::progress::bar(
        usize::try_from(size).unwrap_or(usize::MAX),
        "import",
        args.quiet,
    );
    bar.set_position(progress.offset);

    let client = api_client::client(&args.url);
    let mut next = (progress.offset, progress.line);
    let mut in_flight: VecDeque<(Batch, tokio::task::JoinHandle<Result<Answer, Failure>>)> =
        VecDeque::new();
    let mut replayed = 0u64;
    loop {
        while in_flight.len() < args.parallel as usize {
            let Some(batch) = read_batch(&mut reader, next, progress.batch, &args.file)? else {
                break;
            };
            next = (batch.next_offset, batch.next_line);
            let key = format!("imp-{}-L{}", &batch.sha256[..32], batch.first_line);
            let send = send_batch(
                client.clone(),
                token.clone(),
                batch.body.clone(),
                key,
                batch.first_line,
            );
            in_flight.push_back((batch, tokio::spawn(send)));
        }
        let Some((batch, sending)) = in_flight.pop_front() else {
            break;
        };
        let answer = match sending.await {
            Ok(answer) => answer,
            Err(e) => Err(Failure::new("internal", format!("a batch was lost: {e}"))),
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(failure) => {
                // What is in flight behind it is either stored (and answered from its
                // receipt on the resume) or not: the state stays at this batch.
                bar.abandon();
                outln!(
                    "stopped at line {}: {} customers stored in this run; run the same command again to resume",
                    batch.first_line,
                    progress.imported - resumed_at
                )?;
                return Err(failure);
            }
        };
        let stored = stored_ids(&answer, batch.customers)?;
        if answer.body["replayed"].as_bool() == Some(true) {
            replayed += 1;
        }
        if let Some((file, path)) = ids.as_mut() {
            let mut text = String::with_capacity(stored.len() * 21);
            for id in &stored {
                text.push_str(id);
                text.push('\n');
            }
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(|e| write_failure(path, &e))?;
            progress.ids_bytes += text.len() as u64;
        }
        progress.last = Some(StoredBatch {
            offset: progress.offset,
            sha256: batch.sha256,
        });
        progress.offset = batch.next_offset;
        progress.line = batch.next_line;
        progress.imported += batch.customers;
        write_state(&state_path, &progress)?;
        bar.set_position(progress.offset);
    }
    bar.finish_and_clear();
    let this_run = progress.imported - resumed_at;
    let seconds = started.elapsed().as_secs_f64();
    outln!(
        "imported {this_run} customers in {seconds:.1} s ({:.0}/s){}; {} in all from {}",
        this_run as f64 / seconds.max(1e-9),
        if replayed > 0 {
            format!(", {replayed} batches answered from an earlier send")
        } else {
            String::new()
        },
        progress.imported,
        args.file.display()
    )
}

/// Sends one batch, again after a pause while the server is unreachable or failing; a
/// refusal (4xx) ends the import at once, with the server's code and message.
async fn send_batch(
    client: Client<Http>,
    token: String,
    body: Vec<u8>,
    key: String,
    first_line: u64,
) -> Result<Answer, Failure> {
    let mut pause = Duration::from_millis(500);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let failure = match client
            .import_batch(&token, body.clone(), Some(&key), first_line)
            .await
        {
            Ok(answer) if answer.is_success() => return Ok(answer),
            Ok(answer) if answer.status < 500 => {
                return Err(Failure::refusal(answer.status, &answer.body, WHOSE));
            }
            Ok(answer) => Failure::refusal(answer.status, &answer.body, WHOSE),
            Err(e) => Failure::from(e),
        };
        if attempt > RETRIES {
            return Err(failure);
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

/// The ids the server gave a batch of `customers`, checked for number and form.
fn stored_ids(answer: &Answer, customers: u64) -> Result<Vec<String>, Failure> {
    let ids: Option<Vec<String>> = answer.body["ids"].as_array().and_then(|ids| {
        ids.iter()
            .map(|id| {
                id.as_str()
                    .filter(|id| custos_service::input::valid_id("customer", id).is_ok())
                    .map(str::to_owned)
            })
            .collect()
    });
    match ids {
        Some(ids) if ids.len() as u64 == customers => Ok(ids),
        _ => Err(Failure::new(
            "unexpected_answer",
            "the server's answer does not list one id per customer of the batch: is it a Custos server?",
        )),
    }
}

/// Reads the next batch from `(offset, line)`: up to `size` customers (lines that hold
/// something) and at most [`MAX_BATCH_BYTES`]; `None` at the end of the file.
fn read_batch(
    reader: &mut BufReader<File>,
    (offset, line): (u64, u64),
    size: u32,
    path: &Path,
) -> Result<Option<Batch>, Failure> {
    let mut batch = Batch {
        first_line: line,
        sha256: String::new(),
        next_offset: offset,
        next_line: line,
        customers: 0,
        body: Vec::new(),
    };
    while batch.customers < u64::from(size) && batch.body.len() < MAX_BATCH_BYTES {
        let start = batch.body.len();
        let read = reader
            .read_until(b'\n', &mut batch.body)
            .map_err(|e| read_failure(path, &e))?;
        if read == 0 {
            break;
        }
        if !batch.body.ends_with(b"\n") {
            batch.body.push(b'\n');
        }
        batch.next_offset += read as u64;
        batch.next_line += 1;
        if !batch.body[start..].iter().all(u8::is_ascii_whitespace) {
            batch.customers += 1;
        }
    }
    batch.sha256 = hex::encode(Sha256::digest(&batch.body));
    // Trailing blank lines alone make no batch (the server would refuse it as empty).
    Ok((batch.customers > 0).then_some(batch))
}

/// Refuses a state that is not this file's: the last batch it says was stored must still
/// be where it says, byte for byte. (Lines after it may have changed: a file mended at
/// the line an import stopped on resumes there.)
fn check_same_file(
    file: &File,
    saved: &Progress,
    path: &Path,
    state_path: &Path,
) -> Result<(), Failure> {
    let mismatch = || {
        Failure::new(
            "state_mismatch",
            format!(
                "{} is the progress of another file, or of this one before lines already imported changed; \
                 remove it only if this file's customers are not stored yet (they would be stored again)",
                state_path.display()
            ),
        )
    };
    let Some(last) = &saved.last else {
        return Ok(());
    };
    let len = saved.offset.checked_sub(last.offset).ok_or_else(mismatch)?;
    let mut bytes = Vec::new();
    let mut reader = file;
    reader
        .seek(SeekFrom::Start(last.offset))
        .and_then(|_| reader.take(len).read_to_end(&mut bytes))
        .map_err(|e| read_failure(path, &e))?;
    // A batch's last line may have had no newline at the end of the file; the batch
    // as sent has one.
    if bytes.len() as u64 == len && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    if bytes.len() as u64 >= len && hex::encode(Sha256::digest(&bytes)) == last.sha256 {
        Ok(())
    } else {
        Err(mismatch())
    }
}

fn read_state(path: &Path) -> Result<Option<Progress>, Failure> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| {
            Failure::new(
                "bad_state",
                format!(
                    "{} is not an import's progress; remove it to start over",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(read_failure(path, &e)),
    }
}

/// Replaces the state file: a crash leaves the old one or the new one, never half of one.
fn write_state(path: &Path, progress: &Progress) -> Result<(), Failure> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let bytes =
        serde_json::to_vec_pretty(progress).map_err(|e| Failure::new("internal", e.to_string()))?;
    File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| write_failure(path, &e))
}

/// Opens the ids file for appending, cut back to `len`: ids past it belong to a batch
/// whose progress was not saved, and come again when that batch is resent.
fn open_ids(path: &Path, len: u64) -> Result<(File, PathBuf), Failure> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| write_failure(path, &e))?;
    let on_disk = file.metadata().map_err(|e| read_failure(path, &e))?.len();
    if on_disk < len {
        return Err(Failure::new(
            "bad_state",
            format!(
                "{} is shorter than the import's progress says; give the ids file this import wrote",
                path.display()
            ),
        ));
    }
    file.set_len(len).map_err(|e| write_failure(path, &e))?;
    Ok((file, path.to_owned()))
}

fn read_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::new(
        "cannot_read",
        format!("cannot read {}: {e}", path.display()),
    )
}

fn write_failure(path: &Path, e: &std::io::Error) -> Failure {
    Failure::new(
        "cannot_write",
        format!("cannot write {}: {e}", path.display()),
    )
}
