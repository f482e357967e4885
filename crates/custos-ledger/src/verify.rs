//! Whole-ledger verification against any copy of the tiles.
//!
//! Independent of [`crate::Ledger`]: it reads only through a
//! [`TileSource`], recomputes the tree from every entry bundle, and checks
//! the stored hash tiles, the signed checkpoint and, given an earlier saved
//! checkpoint, that the log only grew since then.

use std::path::PathBuf;

use tlog_tiles::{check_tree, record_hash};

use crate::checkpoint::{self, OpenError, Opened};
use crate::error::VerifyError;
use crate::storage::read_opt;
use crate::tiles::{
    Resource, TILE_HEIGHT, TILE_WIDTH, TileCoord, TileKind, bundle_prefix_len, decode_bundle,
    new_hash_tiles, parse_resource,
};
use crate::tree::Tree;

/// Error type a [`TileSource`] may return.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Somewhere tlog-tiles resources can be fetched from (a directory, an HTTP
/// prefix, a backup archive…).
pub trait TileSource {
    /// Returns the resource at `path` (relative to the log root, e.g.
    /// `checkpoint` or `tile/entries/000`), or `None` if it does not exist.
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, FetchError>;
}

/// A [`TileSource`] reading a ledger directory (or a copy of one).
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// A source rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirSource { root: root.into() }
    }
}

impl TileSource for DirSource {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, FetchError> {
        // Re-derive the file name from the parsed coordinate: only canonical
        // layout paths are ever opened.
        let rel = match parse_resource(path)? {
            Resource::Checkpoint => "checkpoint".to_owned(),
            Resource::Tile(c) => c.path(),
        };
        Ok(read_opt(&self.root.join(rel))?)
    }
}

/// Result of a successful [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Size of the verified checkpoint.
    pub size: u64,
    /// Its root hash, recomputed from every entry.
    pub root: [u8; 32],
    /// Size of the earlier checkpoint, if one was given.
    pub previous_size: Option<u64>,
    /// Whether consistency with the earlier checkpoint was proven.
    pub consistent_with_previous: bool,
    /// The signed checkpoint that was verified, as fetched: what a verifier saves to
    /// compare the next run with.
    pub checkpoint: String,
}

