//! The RFC 6962 Merkle tree of the ledger, in memory only at its right edge.
//!
//! Node `n` at level `k` is the Merkle Tree Hash of entries
//! `[n·2^k, (n+1)·2^k)`, for every complete subtree. These are exactly the
//! "stored hashes" of Go's sumdb/tlog, so roots and proofs come from
//! `tlog_tiles` through a [`HashReader`], and a hash tile at tile level L
//! holds 256 consecutive nodes of tree level 8·L.
//!
//! Tile level L covers tree levels `8L … 8L+7`: a full tile `tile/L/<t>`
//! holds nodes `256t … 256t+255` of level 8L, and the nodes of levels
//! 8L+1 … 8L+7 above them are recomputed from it. Once the owner has made
//! such a tile durable in the tree's directory, it may drop the tile's
//! nodes from memory ([`Tree::offload`], [`Tree::offload_upto`]); the
//! ledger does so for every full tile a signed checkpoint covers. What stays
//! in memory is the right edge: at each tile level the nodes of the tiles
//! not yet full or not yet checkpointed — two hashes per entry past the last
//! full level-0 tile of the checkpoint, and at most about 512 per tile level.
//!
//! A dropped node is read back from its tile when a root, proof, tile or
//! leaf needs it. A tile read is used only if it is exactly 256 hashes whose
//! subtree hash is the tree's node above it (level 8L+8, itself in memory
//! or read back the same way): anything else (missing, cut, altered) fails
//! with `ledger_corrupt`, never with a wrong hash.
//!
//! A tree without a directory (`Tree::default()`, as `verify` builds from a
//! remote copy) never offloads: every hash stays in memory, two per entry.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use tlog_tiles::{Hash, HashReader, node_hash, record_hash, split_stored_hash_index};

use crate::error::LedgerError;
use crate::storage::read_opt;
use crate::tiles::{TILE_HEIGHT, TILE_WIDTH, TileCoord, TileKind};

/// Tree levels per tile level.
const BAND: usize = TILE_HEIGHT as usize;

/// The nodes of one tree level held in memory: `first`, `first + 1`, ….
#[derive(Debug, Default)]
struct Level {
    first: u64,
    hashes: Vec<Hash>,
}

impl Level {
    /// One past the last node of the level.
    fn end(&self) -> u64 {
        self.first + self.hashes.len() as u64
    }

    /// Node `n`, if in memory.
    fn get(&self, n: u64) -> Option<Hash> {
        let i = usize::try_from(n.checked_sub(self.first)?).ok()?;
        self.hashes.get(i).copied()
    }
}

/// The subtree of one full tile, read from its file and checked.
struct TileNodes {
    tile_level: usize,
    index: u64,
    /// `levels[j]` holds the tile's `256 >> j` nodes of tree level
    /// `8·tile_level + j`, for `j` in 0..=8.
    levels: Vec<Vec<Hash>>,
}

/// The complete-subtree hashes of a tree, those of old tiles on disk.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    levels: Vec<Level>,
    /// Directory holding the `tile/0/…` files of the offloaded tiles; `None`
    /// keeps everything in memory.
    dir: Option<PathBuf>,
}

