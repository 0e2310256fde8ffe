//! Matching found keys to the inventory and storing what matches as signals: `key_exposed`
//! (confirmed) for a key found in the clear, `encrypted_key_exposed` (low confidence: a
//! person judges it; the default policy escalates it) for one found encrypted whose public
//! half is stored in clear beside it. That public half is what the file says, which the
//! encrypted part cannot confirm without its password: a forged file could name anyone's
//! key, hence the low confidence.
//!
//! A found key matches a certificate when their public keys are the same number (the RSA
//! modulus, the EC point's x coordinate, the Ed25519 key: [`KeyIds::number_sha256`]), so
//! that encodings (a compressed point, odd DER) do not hide a match. Every location a key
//! was seen at is kept in the signal's evidence (never the key itself); the signal's
//! detection time is the earliest `first_seen` among them when a location says when.

use std::collections::{BTreeMap, HashMap};

use certresponder_inventory::inspect::{KeyInfo, inspect_certificate_der};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::identity::KeyIds;
use super::{EncryptedKey, FoundKey, Location};
use crate::signals::state::{self, Evidence, Seen};
use crate::signals::{Confidence, Finding, Signal};
use crate::store::{Store, StoreError};

/// The most locations kept in one signal's evidence.
const MAX_LOCATIONS: usize = 50;
/// The check of a private key found in the clear.
pub const KEY_EXPOSED: &str = "key_exposed";
/// The check of a private key found encrypted.
pub const ENCRYPTED_KEY_EXPOSED: &str = "encrypted_key_exposed";

fn key_exposed() -> String {
    KEY_EXPOSED.to_string()
}

fn confirmed() -> Confidence {
    Confidence::Confirmed
}

/// A found key that is an inventory certificate's.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exposed {
    /// The certificate.
    pub cert: String,
    /// The signal (new or seen again).
    pub signal: String,
    /// Whether the signal is new.
    pub new: bool,
    /// The key, described (`RSA-2048`, `ECDSA P-256`...).
    pub key: String,
    /// Where it was seen.
    pub locations: Vec<Location>,
    /// The signal's check: `key_exposed`, or `encrypted_key_exposed` for a key found
    /// encrypted.
    #[serde(default = "key_exposed")]
    pub check: String,
    /// The signal's confidence: confirmed for `key_exposed`, low for
    /// `encrypted_key_exposed`.
    #[serde(default = "confirmed")]
    pub confidence: Confidence,
}

/// A found key that no inventory certificate uses, or an encrypted key whose public half
/// is not known: information, not a signal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unknown {
    /// The key, described (`public key unknown` when it is encrypted and its public half is not
    /// stored beside it).
    pub key: String,
    /// Its SPKI SHA-256 (hex), to look it up elsewhere.
    pub spki_sha256: Option<String>,
    /// Where it was seen.
    pub locations: Vec<Location>,
    /// `encrypted_key_exposed` for an encrypted key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The finding's confidence, for an encrypted key (low).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
}

/// What recording found keys did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExposureReport {
    /// Private keys found in the clear (each location counts).
    pub found: usize,
    /// Inventory keys found in the clear: `key_exposed`.
    pub exposed: Vec<Exposed>,
    /// Inventory keys found encrypted: `encrypted_key_exposed`.
    #[serde(default)]
    pub encrypted: Vec<Exposed>,
    /// Other keys found.
    pub unknown: Vec<Unknown>,
}

/// How a key was found, and so which check it raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sighting {
    /// In the clear: `key_exposed`.
    Clear,
    /// Encrypted: `encrypted_key_exposed`.
    Encrypted,
}

impl Sighting {
    fn of(f: &FoundKey) -> Self {
        if f.location.encryption.is_some() {
            Self::Encrypted
        } else {
            Self::Clear
        }
    }

    fn check(self) -> &'static str {
        match self {
            Self::Clear => KEY_EXPOSED,
            Self::Encrypted => ENCRYPTED_KEY_EXPOSED,
        }
    }

    fn confidence(self) -> Confidence {
        match self {
            Self::Clear => Confidence::Confirmed,
            Self::Encrypted => Confidence::Low,
        }
    }
}

/// Encrypted keys whose public half is not known, as information: each one with where.
pub fn encrypted_unknown(keys: &[EncryptedKey]) -> Vec<Unknown> {
    keys.iter()
        .map(|k| Unknown {
            key: "public key unknown".to_string(),
            spki_sha256: None,
            locations: vec![k.location.clone()],
            check: Some(ENCRYPTED_KEY_EXPOSED.to_string()),
            confidence: Some(Confidence::Low),
        })
        .collect()
}

/// An inventory certificate's current key: (name, certificate SHA-256, public key).
pub type InventoryKey = (String, String, KeyInfo);

/// The number hash of every active certificate's current key: hash -> certificates.
pub fn inventory_keys(store: &dyn Store) -> Result<HashMap<String, Vec<InventoryKey>>, StoreError> {
    let mut out: HashMap<String, Vec<InventoryKey>> = HashMap::new();
    for (rec, current) in crate::store::current_bundles(store)? {
        let name = rec.entry.name.to_string();
        let Some(info) = current
            .leaf_der()
            .ok()
            .and_then(|der| inspect_certificate_der(&der).ok())
        else {
            continue;
        };
        if let Some(h) = KeyIds::of(&info.key).number_sha256 {
            out.entry(h).or_default().push((
                name,
                current.fingerprints.cert_sha256.clone(),
                info.key,
            ));
        }
    }
    Ok(out)
}

