//! The write-ahead file `<dir>/wal`: the commit point of `Ledger::append`.
//!
//! Each `append` writes its batch as one `write_all` of one frame (more only
//! for a batch over 1 GiB) and then `sync_data`s the file. All integers are
//! big-endian:
//!
//! | offset   | size | field                                                   |
//! |----------|------|---------------------------------------------------------|
//! | 0        | 4    | magic `CLW1`                                            |
//! | 4        | 8    | ledger index of the frame's first entry                 |
//! | 12       | 4    | number of entries `C` (≥ 1)                             |
//! | 16       | 4    | payload length `L`                                      |
//! | 20       | 4    | header check: `SHA-256(0x00 ‖ bytes 0..20)[..4]`        |
//! | 24       | `L`  | payload: `C` × (uint16 length ‖ entry), as in bundles   |
//! | 24 + `L` | 32   | `SHA-256(0x00 ‖ bytes 0..24+L)`                         |
//!
//! (`SHA-256(0x00 ‖ …)` is the RFC 6962 leaf hash the crate already uses.)
//!
//! Frames follow each other without gaps, each starting at the index where
//! the previous one ended. Since every `append` is synced before the next
//! starts, a crash can only damage the *last* frame, and only by cutting it
//! short (or, on a filesystem that extends the size before the data lands,
//! by leaving its end unwritten). [`scan`] therefore accepts as a **torn
//! tail** exactly:
//!
//! * fewer than 24 bytes at the end (a cut header);
//! * a frame with a valid header that extends past the end of the file;
//! * a frame with a valid header ending exactly at the end of the file
//!   whose checksum does not match;
//! * a run of zero bytes up to the end of the file (size extended, data
//!   never written).
//!
//! Anything else that does not check — a bad header followed by non-zero
//! bytes, a bad checksum with bytes after the frame, a well-checked frame
//! whose payload does not hold its `C` entries, frames out of sequence — is
//! corruption (`ledger_corrupt`): the damaged frame was followed by another
//! append, so it had been acknowledged.
//!
//! Not distinguishable from a torn tail, by construction: damage to the last
//! frame after it was acknowledged (a flipped bit in it, or the file cut at
//! a frame boundary or inside the last frame). Such a last batch is dropped
//! like a torn one.

use tlog_tiles::record_hash;

use crate::error::LedgerError;
use crate::tiles::decode_bundle;

/// File name of the write-ahead file under the ledger directory.
pub(crate) const WAL: &str = "wal";

const MAGIC: [u8; 4] = *b"CLW1";
const HEADER_LEN: usize = 24;
const SUM_LEN: usize = 32;
/// Payload bound per frame (the length field is a u32).
const MAX_FRAME_PAYLOAD: usize = 1 << 30;

/// Encodes `entries`, the first at ledger index `first`, as frames into
/// `buf` (cleared first).
pub(crate) fn encode(buf: &mut Vec<u8>, first: u64, entries: &[Vec<u8>]) {
    buf.clear();
    let mut index = first;
    let mut i = 0;
    while i < entries.len() {
        let start = buf.len();
        buf.extend_from_slice(&[0; HEADER_LEN]);
        let mut count: u32 = 0;
        while let Some(e) = entries.get(i) {
            let payload = buf.len() - start - HEADER_LEN;
            if count == u32::MAX || (count > 0 && payload + 2 + e.len() > MAX_FRAME_PAYLOAD) {
                break;
            }
            buf.extend_from_slice(&(e.len() as u16).to_be_bytes());
            buf.extend_from_slice(e);
            count += 1;
            i += 1;
        }
        let len = (buf.len() - start - HEADER_LEN) as u32;
        let hdr = &mut buf[start..start + HEADER_LEN];
        hdr[0..4].copy_from_slice(&MAGIC);
        hdr[4..12].copy_from_slice(&index.to_be_bytes());
        hdr[12..16].copy_from_slice(&count.to_be_bytes());
        hdr[16..20].copy_from_slice(&len.to_be_bytes());
        let check = record_hash(&hdr[..20]).0;
        hdr[20..24].copy_from_slice(&check[..4]);
        let sum = record_hash(&buf[start..]).0;
        buf.extend_from_slice(&sum);
        index += u64::from(count);
    }
}

/// One intact frame.
#[derive(Debug)]
pub(crate) struct Frame {
    /// Ledger index of the first entry.
    pub(crate) first: u64,
    pub(crate) entries: Vec<Vec<u8>>,
}

