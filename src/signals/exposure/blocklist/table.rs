//! A sorted table of fixed-size records, searched by a key prefix of each record.
//!
//! The records are kept as one flat buffer, exactly as they are stored on disk. A directory
//! of the first record for each value of the key's leading bits (about one bucket per
//! `RECORDS_PER_BUCKET` records, at most 2^20 buckets) narrows every lookup to a handful
//! of neighbouring records, which a binary search then finishes: a lookup costs two or three
//! cache misses instead of the twenty of a plain binary search over a 60 MB list. The keys
//! are hashes, so the buckets are even.

/// Why a buffer is not a valid table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The length is not a whole number of records.
    #[error("{len} bytes is not a whole number of {record_len}-byte records")]
    Length {
        /// Buffer length.
        len: usize,
        /// Record length.
        record_len: usize,
    },
    /// A record sorts before the one before it.
    #[error(
        "the records are not sorted: record {index} (byte offset {offset}) sorts before record {}",
        .index - 1
    )]
    Unsorted {
        /// 0-based index of the first record out of order.
        index: usize,
        /// Its byte offset.
        offset: usize,
    },
    /// More records than the directory can index.
    #[error("{records} records are more than the {} a list may hold", u32::MAX)]
    TooLarge {
        /// The number of records.
        records: usize,
    },
}

/// Records per directory bucket the directory aims for.
const RECORDS_PER_BUCKET: usize = 8;
/// The directory's size bounds, in bits of key prefix (256 to 1,048,576 buckets: 1 KiB to
/// 4 MiB of directory).
const MIN_BITS: u32 = 8;
const MAX_BITS: u32 = 20;

/// The key prefix (its first three bytes, big-endian) as a bucket number of `bits` bits.
fn bucket_of(key: &[u8], bits: u32) -> usize {
    let prefix = u32::from_be_bytes([0, key[0], key[1], key[2]]);
    (prefix >> (24 - bits)) as usize
}

/// Sorted fixed-size records; a record's first `key_len` bytes are its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    record_len: usize,
    key_len: usize,
    data: Vec<u8>,
    /// Bits of key prefix the directory is indexed by.
    bits: u32,
    /// `dir[b]`: index of the first record whose prefix is `b` or more; the last entry is
    /// the record count.
    dir: Vec<u32>,
}

impl Table {
    /// Takes `data` as records of `record_len` bytes, checks that they are sorted (bytewise,
    /// whole records; equal neighbours are allowed), and indexes them, in one pass.
    ///
    /// `key_len` must be at least 3 and at most `record_len` (the formats' constants).
    pub fn from_sorted(
        data: Vec<u8>,
        record_len: usize,
        key_len: usize,
    ) -> Result<Self, TableError> {
        debug_assert!(key_len >= 3 && key_len <= record_len);
        if record_len == 0 || !data.len().is_multiple_of(record_len) {
            return Err(TableError::Length {
                len: data.len(),
                record_len,
            });
        }
        let records = data.len() / record_len;
        if u32::try_from(records).is_err() {
            return Err(TableError::TooLarge { records });
        }
        let wanted = (records / RECORDS_PER_BUCKET).max(1);
        let bits = (usize::BITS - wanted.leading_zeros()).clamp(MIN_BITS, MAX_BITS);
        let mut dir = vec![0u32; (1 << bits) + 1];
        let mut next_bucket = 0usize;
        let mut prev: Option<&[u8]> = None;
        for (i, rec) in data.chunks_exact(record_len).enumerate() {
            if let Some(p) = prev
                && rec < p
            {
                return Err(TableError::Unsorted {
                    index: i,
                    offset: i * record_len,
                });
            }
            prev = Some(rec);
            let bucket = bucket_of(rec, bits);
            // Records are sorted, so buckets only grow: every bucket up to this one starts
            // here unless an earlier record already started it.
            while next_bucket <= bucket {
                // `records` fits in u32 (checked above), so `i` does.
                dir[next_bucket] = i as u32;
                next_bucket += 1;
            }
        }
        for d in &mut dir[next_bucket..] {
            *d = records as u32;
        }
        Ok(Self {
            record_len,
            key_len,
            data,
            bits,
            dir,
        })
    }

