//! The ledger: an append-only RFC 6962 tree stored as C2SP tlog-tiles.
//!
//! # Files under the ledger directory
//!
//! | path                       | what                                            | served |
//! |----------------------------|-------------------------------------------------|--------|
//! | `wal`                      | write-ahead file: batches since last checkpoint | no     |
//! | `tile/entries/<N>[.p/<W>]` | entry bundles, up to (at least) the checkpoint  | yes    |
//! | `tile/<L>/<N>[.p/<W>]`     | hash tiles, derived from the entries            | yes    |
//! | `checkpoint`               | latest signed checkpoint (+ cosignatures)       | yes    |
//! | `state`                    | time, size, root of the last signed checkpoint  | no     |
//! | `lock`                     | advisory lock: one writer per directory         | no     |
//!
//! The `wal` frame format is documented in `wal.rs`.
//!
//! The entries are the bundles followed by the WAL records past them. In
//! memory the ledger keeps every entry not yet in a full bundle (the last
//! partial bundle and the WAL records), so reads and proofs cover all of
//! them; `resource` serves only what the latest checkpoint covers.
//!
//! The Merkle tree (`tree.rs`) keeps in memory only its right edge: at each
//! tile level, the hashes of the tiles that are not full or not covered by
//! the latest checkpoint (two hashes per entry past the last full level-0
//! tile of the checkpoint, at most about 512 per tile level above). The
//! hashes of the full tiles a checkpoint covers are read back from their
//! `tile/<L>/<N>` file when a root, proof, tile or entry check needs them; a
//! tile that does not hash to the tree's node above it (missing, cut,
//! altered) fails that read with `ledger_corrupt`, and the next `open`
//! rewrites it from the entries.
//!
//! # Durability order
//!
//! `append` (hot path, one call per group-commit batch):
//! 1. one `write_all` of the batch as a checksummed frame (first index,
//!    count, entries) to `wal`, which is open in append mode and whose
//!    directory entry was made durable when `open` created it;
//! 2. `sync_data` of `wal`. **This is the commit point**: `append` returns,
//!    and only then are the in-memory tree and tail updated. One fsync per
//!    batch, no rename, no directory fsync, no rewriting of older entries.
//!
//! The ledger remembers the WAL's *durable length*: the end of the last frame
//! whose `sync_data` succeeded (or what `open` recovered and synced). On an
//! I/O error in step 1 or 2 (a full disk, a failing device) the batch is
//! refused and nothing in memory changes; the file may hold all or part of
//! the refused frame past the durable length. Before anything else is written
//! the ledger **settles** the WAL back to its durable length:
//!
//! * `set_len(durable length)` then `sync_all` of `wal`. Only when both
//!   succeed is the ledger settled; `append` tries right after the failure
//!   and again at the start of every later `append` and `publish_checkpoint`,
//!   which fail with the same kind of I/O error while it does not succeed
//!   (fail closed: nothing is acknowledged that is not durable, and nothing
//!   new is written after a frame that was refused).
//! * Once settled, the next `append` writes at the durable length, i.e. at
//!   the index where the refused batch would have gone. So the ledger
//!   resumes by itself when writes succeed again (space returned), without
//!   a gap in the indexes and without a reopen.
//!
//! The refused entries never reach the tree, a bundle or a checkpoint: only
//! acknowledged entries are in memory, and the truncation is durable before
//! any later frame is written, so an index whose write failed is only ever
//! signed with the entry that was later acknowledged there. A crash while
//! not settled is a crash during `append` (see Recovery): the refused frame
//! is cut if torn, and if it happens to be complete it is recovered as the
//! next entries — nothing had been written after it. (After a failed fsync
//! the kernel may drop the dirty pages; only pages of the refused frame can
//! be affected, since every earlier frame had been synced.)
//!
//! `publish_checkpoint` (about once a second). Every file here is written as
//! `<name>.tmp`, fsynced and renamed, and its directory fsynced (see
//! `storage.rs`), so no crash leaves a half-written file under a real name:
//! 1. the entry bundles of everything since the last checkpoint (newly full
//!    bundles and the new partial one) and the hash tiles (newly full +
//!    partials), each file fsynced before its rename (the fsyncs of all of
//!    them run together, then the renames follow); then every touched
//!    directory fsynced once. The renames may become durable in any order
//!    until then (recovery handles any subset, see below). The partials
//!    superseded by a new full bundle or tile (`<N>.p/`) are then deleted,
//!    best effort (the full one serves their prefixes). Older partials of
//!    checkpointed sizes stay until their full bundle or tile exists (C2SP
//!    tlog-tiles "Partial Tiles");
//! 2. `state` (time, size, root) — the clock and history guard are durable
//!    before anything is signed with them;
//! 3. `checkpoint` (signed note). **Commit point of the checkpoint**: it
//!    covers only bundles and tiles made durable by step 1. Only then are
//!    the hashes of the full tiles it covers dropped from memory
//!    (`tree.rs`): those tiles are durable since step 1;
//! 4. `wal` truncated to 0 and `sync_all`ed: every record in it is now in
//!    the bundles. On an I/O error here (the checkpoint is already durable)
//!    the durable length becomes 0 and the ledger is unsettled: the next
//!    `append` or `publish_checkpoint` truncates again first. Until then the
//!    file still holds records the bundles cover, which recovery skips.
//!
//! A failure in steps 1–3 changes nothing in memory (`tail` is drained only
//! after step 1 is durable, `published` only after step 3), leaves at worst
//! `*.tmp` files (overwritten by the next publish, deleted by `open`) and
//! complete bundles or tiles of entries that are durable in the WAL, which the
//! next publish writes again with the same bytes. Publishing is retried about
//! once a second by the caller.
//!
//! # Recovery (`open`)
//!
//! Nothing is written or deleted until every check below has passed: a
//! refused open leaves the files as it found them.
//!
//! * `*.tmp` files are deleted (an interrupted write never reached its
//!   rename).
//! * Entries are read from full bundles 0, 1, … up to the first missing one,
//!   then the widest well-formed partial bundle of that index; wider
//!   malformed partials (which no crash of this code produces) and partials
//!   next to a full bundle are discarded. Bundle files past the first
//!   missing full bundle are *strays*: a publish that crashed before its
//!   directory fsyncs can leave them (unordered renames). A full stray while
//!   `state` or `checkpoint` covers more than the bundles read is
//!   `ledger_corrupt` (this is a hole under a checkpoint, not a crash).
//! * The tree is recomputed from the bundles alone (every entry is hashed).
//!   The leaf hashes of a bundle (tree levels 0–7) are dropped from memory
//!   as soon as it is read if its level-0 hash tile and those of all
//!   bundles before it are on disk with the recomputed hashes; the others
//!   stay until the repair below. If the tree is smaller than the size
//!   recorded in `state` or in `checkpoint`, or its root at that size is not
//!   the recorded root, open fails with `history_mismatch`: both are
//!   written only after the bundles they cover are durable, so
//!   this is loss or rewriting, and signing on top of it would hide it.
//!   `state` missing next to a `checkpoint`, or older than it, is
//!   `ledger_corrupt`.
//! * The WAL is replayed on top (`wal.rs` has the frame format and the
//!   exact rules): intact frames are read in order; a damaged **last** frame
//!   — cut short, or ending at the end of the file with a bad checksum, or
//!   zeros — is a torn `append` that was never acknowledged, and the file is
//!   cut there; a damaged frame *followed by more data* had been
//!   acknowledged and is `ledger_corrupt`, as are frames out of sequence.
//!   Records the bundles already hold (the WAL reset of step 4 was lost, or
//!   the crash came between steps 1 and 4) are skipped after checking they
//!   are the same entries (`ledger_corrupt` if not); a record starting past
//!   the last entry (a gap) is `ledger_corrupt`. The rest are appended to
//!   the tree and the in-memory tail.
//! * Every stray must hold exactly the entries the tree now holds at its
//!   indexes (it was written from WAL records that are still there);
//!   otherwise `ledger_corrupt`. Strays are then deleted (the next publish
//!   writes those bundles again).
//! * Hash tiles of the last checkpoint are compared with the recomputed
//!   hashes (full level-0 tiles found right while reading the bundles are
//!   not read again); missing or wrong ones are rewritten. Then the hashes
//!   of every full tile the checkpoint covers are dropped from memory.
//!
//! Crash points of `publish_checkpoint` therefore all recover: before or
//! during step 1 the WAL still holds every entry, and each new bundle is
//! absent, a `.tmp`, or complete (then read, or checked and removed as a
//! stray; either way it equals the WAL's records); between steps 2 and 3
//! `state` is one checkpoint ahead of `checkpoint`, which is accepted (the
//! bundles it names are durable) and the next publish signs again; between
//! steps 3 and 4 the WAL's records are all covered and skipped. If the WAL
//! `write_all` hit the disk but its `sync_data` failed, the entries may or
//! may not be present after recovery; `open` `sync_all`s the WAL, so what
//! it recovered stays.
//!
//! Undetectable by design: deleting `wal` (or cutting it at a frame
//! boundary, or damaging only its last frame) loses the entries appended
//! since the last checkpoint without a trace, because `state` records only
//! checkpointed sizes. A deleted `wal` is recreated empty. Nothing a
//! checkpoint covers can be lost this way.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::prelude::*;
use signed_note::{Note, Signature, StandardVerifier, VerifierList};
use tlog_tiles::{Hash, record_hash};

