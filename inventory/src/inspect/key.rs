//! Keys: the public-key summary shared by certificates, CSRs and key files, and private-key
//! parsing (PKCS#8, PKCS#1, SEC1) that derives the public half so that a key can be matched
//! to its certificate. Private key bytes never leave this module in a printable form.

use serde::Serialize;

use super::der;
use super::error::InspectError;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
pub(crate) const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_X25519: &[u8] = &[0x2b, 0x65, 0x6e];
const OID_X448: &[u8] = &[0x2b, 0x65, 0x6f];
/// 2.16.840.1.101.3.4.3.17..19: ML-DSA-44, -65, -87 (FIPS 204; RFC 9881).
const OID_ML_DSA_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
/// 2.16.840.1.101.3.4.4.1..3: ML-KEM-512, -768, -1024 (FIPS 203).
const OID_ML_KEM_PREFIX: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_SECP256K1: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x0a];

/// Names a curve by the DER content of its OID.
pub(crate) fn curve_name(oid: &[u8]) -> String {
    match oid {
        OID_P256 => "P-256".into(),
        OID_P384 => "P-384".into(),
        OID_P521 => "P-521".into(),
        OID_SECP256K1 => "secp256k1".into(),
        other => dotted_oid(other),
    }
}

/// Formats OID content octets as dotted decimal.
fn dotted_oid(bytes: &[u8]) -> String {
    let mut arcs: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    for &b in bytes {
        acc = (acc << 7) | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(acc);
            acc = 0;
        }
    }
    let mut out = String::new();
    if let Some(&first) = arcs.first() {
        let (a, b) = if first < 40 {
            (0, first)
        } else if first < 80 {
            (1, first - 40)
        } else {
            (2, first - 80)
        };
        out = format!("{a}.{b}");
        for arc in &arcs[1..] {
            out.push_str(&format!(".{arc}"));
        }
    }
    out
}

/// A public key, summarised. The raw material is kept (not serialised) for matching and
/// for the weak-key checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyInfo {
    /// RSA.
    Rsa {
        /// Modulus size in bits.
        bits: usize,
        /// Public exponent, decimal (hex with `0x` when it does not fit in 64 bits).
        exponent: String,
        /// Modulus, big-endian without leading zeros.
        #[serde(skip)]
        modulus: Vec<u8>,
        /// Exponent, big-endian without leading zeros.
        #[serde(skip)]
        exponent_bytes: Vec<u8>,
    },
    /// ECDSA / ECDH on a Weierstrass curve.
    Ec {
        /// `P-256`, `P-384`, `P-521`, `secp256k1`, `explicit` or a dotted OID.
        curve: String,
        /// The encoded point.
        #[serde(skip)]
        point: Vec<u8>,
        /// The DER `ECParameters` (RFC 3279 §2.3.5) when the curve is given explicitly
        /// rather than named (`curve` is then `explicit`), kept so that the curve checks can
        /// compare them with the named curves.
        #[serde(skip)]
        params: Option<Vec<u8>>,
    },
    /// Ed25519 (RFC 8410).
    Ed25519 {
        /// The 32-byte public key.
        #[serde(skip)]
        public: Vec<u8>,
    },
    /// Ed448 (RFC 8410).
    Ed448 {
        /// The 57-byte public key.
        #[serde(skip)]
        public: Vec<u8>,
    },
    /// DSA (FIPS 186; RFC 3279 §2.3.2).
    Dsa {
        /// Size of `p` in bits.
        bits: usize,
        /// The domain parameters and the public value, big-endian without leading zeros.
        #[serde(skip)]
        p: Vec<u8>,
        /// Subgroup order.
        #[serde(skip)]
        q: Vec<u8>,
        /// Generator.
        #[serde(skip)]
        g: Vec<u8>,
        /// Public value `g^x mod p`.
        #[serde(skip)]
        y: Vec<u8>,
    },
    /// X25519 (RFC 8410).
    X25519 {
        /// The 32-byte public key.
        #[serde(skip)]
        public: Vec<u8>,
    },
    /// X448 (RFC 8410).
    X448 {
        /// The 56-byte public key.
        #[serde(skip)]
        public: Vec<u8>,
    },
    /// ML-DSA (FIPS 204): `level` is 44, 65 or 87.
    #[serde(rename = "ml-dsa")]
    MlDsa {
        /// The parameter set.
        level: u16,
        /// The encoded public key.
        #[serde(skip)]
        public: Vec<u8>,
    },
    /// ML-KEM (FIPS 203): `level` is 512, 768 or 1024.
    #[serde(rename = "ml-kem")]
    MlKem {
        /// The parameter set.
        level: u16,
        /// The encoded encapsulation key.
        #[serde(skip)]
        public: Vec<u8>,
    },
    /// Any other algorithm (GOST, SM2...).
    Other {
        /// Dotted OID of the algorithm.
        oid: String,
    },
}

