//! Evidence bundles given to the offline checker (`custos ledger check-evidence`):
//! `check_bundle` refuses with a stable code what the ledger's key did not sign, and
//! never panics.
#![no_main]

#[path = "fixture.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = &fixture::fixture().verifier_key;
    match custos_ledger::check_bundle(data, key) {
        Ok(checked) => assert_eq!(checked.size, 300),
        Err(e) => assert!(!e.code().is_empty()),
    }
});
