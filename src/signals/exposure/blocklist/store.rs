//! Imported lists in the state directory: `state_dir/blocklists/` (mode 0700) holds
//! `index.json`, which names every list (its format, where it came from, how many records,
//! when it was imported, the SHA-256 of the imported file), and one file per list with its
//! records sorted, ready to search as they are read.
//!
//! An import writes the list's file under a name of its own (name, hash, format) before
//! the index names it, and a removal updates the index before deleting the file, so a
//! crash leaves at worst an unused file, never an index entry without its list.

use std::path::{Path, PathBuf};

use certresponder_inventory::fs::{create_dir_with_mode, write_atomic};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::BlocklistError;
use super::format::{self, Format};
use super::table::Table;

/// The index file's name.
const INDEX: &str = "index.json";
/// The index file's layout version.
const INDEX_VERSION: u32 = 1;
/// The longest list name.
const MAX_NAME: usize = 64;

/// One imported list, as the index names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListInfo {
    /// The list's name (`[a-z0-9][a-z0-9._-]*`).
    pub name: String,
    /// Its format.
    pub format: Format,
    /// The file it was imported from.
    pub source: String,
    /// Number of records (after duplicates were dropped, for the text formats).
    pub records: u64,
    /// When it was imported.
    pub imported_at: DateTime<Utc>,
    /// SHA-256 of the imported file, hex.
    pub sha256: String,
    /// The stored records' file, in the blocklists directory.
    pub file: String,
    /// `badkeys-primes` lists: the RSA key size whose moduli they are checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_bits: Option<u32>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    version: u32,
    lists: Vec<ListInfo>,
}

fn index_path(dir: &Path) -> PathBuf {
    dir.join(INDEX)
}

fn read_index(dir: &Path) -> Result<Index, BlocklistError> {
    let path = index_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
        Err(source) => return Err(BlocklistError::Io { path, source }),
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| BlocklistError::Index {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if index.version != INDEX_VERSION {
        return Err(BlocklistError::Index {
            path,
            message: format!(
                "field `version`: {} is not a version this certresponder reads ({INDEX_VERSION})",
                index.version
            ),
        });
    }
    for l in &index.lists {
        // The index names files in its own directory; a name that leaves it is damage.
        if check_name(&l.name).is_err() || l.file.contains('/') || l.file.starts_with('.') {
            return Err(BlocklistError::Index {
                path,
                message: format!(
                    "list `{}`: field `name` or `file` is not a plain name",
                    l.name
                ),
            });
        }
    }
    Ok(index)
}

fn write_index(dir: &Path, index: &Index) -> Result<(), BlocklistError> {
    let path = index_path(dir);
    let mut text = serde_json::to_vec_pretty(index).map_err(|e| BlocklistError::Index {
        path: path.clone(),
        message: e.to_string(),
    })?;
    text.push(b'\n');
    write_atomic(&path, &text, 0o600).map_err(|source| BlocklistError::Io { path, source })
}

/// The imported lists, in import order (none when nothing was imported yet).
pub fn list(dir: &Path) -> Result<Vec<ListInfo>, BlocklistError> {
    Ok(read_index(dir)?.lists)
}

/// Checks a list name: `[a-z0-9][a-z0-9._-]*`, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), BlocklistError> {
    let ok = name.len() <= MAX_NAME
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(BlocklistError::Name {
            name: name.to_string(),
            message: format!(
                "a list name is a lowercase letter or digit, then letters, digits, `.`, `_` or `-` (at most {MAX_NAME})"
            ),
        })
    }
}

/// The name a list gets when none is given: its file name, lowercased, without a `.dat`
/// or `.txt` extension, other characters replaced by `-`.
pub fn default_name(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_string_lossy().to_lowercase();
    let file = file
        .strip_suffix(".dat")
        .or_else(|| file.strip_suffix(".txt"))
        .unwrap_or(&file);
    let name: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(MAX_NAME)
        .collect();
    check_name(&name).ok().map(|()| name)
}

/// What an import did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Imported {
    /// The list, as now indexed.
    pub list: ListInfo,
    /// Whether it replaced a list of the same name.
    pub replaced: bool,
    /// Whether the format was detected (not given).
    pub detected: bool,
}

