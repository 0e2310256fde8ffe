//! The static-ct-api monitoring prefix (c2sp.org/static-ct-api): the checkpoint, hash
//! tiles, data tiles and issuers.

use anyhow::Result;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::log::Log;
use crate::tls::{EntryType, put_vec};

/// Entries per tile.
pub const TILE_WIDTH: u64 = 256;

/// The note key ID of an RFC 6962 note signature: `SHA256(origin ‖ 0x0A ‖ 0x05 ‖ LogID)[:4]`.
pub fn key_id(origin: &str, log_id: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(origin.as_bytes());
    h.update([0x0a, 0x05]);
    h.update(log_id);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// The signed checkpoint note (c2sp.org/tlog-checkpoint with an RFC6962NoteSignature).
pub fn checkpoint(log: &Log) -> Result<String> {
    let sth = log.sth()?;
    let mut sig = key_id(&log.origin, &log.signer.log_id).to_vec();
    sig.extend_from_slice(&sth.timestamp.to_be_bytes());
    sig.extend_from_slice(&sth.signature);
    Ok(format!(
        "{origin}\n{}\n{}\n\n\u{2014} {origin} {}\n",
        sth.tree_size,
        STANDARD.encode(sth.root),
        STANDARD.encode(sig),
        origin = log.origin,
    ))
}

/// A tile request parsed from the path after `tile/`.
#[derive(Debug, PartialEq, Eq)]
pub struct TileRef {
    /// Hash-tile level, or `None` for a data tile.
    pub level: Option<u8>,
    pub index: u64,
    /// Width of a partial tile.
    pub partial: Option<u16>,
}

#[cfg(test)]
/// Encodes a tile index in 3-digit groups, `x` before every group but the last.
pub fn tile_index_path(mut n: u64) -> String {
    let mut groups = vec![format!("{:03}", n % 1000)];
    n /= 1000;
    while n > 0 {
        groups.push(format!("x{:03}", n % 1000));
        n /= 1000;
    }
    groups.reverse();
    groups.join("/")
}

#[cfg(test)]
/// The path of a tile under the monitoring prefix.
pub fn tile_path(t: &TileRef) -> String {
    let level = t
        .level
        .map_or_else(|| "data".to_string(), |l| l.to_string());
    let mut p = format!("tile/{level}/{}", tile_index_path(t.index));
    if let Some(w) = t.partial {
        p.push_str(&format!(".p/{w}"));
    }
    p
}

/// Parses `<L>/<N>[.p/<W>]` or `data/<N>[.p/<W>]`.
pub fn parse_tile_path(rest: &str) -> Option<TileRef> {
    let mut segs: Vec<&str> = rest.split('/').collect();
    let level = match segs.first()? {
        &"data" => None,
        l => {
            let l: u8 = l.parse().ok()?;
            (l <= 5).then_some(l)?;
            Some(l)
        }
    };
    segs.remove(0);
    let mut partial = None;
    if segs.len() >= 2 && segs[segs.len() - 2].ends_with(".p") {
        let w: u16 = segs.pop()?.parse().ok()?;
        if !(1..TILE_WIDTH as u16).contains(&w) {
            return None;
        }
        partial = Some(w);
        let last = segs.pop()?;
        segs.push(last.strip_suffix(".p")?);
    }
    let (last, groups) = segs.split_last()?;
    let mut index = 0u64;
    for g in groups {
        let d = g.strip_prefix('x')?;
        if d.len() != 3 || !d.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(d.parse().ok()?)?;
    }
    if last.len() != 3 || !last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    index = index.checked_mul(1000)?.checked_add(last.parse().ok()?)?;
    Some(TileRef {
        level,
        index,
        partial,
    })
}

/// Entries the tile would cover, if the tree has them all.
fn tile_range(count: u64, t: &TileRef) -> Option<(u64, u64)> {
    let start = t.index.checked_mul(TILE_WIDTH)?;
    let width = t.partial.map_or(TILE_WIDTH, u64::from);
    (start.checked_add(width)? <= count).then_some((start, width))
}

/// A hash or data tile's bytes, or `None` if the tree does not have it yet.
pub fn tile(log: &Log, t: &TileRef) -> Result<Option<Vec<u8>>> {
    let size = log.store.size();
    match t.level {
        Some(level) => {
            let height = 8 * usize::from(level);
            let Some((start, width)) = tile_range(size >> height, t) else {
                return Ok(None);
            };
            let mut out = Vec::with_capacity(width as usize * 32);
            for i in start..start + width {
                match log.store.tree.full_subtree(height, i) {
                    Some(h) => out.extend_from_slice(&h),
                    None => return Ok(None),
                }
            }
            Ok(Some(out))
        }
        None => {
            let Some((start, width)) = tile_range(size, t) else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for i in start..start + width {
                let e = log.store.read(i)?;
                // TileLeaf: TimestampedEntry ‖ [pre_certificate] ‖ fingerprints<0..2^16-1>.
                out.extend_from_slice(e.leaf_input.get(2..).unwrap_or_default());
                if e.entry_type == EntryType::Precert {
                    put_vec(&mut out, 3, &e.pre_certificate);
                }
                let fps: Vec<u8> = e.chain.iter().flatten().copied().collect();
                put_vec(&mut out, 2, &fps);
            }
            Ok(Some(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_round_trip() {
        for (n, p) in [
            (1234067, "x001/x234/067"),
            (1000, "x001/000"),
            (1999001, "x001/x999/001"),
            (5, "005"),
        ] {
            assert_eq!(tile_index_path(n), p);
            let t = TileRef {
                level: Some(0),
                index: n,
                partial: None,
            };
            let path = tile_path(&t);
            assert_eq!(
                parse_tile_path(path.strip_prefix("tile/").unwrap()),
                Some(t)
            );
        }
        assert_eq!(
            parse_tile_path("data/x001/002.p/17"),
            Some(TileRef {
                level: None,
                index: 1002,
                partial: Some(17)
            })
        );
        assert_eq!(parse_tile_path("0/1000"), None);
        assert_eq!(parse_tile_path("0/005.p/256"), None);
    }
}