use crate::checkpoint::{self, OpenError};
use crate::cosign::CosignatureVerifier;
use crate::error::LedgerError;
use crate::key::LedgerKey;
use crate::proof;
use crate::storage::{Batch, fsync_dir, read_opt, remove_any, remove_tmp_files};
use crate::tiles::{
    MAX_ENTRY_LEN, Resource, TILE_HEIGHT, TILE_WIDTH, TileCoord, TileKind, bundle_prefix_len,
    decode_bundle_exact, encode_bundle, new_hash_tiles, parse_resource,
};
use crate::tree::Tree;
use crate::wal::{self, WAL};

const CHECKPOINT: &str = "checkpoint";
const STATE: &str = "state";
const LOCK: &str = "lock";
const STATE_HEADER: &str = "custos-ledger-state v1";
/// `append` keeps its frame buffer between calls up to this capacity.
const WAL_BUF_KEEP: usize = 4 << 20;

/// The last signed checkpoint.
#[derive(Debug)]
struct Published {
    size: u64,
    /// Checkpoint body (signed text).
    body: String,
    /// Full note: body, our signature, then any witness cosignatures.
    note: String,
}

/// Contents of the `state` file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State {
    pub(crate) time_ms: u64,
    pub(crate) size: u64,
    pub(crate) root: Hash,
}

/// A tamper-evident, append-only ledger stored in one directory.
///
/// One `Ledger` per directory (enforced with a file lock). Not internally
/// synchronized: the caller serializes `append` and `publish_checkpoint`
/// (e.g. behind a mutex or in a sequencer task); reads take `&self`.
pub struct Ledger {
    dir: PathBuf,
    key: LedgerKey,
    verifier: StandardVerifier,
    _lock: File,
    tree: Tree,
    /// Every entry not yet in a *full* entry bundle on disk: those of the
    /// last partial bundle and everything appended since (durable in the
    /// WAL only). Starts at a multiple of `TILE_WIDTH`.
    tail: Vec<Vec<u8>>,
    /// The write-ahead file, opened for appending.
    wal: File,
    /// Whether `wal` may hold records (reset by `publish_checkpoint`).
    wal_dirty: bool,
    /// Reused frame buffer for `append`.
    wal_buf: Vec<u8>,
    published: Option<Published>,
    last_time_ms: u64,
    /// Length of `wal` up to the end of the last synced frame (module docs,
    /// "Durability order").
    wal_durable_len: u64,
    /// Whether `wal` may be longer than `wal_durable_len`, or its last
    /// truncation may not be durable: set by a failed write, cleared by
    /// `settle`.
    unsettled: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.dir)
            .field("origin", &self.key.origin())
            .field("size", &self.tree.size())
            .field("checkpoint_size", &self.published_size())
            .field("unsettled", &self.unsettled)
            .finish_non_exhaustive()
    }
}

