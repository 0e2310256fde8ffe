//! Matching found keys to the inventory and storing what matches as `key_exposed` signals.
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
use super::{FoundKey, Location};
use crate::signals::state::{self, Evidence, Seen};
use crate::signals::{Finding, Signal};
use crate::store::{Store, StoreError};

/// The most locations kept in one signal's evidence.
const MAX_LOCATIONS: usize = 50;

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
}

/// A found key that no inventory certificate uses: information, not a signal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unknown {
    /// The key, described.
    pub key: String,
    /// Its SPKI SHA-256 (hex), to look it up elsewhere.
    pub spki_sha256: Option<String>,
    /// Where it was seen.
    pub locations: Vec<Location>,
}

/// What recording found keys did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExposureReport {
    /// Private keys found (each location counts).
    pub found: usize,
    /// Inventory keys exposed.
    pub exposed: Vec<Exposed>,
    /// Other keys found.
    pub unknown: Vec<Unknown>,
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

/// Matches `found` to the inventory and stores a confirmed `key_exposed` signal for each
/// certificate whose key was found (one per certificate and bundle, its locations merged).
pub fn record(
    store: &dyn Store,
    found: &[FoundKey],
    now: DateTime<Utc>,
) -> Result<ExposureReport, StoreError> {
    let keys = inventory_keys(store)?;
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
    let mut report = ExposureReport {
        found: found.len(),
        ..ExposureReport::default()
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
            report.unknown.push(Unknown {
                key: key.describe(),
                spki_sha256: KeyIds::of(&key).spki_sha256,
                locations,
            });
            continue;
        }
        for (cert, cert_sha256, _) in certs {
            let (signal, new) = store_signal(store, cert, cert_sha256, &key, &locations, now)?;
            report.exposed.push(Exposed {
                cert: cert.clone(),
                signal,
                new,
                key: key.describe(),
                locations: locations.clone(),
            });
        }
    }
    for f in no_id {
        report.unknown.push(Unknown {
            key: f.public.describe(),
            spki_sha256: None,
            locations: vec![f.location.clone()],
        });
    }
    Ok(report)
}

/// Stores (or updates) the signal for one exposed certificate; returns its dedup key and
/// whether it is new.
fn store_signal(
    store: &dyn Store,
    cert: &str,
    cert_sha256: &str,
    key: &KeyInfo,
    locations: &[Location],
    now: DateTime<Utc>,
) -> Result<(String, bool), StoreError> {
    let first = locations.iter().filter_map(|l| l.first_seen).min();
    let described = |l: &Location| {
        let mut s = l.path.clone();
        if let Some(line) = l.line {
            s.push_str(&format!(":{line}"));
        }
        if let Some(c) = &l.commit {
            let short: String = c.chars().take(12).collect();
            s.push_str(&format!(" (commit {short})"));
        }
        s
    };
    let mut message = format!(
        "the private key of `{cert}` ({}) was found at {}",
        key.describe(),
        described(&locations[0])
    );
    if locations.len() > 1 {
        message.push_str(&format!(" and {} more place(s)", locations.len() - 1));
    }
    let kept: Vec<&Location> = locations.iter().take(MAX_LOCATIONS).collect();
    let finding = Finding::compromised(
        "key_exposed",
        message,
        json!({
            "locations": kept,
            "locations_total": locations.len(),
            "first_seen": first,
            "key": key.describe(),
        }),
    );
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
