//! The group-commit writer: the only code that appends to the ledger, and the one that
//! publishes its checkpoints. See the crate docs for the order of a batch.
//!
//! It runs on its own OS thread: appends block on fsync, and a dedicated thread costs no
//! hand-off per batch (a `spawn_blocking` per batch measurably did).
//!
//! A refused append (full disk, failing device) fails every request of its batch and
//! puts the writer in the *refusing* state ([`LedgerHealth::Refusing`]); the ledger has
//! already cut the refused batch off its files. Every later batch is tried again, and
//! when no request comes the writer probes about once a second, so writing resumes by
//! itself once the disk accepts writes. The first entry written then says that writes
//! were refused and between which times (`entry` module docs, "Refused writes").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use custos_ledger::{Ledger, MAX_ENTRY_LEN};
use custos_store::SharedLedger;
use custos_types::clock::now_millis;
use custos_types::{Action, Decision, RecordedRole, SYSTEM_ID};
use tokio::sync::{oneshot, watch};

use crate::{AccessError, AccessRecord, CheckpointHealth, LedgerHealth, WritesRefused, entry};

/// The most records one group commit writes at once.
pub const MAX_BATCH: usize = 2048;

/// How many records may wait for the writer before new requests are refused; a full
/// queue means storage cannot keep up, and refusing is the fail-closed answer.
const QUEUE_DEPTH: usize = 16 * 1024;

/// How far the access index may fall behind the ledger, in entries, before the writer
/// waits for it. The index is what `/v1/access`, quota rebuilding and traces read, and
/// on a small machine it absorbs fewer records per second than the ledger appends
/// (BENCHMARKS.md, "Ledger appends": on 2 cores about 20,000 a second against 80,000,
/// so it fell a minute behind a 10 s burst before this bound). Waiting here turns that
/// lag into larger group commits and a lower append rate: the record and its index
/// advance together, at most this far apart (well under a second at that rate). The lag
/// before each batch is on `/metrics` as `custos_access_index_lag_entries`.
pub const MAX_INDEX_LAG: u64 = 8 * 1024;

/// The longest the writer waits for an index that does not move. The ledger is the
/// record and the index only a copy of it: an index that has stopped (its store fails)
/// must not stop the record, so after one wait this long the writer appends without
/// waiting until the index moves again (it logs that, and counts it in
/// `custos_access_index_stalls_total`).
const INDEX_WAIT: Duration = Duration::from_secs(1);

/// How often a writer that waits for the index looks at it again.
const INDEX_POLL: Duration = Duration::from_millis(1);

/// A new checkpoint is signed at this interval while entries arrive (C2SP logs commonly
/// publish about once a second; the issue asks for at least that).
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

pub(crate) struct Pending {
    record: AccessRecord,
    ack: oneshot::Sender<Result<u64, String>>,
}

/// The writer's view of the ledger's health, published to [`crate::AccessLog::health`];
/// says [`LedgerHealth::Stopped`] when the writer thread ends (also by a panic).
struct Health(watch::Sender<LedgerHealth>);

impl Drop for Health {
    fn drop(&mut self) {
        self.0.send_replace(LedgerHealth::Stopped);
    }
}

