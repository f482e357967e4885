//! The group-commit writer: the only code that appends to the ledger, and the one that
//! publishes its checkpoints. See the crate docs for the order of a batch.
//!
//! It runs on its own OS thread: appends block on fsync, and a dedicated thread costs no
//! hand-off per batch (a `spawn_blocking` per batch measurably did).

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use custos_ledger::Ledger;
use tokio::sync::{oneshot, watch};

use crate::{AccessError, AccessRecord, entry};

/// The most records one group commit writes at once.
pub const MAX_BATCH: usize = 2048;

/// How many records may wait for the writer before new requests are refused; a full
/// queue means storage cannot keep up, and refusing is the fail-closed answer.
const QUEUE_DEPTH: usize = 16 * 1024;

/// A new checkpoint is signed at this interval while entries arrive (C2SP logs commonly
/// publish about once a second; the issue asks for at least that).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Pending {
    record: AccessRecord,
    ack: oneshot::Sender<Result<u64, String>>,
}

/// Starts the writer thread; returns its queue.
pub(crate) fn start(
    ledger: Arc<RwLock<Ledger>>,
    size: watch::Sender<u64>,
) -> Result<SyncSender<Pending>, AccessError> {
    let (queue, rx) = sync_channel(QUEUE_DEPTH);
    std::thread::Builder::new()
        .name("custos-ledger-writer".into())
        .spawn(move || write_batches(&ledger, &size, &rx))
        .map_err(|e| AccessError::Write(format!("cannot start the ledger writer: {e}")))?;
    Ok(queue)
}

/// Queues `record` and waits for its durable ledger index.
pub(crate) async fn submit(
    queue: &SyncSender<Pending>,
    record: AccessRecord,
) -> Result<u64, AccessError> {
    let (ack, done) = oneshot::channel();
    match queue.try_send(Pending { record, ack }) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            metrics::counter!("custos_ledger_queue_full_total").increment(1);
            return Err(AccessError::Unavailable);
        }
        Err(TrySendError::Disconnected(_)) => return Err(AccessError::Unavailable),
    }
    match done.await {
        Ok(Ok(index)) => Ok(index),
        Ok(Err(reason)) => Err(AccessError::Write(reason)),
        Err(_) => Err(AccessError::Unavailable),
    }
}

fn write_batches(ledger: &RwLock<Ledger>, size: &watch::Sender<u64>, rx: &Receiver<Pending>) {
    // Publish right away on start, so a ledger always has a checkpoint to verify.
    publish(ledger);
    let mut last_publish = Instant::now();
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    loop {
        let wait = CHECKPOINT_INTERVAL.saturating_sub(last_publish.elapsed());
        match rx.recv_timeout(wait) {
            Ok(first) => {
                batch.push(first);
                // Everything that queued while the previous batch was written.
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                append(ledger, size, &mut batch);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_publish.elapsed() >= CHECKPOINT_INTERVAL {
            publish(ledger);
            last_publish = Instant::now();
        }
    }
    // The queue closed (shutdown): whatever is durable gets a checkpoint.
    publish(ledger);
}

fn append(ledger: &RwLock<Ledger>, size: &watch::Sender<u64>, batch: &mut Vec<Pending>) {
    let entries: Vec<Vec<u8>> = batch.iter().map(|p| entry::encode(&p.record)).collect();
    let count = entries.len();
    let outcome = {
        let mut ledger = ledger.write().unwrap_or_else(|p| p.into_inner());
        ledger.append(&entries).map(|first| (first, ledger.size()))
    };
    let outcome = match outcome {
        Ok((first, new_size)) => {
            size.send_replace(new_size);
            Ok(first)
        }
        Err(e) => {
            tracing::error!(error = %e, code = e.code(), records = count, "ledger append failed; failing requests closed");
            Err(e.to_string())
        }
    };
    metrics::histogram!("custos_ledger_batch_entries").record(count as f64);
    for (i, pending) in batch.drain(..).enumerate() {
        // A requester that gave up (client gone) needs no answer.
        let _ = pending
            .ack
            .send(outcome.clone().map(|first| first + i as u64));
    }
}

fn publish(ledger: &RwLock<Ledger>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let outcome = {
        let mut ledger = ledger.write().unwrap_or_else(|p| p.into_inner());
        ledger
            .publish_checkpoint(now)
            .map(|note| (note.is_some(), ledger.size()))
    };
    match outcome {
        Ok((true, size)) => {
            metrics::gauge!("custos_ledger_checkpoint_size").set(size as f64);
        }
        Ok((false, _)) => {}
        Err(e) => {
            // Appends go on (they are durable without a checkpoint); signing waits until
            // the problem (e.g. a clock that went backwards) is gone.
            metrics::counter!("custos_ledger_checkpoint_failures_total", "code" => e.code())
                .increment(1);
            tracing::error!(error = %e, code = e.code(), "checkpoint not published");
        }
    }
}
