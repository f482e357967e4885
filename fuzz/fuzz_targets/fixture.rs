//! A real ledger shared by the targets: 300 entries under one signed checkpoint, made
//! once per fuzzing process in a temporary directory from fixed keys (so that the seeds
//! `CUSTOS_FUZZ_SEEDS` writes stay valid in every later run), and the keys that check it.

#![allow(dead_code)] // each target uses its part of the fixture

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use base64::prelude::*;
use custos_ledger::{Ledger, LedgerKey, TileSource};
use ed25519_dalek::{Signer, SigningKey};

/// The ledger's origin.
pub const ORIGIN: &str = "fuzz.custos.example/ledger";
const WITNESS: &str = "witness.fuzz.example/w";
/// The checkpoint's time.
const AT_MS: u64 = 1_700_000_000_000;

/// The ledger, its verifier key, a witness's key, and the directory it lives in.
pub struct Fixture {
    pub ledger: Mutex<Ledger>,
    pub verifier_key: String,
    /// A configured witness's key (C2SP tlog-cosignature, Ed25519 cosignature/v1).
    pub witness_key: String,
    witness: SigningKey,
    dir: tempfile::TempDir,
}

/// The fixture, made on first use; with `CUSTOS_FUZZ_SEEDS=DIR` it also writes valid
/// inputs for the ledger's targets to `DIR/<target>/`.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let f = make();
        if let Some(dir) = std::env::var_os("CUSTOS_FUZZ_SEEDS") {
            f.write_seeds(Path::new(&dir));
        }
        f
    })
}

fn make() -> Fixture {
    let dir = tempfile::tempdir().expect("temporary directory");
    let key_path = dir.path().join("ledger.key");
    // A fixed seed in the key file's own format (PRIVATE+KEY+origin+id+base64(0x01‖seed)).
    let seed = [42u8; 32];
    let mut material = vec![0x01];
    material.extend_from_slice(&SigningKey::from_bytes(&seed).verifying_key().to_bytes());
    let id = signed_note::key_id(ORIGIN, &material);
    let mut raw = vec![0x01];
    raw.extend_from_slice(&seed);
    std::fs::write(
        &key_path,
        format!(
            "PRIVATE+KEY+{ORIGIN}+{id:08x}+{}\n",
            BASE64_STANDARD.encode(raw)
        ),
    )
    .expect("key file");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (key, _) = LedgerKey::load_or_create(&key_path, ORIGIN).expect("ledger key");
    let mut ledger = Ledger::open(&dir.path().join("ledger"), ORIGIN, key).expect("ledger");
    let entries: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("entry {i}").into_bytes())
        .collect();
    ledger.append(&entries).expect("append");
    ledger.publish_checkpoint(AT_MS).expect("checkpoint");

    let witness = SigningKey::from_bytes(&[7; 32]);
    let mut material = vec![0x04];
    material.extend_from_slice(&witness.verifying_key().to_bytes());
    let id = signed_note::key_id(WITNESS, &material);
    Fixture {
        verifier_key: ledger.verifier_key(),
        witness_key: format!("{WITNESS}+{id:08x}+{}", BASE64_STANDARD.encode(&material)),
        witness,
        ledger: Mutex::new(ledger),
        dir,
    }
}

impl Fixture {
    /// The checkpoint cosigned by the witness (C2SP tlog-cosignature).
    fn cosigned(&self, checkpoint: &str) -> String {
        let body = checkpoint.split_once("\n\n").map_or(checkpoint, |(b, _)| b);
        let body = format!("{body}\n");
        let ts = AT_MS / 1000 + 1;
        let sig = self
            .witness
            .sign(format!("cosignature/v1\ntime {ts}\n{body}").as_bytes());
        let mut material = vec![0x04];
        material.extend_from_slice(&self.witness.verifying_key().to_bytes());
        let mut blob = signed_note::key_id(WITNESS, &material)
            .to_be_bytes()
            .to_vec();
        blob.extend_from_slice(&ts.to_be_bytes());
        blob.extend_from_slice(&sig.to_bytes());
        format!("{checkpoint}— {WITNESS} {}\n", BASE64_STANDARD.encode(blob))
    }

    fn write_seeds(&self, root: &Path) {
        let ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        let checkpoint = ledger.checkpoint().expect("checkpoint");
        let put = |target: &str, name: &str, bytes: &[u8]| {
            let dir = root.join(target);
            std::fs::create_dir_all(&dir).expect("seed directory");
            std::fs::write(dir.join(name), bytes).expect("seed");
        };
        for i in [0u64, 150, 299] {
            let proof = ledger.tlog_proof(i).expect("proof");
            put("checkpoint_proof", &format!("proof-{i}"), proof.as_bytes());
        }
        let source = custos_ledger::DirSource::new(ledger.dir());
        let bundle = custos_ledger::build_bundle(
            &source,
            &self.verifier_key,
            vec![("alice".into(), "opened three".into(), vec![1, 2, 299])],
        )
        .expect("bundle");
        put(
            "evidence_bundle",
            "bundle",
            &serde_json::to_vec(&bundle).expect("bundle json"),
        );
        // The copy's files, in the order the verifier reads them.
        let mut parts = vec![checkpoint.clone().into_bytes()];
        for path in [
            "tile/entries/000",
            "tile/entries/001.p/44",
            "tile/0/000",
            "tile/0/001.p/44",
            "tile/1/000.p/1",
        ] {
            if let Ok(Some(bytes)) = source.fetch(path) {
                parts.push(bytes);
            }
        }
        put("verify_tiles", "copy", &parts.join(&0xFF));
        put(
            "cosignature",
            "cosigned",
            self.cosigned(&checkpoint).as_bytes(),
        );
        put("cosignature", "plain", checkpoint.as_bytes());
        for (i, path) in [
            "checkpoint",
            "tile/0/000",
            "tile/entries/001.p/44",
            "tile/1/000.p/1",
        ]
        .iter()
        .enumerate()
        {
            put("tile_path", &format!("path-{i}"), path.as_bytes());
        }
    }
}