fn fetch<S: TileSource + ?Sized>(src: &S, path: &str) -> Result<Option<Vec<u8>>, VerifyError> {
    src.fetch(path).map_err(|e| VerifyError::Fetch {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// Fetches a tile; a missing partial falls back to the full tile's prefix
/// (C2SP tlog-tiles, "Partial Tiles": logs may delete partials once the
/// full tile exists). Returns the bytes and the path that was read.
pub(crate) fn fetch_tile<S: TileSource + ?Sized>(
    src: &S,
    coord: TileCoord,
    first_index: u64,
) -> Result<(Vec<u8>, String), VerifyError> {
    if let Some(d) = fetch(src, &coord.path())? {
        return Ok((d, coord.path()));
    }
    if coord.is_partial() {
        let full = TileCoord::full(coord.kind, coord.index);
        if let Some(d) = fetch(src, &full.path())? {
            let w = usize::from(coord.width);
            let cut = match coord.kind {
                TileKind::Entries => bundle_prefix_len(&d, w),
                TileKind::Hash(_) => Some(w * 32).filter(|c| *c <= d.len()),
            };
            // A full tile too short for the prefix is returned whole and
            // reported as malformed by the caller.
            let d = match cut {
                Some(c) => d[..c].to_vec(),
                None => d,
            };
            return Ok((d, full.path()));
        }
    }
    Err(VerifyError::Missing {
        path: coord.path(),
        first_bad_index: first_index,
    })
}

fn open_checkpoint(
    text: &[u8],
    verifier: &signed_note::StandardVerifier,
    what: &str,
) -> Result<Opened, VerifyError> {
    checkpoint::open(text, verifier).map_err(|e| match e {
        OpenError::BadKey(m) => VerifyError::BadKey(m),
        OpenError::Malformed(m) => VerifyError::BadCheckpoint(format!("{what}: {m}")),
        OpenError::BadSignature(m) => VerifyError::BadSignature(format!("{what}: {m}")),
    })
}

/// Verifies a whole ledger from `source`.
///
/// Checks, in order: the latest checkpoint's signature (by `verifier_key`,
/// origin = key name); if `previous` (an earlier saved signed checkpoint) is
/// given, its signature and that the log did not shrink; every entry bundle
/// up to the checkpoint size, recomputing all leaf hashes; every stored hash
/// tile against the recomputed tree (level 0 first, so a changed, removed
/// or reordered entry is named by its index); the root against the
/// checkpoint; and consistency with `previous`.
pub fn verify<S: TileSource + ?Sized>(
    source: &S,
    verifier_key: &str,
    previous: Option<&str>,
) -> Result<VerifyReport, VerifyError> {
    let verifier = checkpoint::log_verifier(verifier_key).map_err(|e| match e {
        OpenError::BadKey(m) | OpenError::Malformed(m) | OpenError::BadSignature(m) => {
            VerifyError::BadKey(m)
        }
    })?;
    let cp_bytes = fetch(source, "checkpoint")?
        .ok_or_else(|| VerifyError::BadCheckpoint("no checkpoint".into()))?;
    let cp = open_checkpoint(&cp_bytes, &verifier, "checkpoint")?;
    let size = cp.size;

    let prev = previous
        .map(|p| open_checkpoint(p.as_bytes(), &verifier, "previous checkpoint"))
        .transpose()?;
    if let Some(p) = &prev
        && p.size > size
    {
        return Err(VerifyError::Rollback {
            size,
            previous_size: p.size,
        });
    }

    // Entries → leaf hashes.
    let mut tree = Tree::default();
    let bundles = size.div_ceil(TILE_WIDTH);
    for n in 0..bundles {
        let start = n * TILE_WIDTH;
        let width = (size - start).min(TILE_WIDTH);
        let coord = TileCoord {
            kind: TileKind::Entries,
            index: n,
            width: width as u16,
        };
        let (data, path) = fetch_tile(source, coord, start)?;
        let (entries, clean) = decode_bundle(&data);
        let w = width as usize;
        if entries.len() < w || (entries.len() > w || !clean) && !coord.is_partial() {
            // Entries decoded before the parse failure may already be wrong
            // (a changed length prefix shifts every later entry): name the
            // first one whose leaf hash differs from the stored level-0 tile.
            let decoded = entries.len().min(w);
            let level0 = TileCoord {
                kind: TileKind::Hash(0),
                ..coord
            };
            let first_bad = fetch_tile(source, level0, start)
                .ok()
                .and_then(|(tile, _)| {
                    entries[..decoded].iter().enumerate().position(|(i, e)| {
                        tile.get(i * 32..(i + 1) * 32) != Some(&record_hash(e).0[..])
                    })
                })
                .unwrap_or(decoded);
            return Err(VerifyError::MalformedBundle {
                path,
                first_bad_index: start + first_bad as u64,
            });
        }
        for e in &entries[..w] {
            tree.push_leaf(record_hash(e));
        }
    }

    // Stored hash tiles against the recomputed tree, level 0 first.
    for coord in new_hash_tiles(0, size) {
        let TileKind::Hash(level) = coord.kind else {
            continue;
        };
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        let first = (coord.index * TILE_WIDTH) << shift;
        let (data, path) = fetch_tile(source, coord, first)?;
        // A tree without a directory holds every hash: reads cannot fail.
        let want = tree
            .hashes(
                usize::try_from(shift).unwrap_or(usize::MAX),
                coord.index * TILE_WIDTH,
                u64::from(coord.width),
            )
            .ok()
            .flatten()
            .unwrap_or_default();
        for (i, h) in want.iter().enumerate() {
            if data.get(i * 32..(i + 1) * 32) != Some(&h.0[..]) {
                return Err(VerifyError::TileMismatch {
                    path,
                    position: i,
                    first_bad_index: (coord.index * TILE_WIDTH + i as u64) << shift,
                });
            }
        }
        if data.len() != want.len() * 32 {
            return Err(VerifyError::TileMismatch {
                path,
                position: want.len(),
                first_bad_index: (coord.index * TILE_WIDTH + want.len() as u64) << shift,
            });
        }
    }

    let root = tree
        .root_at(size)
        .ok()
        .flatten()
        .ok_or(VerifyError::RootMismatch { size })?;
    if root != cp.root {
        return Err(VerifyError::RootMismatch { size });
    }

    let mut consistent = false;
    if let Some(p) = &prev {
        if tree.root_at(p.size).ok().flatten() != Some(p.root) {
            return Err(VerifyError::HistoryMismatch {
                previous_size: p.size,
            });
        }
        if p.size > 0 {
            let proof = tree.consistency_proof(p.size, size).ok().flatten().ok_or(
                VerifyError::HistoryMismatch {
                    previous_size: p.size,
                },
            )?;
            check_tree(&proof, size, root, p.size, p.root).map_err(|_| {
                VerifyError::HistoryMismatch {
                    previous_size: p.size,
                }
            })?;
        }
        consistent = true;
    }
    Ok(VerifyReport {
        size,
        root: root.0,
        previous_size: prev.as_ref().map(|p| p.size),
        consistent_with_previous: consistent,
        checkpoint: String::from_utf8_lossy(&cp_bytes).into_owned(),
    })
}
