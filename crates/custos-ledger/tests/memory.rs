//! The ledger's memory is bounded: the low tree levels (0–7) of the level-0
//! hash tiles a checkpoint covers are read back from `tile/0/<N>` instead of
//! being kept, and a damaged tile is refused rather than trusted.

mod common;

use common::*;
use custos_ledger::Ledger;

/// Appends `from..to` in batches of varying size, signing a checkpoint after
/// each batch.
fn fill_published(l: &mut Ledger, from: u64, to: u64, t: &mut u64) {
    fill_batches(
        l,
        from,
        to,
        |b| b * 7 % 173 + 1,
        |l| {
            *t += 1;
            l.publish_checkpoint(*t).unwrap().unwrap();
        },
    );
}

/// Inclusion proofs of the first, a middle and the last entry, and
/// consistency proofs from old sizes, verified independently.
fn check_proofs(l: &Ledger, leaves: &[H]) {
    let size = leaves.len() as u64;
    let root = mth(leaves);
    assert_eq!(l.root_at(size).unwrap(), root);
    for index in [0, 1, 255, 256, size / 2, size - 257, size - 1] {
        let p = l.inclusion_proof(index, size).unwrap();
        assert!(
            verify_inclusion(index, size, leaves[index as usize], &p, root),
            "inclusion of {index} in {size}"
        );
    }
    for old in [1, 7, 255, 256, 1000, 2501, size / 2, size - 1] {
        let old_root = mth(&leaves[..old as usize]);
        assert_eq!(l.root_at(old).unwrap(), old_root, "root at {old}");
        let p = l.consistency_proof(old, size).unwrap();
        assert!(
            verify_consistency(old, size, old_root, root, &p),
            "consistency {old} -> {size}"
        );
        let p = l.inclusion_proof(old - 1, old).unwrap();
        assert!(verify_inclusion(
            old - 1,
            old,
            leaves[old as usize - 1],
            &p,
            old_root
        ));
    }
}

/// A generous bound on the hashes a tree of `size` entries with `unpublished`
/// entries past the last full tile of its checkpoint may keep: two per such
/// entry and per entry of the last partial tile, plus 1/128 per entry (the
/// levels ≥ 8, which are read back too once a level-1 tile is full).
fn bound(size: u64, unpublished: u64) -> usize {
    (2 * (unpublished + 256) + size / 64 + 64) as usize
}

// Several thousand entries across many checkpoints keep only the right edge of
// the low levels in memory (the whole tree used to stay: two hashes per entry),
// and every proof still verifies, old entries and old sizes included, before
// and after a reopen, and with entries not yet under a checkpoint.
#[test]
fn memory_stays_bounded_and_old_proofs_verify() {
    const N: u64 = 6_000;
    let f = Fixture::new();
    let mut l = f.open();
    let mut t = 0;
    fill_published(&mut l, 0, N, &mut t);
    let leaves: Vec<H> = (0..N + 300).map(|i| leaf(&entry(i))).collect();
    let held = l.tree_hashes_in_memory();
    assert!(
        held <= bound(N, 0),
        "{held} hashes in memory for {N} entries"
    );
    assert!(
        held < N as usize / 8,
        "{held} hashes in memory for {N} entries"
    );
    check_proofs(&l, &leaves[..N as usize]);

    // Entries only in the WAL stay in memory until the next checkpoint.
    fill(&mut l, N, N + 300);
    assert!(l.tree_hashes_in_memory() <= bound(N + 300, 300));
    check_proofs(&l, &leaves);
    t += 1;
    l.publish_checkpoint(t).unwrap().unwrap();
    assert!(l.tree_hashes_in_memory() <= bound(N + 300, 0));
    check_proofs(&l, &leaves);
    drop(l);

    // Opening reads the low levels back from the tiles, not into memory.
    let l = f.open();
    assert!(l.tree_hashes_in_memory() <= bound(N + 300, 0));
    check_proofs(&l, &leaves);
    let got = l.entries(0, 600).unwrap();
    assert_eq!(got.len(), 600);
    assert!(got.iter().all(|(i, e)| *e == entry(*i)));
}

