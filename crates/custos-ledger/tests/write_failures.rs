//! Failed writes on a real full filesystem: the ledger directory is a small tmpfs
//! (mounting needs root; elsewhere each test prints why it checks nothing).
//!
//! Checked: a refused `append` acknowledges nothing and leaves the write-ahead file at
//! its durable length; the ledger keeps refusing while the disk is full; once space
//! returns it resumes by itself (no reopen) at the index the refused batch would have
//! had, no refused entry ever reaches a checkpoint, and the directory verifies, also
//! after reopening.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use custos_ledger::{DirSource, Ledger, verify};

/// A tmpfs mounted on a directory for the life of the value.
struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` on `at` (created), or says why not.
    fn mount(at: &Path, bytes: u64) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(at)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { at: at.to_owned() }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// Fills the filesystem holding `path` until it refuses any more bytes.
fn fill_up(path: &Path) -> std::fs::File {
    let mut file = std::fs::File::create(path).unwrap();
    for size in [64 * 1024, 4096, 1] {
        let chunk = vec![0xA5u8; size];
        while file.write_all(&chunk).is_ok() {}
    }
    file
}

fn wal_len(f: &Fixture) -> u64 {
    std::fs::metadata(f.path("wal")).unwrap().len()
}

/// Entries no acknowledged entry equals: a batch of 16 entries of 900 bytes, so that its
/// frame spans pages and a full disk cuts it part-way.
fn refused_batch(round: u64) -> Vec<Vec<u8>> {
    (0..16)
        .map(|i| {
            let mut e = format!("refused-{round}-{i}:").into_bytes();
            e.resize(900, b'r');
            e
        })
        .collect()
}

fn verify_dir(f: &Fixture, l: &Ledger) {
    verify(&DirSource::new(f.dir()), &l.verifier_key(), None).unwrap();
}

#[test]
fn a_full_disk_refuses_appends_and_the_ledger_resumes_when_space_returns() {
    let f = Fixture::new();
    let Some(_fs) = Tmpfs::mount(&f.dir(), 1 << 20) else {
        return;
    };
    let mut l = f.open();
    fill(&mut l, 0, 300);
    l.publish_checkpoint(1).unwrap();
    fill(&mut l, 300, 320); // durable in the WAL only
    let published = l.checkpoint().unwrap();

    let filler = f.dir().join("filler");
    let file = fill_up(&filler);
    // The WAL's last page may still have room for a few entries; a batch spanning pages
    // cannot fit. Bounded: the first refused batch comes within a page or two.
    let mut next = 320;
    let (refused_at, before) = loop {
        let before = wal_len(&f);
        let batch = refused_batch(next);
        match l.append(&batch) {
            Ok(first) => {
                assert_eq!(first, next);
                next += batch.len() as u64;
                assert!(next < 320 + 16 * 8, "a full disk never refused an append");
            }
            Err(e) => {
                assert_eq!(e.code(), "ledger_io", "{e}");
                break (next, before);
            }
        }
    };
    assert_eq!(
        l.size(),
        refused_at,
        "nothing of a refused batch is counted"
    );
    assert_eq!(
        wal_len(&f),
        before,
        "the refused frame is cut off the write-ahead file"
    );
    assert!(!l.is_unsettled());

    // While the disk stays full: every append and publish is refused, nothing changes.
    for round in 1..4 {
        let e = l.append(&refused_batch(1000 + round)).unwrap_err();
        assert_eq!(e.code(), "ledger_io", "{e}");
        assert_eq!(l.size(), refused_at);
        assert_eq!(wal_len(&f), before);
    }
    let e = l.publish_checkpoint(2).unwrap_err();
    assert_eq!(e.code(), "ledger_io", "{e}");
    assert_eq!(
        l.checkpoint().unwrap(),
        published,
        "no checkpoint was signed"
    );
    let e = l.append(&refused_batch(2000)).unwrap_err();
    assert_eq!(e.code(), "ledger_io", "{e}");

    // Space returns: the same ledger value writes again, at the refused index.
    drop(file);
    std::fs::remove_file(&filler).unwrap();
    let resumed: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("resumed-{i}").into_bytes())
        .collect();
    assert_eq!(l.append(&resumed).unwrap(), refused_at);
    assert!(l.publish_checkpoint(3).unwrap().is_some());
    assert_eq!(l.checkpoint_size(), refused_at + 5);
    assert_eq!(l.entry(refused_at).unwrap().unwrap(), resumed[0]);
    verify_dir(&f, &l);
    drop(l);

    // After a reopen: the same history, and no refused entry anywhere in it.
    let l = f.open();
    assert_eq!(l.size(), refused_at + 5);
    let all = l.entries(0, usize::MAX).unwrap();
    assert_eq!(all.len() as u64, refused_at + 5, "no gap in the indexes");
    for (i, e) in &all {
        assert!(!e.starts_with(b"refused-"), "refused entry at index {i}");
    }
    for (i, e) in all.iter().take(320) {
        assert_eq!(e, &entry(*i));
    }
    let tail: Vec<Vec<u8>> = all[refused_at as usize..]
        .iter()
        .map(|(_, e)| e.clone())
        .collect();
    assert_eq!(tail, resumed);
    verify_dir(&f, &l);
}

/// A ledger closed while the disk is full (e.g. the server stopped) opens again and
/// holds exactly what was acknowledged.
#[test]
fn a_ledger_closed_during_refusals_reopens_with_what_was_acknowledged() {
    let f = Fixture::new();
    let Some(_fs) = Tmpfs::mount(&f.dir(), 1 << 20) else {
        return;
    };
    let mut l = f.open();
    fill(&mut l, 0, 40);
    l.publish_checkpoint(1).unwrap();
    let filler = f.dir().join("filler");
    let file = fill_up(&filler);
    let mut acknowledged = 40;
    for round in 0..8 {
        if let Ok(first) = l.append(&refused_batch(round)) {
            assert_eq!(first, acknowledged);
            acknowledged += 16;
        }
    }
    assert!(l.append(&refused_batch(99)).is_err());
    drop(l);
    let mut l = f.open();
    assert_eq!(l.size(), acknowledged);
    drop(file);
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(l.append(&[b"after".to_vec()]).unwrap(), acknowledged);
    l.publish_checkpoint(2).unwrap();
    verify_dir(&f, &l);
}
