//! One ledger for every gateway node on one PostgreSQL database (docs/MULTI_NODE.md):
//! what each node does beside its group-commit writer.
//!
//! The writer sequences every batch into PostgreSQL, with its access-index rows, in one
//! transaction (`custos_store::SharedLedger` gives that durability order). This module
//! keeps the rest of the node in step with that one sequence:
//!
//! - every [`POLL`] it reads how many entries are sequenced, so that this node's readers
//!   (the detector, [`crate::AccessLog::read`]) see every node's entries;
//! - every [`INTEGRATE_EVERY`] it tries to take the integration lock. The holder copies
//!   the sequenced entries into its own ledger directory, checks that its tree has the
//!   stored root at the integrated size, signs a checkpoint and stores it. A node that
//!   does not hold the lock copies entries only up to the newest stored checkpoint and
//!   signs at that same size. A checkpoint carries no time and Ed25519 signatures are
//!   deterministic, so it writes the very note the integrator stored (it checks the
//!   root): every node serves the same checkpoint, and the tiles under it.
//!
//! So no two checkpoints are signed that no consistency proof joins: each is over a
//! prefix of the one sequence, whose rows never change, and a node whose tree differs
//! from it refuses to sign (`history_mismatch`).
//!
//! At start ([`reconcile`]):
//! - a ledger directory signed with another key is refused (`ledger_key_mismatch`);
//! - a directory holding entries the shared ledger lacks, or other entries, is refused
//!   (`ledger_diverged`);
//! - the one exception is a shared ledger that has never sequenced an entry: the
//!   directory is then the single-node ledger of a store from before sharing, and its
//!   entries become the shared ledger's first ones.

use std::sync::Arc;
use std::time::Duration;

use custos_ledger::{Ledger, LedgerError};
use custos_store::{SharedLedger, Store, StoreError};
use custos_types::clock::now_millis;
use tokio::sync::watch;

use crate::{AccessError, AccessLog, CheckpointHealth, entry};

/// How often a node reads how many entries all nodes have sequenced: the delay before
/// this node's detector and readers see another node's entry.
pub(crate) const POLL: Duration = Duration::from_millis(100);

/// How often each node tries to integrate (and sign, if it holds the lock). A node that
/// dies holding the lock loses it with its connection, so another signs within about
/// this long plus PostgreSQL's detection of the dead connection.
const INTEGRATE_EVERY: Duration = Duration::from_secs(1);

/// Entries copied from the database per read.
const CHUNK: usize = 4096;

fn store_err(e: StoreError) -> AccessError {
    AccessError::Write(e.to_string())
}

fn diverged(message: String) -> AccessError {
    AccessError::Diverged(message)
}

/// Checks this node's ledger directory against the shared ledger before the node takes
/// part (module docs); returns the number of sequenced entries.
pub(crate) async fn reconcile(
    ledger: &Ledger,
    shared: &SharedLedger,
    store: &Store,
) -> Result<u64, AccessError> {
    let next = shared.next().await.map_err(store_err)?;
    let newest = shared.newest_checkpoint().await.map_err(store_err)?;
    if let Some(checkpoint) = &newest {
        match ledger.check_checkpoint(checkpoint.note.as_bytes()) {
            Ok(_) => {}
            Err(LedgerError::BadSignature(_) | LedgerError::BadNote(_)) => {
                return Err(AccessError::KeyMismatch);
            }
            Err(e) => return Err(diverged(e.to_string())),
        }
    }
    let local = ledger.size();
    if local > next {
        if next > 0 {
            return Err(diverged(format!(
                "this node's ledger directory holds {local} entries, the shared ledger {next}"
            )));
        }
        adopt(ledger, shared, store).await?;
        tracing::warn!(
            entries = local,
            "this node's ledger became the shared ledger's first entries"
        );
        return Ok(local);
    }
    if local > 0 {
        let theirs = shared.entries(local - 1, 1).await.map_err(store_err)?;
        let ours = ledger.entry(local - 1)?;
        if theirs.first().map(|(_, e)| e) != ours.as_ref() {
            return Err(diverged(format!(
                "entry {} of this node's ledger directory is not the shared ledger's",
                local - 1
            )));
        }
    }
    Ok(next)
}

/// Makes the entries of this node's directory the shared ledger's first ones, after
/// bringing their access-index rows up to date (a store from before sharing copied them
/// into the index after the fact). The entries are read into memory at once: the
/// sequence is adopted in one transaction or not at all.
async fn adopt(ledger: &Ledger, shared: &SharedLedger, store: &Store) -> Result<(), AccessError> {
    let index_err = |e: StoreError| AccessError::Index(e.to_string());
    let mut from = match store.max_access_seq().await.map_err(index_err)? {
        Some(seq) => u64::try_from(seq).map_err(|_| diverged("negative index".into()))? + 1,
        None => 0,
    };
    while from < ledger.size() {
        let raw = ledger.entries(from, CHUNK)?;
        let records = raw
            .iter()
            .map(|(i, bytes)| entry::decode(*i, bytes))
            .collect::<Result<Vec<_>, _>>()?;
        store.append_access(&records).await.map_err(index_err)?;
        from += raw.len() as u64;
    }
    let entries: Vec<Vec<u8>> = ledger
        .entries(0, usize::MAX)?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    shared.adopt(&entries).await.map_err(store_err)
}

