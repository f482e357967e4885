//! The access index: a ledger consumer that copies every record into the store's
//! `access_records` table, where `/v1/access`, quota rebuilding and (later) leak tracing
//! query it. It resumes after the highest indexed sequence number, so a restart or a
//! crash between the ledger append and the index write loses nothing; the store skips
//! rows it already has.

use tokio::sync::watch;

use crate::{AccessError, AccessLog, AccessRecord};

/// Records copied per store write (one transaction). Each write rewrites every page its
/// rows touch in the random-keyed indexes (customer, holdings), so larger writes touch
/// each page once for more rows: 4096 absorbed 41% more records per second than 1024 on
/// 2 cores (BENCHMARKS.md, "Ledger appends"), at the price of the index moving in larger
/// steps while the ledger waits for it.
const CHUNK: usize = 4096;

/// After a write of less than a chunk, how long the index lets records gather before
/// its next write. Each write is a durable commit of the store's one writer, which also
/// makes every pooled connection drop its page cache: under load a few larger writes
/// cost the requests far less than one per group commit. It bounds the index's lag
/// (≤ 1 s is the target) with room to spare.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

/// Wait before writing a batch again after the store failed.
const RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Catches the index up with the ledger (before the gateway serves anything, so quotas
/// are rebuilt from a complete index), then keeps following it in a task.
pub(crate) async fn start(log: &AccessLog, indexed: watch::Sender<u64>) -> Result<(), AccessError> {
    let from = match log.store.max_access_seq().await {
        Ok(Some(seq)) => u64::try_from(seq).map_err(|_| index_err("negative sequence number"))? + 1,
        Ok(None) => 0,
        Err(e) => return Err(index_err(&e.to_string())),
    };
    if from > log.size() {
        // The index holds entries the ledger does not: the ledger was replaced or lost.
        return Err(index_err(
            "the access index is ahead of the ledger; the ledger directory does not belong to this store",
        ));
    }
    let mut next = from;
    while next < log.size() {
        let batch = log.entries(next, CHUNK).await?;
        write(log, &batch).await?;
        next += batch.len() as u64;
    }
    indexed.send_replace(next);
    tracing::info!(entries = next, "access index up to date");

    let mut subscription = log.subscribe(next);
    let store_log = log.clone();
    tokio::spawn(async move {
        while let Some(batch) = subscription.next_batch(CHUNK).await {
            let records = match batch {
                Ok(records) => records,
                Err(e) => {
                    // An entry that does not decode stops the index here: it must be
                    // looked at, not skipped. Readers of the index time out meanwhile.
                    tracing::error!(error = %e, code = e.code(), "access index stopped");
                    return;
                }
            };
            // The ledger holds the records; while the store fails, retry, and readers of
            // the index see it lag.
            while let Err(e) = write(&store_log, &records).await {
                tracing::error!(error = %e, code = e.code(), "access index not updated; retrying");
                tokio::time::sleep(RETRY).await;
            }
            indexed.send_replace(subscription.position());
            if records.len() < CHUNK {
                tokio::time::sleep(GATHER).await;
            }
        }
    });
    Ok(())
}

async fn write(log: &AccessLog, records: &[AccessRecord]) -> Result<(), AccessError> {
    log.store
        .append_access(records)
        .await
        .map_err(|e| index_err(&e.to_string()))
}

fn index_err(message: &str) -> AccessError {
    AccessError::Index(message.to_owned())
}