impl KeyInfo {
    pub(crate) fn rsa(n: &[u8], e: &[u8]) -> Self {
        let modulus = der::strip_leading_zeros(n).to_vec();
        let exponent_bytes = der::strip_leading_zeros(e).to_vec();
        let bits = Self::rsa_modulus_bits(&modulus);
        let exponent = if exponent_bytes.len() <= 8 {
            exponent_bytes
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
                .to_string()
        } else {
            format!("0x{}", hex::encode(&exponent_bytes))
        };
        Self::Rsa {
            bits,
            exponent,
            modulus,
            exponent_bytes,
        }
    }

    pub(crate) fn ec(curve: String, point: Vec<u8>) -> Self {
        Self::Ec {
            curve,
            point,
            params: None,
        }
    }

    /// The bit length of an RSA modulus (or any unsigned integer) given as big-endian bytes.
    pub fn rsa_modulus_bits(n: &[u8]) -> usize {
        let n = der::strip_leading_zeros(n);
        match n.first() {
            Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
            None => 0,
        }
    }

    /// A DSA key from its domain parameters and public value (big-endian; leading zeros
    /// are dropped).
    pub fn dsa(p: &[u8], q: &[u8], g: &[u8], y: &[u8]) -> Self {
        let p = der::strip_leading_zeros(p).to_vec();
        let bits = Self::rsa_modulus_bits(&p);
        Self::Dsa {
            bits,
            p,
            q: der::strip_leading_zeros(q).to_vec(),
            g: der::strip_leading_zeros(g).to_vec(),
            y: der::strip_leading_zeros(y).to_vec(),
        }
    }

    /// The public key bytes that badkeys hashes for its blocklists: the RSA modulus, the
    /// DSA public value and the EC point's x coordinate (each as a minimal big-endian
    /// integer), the raw key of Ed25519, Ed448, X25519 and X448 read as such an integer,
    /// and the raw encoding of ML-DSA and ML-KEM keys. `None` for an algorithm it has no
    /// form for.
    pub fn blocklist_bytes(&self) -> Option<Vec<u8>> {
        let minimal = |b: &[u8]| der::strip_leading_zeros(b).to_vec();
        match self {
            Self::Rsa { modulus, .. } => Some(modulus.clone()),
            Self::Dsa { y, .. } => Some(y.clone()),
            Self::Ec { point, .. } => match point.split_first() {
                // Uncompressed, or hybrid (X9.62: 06/07 and both coordinates).
                Some((0x04 | 0x06 | 0x07, xy)) if xy.len() % 2 == 0 => {
                    Some(minimal(&xy[..xy.len() / 2]))
                }
                Some((0x02 | 0x03, x)) => Some(minimal(x)),
                _ => None,
            },
            Self::Ed25519 { public }
            | Self::Ed448 { public }
            | Self::X25519 { public }
            | Self::X448 { public } => Some(minimal(public)),
            Self::MlDsa { public, .. } | Self::MlKem { public, .. } => Some(public.clone()),
            Self::Other { .. } => None,
        }
    }

    /// An EC key whose curve is given by explicit `ECParameters` (DER).
    pub(crate) fn ec_explicit(params: Vec<u8>, point: Vec<u8>) -> Self {
        Self::Ec {
            curve: "explicit".into(),
            point,
            params: Some(params),
        }
    }

