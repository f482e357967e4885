//! Paths a client asks the ledger for (`GET /ledger/<path>`, C2SP tlog-tiles): the
//! ledger serves only the checkpoint and tiles its checkpoint covers, refuses every
//! other path with a stable code, and never reads outside its directory.
#![no_main]

#[path = "fixture.rs"]
mod fixture;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture::fixture();
    let ledger = f.ledger.lock().unwrap_or_else(|p| p.into_inner());
    match ledger.resource(path) {
        Ok(Some(_)) => assert!(
            path == "checkpoint" || path.starts_with("tile/"),
            "served a path outside the log: {path:?}"
        ),
        Ok(None) => {}
        Err(e) => assert!(!e.code().is_empty()),
    }
});
