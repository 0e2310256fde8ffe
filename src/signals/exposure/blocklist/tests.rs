use std::path::{Path, PathBuf};

use certresponder_inventory::inspect::read_public_key;
use chrono::Utc;

use super::*;
use crate::signals::Confidence;

/// The blocklists directory of a state directory under `dir`.
fn config(dir: &Path) -> PathBuf {
    dir.join("state").join("blocklists")
}

/// A fresh P-256 key, through the parser certificates go through.
fn ec_key() -> KeyInfo {
    use rcgen::PublicKeyData as _;
    let kp = rcgen::KeyPair::generate().unwrap();
    read_public_key(&kp.subject_public_key_info()).unwrap()
}

/// An RSA key from a made-up modulus (the identities need no real key).
fn rsa_key(seed: u8) -> KeyInfo {
    let mut modulus = vec![0xc0 | seed; 256];
    modulus[255] |= 1;
    KeyInfo::Rsa {
        bits: 2048,
        exponent: "65537".into(),
        modulus,
        exponent_bytes: vec![1, 0, 1],
    }
}

/// A badkeys list with `extra` records around `wanted` (hash + source id), sorted.
fn badkeys_file(path: &Path, wanted: &[([u8; 15], u8)]) {
    let mut records: Vec<[u8; 16]> = (0..500u32)
        .map(|i| {
            let mut r = [0u8; 16];
            r[..15].copy_from_slice(&bkhash_of(&i.to_be_bytes()));
            r[15] = 8;
            r
        })
        .collect();
    for (h, id) in wanted {
        let mut r = [0u8; 16];
        r[..15].copy_from_slice(h);
        r[15] = *id;
        records.push(r);
    }
    records.sort_unstable();
    std::fs::write(path, records.concat()).unwrap();
}

fn bkhash_of(n: &[u8]) -> [u8; 15] {
    super::super::identity::bkhash(n)
}

#[test]
fn badkeys_hits_name_the_list_source_and_lookup() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let (debian, other, clean) = (rsa_key(1), ec_key(), rsa_key(3));
    let d = KeyIds::of(&debian).bkhash.unwrap();
    let o = KeyIds::of(&other).bkhash.unwrap();
    let file = tmp.path().join("blocklist.dat");
    badkeys_file(&file, &[(d, 1), (o, 11)]);
    let imported = import(&cfg, &file, None, None, Utc::now()).unwrap();
    assert!(imported.detected && !imported.replaced);
    assert_eq!(imported.list.name, "blocklist");
    assert_eq!(imported.list.format, Format::Badkeys);
    assert_eq!(imported.list.records, 502);

    let lists = load_all(&cfg).unwrap();
    assert!(lists.problems().is_empty());
    let f = lists.check(&debian);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].check, "debian_weak_key");
    assert_eq!(f[0].confidence, Confidence::Confirmed);
    assert_eq!(f[0].deadline_hours, Some(24));
    assert!(
        f[0].message
            .contains("`blocklist` (badkeys, source `debianssl`, lookup "),
        "{}",
        f[0].message
    );
    assert_eq!(f[0].evidence["lists"][0]["lookup"], hex::encode(&d[..8]));
    assert_eq!(f[0].evidence["lists"][0]["source_id"], 1);

    let f = lists.check(&other);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].check, "blocklisted_key");
    assert!(f[0].message.contains("source `rfc`"), "{}", f[0].message);
    assert!(lists.check(&clean).is_empty());
    assert!(
        lists
            .check(&KeyInfo::Other {
                oid: "1.2.3".into()
            })
            .is_empty()
    );
}

#[test]
fn debian_and_spki_lists_match_their_identities() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let weak = rsa_key(5);
    let ec = ec_key();
    let ids = KeyIds::of(&ec);
    let deb = tmp.path().join("blacklist.RSA-2048");
    std::fs::write(
        &deb,
        format!(
            "# comment\n00000000000000000000\n{}\nffffffffffffffffffff\n",
            KeyIds::of(&weak).debian_suffix.unwrap()
        ),
    )
    .unwrap();
    let spki = tmp.path().join("pwned.txt");
    // The list names the compressed form; the key is uncompressed.
    std::fs::write(
        &spki,
        format!("{}\n", ids.spki_sha256_alt.as_ref().unwrap()),
    )
    .unwrap();
    let i = import(&cfg, &deb, None, None, Utc::now()).unwrap();
    assert_eq!(
        (i.list.name.as_str(), i.list.format, i.list.records),
        ("blacklist.rsa-2048", Format::Debian, 3)
    );
    let i = import(&cfg, &spki, None, Some("pwned"), Utc::now()).unwrap();
    assert_eq!(i.list.format, Format::Spki);

    let lists = load_all(&cfg).unwrap();
    let f = lists.check(&weak);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].check, "debian_weak_key");
    assert!(
        f[0].message.contains("`blacklist.rsa-2048` (debian)"),
        "{}",
        f[0].message
    );
    let hits = lists.hits(&ids);
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (hits[0].check, hits[0].matched),
        ("blocklisted_key", "spki_sha256_alt")
    );
    assert!(lists.check(&rsa_key(6)).is_empty());
}

