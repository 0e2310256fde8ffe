//! Short Weierstrass curves over prime fields (y² = x³ + ax + b mod p): the named curves
//! certresponder knows, explicit `ECParameters` (RFC 3279 §2.3.5, SEC 1 §C.2), SEC 1 point
//! decoding with decompression, and the scalar multiplication behind NIST SP 800-56A
//! §5.6.2.3.3 full public-key validation (n·Q = O).
//!
//! Everything here reads untrusted input: sizes are bounded, and no operation divides by or
//! reduces modulo a value that has not been checked to be a usable field prime.

use std::sync::LazyLock;

use certresponder_inventory::inspect::der;
use num_bigint::BigUint;

/// Largest field accepted for explicit curves, in bits. The named curves go up to 521;
/// anything past this is refused instead of spending time on arithmetic for it.
pub(super) const MAX_FIELD_BITS: u64 = 1024;

/// A curve over a prime field, with its base point and group order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Curve {
    /// Field prime.
    pub(super) p: BigUint,
    /// Coefficient a, reduced mod p.
    pub(super) a: BigUint,
    /// Coefficient b, reduced mod p.
    pub(super) b: BigUint,
    /// Base point.
    pub(super) g: (BigUint, BigUint),
    /// Order of the base point.
    pub(super) n: BigUint,
    /// Cofactor, when given.
    pub(super) h: Option<BigUint>,
}

/// A named curve: its canonical name, the names and OIDs it goes by, and its parameters.
pub(super) struct Named {
    pub(super) name: &'static str,
    aliases: &'static [&'static str],
    pub(super) curve: Curve,
}

struct HexCurve {
    name: &'static str,
    aliases: &'static [&'static str],
    p: &'static str,
    a: &'static str,
    b: &'static str,
    gx: &'static str,
    gy: &'static str,
    n: &'static str,
}

/// Parameters from SEC 2 v2 / FIPS 186-4 (cross-checked in the tests against OpenSSL's
/// explicit encodings). All have cofactor 1.
const HEX_CURVES: &[HexCurve] = &[
    HexCurve {
        name: "P-256",
        aliases: &["secp256r1", "prime256v1", "1.2.840.10045.3.1.7"],
        p: "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
        a: "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc",
        b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
        gx: "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
        gy: "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
        n: "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    },
    HexCurve {
        name: "P-384",
        aliases: &["secp384r1", "1.3.132.0.34"],
        p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe\
            ffffffff0000000000000000ffffffff",
        a: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe\
            ffffffff0000000000000000fffffffc",
        b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875a\
            c656398d8a2ed19d2a85c8edd3ec2aef",
        gx: "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a38\
            5502f25dbf55296c3a545e3872760ab7",
        gy: "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c0\
            0a60b1ce1d7e819d7a431d7c90ea0e5f",
        n: "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf\
            581a0db248b0a77aecec196accc52973",
    },
    HexCurve {
        name: "P-521",
        aliases: &["secp521r1", "1.3.132.0.35"],
        p: "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
            ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
            fff",
        a: "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
            ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
            ffc",
        b: "51953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109\
            e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f\
            00",
        gx: "c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3d\
            baa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd\
            66",
        gy: "11839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e6\
            62c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16\
            650",
        n: "1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
            ffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386\
            409",
    },
    HexCurve {
        name: "secp256k1",
        aliases: &["1.3.132.0.10"],
        p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f",
        a: "0",
        b: "7",
        gx: "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
        gy: "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8",
        n: "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
    },
    HexCurve {
        name: "P-224",
        aliases: &["secp224r1", "1.3.132.0.33"],
        p: "ffffffffffffffffffffffffffffffff000000000000000000000001",
        a: "fffffffffffffffffffffffffffffffefffffffffffffffffffffffe",
        b: "b4050a850c04b3abf54132565044b0b7d7bfd8ba270b39432355ffb4",
        gx: "b70e0cbd6bb4bf7f321390b94a03c1d356c21122343280d6115c1d21",
        gy: "bd376388b5f723fb4c22dfe6cd4375a05a07476444d5819985007e34",
        n: "ffffffffffffffffffffffffffff16a2e0b8f03e13dd29455c5c2a3d",
    },
    HexCurve {
        name: "P-192",
        aliases: &["secp192r1", "prime192v1", "1.2.840.10045.3.1.1"],
        p: "fffffffffffffffffffffffffffffffeffffffffffffffff",
        a: "fffffffffffffffffffffffffffffffefffffffffffffffc",
        b: "64210519e59c80e70fa7e9ab72243049feb8deecc146b9b1",
        gx: "188da80eb03090f67cbf20eb43a18800f4ff0afd82ff1012",
        gy: "7192b95ffc8da78631011ed6b24cdd573f977a11e794811",
        n: "ffffffffffffffffffffffff99def836146bc9b1b4d22831",
    },
];

fn from_hex(s: &str) -> Option<BigUint> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BigUint::parse_bytes(&digits, 16)
}

