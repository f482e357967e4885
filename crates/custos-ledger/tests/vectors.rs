//! Published known-answer vectors, checked against the crate's `Ledger`.
//!
//! RFC 6962 §2.1 (Merkle Tree Hash), §2.1.1 (audit paths) and §2.1.2
//! (consistency proofs) vectors come from the Certificate Transparency
//! reference implementation and its Go successors. They are copied verbatim
//! (hex) from:
//!
//! * google/certificate-transparency, `cpp/merkletree/merkle_tree_test.cc`
//!   (commit 0e901cacd1388fa16f78b184612f6cd16e5ceec1): `kInputs`,
//!   `kSHA256EmptyTreeHash`, `kSHA256Roots`, `kSHA256Paths`, `kSHA256Proofs`;
//! * transparency-dev/merkle, `proof/verify_test.go`
//!   (commit 02194e9afb6c1d95b5381350007963aa70fff472): the same vectors plus
//!   the extra consistency proof 6 → 7;
//! * google/trillian, `merkle/testonly/constants.go`
//!   (commit 54870a44b0531d1bad40b7a1a1f926253e41be56): `NodeHashes()`, the
//!   hashes of every complete subtree of the same 8-leaf tree (level 0 = the
//!   leaf hashes, which C2SP tlog-tiles stores as the level-0 tile).
//!
//! The C2SP tlog-tiles examples ("Merkle Tree", "Partial Tiles") are checked
//! end to end on real files at the end of this file.

mod common;

use common::*;
use custos_ledger::{DirSource, check_proof_for_entry, verify};

