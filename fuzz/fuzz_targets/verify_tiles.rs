//! A whole ledger copy handed to `custos ledger verify`: checkpoint, signed note, entry
//! bundles and hash tiles, all from the input. Parts are separated by a 0xFF byte: the
//! first is the checkpoint, and each other path the verifier asks for gets one part,
//! chosen by the path (an empty part is a missing file). Nothing but the fixture's own
//! tiles can verify under its key; everything else is refused with a stable code.
#![no_main]

#[path = "fixture.rs"]
mod fixture;

use custos_ledger::{FetchError, TileSource};
use libfuzzer_sys::fuzz_target;

struct Parts<'a>(Vec<&'a [u8]>);

impl TileSource for Parts<'_> {
    fn fetch(&self, path: &str) -> Result<Option<Vec<u8>>, FetchError> {
        let part = if path == "checkpoint" || self.0.len() < 2 {
            self.0[0]
        } else {
            let h = path.bytes().fold(0usize, |h, b| {
                h.wrapping_mul(31).wrapping_add(usize::from(b))
            });
            self.0[1 + h % (self.0.len() - 1)]
        };
        Ok((!part.is_empty()).then(|| part.to_vec()))
    }
}

fuzz_target!(|data: &[u8]| {
    let key = &fixture::fixture().verifier_key;
    let parts = Parts(data.split(|b| *b == 0xFF).collect());
    if let Err(e) = custos_ledger::verify(&parts, key, None) {
        assert!(!e.code().is_empty());
    }
});