/// Result of reading a write-ahead file.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// The intact frames, in order and in sequence.
    pub(crate) frames: Vec<Frame>,
    /// Length of the intact prefix: the file is cut here if it is longer
    /// (torn tail).
    pub(crate) valid_len: u64,
}

struct Header {
    first: u64,
    count: u32,
    len: usize,
}

fn header(h: &[u8]) -> Option<Header> {
    let check = record_hash(&h[..20]).0;
    if h[0..4] != MAGIC || h[20..24] != check[..4] {
        return None;
    }
    let first = u64::from_be_bytes(h[4..12].try_into().ok()?);
    let count = u32::from_be_bytes(h[12..16].try_into().ok()?);
    let len = u32::from_be_bytes(h[16..20].try_into().ok()?) as usize;
    Some(Header { first, count, len })
}

/// Reads the frames of a write-ahead file, classifying a damaged end as a
/// torn tail or corruption (see the module docs).
pub(crate) fn scan(data: &[u8]) -> Result<Scan, LedgerError> {
    let corrupt = |off: usize, why: &str| {
        LedgerError::Corrupt(format!("{WAL}: {why} at byte {off} of {}", data.len()))
    };
    let mut out = Scan::default();
    let mut off = 0usize;
    let mut next: Option<u64> = None;
    while off < data.len() {
        let rest = &data[off..];
        if rest.len() < HEADER_LEN {
            break; // cut header
        }
        let Some(h) = header(&rest[..HEADER_LEN]) else {
            if rest.iter().all(|b| *b == 0) {
                break; // size extended, data never written
            }
            return Err(corrupt(off, "invalid frame header"));
        };
        let frame_len = HEADER_LEN + h.len + SUM_LEN;
        if frame_len > rest.len() {
            break; // cut inside the frame
        }
        let body = &rest[..HEADER_LEN + h.len];
        if record_hash(body).0 != rest[HEADER_LEN + h.len..frame_len] {
            if frame_len == rest.len() {
                break; // last frame, its data not (all) written
            }
            return Err(corrupt(
                off,
                "checksum mismatch in a frame followed by others",
            ));
        }
        let (entries, clean) = decode_bundle(&body[HEADER_LEN..]);
        if !clean || h.count == 0 || entries.len() != h.count as usize {
            return Err(corrupt(off, "frame payload does not hold its entries"));
        }
        if h.first.checked_add(u64::from(h.count)).is_none() {
            return Err(corrupt(off, "frame index overflows"));
        }
        if next.is_some_and(|n| n != h.first) {
            return Err(corrupt(off, "frame out of sequence"));
        }
        next = Some(h.first + u64::from(h.count));
        out.frames.push(Frame {
            first: h.first,
            entries,
        });
        off += frame_len;
        out.valid_len = off as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize, seed: u8) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| vec![seed.wrapping_add(i as u8); i * 7 % 50])
            .collect()
    }

    #[test]
    fn round_trips_and_sequences() {
        let mut buf = Vec::new();
        let mut file = Vec::new();
        encode(&mut buf, 10, &batch(3, 1));
        file.extend_from_slice(&buf);
        encode(&mut buf, 13, &batch(1, 2));
        file.extend_from_slice(&buf);
        let s = scan(&file).unwrap();
        assert_eq!(s.valid_len, file.len() as u64);
        assert_eq!(
            s.frames
                .iter()
                .map(|f| (f.first, f.entries.len()))
                .collect::<Vec<_>>(),
            [(10, 3), (13, 1)]
        );
        assert_eq!(s.frames[0].entries, batch(3, 1));
        // Out of sequence.
        encode(&mut buf, 15, &batch(1, 3));
        file.extend_from_slice(&buf);
        assert_eq!(scan(&file).unwrap_err().code(), "ledger_corrupt");
    }

    #[test]
    fn every_cut_of_the_last_frame_is_a_torn_tail() {
        let mut buf = Vec::new();
        encode(&mut buf, 0, &batch(4, 1));
        let first_len = buf.len();
        let mut file = buf.clone();
        encode(&mut buf, 4, &batch(5, 9));
        file.extend_from_slice(&buf);
        for cut in first_len..file.len() {
            let s = scan(&file[..cut]).unwrap();
            assert_eq!(
                (s.frames.len(), s.valid_len),
                (1, first_len as u64),
                "cut {cut}"
            );
        }
        // Zero-filled end.
        let mut z = file[..first_len].to_vec();
        z.extend(std::iter::repeat_n(0, 100));
        assert_eq!(scan(&z).unwrap().valid_len, first_len as u64);
    }
}