/// How the writer thread is stopped: the handles of every [`crate::AccessLog`] clone
/// keep its queue open, so closing is a flag the thread reads at least once a second,
/// and a join, so that whoever removes the ledger's files does so after the last write.
#[derive(Default)]
pub(crate) struct Stop {
    closing: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Stop {
    /// Whether the log is closing (or closed).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Asks the writer to stop and waits until it has (after its final checkpoint).
    /// Records queued but not yet written are refused (their requests fail closed).
    pub(crate) fn stop_and_join(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Where the writer makes a batch durable.
pub(crate) enum Sink {
    /// This process's own ledger directory (SQLite, one node): the writer appends, and
    /// signs a checkpoint about once a second.
    Ledger,
    /// The sequence in PostgreSQL shared by every node (`custos_store::SharedLedger`
    /// has the durability order). The integrator (`shared`) builds this node's tiles
    /// from it and signs, so the writer never touches the ledger directory.
    Shared {
        ledger: SharedLedger,
        /// The writer is a plain thread; it waits for the database on this runtime.
        runtime: tokio::runtime::Handle,
    },
}

/// The writer thread's state.
struct Writer<'a> {
    ledger: &'a RwLock<Ledger>,
    sink: Sink,
    size: &'a watch::Sender<u64>,
    stop: &'a Stop,
    health: Health,
    /// Set from the first refused append until an append succeeds again.
    refused: Option<WritesRefused>,
    /// Entries copied into the access index, as the indexer publishes it.
    indexed: watch::Receiver<u64>,
    /// The index's position when a wait for it ended without it moving; the writer does
    /// not wait again until it has moved from there.
    index_stalled_at: Option<u64>,
    /// Whether checkpoints are signed (`/healthz` reads it).
    checkpoint: Arc<watch::Sender<CheckpointHealth>>,
}

/// Starts the writer thread; returns its queue.
pub(crate) fn start(
    ledger: Arc<RwLock<Ledger>>,
    sink: Sink,
    size: Arc<watch::Sender<u64>>,
    health: watch::Sender<LedgerHealth>,
    indexed: watch::Receiver<u64>,
    checkpoint: Arc<watch::Sender<CheckpointHealth>>,
) -> Result<(SyncSender<Pending>, Arc<Stop>), AccessError> {
    let (queue, rx) = sync_channel(QUEUE_DEPTH);
    let stop = Arc::new(Stop::default());
    let stop_in_thread = stop.clone();
    let thread = std::thread::Builder::new()
        .name("custos-ledger-writer".into())
        .spawn(move || {
            let mut writer = Writer {
                ledger: &ledger,
                sink,
                size: &size,
                stop: &stop_in_thread,
                health: Health(health),
                refused: None,
                indexed,
                index_stalled_at: None,
                checkpoint,
            };
            writer.run(&rx);
        })
        .map_err(|e| AccessError::Write(format!("cannot start the ledger writer: {e}")))?;
    *stop.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
    Ok((queue, stop))
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

impl Writer<'_> {
    fn run(&mut self, rx: &Receiver<Pending>) {
        let signs = matches!(self.sink, Sink::Ledger);
        // Publish right away on start, so a ledger always has a checkpoint to verify.
        if signs {
            publish(self.ledger, &self.checkpoint);
        }
        let mut last_publish = Instant::now();
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        loop {
            let wait = CHECKPOINT_INTERVAL.saturating_sub(last_publish.elapsed());
            match rx.recv_timeout(wait) {
                Ok(first) => {
                    if signs {
                        self.wait_for_index();
                    }
                    batch.push(first);
                    // Everything that queued while the previous batch was written.
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    self.append(&mut batch);
                }
                Err(RecvTimeoutError::Timeout) => {
                    // No request came: while writes are refused, probe with the
                    // refusal entry alone, so the ledger (and `/healthz`) recovers
                    // without waiting for traffic.
                    if self.refused.is_some() {
                        self.append(&mut batch);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.stop.closing.load(Ordering::SeqCst) {
                break;
            }
            if last_publish.elapsed() >= CHECKPOINT_INTERVAL {
                if signs {
                    publish(self.ledger, &self.checkpoint);
                }
                last_publish = Instant::now();
            }
        }
        // The queue closed or the log was closed (shutdown): whatever is durable gets a
        // checkpoint.
        if signs {
            publish(self.ledger, &self.checkpoint);
        }
    }

    /// Waits while the access index is more than [`MAX_INDEX_LAG`] entries behind the
    /// ledger, at most [`INDEX_WAIT`] for an index that does not move. Records that
    /// queue meanwhile join the next batch.
    fn wait_for_index(&mut self) {
        let size = *self.size.borrow();
        let started = Instant::now();
        let lag = size.saturating_sub(*self.indexed.borrow());
        metrics::gauge!("custos_access_index_lag_entries").set(lag as f64);
        loop {
            let indexed = *self.indexed.borrow();
            if size.saturating_sub(indexed) <= MAX_INDEX_LAG {
                self.index_stalled_at = None;
                return;
            }
            if self.index_stalled_at == Some(indexed) {
                return;
            }
            if started.elapsed() >= INDEX_WAIT {
                if self.index_stalled_at.is_none() {
                    tracing::warn!(
                        size,
                        indexed,
                        "the access index has not moved for a second; appending without waiting for it"
                    );
                }
                metrics::counter!("custos_access_index_stalls_total").increment(1);
                self.index_stalled_at = Some(indexed);
                return;
            }
            std::thread::sleep(INDEX_POLL);
        }
    }

    /// Appends the batch (possibly empty) in one ledger call and answers every request
    /// in it. After refused writes, the batch is preceded by the entry that says so
    /// (`entry` module docs, "Refused writes"); it is written with the batch or not at
    /// all, so it is always the first entry after the refusal.
    fn append(&mut self, batch: &mut Vec<Pending>) {
        let now = now_millis();
        let mut entries = Vec::with_capacity(batch.len() + 1);
        // The records of `entries`, one each, for a sink that indexes them with the
        // batch.
        let mut records = Vec::new();
        let indexes = matches!(self.sink, Sink::Shared { .. });
        if let Some(refused) = &self.refused {
            let record = refusal_record(refused, now);
            entries.push(entry::encode(&record));
            if indexes {
                records.push(record);
            }
        }
        // Each request's position in `entries`; a record too large for one entry is
        // refused alone instead of failing the whole batch.
        let mut slots = Vec::with_capacity(batch.len());
        for pending in batch.iter() {
            let e = entry::encode(&pending.record);
            if e.len() > MAX_ENTRY_LEN {
                slots.push(None);
            } else {
                slots.push(Some(entries.len() as u64));
                entries.push(e);
                if indexes {
                    records.push(pending.record.clone());
                }
            }
        }
        let outcome = match &self.sink {
            Sink::Ledger => {
                let mut ledger = self.ledger.write().unwrap_or_else(|p| p.into_inner());
                ledger
                    .append(&entries)
                    .map(|first| (first, ledger.size()))
                    .map_err(|e| (e.to_string(), e.code()))
            }
            Sink::Shared { ledger, runtime } => runtime
                .block_on(ledger.sequence(&entries, &mut records))
                .map(|first| (first, first + entries.len() as u64))
                .map_err(|e| (e.to_string(), e.code())),
        };
        let outcome = match outcome {
            Ok((first, new_size)) => {
                // Other nodes' entries may have moved the size past this batch already.
                self.size.send_if_modified(|size| {
                    let grew = new_size > *size;
                    if grew {
                        *size = new_size;
                    }
                    grew
                });
                if let Some(refused) = self.refused.take() {
                    tracing::warn!(
                        from_ms = refused.since_ms,
                        until_ms = refused.last_ms,
                        refused_records = refused.records,
                        index = first,
                        "ledger writes again; the refusal is recorded"
                    );
                    self.health.0.send_replace(LedgerHealth::Writing);
                }
                Ok(first)
            }
            Err((error, code)) => {
                metrics::counter!("custos_ledger_append_failures_total", "code" => code)
                    .increment(1);
                match &mut self.refused {
                    Some(refused) => {
                        refused.last_ms = now;
                        refused.records += batch.len() as u64;
                        tracing::debug!(%error, code, records = batch.len(), "ledger append refused again");
                    }
                    None => {
                        self.refused = Some(WritesRefused {
                            since_ms: now,
                            last_ms: now,
                            records: batch.len() as u64,
                            code,
                        });
                        tracing::error!(%error, code, records = batch.len(), "ledger append failed; failing requests closed until it writes again");
                    }
                }
                if let Some(refused) = &self.refused {
                    self.health
                        .0
                        .send_replace(LedgerHealth::Refusing(refused.clone()));
                }
                Err(error)
            }
        };
        metrics::histogram!("custos_ledger_batch_entries").record(entries.len() as f64);
        for (pending, slot) in batch.drain(..).zip(slots) {
            let answer = match (&outcome, slot) {
                (Ok(first), Some(pos)) => Ok(first + pos),
                (Ok(_), None) => Err(format!(
                    "the record is larger than the {MAX_ENTRY_LEN} bytes of a ledger entry"
                )),
                (Err(reason), _) => Err(reason.clone()),
            };
            // A requester that gave up (client gone) needs no answer.
            let _ = pending.ack.send(answer);
        }
    }
}

/// The entry recording that writes were refused (`entry` module docs).
fn refusal_record(refused: &WritesRefused, now: i64) -> AccessRecord {
    AccessRecord {
        seq: 0,
        request_id: format!("evt_ledger_{}_{}", refused.since_ms, now),
        at: now,
        staff_id: SYSTEM_ID.to_owned(),
        org: "-".to_owned(),
        role: RecordedRole::System,
        action: Action::LedgerWritesRefused,
        customer_id: None,
        fields: vec![
            format!("{}{}", entry::REFUSED_FROM, refused.since_ms),
            format!("{}{}", entry::REFUSED_UNTIL, refused.last_ms),
            format!("{}{}", entry::REFUSED_RECORDS, refused.records),
        ],
        case_id: None,
        target: None,
        decision: Decision::Allow,
        reason_code: refused.code.to_owned(),
        client: None,
    }
}

fn publish(ledger: &RwLock<Ledger>, health: &watch::Sender<CheckpointHealth>) {
    let now = u64::try_from(now_millis()).unwrap_or(0);
    let outcome = {
        let mut ledger = ledger.write().unwrap_or_else(|p| p.into_inner());
        ledger
            .publish_checkpoint(now)
            .map(|note| (note.is_some(), ledger.size()))
    };
    match outcome {
        Ok((true, size)) => {
            CheckpointHealth::note(health, None);
            metrics::gauge!("custos_ledger_checkpoint_size").set(size as f64);
        }
        Ok((false, _)) => CheckpointHealth::note(health, None),
        Err(e) => {
            // Appends go on (they are durable without a checkpoint); signing waits until
            // the problem (e.g. a clock that went backwards) is gone.
            metrics::counter!("custos_ledger_checkpoint_failures_total", "code" => e.code())
                .increment(1);
            if matches!(e, custos_ledger::LedgerError::ClockBackwards { .. }) {
                // Logged once when it starts (`CheckpointHealth::note`), not every second.
                tracing::debug!(error = %e, code = e.code(), "checkpoint not published");
            } else {
                tracing::error!(error = %e, code = e.code(), "checkpoint not published");
            }
            CheckpointHealth::note(health, Some(&e));
        }
    }
}
