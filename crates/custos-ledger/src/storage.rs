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

/// How many threads fsync a batch's files at once. A checkpoint writes dozens of
/// bundles and tiles; one after the other, each waits for its own journal commit and
/// the writer thread stalls appends for tens of milliseconds (BENCHMARKS.md, protected
/// lookups). Waiting together, the file system commits them in a few journal commits.
const SYNC_THREADS: usize = 8;

/// A set of atomic file writes whose fsyncs are done together.
///
/// [`Batch::write`] writes a file's contents under its temporary name;
/// [`Batch::sync`] (and [`Batch::commit`]) make the contents of every file written so
/// far durable, *then* rename each over its real name, then make the renames (and any
/// new directories) durable with one fsync per touched directory. So no file appears
/// under its real name before its contents are durable, and nothing of a later `sync`
/// can become durable before what an earlier one made durable.
pub(crate) struct Batch<'a> {
    root: &'a Path,
    /// Written, not yet durable or renamed: (temporary path, real path, open file).
    pending: Vec<(PathBuf, PathBuf, File)>,
    dirty_dirs: BTreeSet<PathBuf>,
}

impl<'a> Batch<'a> {
    pub(crate) fn new(root: &'a Path) -> Self {
        Batch {
            root,
            pending: Vec::new(),
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

    /// Writes `data` to `root/rel.tmp`; the next [`Batch::sync`] makes it durable and
    /// renames it to `root/rel`.
    pub(crate) fn write(&mut self, rel: &str, data: &[u8]) -> Result<(), LedgerError> {
        let dir = self.ensure_parent(rel)?;
        let path = self.root.join(rel);
        let tmp = self.root.join(format!("{rel}{TMP_SUFFIX}"));
        let mut f = File::create(&tmp).map_err(|e| LedgerError::io(&tmp, e))?;
        f.write_all(data).map_err(|e| LedgerError::io(&tmp, e))?;
        self.pending.push((tmp, path, f));
        self.dirty_dirs.insert(dir);
        Ok(())
    }

    /// Makes every file written so far durable and renamed, and every directory whose
    /// entries changed durable, so that later writes of this batch can never become
    /// durable before earlier ones. On an error nothing more is renamed; what was
    /// written stays under temporary names (recovery deletes those).
    pub(crate) fn sync(&mut self) -> Result<(), LedgerError> {
        let pending = std::mem::take(&mut self.pending);
        sync_files(&pending)?;
        for (tmp, path, file) in pending {
            drop(file);
            std::fs::rename(&tmp, &path).map_err(|e| LedgerError::io(&path, e))?;
        }
        for d in std::mem::take(&mut self.dirty_dirs) {
            fsync_dir(&d)?;
        }
        Ok(())
    }

    /// [`Batch::sync`], for the end of the batch.
    pub(crate) fn commit(mut self) -> Result<(), LedgerError> {
        self.sync()
    }
}

/// `sync_data` of every file, up to [`SYNC_THREADS`] at once; the first error.
fn sync_files(files: &[(PathBuf, PathBuf, File)]) -> Result<(), LedgerError> {
    let sync = |group: &[(PathBuf, PathBuf, File)]| {
        group
            .iter()
            .try_for_each(|(tmp, _, f)| f.sync_data().map_err(|e| LedgerError::io(tmp, e)))
    };
    if files.len() <= 1 {
        return sync(files);
    }
    let per_thread = files.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let threads: Vec<_> = files
            .chunks(per_thread)
            .map(|group| scope.spawn(move || sync(group)))
            .collect();
        threads.into_iter().try_for_each(|t| {
            t.join().unwrap_or_else(|_| {
                Err(LedgerError::io(
                    &files[0].0,
                    std::io::Error::other("a file sync thread panicked"),
                ))
            })
        })
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A written file is under its temporary name only until `sync`; after it, every
    /// file of the batch is under its real name with its contents, new directories
    /// included, and no temporary file is left.
    #[test]
    fn files_appear_under_their_names_only_at_sync() {
        let dir = tempfile::tempdir().unwrap();
        let mut batch = Batch::new(dir.path());
        let names: Vec<String> = (0..20).map(|i| format!("tile/0/{i:03}")).collect();
        for (i, name) in names.iter().enumerate() {
            batch.write(name, &[i as u8; 64]).unwrap();
        }
        assert!(!dir.path().join(&names[0]).exists());
        assert!(
            dir.path()
                .join(format!("{}{TMP_SUFFIX}", names[0]))
                .exists()
        );
        batch.write("checkpoint", b"note").unwrap();
        batch.commit().unwrap();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(std::fs::read(dir.path().join(name)).unwrap(), [i as u8; 64]);
            assert!(!dir.path().join(format!("{name}{TMP_SUFFIX}")).exists());
        }
        assert_eq!(
            std::fs::read(dir.path().join("checkpoint")).unwrap(),
            b"note"
        );
    }
}
