use std::sync::Arc;

use serde_json::json;

use super::verify::ProblemKind;
use super::*;
use crate::store::{MemoryStore, SledStore};

fn entry(i: u64) -> AuditEntry<'static> {
    AuditEntry {
        kind: if i.is_multiple_of(2) {
            "step"
        } else {
            "signal"
        },
        actor: "certresponder",
        cert: Some("web"),
        case: i.is_multiple_of(3).then_some(i / 3),
        data: json!({"i": i, "nested": {"z": 1, "a": [1, "two", null]}}),
    }
}

fn fill(store: &dyn Store, n: u64) {
    for i in 1..=n {
        assert_eq!(append(store, entry(i)).unwrap(), i);
    }
}

fn raw(store: &dyn Store, seq: u64) -> Vec<u8> {
    store
        .audit_records()
        .unwrap()
        .into_iter()
        .find(|(k, _)| *k == seq)
        .unwrap()
        .1
}

fn kinds(report: &VerifyReport) -> Vec<(u64, ProblemKind)> {
    report.problems.iter().map(|p| (p.seq, p.kind)).collect()
}

fn sled() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(&dir.path().join("db")).unwrap();
    (dir, store)
}

/// Runs `f` on a memory store and on a sled store.
fn both(f: impl Fn(&dyn Store)) {
    f(&MemoryStore::new());
    let (_dir, store) = sled();
    f(&store);
}

#[test]
fn an_intact_chain_verifies() {
    both(|store| {
        let empty = verify(store, None).unwrap();
        assert!(empty.intact() && empty.length == 0 && empty.head.is_none());
        fill(store, 5);
        let report = verify(store, None).unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.length, 5);
        let recs = records(store).unwrap();
        assert_eq!(recs.len(), 5);
        assert_eq!(recs[0].prev, GENESIS);
        for w in recs.windows(2) {
            assert_eq!(w[1].prev, w[0].hash);
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
        assert_eq!(report.head, Some((5, recs[4].hash.clone())));
        assert_eq!(head(store).unwrap(), report.head);
        assert_eq!(
            for_case(store, 1)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            [3]
        );
        // The noted head verifies in both forms, and so does an older one.
        let h = &recs[4].hash;
        assert!(verify(store, Some(h)).unwrap().intact());
        assert!(verify(store, Some(&recs[4].head())).unwrap().intact());
        assert!(verify(store, Some(&recs[1].head())).unwrap().intact());
        assert!(
            verify(store, Some(&h.to_ascii_uppercase()))
                .unwrap()
                .intact()
        );
    });
}