fn h(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// `kInputs` (google/certificate-transparency merkle_tree_test.cc).
const INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// `kSHA256EmptyTreeHash`: SHA-256 of the empty string.
const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// `kSHA256Roots`: `ROOTS[i]` is the root of the tree of the first `i + 1` inputs.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// `kSHA256Paths`: (leaf, snapshot, path). As in the source, `leaf` is
/// 1-based (the C++ and Go tests call `VerifyPath(leaf - 1 …)` /
/// `PathToRootAtSnapshot(leaf, …)` with 1-based leaves); `(0, 0)` is the
/// invalid request with an empty answer.
const PATHS: [(u64, u64, &[&str]); 6] = [
    (0, 0, &[]),
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// `kSHA256Proofs` (snapshot1, snapshot2, proof), followed by the 6 → 7
/// proof that transparency-dev/merkle `proof/verify_test.go` adds.
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// google/trillian `merkle/testonly/constants.go` `NodeHashes()[0]`: the leaf
/// hashes of the 8 inputs.
const LEAF_HASHES: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
];

fn inputs() -> Vec<Vec<u8>> {
    INPUTS.iter().map(|s| hex::decode(s).unwrap()).collect()
}

fn hashes(v: &[&str]) -> Vec<[u8; 32]> {
    v.iter().map(|s| h(s)).collect()
}

// RFC 6962 §2.1: the Merkle Tree Hash of every prefix of the reference tree,
// built one leaf per `append` (CT `RootTestVectors`, "tree1"), equals the
// published roots; the root of the empty tree is SHA-256("").
#[test]
fn ct_reference_roots_incremental() {
    let f = Fixture::new();
    let mut l = f.open();
    assert_eq!(l.root_at(0).unwrap(), h(EMPTY_ROOT));
    for (i, input) in inputs().into_iter().enumerate() {
        assert_eq!(l.append(&[input]).unwrap(), i as u64);
        for (j, root) in ROOTS.iter().enumerate().take(i + 1) {
            assert_eq!(
                l.root_at(j as u64 + 1).unwrap(),
                h(root),
                "root of size {} after {} appends",
                j + 1,
                i + 1
            );
        }
        assert_eq!(l.root_at(i as u64 + 2).unwrap_err().code(), "out_of_range");
    }
}

// RFC 6962 §2.1: same roots when the tree is built in one batch and in two
// chunks of 3 + 5 (CT `RootTestVectors`, "tree2" and "tree3"), also after a
// reopen (the tree recomputed from the entry bundles on disk).
#[test]
fn ct_reference_roots_batched_and_after_reopen() {
    for split in [8usize, 3] {
        let f = Fixture::new();
        {
            let mut l = f.open();
            let all = inputs();
            l.append(&all[..split]).unwrap();
            assert_eq!(l.root_at(split as u64).unwrap(), h(ROOTS[split - 1]));
            l.append(&all[split..]).unwrap();
        }
        let l = f.open();
        assert_eq!(l.size(), 8);
        assert_eq!(l.root_at(0).unwrap(), h(EMPTY_ROOT));
        for n in 1..=8u64 {
            assert_eq!(l.root_at(n).unwrap(), h(ROOTS[n as usize - 1]), "size {n}");
        }
    }
}

// RFC 6962 §2.1.1: audit paths (CT `PathTestVectors`). The crate's
// `inclusion_proof` takes a 0-based index, the vectors a 1-based leaf.
#[test]
fn ct_reference_inclusion_proofs() {
    let f = Fixture::new();
    let mut l = f.open();
    l.append(&inputs()).unwrap();
    for &(leaf, size, path) in &PATHS {
        if leaf == 0 {
            // (0, 0): no leaf in the empty tree; the reference returns an
            // empty path, the crate refuses.
            assert_eq!(
                l.inclusion_proof(0, size).unwrap_err().code(),
                "out_of_range"
            );
            continue;
        }
        let index = leaf - 1;
        let got = l.inclusion_proof(index, size).unwrap();
        assert_eq!(
            got,
            hashes(path),
            "leaf {leaf} (index {index}) in tree {size}"
        );
        // And the published path verifies with the independent verifier.
        let root = h(ROOTS[size as usize - 1]);
        let leaf_hash = common::leaf(&inputs()[index as usize]);
        assert!(verify_inclusion(
            index,
            size,
            leaf_hash,
            &hashes(path),
            root
        ));
    }
    // CT `PathToCurrentRoot(9)` is empty: no 9th leaf.
    assert_eq!(l.inclusion_proof(8, 8).unwrap_err().code(), "out_of_range");
    assert_eq!(l.inclusion_proof(0, 9).unwrap_err().code(), "out_of_range");
}

// RFC 6962 §2.1.2: consistency proofs (CT `ConsistencyTestVectors` and
// transparency-dev/merkle's extra 6 → 7).
#[test]
fn ct_reference_consistency_proofs() {
    let f = Fixture::new();
    let mut l = f.open();
    l.append(&inputs()).unwrap();
    for &(m, n, proof) in &CONSISTENCY {
        let got = l.consistency_proof(m, n).unwrap();
        assert_eq!(got, hashes(proof), "consistency {m} -> {n}");
        let (rm, rn) = (h(ROOTS[m as usize - 1]), h(ROOTS[n as usize - 1]));
        assert!(
            verify_consistency(m, n, rm, rn, &hashes(proof)),
            "{m} -> {n}"
        );
    }
    // CT `VerifyConsistencyProof`: 0 → n is always consistent, proof empty.
    assert!(l.consistency_proof(0, 8).unwrap().is_empty());
    assert_eq!(
        l.consistency_proof(8, 9).unwrap_err().code(),
        "out_of_range"
    );
}

// C2SP tlog-tiles "Merkle Tree": the level-0 tile holds the leaf hashes, i.e.
// the published level-0 node hashes of the reference tree (trillian
// `NodeHashes()[0]`), and a checkpoint at each size carries the published
// root (C2SP tlog-checkpoint: third line is the base64 root). `verify` and
// tlog-proofs (C2SP tlog-proof) agree.
#[test]
fn reference_tree_as_tiles_and_checkpoints() {
    let f = Fixture::new();
    let mut l = f.open();
    let ins = inputs();
    for (i, input) in ins.iter().enumerate() {
        l.append(std::slice::from_ref(input)).unwrap();
        let note = l.publish_checkpoint(i as u64 + 1).unwrap().unwrap();
        let root_line = note.lines().nth(2).unwrap();
        assert_eq!(
            base64_decode32(root_line),
            h(ROOTS[i]),
            "checkpoint {}",
            i + 1
        );
        let tile = std::fs::read(f.path(&format!("tile/0/000.p/{}", i + 1))).unwrap();
        assert_eq!(
            tile,
            hashes(&LEAF_HASHES[..=i]).concat(),
            "tile width {}",
            i + 1
        );
    }
    let bundle = std::fs::read(f.path("tile/entries/000.p/8")).unwrap();
    assert_eq!(bundle, encode_bundle(&ins));
    let r = verify(&DirSource::new(f.dir()), &l.verifier_key(), None).unwrap();
    assert_eq!((r.size, r.root), (8, h(ROOTS[7])));
    for (i, input) in ins.iter().enumerate() {
        let p = l.tlog_proof(i as u64).unwrap();
        let c = check_proof_for_entry(&p, &l.verifier_key(), input).unwrap();
        assert_eq!((c.index, c.size, c.root), (i as u64, 8, h(ROOTS[7])));
    }
}

fn base64_decode32(s: &str) -> [u8; 32] {
    use base64::prelude::*;
    BASE64_STANDARD.decode(s).unwrap().try_into().unwrap()
}

// C2SP tlog-tiles "Partial Tiles": "a tree of size 256 will be represented by
// a full level 0 tile and a partial level 1 tile of width 1", and "Empty
// tiles MUST NOT be served". Level-1 hashes are MTH of full level-0 tiles
// ("Merkle Tree": MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l])).
#[test]
fn spec_example_tree_of_size_256() {
    let f = Fixture::new();
    let mut l = f.open();
    fill(&mut l, 0, 256);
    l.publish_checkpoint(1).unwrap().unwrap();
    let leaves: Vec<H> = (0..256).map(|i| leaf(&entry(i))).collect();
    let mut tiles = list_files(&f.dir().join("tile"));
    tiles.sort();
    assert_eq!(
        tiles,
        ["tile/0/000", "tile/1/000.p/1", "tile/entries/000"],
        "exactly the spec's resources"
    );
    assert_eq!(
        std::fs::read(f.path("tile/1/000.p/1")).unwrap(),
        mth(&leaves)
    );
    for empty in ["tile/0/001.p/0", "tile/entries/001.p/0", "tile/1/000.p/0"] {
        assert_eq!(l.resource(empty).unwrap_err().code(), "invalid_path");
    }
    assert!(l.resource("tile/0/001.p/1").unwrap().is_none());
    assert!(l.resource("tile/entries/001.p/1").unwrap().is_none());
}

// C2SP tlog-tiles "Partial Tiles": "a tree of size 70,000 will be represented
// by 273 full level 0 tiles, one partial level 0 tile of width 112, one full
// level 1 tile, one partial level 1 tile of width 17, and one partial level 2
// tile of width 1" — checked on the files `publish_checkpoint` writes, with
// the level-2 hash equal to MTH of the first 65,536 entries.
//
// Ignored by default: ~1,100 fsyncs (273 bundles + 276 tiles, each file and
// its directory) take several seconds on a real disk. The tile list itself
// is unit-tested without I/O in src/tiles.rs (`tiles_for_spec_example`).
// Run with `cargo test -p custos-ledger --test vectors -- --ignored`.
#[test]
#[ignore = "slow (~1,100 fsyncs); coordinates are unit-tested in src/tiles.rs"]
fn spec_example_tree_of_size_70000() {
    let f = Fixture::new();
    let mut l = f.open();
    // Empty entries keep this fast (2 bytes each in the bundles).
    let mut i = 0u64;
    while i < 70_000 {
        let n = 10_000.min(70_000 - i);
        l.append(&vec![Vec::new(); n as usize]).unwrap();
        i += n;
    }
    l.publish_checkpoint(1).unwrap().unwrap();
    let files = list_files(&f.dir().join("tile"));
    let count = |prefix: &str, partial: bool| {
        files
            .iter()
            .filter(|p| p.starts_with(prefix) && p.contains(".p/") == partial)
            .count()
    };
    assert_eq!(count("tile/0/", false), 273);
    assert_eq!(count("tile/0/", true), 1);
    assert!(files.contains(&"tile/0/273.p/112".to_string()));
    assert_eq!(count("tile/1/", false), 1);
    assert_eq!(count("tile/1/", true), 1);
    assert!(files.contains(&"tile/1/000".to_string()));
    assert!(files.contains(&"tile/1/001.p/17".to_string()));
    assert_eq!(count("tile/2/", false), 0);
    assert!(files.contains(&"tile/2/000.p/1".to_string()));
    assert!(!files.iter().any(|p| p.starts_with("tile/3/")));
    assert_eq!(count("tile/entries/", false), 273);
    assert!(files.contains(&"tile/entries/273.p/112".to_string()));
    // MTH of 2^k identical leaves is k-fold node(x, x) (RFC 6962 §2.1).
    let pow = |k: u32| (0..k).fold(leaf(b""), |x, _| node(&x, &x));
    let (l1, l2) = (pow(8), pow(16));
    assert_eq!(
        std::fs::read(f.path("tile/1/000")).unwrap(),
        [l1; 256].concat()
    );
    assert_eq!(std::fs::read(f.path("tile/2/000.p/1")).unwrap(), l2);
    assert_eq!(l.root_at(65_536).unwrap(), l2);
    let r = verify(&DirSource::new(f.dir()), &l.verifier_key(), None).unwrap();
    assert_eq!(r.size, 70_000);
}

// C2SP tlog-tiles "Merkle Tree": "index 1234067 will be encoded as
// x001/x234/067"; <L> and <W> have no leading zeroes. The public `resource`
// accepts the canonical spelling (nothing there yet: `None`) and rejects
// the others.
#[test]
fn spec_example_index_paths_are_accepted_by_resource() {
    let f = Fixture::new();
    let l = f.open();
    for ok in [
        "tile/0/x001/x234/067",
        "tile/2/x001/x234/067.p/8",
        "tile/entries/x001/x234/067",
        "tile/entries/x001/x234/067.p/255",
        "tile/63/000.p/1",
    ] {
        assert!(l.resource(ok).unwrap().is_none(), "{ok}");
    }
    for bad in [
        "tile/0/1234067",
        "tile/0/x1/x234/067",
        "tile/0/001/234/067",
        "tile/0/x001/x234/067.p/008",
        "tile/02/x001/x234/067",
        "tile/64/000",
    ] {
        assert_eq!(l.resource(bad).unwrap_err().code(), "invalid_path", "{bad}");
    }
}

/// Every file under `root`, as a path relative to `root`'s parent.
fn list_files(root: &std::path::Path) -> Vec<String> {
    let base = root.parent().unwrap();
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}
