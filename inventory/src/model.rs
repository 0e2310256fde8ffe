//! The inventory model: what a managed certificate is, as written in inventory files.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The inventory name of a managed certificate: `[a-z0-9][a-z0-9._-]*`, at most 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertId(String);

impl CertId {
    /// Checks and wraps a name.
    pub fn new(name: &str) -> Result<Self, String> {
        let mut chars = name.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
        if !first_ok || !rest_ok {
            return Err(format!(
                "`{name}` is not a valid name: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"
            ));
        }
        if name.len() > 64 {
            return Err(format!("`{name}` is longer than 64 characters"));
        }
        Ok(Self(name.to_string()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CertId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s)
    }
}

impl From<CertId> for String {
    fn from(c: CertId) -> Self {
        c.0
    }
}

impl fmt::Display for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! name_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every accepted spelling, for error messages and hints.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The inventory spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            /// Parses the inventory spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

name_enum! {
    /// What identity the certificate gives its holder; decides key usages and EKUs.
    CertKind {
        /// A TLS server (serverAuth).
        TlsServer => "tls-server",
        /// A TLS client (clientAuth).
        TlsClient => "tls-client",
        /// Both ends of mutual TLS (serverAuth and clientAuth).
        TlsMutual => "tls-mutual",
        /// A workload or service account authenticating with a client certificate.
        ServiceAccount => "service-account",
        /// An agent (automation, CI runner, bot) authenticating with a client certificate.
        Agent => "agent",
        /// Code or artefact signing.
        CodeSigning => "code-signing",
    }
}

name_enum! {
    /// Whether the certificate chains to a publicly trusted CA.
    Trust {
        /// Publicly trusted: the Baseline Requirements' certificate rules and CT apply.
        Public => "public",
        /// Internal PKI.
        Private => "private",
    }
}

name_enum! {
    /// How much a certificate matters when many must be replaced at once: mass replacements
    /// (a distrusted CA) run the earliest deadlines first and, among equal deadlines, the
    /// most critical certificates first.
    #[derive(Default)]
    Priority {
        /// Outages here stop the business: replaced first.
        Critical => "critical",
        /// Replaced before the ordinary ones.
        High => "high",
        /// The default.
        #[default]
        Normal => "normal",
        /// Replaced last.
        Low => "low",
    }
}

impl Priority {
    /// Sort rank: 0 for critical, up to 3 for low.
    pub fn rank(self) -> u8 {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Normal => 2,
            Self::Low => 3,
        }
    }
}

name_enum! {
    /// The key a reissue generates.
    KeyProfile {
        /// ECDSA on P-256.
        EcdsaP256 => "ecdsa-p256",
        /// ECDSA on P-384.
        EcdsaP384 => "ecdsa-p384",
        /// RSA, 2048-bit modulus.
        Rsa2048 => "rsa-2048",
        /// RSA, 3072-bit modulus.
        Rsa3072 => "rsa-3072",
        /// RSA, 4096-bit modulus.
        Rsa4096 => "rsa-4096",
        /// Ed25519.
        Ed25519 => "ed25519",
    }
}

/// When a certificate counts as expiring: within a fraction of its lifetime of the end, or
/// within a fixed time of it. Written `last-third` (the default), `1/4`, `0.25`, `30d`, `12h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ExpiryThreshold {
    /// The last part of the lifetime, in thousandths (333 for the last third).
    LifetimePermille(u16),
    /// A fixed time before notAfter, in seconds.
    Before(u64),
}

impl Default for ExpiryThreshold {
    fn default() -> Self {
        Self::LifetimePermille(333)
    }
}

impl ExpiryThreshold {
    /// Parses the written form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || {
            format!(
                "`{s}` is not an expiry threshold: use a fraction of the lifetime (`last-third`, `1/4`, `0.25`) or a time before expiry (`30d`, `12h`)"
            )
        };
        if t == "last-third" {
            return Ok(Self::default());
        }
        let fraction = if let Some((a, b)) = t.split_once('/') {
            let (a, b) = (
                a.trim().parse::<f64>().map_err(|_| bad())?,
                b.trim().parse::<f64>().map_err(|_| bad())?,
            );
            Some(a / b)
        } else if t.contains('.') {
            Some(t.parse::<f64>().map_err(|_| bad())?)
        } else {
            None
        };
        if let Some(f) = fraction {
            if !(f > 0.0 && f <= 1.0) {
                return Err(format!(
                    "`{s}`: the fraction of the lifetime must be above 0 and at most 1"
                ));
            }
            // Proven in range: 0 < f <= 1, so the product fits in u16.
            return Ok(Self::LifetimePermille(((f * 1000.0).round() as u16).max(1)));
        }
        let (num, unit) = t.split_at(t.len().saturating_sub(1));
        let n: u64 = num.parse().map_err(|_| bad())?;
        let secs = match unit {
            "d" => n.checked_mul(86_400),
            "h" => n.checked_mul(3_600),
            _ => None,
        }
        .ok_or_else(bad)?;
        if secs == 0 {
            return Err(format!("`{s}`: the time before expiry must be above zero"));
        }
        Ok(Self::Before(secs))
    }
}

impl TryFrom<String> for ExpiryThreshold {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<ExpiryThreshold> for String {
    fn from(e: ExpiryThreshold) -> Self {
        e.to_string()
    }
}

impl fmt::Display for ExpiryThreshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LifetimePermille(333) => f.write_str("last-third"),
            Self::LifetimePermille(p) => write!(f, "{}", f64::from(*p) / 1000.0),
            Self::Before(s) if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            Self::Before(s) => write!(f, "{}h", s.div_ceil(3_600)),
        }
    }
}