/// The named curves. A table entry that failed to parse would be missing here, which the
/// tests catch (they check every entry's base point and order).
pub(super) static NAMED: LazyLock<Vec<Named>> = LazyLock::new(|| {
    HEX_CURVES
        .iter()
        .filter_map(|c| {
            Some(Named {
                name: c.name,
                aliases: c.aliases,
                curve: Curve {
                    p: from_hex(c.p)?,
                    a: from_hex(c.a)?,
                    b: from_hex(c.b)?,
                    g: (from_hex(c.gx)?, from_hex(c.gy)?),
                    n: from_hex(c.n)?,
                    h: Some(BigUint::from(1u8)),
                },
            })
        })
        .collect()
});

/// Number of entries in the named-curve table.
#[cfg(test)]
pub(super) const NAMED_COUNT: usize = HEX_CURVES.len();

/// The named curve called `name` (its canonical name, an alias or its dotted OID; names
/// are compared case-insensitively).
pub(super) fn named(name: &str) -> Option<&'static Named> {
    NAMED.iter().find(|c| {
        c.name.eq_ignore_ascii_case(name) || c.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The canonical name of a curve name, alias or OID (`prime256v1` → `P-256`); unknown names
/// are returned as they are.
pub(super) fn canonical(name: &str) -> &str {
    named(name).map_or(name, |c| c.name)
}

/// The named curve with exactly these parameters (the cofactor, when given, must agree).
pub(super) fn identify(curve: &Curve) -> Option<&'static Named> {
    NAMED.iter().find(|c| {
        let k = &c.curve;
        k.p == curve.p
            && k.a == curve.a
            && k.b == curve.b
            && k.g == curve.g
            && k.n == curve.n
            && curve.h.as_ref().is_none_or(|h| Some(h) == k.h.as_ref())
    })
}

// ---------------------------------------------------------------------------------------
// Points

/// How a point was encoded (SEC 1 §2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// `04 X Y`.
    Uncompressed,
    /// `02 X` or `03 X`.
    Compressed,
}

/// Why a point is not a valid public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PointError {
    /// The point at infinity (a single zero byte, or all zeros).
    Identity,
    /// An empty encoding.
    Empty,
    /// A first byte other than 02, 03 or 04 (hybrid forms 06/07 included: RFC 5480 §2.2
    /// allows only the compressed and uncompressed forms).
    Prefix(u8),
    /// The wrong length for the curve and form.
    Length { expected: usize, got: usize },
    /// A coordinate not below the field prime.
    CoordinateTooLarge,
    /// y² ≠ x³ + ax + b (or, compressed, x³ + ax + b has no square root).
    NotOnCurve,
    /// n·Q ≠ O: the point is not in the subgroup generated by the base point.
    WrongOrder,
}

