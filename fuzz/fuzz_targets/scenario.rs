//! Insider scenario files (`custos simulate --scenarios DIR`): `Scenario::parse` reads
//! any text or refuses it with a message, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(message) = custos_sim::simulate::scenario::Scenario::parse(text) {
        assert!(!message.is_empty());
    }
});
