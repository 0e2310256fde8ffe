//! `revoked_at_ca`: the CA has revoked a certificate we still deploy.
//!
//! Three sources, any one enough:
//! - the entry's issuer adapter's own status (the internal CA's records, an ACME CA's CRL, a
//!   command adapter's answer);
//! - for any certificate that names a CRL distribution point, that CRL, fetched, checked
//!   against the issuing CA in the deployed chain and cached until its nextUpdate;
//! - for any certificate that names an OCSP responder, its answer, checked the same way
//!   (signed by the issuing CA or a responder it authorized) and cached likewise.
//!
//! A CRL or an OCSP answer whose signature does not verify is rejected and reported, never
//! believed.

use certresponder_inventory::inspect::{self, CertInfo, OcspCertStatus};
use certresponder_issuers::{CertStatus, Issuer, RevocationReason};
use chrono::{DateTime, Utc};

use super::crl::CrlFetcher;
use crate::signals::{Confidence, Finding};
use crate::store::Store;

/// Hours to replace a certificate the CA revoked: it is already refused by anyone who checks.
pub const REVOKED_DEADLINE_HOURS: u32 = 24;

/// One source's verdict.
struct Revocation {
    source: String,
    reason: Option<RevocationReason>,
    at: DateTime<Utc>,
}

/// What the check found: the finding, if revoked, and the problems that kept a source from
/// answering (the check proves nothing about them).
#[derive(Debug, Default)]
pub struct RevokedCheck {
    /// The finding.
    pub finding: Option<Finding>,
    /// Problems, each naming its source.
    pub problems: Vec<String>,
    /// Sources that answered.
    pub answered: Vec<String>,
}

/// The issuing CA of `leaf` in the deployed `chain` (DER): the certificate whose subject is
/// the leaf's issuer and whose key verifies the leaf's signature.
fn issuing_ca<'a>(leaf_der: &[u8], leaf: &CertInfo, chain: &'a [Vec<u8>]) -> Option<&'a [u8]> {
    chain
        .iter()
        .find(|der| {
            inspect::inspect_certificate_der(der).is_ok_and(|c| c.subject == leaf.issuer)
                && inspect::cert_signed_by(leaf_der, der).unwrap_or(false)
        })
        .map(Vec::as_slice)
}

/// Checks the certificate `leaf_der` (deployed with `chain`, DER, leaf excluded) against its
/// issuer adapter (if any) and its CRLs.
pub async fn check(
    store: &dyn Store,
    issuer: Option<&dyn Issuer>,
    crls: &CrlFetcher,
    leaf_der: &[u8],
    chain: &[Vec<u8>],
    now: DateTime<Utc>,
) -> RevokedCheck {
    let mut out = RevokedCheck::default();
    let leaf = match inspect::inspect_certificate_der(leaf_der) {
        Ok(l) => l,
        Err(e) => {
            out.problems
                .push(format!("the certificate cannot be read: {e}"));
            return out;
        }
    };
    let mut found: Vec<Revocation> = Vec::new();
    if let Some(issuer) = issuer {
        let source = format!("issuer `{}` status", issuer.id());
        match issuer.status(leaf_der).await {
            Ok(CertStatus::Revoked { reason, revoked_at }) => {
                out.answered.push(source.clone());
                found.push(Revocation {
                    source,
                    reason,
                    at: revoked_at,
                });
            }
            Ok(CertStatus::Good) => out.answered.push(source),
            // Not this adapter's certificate, or nothing published: no answer, no problem.
            Ok(CertStatus::Unknown { .. }) => {}
            Err(e) => out.problems.push(format!("{source}: {e}")),
        }
    }
    let is_http = |u: &&String| u.starts_with("http://") || u.starts_with("https://");
    let fetchable: Vec<&String> = leaf.crl_urls.iter().filter(is_http).collect();
    let responders: Vec<&String> = leaf.ocsp_urls.iter().filter(is_http).collect();
    if fetchable.is_empty() && responders.is_empty() {
        return finish(out, found, &leaf);
    }
    let Some(ca) = issuing_ca(leaf_der, &leaf, chain) else {
        for (kind, url) in fetchable
            .first()
            .map(|u| ("CRL", u))
            .into_iter()
            .chain(responders.first().map(|u| ("OCSP", u)))
        {
            out.problems.push(format!(
                "{kind} {url}: the deployed chain does not include the issuing CA ({}), so the {} signature cannot be checked",
                leaf.issuer,
                if kind == "CRL" { "CRL's" } else { "answer's" }
            ));
        }
        return finish(out, found, &leaf);
    };
    // The first distribution point that answers decides; the rest are mirrors.
    let mut errors = Vec::new();
    for url in &fetchable {
        match crls.get(store, url, ca, now).await {
            Ok(fetched) => {
                let source = format!("CRL {url}");
                out.answered.push(source.clone());
                if let Some(r) = fetched.info.find(&leaf.serial) {
                    found.push(Revocation {
                        source,
                        reason: r.reason_code.and_then(RevocationReason::from_code),
                        at: r.revoked_at,
                    });
                }
                errors.clear();
                break;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    out.problems.append(&mut errors);
    // Likewise the first OCSP responder that gives a verified answer.
    for url in &responders {
        let source = format!("OCSP {url}");
        match crls.ocsp(store, url, leaf_der, ca, now).await {
            Ok(asked) => {
                match asked.answer.status {
                    OcspCertStatus::Good => out.answered.push(source),
                    OcspCertStatus::Revoked { at, reason } => {
                        out.answered.push(source.clone());
                        found.push(Revocation {
                            source,
                            reason: reason.and_then(RevocationReason::from_code),
                            at,
                        });
                    }
                    OcspCertStatus::Unknown => errors.push(format!(
                        "{source}: the responder does not know this certificate"
                    )),
                }
                if !matches!(asked.answer.status, OcspCertStatus::Unknown) {
                    errors.clear();
                    break;
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    out.problems.append(&mut errors);
    finish(out, found, &leaf)
}

/// The finding, when any source said the certificate is revoked.
fn finish(mut out: RevokedCheck, found: Vec<Revocation>, leaf: &CertInfo) -> RevokedCheck {
    let Some(first) = found.first() else {
        return out;
    };
    let reason = found.iter().find_map(|r| r.reason);
    let key_compromise = reason == Some(RevocationReason::KeyCompromise);
    let sources: Vec<&str> = found.iter().map(|r| r.source.as_str()).collect();
    out.finding = Some(Finding {
        check: "revoked_at_ca",
        confidence: Confidence::Confirmed,
        message: format!(
            "revoked by its CA at {}{} (per {}){}",
            first.at.format("%Y-%m-%d %H:%M UTC"),
            reason.map(|r| format!(" for {r}")).unwrap_or_default(),
            sources.join(" and "),
            if key_compromise {
                "; the key is compromised: the replacement gets a new key"
            } else {
                ""
            }
        ),
        revocation_reason: None,
        deadline_hours: Some(REVOKED_DEADLINE_HOURS),
        evidence: serde_json::json!({
            "serial": leaf.serial,
            "issuer": leaf.issuer,
            "revoked_at": first.at,
            "reason": reason.map(RevocationReason::name),
            "key_compromise": key_compromise,
            "sources": sources,
        }),
    });
    out
}
