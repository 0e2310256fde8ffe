//! `issuer_distrusted`: certificates signed by a CA that is no longer trusted.
//!
//! A distrust names the CA by its name (the full distinguished name or its common name), by
//! the SHA-256 of its SubjectPublicKeyInfo (`spki:HEX`) or by the SHA-256 of its certificate
//! (`sha256:HEX`), optionally only for certificates issued on or after a date (browsers
//! distrust a CA for certificates issued after a cutoff and leave older ones be). It comes
//! from the configuration (`[[distrust]]`) or from `certresponder distrust`, which keeps it in
//! the store so that later scans still find what was missed.
//!
//! A certificate is affected when its issuer, or any CA certificate in its deployed chain,
//! matches: distrusting a root affects everything beneath it.

use std::collections::{BTreeMap, BTreeSet};

use certresponder_inventory::inspect::CertInfo;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::signals::{Confidence, Finding};
use crate::store::{Store, StoreError};

/// The store blob holding the distrusts recorded by `certresponder distrust`.
const BLOB: &str = "distrust/list";

/// The deadline a distrust gives when it names none: the Baseline Requirements' shortest
/// clock, the one a CA's own mass revocation runs on.
pub const DEFAULT_DEADLINE_HOURS: u32 = 24;

/// How a CA is named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum CaRef {
    /// The distinguished name (as `inspect` prints it) or its common name; case and the
    /// spaces after commas do not matter.
    Name(String),
    /// SHA-256 of the CA's SubjectPublicKeyInfo, lower-case hex.
    Spki(String),
    /// SHA-256 of the CA certificate, lower-case hex.
    CertSha256(String),
}

impl CaRef {
    /// Parses `spki:HEX`, `sha256:HEX` or a name.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("the CA is empty: give its name, `spki:HEX` or `sha256:HEX`".into());
        }
        let hex = |h: &str, what: &str| {
            let h = h.trim().replace(':', "").to_ascii_lowercase();
            if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) {
                Ok(h)
            } else {
                Err(format!(
                    "`{s}`: {what} must be 64 hexadecimal digits (a SHA-256)"
                ))
            }
        };
        if let Some(h) = s.strip_prefix("spki:") {
            return hex(h, "the SPKI SHA-256").map(Self::Spki);
        }
        if let Some(h) = s.strip_prefix("sha256:") {
            return hex(h, "the certificate SHA-256").map(Self::CertSha256);
        }
        Ok(Self::Name(s.to_string()))
    }

    /// The written form, as `parse` reads it.
    pub fn written(&self) -> String {
        match self {
            Self::Name(n) => n.clone(),
            Self::Spki(h) => format!("spki:{h}"),
            Self::CertSha256(h) => format!("sha256:{h}"),
        }
    }

    /// How it matched `cert` (the leaf's issuer or a CA in the chain), if it did.
    fn matched(&self, leaf: &CertInfo, chain: &[CertInfo]) -> Option<String> {
        match self {
            Self::Name(n) => {
                let want = normalise(n);
                let is = |dn: &str| {
                    normalise(dn) == want
                        || common_name(dn).is_some_and(|cn| normalise(&cn) == want)
                };
                if is(&leaf.issuer) {
                    return Some(format!("issuer name {}", leaf.issuer));
                }
                chain
                    .iter()
                    .find(|c| is(&c.subject))
                    .map(|c| format!("chain CA {}", c.subject))
            }
            Self::Spki(h) => chain
                .iter()
                .find(|c| &c.fingerprints.spki_sha256 == h)
                .map(|c| format!("SPKI SHA-256 of chain CA {}", c.subject)),
            Self::CertSha256(h) => chain
                .iter()
                .find(|c| &c.fingerprints.cert_sha256 == h)
                .map(|c| format!("certificate SHA-256 of chain CA {}", c.subject)),
        }
    }
}

/// A distrusted CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distrust {
    /// The CA.
    pub ca: CaRef,
    /// Only certificates whose notBefore is at or after this (browsers' cutoffs); `None`: all.
    pub issued_after: Option<DateTime<Utc>>,
    /// Hours from detection by which the replacement must be done.
    pub deadline_hours: u32,
    /// The issuer adapter replacements go through instead of each entry's `fallback_issuer`.
    pub replace_with: Option<String>,
    /// Why, for people (the browser announcement, the CA's incident).
    pub reason: Option<String>,
    /// `config` or `command`.
    pub origin: String,
    /// Who recorded it (for `command`).
    pub added_by: Option<String>,
    /// When it was recorded.
    pub added_at: Option<DateTime<Utc>>,
}

