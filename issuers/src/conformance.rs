//! The conformance suite: one routine every issuer adapter must pass, run by each adapter's
//! tests against a real CA (the internal CA, Pebble, an `openssl ca` directory).
//!
//! It issues for a fresh CSR and checks the chain (parses, each certificate signed by the
//! next, leaf key equal to the CSR key, the names asked for, not a CA, validity as the profile
//! says); checks status, revokes with keyCompromise, checks that status now says revoked with
//! the reason (or, where the CA publishes neither CRL nor OCSP and the adapter says `unknown`,
//! that the CA's own test oracle does); looks the request up by its id, where the adapter
//! offers that (the same certificate, and nothing for an id never used); then checks the typed
//! errors: revoking twice, a name the adapter may not issue for, and garbage input.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use certresponder_inventory::inspect;
use certresponder_inventory::{CertKind, KeyProfile};

use crate::issuer::{
    CertStatus, Identifier, IssueRequest, Issuer, RevocationReason, RevokeRequest,
};
use crate::{IssuerError, generate_key};

/// A test oracle: the CA's own view of a certificate's status, for CAs whose status the
/// adapter cannot read in production (Pebble 2.4.0 publishes neither CRL nor OCSP).
pub type Oracle = Box<
    dyn Fn(Vec<u8>) -> Pin<Box<dyn Future<Output = Result<CertStatus, String>> + Send>>
        + Send
        + Sync,
>;

/// What the suite needs to know about the CA under test.
pub struct Options {
    /// Names the adapter may issue for (the CSR asks for all of them).
    pub names: Vec<String>,
    /// A name the adapter must refuse, if the CA refuses any.
    pub forbidden_name: Option<String>,
    /// The profile to ask for, if any.
    pub profile: Option<String>,
    /// The validity the profile should give, with the tolerance allowed.
    pub expected_validity: Option<(Duration, Duration)>,
    /// The CA's test oracle, for when the adapter answers `unknown`.
    pub oracle: Option<Oracle>,
}

/// Timings of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Time to issue.
    pub issue: Duration,
    /// Time to revoke.
    pub revoke: Duration,
    /// Whether revocation was confirmed through the adapter (`true`) or the oracle.
    pub status_from_adapter: bool,
    /// Whether the adapter answers `lookup` (an optional operation).
    pub lookup: bool,
}

fn fail(step: &str, msg: impl std::fmt::Display) -> String {
    format!("conformance step `{step}`: {msg}")
}

/// A CSR (DER) for `names`, with a fresh P-256 key.
fn csr_for(names: &[String]) -> Result<Vec<u8>, String> {
    let key = generate_key(KeyProfile::EcdsaP256).map_err(|e| fail("keygen", e))?;
    let csr = rcgen::CertificateParams::new(names.to_vec())
        .and_then(|p| p.serialize_request(&key))
        .map_err(|e| fail("csr", e))?;
    Ok(csr.der().to_vec())
}

/// A TLS server issue request for `names`, with the profile under test and a fresh
/// request id.
fn issue_request(csr_der: Vec<u8>, names: &[String], opts: &Options) -> IssueRequest {
    IssueRequest {
        csr_der,
        identifiers: names.iter().map(|n| Identifier::Dns(n.clone())).collect(),
        kind: CertKind::TlsServer,
        profile: opts.profile.clone(),
        replaces: None,
        request_id: Some(fresh_id()),
    }
}

/// A request id no one used before.
fn fresh_id() -> String {
    let mut bytes = [0u8; 12];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    format!("conformance-{}", hex::encode(bytes))
}

/// A revocation signed by the CA account (no certificate key).
fn revoke_request(der: &[u8], reason: RevocationReason) -> RevokeRequest {
    RevokeRequest {
        certificate_der: der.to_vec(),
        reason,
        certificate_key: None,
    }
}

