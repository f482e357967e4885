//! In-memory RFC 6962 Merkle tree: every complete subtree hash, by level.
//!
//! `levels[k][i]` is the Merkle Tree Hash of entries `[i·2^k, (i+1)·2^k)`.
//! These are exactly the "stored hashes" of Go's sumdb/tlog, so proofs and
//! roots come from `tlog_tiles` through a [`HashReader`], and tile contents
//! are slices of a level (tile level L = tree level 8·L). About two hashes
//! (64 bytes) per entry are kept in memory.

use tlog_tiles::{Hash, HashReader, node_hash, record_hash, split_stored_hash_index};

/// All complete-subtree hashes of a tree.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// Number of leaves.
    pub(crate) fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
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
                self.levels.push(Vec::new());
            }
            self.levels[k].push(h);
            let n = self.levels[k].len();
            if n % 2 == 1 {
                break;
            }
            h = node_hash(self.levels[k][n - 2], self.levels[k][n - 1]);
            k += 1;
        }
    }

    /// Hashes at a tree level in `[start, start+count)`, if all present.
    pub(crate) fn hashes(&self, level: usize, start: u64, count: u64) -> Option<&[Hash]> {
        let l = self.levels.get(level)?;
        let s = usize::try_from(start).ok()?;
        let e = s.checked_add(usize::try_from(count).ok()?)?;
        l.get(s..e)
    }

    /// The leaf hash at `index`.
    pub(crate) fn leaf(&self, index: u64) -> Option<Hash> {
        self.hashes(0, index, 1).map(|h| h[0])
    }

    /// Root of the tree of the first `size` leaves.
    pub(crate) fn root_at(&self, size: u64) -> Option<Hash> {
        if size > self.size() {
            return None;
        }
        tlog_tiles::tree_hash(size, self).ok()
    }

    /// Inclusion proof of leaf `index` in the tree of `size` leaves.
    pub(crate) fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        if index >= size || size > self.size() {
            return None;
        }
        tlog_tiles::prove_record(size, index, self).ok()
    }

    /// Consistency proof from `old` to `new` leaves; empty from the empty tree.
    pub(crate) fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<Hash>> {
        if old > new || new > self.size() {
            return None;
        }
        if old == 0 {
            // Every tree extends the empty tree; RFC 6962 defines no proof for it.
            return Some(Vec::new());
        }
        tlog_tiles::prove_tree(new, old, self).ok()
    }
}

impl HashReader for Tree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                let (level, n) = split_stored_hash_index(i);
                self.hashes(usize::from(level), n, 1)
                    .map(|h| h[0])
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}