    /// A short human description: `RSA-2048`, `ECDSA P-256`, `Ed25519`.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa { bits, .. } => format!("RSA-{bits}"),
            Self::Ec { curve, .. } => format!("ECDSA {curve}"),
            Self::Ed25519 { .. } => "Ed25519".into(),
            Self::Ed448 { .. } => "Ed448".into(),
            Self::Dsa { bits, .. } => format!("DSA-{bits}"),
            Self::X25519 { .. } => "X25519".into(),
            Self::X448 { .. } => "X448".into(),
            Self::MlDsa { level, .. } => format!("ML-DSA-{level}"),
            Self::MlKem { level, .. } => format!("ML-KEM-{level}"),
            Self::Other { oid } => format!("other ({oid})"),
        }
    }

    /// The key-profile name this key corresponds to, if it is one certresponder issues.
    pub fn profile_name(&self) -> Option<&'static str> {
        match self {
            Self::Rsa { bits: 2048, .. } => Some("rsa-2048"),
            Self::Rsa { bits: 3072, .. } => Some("rsa-3072"),
            Self::Rsa { bits: 4096, .. } => Some("rsa-4096"),
            Self::Ec { curve, .. } if curve == "P-256" => Some("ecdsa-p256"),
            Self::Ec { curve, .. } if curve == "P-384" => Some("ecdsa-p384"),
            Self::Ed25519 { .. } => Some("ed25519"),
            _ => None,
        }
    }

    /// Size in bits (RSA modulus, curve order, 256 for Ed25519, 456 for Ed448).
    pub fn bits(&self) -> usize {
        match self {
            Self::Rsa { bits, .. } => *bits,
            Self::Ec { curve, .. } => match curve.as_str() {
                "P-256" | "secp256k1" => 256,
                "P-384" => 384,
                "P-521" => 521,
                _ => 0,
            },
            Self::Ed25519 { .. } => 256,
            Self::Ed448 { .. } => 456,
            Self::Dsa { bits, .. } => *bits,
            Self::X25519 { .. } => 255,
            Self::X448 { .. } => 448,
            Self::MlDsa { .. } | Self::MlKem { .. } | Self::Other { .. } => 0,
        }
    }

    /// Whether two summaries describe the same public key.
    pub fn same_public_key(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Rsa {
                    modulus: n1,
                    exponent_bytes: e1,
                    ..
                },
                Self::Rsa {
                    modulus: n2,
                    exponent_bytes: e2,
                    ..
                },
            ) => n1 == n2 && e1 == e2,
            (
                Self::Ec {
                    curve: c1,
                    point: p1,
                    params: q1,
                },
                Self::Ec {
                    curve: c2,
                    point: p2,
                    params: q2,
                },
            ) => c1 == c2 && q1 == q2 && same_ec_point(p1, p2),
            (Self::Ed25519 { public: a }, Self::Ed25519 { public: b })
            | (Self::Ed448 { public: a }, Self::Ed448 { public: b })
            | (Self::X25519 { public: a }, Self::X25519 { public: b })
            | (Self::X448 { public: a }, Self::X448 { public: b }) => a == b,
            (
                Self::MlDsa {
                    level: l1,
                    public: a,
                },
                Self::MlDsa {
                    level: l2,
                    public: b,
                },
            )
            | (
                Self::MlKem {
                    level: l1,
                    public: a,
                },
                Self::MlKem {
                    level: l2,
                    public: b,
                },
            ) => l1 == l2 && a == b,
            (
                Self::Dsa {
                    p: p1,
                    q: q1,
                    g: g1,
                    y: y1,
                    ..
                },
                Self::Dsa {
                    p: p2,
                    q: q2,
                    g: g2,
                    y: y2,
                    ..
                },
            ) => p1 == p2 && q1 == q2 && g1 == g2 && y1 == y2,
            _ => false,
        }
    }
}

/// The ML-DSA parameter set of an algorithm OID, with its public key size (FIPS 204 Table 2).
fn ml_dsa(oid: &[u8]) -> Option<(u16, usize)> {
    match oid.strip_prefix(OID_ML_DSA_PREFIX)? {
        [0x11] => Some((44, 1312)),
        [0x12] => Some((65, 1952)),
        [0x13] => Some((87, 2592)),
        _ => None,
    }
}

/// The ML-KEM parameter set of an algorithm OID, with its `k` (FIPS 203 Table 2): the
/// encapsulation key is `384 k + 32` bytes.
fn ml_kem(oid: &[u8]) -> Option<(u16, usize)> {
    match oid.strip_prefix(OID_ML_KEM_PREFIX)? {
        [0x01] => Some((512, 2)),
        [0x02] => Some((768, 3)),
        [0x03] => Some((1024, 4)),
        _ => None,
    }
}

/// A public key of an algorithm whose SubjectPublicKeyInfo holds the raw key (X25519, X448,
/// ML-DSA, ML-KEM), checked for its size; `None` for another algorithm.
pub(crate) fn raw_public_key(alg: &[u8], bits: &[u8]) -> Result<Option<KeyInfo>, String> {
    let sized = |name: &str, want: usize| {
        if bits.len() == want {
            Ok(bits.to_vec())
        } else {
            Err(format!(
                "{name} public key is {} bytes, not {want}",
                bits.len()
            ))
        }
    };
    Ok(Some(match alg {
        OID_X25519 => KeyInfo::X25519 {
            public: sized("X25519", 32)?,
        },
        OID_X448 => KeyInfo::X448 {
            public: sized("X448", 56)?,
        },
        _ => {
            if let Some((level, size)) = ml_dsa(alg) {
                KeyInfo::MlDsa {
                    level,
                    public: sized(&format!("ML-DSA-{level}"), size)?,
                }
            } else if let Some((level, k)) = ml_kem(alg) {
                KeyInfo::MlKem {
                    level,
                    public: sized(&format!("ML-KEM-{level}"), 384 * k + 32)?,
                }
            } else {
                return Ok(None);
            }
        }
    }))
}

/// DSA domain parameters `(p, q, g)`, big-endian integer contents.
pub(crate) type DssParams<'a> = (&'a [u8], &'a [u8], &'a [u8]);

