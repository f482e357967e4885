//! A damaged level-1 hash tile (`tile/1/000`, tree levels 8–15 of the first
//! 65,536 entries, read back from disk once a checkpoint covers them) is
//! refused wherever one of its nodes is needed, cut or altered, and the next
//! `open` rewrites it from the entries.

mod common;

use common::*;
use custos_ledger::LedgerError;

const N: u64 = 65_536 + 300;

#[test]
fn damaged_level_1_tile_is_refused_then_rewritten_at_open() {
    let f = Fixture::new();
    let mut l = f.open();
    for (t, stop) in [40_000, N].into_iter().enumerate() {
        let from = l.size();
        fill(&mut l, from, stop);
        l.publish_checkpoint(t as u64 + 1).unwrap().unwrap();
    }
    let leaves: Vec<H> = (0..N).map(|i| leaf(&entry(i))).collect();
    let root = mth(&leaves);
    let tile = f.path("tile/1/000");
    let good = std::fs::read(&tile).unwrap();
    assert_eq!(good.len(), 256 * 32);
    let mut flipped = good.clone();
    flipped[100 * 32 + 7] ^= 1;
    let code = |r: Result<Vec<[u8; 32]>, LedgerError>| r.unwrap_err().code();
    for damage in [flipped, good[..good.len() - 1].to_vec()] {
        write(&tile, &damage);
        // Level-8..15 siblings, or a level-0 tile checked against level 8.
        assert_eq!(code(l.inclusion_proof(0, N)), "ledger_corrupt");
        assert_eq!(code(l.inclusion_proof(30_000, 40_000)), "ledger_corrupt");
        assert_eq!(code(l.consistency_proof(40_000, N)), "ledger_corrupt");
        assert_eq!(l.root_at(40_000).unwrap_err().code(), "ledger_corrupt");
        assert_eq!(l.entry(5).unwrap_err().code(), "ledger_corrupt");
        // Only the right edge and the root of the first 65,536 entries.
        let p = l.inclusion_proof(N - 1, N).unwrap();
        assert!(verify_inclusion(N - 1, N, leaves[N as usize - 1], &p, root));
        assert_eq!(l.root_at(N).unwrap(), root);
    }
    drop(l);
    let l = f.open();
    assert_eq!(std::fs::read(&tile).unwrap(), good);
    for (index, size) in [(0, N), (30_000, 40_000), (65_535, 65_536)] {
        let p = l.inclusion_proof(index, size).unwrap();
        let r = mth(&leaves[..size as usize]);
        assert!(verify_inclusion(index, size, leaves[index as usize], &p, r));
    }
    let old = mth(&leaves[..40_000]);
    let p = l.consistency_proof(40_000, N).unwrap();
    assert!(verify_consistency(40_000, N, old, root, &p));
    assert_eq!(l.entry(5).unwrap(), Some(entry(5)));
}
