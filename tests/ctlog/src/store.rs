//! The log's persistent state in DIR: an append-only file of entries, an index of their
//! offsets (so `get-entries` over millions of entries is a seek), a file of leaf hashes
//! (so a restart rebuilds the tree without rereading the entries), and the issuers.
//!
//! Record in `entries.bin`: `u8 entry_type ‖ u32 len ‖ leaf_input ‖ u32 len ‖ pre_certificate
//! (empty for x509) ‖ u16 n ‖ n × 32-byte chain fingerprints`. `index.bin`: `u64 offset ‖ u32
//! len` per entry. `hashes.bin`: 32-byte leaf hash per entry. `issuers/<sha256 hex>`: DER.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::merkle::{Hash, Tree, leaf_hash};
use crate::tls::{EntryType, put_vec};

const INDEX_RECORD: u64 = 12;

/// One logged entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub entry_type: EntryType,
    /// `MerkleTreeLeaf`.
    pub leaf_input: Vec<u8>,
    /// The precertificate as submitted (empty for x509 entries).
    pub pre_certificate: Vec<u8>,
    /// SHA-256 fingerprints of the chain after the leaf (or precert), leaf side first.
    pub chain: Vec<Hash>,
}

pub struct Store {
    dir: PathBuf,
    entries: BufWriter<File>,
    entries_len: u64,
    index: BufWriter<File>,
    hashes: BufWriter<File>,
    reader: File,
    index_reader: File,
    pub tree: Tree,
    issuers: HashMap<Hash, Vec<u8>>,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir.join("issuers"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let entries = open_append(&dir.join("entries.bin"))?;
        let index = open_append(&dir.join("index.bin"))?;
        let hashes = open_append(&dir.join("hashes.bin"))?;
        let entries_len = entries.metadata()?.len();
        let index_len = index.metadata()?.len();
        let mut hash_bytes = Vec::new();
        File::open(dir.join("hashes.bin"))?.read_to_end(&mut hash_bytes)?;
        // A crash may leave the three files at different lengths; keep the common prefix.
        let mut n = (index_len / INDEX_RECORD).min(hash_bytes.len() as u64 / 32);
        while n > 0 {
            let mut rec = [0u8; 12];
            index.read_exact_at(&mut rec, (n - 1) * INDEX_RECORD)?;
            let (off, len) = parse_index(&rec);
            if off + len <= entries_len {
                break;
            }
            n -= 1;
        }
        let mut rec = [0u8; 12];
        let entries_keep = if n == 0 {
            0
        } else {
            index.read_exact_at(&mut rec, (n - 1) * INDEX_RECORD)?;
            let (off, len) = parse_index(&rec);
            off + len
        };
        entries.set_len(entries_keep)?;
        index.set_len(n * INDEX_RECORD)?;
        hashes.set_len(n * 32)?;
        let mut tree = Tree::default();
        for chunk in hash_bytes.chunks_exact(32).take(n as usize) {
            let mut h = [0u8; 32];
            h.copy_from_slice(chunk);
            tree.push(h);
        }
        let mut issuers = HashMap::new();
        for f in std::fs::read_dir(dir.join("issuers"))? {
            let der = std::fs::read(f?.path())?;
            issuers.insert(Sha256::digest(&der).into(), der);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            reader: File::open(dir.join("entries.bin"))?,
            index_reader: File::open(dir.join("index.bin"))?,
            entries: BufWriter::with_capacity(1 << 20, entries),
            entries_len: entries_keep,
            index: BufWriter::with_capacity(1 << 16, index),
            hashes: BufWriter::with_capacity(1 << 16, hashes),
            tree,
            issuers,
        })
    }

    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Stores an issuer certificate and returns its fingerprint.
    pub fn put_issuer(&mut self, der: &[u8]) -> Result<Hash> {
        let fp: Hash = Sha256::digest(der).into();
        if !self.issuers.contains_key(&fp) {
            std::fs::write(self.dir.join("issuers").join(hex::encode(fp)), der)?;
            self.issuers.insert(fp, der.to_vec());
        }
        Ok(fp)
    }

    pub fn issuer(&self, fp: &Hash) -> Option<&[u8]> {
        self.issuers.get(fp).map(Vec::as_slice)
    }

    /// Appends an entry (buffered; call [`Store::flush`] before reading it back).
    pub fn append(&mut self, e: &Entry) -> Result<u64> {
        let mut rec = Vec::with_capacity(e.leaf_input.len() + e.pre_certificate.len() + 64);
        rec.push(e.entry_type as u8);
        put_vec(&mut rec, 4, &e.leaf_input);
        put_vec(&mut rec, 4, &e.pre_certificate);
        rec.extend_from_slice(&(e.chain.len() as u16).to_be_bytes());
        for fp in &e.chain {
            rec.extend_from_slice(fp);
        }
        self.entries.write_all(&rec)?;
        self.index.write_all(&self.entries_len.to_be_bytes())?;
        self.index.write_all(&(rec.len() as u32).to_be_bytes())?;
        self.entries_len += rec.len() as u64;
        let h = leaf_hash(&e.leaf_input);
        self.hashes.write_all(&h)?;
        let index = self.tree.size();
        self.tree.push(h);
        Ok(index)
    }

    pub fn flush(&mut self) -> Result<()> {
        self.entries.flush()?;
        self.hashes.flush()?;
        self.index.flush()?;
        Ok(())
    }

    /// Reads entry `i` back.
    pub fn read(&self, i: u64) -> Result<Entry> {
        if i >= self.size() {
            bail!("entry {i} beyond the tree");
        }
        let mut idx = [0u8; 12];
        self.index_reader
            .read_exact_at(&mut idx, i * INDEX_RECORD)?;
        let (off, len) = parse_index(&idx);
        let mut rec = vec![0u8; len as usize];
        self.reader.read_exact_at(&mut rec, off)?;
        parse_record(&rec).with_context(|| format!("entry {i} is corrupt"))
    }

    /// `extra_data` for `get-entries` (RFC 6962 §4.6).
    pub fn extra_data(&self, e: &Entry) -> Result<Vec<u8>> {
        let mut chain = Vec::new();
        for fp in &e.chain {
            let der = self
                .issuer(fp)
                .with_context(|| format!("issuer {} missing", hex::encode(fp)))?;
            put_vec(&mut chain, 3, der);
        }
        let mut out = Vec::new();
        if e.entry_type == EntryType::Precert {
            put_vec(&mut out, 3, &e.pre_certificate);
        }
        put_vec(&mut out, 3, &chain);
        Ok(out)
    }
}

