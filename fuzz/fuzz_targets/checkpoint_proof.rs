//! C2SP tlog-proof text given to the offline checker (`custos ledger check-proof`):
//! `check_proof` must refuse anything not signed by the ledger's key, with a stable code,
//! and never panic.
#![no_main]

#[path = "fixture.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = &fixture::fixture().verifier_key;
    match custos_ledger::check_proof(text, key) {
        // Only a proof under the fixture's own signed checkpoint can pass.
        Ok(checked) => assert!(checked.size == 300 && checked.index < 300),
        Err(e) => assert!(!e.code().is_empty()),
    }
});
