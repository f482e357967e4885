//! Crash-safe file primitives: every file except the append-only
//! write-ahead file (`wal.rs`) is written to `<name>.tmp`,
//! fsynced, and renamed over its real name; the directories whose entries
//! changed are fsynced once per batch. A crash therefore never leaves a
//! half-written file under a real name — at worst a `*.tmp` file, which
//! recovery deletes. The order in which the ledger uses these primitives is
//! documented at the top of `ledger.rs`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::LedgerError;

/// Suffix of temporary files; never a valid tlog-tiles path element.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// The directory containing `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// fsyncs a directory so that renames and creations in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LedgerError::io(dir, e))
}

/// Reads a file, mapping "not found" to `None`.
pub(crate) fn read_opt(path: &Path) -> Result<Option<Vec<u8>>, LedgerError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LedgerError::io(path, e)),
    }
}

/// Removes a file or directory tree, ignoring "not found".
pub(crate) fn remove_any(path: &Path) -> Result<(), LedgerError> {
    let r = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LedgerError::io(path, e)),
    }
}

/// A set of atomic file writes whose directory fsyncs are shared.
///
/// Each [`Batch::write`] makes its file's *contents* durable before the
/// rename; [`Batch::commit`] then makes all the renames (and any new
/// directories) durable with one fsync per touched directory.
pub(crate) struct Batch<'a> {
    root: &'a Path,
    dirty_dirs: BTreeSet<PathBuf>,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(root: &'a Path) -> Self {
        Batch {
            root,
            dirty_dirs: BTreeSet::new(),
        }
    }

    /// Creates the missing directories of `rel`'s parent, remembering whose
    /// entries changed.
    fn ensure_parent(&mut self, rel: &str) -> Result<PathBuf, LedgerError> {
        let mut dir = self.root.to_path_buf();
        let comps: Vec<&str> = rel.split('/').collect();
        for c in &comps[..comps.len() - 1] {
            let next = dir.join(c);
            match std::fs::create_dir(&next) {
                Ok(()) => {
                    self.dirty_dirs.insert(dir.clone());
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(LedgerError::io(&next, e)),
            }
            dir = next;
        }
        Ok(dir)
    }

    /// Writes `data` to `root/rel` via `rel.tmp` + fsync + rename.
    pub(crate) fn write(&mut self, rel: &str, data: &[u8]) -> Result<(), LedgerError> {
        let dir = self.ensure_parent(rel)?;
        let path = self.root.join(rel);
        let tmp = self.root.join(format!("{rel}{TMP_SUFFIX}"));
        let io = |e| LedgerError::io(&tmp, e);
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(data).map_err(io)?;
        f.sync_data().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(|e| LedgerError::io(&path, e))?;
        self.dirty_dirs.insert(dir);
        Ok(())
    }

    /// fsyncs every directory whose entries changed so far, so that later
    /// writes of this batch can never become durable before earlier ones.
    pub(crate) fn sync(&mut self) -> Result<(), LedgerError> {
        for d in std::mem::take(&mut self.dirty_dirs) {
            fsync_dir(&d)?;
        }
        Ok(())
    }

    /// fsyncs every directory whose entries changed.
    pub(crate) fn commit(mut self) -> Result<(), LedgerError> {
        self.sync()
    }
}

/// Deletes every `*.tmp` file under `dir` (left by a crash mid-write).
pub(crate) fn remove_tmp_files(dir: &Path) -> Result<(), LedgerError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(LedgerError::io(dir, e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| LedgerError::io(dir, e))?;
        let path = ent.path();
        let ft = ent.file_type().map_err(|e| LedgerError::io(&path, e))?;
        if ft.is_dir() {
            remove_tmp_files(&path)?;
        } else if ent.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            std::fs::remove_file(&path).map_err(|e| LedgerError::io(&path, e))?;
        }
    }
    Ok(())
}
