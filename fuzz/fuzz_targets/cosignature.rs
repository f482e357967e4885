//! Cosigned checkpoints a witness posts (`POST /v1/ledger/cosignature`):
//! `add_cosignature` accepts only what the configured witness signed over the ledger's
//! own checkpoint, and refuses everything else with a stable code, changing nothing.
#![no_main]

#[path = "fixture.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(note) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture::fixture();
    let mut ledger = f.ledger.lock().unwrap_or_else(|p| p.into_inner());
    let before = ledger.checkpoint();
    match ledger.add_cosignature(note, std::slice::from_ref(&f.witness_key)) {
        Ok(()) => assert!(
            note.contains(f.witness_key.split('+').next().unwrap_or_default()),
            "a cosignature by no configured witness was accepted"
        ),
        Err(e) => {
            assert!(!e.code().is_empty());
            assert_eq!(
                ledger.checkpoint(),
                before,
                "a refused cosignature changed the checkpoint"
            );
        }
    }
});
