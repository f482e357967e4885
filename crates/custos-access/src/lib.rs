//! Access records: the one narrow interface through which the gateway says what happened.
//!
//! Every request, allowed or denied, becomes one [`AccessRecord`] that must be durable in
//! the ledger *before* the answer leaves the gateway (DESIGN.md, "No answer without a
//! durable ledger entry"). [`AccessLog::record`] only returns `Ok` once the entry is
//! durable; any error means the caller must refuse the request (fail closed).
//!
//! Durability with group commit (`sequencer`): callers hand their record to one writer
//! thread and wait. The writer takes everything that queued up while the previous batch was
//! being written and appends it to the [`custos_ledger::Ledger`] in one call, so one pair
//! of fsyncs serves many concurrent requests. The order is:
//!
//! 1. a request sends its record and waits on its own acknowledgement channel;
//! 2. the writer collects a batch (the first waiting record plus all that queued behind it,
//!    up to [`MAX_BATCH`]) and encodes each record canonically ([`entry`]);
//! 3. the ledger appends the batch and returns once it is durable (its own module docs
//!    give the file-level order);
//! 4. only then does the writer acknowledge every request in the batch, each with its
//!    ledger index, or all with the same error.
//!
//! A refused append fails its batch closed and the writer keeps trying (see `sequencer`):
//! [`AccessLog::health`] says that writes are refused and since when, and once the ledger
//! writes again its first entry records the refusal (`entry`, "Refused writes").
//!
//! Downstream of the ledger, nothing is authoritative: the access index ([`index`]) copies
//! entries into the store's `access_records` table for queries, through the same
//! restart-safe [`Subscription`] any other consumer uses, and can be rebuilt from it.
//! The two advance together: the writer waits before a batch while the index is more than
//! [`MAX_INDEX_LAG`] entries behind, unless the index has stopped (then the record goes
//! on alone, and says so in the log).
//! [`evidence`] checks that the entries an evidence bundle cites were made by its subjects.
//!
//! On PostgreSQL the ledger is shared by every gateway node on the database: the writer
//! sequences its batches there, with their index rows in the same transaction, and
//! `shared` builds this node's ledger directory from that one sequence and signs
//! (docs/MULTI_NODE.md).

pub mod entry;
pub mod evidence;
mod index;
mod sequencer;
mod shared;

use std::sync::{Arc, RwLock};

use custos_ledger::{Ledger, LedgerError};
use custos_store::{AccessFilter, SharedLedger, Store};
use tokio::sync::watch;

pub use custos_store::AccessRecord;
pub use sequencer::{MAX_BATCH, MAX_INDEX_LAG};

/// Why a record could not be made durable, or the ledger could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The ledger refused or failed the append.
    #[error("access record could not be written: {0}")]
    Write(String),
    /// The writer is gone or its queue is full.
    #[error("access log is not accepting records")]
    Unavailable,
    /// The ledger could not answer a read or proof.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// An entry in the ledger is not a valid record.
    #[error(transparent)]
    Entry(#[from] entry::DecodeError),
    /// The access index (store) failed.
    #[error("access index: {0}")]
    Index(String),
    /// This node's ledger directory disagrees with the shared ledger in PostgreSQL (other
    /// entries, or entries it lacks): it must not serve or sign.
    #[error("this node's ledger does not match the shared ledger: {0}")]
    Diverged(String),
    /// The shared ledger's checkpoints are signed with another key than this node's:
    /// every node of one ledger needs the same ledger key.
    #[error("the shared ledger is signed with another ledger key than this node's")]
    KeyMismatch,
}

impl AccessError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            AccessError::Write(_) | AccessError::Unavailable => "ledger_unavailable",
            AccessError::Ledger(e) => e.code(),
            AccessError::Entry(e) => e.code(),
            AccessError::Index(_) => "access_index_unavailable",
            AccessError::Diverged(_) => "ledger_diverged",
            AccessError::KeyMismatch => "ledger_key_mismatch",
        }
    }
}

/// Whether the ledger takes records, as the writer last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerHealth {
    /// The last append succeeded (or none failed since the start).
    Writing,
    /// Appends are refused (every request is answered `ledger_unavailable`); the writer
    /// retries with every batch and about once a second.
    Refusing(WritesRefused),
    /// The writer has stopped (shutdown, or a bug): nothing is recorded until a restart.
    Stopped,
}

/// Whether checkpoints are signed, as the last attempt to sign one saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointHealth {
    /// The last attempt signed (or had nothing new to sign), or none was refused yet.
    Signing,
    /// The wall clock reads earlier than the time of the last signed checkpoint (it was
    /// stepped back, or had been ahead): no checkpoint is signed until it passes that
    /// time again, which the signer retries about once a second. Records are still
    /// taken and ordered by their index; only signing waits.
    ClockBehind {
        /// What the clock read at the last attempt, unix milliseconds.
        now_ms: u64,
        /// The last signed checkpoint's time, unix milliseconds.
        last_ms: u64,
    },
}