/// Matches `found` to the inventory and stores a signal for each certificate whose key was
/// found (one per certificate, bundle and check, its locations merged): a confirmed
/// `key_exposed` for a key found in the clear, a low-confidence `encrypted_key_exposed` for
/// one found encrypted.
pub fn record(
    store: &dyn Store,
    found: &[FoundKey],
    now: DateTime<Utc>,
) -> Result<ExposureReport, StoreError> {
    let keys = inventory_keys(store)?;
    let mut report = ExposureReport {
        found: found
            .iter()
            .filter(|f| Sighting::of(f) == Sighting::Clear)
            .count(),
        ..ExposureReport::default()
    };
    for sighting in [Sighting::Clear, Sighting::Encrypted] {
        let these: Vec<&FoundKey> = found
            .iter()
            .filter(|f| Sighting::of(f) == sighting)
            .collect();
        record_sightings(store, &keys, &these, sighting, now, &mut report)?;
    }
    Ok(report)
}

/// Matches the keys found one way (in the clear, or encrypted) and records them.
fn record_sightings(
    store: &dyn Store,
    keys: &HashMap<String, Vec<InventoryKey>>,
    found: &[&FoundKey],
    sighting: Sighting,
    now: DateTime<Utc>,
    report: &mut ExposureReport,
) -> Result<(), StoreError> {
    // Group the locations by key.
    let mut by_key: BTreeMap<String, (KeyInfo, Vec<Location>)> = BTreeMap::new();
    let mut no_id = Vec::new();
    for f in found {
        match KeyIds::of(&f.public).number_sha256 {
            Some(h) => by_key
                .entry(h)
                .or_insert_with(|| (f.public.clone(), Vec::new()))
                .1
                .push(f.location.clone()),
            None => no_id.push(f),
        }
    }
    let encrypted = sighting == Sighting::Encrypted;
    let unknown = |key: String, spki_sha256, locations| Unknown {
        key,
        spki_sha256,
        locations,
        check: encrypted.then(|| sighting.check().to_string()),
        confidence: encrypted.then(|| sighting.confidence()),
    };
    for (hash, (key, locations)) in by_key {
        // The same number under another algorithm (an RSA modulus equal to an EC point's
        // x coordinate) is not the same key.
        let certs: Vec<&InventoryKey> = keys
            .get(&hash)
            .map(|c| {
                c.iter()
                    .filter(|(_, _, k)| k.same_public_key(&key))
                    .collect()
            })
            .unwrap_or_default();
        if certs.is_empty() {
            report.unknown.push(unknown(
                key.describe(),
                KeyIds::of(&key).spki_sha256,
                locations,
            ));
            continue;
        }
        for (cert, cert_sha256, _) in certs {
            let (signal, new) =
                store_signal(store, cert, cert_sha256, &key, &locations, sighting, now)?;
            let exposed = Exposed {
                cert: cert.clone(),
                signal,
                new,
                key: key.describe(),
                locations: locations.clone(),
                check: sighting.check().to_string(),
                confidence: sighting.confidence(),
            };
            match sighting {
                Sighting::Clear => report.exposed.push(exposed),
                Sighting::Encrypted => report.encrypted.push(exposed),
            }
        }
    }
    for f in no_id {
        report
            .unknown
            .push(unknown(f.public.describe(), None, vec![f.location.clone()]));
    }
    Ok(())
}

/// Stores (or updates) the signal for one exposed certificate; returns its dedup key and
/// whether it is new.
fn store_signal(
    store: &dyn Store,
    cert: &str,
    cert_sha256: &str,
    key: &KeyInfo,
    locations: &[Location],
    sighting: Sighting,
    now: DateTime<Utc>,
) -> Result<(String, bool), StoreError> {
    let first = locations.iter().filter_map(|l| l.first_seen).min();
    let described = |l: &Location| {
        let mut s = l.path.clone();
        if let Some(line) = l.line {
            s.push_str(&format!(":{line}"));
        }
        if let Some(o) = l.offset {
            s.push_str(&format!(" at byte {o}"));
        }
        if let Some(c) = &l.commit {
            let short: String = c.chars().take(12).collect();
            s.push_str(&format!(" (commit {short})"));
        }
        if let Some(e) = &l.encryption {
            s.push_str(&format!(", encrypted ({e})"));
        }
        s
    };
    let mut message = match sighting {
        Sighting::Clear => format!(
            "the private key of `{cert}` ({}) was found at {}",
            key.describe(),
            described(&locations[0])
        ),
        Sighting::Encrypted => format!(
            "an encrypted private key that names the public key of `{cert}` ({}) was found at {}",
            key.describe(),
            described(&locations[0])
        ),
    };
    if locations.len() > 1 {
        message.push_str(&format!(" and {} more place(s)", locations.len() - 1));
    }
    let kept: Vec<&Location> = locations.iter().take(MAX_LOCATIONS).collect();
    let evidence = json!({
        "locations": kept,
        "locations_total": locations.len(),
        "first_seen": first,
        "key": key.describe(),
    });
    let finding = match sighting {
        Sighting::Clear => Finding::compromised(KEY_EXPOSED, message, evidence),
        Sighting::Encrypted => {
            message.push_str(
                "; a password protects it, but a leaked encrypted key still leaks (the \
                 password may be weak, reused or leaked beside it), and the public key beside \
                 it is unproven until the key is decrypted",
            );
            Finding::warning(ENCRYPTED_KEY_EXPOSED, message, evidence)
        }
    };
    let mut signal = Signal::from_finding(
        cert,
        "exposure",
        &finding,
        Some(cert_sha256),
        "exposure",
        now,
    );
    if let Some(t) = first {
        signal.detected_at = t.min(now);
    }
    let (stored, seen) = state::observe(
        store,
        signal,
        Evidence::MergeLocations { max: MAX_LOCATIONS },
        now,
    )?;
    Ok((stored.dedup_key, seen == Seen::New))
}