    /// Builds a table from unsorted records: sorts them and drops duplicates.
    pub fn from_unsorted<const N: usize>(
        mut records: Vec<[u8; N]>,
        key_len: usize,
    ) -> Result<Self, TableError> {
        records.sort_unstable();
        records.dedup();
        let data = records.concat();
        Self::from_sorted(data, N, key_len)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.data.len() / self.record_len
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Record length in bytes.
    pub fn record_len(&self) -> usize {
        self.record_len
    }

    /// The records, as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The record whose key is `key` (the first `key_len` bytes of `key`; shorter keys find
    /// nothing). With several, any one of them.
    pub fn find(&self, key: &[u8]) -> Option<&[u8]> {
        let key = key.get(..self.key_len)?;
        let bucket = bucket_of(key, self.bits);
        let mut lo = self.dir[bucket] as usize;
        let mut hi = self.dir[bucket + 1] as usize;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let start = mid * self.record_len;
            let rec = &self.data[start..start + self.record_len];
            match rec[..self.key_len].cmp(key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(rec),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(first: u8, second: u8, last: u8) -> [u8; 4] {
        [first, second, 0xaa, last]
    }

    #[test]
    fn finds_the_first_the_last_and_nothing_else() {
        let records = [
            rec(0, 0, 1),
            rec(0, 0, 2),
            rec(0x12, 0x34, 3),
            rec(0x12, 0x35, 4),
            rec(0xff, 0xff, 5),
        ];
        let t = Table::from_sorted(records.concat(), 4, 3).unwrap();
        assert_eq!(t.len(), 5);
        // First and last records; the record's last byte is not part of the key.
        // Two records share the first key: either is the answer.
        assert!(matches!(t.find(&[0, 0, 0xaa]).unwrap()[3], 1 | 2));
        assert_eq!(t.find(&[0xff, 0xff, 0xaa]).unwrap(), rec(0xff, 0xff, 5));
        assert_eq!(t.find(&[0x12, 0x35, 0xaa, 0x99]).unwrap()[3], 4);
        for miss in [
            [0, 0, 0xa9],
            [0, 1, 0xaa],
            [0x12, 0x34, 0xab],
            [0xff, 0xff, 0xff],
            [0xff, 0xfe, 0xaa],
        ] {
            assert!(t.find(&miss).is_none(), "{miss:?}");
        }
        assert!(t.find(&[0, 0]).is_none(), "a short key finds nothing");
        assert_eq!(t.dir.len(), (1 << MIN_BITS) + 1);
    }

    #[test]
    fn every_record_of_a_dense_table_is_found() {
        let mut records: Vec<[u8; 3]> = (0..70_000u32)
            .map(|i| {
                let b = (i.wrapping_mul(2_654_435_761)).to_be_bytes();
                [b[0], b[1], b[2]]
            })
            .collect();
        let t = Table::from_unsorted(records.clone(), 3).unwrap();
        records.sort_unstable();
        records.dedup();
        assert_eq!(t.len(), records.len());
        for r in &records {
            assert_eq!(t.find(r).unwrap(), r);
        }
        let mut missing = 0;
        for i in 0..1000u32 {
            let k = (i * 7919 + 13).to_be_bytes();
            if records.binary_search(&[k[1], k[2], k[3]]).is_err() {
                missing += 1;
                assert!(t.find(&[k[1], k[2], k[3]]).is_none());
            }
        }
        assert!(missing > 0);
        assert_eq!(t.bits, 14, "about 8 records per bucket");
    }

    #[test]
    fn empty_tables_find_nothing() {
        let t = Table::from_sorted(Vec::new(), 16, 15).unwrap();
        assert!(t.is_empty());
        assert!(t.find(&[0; 15]).is_none());
    }

    #[test]
    fn rejects_partial_records_and_names_the_first_record_out_of_order() {
        assert_eq!(
            Table::from_sorted(vec![0; 17], 16, 15).unwrap_err(),
            TableError::Length {
                len: 17,
                record_len: 16
            }
        );
        let data = [
            rec(0, 0, 1),
            rec(0, 0, 1),
            rec(0, 1, 0),
            rec(0, 0, 9),
            rec(0, 0, 0),
        ]
        .concat();
        let err = Table::from_sorted(data, 4, 3).unwrap_err();
        assert_eq!(
            err,
            TableError::Unsorted {
                index: 3,
                offset: 12
            }
        );
        assert_eq!(
            err.to_string(),
            "the records are not sorted: record 3 (byte offset 12) sorts before record 2"
        );
    }
}