impl Distrust {
    /// The finding for a certificate it affects, or `None`.
    pub fn check(&self, leaf: &CertInfo, chain: &[CertInfo]) -> Option<Finding> {
        if leaf.is_ca {
            return None;
        }
        // When it was issued: its earliest embedded SCT where it has SCTs (as browsers date
        // certificates for their distrusts: a notBefore can be backdated, a log's timestamp
        // cannot), else its notBefore.
        let issued = leaf
            .scts
            .iter()
            .map(|s| s.timestamp)
            .min()
            .unwrap_or(leaf.not_before);
        if self.issued_after.is_some_and(|cut| issued < cut) {
            return None;
        }
        let how = self.ca.matched(leaf, chain)?;
        let cutoff = self
            .issued_after
            .map(|t| format!(", issued on or after {}", t.format("%Y-%m-%d")))
            .unwrap_or_default();
        Some(Finding {
            check: "issuer_distrusted",
            confidence: Confidence::High,
            message: format!(
                "issued by a distrusted CA ({}{cutoff}; matched by {how}){}",
                self.ca.written(),
                self.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ),
            revocation_reason: None,
            deadline_hours: Some(self.deadline_hours),
            evidence: serde_json::json!({
                "ca": self.ca,
                "matched_by": how,
                "issuer": leaf.issuer,
                "not_before": leaf.not_before,
                "issued": issued,
                "dated_by": if leaf.scts.is_empty() { "notBefore" } else { "earliest SCT" },
                "issued_after": self.issued_after,
                "deadline_hours": self.deadline_hours,
                "replace_with": self.replace_with,
                "reason": self.reason,
                "origin": self.origin,
            }),
        })
    }

    /// Whether `other` names the same CA with the same cutoff (recording it again replaces it).
    pub fn same_as(&self, other: &Self) -> bool {
        self.ca == other.ca && self.issued_after == other.issued_after
    }
}

/// Reads `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        && let Some(dt) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(dt.and_utc());
    }
    DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| format!("`{s}` is not a date: write 2024-11-12 or 2024-11-12T00:00:00Z"))
}

/// Hours for a deadline written `24h`, `5d`, `90m` (rounded up to whole hours, at least 1).
pub fn parse_deadline(s: &str) -> Result<u32, String> {
    let d = crate::policy::duration::parse(s)?;
    let secs = d.num_seconds();
    if secs <= 0 {
        return Err(format!("`{s}`: the deadline must be above zero"));
    }
    u32::try_from((secs + 3_599) / 3_600).map_err(|_| format!("`{s}` is too long"))
}

/// The distrusts `certresponder distrust` recorded.
pub fn recorded(store: &dyn Store) -> Result<Vec<Distrust>, StoreError> {
    match store.get_blob(BLOB)? {
        None => Ok(Vec::new()),
        Some(bytes) => crate::store::decode("blobs", BLOB.as_bytes(), &bytes),
    }
}

/// Records a distrust (replacing one for the same CA and cutoff); returns whether it was new.
pub fn record(store: &dyn Store, d: Distrust) -> Result<bool, StoreError> {
    let mut list = recorded(store)?;
    let before = list.len();
    list.retain(|x| !x.same_as(&d));
    let new = list.len() == before;
    list.push(d);
    store.put_blob(BLOB, &crate::store::encode(&list)?)?;
    Ok(new)
}

/// Removes the recorded distrusts of a CA; returns how many there were.
pub fn remove(store: &dyn Store, ca: &CaRef) -> Result<usize, StoreError> {
    let mut list = recorded(store)?;
    let before = list.len();
    list.retain(|x| &x.ca != ca);
    store.put_blob(BLOB, &crate::store::encode(&list)?)?;
    Ok(before - list.len())
}

/// Every distrust in force: the configuration's, then the recorded ones.
pub fn all(cfg_list: &[Distrust], store: &dyn Store) -> Result<Vec<Distrust>, StoreError> {
    let mut out = cfg_list.to_vec();
    out.extend(recorded(store)?);
    Ok(out)
}

/// The first finding among `list` for a certificate.
pub fn check_all(list: &[Distrust], leaf: &CertInfo, chain: &[CertInfo]) -> Option<Finding> {
    list.iter().find_map(|d| d.check(leaf, chain))
}

fn normalise(dn: &str) -> String {
    dn.split(',')
        .map(|part| part.split('=').map(str::trim).collect::<Vec<_>>().join("="))
        .collect::<Vec<_>>()
        .join(",")
        .to_lowercase()
}

