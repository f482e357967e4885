//! The configuration file (`custos serve --config FILE`): `Config::from_toml`, the layering
//! `Config::load` does over the file's text, reads any TOML or refuses it with a stable
//! code, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A file that is not UTF-8 is refused before parsing; the parser sees text.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = custos_service::config::Config::from_toml(text) {
        assert!(!e.code().is_empty());
    }
});