/// DSA domain parameters (`Dss-Parms ::= SEQUENCE { p, q, g }`, RFC 3279 §2.3.2): the
/// contents of the three INTEGERs.
pub(crate) fn dss_params(der_bytes: &[u8]) -> Result<DssParams<'_>, String> {
    let (seq, _) = der::expect_tlv(
        der_bytes,
        der::TAG_SEQUENCE,
        "DSA parameters are not a SEQUENCE",
    )
    .map_err(|e| e.to_string())?;
    let f = der::children(seq.content).map_err(|e| e.to_string())?;
    match f.as_slice() {
        [p, q, g] if [p, q, g].iter().all(|t| t.tag == der::TAG_INTEGER) => {
            Ok((p.content, q.content, g.content))
        }
        _ => Err("DSA parameters are not three INTEGERs p, q, g".into()),
    }
}

/// Compares two SEC1-encoded points, uncompressed (`04 X Y`) or compressed (`02|03 X`):
/// equal when X is equal and Y (or its parity) agrees.
fn same_ec_point(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let split = |p: &[u8]| -> Option<(Vec<u8>, u8)> {
        match p.split_first()? {
            (0x04, xy) if xy.len() % 2 == 0 && !xy.is_empty() => {
                let (x, y) = xy.split_at(xy.len() / 2);
                Some((x.to_vec(), y.last()? & 1))
            }
            (tag @ (0x02 | 0x03), x) if !x.is_empty() => Some((x.to_vec(), tag & 1)),
            _ => None,
        }
    };
    let uncompressed_both = a.first() == Some(&0x04) && b.first() == Some(&0x04);
    !uncompressed_both && matches!((split(a), split(b)), (Some(x), Some(y)) if x == y)
}

/// The encoding a private key was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    /// RFC 5958 / PKCS#8 `PrivateKeyInfo` (`BEGIN PRIVATE KEY`).
    Pkcs8,
    /// RFC 8017 / PKCS#1 `RSAPrivateKey` (`BEGIN RSA PRIVATE KEY`).
    Pkcs1,
    /// RFC 5915 / SEC1 `ECPrivateKey` (`BEGIN EC PRIVATE KEY`).
    Sec1,
    /// OpenSSL's traditional DSA key, `SEQUENCE { 0, p, q, g, y, x }` (`BEGIN DSA PRIVATE
    /// KEY`).
    Dsa,
}

/// A private key's public half and encoding. Holds no secret material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrivateKeyInfo {
    /// How the key was encoded.
    pub format: KeyFormat,
    /// The public key derived from it.
    pub public: KeyInfo,
}

fn bad(reason: impl Into<String>) -> InspectError {
    InspectError::unparseable("private key", reason)
}

/// Parses a DER private key of the given format.
pub(crate) fn parse_private_key_der(
    der_bytes: &[u8],
    format: KeyFormat,
) -> Result<PrivateKeyInfo, InspectError> {
    let public = match format {
        KeyFormat::Pkcs1 => parse_pkcs1(der_bytes)?,
        KeyFormat::Sec1 => parse_sec1(der_bytes, None)?,
        KeyFormat::Pkcs8 => parse_pkcs8(der_bytes)?,
        KeyFormat::Dsa => parse_dsa_traditional(der_bytes)?,
    };
    Ok(PrivateKeyInfo { format, public })
}

/// Tries each format in turn, for DER files that carry no label.
pub(crate) fn parse_private_key_der_any(der_bytes: &[u8]) -> Result<PrivateKeyInfo, InspectError> {
    if is_encrypted_pkcs8(der_bytes) {
        return Err(InspectError::EncryptedKey);
    }
    let mut reasons = Vec::new();
    for format in [
        KeyFormat::Pkcs8,
        KeyFormat::Pkcs1,
        KeyFormat::Sec1,
        KeyFormat::Dsa,
    ] {
        match parse_private_key_der(der_bytes, format) {
            Ok(k) => return Ok(k),
            Err(e) => reasons.push(format!("{format:?}: {e}")),
        }
    }
    Err(bad(format!(
        "not a PKCS#8, PKCS#1 or SEC1 private key ({})",
        reasons.join("; ")
    )))
}

/// RFC 5958 `EncryptedPrivateKeyInfo`: SEQUENCE { AlgorithmIdentifier, OCTET STRING } and
/// nothing else, which no plaintext key format looks like.
fn is_encrypted_pkcs8(input: &[u8]) -> bool {
    let Ok((seq, rest)) = der::expect_tlv(input, der::TAG_SEQUENCE, "") else {
        return false;
    };
    let Ok(fields) = der::children(seq.content) else {
        return false;
    };
    rest.is_empty()
        && fields.len() == 2
        && fields[0].tag == der::TAG_SEQUENCE
        && fields[1].tag == der::TAG_OCTET_STRING
}