fn common_name(dn: &str) -> Option<String> {
    dn.split(',')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("cn"))
        .map(|(_, v)| v.trim().to_string())
}

/// Fields of a `[[distrust]]` table.
pub const CONFIG_FIELDS: &[&str] = &[
    "ca",
    "ca_file",
    "issued_after",
    "deadline",
    "issuer",
    "reason",
];

/// Reads the CA certificate at `path` (PEM or DER; the first certificate) and names it by
/// its SPKI SHA-256, so that a re-signed copy of the same CA matches too.
pub fn ca_from_file(path: &std::path::Path) -> Result<CaRef, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = certresponder_inventory::inspect::inspect_certificates(&bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let first = certs
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no certificate in the file", path.display()))?;
    if !first.is_ca {
        return Err(format!(
            "{}: `{}` is not a CA certificate (no basicConstraints CA:TRUE)",
            path.display(),
            first.subject
        ));
    }
    Ok(CaRef::Spki(first.fingerprints.spki_sha256))
}

/// Parses one `[[distrust]]` table; errors give the field (within the table) and the reason.
/// Relative `ca_file` paths are taken from `base`.
pub fn parse_config(t: &toml::Table, base: &std::path::Path) -> Result<Distrust, (String, String)> {
    for key in t.keys() {
        if !CONFIG_FIELDS.contains(&key.as_str()) {
            let hint = certresponder_inventory::did_you_mean(key, CONFIG_FIELDS)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!(" (known fields: {})", CONFIG_FIELDS.join(", ")));
            return Err((key.clone(), format!("unknown field{hint}")));
        }
    }
    let string = |field: &str| -> Result<Option<String>, (String, String)> {
        match t.get(field) {
            None => Ok(None),
            Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(other) => Err((
                field.to_string(),
                format!("must be a non-empty string, found {other}"),
            )),
        }
    };
    let ca = match (string("ca")?, string("ca_file")?) {
        (Some(c), None) => CaRef::parse(&c).map_err(|e| ("ca".to_string(), e))?,
        (None, Some(f)) => {
            let p = std::path::PathBuf::from(&f);
            let p = if p.is_absolute() { p } else { base.join(p) };
            ca_from_file(&p).map_err(|e| ("ca_file".to_string(), e))?
        }
        (Some(_), Some(_)) => {
            return Err((
                "ca".into(),
                "give either `ca` or `ca_file`, not both".into(),
            ));
        }
        (None, None) => {
            return Err((
                "ca".into(),
                "missing: name the CA with `ca` (its name, `spki:HEX` or `sha256:HEX`) or `ca_file` (its certificate)".into(),
            ));
        }
    };
    let issued_after = match t.get("issued_after") {
        None => None,
        Some(toml::Value::Datetime(d)) => {
            Some(parse_date(&d.to_string()).map_err(|e| ("issued_after".to_string(), e))?)
        }
        Some(toml::Value::String(s)) => {
            Some(parse_date(s).map_err(|e| ("issued_after".to_string(), e))?)
        }
        Some(other) => {
            return Err((
                "issued_after".into(),
                format!("must be a date such as 2024-11-12, found {other}"),
            ));
        }
    };
    let deadline_hours = match string("deadline")? {
        None => DEFAULT_DEADLINE_HOURS,
        Some(d) => parse_deadline(&d).map_err(|e| ("deadline".to_string(), e))?,
    };
    Ok(Distrust {
        ca,
        issued_after,
        deadline_hours,
        replace_with: string("issuer")?,
        reason: string("reason")?,
        origin: "config".into(),
        added_by: None,
        added_at: None,
    })
}