impl PointError {
    /// Short machine name, for evidence.
    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Empty => "empty",
            Self::Prefix(_) => "encoding",
            Self::Length { .. } => "length",
            Self::CoordinateTooLarge => "coordinate_out_of_range",
            Self::NotOnCurve => "not_on_curve",
            Self::WrongOrder => "wrong_order",
        }
    }

    /// One line for a person.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Identity => "the point is the point at infinity".into(),
            Self::Empty => "the point encoding is empty".into(),
            Self::Prefix(b) => format!("unknown point encoding prefix 0x{b:02x}"),
            Self::Length { expected, got } => {
                format!("the point is {got} bytes where the curve needs {expected}")
            }
            Self::CoordinateTooLarge => "a coordinate is not below the field prime".into(),
            Self::NotOnCurve => "the point is not on the curve".into(),
            Self::WrongOrder => "the point is not in the base point's subgroup (n·Q ≠ O)".into(),
        }
    }
}

impl Curve {
    /// Field element size in bytes.
    pub(super) fn field_len(&self) -> usize {
        usize::try_from(self.p.bits().div_ceil(8)).unwrap_or(usize::MAX)
    }

    /// x³ + ax + b mod p.
    fn rhs(&self, x: &BigUint) -> BigUint {
        let p = &self.p;
        (x * x % p * x + &self.a * x + &self.b) % p
    }

    /// Whether (x, y), both below p, satisfies the curve equation.
    pub(super) fn contains(&self, x: &BigUint, y: &BigUint) -> bool {
        y * y % &self.p == self.rhs(x)
    }

    /// Decodes and validates a SEC 1 point: not the identity, a known form, the right
    /// length, coordinates below p, on the curve. Compressed points are decompressed.
    pub(super) fn decode(&self, bytes: &[u8]) -> Result<((BigUint, BigUint), Form), PointError> {
        let (&prefix, body) = bytes.split_first().ok_or(PointError::Empty)?;
        if bytes.iter().all(|&b| b == 0) {
            return Err(PointError::Identity);
        }
        let len = self.field_len();
        let (form, expected) = match prefix {
            0x04 => (Form::Uncompressed, 2 * len),
            0x02 | 0x03 => (Form::Compressed, len),
            other => return Err(PointError::Prefix(other)),
        };
        if body.len() != expected {
            return Err(PointError::Length {
                expected: expected + 1,
                got: bytes.len(),
            });
        }
        let x = BigUint::from_bytes_be(&body[..len]);
        if x >= self.p {
            return Err(PointError::CoordinateTooLarge);
        }
        let y = match form {
            Form::Uncompressed => {
                let y = BigUint::from_bytes_be(&body[len..]);
                if y >= self.p {
                    return Err(PointError::CoordinateTooLarge);
                }
                if !self.contains(&x, &y) {
                    return Err(PointError::NotOnCurve);
                }
                y
            }
            Form::Compressed => {
                let y = sqrt_mod(&self.rhs(&x), &self.p).ok_or(PointError::NotOnCurve)?;
                if y.bit(0) == (prefix & 1 == 1) {
                    y
                } else if y == BigUint::ZERO {
                    // y = 0 has no odd twin.
                    return Err(PointError::NotOnCurve);
                } else {
                    &self.p - y
                }
            }
        };
        Ok(((x, y), form))
    }

    /// Whether n·Q is the point at infinity (SP 800-56A §5.6.2.3.3 step 4). Needed only
    /// when the cofactor is not 1: on a prime-order curve every finite point on the curve
    /// has order n.
    pub(super) fn has_order_n(&self, q: &(BigUint, BigUint)) -> bool {
        self.mul(&self.n, q).is_none()
    }

    /// k·Q in Jacobian coordinates; `None` is the point at infinity.
    fn mul(&self, k: &BigUint, q: &(BigUint, BigUint)) -> Option<Jacobian> {
        let mut acc: Option<Jacobian> = None;
        for i in (0..k.bits()).rev() {
            acc = acc.and_then(|a| self.double(&a));
            if k.bit(i) {
                acc = match acc {
                    None => Some(Jacobian {
                        x: q.0.clone(),
                        y: q.1.clone(),
                        z: BigUint::from(1u8),
                    }),
                    Some(a) => self.add_affine(&a, q),
                };
            }
        }
        acc
    }