#[test]
fn the_hash_covers_every_field_and_ignores_key_order() {
    let base = AuditRecord {
        seq: 3,
        at: Utc::now(),
        kind: "step".into(),
        actor: "alice (uid 1000)".into(),
        cert: Some("web".into()),
        case: Some(4),
        data: json!({"a": 1, "b": "x"}),
        prev: GENESIS.into(),
        hash: String::new(),
    };
    let h = record_hash(&base);
    let variants = [
        AuditRecord {
            seq: 4,
            ..base.clone()
        },
        AuditRecord {
            at: base.at + chrono::Duration::nanoseconds(1),
            ..base.clone()
        },
        AuditRecord {
            kind: "stepx".into(),
            ..base.clone()
        },
        AuditRecord {
            actor: "bob".into(),
            ..base.clone()
        },
        AuditRecord {
            cert: None,
            ..base.clone()
        },
        AuditRecord {
            case: None,
            ..base.clone()
        },
        AuditRecord {
            data: json!({"a": 1, "b": "y"}),
            ..base.clone()
        },
        AuditRecord {
            prev: "1".repeat(64),
            ..base.clone()
        },
        // Moving bytes between adjacent fields changes the hash (length prefixes).
        AuditRecord {
            kind: "ste".into(),
            actor: "palice (uid 1000)".into(),
            ..base.clone()
        },
    ];
    for v in &variants {
        assert_ne!(record_hash(v), h, "{v:?}");
    }
    let reordered = AuditRecord {
        data: serde_json::from_str(r#"{"b": "x", "a": 1}"#).unwrap(),
        ..base.clone()
    };
    assert_eq!(record_hash(&reordered), h);
    // The stored form round-trips to the same hash.
    let mut rec = base;
    rec.hash = h.clone();
    let back = decode_record(&encode_record(&rec).unwrap()).unwrap();
    assert_eq!(back, rec);
    assert!(back.hash_matches());
}

#[test]
fn a_changed_record_is_named() {
    both(|store| {
        fill(store, 5);
        let mut v: serde_json::Value = serde_json::from_slice(&raw(store, 3)).unwrap();
        v["data"]["i"] = json!(99);
        store
            .audit_raw_put(3, Some(&serde_json::to_vec(&v).unwrap()))
            .unwrap();
        let report = verify(store, None).unwrap();
        assert_eq!(kinds(&report), [(3, ProblemKind::Changed)], "{report:?}");
        assert!(report.problems[0].what.contains("record 3 was changed"));

        // A change with the hash recomputed breaks the link to the next record instead.
        let mut rec = decode_record(&raw(store, 3)).unwrap();
        rec.hash = record_hash(&rec);
        store
            .audit_raw_put(3, Some(&encode_record(&rec).unwrap()))
            .unwrap();
        let report = verify(store, None).unwrap();
        assert_eq!(kinds(&report), [(4, ProblemKind::Unlinked)], "{report:?}");
        assert!(
            report.problems[0].what.contains("record 3 was replaced"),
            "{report:?}"
        );
    });
}

#[test]
fn a_removed_record_is_named() {
    both(|store| {
        fill(store, 6);
        store.audit_raw_put(3, None).unwrap();
        let report = verify(store, None).unwrap();
        assert_eq!(kinds(&report), [(3, ProblemKind::Missing)], "{report:?}");
        assert_eq!(report.problems[0].what, "record 3 is missing (removed)");

        store.audit_raw_put(4, None).unwrap();
        store.audit_raw_put(1, None).unwrap();
        let report = verify(store, None).unwrap();
        assert_eq!(
            kinds(&report),
            [(1, ProblemKind::Missing), (3, ProblemKind::Missing)],
            "{report:?}"
        );
        assert!(
            report.problems[1]
                .what
                .contains("records 3 to 4 are missing")
        );
    });
}

#[test]
fn swapped_records_are_out_of_order() {
    both(|store| {
        fill(store, 6);
        let (three, five) = (raw(store, 3), raw(store, 5));
        store.audit_raw_put(3, Some(&five)).unwrap();
        store.audit_raw_put(5, Some(&three)).unwrap();
        let report = verify(store, None).unwrap();
        assert_eq!(kinds(&report), [(3, ProblemKind::OutOfOrder)], "{report:?}");
        assert!(
            report.problems[0]
                .what
                .contains("records 3 and 5 are out of order"),
            "{report:?}"
        );
        // Neighbours too.
        store.audit_raw_put(3, Some(&three)).unwrap();
        store.audit_raw_put(5, Some(&five)).unwrap();
        assert!(verify(store, None).unwrap().intact());
        let (one, two) = (raw(store, 1), raw(store, 2));
        store.audit_raw_put(1, Some(&two)).unwrap();
        store.audit_raw_put(2, Some(&one)).unwrap();
        let report = verify(store, None).unwrap();
        assert_eq!(kinds(&report), [(1, ProblemKind::OutOfOrder)], "{report:?}");
    });
}

#[test]
fn renumbered_records_are_out_of_order() {
    // Records 3 and 4 trade places and are renumbered and rehashed to fit: each still
    // names the hash of the record it followed.
    let store = MemoryStore::new();
    fill(&store, 5);
    let mut three = decode_record(&raw(&store, 3)).unwrap();
    let mut four = decode_record(&raw(&store, 4)).unwrap();
    three.seq = 4;
    four.seq = 3;
    three.hash = record_hash(&three);
    four.hash = record_hash(&four);
    store
        .audit_raw_put(3, Some(&encode_record(&four).unwrap()))
        .unwrap();
    store
        .audit_raw_put(4, Some(&encode_record(&three).unwrap()))
        .unwrap();
    let report = verify(&store, None).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.seq == 4 && p.kind == ProblemKind::OutOfOrder),
        "{report:?}"
    );
    assert!(!report.intact());
}

