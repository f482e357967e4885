//! NDJSON imports (`POST /v1/customers/import`, `custos import`): `import::seal_lines`
//! seals one customer per line that holds something, or refuses the whole body with a
//! 400 and a stable code, naming the failing line when one is at fault.
#![no_main]

use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::sync::LazyLock;

use custos_crypto::{Keyring, MasterKey};
use custos_service::ErrorKind;
use custos_service::import::seal_lines;
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<Keyring> = LazyLock::new(|| Keyring::new(&MasterKey::from_bytes([7; 32])));

fuzz_target!(|data: &[u8]| {
    let lines = data
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .count();
    match seal_lines(&KEYRING, "CN", data, NonZeroUsize::MIN) {
        Ok(records) => {
            assert_eq!(records.len(), lines, "one record per line");
            let ids: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
            assert_eq!(ids.len(), lines, "every record has its own id");
        }
        Err(e) => {
            assert_eq!(
                e.kind,
                ErrorKind::BadRequest,
                "{}: {}",
                e.code.as_str(),
                e.message
            );
            assert!(!e.code.as_str().is_empty());
            if lines > 0 {
                assert!(e.message.contains("line "), "no line named: {}", e.message);
            }
        }
    }
});