// A published level-0 hash tile that is damaged on disk (a byte flipped, cut
// short, deleted) makes the proofs that need it fail with `ledger_corrupt`,
// never panic or return a wrong proof; proofs that do not need it still
// work, and reopening rewrites the tile from the entries.
#[test]
fn damaged_hash_tile_refuses_the_proofs_that_need_it() {
    let f = Fixture::new();
    let mut l = f.open();
    let mut t = 0;
    fill_published(&mut l, 0, 1000, &mut t);
    let leaves: Vec<H> = (0..1000).map(|i| leaf(&entry(i))).collect();
    let root = mth(&leaves);
    let tile1 = f.path("tile/0/001");
    let good = std::fs::read(&tile1).unwrap();
    assert_eq!(good.len(), 256 * 32);

    let mut flipped = good.clone();
    flipped[40 * 32 + 5] ^= 0x10;
    let mut damages = vec![Some(flipped), Some(good[..good.len() - 32].to_vec())];
    damages.push(Some(Vec::new()));
    damages.push(None);
    for damage in damages {
        match &damage {
            Some(d) => write(&tile1, d),
            None => std::fs::remove_file(&tile1).unwrap(),
        }
        // Entry 300 lies in tile 1 (entries 256..512).
        let code = |r: Result<Vec<[u8; 32]>, custos_ledger::LedgerError>| r.unwrap_err().code();
        assert_eq!(code(l.inclusion_proof(300, 1000)), "ledger_corrupt");
        assert_eq!(code(l.inclusion_proof(0, 300)), "ledger_corrupt");
        assert_eq!(code(l.consistency_proof(300, 1000)), "ledger_corrupt");
        assert_eq!(l.root_at(300).unwrap_err().code(), "ledger_corrupt");
        assert_eq!(l.entry(296).unwrap_err().code(), "ledger_corrupt");
        // Tile 1's own subtree hash is in memory: these do not read it.
        for index in [0, 255, 600, 999] {
            let p = l.inclusion_proof(index, 1000).unwrap();
            assert!(verify_inclusion(
                index,
                1000,
                leaves[index as usize],
                &p,
                root
            ));
        }
        assert_eq!(l.root_at(512).unwrap(), mth(&leaves[..512]));
    }

    // Reopening compares the tiles with the entries and rewrites the bad one.
    drop(l);
    let l = f.open();
    assert_eq!(std::fs::read(&tile1).unwrap(), good);
    let p = l.inclusion_proof(300, 1000).unwrap();
    assert!(verify_inclusion(300, 1000, leaves[300], &p, root));
}

// Past the first full level-1 tile (65,536 entries) the level-8 nodes it
// holds are read back too: memory stays at the right edge of every tile
// level, and a damaged level-1 tile is refused like a level-0 one.
#[test]
fn memory_stays_at_the_right_edge_across_tile_levels() {
    const N: u64 = 70_000;
    let f = Fixture::new();
    let mut l = f.open();
    let leaves: Vec<H> = (0..N).map(|i| leaf(&entry(i))).collect();
    for (t, from) in (0..N).step_by(5_000).enumerate() {
        let batch: Vec<Vec<u8>> = (from..(from + 5_000).min(N)).map(entry).collect();
        l.append(&batch).unwrap();
        l.publish_checkpoint(t as u64 + 1).unwrap().unwrap();
    }
    // Right edge: 112 leaves of the last partial tile and their parents,
    // 17 level-8 nodes past tile/1/000 and their parents, one at level 16.
    let held = l.tree_hashes_in_memory();
    assert!(held <= 2 * 112 + 2 * 17 + 16, "{held} hashes in memory");
    check_proofs(&l, &leaves);
    drop(l);
    let l = f.open();
    assert_eq!(l.tree_hashes_in_memory(), held);
    check_proofs(&l, &leaves);

    let tile = f.path("tile/1/000");
    let mut data = std::fs::read(&tile).unwrap();
    data[100] ^= 1;
    write(&tile, &data);
    let root = mth(&leaves);
    assert_eq!(
        l.inclusion_proof(0, N).unwrap_err().code(),
        "ledger_corrupt"
    );
    assert_eq!(
        l.consistency_proof(1000, N).unwrap_err().code(),
        "ledger_corrupt"
    );
    let p = l.inclusion_proof(N - 1, N).unwrap();
    assert!(verify_inclusion(N - 1, N, leaves[N as usize - 1], &p, root));
}
