//! Fresh private keys of an inventory key profile.

use certresponder_inventory::KeyProfile;
use certresponder_inventory::inspect::{der, encode_pem};
use rcgen::KeyPair;

use crate::IssuerError;

/// Generates a new key pair of the given profile.
pub fn generate_key(profile: KeyProfile) -> Result<KeyPair, IssuerError> {
    let result = match profile {
        KeyProfile::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyProfile::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyProfile::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        KeyProfile::Rsa2048 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        }
        KeyProfile::Rsa3072 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_3072)
        }
        KeyProfile::Rsa4096 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)
        }
    };
    result.map_err(|e| IssuerError::Crypto(format!("generating a {profile} key: {e}")))
}

/// The key as a PEM `PRIVATE KEY` (PKCS#8 version 1), the form every OpenSSL release reads.
pub fn private_key_pem(kp: &KeyPair) -> Result<String, IssuerError> {
    let der = pkcs8_v1(kp.serialized_der()).map_err(IssuerError::Crypto)?;
    Ok(encode_pem("PRIVATE KEY", &der))
}

/// A PKCS#8 key as version 1 `PrivateKeyInfo`: a version 2 `OneAsymmetricKey` (RFC 5958
/// §2, which aws-lc and so rcgen write for Ed25519) loses its optional public key, which
/// OpenSSL 3.0 cannot read inside a PKCS#12 key bag; anything else is kept as it is.
pub fn pkcs8_v1(key_der: &[u8]) -> Result<Vec<u8>, String> {
    let (seq, _) = der::expect_tlv(
        key_der,
        0x30,
        "the PKCS#8 private key is not a DER SEQUENCE",
    )?;
    let fields = der::children(seq.content)?;
    match fields.as_slice() {
        [version, algorithm, key, rest @ ..] if version.content == [1] => {
            let mut content = vec![0x02, 0x01, 0x00];
            content.extend_from_slice(algorithm.raw);
            content.extend_from_slice(key.raw);
            // Keep the attributes ([0]); drop the public key ([1]).
            for f in rest.iter().filter(|f| f.tag == 0xa0) {
                content.extend_from_slice(f.raw);
            }
            Ok(der::encode(0x30, &content))
        }
        _ => Ok(key_der.to_vec()),
    }
}