fn parse_index(rec: &[u8; 12]) -> (u64, u64) {
    let mut off = [0u8; 8];
    off.copy_from_slice(&rec[..8]);
    let mut len = [0u8; 4];
    len.copy_from_slice(&rec[8..]);
    (u64::from_be_bytes(off), u64::from(u32::from_be_bytes(len)))
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if data.len() < n {
        bail!("record truncated");
    }
    let (a, b) = data.split_at(n);
    *data = b;
    Ok(a)
}

fn take_u32_vec(data: &mut &[u8]) -> Result<Vec<u8>> {
    let l = take(data, 4)?;
    let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
    Ok(take(data, len)?.to_vec())
}

fn parse_record(mut rec: &[u8]) -> Result<Entry> {
    let d = &mut rec;
    let entry_type = match take(d, 1)?[0] {
        0 => EntryType::X509,
        1 => EntryType::Precert,
        t => bail!("unknown entry type {t}"),
    };
    let leaf_input = take_u32_vec(d)?;
    let pre_certificate = take_u32_vec(d)?;
    let n = take(d, 2)?;
    let n = u16::from_be_bytes([n[0], n[1]]);
    let mut chain = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        let mut fp = [0u8; 32];
        fp.copy_from_slice(take(d, 32)?);
        chain.push(fp);
    }
    Ok(Entry {
        entry_type,
        leaf_input,
        pre_certificate,
        chain,
    })
}