/// When `ca` names a CA by common name alone and that name is the common name of more than
/// one CA in the inventory (the issuers and chain CAs of the current bundles, told apart by
/// distinguished name and key), those CAs' distinguished names: a distrust of such a name
/// would catch CAs nobody meant. `None` when the reference is unambiguous.
pub fn ambiguous(store: &dyn Store, ca: &CaRef) -> Result<Option<Vec<String>>, StoreError> {
    let CaRef::Name(n) = ca else {
        return Ok(None);
    };
    if n.contains('=') {
        // A distinguished name names one CA.
        return Ok(None);
    }
    let want = normalise(n);
    // By distinguished name, the keys seen under it (none known for an issuer name alone).
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, b) in crate::store::current_bundles(store)? {
        let leaf = certresponder_inventory::inspect::inspect_certificates(b.leaf_pem.as_bytes())
            .ok()
            .and_then(|v| v.into_iter().next());
        let chain = crate::signals::scan::ca_chain(&b);
        let mut names: Vec<(String, Option<String>)> = chain
            .iter()
            .map(|c| (c.subject.clone(), Some(c.fingerprints.spki_sha256.clone())))
            .collect();
        if let Some(l) = &leaf {
            names.push((l.issuer.clone(), None));
        }
        for (dn, spki) in names {
            if common_name(&dn).is_some_and(|cn| normalise(&cn) == want) {
                let keys = seen.entry(dn).or_default();
                keys.extend(spki);
            }
        }
    }
    let cas: Vec<String> = seen
        .into_iter()
        .flat_map(|(dn, keys)| {
            if keys.is_empty() {
                vec![dn]
            } else {
                keys.into_iter()
                    .map(|k| format!("{dn} (spki:{k})"))
                    .collect()
            }
        })
        .collect();
    Ok((cas.len() > 1).then_some(cas))
}

