//! C2SP tlog-tiles resource paths and entry-bundle encoding.
//!
//! `tlog_tiles` 0.2.0's `Tile::path` produces the older Go sumdb layout
//! (`tile/<H>/<L>/…`, with the tile height in the path and `data` bundles),
//! not the C2SP one (`tile/<L>/<N>[.p/<W>]`, `tile/entries/…`), so the path
//! grammar is written here. Parsing is strict: only the one canonical
//! spelling of each resource is accepted, so a path can never name a file
//! outside the log layout (no `..`, no leading `/`, no leading zeroes).

use crate::error::LedgerError;

/// Width of a full tile or entry bundle (C2SP tlog-tiles, "Merkle Tree").
pub(crate) const TILE_WIDTH: u64 = 256;
/// Tree levels spanned by one tile level.
pub(crate) const TILE_HEIGHT: u8 = 8;
/// Largest entry an entry bundle can hold (uint16 length prefix).
pub const MAX_ENTRY_LEN: usize = 65535;

/// Which kind of tile a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TileKind {
    /// A hash tile at this tile level (0..=63).
    Hash(u8),
    /// An entry bundle.
    Entries,
}

/// A parsed tile or entry-bundle coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TileCoord {
    /// Hash tile level or entry bundle.
    pub kind: TileKind,
    /// Index of the tile within its level.
    pub index: u64,
    /// Width: 1..=255 for a partial tile, 256 for a full one.
    pub width: u16,
}

/// A parsed resource path relative to the log root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `checkpoint`
    Checkpoint,
    /// `tile/…`
    Tile(TileCoord),
}

impl TileCoord {
    /// A full tile of this kind and index.
    pub(crate) fn full(kind: TileKind, index: u64) -> Self {
        TileCoord {
            kind,
            index,
            width: TILE_WIDTH as u16,
        }
    }

    /// Whether this is a partial tile.
    pub(crate) fn is_partial(&self) -> bool {
        u64::from(self.width) < TILE_WIDTH
    }

    /// The canonical path, e.g. `tile/0/x001/234.p/5` or `tile/entries/000`.
    pub(crate) fn path(&self) -> String {
        let mut s = String::from("tile/");
        match self.kind {
            TileKind::Hash(l) => s.push_str(&l.to_string()),
            TileKind::Entries => s.push_str("entries"),
        }
        s.push('/');
        s.push_str(&encode_index(self.index));
        if self.is_partial() {
            s.push_str(&format!(".p/{}", self.width));
        }
        s
    }

    /// The path of the directory holding this tile's partial versions
    /// (`…/<N>.p`).
    pub(crate) fn partial_dir(&self) -> String {
        TileCoord::full(self.kind, self.index).path() + ".p"
    }
}

