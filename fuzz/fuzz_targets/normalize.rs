//! Identifiers as staff and channels type them (searches, contacts, imports, leaked
//! rows): normalisation is total (a value or an error, never a panic) and idempotent,
//! so that the blind index of a normalised value matches itself.
#![no_main]

use custos_crypto::{normalize_account_id, normalize_email, normalize_phone};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = normalize_phone(text, "CN") {
        assert_eq!(normalize_phone(&p, "CN").ok().as_deref(), Some(p.as_str()));
    }
    if let Ok(e) = normalize_email(text) {
        assert_eq!(normalize_email(&e).ok().as_deref(), Some(e.as_str()));
    }
    if let Ok(a) = normalize_account_id(text) {
        assert_eq!(normalize_account_id(&a).ok().as_deref(), Some(a.as_str()));
    }
});
