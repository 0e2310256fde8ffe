//! Verifying the chain: reads the records raw and names every record that was changed,
//! removed, reordered or damaged, and checks that the chain still reaches a head noted
//! earlier (which catches records cut from the end).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Serialize, Serializer};

use super::{AuditRecord, GENESIS, decode_record};
use crate::store::{Store, StoreError};

/// A head noted earlier: a record hash, optionally with its sequence number (`SEQ:HASH`,
/// as the service log shows it next to `audit_seq`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The record's sequence number, when noted.
    pub seq: Option<u64>,
    /// The record's hash (hex SHA-256, lower case).
    pub hash: String,
}

impl Head {
    /// Parses `HASH` or `SEQ:HASH`, where HASH is 64 hex digits.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (seq, hash) = match s.split_once(':') {
            Some((seq, hash)) => {
                let seq = seq
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!("head `{s}`: `{seq}` is not a record number (1, 2, ...)")
                    })?;
                (Some(seq), hash.trim())
            }
            None => (None, s),
        };
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "head `{s}`: expected HASH or SEQ:HASH, where HASH is 64 hex digits"
            ));
        }
        Ok(Self {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "{seq}:{}", self.hash),
            None => f.write_str(&self.hash),
        }
    }
}

/// What kind of problem [`verify`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The record's content no longer matches its hash.
    Changed,
    /// Records are absent from the middle or the start of the chain.
    Missing,
    /// Records are stored in each other's places, or a record follows the wrong one.
    OutOfOrder,
    /// A record does not link to the one before it, although both match their hashes:
    /// one was replaced with its hash recomputed.
    Unlinked,
    /// The stored bytes are not a record this release can read.
    Undecodable,
    /// Records after a noted head were removed from the end of the chain.
    Truncated,
    /// The record at a noted head's position has another hash, or the head is malformed.
    HeadMismatch,
}

/// One problem, about one record (0 when it is about the head given, not a record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Problem {
    /// The record it is about (for a run of records, the first).
    pub seq: u64,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// A sentence for a person, naming the record(s).
    pub what: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct VerifyReport {
    /// Records stored.
    pub length: u64,
    /// The last record's sequence number and hash, when it can be read.
    #[serde(serialize_with = "head_object", deserialize_with = "head_from_object")]
    pub head: Option<(u64, String)>,
    /// Every problem found, by record number; empty when the chain is intact.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether no problem was found.
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

fn head_object<S: Serializer>(head: &Option<(u64, String)>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct H<'a> {
        seq: u64,
        hash: &'a str,
        head: String,
    }
    head.as_ref()
        .map(|(seq, hash)| H {
            seq: *seq,
            hash,
            head: format!("{seq}:{hash}"),
        })
        .serialize(s)
}

fn head_from_object<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<(u64, String)>, D::Error> {
    #[derive(serde::Deserialize)]
    struct H {
        seq: u64,
        hash: String,
    }
    let h: Option<H> = serde::Deserialize::deserialize(d)?;
    Ok(h.map(|h| (h.seq, h.hash)))
}

/// Verifies the audit log. Reads the records raw, so that damage is reported rather than
/// refused: a record whose content no longer matches its hash (changed), gaps in the
/// sequence (removed), records stored in each other's places or following the wrong record
/// (reordered), records that do not link although each matches its own hash (replaced and
/// rehashed), and bytes that are not a record.
///
/// `head` is a head noted earlier (`HASH` or `SEQ:HASH`, from the service log or an
/// earlier `audit verify`): the chain must still contain it, which catches records cut
/// from the end. Only a store failure is an error.
pub fn verify(store: &dyn Store, head: Option<&str>) -> Result<VerifyReport, StoreError> {
    Ok(check(&store.audit_records()?, head))
}

/// A stored record: its key and, when it can be read, the record and whether its content
/// matches its hash.
struct Slot {
    key: u64,
    rec: Option<AuditRecord>,
    intact: bool,
}

