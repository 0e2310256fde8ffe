//! EC key checks: the curve against the allowed list (BR §6.1.5: P-256, P-384, P-521) and
//! public-key validation of the point (BR §6.1.6, NIST SP 800-56A §5.6.2.3.3): not the
//! point at infinity, a permitted encoding of the right length, coordinates below p, on the
//! curve, and n·Q = O where the cofactor is not 1. Compressed points are decompressed and
//! validated the same way. Explicit curve parameters (RFC 3279 §2.3.5) are parsed and
//! compared with the named curves.
//!
//! Confidence:
//! - `ec_curve_disallowed` is a rule violation (high, superseded, 5 days: BR §4.9.1.1 "no
//!   longer complies with §6.1.5"). A curve outside the policy is not a broken key.
//! - `ec_point_invalid` is also a violation, not a compromise: an invalid point proves that
//!   the certificate or key was mis-made (the CA skipped key validation), and strict clients
//!   reject it, but it does not reveal the holder's private key (invalid-curve attacks need
//!   the *victim* to accept a bad peer point). So: high, superseded, 5 days. A compressed
//!   point is valid but many TLS stacks accept only the uncompressed form (RFC 5480 §2.2
//!   makes only that one mandatory), so it is reported as a low-confidence
//!   `ec_point_invalid` warning.
//! - Explicit parameters equal to a named curve: Mozilla's root store policy and BR §7.1.3.1.2
//!   require the named-curve encoding, and WebPKI verifiers (rustls/webpki, Go, BoringSSL)
//!   refuse explicit parameters (CVE-2020-0601 abused them), so the key is reported as
//!   `ec_curve_disallowed`, a violation. A private PKI that accepts explicit encodings lists
//!   `explicit` in `allowed_curves`; the finding is then a warning (as long as the named
//!   curve itself is allowed). Explicit parameters matching no named curve are always a
//!   violation, and the point is still validated against them.

mod curve;

use serde_json::json;

use self::curve::{Curve, Form, PointError};
use super::KeyPolicy;
use crate::signals::Finding;

/// The `allowed_curves` entry that lets explicit encodings of allowed named curves pass
/// with a warning.
pub const EXPLICIT: &str = "explicit";

/// EC checks for a key on a named curve (`P-256`, `secp256k1`, a dotted OID...), or on
/// `explicit` parameters that were not kept (then only the curve is reported).
pub fn check_ec(curve: &str, point: &[u8], policy: &KeyPolicy) -> Vec<Finding> {
    check_ec_with_params(curve, point, None, policy)
}

/// EC checks, with the DER `ECParameters` when the key's curve is given explicitly.
pub fn check_ec_with_params(
    curve: &str,
    point: &[u8],
    params: Option<&[u8]>,
    policy: &KeyPolicy,
) -> Vec<Finding> {
    let mut out = Vec::new();
    match params {
        Some(der) => check_explicit(der, point, policy, &mut out),
        None => {
            if !allowed(policy, curve) {
                out.push(disallowed(curve, None));
            }
            match curve::named(curve) {
                Some(named) => validate_point(&named.curve, named.name, point, true, &mut out),
                // An unknown curve cannot be evaluated; the point at infinity is still
                // recognisable.
                None if !point.is_empty() && point.iter().all(|&b| b == 0) => {
                    out.push(invalid(curve, &PointError::Identity));
                }
                None => {}
            }
        }
    }
    out
}

fn allowed(policy: &KeyPolicy, curve: &str) -> bool {
    let wanted = curve::canonical(curve);
    policy
        .allowed_curves
        .iter()
        .any(|c| curve::canonical(c).eq_ignore_ascii_case(wanted))
}

fn check_explicit(der: &[u8], point: &[u8], policy: &KeyPolicy, out: &mut Vec<Finding>) {
    let (curve, base_error) = match curve::parse_explicit(der) {
        Ok(c) => c,
        Err(e) => {
            out.push(disallowed(EXPLICIT, Some(e.describe())));
            return;
        }
    };
    if let Some(e) = base_error {
        // Inconsistent parameters: no named curve, no usable subgroup. The public key can
        // still be held to the curve equation.
        out.push(disallowed(
            EXPLICIT,
            Some(format!(
                "explicit EC parameters whose base point is invalid ({})",
                e.describe()
            )),
        ));
        validate_point(&curve, EXPLICIT, point, false, out);
        return;
    }
    match curve::identify(&curve) {
        Some(named) => {
            let evidence = json!({ "curve": EXPLICIT, "named_curve": named.name });
            if allowed(policy, EXPLICIT) && allowed(policy, named.name) {
                out.push(Finding::warning(
                    "ec_curve_disallowed",
                    format!(
                        "explicit encoding of {}: WebPKI clients require the named-curve form",
                        named.name
                    ),
                    evidence,
                ));
            } else {
                out.push(Finding::violation(
                    "ec_curve_disallowed",
                    format!(
                        "explicit encoding of {}: only named curves are permitted \
                         (BR §7.1.3.1.2, Mozilla root store policy)",
                        named.name
                    ),
                    evidence,
                ));
            }
            validate_point(&named.curve, named.name, point, true, out);
        }
        None => {
            out.push(disallowed(
                EXPLICIT,
                Some(format!(
                    "explicit EC parameters that match no named curve ({}-bit field)",
                    curve.p.bits()
                )),
            ));
            validate_point(&curve, EXPLICIT, point, true, out);
        }
    }
}

/// Validates `point` on `curve`, reporting at most one finding. The n·Q = O check runs when
/// `check_order` is set and the cofactor is not known to be 1.
fn validate_point(
    curve: &Curve,
    name: &str,
    point: &[u8],
    check_order: bool,
    out: &mut Vec<Finding>,
) {
    match curve.decode(point) {
        Err(e) => out.push(invalid(name, &e)),
        Ok((q, form)) => {
            let prime_order = curve.h.as_ref().is_some_and(|h| *h == 1u8.into());
            if check_order && !prime_order && !curve.has_order_n(&q) {
                out.push(invalid(name, &PointError::WrongOrder));
            } else if form == Form::Compressed {
                out.push(Finding::warning(
                    "ec_point_invalid",
                    format!(
                        "{name} public key uses the compressed point form; many TLS clients \
                         accept only the uncompressed form (RFC 5480 §2.2)"
                    ),
                    json!({ "curve": name, "problem": "compressed" }),
                ));
            }
        }
    }
}

fn disallowed(curve: &str, reason: Option<String>) -> Finding {
    let message = match &reason {
        Some(r) => format!("{r}; allowed curves are named ones only"),
        None => format!("curve {curve} is not allowed (BR §6.1.5: P-256, P-384, P-521)"),
    };
    let mut evidence = json!({ "curve": curve });
    if let Some(r) = reason {
        evidence["reason"] = json!(r);
    }
    Finding::violation("ec_curve_disallowed", message, evidence)
}

fn invalid(curve: &str, e: &PointError) -> Finding {
    let mut evidence = json!({ "curve": curve, "problem": e.code() });
    match e {
        PointError::Length { expected, got } => {
            evidence["expected_length"] = json!(expected);
            evidence["length"] = json!(got);
        }
        PointError::Prefix(b) => evidence["prefix"] = json!(format!("0x{b:02x}")),
        _ => {}
    }
    Finding::violation(
        "ec_point_invalid",
        format!("invalid {curve} public key: {}", e.describe()),
        evidence,
    )
}

#[cfg(test)]
mod tests;
