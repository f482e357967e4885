//! The master key and its on-disk file.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::CryptoError;

/// First line of a master key file; versioned so the format can evolve.
const HEADER: &str = "custos-master-key-v1\n";
/// A valid file is ~66 bytes; reading more than this means it is not ours,
/// and bounding the read keeps a wrong path (e.g. a huge file) cheap.
const MAX_FILE_LEN: u64 = 256;

/// The 32-byte root secret from which all Custos keys are derived.
///
/// It is wiped from memory on drop, and its `Debug` output never shows
/// the bytes. It is deliberately not `Clone`, so there is one copy.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    bytes: [u8; 32],
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// Wraps raw key bytes (for tests and for keys supplied by a KMS).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> MasterKey {
        MasterKey { bytes }
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Loads the master key from `path`, or creates a new random one there
    /// if no file exists. Returns the key and whether it was created.
    ///
    /// File format: `custos-master-key-v1\n<base64 of 32 bytes>\n`.
    /// A new file is created with mode 0600 (never overwriting an existing
    /// file) and fsynced together with its parent directory, so a crash
    /// cannot lose a key that data has already been encrypted under. A
    /// missing parent directory is created with mode 0700.
    ///
    /// # Errors
    ///
    /// [`CryptoError::KeyFile`] if the file cannot be read or created, is
    /// not a regular file, is readable or writable by group or others
    /// (mode & 0o077 != 0), or is malformed.
    pub fn load_or_create(path: &Path) -> Result<(MasterKey, bool), CryptoError> {
        match OpenOptions::new().read(true).open(path) {
            Ok(file) => Ok((load(path, file)?, false)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => match create(path) {
                Ok(key) => Ok((key, true)),
                // Another process created it between our open and create_new:
                // use theirs rather than failing or overwriting.
                Err(CreateError::Exists) => {
                    let file = File::open(path)
                        .map_err(|e| CryptoError::key_file(path, format!("cannot open: {e}")))?;
                    Ok((load(path, file)?, false))
                }
                Err(CreateError::Other(e)) => Err(e),
            },
            Err(err) => Err(CryptoError::key_file(path, format!("cannot open: {err}"))),
        }
    }
}

fn load(path: &Path, file: File) -> Result<MasterKey, CryptoError> {
    // Check the opened file descriptor, not the path, so the file we check is
    // the file we read.
    let meta = file
        .metadata()
        .map_err(|e| CryptoError::key_file(path, format!("cannot stat: {e}")))?;
    if !meta.is_file() {
        return Err(CryptoError::key_file(path, "not a regular file"));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(CryptoError::key_file(
            path,
            format!(
                "permissions {:04o} allow group/other access; run chmod 600",
                mode & 0o7777
            ),
        ));
    }

    let mut contents = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut contents)
        .map_err(|e| CryptoError::key_file(path, format!("cannot read: {e}")))?;
    parse(&contents).ok_or_else(|| CryptoError::key_file(path, "malformed key file"))
}

/// Parses the file contents; `None` for anything that is not exactly a
/// header line followed by one base64 line encoding 32 bytes.
fn parse(contents: &[u8]) -> Option<MasterKey> {
    if contents.len() as u64 > MAX_FILE_LEN {
        return None;
    }
    let rest = contents.strip_prefix(HEADER.as_bytes())?;
    // Tolerate a missing final newline or a CRLF (files edited by hand),
    // but nothing else after the key line.
    let line = rest.strip_suffix(b"\n").unwrap_or(rest);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let decoded = Zeroizing::new(STANDARD.decode(line).ok()?);
    let bytes: [u8; 32] = decoded.as_slice().try_into().ok()?;
    Some(MasterKey { bytes })
}

enum CreateError {
    Exists,
    Other(CryptoError),
}

fn create(path: &Path) -> Result<MasterKey, CreateError> {
    let fail = |what: &str, e: io::Error| {
        CreateError::Other(CryptoError::key_file(path, format!("{what}: {e}")))
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| fail("cannot create parent directory", e))?;
    }

    let key = MasterKey::from_bytes(crate::random_bytes());
    let mut contents = Zeroizing::new(String::with_capacity(80));
    contents.push_str(HEADER);
    contents.push_str(&Zeroizing::new(STANDARD.encode(key.bytes)));
    contents.push('\n');

    // create_new: never clobber an existing key (that would orphan every
    // ciphertext encrypted under it). Mode 0600 is applied at creation so
    // there is no window in which the file is readable by others.
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(CreateError::Exists),
        Err(e) => return Err(fail("cannot create", e)),
    };
    if let Err(e) = file
        .write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
    {
        // Leave no half-written key file behind: it would be refused as
        // malformed on every later start. Best effort; the write error is
        // the one worth reporting.
        drop(file);
        let _ = fs::remove_file(path);
        return Err(fail("cannot write", e));
    }
    drop(file);
    // fsync the directory so the new directory entry itself is durable.
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail("cannot sync parent directory", e))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_0600_and_reloads_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let (k1, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(mode_of(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER));
        assert!(text.ends_with('\n'));
        assert_eq!(text.lines().count(), 2);

        let (k2, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1.as_bytes(), k2.as_bytes());
    }

    #[test]
    fn creates_missing_parent_dir() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/master.key");
        let (_, created) = MasterKey::load_or_create(&path).unwrap();
        assert!(created);
        assert_eq!(mode_of(&dir.path().join("a/b")), 0o700);
    }

    #[test]
    fn refuses_group_or_other_access() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        MasterKey::load_or_create(&path).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert_eq!(err.code(), "key_file");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
        // 0400 (read-only for owner) is fine.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(MasterKey::load_or_create(&path).is_ok());
    }

    fn write_0600(path: &Path, contents: &[u8]) {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .unwrap();
        f.write_all(contents).unwrap();
    }

    #[test]
    fn refuses_malformed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let good_b64 = STANDARD.encode([7u8; 32]);
        let cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"garbage\n".to_vec(),
            format!("custos-master-key-v2\n{good_b64}\n").into_bytes(),
            format!("custos-master-key-v1\n{}\n", STANDARD.encode([7u8; 31])).into_bytes(),
            format!("custos-master-key-v1\n{}\n", STANDARD.encode([7u8; 33])).into_bytes(),
            b"custos-master-key-v1\nnot base64!!\n".to_vec(),
            format!("custos-master-key-v1\n{good_b64}\nextra\n").into_bytes(),
            format!("custos-master-key-v1\n {good_b64}\n").into_bytes(),
            vec![b'a'; 10_000],
        ];
        for contents in cases {
            write_0600(&path, &contents);
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert_eq!(err.code(), "key_file");
            assert!(!err.to_string().contains(&good_b64));
        }
        // Sanity: the well-formed variant (and lenient line endings) load.
        for contents in [
            format!("custos-master-key-v1\n{good_b64}\n"),
            format!("custos-master-key-v1\n{good_b64}"),
            format!("custos-master-key-v1\n{good_b64}\r\n"),
        ] {
            write_0600(&path, contents.as_bytes());
            let (k, created) = MasterKey::load_or_create(&path).unwrap();
            assert!(!created);
            assert_eq!(k.as_bytes(), &[7u8; 32]);
        }
    }

    #[test]
    fn refuses_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keydir");
        fs::DirBuilder::new().mode(0o700).create(&path).unwrap();
        let err = MasterKey::load_or_create(&path).unwrap_err();
        assert_eq!(err.code(), "key_file");
    }

    #[test]
    fn debug_is_redacted() {
        let k = MasterKey::from_bytes([0xAB; 32]);
        assert_eq!(format!("{k:?}"), "MasterKey(..)");
    }
}
