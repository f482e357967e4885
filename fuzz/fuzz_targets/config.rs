//! The configuration file (`custos serve --config FILE`): `Config::load` reads any TOML
//! or refuses it with a stable code, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if std::fs::write(file.path(), data).is_err() {
        return;
    }
    if let Err(e) = custos_service::config::Config::load(Some(file.path())) {
        assert!(!e.code().is_empty());
    }
});