fn parse_pkcs1(input: &[u8]) -> Result<KeyInfo, InspectError> {
    let (seq, rest) = der::expect_tlv(input, der::TAG_SEQUENCE, "RSAPrivateKey is not a SEQUENCE")
        .map_err(bad)?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after RSAPrivateKey"));
    }
    let fields = der::children(seq.content).map_err(bad)?;
    if fields.len() < 9 || fields[..9].iter().any(|f| f.tag != der::TAG_INTEGER) {
        return Err(bad(
            "RSAPrivateKey must hold nine INTEGERs (version, n, e, d, p, q, ...)",
        ));
    }
    Ok(KeyInfo::rsa(fields[1].content, fields[2].content))
}

fn ec_alg(curve: &[u8]) -> Option<&'static aws_lc_rs::signature::EcdsaSigningAlgorithm> {
    use aws_lc_rs::signature as s;
    match curve {
        OID_P256 => Some(&s::ECDSA_P256_SHA256_ASN1_SIGNING),
        OID_P384 => Some(&s::ECDSA_P384_SHA384_ASN1_SIGNING),
        OID_P521 => Some(&s::ECDSA_P521_SHA512_ASN1_SIGNING),
        _ => None,
    }
}

/// SEC1 `ECPrivateKey`; `outer_curve` is the curve named by a PKCS#8 wrapper.
fn parse_sec1(input: &[u8], outer_curve: Option<&[u8]>) -> Result<KeyInfo, InspectError> {
    let (seq, _) =
        der::expect_tlv(input, der::TAG_SEQUENCE, "ECPrivateKey is not a SEQUENCE").map_err(bad)?;
    let fields = der::children(seq.content).map_err(bad)?;
    let (Some(version), Some(scalar)) = (fields.first(), fields.get(1)) else {
        return Err(bad("ECPrivateKey is missing its version or key"));
    };
    if version.tag != der::TAG_INTEGER || version.content != [1] {
        return Err(bad("ECPrivateKey version must be 1"));
    }
    if scalar.tag != der::TAG_OCTET_STRING || scalar.content.is_empty() {
        return Err(bad("ECPrivateKey key is not an OCTET STRING"));
    }
    let mut curve = outer_curve;
    let mut embedded_public = None;
    for f in &fields[2..] {
        match f.tag {
            0xa0 => {
                let (oid, _) = der::expect_tlv(
                    f.content,
                    der::TAG_OID,
                    "EC parameters are not a named curve",
                )
                .map_err(|_| InspectError::Unsupported {
                    what: "private key",
                    reason: "EC key with explicit curve parameters".into(),
                })?;
                curve = Some(oid.content);
            }
            0xa1 => {
                let (bits, _) = der::expect_tlv(
                    f.content,
                    der::TAG_BIT_STRING,
                    "EC public key is not a BIT STRING",
                )
                .map_err(bad)?;
                embedded_public = bits.content.get(1..).map(<[u8]>::to_vec);
            }
            _ => {}
        }
    }
    let curve = curve.ok_or_else(|| bad("EC private key names no curve"))?;
    let point = match ec_alg(curve) {
        Some(alg) => {
            // Re-wrap as SEC1 with the curve so that aws-lc can derive the public point
            // from the scalar itself (a stored public key could be wrong).
            let der_bytes = sec1_with_curve(scalar.content, curve);
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(alg, &der_bytes)
                .map_err(|e| bad(format!("EC private key rejected: {e}")))?;
            aws_lc_rs::signature::KeyPair::public_key(&pair)
                .as_ref()
                .to_vec()
        }
        None => embedded_public.ok_or_else(|| InspectError::Unsupported {
            what: "private key",
            reason: format!(
                "cannot derive the public key on curve {} and the key file does not carry it",
                curve_name(curve)
            ),
        })?,
    };
    Ok(KeyInfo::ec(curve_name(curve), point))
}

fn sec1_with_curve(scalar: &[u8], curve: &[u8]) -> Vec<u8> {
    let body = [
        vec![der::TAG_INTEGER, 1, 1],
        der::encode(der::TAG_OCTET_STRING, scalar),
        der::encode(0xa0, &der::encode(der::TAG_OID, curve)),
    ]
    .concat();
    der::encode(der::TAG_SEQUENCE, &body)
}

