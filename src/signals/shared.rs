//! Shared primes across a set of RSA keys (the batch GCD of [`super::weak::batch_gcd`]),
//! with the other holders named in each finding's evidence.

use super::Finding;
use super::weak::batch_gcd::{ProductIndex, batch_gcd, findings};
use crate::store::{Store, StoreError};

/// Name of the stored product index of the inventory's RSA moduli, used to check one new
/// key against the whole inventory without a new batch GCD.
pub const PRODUCT_INDEX: &str = "rsa-product-index";

/// Shared-prime findings across `moduli`, as (index, finding); `labels[i]` names modulus `i`
/// in the evidence (`shared_with`).
pub fn shared_findings(moduli: &[&[u8]], labels: &[String]) -> Vec<(usize, Finding)> {
    let groups = batch_gcd(moduli);
    findings(&groups)
        .into_iter()
        // A shared factor of 17 bits or fewer is a prime up to 65537, which
        // `rsa_small_factor` already reports for each key on its own.
        .filter(|(_, f)| {
            !(f.evidence["kind"] == "shared_factor"
                && f.evidence["factor_bits"].as_u64().is_some_and(|b| b <= 17))
        })
        .map(|(i, mut f)| {
            if let Some(others) = f
                .evidence
                .get("shared_with")
                .and_then(|v| v.as_array())
                .cloned()
            {
                let named: Vec<String> = others
                    .iter()
                    .filter_map(|v| v.as_u64())
                    .filter_map(|j| labels.get(usize::try_from(j).ok()?).cloned())
                    .collect();
                f.message = format!("{} ({})", f.message, named.join(", "));
                f.evidence["shared_with"] = serde_json::json!(named);
            }
            (i, f)
        })
        .collect()
}

/// Shared-prime findings across the inventory's RSA keys, given as (name, certificate
/// SHA-256, modulus); stores the product index for later incremental checks.
pub fn shared_prime_findings(
    store: &dyn Store,
    rsa: &[(String, String, Vec<u8>)],
) -> Result<Vec<super::scan::CertFinding>, StoreError> {
    let moduli: Vec<&[u8]> = rsa.iter().map(|(_, _, m)| m.as_slice()).collect();
    let labels: Vec<String> = rsa.iter().map(|(n, _, _)| n.clone()).collect();
    let out = shared_findings(&moduli, &labels)
        .into_iter()
        .filter_map(|(i, f)| {
            rsa.get(i)
                .map(|(n, fp, _)| (n.clone(), Some(fp.clone()), f))
        })
        .collect();
    store.put_blob(PRODUCT_INDEX, &ProductIndex::build(&moduli).to_bytes())?;
    Ok(out)
}

/// The inventory's stored RSA product (built by the last `scan`), loaded once to check any
/// number of new keys against it with one gcd each.
pub struct InventoryProduct {
    index: ProductIndex,
}

impl InventoryProduct {
    /// Loads the stored product; `Ok(None)` when no scan has stored one yet.
    pub fn load(store: &dyn Store) -> Result<Option<Self>, StoreError> {
        let Some(bytes) = store.get_blob(PRODUCT_INDEX)? else {
            return Ok(None);
        };
        let index = ProductIndex::from_bytes(&bytes).map_err(|e| StoreError::Corrupt {
            tree: "blobs",
            key: PRODUCT_INDEX.into(),
            reason: e.to_string(),
        })?;
        Ok(Some(Self { index }))
    }

    /// Checks one RSA modulus; on a hit, names the certificates whose current key it shares
    /// a factor (or the whole key) with, reading the store only then.
    pub fn check(&self, store: &dyn Store, modulus: &[u8]) -> Result<Option<Finding>, StoreError> {
        use super::weak::batch_gcd::{IndexHit, SharedKind, shares_with};
        let Some(hit) = self.index.check(modulus) else {
            return Ok(None);
        };
        let mut names = Vec::new();
        let mut moduli = Vec::new();
        for rec in store.list_certs()? {
            let name = rec.entry.name.to_string();
            let history = store.bundles(&name)?;
            let Some(bundle) = certresponder_inventory::Bundle::current_of(&history) else {
                continue;
            };
            let Ok(certs) =
                certresponder_inventory::inspect::inspect_certificates(bundle.leaf_pem.as_bytes())
            else {
                continue;
            };
            if let Some(certresponder_inventory::inspect::KeyInfo::Rsa { modulus, .. }) =
                certs.first().map(|c| &c.key)
            {
                names.push(name);
                moduli.push(modulus.clone());
            }
        }
        let shared = shares_with(modulus, &moduli);
        let with: Vec<String> = shared
            .iter()
            .filter_map(|(i, _)| names.get(*i).cloned())
            .collect();
        let identical = shared
            .iter()
            .any(|(_, k)| matches!(k, SharedKind::IdenticalModulus { .. }));
        let evidence =
            serde_json::json!({"shared_with": with, "source": "inventory product index"});
        Ok(Some(match hit {
            IndexHit::WholeModulus { modulus_bits } if identical => Finding::warning(
                "shared_prime",
                format!(
                    "the same {modulus_bits}-bit RSA key is already used by {}",
                    with.join(", ")
                ),
                evidence,
            ),
            IndexHit::SharedFactor { factor_bits } => Finding::compromised(
                "shared_prime",
                format!(
                    "RSA modulus shares a {factor_bits}-bit factor with the inventory ({}), so it is factored",
                    with.join(", ")
                ),
                evidence,
            ),
            _ => Finding::compromised(
                "shared_prime",
                format!(
                    "both factors of this RSA modulus are shared with the inventory ({})",
                    with.join(", ")
                ),
                evidence,
            ),
        }))
    }
}

