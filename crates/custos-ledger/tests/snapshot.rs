//! Copies of a ledger taken beside its writer (`durable_size`, `copy_at_checkpoint`):
//! while another thread appends and publishes checkpoints, every copy covers at least
//! what was durable when it started, verifies, and opens as a ledger whose entries are
//! the writer's; a copy that cannot get a covering checkpoint in time is refused and
//! leaves nothing under a real name.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use custos_ledger::{DirSource, Ledger, copy_at_checkpoint, durable_size, verify};

#[test]
fn copies_taken_while_the_writer_appends_cover_what_was_durable_and_verify() {
    let f = Fixture::new();
    let mut ledger = f.open();
    fill(&mut ledger, 0, 300);
    ledger.publish_checkpoint(1).unwrap();
    let verifier = ledger.verifier_key();
    let stop = AtomicBool::new(false);
    let copies = tempfile::tempdir().unwrap();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut next = 300;
            let mut now = 2;
            while !stop.load(Ordering::SeqCst) {
                fill(&mut ledger, next, next + 37);
                next += 37;
                if next % 3 == 0 {
                    ledger.publish_checkpoint(now).unwrap();
                    now += 1;
                }
            }
            // The last checkpoint, as a stopping server signs one.
            ledger.publish_checkpoint(now).unwrap();
            ledger
        });
        for n in 0..8 {
            let needed = durable_size(&f.dir()).unwrap();
            let out = copies.path().join(format!("copy-{n}"));
            let copy =
                copy_at_checkpoint(&f.dir(), &out, needed, Duration::from_secs(10), 0).unwrap();
            assert!(copy.size >= needed, "copy {n}: {} < {needed}", copy.size);
            let report = verify(&DirSource::new(&out), &verifier, None).unwrap();
            assert_eq!((report.size, report.root), (copy.size, copy.root));
        }
        stop.store(true, Ordering::SeqCst);
        let ledger = writer.join().unwrap();
        // Each copy opens as a ledger holding the writer's entries.
        for n in 0..8 {
            let out = copies.path().join(format!("copy-{n}"));
            let copy = Ledger::open(&out, ORIGIN, f.key()).unwrap();
            assert_eq!(copy.size(), copy.checkpoint_size());
            let size = copy.size();
            assert_eq!(copy.root_at(size).unwrap(), ledger.root_at(size).unwrap());
            assert_eq!(copy.entries(size - 1, 1).unwrap()[0].1, entry(size - 1));
        }
    });
}

#[test]
fn a_copy_without_a_covering_checkpoint_is_refused() {
    let f = Fixture::new();
    let mut ledger = f.open();
    fill(&mut ledger, 0, 10);
    ledger.publish_checkpoint(1).unwrap();
    fill(&mut ledger, 10, 20);
    // The entries past the checkpoint are durable in the write-ahead file only.
    assert_eq!(durable_size(&f.dir()).unwrap(), 20);
    let out = f.tmp.path().join("copy");
    let e = copy_at_checkpoint(&f.dir(), &out, 20, Duration::from_millis(200), 0).unwrap_err();
    assert_eq!(e.code(), "checkpoint_behind");
    assert!(!out.join("checkpoint").exists());
}
