//! A copy of a ledger directory at one signed checkpoint, taken beside the process that
//! writes it (a backup), without its lock and without writing to it.
//!
//! The writer only ever adds files, replaces `checkpoint` and `state` by rename, deletes
//! partial tiles a full one supersedes, and appends to or truncates `wal` (`ledger.rs`,
//! "Durability order"). So a reader:
//!
//! 1. reads `wal` ([`durable_size`]): every entry acknowledged before that read is in it,
//!    or was cut from it only after a checkpoint covering it was published;
//! 2. reads `checkpoint` after that, until it covers at least that size
//!    ([`copy_at_checkpoint`]): it then covers every entry acknowledged before step 1;
//! 3. copies the entry bundles and hash tiles of exactly that checkpoint (full ones never
//!    change; a partial that has gone is cut from its full tile, as any tlog-tiles client
//!    does) and writes a `state` for it, so the copy opens as a ledger.

use std::path::Path;
use std::time::{Duration, Instant};

use signed_note::Note;
use tlog_tiles::Checkpoint;

use crate::error::LedgerError;
use crate::ledger::{State, format_state};
use crate::storage::{Batch, read_opt};
use crate::tiles::{TILE_HEIGHT, TILE_WIDTH, TileCoord, TileKind, new_hash_tiles};
use crate::verify::{DirSource, fetch_tile};
use crate::wal::{self, WAL};

/// How often a read of `wal` that raced its truncation is tried again.
const WAL_READ_TRIES: usize = 20;
/// How often the checkpoint is read again while waiting for it to cover enough.
const CHECKPOINT_POLL: Duration = Duration::from_millis(50);

/// What [`copy_at_checkpoint`] copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCopy {
    /// Entries the copied checkpoint covers.
    pub size: u64,
    /// The tree's root at that size.
    pub root: [u8; 32],
    /// The signed checkpoint, as the ledger held it (with any cosignatures).
    pub checkpoint: String,
    /// The files written, relative to the copy's directory.
    pub files: Vec<String>,
}

/// How many entries the ledger in `dir` has made durable: the end of the last intact
/// frame of its write-ahead file, or 0 when it holds none (everything acknowledged is
/// then covered by the checkpoint, which a later read sees). A frame still being written
/// is not counted: it has not been acknowledged.
pub fn durable_size(dir: &Path) -> Result<u64, LedgerError> {
    let path = dir.join(WAL);
    let mut last_error = None;
    for _ in 0..WAL_READ_TRIES {
        let Some(data) = read_opt(&path)? else {
            return Ok(0);
        };
        match wal::scan(&data) {
            Ok(scan) => {
                return Ok(scan
                    .frames
                    .last()
                    .map_or(0, |f| f.first + f.entries.len() as u64));
            }
            // The writer truncated the file during the read (a checkpoint was published):
            // what was read is old bytes followed by new ones. Read it again.
            Err(e) => last_error = Some(e),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(last_error.unwrap_or_else(|| LedgerError::Corrupt(format!("{WAL} could not be read"))))
}

/// The size and root of a signed checkpoint's body, read without checking its signature
/// (a copy is verified afterwards, with the verifier key, as a whole).
pub fn checkpoint_body(note: &[u8]) -> Result<(u64, [u8; 32]), LedgerError> {
    let note = Note::from_bytes(note).map_err(|e| LedgerError::BadNote(e.to_string()))?;
    let body = Checkpoint::from_bytes(note.text())
        .map_err(|_| LedgerError::BadNote("malformed checkpoint body".into()))?;
    Ok((body.size(), body.hash().0))
}

/// Copies the ledger in `dir` at its checkpoint into the new directory `out`, once that
/// checkpoint covers at least `min_size` entries; waits at most `wait` for the writer to
/// sign one (`checkpoint_behind` after that). `now_ms` is recorded in the copy's `state`
/// as the time of its last checkpoint, so a server opened on it never signs one dated
/// before the copy. `out` must not exist or be empty; every file is written durably.
pub fn copy_at_checkpoint(
    dir: &Path,
    out: &Path,
    min_size: u64,
    wait: Duration,
    now_ms: u64,
) -> Result<LedgerCopy, LedgerError> {
    let started = Instant::now();
    let (note, size, root) = loop {
        if let Some(note) = read_opt(&dir.join("checkpoint"))? {
            let (size, root) = checkpoint_body(&note)?;
            if size >= min_size {
                break (note, size, root);
            }
            if started.elapsed() >= wait {
                return Err(LedgerError::CheckpointBehind {
                    size,
                    needed: min_size,
                });
            }
        } else if started.elapsed() >= wait {
            return Err(LedgerError::CheckpointBehind {
                size: 0,
                needed: min_size.max(1),
            });
        }
        std::thread::sleep(CHECKPOINT_POLL);
    };
    let checkpoint = String::from_utf8(note)
        .map_err(|_| LedgerError::Corrupt("checkpoint is not UTF-8".into()))?;

    let source = DirSource::new(dir);
    std::fs::create_dir_all(out).map_err(|e| LedgerError::io(out, e))?;
    let mut batch = Batch::new(out);
    let mut files = Vec::new();
    let mut coords: Vec<(TileCoord, u64)> = (0..size.div_ceil(TILE_WIDTH))
        .map(|n| {
            let start = n * TILE_WIDTH;
            let coord = TileCoord {
                kind: TileKind::Entries,
                index: n,
                width: (size - start).min(TILE_WIDTH) as u16,
            };
            (coord, start)
        })
        .collect();
    for coord in new_hash_tiles(0, size) {
        if let TileKind::Hash(level) = coord.kind {
            let shift = u32::from(level) * u32::from(TILE_HEIGHT);
            coords.push((coord, (coord.index * TILE_WIDTH) << shift));
        }
    }
    for (coord, first) in coords {
        let (data, _) = fetch_tile(&source, coord, first)
            .map_err(|e| LedgerError::Corrupt(format!("cannot copy {}: {e}", coord.path())))?;
        batch.write(&coord.path(), &data)?;
        files.push(coord.path());
    }
    // `state` before `checkpoint`, as the writer orders them.
    let state = State {
        time_ms: now_ms,
        size,
        root: tlog_tiles::Hash(root),
    };
    batch.write("state", format_state(&state).as_bytes())?;
    batch.sync()?;
    batch.write("checkpoint", checkpoint.as_bytes())?;
    batch.commit()?;
    files.push("state".to_owned());
    files.push("checkpoint".to_owned());
    Ok(LedgerCopy {
        size,
        root,
        checkpoint,
        files,
    })
}