impl CheckpointHealth {
    /// Notes the outcome of an attempt to sign a checkpoint in `health`, logging a
    /// change once (not at every attempt). An error other than a clock behind the last
    /// checkpoint leaves it as it was (the writer's health says why writes fail).
    pub(crate) fn note(health: &watch::Sender<CheckpointHealth>, error: Option<&LedgerError>) {
        let next = match error {
            None => CheckpointHealth::Signing,
            Some(LedgerError::ClockBackwards { now_ms, last_ms }) => {
                CheckpointHealth::ClockBehind {
                    now_ms: *now_ms,
                    last_ms: *last_ms,
                }
            }
            Some(_) => return,
        };
        let before = health.send_replace(next.clone());
        match (&before, &next) {
            (CheckpointHealth::Signing, CheckpointHealth::ClockBehind { now_ms, last_ms }) => {
                tracing::error!(
                    code = "clock_backwards",
                    now_ms,
                    last_ms,
                    "the clock is behind the last checkpoint; no checkpoint is signed until it passes that time"
                );
            }
            (CheckpointHealth::ClockBehind { .. }, CheckpointHealth::Signing) => {
                tracing::warn!(
                    "the clock passed the last checkpoint's time; checkpoints are signed again"
                );
            }
            _ => {}
        }
    }
}

/// A period in which the ledger refused writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritesRefused {
    /// The first refused append, unix milliseconds.
    pub since_ms: i64,
    /// The last refused append, unix milliseconds.
    pub last_ms: i64,
    /// Records refused so far.
    pub records: u64,
    /// The ledger error's stable code (e.g. `ledger_io`).
    pub code: &'static str,
}

/// Handle to the access log; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    queue: std::sync::mpsc::SyncSender<sequencer::Pending>,
    ledger: Arc<RwLock<Ledger>>,
    /// Number of durable entries, updated after every append.
    size: watch::Receiver<u64>,
    /// Number of entries copied into the access index.
    indexed: watch::Receiver<u64>,
    /// Set by the writer: whether appends succeed.
    health: watch::Receiver<LedgerHealth>,
    /// Stops the writer thread ([`AccessLog::close`]).
    stop: Arc<sequencer::Stop>,
    store: Store,
    /// The sequence in PostgreSQL, when the ledger is shared by several nodes.
    shared: Option<SharedLedger>,
    /// Held while `shared` integrates, so that closing waits for the round in flight.
    integrating: Arc<tokio::sync::Mutex<()>>,
    /// Set by whoever signs checkpoints (the writer, or a shared ledger's integrator).
    checkpoint: Arc<watch::Sender<CheckpointHealth>>,
}

impl AccessLog {
    /// Brings the access index up to date with `ledger`, then starts the group-commit
    /// writer, the checkpoint publisher and the indexer on the current Tokio runtime.
    ///
    /// On PostgreSQL the ledger is the one shared by every node on the database: `ledger`
    /// (this node's directory) is checked against it first, and refused with
    /// `ledger_key_mismatch` or `ledger_diverged` when it does not belong to it.
    pub async fn start(ledger: Ledger, store: Store) -> Result<AccessLog, AccessError> {
        let shared = store.shared_ledger();
        let size = match &shared {
            Some(shared) => shared::reconcile(&ledger, shared, &store).await?,
            None => ledger.size(),
        };
        let ledger = Arc::new(RwLock::new(ledger));
        let (size_tx, size_rx) = watch::channel(size);
        let size_tx = Arc::new(size_tx);
        let (indexed_tx, indexed_rx) = watch::channel(0);
        // A shared ledger's index rows commit with its entries: it is never behind.
        let indexed_rx = match shared {
            Some(_) => size_rx.clone(),
            None => indexed_rx,
        };
        let (health_tx, health_rx) = watch::channel(LedgerHealth::Writing);
        let checkpoint = Arc::new(watch::Sender::new(CheckpointHealth::Signing));
        let sink = match &shared {
            Some(shared) => sequencer::Sink::Shared {
                ledger: shared.clone(),
                runtime: tokio::runtime::Handle::current(),
            },
            None => sequencer::Sink::Ledger,
        };
        let (queue, stop) = sequencer::start(
            ledger.clone(),
            sink,
            size_tx.clone(),
            health_tx,
            indexed_rx.clone(),
            checkpoint.clone(),
        )?;
        let log = AccessLog {
            queue,
            ledger,
            size: size_rx,
            indexed: indexed_rx,
            health: health_rx,
            stop,
            store,
            shared: shared.clone(),
            integrating: Arc::default(),
            checkpoint,
        };
        match shared {
            Some(shared) => shared::start(&log, shared, size_tx).await,
            None => index::start(&log, indexed_tx).await?,
        }
        Ok(log)
    }

    /// Stops the writer after a final checkpoint and waits until it has ended: from then
    /// on every record is refused (`ledger_unavailable`). For shutdown, before anything
    /// removes or copies the ledger's files.
    pub async fn close(&self) {
        let stop = self.stop.clone();
        let _ = tokio::task::spawn_blocking(move || stop.stop_and_join()).await;
        // A shared ledger's integration round in flight ends first.
        let _ = self.integrating.lock().await;
    }