/// Imports the list at `path`: reads it, detects its format unless given, checks it, and
/// stores it under `name` (default: from the file name), replacing a list of that name.
pub fn import(
    dir: &Path,
    path: &Path,
    format: Option<Format>,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Imported, BlocklistError> {
    let bytes = std::fs::read(path).map_err(|source| BlocklistError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    import_bytes(dir, path, bytes, format, name, now)
}

/// [`import`] of a list whose content was read elsewhere (by the command, with its
/// caller's permissions); `path` names it in messages and in the index.
pub fn import_bytes(
    dir: &Path,
    path: &Path,
    bytes: Vec<u8>,
    format: Option<Format>,
    name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Imported, BlocklistError> {
    let name = match name {
        Some(n) => {
            check_name(n)?;
            n.to_string()
        }
        None => default_name(path).ok_or_else(|| BlocklistError::Name {
            name: path.display().to_string(),
            message: "no list name can be made from the file name; give --name".into(),
        })?,
    };
    let (format, detected) = match format {
        Some(f) => (f, false),
        None => (format::detect(path, &bytes)?, true),
    };
    let sha256 =
        hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes).as_ref());
    let (stored_bytes, records, key_bits) = if format == Format::BadkeysPrimes {
        let bits = format::primes_key_bits(path).ok_or_else(|| BlocklistError::Malformed {
            path: path.to_path_buf(),
            line: None,
            message: "the key size of a badkeys prime file is read from its name, as badkeys ships it (primes2048.dat for RSA-2048 moduli); rename it".into(),
        })?;
        let product = format::gmpy2_number(path, &bytes)?;
        let product_bits = (product.len() as u64) * 8
            - u64::from(product.first().map_or(0, |b| b.leading_zeros()));
        // Each prime is half the key size: the product's size says how many there are.
        let primes = product_bits.div_ceil(u64::from(bits / 2));
        (product, primes, Some(bits))
    } else {
        let table = format::parse(path, bytes, format)?;
        let records = table.len() as u64;
        (table.as_bytes().to_vec(), records, None)
    };
    create_dir_with_mode(dir, 0o700).map_err(|source| BlocklistError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut index = read_index(dir)?;
    index.version = INDEX_VERSION;
    let file = format!("{name}.{}.{format}", &sha256[..16]);
    let stored = dir.join(&file);
    write_atomic(&stored, &stored_bytes, 0o600).map_err(|source| BlocklistError::Io {
        path: stored.clone(),
        source,
    })?;
    let source = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let info = ListInfo {
        name: name.clone(),
        format,
        source: source.display().to_string(),
        records,
        imported_at: now,
        sha256,
        file,
        key_bits,
    };
    let old = index.lists.iter().position(|l| l.name == name);
    let replaced_file = match old {
        Some(i) => Some(std::mem::replace(&mut index.lists[i], info.clone()).file),
        None => {
            index.lists.push(info.clone());
            None
        }
    };
    write_index(dir, &index)?;
    if let Some(f) = &replaced_file
        && *f != info.file
    {
        remove_file_quietly(&dir.join(f));
    }
    Ok(Imported {
        list: info,
        replaced: old.is_some(),
        detected,
    })
}

fn remove_file_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "cannot remove a replaced blocklist file");
    }
}

/// Removes the list `name`.
pub fn remove(dir: &Path, name: &str) -> Result<ListInfo, BlocklistError> {
    let mut index = read_index(dir)?;
    let Some(i) = index.lists.iter().position(|l| l.name == name) else {
        return Err(BlocklistError::NotFound {
            name: name.to_string(),
            known: index.lists.iter().map(|l| l.name.clone()).collect(),
        });
    };
    let info = index.lists.remove(i);
    write_index(dir, &index)?;
    remove_file_quietly(&dir.join(&info.file));
    Ok(info)
}

/// Reads one imported list's records and checks them (whole, sorted, as many as the index
/// says).
pub fn load(dir: &Path, info: &ListInfo) -> Result<Table, BlocklistError> {
    let path = dir.join(&info.file);
    let damaged = |message: String| damaged(info, &path, message);
    let bytes = std::fs::read(&path).map_err(|e| damaged(format!("cannot read: {e}")))?;
    let expected = usize::try_from(info.records)
        .ok()
        .and_then(|r| r.checked_mul(info.format.record_len()));
    if expected != Some(bytes.len()) {
        return Err(damaged(format!(
            "{} bytes, but the index says {} records of {} bytes",
            bytes.len(),
            info.records,
            info.format.record_len()
        )));
    }
    Table::from_sorted(bytes, info.format.record_len(), info.format.key_len())
        .map_err(|e| damaged(e.to_string()))
}

/// Reads an imported `badkeys-primes` list: the product, ready for a gcd.
pub fn load_primes(
    dir: &Path,
    info: &ListInfo,
) -> Result<crate::signals::weak::batch_gcd::ProductIndex, BlocklistError> {
    let path = dir.join(&info.file);
    let bytes =
        std::fs::read(&path).map_err(|e| damaged(info, &path, format!("cannot read: {e}")))?;
    crate::signals::weak::batch_gcd::ProductIndex::from_product(&bytes, info.records)
        .ok_or_else(|| damaged(info, &path, "the stored product is zero".into()))
}

/// A stored list that cannot be used as the index describes it.
fn damaged(info: &ListInfo, path: &Path, message: String) -> BlocklistError {
    BlocklistError::Stored {
        name: info.name.clone(),
        path: path.to_path_buf(),
        message,
    }
}
