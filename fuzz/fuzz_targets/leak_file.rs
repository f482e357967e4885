//! Leaked files an analyst uploads to trace (`POST /v1/trace`, `custos trace`): any
//! encoding and layout. `read_leak` reads them or refuses with a stable code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match custos_trace::input::read_leak(data, "CN") {
        Ok(file) => assert!(!file.rows.is_empty()),
        Err(e) => assert!(!e.code().is_empty()),
    }
});