impl Slot {
    /// Readable, matching its hash and stored under its own number.
    fn in_place(&self) -> bool {
        self.intact && self.rec.as_ref().is_some_and(|r| r.seq == self.key)
    }
}

fn problem(seq: u64, kind: ProblemKind, what: String) -> Problem {
    Problem { seq, kind, what }
}

/// A run of absent records, `a` to `b`.
fn missing(a: u64, b: u64) -> Problem {
    let what = if a == b {
        format!("record {a} is missing (removed)")
    } else {
        format!(
            "records {a} to {b} are missing (removed, {})",
            plural(b - a + 1, "record", "records")
        )
    };
    problem(a, ProblemKind::Missing, what)
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// Verifies raw records (key, bytes) in key order.
pub(crate) fn check(raw: &[(u64, Vec<u8>)], head: Option<&str>) -> VerifyReport {
    let mut problems = Vec::new();
    let mut slots = Vec::with_capacity(raw.len());
    for (key, bytes) in raw {
        let key = *key;
        if key == 0 {
            problems.push(problem(
                0,
                ProblemKind::OutOfOrder,
                "a record is stored under number 0, which no record has (they start at 1)".into(),
            ));
        }
        match decode_record(bytes) {
            Ok(rec) => {
                let intact = rec.hash_matches();
                if !intact {
                    problems.push(problem(
                        key,
                        ProblemKind::Changed,
                        format!("record {key} was changed: its content no longer matches its hash"),
                    ));
                }
                slots.push(Slot {
                    key,
                    rec: Some(rec),
                    intact,
                });
            }
            Err(reason) => {
                problems.push(problem(
                    key,
                    ProblemKind::Undecodable,
                    format!("record {key} cannot be read ({reason}): it was changed or damaged"),
                ));
                slots.push(Slot {
                    key,
                    rec: None,
                    intact: false,
                });
            }
        }
    }
    let by_key: BTreeMap<u64, &Slot> = slots.iter().map(|s| (s.key, s)).collect();

    // Records stored under another record's number.
    let mut paired = BTreeSet::new();
    let mut displaced = BTreeSet::new();
    for slot in &slots {
        let Some(rec) = slot.rec.as_ref().filter(|_| slot.intact) else {
            continue;
        };
        if rec.seq == slot.key || paired.contains(&slot.key) {
            continue;
        }
        displaced.insert(rec.seq);
        let swapped = by_key.get(&rec.seq).is_some_and(|other| {
            other.intact && other.rec.as_ref().is_some_and(|o| o.seq == slot.key)
        });
        if swapped {
            paired.insert(rec.seq);
            let (a, b) = (slot.key.min(rec.seq), slot.key.max(rec.seq));
            problems.push(problem(
                a,
                ProblemKind::OutOfOrder,
                format!(
                    "records {a} and {b} are out of order: each is stored in the other's place"
                ),
            ));
        } else {
            problems.push(problem(
                slot.key,
                ProblemKind::OutOfOrder,
                format!(
                    "record {} is out of order: it is stored in place of record {}",
                    rec.seq, slot.key
                ),
            ));
        }
    }

    // Gaps: numbers below the last key with no record stored under them (a record found
    // in another's place is reported as out of order, not as missing). Worked out by
    // ranges, so that a record stored under a huge number costs nothing.
    let last_key = slots.last().map_or(0, |s| s.key);
    let mut expected: u64 = 1;
    for slot in &slots {
        if slot.key > expected {
            let mut start = expected;
            for &d in displaced.range(expected..slot.key) {
                if d > start {
                    problems.push(missing(start, d - 1));
                }
                start = d + 1;
            }
            if start < slot.key {
                problems.push(missing(start, slot.key - 1));
            }
        }
        expected = expected.max(slot.key.saturating_add(1));
    }

    // Links: each record in place must name the hash of the record stored before it.
    let by_hash: BTreeMap<String, u64> = slots
        .iter()
        .filter(|s| s.intact)
        .filter_map(|s| s.rec.as_ref().map(|r| (r.hash.to_ascii_lowercase(), s.key)))
        .collect();
    for slot in &slots {
        let Some(rec) = slot.rec.as_ref().filter(|_| slot.in_place()) else {
            continue;
        };
        let k = slot.key;
        if k == 0 {
            continue;
        }
        let want = if k == 1 {
            GENESIS
        } else {
            // A changed record keeps its stored hash, which still links; a missing,
            // unreadable or displaced one is reported already.
            match by_key
                .get(&(k - 1))
                .and_then(|b| b.rec.as_ref().filter(|r| r.seq == b.key))
            {
                Some(before) => before.hash.as_str(),
                None => continue,
            }
        };
        if rec.prev.eq_ignore_ascii_case(want) {
            continue;
        }
        let p = match (by_hash.get(rec.prev.to_ascii_lowercase().as_str()), k) {
            (Some(j), 1) => problem(
                1,
                ProblemKind::OutOfOrder,
                format!("record 1 is out of order: it follows record {j}, but should start the chain"),
            ),
            (Some(j), _) => problem(
                k,
                ProblemKind::OutOfOrder,
                format!(
                    "record {k} is out of order: it follows record {j}, not record {}",
                    k - 1
                ),
            ),
            (None, 1) => problem(
                1,
                ProblemKind::Unlinked,
                "record 1 does not start the chain: records before it were removed and the rest renumbered, or it was replaced (its hash recomputed)".into(),
            ),
            (None, _) => problem(
                k,
                ProblemKind::Unlinked,
                format!(
                    "records {} and {k} do not link: record {} was replaced (its hash recomputed), or records between them were removed and the rest renumbered",
                    k - 1,
                    k - 1
                ),
            ),
        };
        problems.push(p);
    }

    if let Some(head) = head {
        problems.extend(check_head(&slots, head, last_key));
    }
    problems.sort_by_key(|p| p.seq);

    VerifyReport {
        length: raw.len() as u64,
        head: slots
            .last()
            .and_then(|s| s.rec.as_ref())
            .map(|r| (r.seq, r.hash.clone())),
        problems,
    }
}

/// Checks that the chain still contains a head noted earlier.
fn check_head(slots: &[Slot], head: &str, last_key: u64) -> Option<Problem> {
    let head = match Head::parse(head) {
        Ok(h) => h,
        Err(e) => return Some(problem(0, ProblemKind::HeadMismatch, e)),
    };
    let hash_of = |s: &Slot| s.rec.as_ref().map(|r| r.hash.to_ascii_lowercase());
    match head.seq {
        None => {
            let found = slots
                .iter()
                .any(|s| hash_of(s).as_deref() == Some(head.hash.as_str()));
            (!found).then(|| {
                problem(
                    last_key.saturating_add(1),
                    ProblemKind::Truncated,
                    format!(
                        "the chain does not contain head {}: records after it were removed (truncated) or the head is wrong",
                        head.hash
                    ),
                )
            })
        }
        Some(seq) if seq > last_key => {
            let ends = if last_key == 0 {
                "the chain is empty".to_string()
            } else {
                format!("the chain ends at record {last_key}")
            };
            Some(problem(
                last_key.saturating_add(1),
                ProblemKind::Truncated,
                format!(
                    "{ends} but head {head} was noted: {} removed from the end (truncated)",
                    plural(seq - last_key, "record was", "records were")
                ),
            ))
        }
        Some(seq) => match slots.iter().find(|s| s.key == seq) {
            None => Some(problem(
                seq,
                ProblemKind::HeadMismatch,
                format!("record {seq}, the noted head {head}, is missing"),
            )),
            Some(s) if hash_of(s).as_deref() == Some(head.hash.as_str()) => None,
            Some(_) => Some(problem(
                seq,
                ProblemKind::HeadMismatch,
                format!(
                    "record {seq} does not have the noted head's hash {}: the chain was rewritten from it on, or the head is wrong",
                    head.hash
                ),
            )),
        },
    }
}
