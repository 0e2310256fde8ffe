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