fn checkpoint_err(e: OpenError) -> LedgerError {
    match e {
        OpenError::BadKey(m) => LedgerError::BadKey(m),
        OpenError::Malformed(m) => LedgerError::BadNote(m),
        OpenError::BadSignature(m) => LedgerError::BadSignature(m),
    }
}

impl Ledger {
    /// Opens (creating if needed) the ledger stored under `dir`, running
    /// crash recovery. `origin` is the checkpoint origin and must be the
    /// key's origin.
    ///
    /// Fails with `history_mismatch` when the stored entries are fewer than,
    /// or do not hash to, the last signed checkpoint.
    pub fn open(dir: &Path, origin: &str, key: LedgerKey) -> Result<Ledger, LedgerError> {
        if key.origin() != origin {
            return Err(LedgerError::BadKey(format!(
                "key was made for origin {:?}, ledger origin is {origin:?}",
                key.origin()
            )));
        }
        let verifier = checkpoint::log_verifier(&key.verifier_key()).map_err(checkpoint_err)?;
        let existed = dir.exists();
        std::fs::create_dir_all(dir).map_err(|e| LedgerError::io(dir, e))?;
        if !existed && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            fsync_dir(parent)?;
        }
        let lock_path = dir.join(LOCK);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| LedgerError::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LedgerError::Locked(dir.to_path_buf())),
            Err(TryLockError::Error(e)) => return Err(LedgerError::io(&lock_path, e)),
        }
        remove_tmp_files(dir)?;

        // Files to delete once the recovered state is known to be acceptable
        // (never destroy evidence before deciding to refuse).
        let mut cleanup: Vec<PathBuf> = Vec::new();
        let Loaded {
            mut tree,
            mut tail,
            missing,
            strays,
            tiles_checked,
        } = load_entries(dir, &mut cleanup)?;

        // History checks against the entry bundles alone: they are durable
        // before `state` and `checkpoint` are written, so they always cover
        // both.
        let state = match read_opt(&dir.join(STATE))? {
            Some(b) => Some(parse_state(&b)?),
            None => None,
        };
        let opened = match read_opt(&dir.join(CHECKPOINT))? {
            None => None,
            Some(bytes) => {
                let op = checkpoint::open(&bytes, &verifier).map_err(|e| {
                    LedgerError::Corrupt(format!("stored checkpoint rejected: {e:?}"))
                })?;
                Some((op, bytes))
            }
        };
        let recorded = state
            .map_or(0, |s| s.size)
            .max(opened.as_ref().map_or(0, |(op, _)| op.size));
        if let Some(stray) = strays.iter().find(|c| !c.is_partial())
            && tree.size() < recorded
        {
            // Full bundles a checkpoint covers are never written out of order.
            return Err(LedgerError::Corrupt(format!(
                "{} exists but {} is missing",
                stray.path(),
                missing.path()
            )));
        }
        let published = match opened {
            None => None,
            Some((op, bytes)) => {
                check_history(&tree, op.size, op.root, "signed checkpoint")?;
                let body = String::from_utf8(op.note.text().to_vec())
                    .map_err(|_| LedgerError::Corrupt("checkpoint is not UTF-8".into()))?;
                let note = String::from_utf8(bytes)
                    .map_err(|_| LedgerError::Corrupt("checkpoint is not UTF-8".into()))?;
                Some(Published {
                    size: op.size,
                    body,
                    note,
                })
            }
        };
        match (&state, &published) {
            (Some(s), _) => check_history(&tree, s.size, s.root, "state file")?,
            (None, Some(_)) => {
                // `state` is made durable before the first checkpoint is
                // written, so this is deletion, not a crash.
                return Err(LedgerError::Corrupt(
                    "state file is missing but a checkpoint exists".into(),
                ));
            }
            (None, None) => {}
        }
        if let (Some(s), Some(p)) = (&state, &published)
            && s.size < p.size
        {
            return Err(LedgerError::Corrupt(
                "state file is older than the checkpoint".into(),
            ));
        }

        // Replay the write-ahead file on top of the bundles.
        let wal_path = dir.join(WAL);
        let wal_data = read_opt(&wal_path)?.unwrap_or_default();
        let scan = wal::scan(&wal_data)?;
        let torn = scan.valid_len < wal_data.len() as u64;
        drop(wal_data);
        replay(&mut tree, &mut tail, scan.frames)?;
        // Bundles past the first missing one: a publish that crashed before
        // all its renames were durable wrote them from entries the WAL still
        // holds, so the replayed tree must hold the same entries. They are
        // then removed (the next publish writes them again).
        for stray in &strays {
            check_stray(dir, &tree, *stray)?;
            cleanup.push(dir.join(if stray.is_partial() {
                stray.partial_dir()
            } else {
                stray.path()
            }));
        }

        // Accepted: from here on files may change.
        let wal_existed = wal_path.exists();
        let wal_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&wal_path)
            .map_err(|e| LedgerError::io(&wal_path, e))?;
        if torn {
            // The cut batch was never acknowledged.
            wal_file
                .set_len(scan.valid_len)
                .map_err(|e| LedgerError::io(&wal_path, e))?;
        }
        // Also makes durable whatever recovery read from the page cache.
        wal_file
            .sync_all()
            .map_err(|e| LedgerError::io(&wal_path, e))?;
        if !wal_existed {
            // Created here, so that `append` never needs a directory fsync.
            fsync_dir(dir)?;
        }

        let mut ledger = Ledger {
            dir: dir.to_path_buf(),
            key,
            verifier,
            _lock: lock,
            tree,
            tail,
            wal: wal_file,
            wal_dirty: scan.valid_len > 0,
            wal_buf: Vec::new(),
            published,
            last_time_ms: state.map_or(0, |s| s.time_ms),
            wal_durable_len: scan.valid_len,
            unsettled: false,
        };
        ledger.repair_hash_tiles(tiles_checked)?;
        // Every tile the checkpoint covers is now durable and right.
        ledger.tree.offload_upto(ledger.published_size());
        for p in cleanup {
            remove_any(&p)?;
        }
        Ok(ledger)
    }

    /// Rewrites missing or wrong hash tiles of the published size; full
    /// level-0 tiles below `checked` were found right already (a partial
    /// of the same index is still checked).
    fn repair_hash_tiles(&mut self, checked: u64) -> Result<(), LedgerError> {
        let size = self.published_size();
        let mut batch = Batch::new(&self.dir);
        for coord in new_hash_tiles(0, size) {
            if coord.kind == TileKind::Hash(0) && !coord.is_partial() && coord.index < checked {
                continue;
            }
            let want = hash_tile_bytes(&self.tree, coord)?;
            let have = read_opt(&self.dir.join(coord.path()))?;
            if have.as_deref() != Some(want.as_slice()) {
                batch.write(&coord.path(), &want)?;
            }
        }
        batch.commit()
    }

    fn published_size(&self) -> u64 {
        self.published.as_ref().map_or(0, |p| p.size)
    }

    /// The directory the log is stored in: files a verifier may read beside the
    /// writer ([`crate::DirSource`]), since every file is complete before the
    /// checkpoint that covers it is published.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint origin (the first line of every checkpoint).
    pub fn origin(&self) -> &str {
        self.key.origin()
    }

    /// The verifier key for this log's checkpoints.
    pub fn verifier_key(&self) -> String {
        self.key.verifier_key()
    }

    /// Number of entries (all durable).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Number of tree hashes held in memory (for tests and diagnostics):
    /// two per entry past the last full level-0 tile of the latest
    /// checkpoint, and at most about 512 per tile level above (`tree.rs`).
    #[doc(hidden)]
    pub fn tree_hashes_in_memory(&self) -> usize {
        self.tree.hashes_in_memory()
    }

    /// Size of the latest signed checkpoint (0 if none).
    pub fn checkpoint_size(&self) -> u64 {
        self.published_size()
    }

    /// The latest signed checkpoint note, with any witness cosignatures.
    pub fn checkpoint(&self) -> Option<String> {
        self.published.as_ref().map(|p| p.note.clone())
    }

    /// Appends `entries` (each at most 65535 bytes) and returns the index of
    /// the first. When this returns `Ok`, every entry is durable (in the
    /// write-ahead file; `publish_checkpoint` moves them into the tiles).
    /// An empty batch returns the current size and writes nothing.
    ///
    /// On an I/O error (`ledger_io`) the batch is refused: nothing of it is
    /// acknowledged or kept in memory, and the write-ahead file is cut back to
    /// its durable length before anything else is written (module docs,
    /// "Durability order"). The ledger stays usable: a later call writes the
    /// next batch at the same index once the disk accepts writes again.
    pub fn append(&mut self, entries: &[Vec<u8>]) -> Result<u64, LedgerError> {
        if let Some((position, e)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.len() > MAX_ENTRY_LEN)
        {
            return Err(LedgerError::EntryTooLarge {
                position,
                len: e.len(),
            });
        }
        let first = self.tree.size();
        if entries.is_empty() {
            return Ok(first);
        }
        self.settle()?;
        wal::encode(&mut self.wal_buf, first, entries);
        let frame_len = self.wal_buf.len() as u64;
        self.wal_dirty = true;
        let written = self
            .wal
            .write_all(&self.wal_buf)
            .and_then(|()| self.wal.sync_data());
        if self.wal_buf.capacity() > WAL_BUF_KEEP {
            self.wal_buf = Vec::new();
        }
        if let Err(e) = written {
            // Refused: cut the frame off now if possible, else before the
            // next write.
            self.unsettled = true;
            let _ = self.settle();
            return Err(LedgerError::io(self.dir.join(WAL), e));
        }
        // Commit point passed: update memory.
        self.wal_durable_len += frame_len;
        for e in entries {
            self.tree.push_entry(e);
        }
        self.tail.extend(entries.iter().cloned());
        Ok(first)
    }

    /// Whether a failed write has not been cleaned up yet: the next `append`
    /// or `publish_checkpoint` first cuts the write-ahead file back to its
    /// durable length (and fails if it still cannot).
    pub fn is_unsettled(&self) -> bool {
        self.unsettled
    }

    /// After a failed write: cuts `wal` back to its durable length and makes
    /// that durable. A no-op when nothing failed.
    fn settle(&mut self) -> Result<(), LedgerError> {
        if !self.unsettled {
            return Ok(());
        }
        self.wal
            .set_len(self.wal_durable_len)
            .and_then(|()| self.wal.sync_all())
            .map_err(|e| LedgerError::io(self.dir.join(WAL), e))?;
        self.unsettled = false;
        self.wal_dirty = self.wal_durable_len > 0;
        Ok(())
    }

    /// Signs and durably writes a checkpoint for the current size if the
    /// tree grew since the last one (or if there is none yet), returning the
    /// note. `now_unix_ms` must not be earlier than the last checkpoint's
    /// time (`clock_backwards`).
    ///
    /// Writes the entry bundles and hash tiles of everything appended since
    /// the last checkpoint, then `state`, then `checkpoint`, then empties the
    /// write-ahead file. After an I/O error nothing in memory has changed
    /// but the write-ahead file may need cutting back (module docs); a later
    /// call does that first and publishes again.
    pub fn publish_checkpoint(&mut self, now_unix_ms: u64) -> Result<Option<String>, LedgerError> {
        self.settle()?;
        if now_unix_ms < self.last_time_ms {
            return Err(LedgerError::ClockBackwards {
                now_ms: now_unix_ms,
                last_ms: self.last_time_ms,
            });
        }
        let size = self.tree.size();
        if self.published.as_ref().is_some_and(|p| p.size == size) {
            return Ok(None);
        }
        let old = self.published_size();
        let root = self
            .tree
            .root_at(size)?
            .ok_or_else(|| LedgerError::Corrupt("cannot compute root".into()))?;

        // 1. Entry bundles and hash tiles, durable (in any order) before
        //    step 2.
        let mut batch = Batch::new(&self.dir);
        let first_bundle = (size - self.tail.len() as u64) / TILE_WIDTH;
        let mut full = 0usize;
        for (n, chunk) in (first_bundle..).zip(self.tail.chunks(TILE_WIDTH as usize)) {
            let coord = TileCoord {
                kind: TileKind::Entries,
                index: n,
                width: chunk.len() as u16,
            };
            batch.write(
                &coord.path(),
                &encode_bundle(chunk.iter().map(|e| e.as_slice())),
            )?;
            if !coord.is_partial() {
                full += 1;
            }
        }
        let tiles = new_hash_tiles(old, size);
        for coord in &tiles {
            batch.write(&coord.path(), &hash_tile_bytes(&self.tree, *coord)?)?;
        }
        batch.commit()?;
        self.tail.drain(..full * TILE_WIDTH as usize);
        // Partials superseded by a full tile or bundle: best effort (the
        // full one serves their prefixes; recovery removes leftovers of
        // entry bundles).
        for coord in tiles.iter().filter(|c| !c.is_partial()) {
            let _ = remove_any(&self.dir.join(coord.partial_dir()));
        }
        for i in first_bundle..first_bundle + full as u64 {
            let coord = TileCoord::full(TileKind::Entries, i);
            let _ = remove_any(&self.dir.join(coord.partial_dir()));
        }

        // 2. State: time and the history guard.
        let state = State {
            time_ms: now_unix_ms,
            size,
            root,
        };
        let mut batch = Batch::new(&self.dir);
        batch.write(STATE, format_state(&state).as_bytes())?;
        batch.commit()?;
        self.last_time_ms = now_unix_ms;

        // 3. The signed checkpoint.
        let body = checkpoint::body(self.origin(), size, root).map_err(LedgerError::BadNote)?;
        let note = checkpoint::sign(&self.key, &body).map_err(LedgerError::BadNote)?;
        let mut batch = Batch::new(&self.dir);
        batch.write(CHECKPOINT, note.as_bytes())?;
        batch.commit()?;
        self.published = Some(Published {
            size,
            body,
            note: note.clone(),
        });
        // The full tiles it covers are durable (step 1): their nodes are
        // read back from them from now on (tree.rs).
        self.tree.offload_upto(size);

        // 4. Every WAL record is now in the tiles: empty the file.
        //    Whatever happens, nothing in the file is needed any more.
        self.wal_durable_len = 0;
        if self.wal_dirty {
            let reset = self.wal.set_len(0).and_then(|()| self.wal.sync_all());
            if let Err(e) = reset {
                self.unsettled = true;
                return Err(LedgerError::io(self.dir.join(WAL), e));
            }
            self.wal_dirty = false;
        }
        Ok(Some(note))
    }

    /// Attaches witness cosignatures to the current checkpoint.
    ///
    /// `cosigned_note` is a copy of the current checkpoint carrying this
    /// log's signature and extra `cosignature/v1` lines; every extra line
    /// must verify with one of `witness_keys` (verifier keys of type 0x04),
    /// and no key may sign twice (`bad_signature`).
    /// The stored and served checkpoint then carries them, replacing older
    /// cosignatures by the same witness. Cosignatures are dropped when the
    /// next checkpoint is published.
    pub fn add_cosignature(
        &mut self,
        cosigned_note: &str,
        witness_keys: &[String],
    ) -> Result<(), LedgerError> {
        let note = Note::from_bytes(cosigned_note.as_bytes())
            .map_err(|e| LedgerError::BadNote(e.to_string()))?;
        // Is it ours at all? (signature and origin)
        checkpoint::open(cosigned_note.as_bytes(), &self.verifier).map_err(checkpoint_err)?;
        let Some(published) = &self.published else {
            return Err(LedgerError::StaleCheckpoint);
        };
        if note.text() != published.body.as_bytes() {
            return Err(LedgerError::StaleCheckpoint);
        }
        let mut verifiers: Vec<Box<dyn signed_note::Verifier>> =
            vec![Box::new(self.verifier.clone())];
        for k in witness_keys {
            let v = CosignatureVerifier::parse(k).map_err(LedgerError::BadKey)?;
            verifiers.push(Box::new(v));
        }
        let (verified, unverified) = note
            .verify(&VerifierList::new(verifiers))
            .map_err(|e| LedgerError::BadSignature(e.to_string()))?;
        if let Some(sig) = unverified.first() {
            return Err(LedgerError::UnknownWitness {
                name: sig.name().to_owned(),
                id: sig.id(),
            });
        }
        // `Note::verify` checks only the first signature of each key and skips the
        // others: a second line by a known key is refused here, checked or not, so that
        // every line of a note that is taken verified.
        let lines = cosigned_note
            .rsplit_once("\n\n")
            .map_or(0, |(_, sigs)| sigs.lines().count());
        if lines != verified.len() {
            return Err(LedgerError::BadSignature(
                "a key signed the note more than once".into(),
            ));
        }
        let ours = |s: &Signature| s.name() == self.origin() && s.id() == self.key.key_id();
        let stored = Note::from_bytes(published.note.as_bytes())
            .map_err(|e| LedgerError::Corrupt(format!("stored checkpoint: {e}")))?;
        let (stored_sigs, _) = stored
            .verify(&VerifierList::new(vec![Box::new(self.verifier.clone())]))
            .map(|(v, u)| (v.into_iter().chain(u).collect::<Vec<_>>(), ()))
            .map_err(|e| LedgerError::Corrupt(format!("stored checkpoint: {e}")))?;
        let mut sigs: Vec<Signature> = stored_sigs.iter().filter(|s| ours(s)).cloned().collect();
        let new_witness: Vec<&Signature> = verified.iter().filter(|s| !ours(s)).collect();
        // Only a witness signature not already stored changes anything: a re-post of the
        // checkpoint (with or without known cosignatures) is refused before any write.
        let same = |a: &Signature, b: &Signature| {
            a.name() == b.name() && a.id() == b.id() && a.signature() == b.signature()
        };
        if new_witness
            .iter()
            .all(|n| stored_sigs.iter().any(|old| same(old, n)))
        {
            return Err(LedgerError::NoNewCosignature);
        }
        for old in stored_sigs.iter().filter(|s| !ours(s)) {
            if !new_witness
                .iter()
                .any(|n| n.name() == old.name() && n.id() == old.id())
            {
                sigs.push(old.clone());
            }
        }
        sigs.extend(new_witness.into_iter().cloned());
        let merged = Note::new(published.body.as_bytes(), &sigs)
            .map_err(|e| LedgerError::BadNote(e.to_string()))?;
        let text = String::from_utf8(merged.to_bytes())
            .map_err(|_| LedgerError::BadNote("not UTF-8".into()))?;
        let mut batch = Batch::new(&self.dir);
        batch.write(CHECKPOINT, text.as_bytes())?;
        batch.commit()?;
        if let Some(p) = self.published.as_mut() {
            p.note = text;
        }
        Ok(())
    }

    /// The entry at `index`, or `None` past the end.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, LedgerError> {
        Ok(self.entries(index, 1)?.pop().map(|(_, e)| e))
    }

    /// Up to `limit` entries starting at `from`, with their indexes (for
    /// readers that resume from a sequence number). Entries in full bundles
    /// are read from disk, the others from memory; each is checked against
    /// the in-memory leaf hash.
    pub fn entries(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        let size = self.tree.size();
        let end = from.saturating_add(limit as u64).min(size);
        let tail_start = size - self.tail.len() as u64;
        let check = |idx: u64, e: &[u8], leaf: Option<&Hash>| {
            if leaf == Some(&record_hash(e)) {
                Ok(())
            } else {
                Err(LedgerError::Corrupt(format!(
                    "entry {idx} no longer matches its hash"
                )))
            }
        };
        let mut out = Vec::new();
        let mut i = from;
        while i < end && i < tail_start {
            let n = i / TILE_WIDTH;
            let coord = TileCoord::full(TileKind::Entries, n);
            let path = self.dir.join(coord.path());
            let data = read_opt(&path)?
                .ok_or_else(|| LedgerError::Corrupt(format!("{} disappeared", coord.path())))?;
            let bundle = decode_bundle_exact(&data, TILE_WIDTH as usize)
                .ok_or_else(|| LedgerError::Corrupt(format!("{} is malformed", coord.path())))?;
            let base = n * TILE_WIDTH;
            let leaves = self.tree.hashes(0, base, TILE_WIDTH)?.unwrap_or_default();
            for (j, e) in bundle.into_iter().enumerate() {
                let idx = base + j as u64;
                if idx < i || idx >= end {
                    continue;
                }
                check(idx, &e, leaves.get(j))?;
                out.push((idx, e));
            }
            i = base + TILE_WIDTH;
        }
        while i < end {
            let e = &self.tail[(i - tail_start) as usize];
            check(i, e, self.tree.leaf(i)?.as_ref())?;
            out.push((i, e.clone()));
            i += 1;
        }
        Ok(out)
    }

    /// Checks a checkpoint that should be this log's (one signed by another node of the
    /// same shared ledger): it must carry this log's signature (`bad_signature`
    /// otherwise: another key), and when this tree holds that many entries, its root
    /// must be this tree's root at its size (`history_mismatch` otherwise). Returns its
    /// size.
    pub fn check_checkpoint(&self, note: &[u8]) -> Result<u64, LedgerError> {
        let opened = checkpoint::open(note, &self.verifier).map_err(checkpoint_err)?;
        if opened.size <= self.size() && self.root_at(opened.size)? != opened.root.0 {
            return Err(LedgerError::HistoryMismatch(format!(
                "the checkpoint at size {} has another root than this tree",
                opened.size
            )));
        }
        Ok(opened.size)
    }

    /// Root hash of the tree of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<[u8; 32], LedgerError> {
        self.tree
            .root_at(size)?
            .map(|h| h.0)
            .ok_or_else(|| LedgerError::OutOfRange(format!("size {size} > {}", self.size())))
    }

    /// RFC 6962 inclusion proof (audit path, leaf's sibling first) of entry
    /// `index` in the tree of `tree_size` entries.
    pub fn inclusion_proof(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<Vec<[u8; 32]>, LedgerError> {
        self.tree
            .inclusion_proof(index, tree_size)?
            .map(|p| p.into_iter().map(|h| h.0).collect())
            .ok_or_else(|| {
                LedgerError::OutOfRange(format!(
                    "index {index}, tree size {tree_size}, ledger size {}",
                    self.size()
                ))
            })
    }

    /// RFC 6962 consistency proof from the tree of `from` entries to the tree
    /// of `to` entries (empty when `from` is 0 or equals `to`).
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<[u8; 32]>, LedgerError> {
        self.tree
            .consistency_proof(from, to)?
            .map(|p| p.into_iter().map(|h| h.0).collect())
            .ok_or_else(|| {
                LedgerError::OutOfRange(format!(
                    "from {from}, to {to}, ledger size {}",
                    self.size()
                ))
            })
    }

    /// A C2SP tlog-proof for entry `index` against the latest checkpoint,
    /// with the entry itself as the `extra` data. The entry must be covered
    /// by a published checkpoint (`out_of_range` otherwise).
    pub fn tlog_proof(&self, index: u64) -> Result<String, LedgerError> {
        let Some(p) = self.published.as_ref().filter(|p| index < p.size) else {
            return Err(LedgerError::OutOfRange(format!(
                "entry {index} is not covered by a checkpoint yet"
            )));
        };
        let entry = self
            .entry(index)?
            .ok_or_else(|| LedgerError::OutOfRange(format!("no entry {index}")))?;
        let path = self.inclusion_proof(index, p.size)?;
        Ok(proof::format(Some(&entry), index, &path, &p.note))
    }

    /// The bytes to serve for a tlog-tiles resource path relative to the log
    /// root (`checkpoint`, `tile/0/x001/234`, `tile/entries/000.p/5`, …), or
    /// `None` if it does not exist or is not covered by the latest
    /// checkpoint (C2SP tlog-tiles clients only fetch what a checkpoint
    /// covers). Paths are parsed strictly (`invalid_path`), so nothing
    /// outside the layout is ever read (not `state`, `lock` or `wal`).
    ///
    /// A partial tile that was deleted because its full tile exists is
    /// served as the prefix of the full tile: same bytes, and C2SP
    /// tlog-tiles lets clients fall back to the full tile anyway.
    pub fn resource(&self, path: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let coord = match parse_resource(path)? {
            Resource::Checkpoint => return Ok(self.checkpoint().map(String::into_bytes)),
            Resource::Tile(c) => c,
        };
        // Only serve what the last checkpoint covers (entries appended since
        // are only in the WAL and in memory; bundles a crashed publish wrote
        // past it are not vouched for yet).
        let available = match coord.kind {
            TileKind::Entries => self.published_size(),
            TileKind::Hash(l) => self
                .published_size()
                .checked_shr(u32::from(l) * u32::from(TILE_HEIGHT))
                .unwrap_or(0),
        };
        let end = coord
            .index
            .checked_mul(TILE_WIDTH)
            .and_then(|s| s.checked_add(u64::from(coord.width)));
        if end.is_none_or(|e| e > available) {
            return Ok(None);
        }
        if let Some(data) = read_opt(&self.dir.join(coord.path()))? {
            return Ok(Some(data));
        }
        if !coord.is_partial() {
            return Ok(None);
        }
        let full = TileCoord::full(coord.kind, coord.index);
        let Some(data) = read_opt(&self.dir.join(full.path()))? else {
            return Ok(None);
        };
        let w = usize::from(coord.width);
        let cut = match coord.kind {
            TileKind::Entries => bundle_prefix_len(&data, w),
            TileKind::Hash(_) => Some(w * 32).filter(|c| *c <= data.len()),
        };
        Ok(cut.map(|c| data[..c].to_vec()))
    }
}