/// Runs the suite. Returns a report, or the first failed step with the reason.
pub async fn run(issuer: &dyn Issuer, opts: &Options) -> Result<Report, String> {
    // 1. Issue for a fresh CSR.
    let csr_der = csr_for(&opts.names)?;
    let csr_info = inspect::inspect_csr_der(&csr_der).map_err(|e| fail("csr", e))?;
    let started = Instant::now();
    let request = issue_request(csr_der.clone(), &opts.names, opts);
    let chain = issuer.issue(&request).await.map_err(|e| fail("issue", e))?;
    let issue_time = started.elapsed();
    // 1b. The optional look-up finds that certificate by the request's id, and nothing
    // for an id never used.
    let lookup = match issuer.lookup(&request).await {
        Err(IssuerError::Unsupported(_)) => false,
        Err(e) => return Err(fail("lookup", e)),
        Ok(None) => return Err(fail("lookup", "the certificate just issued is not found")),
        Ok(Some(found)) if found.leaf_pem.trim() != chain.leaf_pem.trim() => {
            return Err(fail(
                "lookup",
                "another certificate is found for the request",
            ));
        }
        Ok(Some(_)) => {
            let unused = IssueRequest {
                request_id: Some(fresh_id()),
                ..request.clone()
            };
            match issuer.lookup(&unused).await {
                Ok(None) => true,
                Ok(Some(_)) => {
                    return Err(fail("lookup", "a certificate is found for an unused id"));
                }
                Err(e) => return Err(fail("lookup of an unused id", e)),
            }
        }
    };
    let ders = inspect::read_certificates(chain.fullchain_pem().as_bytes())
        .map_err(|e| fail("issue: chain parses", e))?;
    let infos = ders
        .iter()
        .map(|d| inspect::inspect_certificate_der(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail("issue: chain parses", e))?;
    let leaf = &infos[0];
    if ders.len() < 2 {
        return Err(fail("issue: chain", "no issuer certificate after the leaf"));
    }
    for (i, pair) in ders.windows(2).enumerate() {
        if !inspect::cert_signed_by(&pair[0], &pair[1]).map_err(|e| fail("issue: chain", e))? {
            return Err(fail(
                "issue: chain",
                format!("certificate #{} is not signed by #{}", i + 1, i + 2),
            ));
        }
    }
    if leaf.fingerprints.spki_sha256 != csr_info.spki_sha256 {
        return Err(fail("issue: key", "the leaf's key is not the CSR's key"));
    }
    let mut want = opts.names.clone();
    let mut have = leaf.dns_names.clone();
    want.sort();
    have.sort();
    if want != have {
        return Err(fail(
            "issue: names",
            format!("asked for {want:?}, got {have:?}"),
        ));
    }
    if leaf.is_ca {
        return Err(fail("issue: not a CA", "the leaf says CA:TRUE"));
    }
    if let Some((validity, tolerance)) = opts.expected_validity {
        let got = (leaf.not_after - leaf.not_before)
            .to_std()
            .unwrap_or_default();
        if got.abs_diff(validity) > tolerance {
            return Err(fail(
                "issue: validity",
                format!(
                    "{}s, expected {}s ± {}s",
                    got.as_secs(),
                    validity.as_secs(),
                    tolerance.as_secs()
                ),
            ));
        }
    }
    let leaf_der = ders[0].clone();

    // 2. Status before revocation.
    let before = issuer
        .status(&leaf_der)
        .await
        .map_err(|e| fail("status", e))?;
    match (&before, &opts.oracle) {
        (CertStatus::Good, _) => {}
        (CertStatus::Unknown { .. }, Some(oracle)) => {
            let o = oracle(leaf_der.clone())
                .await
                .map_err(|e| fail("status: oracle", e))?;
            if o != CertStatus::Good {
                return Err(fail(
                    "status: oracle",
                    format!("fresh certificate is {o:?}"),
                ));
            }
        }
        (other, _) => return Err(fail("status", format!("fresh certificate is {other:?}"))),
    }

    // 3. Revoke, then status says revoked with the reason.
    let started = Instant::now();
    issuer
        .revoke(&revoke_request(&leaf_der, RevocationReason::KeyCompromise))
        .await
        .map_err(|e| fail("revoke", e))?;
    let revoke_time = started.elapsed();
    let after = issuer
        .status(&leaf_der)
        .await
        .map_err(|e| fail("status after revoke", e))?;
    let revoked_ok = |s: &CertStatus| {
        matches!(
            s,
            CertStatus::Revoked {
                reason: Some(RevocationReason::KeyCompromise),
                ..
            }
        )
    };
    let status_from_adapter = match (&after, &opts.oracle) {
        (s, _) if revoked_ok(s) => true,
        (CertStatus::Unknown { .. }, Some(oracle)) => {
            let o = oracle(leaf_der.clone())
                .await
                .map_err(|e| fail("status after revoke: oracle", e))?;
            if !revoked_ok(&o) {
                return Err(fail("status after revoke: oracle", format!("{o:?}")));
            }
            false
        }
        (other, _) => {
            return Err(fail(
                "status after revoke",
                format!("expected revoked (keyCompromise), got {other:?}"),
            ));
        }
    };

    // 4. Typed errors.
    match issuer
        .revoke(&revoke_request(&leaf_der, RevocationReason::KeyCompromise))
        .await
    {
        Err(IssuerError::AlreadyRevoked(_)) => {}
        other => {
            return Err(fail(
                "revoke twice",
                format!("expected AlreadyRevoked, got {other:?}"),
            ));
        }
    }
    if let Some(name) = &opts.forbidden_name {
        let names = [name.clone()];
        match issuer
            .issue(&issue_request(csr_for(&names)?, &names, opts))
            .await
        {
            Err(IssuerError::NotAllowed(_)) => {}
            other => {
                return Err(fail(
                    "forbidden name",
                    format!(
                        "expected NotAllowed for {name}, got {:?}",
                        other.map(|_| "a certificate")
                    ),
                ));
            }
        }
    }
    match issuer
        .issue(&issue_request(
            b"this is not a CSR".to_vec(),
            &opts.names,
            opts,
        ))
        .await
    {
        Err(IssuerError::BadCsr(_)) => {}
        other => {
            return Err(fail(
                "garbage CSR",
                format!("expected BadCsr, got {:?}", other.map(|_| "a certificate")),
            ));
        }
    }
    let garbage = b"\x30\x03\x02\x01\x01".to_vec();
    match issuer
        .revoke(&revoke_request(&garbage, RevocationReason::Superseded))
        .await
    {
        Err(IssuerError::BadRequest(_)) => {}
        other => {
            return Err(fail(
                "garbage revoke",
                format!("expected BadRequest, got {other:?}"),
            ));
        }
    }
    match issuer.status(&garbage).await {
        Err(IssuerError::BadRequest(_)) => {}
        other => {
            return Err(fail(
                "garbage status",
                format!("expected BadRequest, got {other:?}"),
            ));
        }
    }
    Ok(Report {
        issue: issue_time,
        revoke: revoke_time,
        status_from_adapter,
        lookup,
    })
}