/// Encodes N as zero-padded 3-digit path elements, all but the last
/// prefixed with `x` (C2SP tlog-tiles, "Merkle Tree").
pub(crate) fn encode_index(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

fn bad(path: &str, why: &str) -> LedgerError {
    // Bound what we echo: the path is attacker-controlled.
    let shown: String = path.chars().take(80).collect();
    LedgerError::InvalidPath(format!("{shown:?}: {why}"))
}

fn parse_small(s: &str, max: u32) -> Option<u32> {
    // Decimal, no sign, no leading zeroes (except "0" itself).
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    let v: u32 = s.parse().ok()?;
    (v <= max).then_some(v)
}

fn three_digits(s: &str) -> Option<u64> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parses a resource path strictly per C2SP tlog-tiles.
pub(crate) fn parse_resource(path: &str) -> Result<Resource, LedgerError> {
    if path == "checkpoint" {
        return Ok(Resource::Checkpoint);
    }
    let rest = path
        .strip_prefix("tile/")
        .ok_or_else(|| bad(path, "not a tlog-tiles resource"))?;
    let mut parts: Vec<&str> = rest.split('/').collect();
    if parts.len() < 2 || parts.len() > 12 {
        return Err(bad(path, "wrong number of path elements"));
    }
    let kind = if parts[0] == "entries" {
        TileKind::Entries
    } else {
        let l = parse_small(parts[0], 63).ok_or_else(|| bad(path, "bad tile level"))?;
        TileKind::Hash(l as u8)
    };
    parts.remove(0);

    // Optional `.p/<W>` suffix: the element before last ends in ".p".
    let mut width = TILE_WIDTH as u16;
    if parts.len() >= 2 {
        let before_last = parts[parts.len() - 2];
        if let Some(stripped) = before_last.strip_suffix(".p") {
            let w = parse_small(parts[parts.len() - 1], 255)
                .filter(|w| *w >= 1)
                .ok_or_else(|| bad(path, "bad partial width"))?;
            width = w as u16;
            let n = parts.len();
            parts[n - 2] = stripped;
            parts.truncate(n - 1);
        }
    }

    // Index elements: xNNN/…/NNN, first group non-zero when there are several.
    let mut index: u64 = 0;
    let last = parts.len() - 1;
    for (i, p) in parts.iter().enumerate() {
        let digits = if i < last {
            p.strip_prefix('x')
                .ok_or_else(|| bad(path, "index element without x"))?
        } else {
            p
        };
        let g = three_digits(digits).ok_or_else(|| bad(path, "bad index element"))?;
        if i == 0 && last > 0 && g == 0 {
            return Err(bad(path, "non-canonical index"));
        }
        index = index
            .checked_mul(1000)
            .and_then(|v| v.checked_add(g))
            .ok_or_else(|| bad(path, "index overflows"))?;
    }
    Ok(Resource::Tile(TileCoord { kind, index, width }))
}

/// The hash tiles to write when a published tree grows from `old` to `new`
/// leaves: newly completed full tiles and the partial tile of `new`, at
/// every level (C2SP tlog-tiles, "Partial Tiles").
///
/// Same result as `tlog_tiles::Tile::new_tiles(8, old, new)`, which we do
/// not use because its `u8` shift arithmetic overflows for sizes ≥ 2^56 and
/// its coordinates carry the sumdb height.
pub(crate) fn new_hash_tiles(old: u64, new: u64) -> Vec<TileCoord> {
    let mut out = Vec::new();
    for level in 0u8..8 {
        let shift = u32::from(level) * u32::from(TILE_HEIGHT);
        let (old_n, new_n) = (old >> shift, new >> shift);
        if new_n == 0 {
            break;
        }
        if old_n == new_n {
            continue;
        }
        for index in (old_n / TILE_WIDTH)..(new_n / TILE_WIDTH) {
            out.push(TileCoord::full(TileKind::Hash(level), index));
        }
        let width = (new_n % TILE_WIDTH) as u16;
        if width > 0 {
            out.push(TileCoord {
                kind: TileKind::Hash(level),
                index: new_n / TILE_WIDTH,
                width,
            });
        }
    }
    out
}

/// Encodes entries as a bundle: big-endian uint16 length prefix + bytes each.
pub(crate) fn encode_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        debug_assert!(e.len() <= MAX_ENTRY_LEN);
        out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// Decodes a bundle. Returns the entries decoded before the first problem
/// and whether the whole input was consumed cleanly.
pub(crate) fn decode_bundle(data: &[u8]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return (out, false);
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + len {
            return (out, false);
        }
        out.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    (out, true)
}

/// Decodes a bundle that must hold exactly `width` entries.
pub(crate) fn decode_bundle_exact(data: &[u8], width: usize) -> Option<Vec<Vec<u8>>> {
    let (entries, clean) = decode_bundle(data);
    (clean && entries.len() == width).then_some(entries)
}

/// Byte length of the first `n` entries of an encoded bundle, if present.
pub(crate) fn bundle_prefix_len(data: &[u8], n: usize) -> Option<usize> {
    let mut off = 0usize;
    for _ in 0..n {
        let hdr = data.get(off..off + 2)?;
        let len = usize::from(u16::from_be_bytes([hdr[0], hdr[1]]));
        off = off.checked_add(2 + len)?;
        if off > data.len() {
            return None;
        }
    }
    Some(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    // C2SP tlog-tiles, "Merkle Tree": index 1234067 is x001/x234/067.
    #[test]
    fn index_encoding_matches_spec_example() {
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(encode_index(0), "000");
        assert_eq!(encode_index(999), "999");
        assert_eq!(encode_index(1000), "x001/000");
        assert_eq!(encode_index(u64::MAX), "x018/x446/x744/x073/x709/x551/615");
    }

    #[test]
    fn paths_round_trip() {
        for (kind, index, width) in [
            (TileKind::Hash(0), 1234067, 256),
            (TileKind::Hash(63), 0, 1),
            (TileKind::Entries, 5, 255),
            (TileKind::Entries, u64::MAX, 256),
        ] {
            let c = TileCoord { kind, index, width };
            assert_eq!(parse_resource(&c.path()).unwrap(), Resource::Tile(c));
        }
        assert_eq!(
            TileCoord {
                kind: TileKind::Hash(2),
                index: 1234067,
                width: 8
            }
            .path(),
            "tile/2/x001/x234/067.p/8"
        );
    }

    // C2SP tlog-tiles: L has no leading zeroes, W is 1..255 with no leading
    // zeroes, all but the last index element begin with x.
    #[test]
    fn rejects_non_canonical_and_hostile_paths() {
        for p in [
            "",
            "/checkpoint",
            "checkpoint/",
            "tile",
            "tile/",
            "tile/0",
            "tile/00/000",
            "tile/64/000",
            "tile/0/0",
            "tile/0/0000",
            "tile/0/x000/001",
            "tile/0/001/002",
            "tile/0/x001/x002",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/000.p/01",
            "tile/0/000.p/",
            "tile/0/../000",
            "tile/../checkpoint",
            "tile/entries/../../etc/passwd",
            "tile/entries/000/",
            "tile/entries//000",
            "tile/data/000",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/0/+12",
            "tile/0/-01",
            "tile/0/x-01/000",
            "tile/8/0/000",
        ] {
            assert!(parse_resource(p).is_err(), "accepted {p:?}");
        }
    }

    // C2SP tlog-tiles, "Partial Tiles": a tree of size 70,000 is 273 full
    // level-0 tiles, one level-0 partial of width 112, one full level-1 tile,
    // a level-1 partial of width 17 and a level-2 partial of width 1.
    #[test]
    fn tiles_for_spec_example() {
        let t = new_hash_tiles(0, 70_000);
        let l0: Vec<_> = t.iter().filter(|c| c.kind == TileKind::Hash(0)).collect();
        assert_eq!(l0.len(), 274);
        assert_eq!(l0.last().unwrap().width, 112);
        let l1: Vec<_> = t.iter().filter(|c| c.kind == TileKind::Hash(1)).collect();
        assert_eq!(l1.len(), 2);
        assert_eq!(l1[1].width, 17);
        let l2: Vec<_> = t.iter().filter(|c| c.kind == TileKind::Hash(2)).collect();
        assert_eq!((l2.len(), l2[0].width), (1, 1));
        // "a tree of size 256 will be represented by a full level 0 tile and
        // a partial level 1 tile of width 1"
        assert_eq!(
            new_hash_tiles(0, 256),
            vec![
                TileCoord::full(TileKind::Hash(0), 0),
                TileCoord {
                    kind: TileKind::Hash(1),
                    index: 0,
                    width: 1
                }
            ]
        );
        assert!(new_hash_tiles(300, 300).is_empty());
        assert_eq!(new_hash_tiles(300, 301).len(), 1);
    }

    #[test]
    fn bundle_codec() {
        let entries: Vec<Vec<u8>> = vec![vec![], vec![1, 2, 3], vec![7; 300]];
        let enc = encode_bundle(entries.iter().map(|e| e.as_slice()));
        assert_eq!(&enc[..2], &[0, 0]);
        assert_eq!(&enc[2..5], &[0, 3, 1]);
        assert_eq!(decode_bundle_exact(&enc, 3).unwrap(), entries);
        assert!(decode_bundle_exact(&enc, 2).is_none());
        assert!(decode_bundle_exact(&enc[..enc.len() - 1], 3).is_none());
        assert_eq!(bundle_prefix_len(&enc, 2), Some(7));
        assert_eq!(bundle_prefix_len(&enc, 4), None);
    }
}