/// Fails unless the tree has at least `size` leaves hashing to `root`.
fn check_history(tree: &Tree, size: u64, root: Hash, what: &str) -> Result<(), LedgerError> {
    if size > tree.size() {
        return Err(LedgerError::HistoryMismatch(format!(
            "{what} covers {size} entries but only {} are on disk",
            tree.size()
        )));
    }
    if tree.root_at(size)? != Some(root) {
        return Err(LedgerError::HistoryMismatch(format!(
            "entries on disk do not hash to the {what} root at size {size}"
        )));
    }
    Ok(())
}

/// Appends the WAL frames' entries that the bundles do not hold yet. Entries
/// the bundles already hold must be the same ones; a frame starting past the
/// end is a gap. Either is refused (`ledger_corrupt`).
fn replay(
    tree: &mut Tree,
    tail: &mut Vec<Vec<u8>>,
    frames: Vec<wal::Frame>,
) -> Result<(), LedgerError> {
    for frame in frames {
        if frame.first > tree.size() {
            return Err(LedgerError::Corrupt(format!(
                "{WAL} resumes at entry {} but only {} entries precede it",
                frame.first,
                tree.size()
            )));
        }
        // Leaf hashes of the records the bundles already hold (one tile read
        // per offloaded tile).
        let held_len = (tree.size() - frame.first).min(frame.entries.len() as u64);
        let held = tree.hashes(0, frame.first, held_len)?.unwrap_or_default();
        for (idx, e) in (frame.first..).zip(frame.entries) {
            if idx < tree.size() {
                let at = usize::try_from(idx - frame.first).unwrap_or(usize::MAX);
                if held.get(at) != Some(&record_hash(&e)) {
                    return Err(LedgerError::Corrupt(format!(
                        "{WAL} entry {idx} differs from the entry bundles"
                    )));
                }
            } else {
                tree.push_entry(&e);
                tail.push(e);
            }
        }
    }
    Ok(())
}