#[test]
fn a_truncated_tail_is_caught_by_the_noted_head() {
    both(|store| {
        fill(store, 6);
        let before = verify(store, None).unwrap();
        let (seq, hash) = before.head.clone().unwrap();
        assert_eq!(seq, 6);
        store.audit_raw_put(6, None).unwrap();
        store.audit_raw_put(5, None).unwrap();

        let alone = verify(store, None).unwrap();
        assert!(alone.intact(), "a shorter chain is consistent by itself");
        assert_eq!(alone.length, 4);

        let by_hash = verify(store, Some(&hash)).unwrap();
        assert_eq!(kinds(&by_hash), [(5, ProblemKind::Truncated)]);
        assert!(
            by_hash.problems[0]
                .what
                .contains(&format!("does not contain head {hash}")),
            "{by_hash:?}"
        );
        let by_seq = verify(store, Some(&format!("{seq}:{hash}"))).unwrap();
        assert_eq!(kinds(&by_seq), [(5, ProblemKind::Truncated)]);
        assert!(
            by_seq.problems[0]
                .what
                .contains("ends at record 4 but head 6:"),
            "{by_seq:?}"
        );
        assert!(
            by_seq.problems[0].what.contains("2 records were removed"),
            "{by_seq:?}"
        );

        // Appending again does not hide it: record 5 is a different record.
        append(store, entry(7)).unwrap();
        append(store, entry(8)).unwrap();
        let regrown = verify(store, Some(&format!("{seq}:{hash}"))).unwrap();
        assert_eq!(kinds(&regrown), [(6, ProblemKind::HeadMismatch)]);
        assert_eq!(
            kinds(&verify(store, Some(&hash)).unwrap()),
            [(7, ProblemKind::Truncated)]
        );
        let bad = verify(store, Some("nothex")).unwrap();
        assert_eq!(kinds(&bad), [(0, ProblemKind::HeadMismatch)]);
    });
}

#[test]
fn undecodable_bytes_are_reported_not_panicked() {
    both(|store| {
        fill(store, 4);
        store.audit_raw_put(2, Some(b"\xff\x00garbage")).unwrap();
        store.audit_raw_put(3, Some(b"{\"v\": 1}")).unwrap();
        store
            .audit_raw_put(4, Some(b"{\"v\": 9, \"seq\": 4}"))
            .unwrap();
        let report = verify(store, None).unwrap();
        assert_eq!(
            kinds(&report),
            [
                (2, ProblemKind::Undecodable),
                (3, ProblemKind::Undecodable),
                (4, ProblemKind::Undecodable)
            ],
            "{report:?}"
        );
        assert!(report.problems[2].what.contains("format version 9"));
        assert!(records(store).is_err());
        assert!(head(store).is_err());
        // The log keeps growing after a damaged last record; verify names only the damage.
        assert_eq!(append(store, entry(5)).unwrap(), 5);
        let report = verify(store, None).unwrap();
        assert_eq!(report.problems.len(), 3, "{report:?}");
        assert_eq!(report.head.unwrap().0, 5);
    });
}

#[test]
fn concurrent_appends_make_one_chain() {
    let (_dir, store) = sled();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut seqs = Vec::new();
                for i in 0..25 {
                    seqs.push(append(&*store, entry(t * 100 + i)).unwrap());
                }
                seqs
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let report = verify(&*store, None).unwrap();
    assert!(report.intact(), "{report:?}");
    assert_eq!(report.length, 200);
}

#[test]
fn heads_parse_in_both_forms() {
    let h = "ab".repeat(32);
    assert_eq!(
        Head::parse(&h).unwrap(),
        Head {
            seq: None,
            hash: h.clone()
        }
    );
    let upper = format!("12:{}", h.to_ascii_uppercase());
    let parsed = Head::parse(&upper).unwrap();
    assert_eq!(parsed.seq, Some(12));
    assert_eq!(parsed.to_string(), format!("12:{h}"));
    for bad in [
        "",
        "12",
        "x:".to_string().as_str(),
        &format!("0:{h}"),
        &h[1..],
    ] {
        assert!(Head::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn records_under_odd_numbers_are_reported_quickly() {
    both(|store| {
        fill(store, 3);
        let two = raw(store, 2);
        store.audit_raw_put(2, None).unwrap();
        store.audit_raw_put(u64::MAX, Some(&two)).unwrap();
        store.audit_raw_put(0, Some(&raw(store, 1))).unwrap();
        let report = verify(store, None).unwrap();
        let max = u64::MAX;
        assert_eq!(
            kinds(&report),
            [
                (0, ProblemKind::OutOfOrder),
                (0, ProblemKind::OutOfOrder),
                (4, ProblemKind::Missing),
                (max, ProblemKind::OutOfOrder)
            ],
            "{report:?}"
        );
        assert!(
            report.problems[2].what.contains("records 4 to"),
            "{report:?}"
        );
        assert!(
            verify(store, Some(&format!("{max}:{}", "0".repeat(64))))
                .unwrap()
                .problems
                .iter()
                .any(|p| p.kind == ProblemKind::HeadMismatch)
        );
    });
}