fn parse_pkcs8(input: &[u8]) -> Result<KeyInfo, InspectError> {
    let (seq, rest) = der::expect_tlv(input, der::TAG_SEQUENCE, "PrivateKeyInfo is not a SEQUENCE")
        .map_err(bad)?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after PrivateKeyInfo"));
    }
    let fields = der::children(seq.content).map_err(bad)?;
    let (Some(version), Some(alg), Some(key)) = (fields.first(), fields.get(1), fields.get(2))
    else {
        return Err(bad(
            "PrivateKeyInfo needs a version, an algorithm and a key",
        ));
    };
    if version.tag != der::TAG_INTEGER
        || alg.tag != der::TAG_SEQUENCE
        || key.tag != der::TAG_OCTET_STRING
    {
        return Err(bad("PrivateKeyInfo fields have the wrong types"));
    }
    let alg_fields = der::children(alg.content).map_err(bad)?;
    let oid = alg_fields
        .first()
        .filter(|f| f.tag == der::TAG_OID)
        .ok_or_else(|| bad("PrivateKeyInfo algorithm has no OID"))?;
    match oid.content {
        OID_RSA | OID_RSA_PSS => parse_pkcs1(key.content),
        OID_EC => {
            let curve = alg_fields
                .get(1)
                .filter(|f| f.tag == der::TAG_OID)
                .map(|f| f.content);
            parse_sec1(key.content, curve)
        }
        OID_ED25519 => {
            let (seed, _) = der::expect_tlv(
                key.content,
                der::TAG_OCTET_STRING,
                "Ed25519 key is not an OCTET STRING",
            )
            .map_err(bad)?;
            let pair = aws_lc_rs::signature::Ed25519KeyPair::from_seed_unchecked(seed.content)
                .map_err(|e| bad(format!("Ed25519 key rejected: {e}")))?;
            Ok(KeyInfo::Ed25519 {
                public: aws_lc_rs::signature::KeyPair::public_key(&pair)
                    .as_ref()
                    .to_vec(),
            })
        }
        OID_ED448 => Ok(KeyInfo::Ed448 {
            public: embedded_public(&fields, "Ed448")?,
        }),
        OID_DSA => {
            let params = alg_fields
                .get(1)
                .ok_or_else(|| bad("DSA key without its domain parameters"))?;
            let (p, q, g) = dss_params(params.raw).map_err(bad)?;
            let (x, _) = der::expect_tlv(
                key.content,
                der::TAG_INTEGER,
                "DSA private key is not an INTEGER",
            )
            .map_err(bad)?;
            Ok(dsa_from_private(p, q, g, x.content)?)
        }
        OID_X25519 => {
            let (raw, _) = der::expect_tlv(
                key.content,
                der::TAG_OCTET_STRING,
                "X25519 key is not an OCTET STRING",
            )
            .map_err(bad)?;
            let private = aws_lc_rs::agreement::PrivateKey::from_private_key(
                &aws_lc_rs::agreement::X25519,
                raw.content,
            )
            .map_err(|e| bad(format!("X25519 key rejected: {e}")))?;
            let public = private
                .compute_public_key()
                .map_err(|e| bad(format!("X25519 public key: {e}")))?;
            Ok(KeyInfo::X25519 {
                public: public.as_ref().to_vec(),
            })
        }
        OID_X448 => Ok(KeyInfo::X448 {
            public: embedded_public(&fields, "X448")?,
        }),
        other if ml_kem(other).is_some() => ml_kem_private(other, key.content),
        other => Err(InspectError::Unsupported {
            what: "private key",
            reason: format!("algorithm {}", dotted_oid(other)),
        }),
    }
}

/// The public key a v2 OneAsymmetricKey carries as `[1]` (RFC 5958; RFC 8410 §7), for the
/// algorithms whose public key certresponder cannot derive (Ed448, X448).
fn embedded_public(fields: &[der::Tlv<'_>], algorithm: &str) -> Result<Vec<u8>, InspectError> {
    fields
        .iter()
        .find(|f| f.tag == 0x81)
        .and_then(|f| f.content.get(1..))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| InspectError::Unsupported {
            what: "private key",
            reason: format!(
                "{algorithm} key without its public key; certresponder cannot derive it"
            ),
        })
}

/// OpenSSL's traditional DSA private key: `SEQUENCE { version 0, p, q, g, y, x }`.
fn parse_dsa_traditional(der_bytes: &[u8]) -> Result<KeyInfo, InspectError> {
    let (seq, rest) =
        der::expect_tlv(der_bytes, der::TAG_SEQUENCE, "DSA key is not a SEQUENCE").map_err(bad)?;
    if !rest.is_empty() {
        return Err(bad("trailing bytes after the DSA key"));
    }
    let f = der::children(seq.content).map_err(bad)?;
    match f.as_slice() {
        [v, p, q, g, y, _x]
            if [v, p, q, g, y].iter().all(|t| t.tag == der::TAG_INTEGER) && v.content == [0] =>
        {
            Ok(KeyInfo::dsa(p.content, q.content, g.content, y.content))
        }
        _ => Err(bad("DSA key is not SEQUENCE { 0, p, q, g, y, x }")),
    }
}