/// What the entry bundles hold.
struct Loaded {
    /// Tree of the consecutive full bundles and the widest partial after.
    tree: Tree,
    /// Entries of that partial.
    tail: Vec<Vec<u8>>,
    /// The first full bundle that is missing.
    missing: TileCoord,
    /// Bundle files past it (only left by a crash during a publish).
    strays: Vec<TileCoord>,
    /// Level-0 hash tiles `0..tiles_checked` are on disk with the hashes of
    /// the bundles (and offloaded from the tree).
    tiles_checked: u64,
}

/// Fails unless the bundle file `c` holds entries the tree holds at the
/// same indexes.
fn check_stray(dir: &Path, tree: &Tree, c: TileCoord) -> Result<(), LedgerError> {
    let data = read_opt(&dir.join(c.path()))?.unwrap_or_default();
    let leaves = match c.index.checked_mul(TILE_WIDTH) {
        Some(base) => tree.hashes(0, base, u64::from(c.width))?,
        None => None,
    };
    let ok = leaves
        .zip(decode_bundle_exact(&data, usize::from(c.width)))
        .is_some_and(|(leaves, es)| {
            leaves
                .iter()
                .zip(&es)
                .all(|(leaf, e)| *leaf == record_hash(e))
        });
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Corrupt(format!(
            "{} lies past the last complete bundle and holds entries the ledger does not have",
            c.path()
        )))
    }
}