#[test]
fn a_key_on_several_lists_gives_one_finding_per_check() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let key = rsa_key(7);
    let ids = KeyIds::of(&key);
    let a = tmp.path().join("a.dat");
    badkeys_file(&a, &[(ids.bkhash.unwrap(), 13)]);
    let b = tmp.path().join("b.txt");
    std::fs::write(&b, format!("{}\n", ids.spki_sha256.as_ref().unwrap())).unwrap();
    let c = tmp.path().join("c.txt");
    std::fs::write(&c, format!("{}\n", ids.debian_suffix.as_ref().unwrap())).unwrap();
    for f in [&a, &b, &c] {
        import(&cfg, f, None, None, Utc::now()).unwrap();
    }
    let f = load_all(&cfg).unwrap().check(&key);
    let checks: Vec<&str> = f.iter().map(|f| f.check).collect();
    assert_eq!(checks, ["debian_weak_key", "blocklisted_key"]);
    assert!(
        f[1].message
            .contains("blocklists `a` (badkeys, source `git`"),
        "{}",
        f[1].message
    );
    assert!(f[1].message.contains("`b` (spki)"), "{}", f[1].message);
    assert_eq!(f[1].evidence["lists"].as_array().unwrap().len(), 2);
}

#[test]
fn reimport_replaces_remove_forgets_and_damage_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let file = tmp.path().join("list.txt");
    std::fs::write(&file, format!("{}\n", "aa".repeat(32))).unwrap();
    import(&cfg, &file, Some(Format::Spki), Some("x"), Utc::now()).unwrap();
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&cfg.clone()), 0o700);
    std::fs::write(&file, format!("{}\n{}\n", "aa".repeat(32), "bb".repeat(32))).unwrap();
    let again = import(&cfg, &file, Some(Format::Spki), Some("x"), Utc::now()).unwrap();
    assert!(again.replaced);
    let all = list(&cfg).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].records, 2);
    assert_eq!(mode(&cfg.clone().join(&all[0].file)), 0o600);
    // The replaced list's file is gone; only the index and the new file are left.
    assert_eq!(std::fs::read_dir(cfg.clone()).unwrap().count(), 2);

    import(&cfg, &file, Some(Format::Spki), Some("y"), Utc::now()).unwrap();
    std::fs::write(cfg.clone().join(&list(&cfg).unwrap()[1].file), [0u8; 7]).unwrap();
    let lists = load_all(&cfg).unwrap();
    assert_eq!(lists.lists().count(), 1);
    assert_eq!(lists.problems().len(), 1);
    let problem = lists.problems()[0].to_string();
    assert!(problem.starts_with("blocklist `y` ("), "{problem}");
    assert!(
        problem.ends_with("7 bytes, but the index says 2 records of 32 bytes; import it again"),
        "{problem}"
    );

    assert_eq!(remove(&cfg, "y").unwrap().name, "y");
    let err = remove(&cfg, "y").unwrap_err().to_string();
    assert_eq!(err, "no blocklist named `y` (imported: x)");
    assert_eq!(list(&cfg).unwrap().len(), 1);
}

#[test]
fn nothing_imported_is_empty_and_bad_input_is_rejected_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let lists = load_all(&cfg).unwrap();
    assert!(lists.is_empty() && lists.problems().is_empty());
    assert!(
        !tmp.path().join("state").exists(),
        "loading creates nothing"
    );

    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, "0123456789abcdef0123\nnot hex at all\n").unwrap();
    let err = import(&cfg, &bad, Some(Format::Debian), None, Utc::now()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("bad.txt: line 2: expected 20 hex digits"),
        "{text}"
    );
    assert!(
        !text.contains("not hex at all"),
        "the line is not quoted: {text}"
    );
    assert!(list(&cfg).unwrap().is_empty());
    let err = import(&cfg, &bad, None, Some("Bad Name"), Utc::now()).unwrap_err();
    assert!(
        err.to_string().starts_with("`Bad Name`: a list name is"),
        "{err}"
    );
    let err = import(
        &cfg,
        &tmp.path().join("missing.dat"),
        None,
        None,
        Utc::now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("missing.dat: "), "{err}");

    std::fs::create_dir_all(cfg.clone()).unwrap();
    std::fs::write(
        cfg.clone().join("index.json"),
        "{\"version\": 9, \"lists\": []}",
    )
    .unwrap();
    let err = load_all(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("index.json: field `version`: 9 is not a version"),
        "{err}"
    );
}

#[test]
fn default_names_come_from_the_file_name() {
    assert_eq!(
        default_name(Path::new("/x/blocklist.dat")).unwrap(),
        "blocklist"
    );
    assert_eq!(
        default_name(Path::new("blacklist.RSA-2048")).unwrap(),
        "blacklist.rsa-2048"
    );
    assert_eq!(default_name(Path::new("My List.txt")).unwrap(), "my-list");
    assert_eq!(default_name(Path::new("__x")).unwrap(), "x");
    assert!(default_name(Path::new("...")).is_none());
    assert_eq!(badkeys_source(16), "firmwares");
    assert_eq!(badkeys_source(42), "id42");
}