/// A DSA key's public half from its private value: `y = g^x mod p`.
fn dsa_from_private(p: &[u8], q: &[u8], g: &[u8], x: &[u8]) -> Result<KeyInfo, InspectError> {
    use num_bigint::BigUint;
    let (pn, gn, xn) = (
        BigUint::from_bytes_be(p),
        BigUint::from_bytes_be(g),
        BigUint::from_bytes_be(x),
    );
    // Bounded work for any input: DSA primes are at most 3072 bits (FIPS 186-4).
    if pn.bits() < 2 || pn.bits() > 16_384 || xn.bits() > pn.bits() {
        return Err(bad("DSA parameters out of range"));
    }
    let y = gn.modpow(&xn, &pn);
    Ok(KeyInfo::dsa(p, q, g, &y.to_bytes_be()))
}

/// An ML-KEM private key (draft-ietf-lamps-kyber-certificates: the 64-byte seed `d || z`
/// as `[0]`, the expanded decapsulation key as an OCTET STRING, or both in a SEQUENCE): its
/// encapsulation key, derived from the seed (FIPS 203 ML-KEM.KeyGen_internal) or read from
/// the expanded key, where it sits after the 384 k bytes of `dk_PKE`.
fn ml_kem_private(oid: &[u8], content: &[u8]) -> Result<KeyInfo, InspectError> {
    use ml_kem::{EncodedSizeUser, KemCore};
    let Some((level, k)) = ml_kem(oid) else {
        return Err(bad("not an ML-KEM key"));
    };
    let (choice, _) = der::read_tlv(content).map_err(bad)?;
    let (seed, expanded) = match choice.tag {
        0x80 => (Some(choice.content), None),
        der::TAG_OCTET_STRING => (None, Some(choice.content)),
        der::TAG_SEQUENCE => {
            let f = der::children(choice.content).map_err(bad)?;
            match f.as_slice() {
                [s, e] if s.tag == der::TAG_OCTET_STRING && e.tag == der::TAG_OCTET_STRING => {
                    (Some(s.content), Some(e.content))
                }
                _ => return Err(bad("ML-KEM key: `both` is not two OCTET STRINGs")),
            }
        }
        t => return Err(bad(format!("ML-KEM key: unexpected tag {t:#04x}"))),
    };
    let ek_len = 384 * k + 32;
    let public = if let Some(seed) = seed {
        if seed.len() != 64 {
            return Err(bad(format!("ML-KEM seed is {} bytes, not 64", seed.len())));
        }
        let d = ml_kem::B32::try_from(&seed[..32]).map_err(|_| bad("ML-KEM seed"))?;
        let z = ml_kem::B32::try_from(&seed[32..]).map_err(|_| bad("ML-KEM seed"))?;
        let ek = match level {
            512 => ml_kem::MlKem512::generate_deterministic(&d, &z)
                .1
                .as_bytes()
                .to_vec(),
            768 => ml_kem::MlKem768::generate_deterministic(&d, &z)
                .1
                .as_bytes()
                .to_vec(),
            _ => ml_kem::MlKem1024::generate_deterministic(&d, &z)
                .1
                .as_bytes()
                .to_vec(),
        };
        if let Some(e) = expanded
            && e.get(384 * k..384 * k + ek_len) != Some(ek.as_slice())
        {
            return Err(bad("ML-KEM key: the seed and the expanded key disagree"));
        }
        ek
    } else {
        let e = expanded.unwrap_or_default();
        if e.len() != 768 * k + 96 {
            return Err(bad(format!(
                "ML-KEM-{level} expanded key is {} bytes, not {}",
                e.len(),
                768 * k + 96
            )));
        }
        e[384 * k..384 * k + ek_len].to_vec()
    };
    Ok(KeyInfo::MlKem { level, public })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_points_match_uncompressed() {
        let mut x = vec![7u8; 32];
        let y_even = vec![9u8; 31].into_iter().chain([2u8]).collect::<Vec<_>>();
        let mut unc = vec![4u8];
        unc.extend(&x);
        unc.extend(&y_even);
        let mut comp = vec![2u8];
        comp.append(&mut x);
        assert!(same_ec_point(&unc, &comp));
        comp[0] = 3;
        assert!(!same_ec_point(&unc, &comp));
        let mut other = unc.clone();
        other[40] ^= 1;
        assert!(
            !same_ec_point(&unc, &other),
            "uncompressed points compare exactly"
        );
    }

    #[test]
    fn dotted() {
        assert_eq!(dotted_oid(OID_P256), "1.2.840.10045.3.1.7");
        assert_eq!(dotted_oid(OID_ED25519), "1.3.101.112");
    }

    #[test]
    fn rsa_bits_and_exponent() {
        let k = KeyInfo::rsa(&[0x00, 0x80, 0, 0], &[0x01, 0x00, 0x01]);
        assert_eq!(k.bits(), 24);
        assert!(matches!(k, KeyInfo::Rsa { ref exponent, .. } if exponent == "65537"));
    }
}