/// The bytes of hash tile `coord` (which must lie inside the tree).
fn hash_tile_bytes(tree: &Tree, coord: TileCoord) -> Result<Vec<u8>, LedgerError> {
    let TileKind::Hash(level) = coord.kind else {
        return Err(LedgerError::Corrupt("not a hash tile".into()));
    };
    let level = usize::from(level) * usize::from(TILE_HEIGHT);
    let hashes = match coord.index.checked_mul(TILE_WIDTH) {
        Some(start) => tree.hashes(level, start, u64::from(coord.width))?,
        None => None,
    }
    .ok_or_else(|| LedgerError::Corrupt("tile outside the tree".into()))?;
    Ok(hashes.iter().flat_map(|h| h.0).collect())
}

/// Reads full bundles 0, 1, … and the widest well-formed partial after them,
/// and lists the bundle files past those.
///
/// The leaf hashes (levels 0–7) of each full bundle whose level-0 hash tile
/// is already on disk with the right hashes (and of all bundles before it)
/// are offloaded as soon as it is read, so that opening a ledger whose tiles
/// are intact never holds the whole tree.
fn load_entries(dir: &Path, cleanup: &mut Vec<PathBuf>) -> Result<Loaded, LedgerError> {
    let mut tree = Tree::stored_in(dir);
    let mut tiles_stored = true;
    let mut tiles_checked = 0;
    let mut n = 0u64;
    loop {
        let full = TileCoord::full(TileKind::Entries, n);
        if let Some(data) = read_opt(&dir.join(full.path()))? {
            let entries = decode_bundle_exact(&data, TILE_WIDTH as usize).ok_or_else(|| {
                LedgerError::Corrupt(format!("{} is not a full entry bundle", full.path()))
            })?;
            for e in &entries {
                tree.push_entry(e);
            }
            let tile = TileCoord::full(TileKind::Hash(0), n);
            tiles_stored = tiles_stored
                && read_opt(&dir.join(tile.path()))? == Some(hash_tile_bytes(&tree, tile)?);
            if tiles_stored {
                tree.offload(0, n + 1);
                tiles_checked = n + 1;
            }
            // A crash after the full bundle committed may leave its partials.
            let pdir = dir.join(full.partial_dir());
            if pdir.exists() {
                cleanup.push(pdir);
            }
            n += 1;
            continue;
        }
        let pdir = dir.join(full.partial_dir());
        let mut widths = list_widths(&pdir)?;
        widths.sort_unstable_by(|a, b| b.cmp(a));
        let mut tail = Vec::new();
        for &w in &widths {
            let p = TileCoord { width: w, ..full };
            let data = read_opt(&dir.join(p.path()))?.unwrap_or_default();
            match decode_bundle_exact(&data, usize::from(w)) {
                Some(entries) => {
                    tail = entries;
                    break;
                }
                // Torn or foreign: discarded (after the history checks).
                None => cleanup.push(dir.join(p.path())),
            }
        }
        for e in &tail {
            tree.push_entry(e);
        }
        let strays = list_entry_bundles(dir)?
            .into_iter()
            .filter(|c| c.index > n)
            .collect();
        return Ok(Loaded {
            tree,
            tail,
            missing: full,
            strays,
            tiles_checked,
        });
    }
}