    fn sub(&self, a: &BigUint, b: &BigUint) -> BigUint {
        // a, b < p, so a + p - b does not underflow.
        (a + &self.p - b) % &self.p
    }

    /// 2·P (the general-a doubling formula).
    fn double(&self, pt: &Jacobian) -> Option<Jacobian> {
        let p = &self.p;
        if pt.y == BigUint::ZERO {
            return None;
        }
        let y2 = &pt.y * &pt.y % p;
        let s = BigUint::from(4u8) * &pt.x % p * &y2 % p;
        let z2 = &pt.z * &pt.z % p;
        let m = (BigUint::from(3u8) * &pt.x % p * &pt.x + &self.a * (&z2 * &z2 % p)) % p;
        let two_s = (&s + &s) % p;
        let x3 = self.sub(&(&m * &m % p), &two_s);
        let y4_8 = BigUint::from(8u8) * (&y2 * &y2 % p) % p;
        let y3 = self.sub(&(&m * self.sub(&s, &x3) % p), &y4_8);
        let z3 = BigUint::from(2u8) * &pt.y % p * &pt.z % p;
        Some(Jacobian {
            x: x3,
            y: y3,
            z: z3,
        })
    }

    /// P + Q with Q affine (mixed addition).
    fn add_affine(&self, pt: &Jacobian, q: &(BigUint, BigUint)) -> Option<Jacobian> {
        let p = &self.p;
        let z2 = &pt.z * &pt.z % p;
        let u2 = &q.0 * &z2 % p;
        let s2 = &q.1 * (&z2 * &pt.z % p) % p;
        if u2 == pt.x {
            return if s2 == pt.y { self.double(pt) } else { None };
        }
        let h = self.sub(&u2, &pt.x);
        let r = self.sub(&s2, &pt.y);
        let h2 = &h * &h % p;
        let h3 = &h2 * &h % p;
        let u1h2 = &pt.x * &h2 % p;
        let x3 = self.sub(&self.sub(&(&r * &r % p), &h3), &((&u1h2 + &u1h2) % p));
        let y3 = self.sub(&(&r * self.sub(&u1h2, &x3) % p), &(&pt.y * &h3 % p));
        let z3 = &h * &pt.z % p;
        Some(Jacobian {
            x: x3,
            y: y3,
            z: z3,
        })
    }
}

struct Jacobian {
    x: BigUint,
    y: BigUint,
    z: BigUint,
}

/// Tonelli–Shanks costs about s² squarings where 2^s is the largest power of two dividing
/// p − 1. The named curves need at most 96 (P-224); a hostile prime with a larger s is not
/// worth minutes of arithmetic, so its compressed points are not decompressed.
const MAX_TWO_ADICITY: u64 = 128;

/// A square root of `c` modulo the odd prime `p` (Tonelli–Shanks, with the p ≡ 3 mod 4
/// shortcut), or `None` when there is none. Every loop is bounded by the size of p, and the
/// result is checked, so a composite "p" from hostile parameters gives `None`, not a hang.
pub(super) fn sqrt_mod(c: &BigUint, p: &BigUint) -> Option<BigUint> {
    let one = BigUint::from(1u8);
    if *p < BigUint::from(3u8) || !p.bit(0) {
        return None;
    }
    let c = c % p;
    if c == BigUint::ZERO {
        return Some(c);
    }
    let p_minus_1 = p - &one;
    let check = |r: BigUint| (&r * &r % p == c).then_some(r);
    if p.bit(1) {
        // p ≡ 3 mod 4.
        return check(c.modpow(&((p + &one) >> 2), p));
    }
    let s = p_minus_1.trailing_zeros()?;
    if s > MAX_TWO_ADICITY {
        return None;
    }
    let q = &p_minus_1 >> s;
    let half = &p_minus_1 >> 1;
    // The least quadratic non-residue of a prime is almost always tiny; the search is
    // bounded so that a hostile composite "p" stays cheap (a real prime whose least
    // non-residue is above 200 would just leave its compressed points undecoded).
    let z = (2u32..200)
        .map(BigUint::from)
        .find(|z| z.modpow(&half, p) == p_minus_1)?;
    let mut m = s;
    let mut cc = z.modpow(&q, p);
    let mut t = c.modpow(&q, p);
    let mut r = c.modpow(&((&q + &one) >> 1), p);
    while t != one {
        let mut i = 0u64;
        let mut t2 = t.clone();
        while t2 != one {
            t2 = &t2 * &t2 % p;
            i += 1;
            if i >= m {
                return None;
            }
        }
        let mut b = cc.clone();
        for _ in 0..(m - i - 1) {
            b = &b * &b % p;
        }
        m = i;
        cc = &b * &b % p;
        t = t * &cc % p;
        r = r * b % p;
    }
    check(r)
}