/// Checks one new RSA modulus against the inventory's stored product with one gcd (see
/// [`InventoryProduct`]). `Ok(None)`: nothing shared, or no product stored yet.
pub fn check_against_inventory(
    store: &dyn Store,
    modulus: &[u8],
) -> Result<Option<Finding>, StoreError> {
    match InventoryProduct::load(store)? {
        Some(product) => product.check(store, modulus),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::Confidence;
    use crate::signals::weak::batch_gcd::testkit::{modulus, random_prime, rng};
    use crate::store::{CertRecord, CertStatus, MemoryStore};
    use certresponder_inventory::inspect::der::encode as der;
    use certresponder_inventory::{Bundle, BundleState, CertId, Fingerprints, ManagedCert, Paths};
    use chrono::Utc;

    /// A certificate, signed by a throwaway CA, for an RSA public key with modulus `n`.
    fn cert_for(n: &[u8]) -> String {
        let int = |v: &[u8]| der(0x02, &[&[0u8][..], v].concat());
        let rsa_pub = der(0x30, &[int(n), int(&[1, 0, 1])].concat());
        let alg = der(
            0x30,
            &[
                der(
                    0x06,
                    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01],
                ),
                vec![5, 0],
            ]
            .concat(),
        );
        let spki = der(
            0x30,
            &[alg, der(0x03, &[&[0u8][..], &rsa_pub].concat())].concat(),
        );
        let key = rcgen::SubjectPublicKeyInfo::from_der(&spki).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let issuer = rcgen::Issuer::new(ca, ca_key);
        rcgen::CertificateParams::new(vec!["x.example.test".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap()
            .pem()
    }

    fn register(store: &MemoryStore, name: &str, n: &[u8]) {
        let entry = ManagedCert::new(
            CertId::new(name).unwrap(),
            "o",
            Paths::cert_only("/nonexistent"),
            "/inv.toml",
        );
        store
            .put_cert(&CertRecord {
                entry,
                status: CertStatus::Active,
                registered_at: Utc::now(),
                updated_at: Utc::now(),
            })
            .unwrap();
        store
            .append_bundle(&Bundle {
                id: name.into(),
                cert_id: name.into(),
                leaf_pem: cert_for(n),
                chain_pem: String::new(),
                key_pem: None,
                fingerprints: Fingerprints {
                    cert_sha256: name.into(),
                    spki_sha256: String::new(),
                    tbs_sha256: String::new(),
                },
                serial: "01".into(),
                issuer: "CN=x".into(),
                not_after: Utc::now(),
                created_at: Utc::now(),
                origin: "registered".into(),
                state: BundleState::Current,
                revoked_at: None,
            })
            .unwrap();
    }

    #[test]
    fn one_new_key_is_checked_against_the_stored_inventory_product() {
        let mut r = rng(7);
        let (p, q1, q2, r1, r2, s1) = (
            random_prime(&mut r, 256),
            random_prime(&mut r, 256),
            random_prime(&mut r, 256),
            random_prime(&mut r, 256),
            random_prime(&mut r, 256),
            random_prime(&mut r, 256),
        );
        let (na, nb) = (modulus(&p, &q1), modulus(&r1, &r2));
        let store = MemoryStore::new();
        register(&store, "alpha", &na);
        register(&store, "beta", &nb);
        // No index yet: nothing to say.
        assert!(
            check_against_inventory(&store, &modulus(&p, &q2))
                .unwrap()
                .is_none()
        );
        let rsa = vec![
            ("alpha".to_string(), "fa".to_string(), na.clone()),
            ("beta".to_string(), "fb".to_string(), nb),
        ];
        assert!(shared_prime_findings(&store, &rsa).unwrap().is_empty());

        let hit = check_against_inventory(&store, &modulus(&p, &q2))
            .unwrap()
            .unwrap();
        assert_eq!(hit.check, "shared_prime");
        assert_eq!(hit.confidence, Confidence::Confirmed);
        assert_eq!(hit.evidence["shared_with"], serde_json::json!(["alpha"]));
        assert!(
            check_against_inventory(&store, &modulus(&s1, &q2))
                .unwrap()
                .is_none()
        );
        let same = check_against_inventory(&store, &na).unwrap().unwrap();
        assert_eq!(
            same.confidence,
            Confidence::Low,
            "the same key again is reuse, not a factorisation"
        );
    }
}
