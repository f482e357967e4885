//! The one keyed hash every derived key and blind index is made with.

use hmac::{Hmac, KeyInit as _, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 over the concatenation of `parts`, keyed with a 32-byte key.
pub(crate) fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC zero-pads keys shorter than the 64-byte block, so padding here
    // gives the identical MAC while using the infallible `new` (no
    // `expect` on the `new_from_slice` length check).
    let mut block_key = Zeroizing::new([0u8; 64]);
    block_key[..32].copy_from_slice(key);
    let mut mac = HmacSha256::new((&*block_key).into());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}