    /// Appends `record` and returns its ledger index once it is durable.
    pub async fn record(&self, record: AccessRecord) -> Result<u64, AccessError> {
        sequencer::submit(&self.queue, record).await
    }

    /// Reads records from the access index, oldest first. Everything durable when the
    /// call starts is visible (it waits for the indexer to reach that point).
    pub async fn read(&self, filter: &AccessFilter) -> Result<Vec<AccessRecord>, AccessError> {
        let target = *self.size.borrow();
        self.read_indexed(filter, target).await
    }

    /// Like [`AccessLog::read`], but waits only until entry `index` is indexed: for a
    /// reader behind the ledger (the detector), which needs no more than that.
    pub async fn read_through(
        &self,
        filter: &AccessFilter,
        index: u64,
    ) -> Result<Vec<AccessRecord>, AccessError> {
        self.read_indexed(filter, index.saturating_add(1)).await
    }

    /// Reads from the access index once it holds the first `target` entries.
    async fn read_indexed(
        &self,
        filter: &AccessFilter,
        target: u64,
    ) -> Result<Vec<AccessRecord>, AccessError> {
        let mut indexed = self.indexed.clone();
        // The watch guard is not `Send`: keep only whether the wait succeeded.
        let caught_up = matches!(
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                indexed.wait_for(|n| *n >= target),
            )
            .await,
            Ok(Ok(_))
        );
        if !caught_up {
            return Err(AccessError::Index(
                "the access index is behind the ledger".into(),
            ));
        }
        self.store
            .access_records(filter)
            .await
            .map_err(|e| AccessError::Index(e.to_string()))
    }

    /// Whether the ledger currently takes records (cheap: no I/O).
    pub fn health(&self) -> LedgerHealth {
        self.health.borrow().clone()
    }

    /// Whether checkpoints are signed (cheap: no I/O).
    pub fn checkpoint_health(&self) -> CheckpointHealth {
        self.checkpoint.borrow().clone()
    }

    /// Number of durable entries.
    pub fn size(&self) -> u64 {
        *self.size.borrow()
    }

    /// Number of entries copied into the access index; at most [`MAX_INDEX_LAG`] fewer
    /// than [`AccessLog::size`] while the index keeps moving.
    pub fn indexed(&self) -> u64 {
        *self.indexed.borrow()
    }

    /// A reader of decoded records from ledger index `from` on (see [`Subscription`]).
    pub fn subscribe(&self, from: u64) -> Subscription {
        Subscription {
            log: self.clone(),
            size: self.size.clone(),
            next: from,
        }
    }

    /// Up to `limit` decoded records from ledger index `from` (from every node, when the
    /// ledger is shared).
    pub async fn entries(&self, from: u64, limit: usize) -> Result<Vec<AccessRecord>, AccessError> {
        let raw = match &self.shared {
            Some(shared) => shared
                .entries(from, limit)
                .await
                .map_err(|e| AccessError::Write(e.to_string()))?,
            None => self.with_ledger(move |l| l.entries(from, limit)).await?,
        };
        raw.into_iter()
            .map(|(i, bytes)| entry::decode(i, &bytes).map_err(AccessError::from))
            .collect()
    }

    /// Runs a read-only ledger operation off the async threads (it may touch files).
    pub async fn with_ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, AccessError> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let guard = ledger.read().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .map_err(|_| AccessError::Unavailable)?
        .map_err(AccessError::from)
    }

    /// Runs a ledger operation that changes it (e.g. adding a cosignature), serialised
    /// with appends.
    pub async fn with_ledger_mut<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, AccessError> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = ledger.write().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|_| AccessError::Unavailable)?
        .map_err(AccessError::from)
    }
}

/// An in-process reader of the ledger from a sequence number on. Restart-safe: a consumer
/// that stored the index of the last record it handled resumes with
/// [`AccessLog::subscribe`]`(that + 1)` and misses nothing.
pub struct Subscription {
    log: AccessLog,
    size: watch::Receiver<u64>,
    next: u64,
}

impl Subscription {
    /// The ledger index of the next record [`Subscription::next_batch`] returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Moves the position back (or on) to `index`, e.g. to read a batch again after the
    /// consumer failed to handle it.
    pub fn seek(&mut self, index: u64) {
        self.next = index;
    }

    /// Waits until at least one record past the position is durable, then returns up to
    /// `max` records in ledger order. `None` when the log has shut down.
    pub async fn next_batch(
        &mut self,
        max: usize,
    ) -> Option<Result<Vec<AccessRecord>, AccessError>> {
        let next = self.next;
        self.size.wait_for(|size| *size > next).await.ok()?;
        let batch = self.log.entries(next, max).await;
        if let Ok(records) = &batch {
            self.next += records.len() as u64;
        }
        Some(batch)
    }
}
