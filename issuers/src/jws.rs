//! JWS signed with a certificate's own key (RFC 8555 §6.2 with a `jwk` header, RFC 7515
//! flattened JSON). ACME CAs accept a revocation signed this way as proof that the requester
//! holds the certificate's key (RFC 8555 §7.6), which is what blocks a compromised key.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use certresponder_inventory::inspect::{self, KeyFormat, KeyInfo};
use serde_json::{Value, json};

use crate::IssuerError;

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signer holding a certificate's private key. Its `Debug` shows no key material.
pub(crate) struct CertKeySigner {
    alg: &'static str,
    jwk: Value,
    signer: Signer,
}

impl std::fmt::Debug for CertKeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKeySigner")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn bad(msg: impl Into<String>) -> IssuerError {
    IssuerError::BadRequest(msg.into())
}

impl CertKeySigner {
    /// Loads a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) fn from_pem(pem: &str) -> Result<Self, IssuerError> {
        let info = inspect::read_private_key(pem.as_bytes())
            .map_err(|e| bad(format!("certificate key: {e}")))?;
        let der = inspect::parse_pem(pem.as_bytes())
            .map_err(|e| bad(format!("certificate key: {e}")))?
            .into_iter()
            .find(|b| b.label.ends_with("PRIVATE KEY"))
            .map(|b| b.der)
            .ok_or_else(|| bad("certificate key: no private key block"))?;
        let rejected =
            |e: aws_lc_rs::error::KeyRejected| bad(format!("certificate key rejected: {e}"));
        match &info.public {
            KeyInfo::Ec { curve, .. } => {
                let (alg, name, crv) = match curve.as_str() {
                    "P-256" => (
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        "ES256",
                        "P-256",
                    ),
                    "P-384" => (
                        &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
                        "ES384",
                        "P-384",
                    ),
                    "P-521" => (
                        &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
                        "ES512",
                        "P-521",
                    ),
                    other => {
                        return Err(bad(format!(
                            "certificate key on curve {other} cannot sign a JWS"
                        )));
                    }
                };
                let pair = EcdsaKeyPair::from_private_key_der(alg, &der).map_err(rejected)?;
                let public = pair.public_key().as_ref().to_vec();
                let coord = (public.len() - 1) / 2;
                let (x, y) = public[1..].split_at(coord);
                Ok(Self {
                    alg: name,
                    jwk: json!({"crv": crv, "kty": "EC", "x": B64.encode(x), "y": B64.encode(y)}),
                    signer: Signer::Ec(pair),
                })
            }
            KeyInfo::Rsa {
                modulus,
                exponent_bytes,
                ..
            } => {
                let pair = match info.format {
                    KeyFormat::Pkcs1 => RsaKeyPair::from_der(&der),
                    _ => RsaKeyPair::from_pkcs8(&der),
                }
                .map_err(rejected)?;
                Ok(Self {
                    alg: "RS256",
                    jwk: json!({"e": B64.encode(exponent_bytes), "kty": "RSA", "n": B64.encode(modulus)}),
                    signer: Signer::Rsa(pair),
                })
            }
            KeyInfo::Ed25519 { public } => {
                let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(rejected)?;
                Ok(Self {
                    alg: "EdDSA",
                    jwk: json!({"crv": "Ed25519", "kty": "OKP", "x": B64.encode(public)}),
                    signer: Signer::Ed(pair),
                })
            }
            other => Err(bad(format!(
                "a {} key cannot sign a JWS here",
                other.describe()
            ))),
        }
    }

    /// The flattened JWS for `payload`, addressed to `url` with `nonce`.
    pub(crate) fn sign(
        &self,
        url: &str,
        nonce: &str,
        payload: &Value,
    ) -> Result<String, IssuerError> {
        let protected = json!({"alg": self.alg, "jwk": self.jwk, "nonce": nonce, "url": url});
        let protected = B64.encode(protected.to_string());
        let payload = B64.encode(payload.to_string());
        let input = format!("{protected}.{payload}");
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).map(|s| s.as_ref().to_vec()),
            Signer::Ed(k) => Ok(k.sign(input.as_bytes()).as_ref().to_vec()),
            Signer::Rsa(k) => {
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut out,
                )
                .map(|()| out)
            }
        }
        .map_err(|_| IssuerError::Crypto("signing the JWS failed".into()))?;
        Ok(
            json!({"protected": protected, "payload": payload, "signature": B64.encode(sig)})
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use certresponder_inventory::KeyProfile;

    #[test]
    fn signs_with_each_key_type_and_verifies() {
        for profile in [
            KeyProfile::EcdsaP256,
            KeyProfile::EcdsaP384,
            KeyProfile::Rsa2048,
            KeyProfile::Ed25519,
        ] {
            let key = crate::generate_key(profile).unwrap();
            let signer = CertKeySigner::from_pem(&key.serialize_pem()).unwrap();
            let jws: Value = serde_json::from_str(
                &signer
                    .sign("https://ca/revoke", "n1", &json!({"a": 1}))
                    .unwrap(),
            )
            .unwrap();
            let input = format!(
                "{}.{}",
                jws["protected"].as_str().unwrap(),
                jws["payload"].as_str().unwrap()
            );
            let sig = B64.decode(jws["signature"].as_str().unwrap()).unwrap();
            let alg: &dyn signature::VerificationAlgorithm = match profile {
                KeyProfile::EcdsaP256 => &signature::ECDSA_P256_SHA256_FIXED,
                KeyProfile::EcdsaP384 => &signature::ECDSA_P384_SHA384_FIXED,
                KeyProfile::Rsa2048 => &signature::RSA_PKCS1_2048_8192_SHA256,
                _ => &signature::ED25519,
            };
            let public = match profile {
                KeyProfile::Rsa2048 => {
                    let info = inspect::read_private_key(key.serialize_pem().as_bytes()).unwrap();
                    let KeyInfo::Rsa {
                        modulus,
                        exponent_bytes,
                        ..
                    } = info.public
                    else {
                        panic!()
                    };
                    // RSAPublicKey DER for aws-lc's verifier.
                    use certresponder_inventory::inspect::der;
                    let n = [vec![0u8], modulus].concat();
                    let body = [
                        der::encode(der::TAG_INTEGER, &n),
                        der::encode(der::TAG_INTEGER, &exponent_bytes),
                    ]
                    .concat();
                    der::encode(der::TAG_SEQUENCE, &body)
                }
                _ => key.public_key_raw().to_vec(),
            };
            signature::UnparsedPublicKey::new(alg, &public)
                .verify(input.as_bytes(), &sig)
                .unwrap();
        }
    }
}