/// Where a certificate's files live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paths {
    /// The leaf certificate (it may also carry the chain after the leaf).
    pub cert: PathBuf,
    /// The private key.
    pub key: Option<PathBuf>,
    /// The intermediate chain, without the leaf.
    pub chain: Option<PathBuf>,
    /// Leaf followed by the chain.
    pub fullchain: Option<PathBuf>,
    /// One PEM file holding the leaf, the chain and the key (as HAProxy reads it).
    #[serde(default)]
    pub combined: Option<PathBuf>,
    /// A PKCS#12 file holding the key, the leaf and the chain.
    #[serde(default)]
    pub pkcs12: Option<PathBuf>,
    /// A file whose first line is the PKCS#12 password; without it the password is empty.
    #[serde(default)]
    pub pkcs12_password_file: Option<PathBuf>,
}

/// A TLS endpoint that serves the certificate, checked after a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyEndpoint {
    /// `host:port` (IPv6 as `[::1]:443`).
    pub address: String,
    /// Server name to send; when absent, none is sent.
    pub sni: Option<String>,
}

/// One managed certificate, as registered from an inventory file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedCert {
    /// Inventory name.
    pub name: CertId,
    /// Who answers for it (a team, a mailbox); required.
    pub owner: String,
    /// Free-form tags that policies match on.
    pub tags: Vec<String>,
    /// Identity kind.
    pub kind: CertKind,
    /// Public or private trust.
    pub trust: Trust,
    /// Id of the issuer (from the config's `[[issuer]]` list) that reissues it.
    pub issuer: Option<String>,
    /// Id of the issuer that replaces the certificate when its CA is distrusted (`distrust`,
    /// `[[distrust]]`): a different CA from the one `issuer` orders from.
    #[serde(default)]
    pub fallback_issuer: Option<String>,
    /// How much it matters in a mass replacement (default `normal`).
    #[serde(default)]
    pub priority: Priority,
    /// Key to generate on reissue; when absent, the current key's type is kept.
    pub key_profile: Option<KeyProfile>,
    /// File locations.
    pub paths: Paths,
    /// Shell command that makes the service pick up a new bundle.
    pub reload: Option<String>,
    /// Shell command run after the files are written, for locations certresponder cannot
    /// write itself (a load balancer API, a secret store). It gets the bundle's paths in the
    /// environment (see `respond::deploy`).
    #[serde(default)]
    pub deploy_hook: Option<String>,
    /// Whether a location that is a symbolic link (a certbot-style `live/` tree) is followed:
    /// the file it points to is replaced, in its own directory. Otherwise a link where a
    /// file goes is refused.
    pub follow_symlinks: bool,
    /// Endpoints to verify after deployment.
    pub verify: Vec<VerifyEndpoint>,
    /// When this certificate counts as expiring; the configuration's threshold when absent.
    #[serde(default)]
    pub expiring: Option<ExpiryThreshold>,
    /// The inventory file this entry comes from.
    pub source: PathBuf,
}

impl Paths {
    /// Only the certificate file: no key, chain or other location.
    pub fn cert_only(cert: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: None,
            chain: None,
            fullchain: None,
            combined: None,
            pkcs12: None,
            pkcs12_password_file: None,
        }
    }
}

impl ManagedCert {
    /// An entry described by a program rather than an inventory file: `name`, owned by
    /// `owner`, at `paths`, said to come from `source`; a private TLS server certificate
    /// with no tags, issuer, key profile, reload, hook, endpoints or expiry threshold of its
    /// own. Set the rest with struct update syntax.
    pub fn new(
        name: CertId,
        owner: impl Into<String>,
        paths: Paths,
        source: impl Into<PathBuf>,
    ) -> Self {
        Self {
            name,
            owner: owner.into(),
            tags: Vec::new(),
            kind: CertKind::TlsServer,
            trust: Trust::Private,
            issuer: None,
            fallback_issuer: None,
            priority: Priority::default(),
            key_profile: None,
            paths,
            reload: None,
            deploy_hook: None,
            follow_symlinks: false,
            verify: Vec::new(),
            expiring: None,
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(CertId::new("web-01.prod_a").is_ok());
        assert!(CertId::new("Web").is_err());
        assert!(CertId::new("-web").is_err());
        assert!(CertId::new("").is_err());
        assert!(CertId::new(&"a".repeat(65)).is_err());
        assert_eq!(KeyProfile::parse("rsa-3072"), Some(KeyProfile::Rsa3072));
        assert_eq!(Trust::Public.as_str(), "public");
        assert_eq!(
            ExpiryThreshold::parse("last-third"),
            Ok(ExpiryThreshold::LifetimePermille(333))
        );
        assert_eq!(
            ExpiryThreshold::parse("1/4"),
            Ok(ExpiryThreshold::LifetimePermille(250))
        );
        assert_eq!(
            ExpiryThreshold::parse("0.5"),
            Ok(ExpiryThreshold::LifetimePermille(500))
        );
        assert_eq!(
            ExpiryThreshold::parse("30d"),
            Ok(ExpiryThreshold::Before(30 * 86_400))
        );
        assert_eq!(
            ExpiryThreshold::parse("12h"),
            Ok(ExpiryThreshold::Before(43_200))
        );
        for bad in ["", "0", "0d", "2/1", "soon", "-3d", "1.5"] {
            assert!(ExpiryThreshold::parse(bad).is_err(), "{bad}");
        }
    }
}