/// Every entry bundle file under `tile/entries/` (canonical names only).
fn list_entry_bundles(dir: &Path) -> Result<Vec<TileCoord>, LedgerError> {
    let mut out = Vec::new();
    let mut stack = vec![String::from("tile/entries")];
    while let Some(rel) = stack.pop() {
        let path = dir.join(&rel);
        let rd = match std::fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(LedgerError::io(&path, e)),
        };
        for ent in rd {
            let ent = ent.map_err(|e| LedgerError::io(&path, e))?;
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let child = format!("{rel}/{name}");
            let ft = ent.file_type().map_err(|e| LedgerError::io(&path, e))?;
            if ft.is_dir() {
                stack.push(child);
            } else if let Ok(Resource::Tile(c)) = parse_resource(&child)
                && c.kind == TileKind::Entries
                && c.path() == child
            {
                out.push(c);
            }
        }
    }
    out.sort_by_key(|c| (c.index, c.width));
    Ok(out)
}

/// Widths of the partial files in a `<N>.p` directory (canonical names only).
fn list_widths(pdir: &Path) -> Result<Vec<u16>, LedgerError> {
    let rd = match std::fs::read_dir(pdir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LedgerError::io(pdir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| LedgerError::io(pdir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Ok(w) = name.parse::<u16>()
            && (1..TILE_WIDTH as u16).contains(&w)
            && w.to_string() == name
        {
            out.push(w);
        }
    }
    Ok(out)
}

pub(crate) fn format_state(s: &State) -> String {
    format!(
        "{STATE_HEADER}\ntime {}\nsize {}\nroot {}\n",
        s.time_ms,
        s.size,
        BASE64_STANDARD.encode(s.root.0)
    )
}

fn parse_state(b: &[u8]) -> Result<State, LedgerError> {
    let bad = || LedgerError::Corrupt("state file is malformed".into());
    let text = std::str::from_utf8(b).map_err(|_| bad())?;
    let mut lines = text.lines();
    if lines.next() != Some(STATE_HEADER) {
        return Err(bad());
    }
    let mut field = |name: &str| {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or_else(bad)
    };
    let time_ms = field("time")?.parse().map_err(|_| bad())?;
    let size = field("size")?.parse().map_err(|_| bad())?;
    let root = Hash::parse_hash(field("root")?).map_err(|_| bad())?;
    Ok(State {
        time_ms,
        size,
        root,
    })
}
