//! Fresh private keys of an inventory key profile.

use certresponder_inventory::KeyProfile;
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