/// The active certificates `list` affects, with their findings, read from each one's current
/// bundle (leaf and deployed chain).
pub fn affected(
    store: &dyn Store,
    list: &[Distrust],
) -> Result<Vec<crate::signals::scan::CertFinding>, StoreError> {
    let mut out = Vec::new();
    if list.is_empty() {
        return Ok(out);
    }
    for (rec, b) in crate::store::current_bundles(store)? {
        let name = rec.entry.name.to_string();
        let Some(leaf) =
            certresponder_inventory::inspect::inspect_certificates(b.leaf_pem.as_bytes())
                .ok()
                .and_then(|v| v.into_iter().next())
        else {
            continue;
        };
        let chain = crate::signals::scan::ca_chain(&b);
        if let Some(f) = check_all(list, &leaf, &chain) {
            out.push((name, Some(b.fingerprints.cert_sha256.clone()), f));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use certresponder_inventory::inspect::inspect_certificate_der;

    struct Pki {
        root: CertInfo,
        leaf: CertInfo,
    }

    fn pki(ca_cn: &str, not_before: (i32, u8, u8)) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, ca_cn);
        ca.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example Trust");
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec!["www.example.test".into()]).unwrap();
        leaf.not_before = rcgen::date_time_ymd(not_before.0, not_before.1, not_before.2);
        let leaf = leaf.signed_by(&key, &issuer).unwrap();
        Pki {
            root: inspect_certificate_der(ca_cert.der()).unwrap(),
            leaf: inspect_certificate_der(leaf.der()).unwrap(),
        }
    }

    fn distrust(ca: CaRef, issued_after: Option<&str>) -> Distrust {
        Distrust {
            ca,
            issued_after: issued_after.map(|d| parse_date(d).unwrap()),
            deadline_hours: 24,
            replace_with: None,
            reason: None,
            origin: "config".into(),
            added_by: None,
            added_at: None,
        }
    }

    #[test]
    fn matches_by_name_spki_fingerprint_and_cutoff() {
        let a = pki("Distrusted Root A", (2025, 1, 10));
        let b = pki("Other Root B", (2025, 1, 10));
        let chain_a = std::slice::from_ref(&a.root);
        let chain_b = std::slice::from_ref(&b.root);
        for ca in [
            CaRef::parse("Distrusted Root A").unwrap(),
            CaRef::parse("cn=distrusted root a,  o=Example Trust").unwrap(),
            CaRef::parse(&format!("spki:{}", a.root.fingerprints.spki_sha256)).unwrap(),
            CaRef::parse(&format!("sha256:{}", a.root.fingerprints.cert_sha256)).unwrap(),
        ] {
            let d = distrust(ca.clone(), None);
            let f = d
                .check(&a.leaf, chain_a)
                .unwrap_or_else(|| panic!("{ca:?}"));
            assert_eq!(f.check, "issuer_distrusted");
            assert_eq!(f.deadline_hours, Some(24));
            assert!(d.check(&b.leaf, chain_b).is_none(), "{ca:?} matched B");
        }
        // Key and fingerprint matches need the CA in the deployed chain; the name does not.
        let spki = distrust(CaRef::Spki(a.root.fingerprints.spki_sha256.clone()), None);
        assert!(spki.check(&a.leaf, &[]).is_none());
        let name = distrust(CaRef::parse("Distrusted Root A").unwrap(), None);
        assert!(name.check(&a.leaf, &[]).is_some());
        // A cutoff: only certificates issued on or after it.
        let late = distrust(
            CaRef::parse("Distrusted Root A").unwrap(),
            Some("2025-01-11"),
        );
        assert!(late.check(&a.leaf, chain_a).is_none());
        let early = distrust(
            CaRef::parse("Distrusted Root A").unwrap(),
            Some("2025-01-10"),
        );
        assert!(early.check(&a.leaf, chain_a).is_some());
        // The CA's own certificate is not a replaceable leaf.
        assert!(name.check(&a.root, chain_a).is_none());
    }

    #[test]
    fn a_certificate_with_scts_is_dated_by_its_earliest_sct() {
        use chrono::TimeZone;
        let a = pki("Distrusted Root A", (2025, 1, 10));
        let chain = std::slice::from_ref(&a.root);
        let d = distrust(
            CaRef::parse("Distrusted Root A").unwrap(),
            Some("2025-06-01"),
        );
        let sct = |y, m, day| certresponder_inventory::inspect::SctInfo {
            log_id: "00".repeat(32),
            timestamp: Utc.with_ymd_and_hms(y, m, day, 0, 0, 0).unwrap(),
            signature: Vec::new(),
        };
        // notBefore before the cutoff, but logged after it: a backdated certificate.
        let mut backdated = a.leaf.clone();
        backdated.scts = vec![sct(2025, 7, 1), sct(2025, 6, 20)];
        let f = d.check(&backdated, chain).expect("dated by its SCTs");
        assert_eq!(f.evidence["dated_by"], "earliest SCT");
        // notBefore after the cutoff moved forward, but logged before it: not affected.
        let mut logged_early = a.leaf.clone();
        logged_early.not_before = Utc.with_ymd_and_hms(2025, 8, 1, 0, 0, 0).unwrap();
        logged_early.scts = vec![sct(2025, 5, 1)];
        assert!(d.check(&logged_early, chain).is_none());
        // Without SCTs, notBefore dates it.
        assert!(d.check(&a.leaf, chain).is_none());
    }

    #[test]
    fn parses_refs_dates_deadlines_and_config() {
        assert!(CaRef::parse("spki:abc").is_err());
        assert!(CaRef::parse("").is_err());
        let h = "AB".repeat(32);
        assert_eq!(
            CaRef::parse(&format!("sha256:{h}")).unwrap(),
            CaRef::CertSha256(h.to_ascii_lowercase())
        );
        assert_eq!(parse_deadline("90m"), Ok(2));
        assert_eq!(parse_deadline("5d"), Ok(120));
        assert!(parse_deadline("0h").is_err());
        assert!(parse_date("2024-13-01").is_err());
        assert_eq!(
            parse_date("2024-11-12T00:00:00Z").unwrap(),
            parse_date("2024-11-12").unwrap()
        );
        let base = std::path::Path::new("/etc/cr");
        let t: toml::Table =
            toml::from_str("ca = \"Entrust Root\"\nissued_after = 2024-11-12\ndeadline = \"5d\"\n")
                .unwrap();
        let d = parse_config(&t, base).unwrap();
        assert_eq!(d.deadline_hours, 120);
        assert_eq!(d.issued_after, Some(parse_date("2024-11-12").unwrap()));
        for (text, field) in [
            ("ca = \"x\"\nca_file = \"y\"\n", "ca"),
            ("deadline = \"5d\"\n", "ca"),
            ("ca = \"x\"\nissued_afer = 2024-11-12\n", "issued_afer"),
            ("ca = \"x\"\ndeadline = \"soon\"\n", "deadline"),
            ("ca_file = \"missing.pem\"\n", "ca_file"),
        ] {
            let t: toml::Table = toml::from_str(text).unwrap();
            assert_eq!(parse_config(&t, base).unwrap_err().0, field, "{text}");
        }
    }

    #[test]
    fn recorded_list_replaces_and_removes() {
        let store = crate::store::MemoryStore::new();
        let ca = CaRef::parse("Root A").unwrap();
        assert!(record(&store, distrust(ca.clone(), None)).unwrap());
        let mut again = distrust(ca.clone(), None);
        again.deadline_hours = 5;
        assert!(!record(&store, again).unwrap());
        assert!(record(&store, distrust(ca.clone(), Some("2025-01-01"))).unwrap());
        let list = recorded(&store).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].deadline_hours, 5);
        assert_eq!(remove(&store, &ca).unwrap(), 2);
        assert!(recorded(&store).unwrap().is_empty());
    }
}