/// A public key whole, for sending it between processes (a command that found a key and the
/// daemon that matches it): [`KeyInfo`] with its bytes, as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(tag = "algorithm", rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyWire {
    /// RSA: modulus and exponent, big-endian hex.
    Rsa {
        /// The modulus.
        modulus: String,
        /// The exponent.
        exponent: String,
    },
    /// EC: the curve, the point, explicit parameters when given so.
    Ec {
        /// The curve's name.
        curve: String,
        /// The encoded point, hex.
        point: String,
        /// DER `ECParameters`, hex.
        params: Option<String>,
    },
    /// Ed25519: the public key, hex.
    Ed25519 {
        /// The public key.
        public: String,
    },
    /// Ed448: the public key, hex.
    Ed448 {
        /// The public key.
        public: String,
    },
    /// DSA: the domain parameters and the public value, big-endian hex.
    Dsa {
        /// Prime modulus.
        p: String,
        /// Subgroup order.
        q: String,
        /// Generator.
        g: String,
        /// Public value.
        y: String,
    },
    /// X25519: the public key, hex.
    X25519 {
        /// The public key.
        public: String,
    },
    /// X448: the public key, hex.
    X448 {
        /// The public key.
        public: String,
    },
    /// ML-DSA: the parameter set and the public key, hex.
    #[serde(rename = "ml-dsa")]
    MlDsa {
        /// 44, 65 or 87.
        level: u16,
        /// The public key.
        public: String,
    },
    /// ML-KEM: the parameter set and the encapsulation key, hex.
    #[serde(rename = "ml-kem")]
    MlKem {
        /// 512, 768 or 1024.
        level: u16,
        /// The public key.
        public: String,
    },
    /// Another algorithm.
    Other {
        /// Its dotted OID.
        oid: String,
    },
}

impl From<&KeyInfo> for KeyWire {
    fn from(k: &KeyInfo) -> Self {
        match k {
            KeyInfo::Rsa {
                modulus,
                exponent_bytes,
                ..
            } => Self::Rsa {
                modulus: hex::encode(modulus),
                exponent: hex::encode(exponent_bytes),
            },
            KeyInfo::Ec {
                curve,
                point,
                params,
            } => Self::Ec {
                curve: curve.clone(),
                point: hex::encode(point),
                params: params.as_ref().map(hex::encode),
            },
            KeyInfo::Ed25519 { public } => Self::Ed25519 {
                public: hex::encode(public),
            },
            KeyInfo::Ed448 { public } => Self::Ed448 {
                public: hex::encode(public),
            },
            KeyInfo::Dsa { p, q, g, y, .. } => Self::Dsa {
                p: hex::encode(p),
                q: hex::encode(q),
                g: hex::encode(g),
                y: hex::encode(y),
            },
            KeyInfo::X25519 { public } => Self::X25519 {
                public: hex::encode(public),
            },
            KeyInfo::X448 { public } => Self::X448 {
                public: hex::encode(public),
            },
            KeyInfo::MlDsa { level, public } => Self::MlDsa {
                level: *level,
                public: hex::encode(public),
            },
            KeyInfo::MlKem { level, public } => Self::MlKem {
                level: *level,
                public: hex::encode(public),
            },
            KeyInfo::Other { oid } => Self::Other { oid: oid.clone() },
        }
    }
}

impl TryFrom<KeyWire> for KeyInfo {
    type Error = String;

    fn try_from(w: KeyWire) -> Result<Self, String> {
        let bytes = |field: &str, s: &str| {
            hex::decode(s).map_err(|e| format!("key field `{field}`: not hex: {e}"))
        };
        Ok(match w {
            KeyWire::Rsa { modulus, exponent } => {
                Self::rsa(&bytes("modulus", &modulus)?, &bytes("exponent", &exponent)?)
            }
            KeyWire::Ec {
                curve,
                point,
                params,
            } => Self::Ec {
                curve,
                point: bytes("point", &point)?,
                params: params.map(|p| bytes("params", &p)).transpose()?,
            },
            KeyWire::Ed25519 { public } => Self::Ed25519 {
                public: bytes("public", &public)?,
            },
            KeyWire::Ed448 { public } => Self::Ed448 {
                public: bytes("public", &public)?,
            },
            KeyWire::Dsa { p, q, g, y } => Self::dsa(
                &bytes("p", &p)?,
                &bytes("q", &q)?,
                &bytes("g", &g)?,
                &bytes("y", &y)?,
            ),
            KeyWire::X25519 { public } => Self::X25519 {
                public: bytes("public", &public)?,
            },
            KeyWire::X448 { public } => Self::X448 {
                public: bytes("public", &public)?,
            },
            KeyWire::MlDsa { level, public } => Self::MlDsa {
                level,
                public: bytes("public", &public)?,
            },
            KeyWire::MlKem { level, public } => Self::MlKem {
                level,
                public: bytes("public", &public)?,
            },
            KeyWire::Other { oid } => Self::Other { oid },
        })
    }
}