impl Tree {
    /// An empty tree whose offloaded nodes are read from the hash tiles
    /// under `dir`.
    pub(crate) fn stored_in(dir: &Path) -> Self {
        Tree {
            levels: Vec::new(),
            dir: Some(dir.to_path_buf()),
        }
    }

    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.levels.first().map_or(0, Level::end)
    }

    /// Number of hashes held in memory.
    pub(crate) fn hashes_in_memory(&self) -> usize {
        self.levels.iter().map(|l| l.hashes.len()).sum()
    }

    /// Appends an entry (hashing it as a leaf).
    pub(crate) fn push_entry(&mut self, entry: &[u8]) {
        self.push_leaf(record_hash(entry));
    }

    /// Appends a leaf hash, completing parent subtrees as they fill.
    pub(crate) fn push_leaf(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut k = 0;
        loop {
            if self.levels.len() == k {
                self.levels.push(Level::default());
            }
            let l = &mut self.levels[k];
            l.hashes.push(h);
            // Offloading keeps `first` a multiple of 256 >> (k mod 8), so
            // even, and a completed pair is in memory.
            if l.end() % 2 == 1 {
                break;
            }
            let n = l.hashes.len();
            h = node_hash(l.hashes[n - 2], l.hashes[n - 1]);
            k += 1;
        }
    }

    /// Drops from memory the nodes of the full tiles of `tile_level` below
    /// `tiles`, whose files the caller has made durable in the tree's
    /// directory. Nothing is dropped from a tree without a directory.
    pub(crate) fn offload(&mut self, tile_level: u8, tiles: u64) {
        let band = usize::from(tile_level) * BAND;
        let Some(base) = self.levels.get(band).filter(|_| self.dir.is_some()) else {
            return;
        };
        let nodes = tiles.min(base.end() / TILE_WIDTH) * TILE_WIDTH;
        for (j, l) in self.levels.iter_mut().skip(band).take(BAND).enumerate() {
            let first = nodes >> j;
            let Some(n) = first
                .checked_sub(l.first)
                .filter(|n| *n > 0)
                .and_then(|n| usize::try_from(n).ok())
            else {
                continue;
            };
            l.hashes.drain(..n);
            l.hashes.shrink_to(2 * l.hashes.len());
            l.first = first;
        }
    }

    /// [`Tree::offload`] at every tile level of the full tiles within the
    /// first `size` leaves.
    pub(crate) fn offload_upto(&mut self, size: u64) {
        for tile_level in 0..=u8::MAX {
            // Full tiles of this level: one per 2^(8·(level+1)) leaves.
            let shift = (u32::from(tile_level) + 1) * u32::from(TILE_HEIGHT);
            let tiles = size.checked_shr(shift).unwrap_or(0);
            if tiles == 0 {
                return;
            }
            self.offload(tile_level, tiles);
        }
    }

    /// Nodes `[start, start+count)` of a tree level, or `None` if not all
    /// exist. Fails if an offloaded tile cannot be read back intact.
    pub(crate) fn hashes(
        &self,
        level: usize,
        start: u64,
        count: u64,
    ) -> Result<Option<Vec<Hash>>, LedgerError> {
        let Some(end) = start.checked_add(count) else {
            return Ok(None);
        };
        let mut tiles = Vec::new();
        let mut out = Vec::new();
        for n in start..end {
            match self.node(level, n, &mut tiles)? {
                Some(h) => out.push(h),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    /// The leaf hash at `index`.
    pub(crate) fn leaf(&self, index: u64) -> Result<Option<Hash>, LedgerError> {
        self.node(0, index, &mut Vec::new())
    }

    /// Root of the tree of the first `size` leaves.
    pub(crate) fn root_at(&self, size: u64) -> Result<Option<Hash>, LedgerError> {
        if size > self.size() {
            return Ok(None);
        }
        self.compute(|r| tlog_tiles::tree_hash(size, r))
    }

    /// Inclusion proof of leaf `index` in the tree of `size` leaves.
    pub(crate) fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Option<Vec<Hash>>, LedgerError> {
        if index >= size || size > self.size() {
            return Ok(None);
        }
        self.compute(|r| tlog_tiles::prove_record(size, index, r))
    }

    /// Consistency proof from `old` to `new` leaves; empty from the empty tree.
    pub(crate) fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<Option<Vec<Hash>>, LedgerError> {
        if old > new || new > self.size() {
            return Ok(None);
        }
        if old == 0 {
            // Every tree extends the empty tree; RFC 6962 defines no proof for it.
            return Ok(Some(Vec::new()));
        }
        self.compute(|r| tlog_tiles::prove_tree(new, old, r))
    }

    /// Runs a `tlog_tiles` computation over the tree: `Ok(None)` when it
    /// fails for want of hashes, `Err` when reading a tile back failed.
    fn compute<T>(
        &self,
        f: impl FnOnce(&Reader<'_>) -> Result<T, tlog_tiles::Error>,
    ) -> Result<Option<T>, LedgerError> {
        let reader = Reader {
            tree: self,
            failure: RefCell::new(None),
        };
        let out = f(&reader);
        match reader.failure.into_inner() {
            Some(e) => Err(e),
            None => Ok(out.ok()),
        }
    }

    /// Node `n` of `level`, from memory or from its tile (`tiles` keeps the
    /// last tile read at each tile level, for reads of neighbouring nodes).
    fn node(
        &self,
        level: usize,
        n: u64,
        tiles: &mut Vec<TileNodes>,
    ) -> Result<Option<Hash>, LedgerError> {
        let Some(l) = self.levels.get(level).filter(|l| n < l.end()) else {
            return Ok(None);
        };
        if let Some(h) = l.get(n) {
            return Ok(Some(h));
        }
        // Below `first`: offloaded, so there is a directory.
        let Some(dir) = &self.dir else {
            return Ok(None);
        };
        let (tile_level, j) = (level / BAND, level % BAND);
        let per_tile = TILE_WIDTH >> j;
        let index = n / per_tile;
        let at = |t: &TileNodes| t.tile_level == tile_level && t.index == index;
        if !tiles.iter().any(at) {
            let read = self.read_tile(dir, tile_level, index, tiles)?;
            tiles.retain(|t| t.tile_level != tile_level);
            tiles.push(read);
        }
        let i = usize::try_from(n % per_tile).unwrap_or(usize::MAX);
        Ok(tiles
            .iter()
            .find(|t| at(t))
            .and_then(|t| t.levels.get(j))
            .and_then(|l| l.get(i))
            .copied())
    }

    /// Reads full tile `index` of `tile_level` and recomputes its subtree;
    /// its top must be the tree's node above it.
    fn read_tile(
        &self,
        dir: &Path,
        tile_level: usize,
        index: u64,
        tiles: &mut Vec<TileNodes>,
    ) -> Result<TileNodes, LedgerError> {
        let kind = TileKind::Hash(u8::try_from(tile_level).unwrap_or(u8::MAX));
        let path = TileCoord::full(kind, index).path();
        let corrupt = |why: &str| LedgerError::Corrupt(format!("{path} {why}"));
        let data = read_opt(&dir.join(&path))?.ok_or_else(|| corrupt("is missing"))?;
        if data.len() != TILE_WIDTH as usize * 32 {
            return Err(corrupt("is not a full hash tile"));
        }
        let bottom = data
            .chunks_exact(32)
            .map(|c| <[u8; 32]>::try_from(c).map(Hash))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt("is not a full hash tile"))?;
        let mut levels = vec![bottom];
        for j in 0..BAND {
            let up = levels[j]
                .chunks_exact(2)
                .map(|p| node_hash(p[0], p[1]))
                .collect();
            levels.push(up);
        }
        let above = self.node((tile_level + 1) * BAND, index, tiles)?;
        if above.is_none() || above.as_ref() != levels[BAND].first() {
            return Err(corrupt("does not hash to the tree"));
        }
        Ok(TileNodes {
            tile_level,
            index,
            levels,
        })
    }
}

/// What `tlog_tiles` reads hashes through. It keeps the error of a failed
/// tile read, which `tlog_tiles::Error` cannot carry.
struct Reader<'a> {
    tree: &'a Tree,
    failure: RefCell<Option<LedgerError>>,
}

impl HashReader for Reader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let mut tiles = Vec::new();
        indexes
            .iter()
            .map(|&i| {
                let (level, n) = split_stored_hash_index(i);
                match self.tree.node(usize::from(level), n, &mut tiles) {
                    Ok(Some(h)) => Ok(h),
                    Ok(None) => Err(tlog_tiles::Error::IndexesNotInTree),
                    Err(e) => {
                        self.failure.replace(Some(e));
                        Err(tlog_tiles::Error::IndexesNotInTree)
                    }
                }
            })
            .collect()
    }
}