// ---------------------------------------------------------------------------------------
// Explicit parameters

/// id-prime-field, 1.2.840.10045.1.1.
const OID_PRIME_FIELD: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x01, 0x01];
/// id-characteristic-two-field, 1.2.840.10045.1.2.
const OID_CHAR2_FIELD: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x01, 0x02];

/// Why explicit parameters were not turned into a [`Curve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ExplicitError {
    /// Not valid `ECParameters` DER.
    Malformed(&'static str),
    /// A binary (characteristic-two) field, which certresponder does not evaluate.
    BinaryField,
    /// The field prime is too large, too small or even.
    BadPrime(String),
    /// The order is 0 or 1.
    BadOrder,
}

impl ExplicitError {
    /// One line for a person.
    pub(super) fn describe(&self) -> String {
        match self {
            Self::Malformed(why) => format!("explicit EC parameters are malformed: {why}"),
            Self::BinaryField => "explicit EC parameters over a binary field".into(),
            Self::BadPrime(why) => format!("explicit EC parameters: {why}"),
            Self::BadOrder => "explicit EC parameters: the order is 0 or 1".into(),
        }
    }
}

/// One DER element: tag and content (the inventory's DER reader).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), ExplicitError> {
    let (element, rest) = der::read_tlv(input).map_err(ExplicitError::Malformed)?;
    Ok((element.tag, element.content, rest))
}

fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), ExplicitError> {
    let (t, content, rest) = tlv(input)?;
    if t == tag {
        Ok((content, rest))
    } else {
        Err(ExplicitError::Malformed(what))
    }
}

fn unsigned(content: &[u8], what: &'static str) -> Result<BigUint, ExplicitError> {
    if content.first().is_some_and(|b| b & 0x80 != 0) || content.is_empty() {
        return Err(ExplicitError::Malformed(what));
    }
    Ok(BigUint::from_bytes_be(content))
}