/// Starts the poller and the integrator (module docs); the first integration runs
/// before this returns, so a fresh ledger has a checkpoint to serve.
pub(crate) async fn start(log: &AccessLog, shared: SharedLedger, size: Arc<watch::Sender<u64>>) {
    if let Err(e) = integrate(log, &shared).await {
        tracing::error!(error = %e, code = e.code(), "first integration of the shared ledger failed; retrying");
    }
    let poll_log = log.clone();
    let poll_shared = shared.clone();
    tokio::spawn(async move {
        while !poll_log.stop.is_closing() {
            tokio::time::sleep(POLL).await;
            match poll_shared.next().await {
                Ok(next) => {
                    size.send_if_modified(|s| {
                        let grew = next > *s;
                        if grew {
                            *s = next;
                        }
                        grew
                    });
                }
                Err(e) => tracing::debug!(error = %e, "cannot read the shared ledger's size"),
            }
        }
    });
    let log = log.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(INTEGRATE_EVERY).await;
            if log.stop.is_closing() {
                return;
            }
            match integrate(&log, &shared).await {
                Ok(()) => CheckpointHealth::note(&log.checkpoint, None),
                Err(AccessError::Ledger(e @ LedgerError::ClockBackwards { .. })) => {
                    metrics::counter!("custos_ledger_checkpoint_failures_total", "code" => e.code())
                        .increment(1);
                    CheckpointHealth::note(&log.checkpoint, Some(&e));
                }
                Err(e) => {
                    metrics::counter!("custos_ledger_checkpoint_failures_total", "code" => e.code())
                        .increment(1);
                    tracing::error!(error = %e, code = e.code(), "shared ledger not integrated");
                }
            }
        }
    });
}

/// One round: integrate and sign if this node gets the lock, else follow the newest
/// stored checkpoint. Holds the log's integration guard, so that closing waits for it.
async fn integrate(log: &AccessLog, shared: &SharedLedger) -> Result<(), AccessError> {
    let _guard = log.integrating.lock().await;
    if log.stop.is_closing() {
        return Ok(());
    }
    let Some(mut integration) = shared.try_integrate().await.map_err(store_err)? else {
        return follow_checkpoint(log, shared).await;
    };
    let target = integration.next().await.map_err(store_err)?;
    copy(log, shared, target).await?;
    let (stored_size, stored_root) = (integration.size, integration.root);
    let now = now_millis();
    let signed = log
        .with_ledger_mut(move |l| {
            if let Some(root) = stored_root
                && l.root_at(stored_size)? != root
            {
                return Err(LedgerError::HistoryMismatch(format!(
                    "this node's tree has another root at the integrated size {stored_size}"
                )));
            }
            // Signed here even when another node stored this size already: this node
            // then serves that same note.
            let note = match l.publish_checkpoint(u64::try_from(now).unwrap_or(0))? {
                Some(note) => note,
                // Signed here before, and perhaps not stored (a commit that failed).
                None => l
                    .checkpoint()
                    .ok_or_else(|| LedgerError::Corrupt("no checkpoint after publishing".into()))?,
            };
            if stored_root.is_some() && l.size() <= stored_size {
                return Ok(None);
            }
            Ok(Some((l.size(), l.root_at(l.size())?, note)))
        })
        .await?;
    if let Some((size, root, note)) = signed {
        integration
            .finish(size, root, &note, now)
            .await
            .map_err(store_err)?;
        metrics::gauge!("custos_ledger_checkpoint_size").set(size as f64);
    }
    Ok(())
}

/// Copies entries up to the newest stored checkpoint and signs there (module docs).
async fn follow_checkpoint(log: &AccessLog, shared: &SharedLedger) -> Result<(), AccessError> {
    let Some(checkpoint) = shared.newest_checkpoint().await.map_err(store_err)? else {
        return Ok(());
    };
    copy(log, shared, checkpoint.size).await?;
    let now = u64::try_from(now_millis()).unwrap_or(0);
    log.with_ledger_mut(move |l| {
        l.check_checkpoint(checkpoint.note.as_bytes())?;
        if l.size() == checkpoint.size {
            l.publish_checkpoint(now)?;
        }
        Ok(())
    })
    .await
}

/// Appends the sequenced entries from this node's ledger size up to `target` to its
/// ledger directory.
async fn copy(log: &AccessLog, shared: &SharedLedger, target: u64) -> Result<(), AccessError> {
    loop {
        let have = log.with_ledger(|l| Ok(l.size())).await?;
        if have >= target {
            return Ok(());
        }
        let want = usize::try_from(target - have).unwrap_or(CHUNK).min(CHUNK);
        let rows = shared.entries(have, want).await.map_err(store_err)?;
        let contiguous = rows
            .iter()
            .zip(have..)
            .all(|((seq, _), expected)| *seq == expected);
        if rows.is_empty() || !contiguous {
            return Err(diverged(format!(
                "the shared ledger has no entry {have} below its size {target}"
            )));
        }
        let entries: Vec<Vec<u8>> = rows.into_iter().map(|(_, e)| e).collect();
        log.with_ledger_mut(move |l| {
            if l.size() != have {
                return Err(LedgerError::Corrupt(
                    "the ledger directory changed while entries were copied".into(),
                ));
            }
            l.append(&entries)
        })
        .await?;
    }
}