/// Parses DER `ECParameters` (SEC 1 §C.2):
///
/// ```text
/// ECParameters ::= SEQUENCE { version INTEGER (1), fieldID SEQUENCE { fieldType OID,
///     prime INTEGER }, curve SEQUENCE { a OCTET STRING, b OCTET STRING, seed BIT STRING
///     OPTIONAL }, base OCTET STRING, order INTEGER, cofactor INTEGER OPTIONAL }
/// ```
///
/// Returns the curve and, when the base point is not a valid point of it (the parameters
/// are inconsistent, as when b was altered), why; the public key can still be tested
/// against the curve equation then.
pub(super) fn parse_explicit(der: &[u8]) -> Result<(Curve, Option<PointError>), ExplicitError> {
    use ExplicitError::Malformed as bad;
    let (body, _) = expect(der, 0x30, "not a SEQUENCE (a named curve or implicitCA?)")?;
    let (version, rest) = expect(body, 0x02, "version missing")?;
    if version != [1] {
        return Err(bad("version is not 1"));
    }
    let (field, rest) = expect(rest, 0x30, "fieldID missing")?;
    let (field_type, field_rest) = expect(field, 0x06, "field type missing")?;
    if field_type == OID_CHAR2_FIELD {
        return Err(ExplicitError::BinaryField);
    }
    if field_type != OID_PRIME_FIELD {
        return Err(bad("unknown field type"));
    }
    let (prime, _) = expect(field_rest, 0x02, "prime missing")?;
    let p = unsigned(prime, "prime is negative or empty")?;
    if p.bits() > MAX_FIELD_BITS {
        return Err(ExplicitError::BadPrime(format!(
            "the field prime has {} bits; at most {MAX_FIELD_BITS} are evaluated",
            p.bits()
        )));
    }
    if p < BigUint::from(5u8) || !p.bit(0) {
        return Err(ExplicitError::BadPrime(
            "the field prime is even or below 5".into(),
        ));
    }
    let (curve, rest) = expect(rest, 0x30, "curve missing")?;
    let (a, curve_rest) = expect(curve, 0x04, "a missing")?;
    let (b, _) = expect(curve_rest, 0x04, "b missing")?;
    let (base, rest) = expect(rest, 0x04, "base point missing")?;
    let (order, rest) = expect(rest, 0x02, "order missing")?;
    let n = unsigned(order, "order is negative or empty")?;
    if n <= BigUint::from(1u8) {
        return Err(ExplicitError::BadOrder);
    }
    if n.bits() > MAX_FIELD_BITS + 1 {
        return Err(bad("order too large"));
    }
    let h = match rest.first() {
        Some(_) => {
            let (cofactor, _) = expect(rest, 0x02, "cofactor is not an INTEGER")?;
            Some(unsigned(cofactor, "cofactor is negative or empty")?)
        }
        None => None,
    };
    let a = BigUint::from_bytes_be(a) % &p;
    let b = BigUint::from_bytes_be(b) % &p;
    let mut curve = Curve {
        p,
        a,
        b,
        g: (BigUint::ZERO, BigUint::ZERO),
        n,
        h,
    };
    match curve.decode(base) {
        Ok((g, _)) => {
            curve.g = g;
            Ok((curve, None))
        }
        Err(e) => Ok((curve, Some(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_consistent() {
        assert_eq!(NAMED.len(), NAMED_COUNT, "a named curve failed to parse");
        for c in NAMED.iter() {
            let k = &c.curve;
            assert!(k.contains(&k.g.0, &k.g.1), "{}: G on curve", c.name);
            assert!(k.has_order_n(&k.g), "{}: n·G = O", c.name);
            let doubled = k.mul(&BigUint::from(2u8), &k.g);
            assert!(doubled.is_some(), "{}: 2·G ≠ O", c.name);
        }
    }

    #[test]
    fn names_and_aliases() {
        assert_eq!(canonical("prime256v1"), "P-256");
        assert_eq!(canonical("p-384"), "P-384");
        assert_eq!(canonical("1.3.132.0.35"), "P-521");
        assert_eq!(canonical("brainpoolP256r1"), "brainpoolP256r1");
    }

    #[test]
    fn sqrt_both_branches() {
        // P-224's prime is 1 mod 4 (Tonelli–Shanks); P-256's is 3 mod 4.
        for name in ["P-224", "P-256"] {
            let k = &named(name).unwrap().curve;
            let y = &k.g.1;
            let r = sqrt_mod(&(y * y % &k.p), &k.p).unwrap();
            assert!(r == *y || r == &k.p - y, "{name}");
        }
        let p = BigUint::from(13u8);
        // Non-residues mod 13: 2, 5, 6, 7, 8, 11.
        assert!(sqrt_mod(&BigUint::from(5u8), &p).is_none());
        assert!(sqrt_mod(&BigUint::from(2u8), &BigUint::from(15u8)).is_none());
        // A "prime" with 2-adicity 1000 is refused at once rather than worked through.
        let hostile = (BigUint::from(3u8) << 1000u32) + 1u8;
        assert!(sqrt_mod(&BigUint::from(5u8), &hostile).is_none());
    }

    #[test]
    fn hostile_explicit_parameters_are_refused() {
        for der in [
            &[][..],
            &[0x30, 0x00],
            &[0x30, 0x03, 0x02, 0x01, 0x02],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x06, 0x03, 0x2b, 0x65, 0x70],
        ] {
            assert!(parse_explicit(der).is_err(), "{der:02x?}");
        }
    }
}
