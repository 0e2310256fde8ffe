//! Issuer configuration: the `[[issuer]]` tables of the responder's configuration file. Each
//! has an `id` (what inventory entries name) and a `type`; the other fields depend on the type.
//!
//! ```toml
//! [[issuer]]
//! id = "internal"
//! type = "internal-ca"
//! dir = "/var/lib/certresponder/ca"     # CA key (0600) and certificate
//! common_name = "Example internal CA"
//! validity_days = 90                     # default profile
//! profiles = { shortlived = 7 }          # named profiles, in days
//! crl_path = "/var/www/crl/internal.crl" # DER; PEM beside it with .pem (default: dir/crl.der)
//! crl_validity_hours = 168
//! crl_url = "http://crl.example.com/internal.crl"   # written into issued certificates
//! allowed_names = ["example.com", ".internal"]      # ".x" = the subtree; empty: any name
//!
//! [[issuer]]
//! id = "letsencrypt"
//! type = "acme"
//! directory = "https://acme-v02.api.letsencrypt.org/directory"
//! contact = ["mailto:pki@example.com"]
//! account_file = "/var/lib/certresponder/acme-letsencrypt.json"   # written 0600
//! trust_root = "/etc/certresponder/acme-ca.pem"  # only for a private ACME server
//! challenge = "http-01"                  # or "dns-01"
//! http01_listen = "0.0.0.0:80"           # built-in responder; or http01_webroot = "/var/www"
//! dns01_hook = "/usr/local/bin/dns-hook" # dns-01: called with set|clear NAME VALUE
//! eab_kid = "kid-1"                      # external account binding, when the CA needs it
//! eab_hmac_key_file = "/etc/certresponder/eab.key"   # base64url HMAC key
//! profile = "tlsserver"                  # ACME profile, when the CA offers profiles
//! timeout_secs = 300                     # one call (an order, a revocation) at most
//! connect_timeout_secs = 10              # TCP connect and TLS handshake at most
//!
//! [[issuer]]
//! id = "corp-ca"
//! type = "command"
//! command = ["/usr/local/bin/corp-ca-adapter", "--env", "prod"]
//! timeout_secs = 60
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certresponder_inventory::did_you_mean;
use toml::{Table, Value};

/// A configuration problem in one `[[issuer]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field, relative to the issuer table.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// One configured issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerSpec {
    /// The id inventory entries refer to.
    pub id: String,
    /// Type-specific settings.
    pub kind: IssuerKind,
}

impl IssuerSpec {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            IssuerKind::InternalCa(_) => "internal-ca",
            IssuerKind::Acme(_) => "acme",
            IssuerKind::Command(_) => "command",
        }
    }
}

/// Settings by issuer type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssuerKind {
    /// The built-in CA.
    InternalCa(InternalCaConfig),
    /// An ACME server.
    Acme(AcmeConfig),
    /// A CA team's executable.
    Command(CommandConfig),
}

/// The internal CA's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalCaConfig {
    /// Directory of the CA key (0600) and certificate.
    pub dir: PathBuf,
    /// Common name of the CA certificate created on first use.
    pub common_name: String,
    /// Validity of certificates issued without a profile, in days.
    pub validity_days: u32,
    /// Named validity profiles, in days.
    pub profiles: BTreeMap<String, u32>,
    /// Where the DER CRL is published; the PEM goes beside it with a `.pem` extension.
    pub crl_path: PathBuf,
    /// How long each CRL is valid (nextUpdate - thisUpdate).
    pub crl_validity: Duration,
    /// URL written into issued certificates as their CRL distribution point.
    pub crl_url: Option<String>,
    /// Names the CA may issue for: `name` exactly or `.suffix` for a subtree. Empty: any.
    pub allowed_names: Vec<String>,
}

/// How an ACME order proves control of its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP-01 through the built-in responder listening on an address.
    Http01Listen(SocketAddr),
    /// HTTP-01 by writing files under a web root (`.well-known/acme-challenge/`).
    Http01Webroot(PathBuf),
    /// DNS-01 through a hook command: `HOOK set|clear NAME VALUE`.
    Dns01Hook(PathBuf),
}

/// An ACME issuer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The directory URL.
    pub directory: String,
    /// Account contacts (`mailto:`).
    pub contact: Vec<String>,
    /// Where the account credentials are kept (0600). Default: in the issuer storage.
    pub account_file: Option<PathBuf>,
    /// A PEM CA bundle to trust for the ACME server's TLS, instead of the system roots.
    pub trust_root: Option<PathBuf>,
    /// The challenge to answer.
    pub challenge: Challenge,
    /// External account binding: key id and the file holding the base64url HMAC key.
    pub eab: Option<(String, PathBuf)>,
    /// ACME profile to request.
    pub profile: Option<String>,
    /// Overall limit for one call (an order from start to certificate, a revocation, a
    /// status or renewal-information query), and for each HTTP exchange within it.
    pub timeout: Duration,
    /// Limit for connecting to the server: TCP and the TLS handshake.
    pub connect_timeout: Duration,
}

/// A command issuer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandConfig {
    /// The program and its arguments.
    pub command: Vec<String>,
    /// Limit for one request.
    pub timeout: Duration,
}

const COMMON: &[&str] = &["id", "type"];
const INTERNAL: &[&str] = &[
    "dir",
    "common_name",
    "validity_days",
    "profiles",
    "crl_path",
    "crl_validity_hours",
    "crl_url",
    "allowed_names",
];
const ACME: &[&str] = &[
    "directory",
    "contact",
    "account_file",
    "trust_root",
    "challenge",
    "http01_listen",
    "http01_webroot",
    "dns01_hook",
    "eab_kid",
    "eab_hmac_key_file",
    "profile",
    "timeout_secs",
    "connect_timeout_secs",
];
const COMMAND: &[&str] = &["command", "timeout_secs"];
/// The issuer types.
pub const TYPES: &[&str] = &["internal-ca", "acme", "command"];

struct Fields<'a> {
    t: &'a Table,
    base: &'a Path,
}

fn err(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_string(),
        message: message.into(),
    }
}

impl Fields<'_> {
    fn string(&self, f: &str) -> Result<Option<String>, FieldError> {
        match self.t.get(f) {
            None => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(other) => Err(err(f, format!("must be a non-empty string, found {other}"))),
        }
    }

    fn required(&self, f: &str) -> Result<String, FieldError> {
        self.string(f)?
            .ok_or_else(|| err(f, "required field is missing"))
    }

    fn path(&self, f: &str) -> Result<Option<PathBuf>, FieldError> {
        Ok(self.string(f)?.map(|s| {
            let p = PathBuf::from(s);
            if p.is_absolute() {
                p
            } else {
                self.base.join(p)
            }
        }))
    }

    fn int(&self, f: &str, min: i64, max: i64, default: i64) -> Result<i64, FieldError> {
        match self.t.get(f) {
            None => Ok(default),
            Some(Value::Integer(n)) if (min..=max).contains(n) => Ok(*n),
            Some(other) => Err(err(
                f,
                format!("must be a whole number from {min} to {max}, found {other}"),
            )),
        }
    }

    fn strings(&self, f: &str) -> Result<Vec<String>, FieldError> {
        match self.t.get(f) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) if !s.is_empty() => Ok(s.clone()),
                    other => Err(err(
                        &format!("{f}[{i}]"),
                        format!("must be a non-empty string, found {other}"),
                    )),
                })
                .collect(),
            Some(other) => Err(err(
                f,
                format!("must be an array of strings, found {other}"),
            )),
        }
    }
}

/// Parses one `[[issuer]]` table; relative paths are resolved against `base`.
pub fn parse_issuer(t: &Table, base: &Path) -> Result<IssuerSpec, FieldError> {
    let f = Fields { t, base };
    let id = f.required("id")?;
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(err(
            "id",
            format!("`{id}` may hold only letters, digits, '-', '_' and '.'"),
        ));
    }
    let ty = f.required("type")?;
    let specific: &[&str] = match ty.as_str() {
        "internal-ca" => INTERNAL,
        "acme" => ACME,
        "command" => COMMAND,
        other => {
            let hint = did_you_mean(other, TYPES)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(err(
                "type",
                format!("`{other}` is not one of {}{hint}", TYPES.join(", ")),
            ));
        }
    };
    for key in t.keys() {
        if !COMMON.contains(&key.as_str()) && !specific.contains(&key.as_str()) {
            let known: Vec<&str> = COMMON.iter().chain(specific).copied().collect();
            let hint = did_you_mean(key, &known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!(" for a `{ty}` issuer (known: {})", known.join(", ")));
            return Err(err(key, format!("unknown field{hint}")));
        }
    }
    let kind = match ty.as_str() {
        "internal-ca" => IssuerKind::InternalCa(internal(&f)?),
        "acme" => IssuerKind::Acme(acme(&f)?),
        _ => IssuerKind::Command(command(&f)?),
    };
    Ok(IssuerSpec { id, kind })
}

fn internal(f: &Fields<'_>) -> Result<InternalCaConfig, FieldError> {
    let dir = f.path("dir")?.ok_or_else(|| {
        err(
            "dir",
            "required: the directory of the CA key and certificate",
        )
    })?;
    let mut profiles = BTreeMap::new();
    match f.t.get("profiles") {
        None => {}
        Some(Value::Table(p)) => {
            for (name, v) in p {
                match v {
                    Value::Integer(d) if (1..=3650).contains(d) => {
                        profiles.insert(name.clone(), u32::try_from(*d).unwrap_or(90));
                    }
                    other => {
                        return Err(err(
                            &format!("profiles.{name}"),
                            format!("must be a number of days from 1 to 3650, found {other}"),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(err(
                "profiles",
                format!("must be a table of name = days, found {other}"),
            ));
        }
    }
    let allowed_names = f.strings("allowed_names")?;
    Ok(InternalCaConfig {
        crl_path: f.path("crl_path")?.unwrap_or_else(|| dir.join("crl.der")),
        dir,
        common_name: f
            .string("common_name")?
            .unwrap_or_else(|| "certresponder internal CA".into()),
        validity_days: u32::try_from(f.int("validity_days", 1, 3650, 90)?).unwrap_or(90),
        profiles,
        crl_validity: Duration::from_secs(
            u64::try_from(f.int("crl_validity_hours", 1, 24 * 365, 168)?).unwrap_or(168) * 3600,
        ),
        crl_url: f.string("crl_url")?,
        allowed_names: allowed_names
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect(),
    })
}

fn acme(f: &Fields<'_>) -> Result<AcmeConfig, FieldError> {
    let directory = f.required("directory")?;
    if !directory.starts_with("https://") && !directory.starts_with("http://") {
        return Err(err(
            "directory",
            format!("`{directory}` is not an http(s) URL"),
        ));
    }
    let challenge_name = f.string("challenge")?.unwrap_or_else(|| "http-01".into());
    let challenge = match challenge_name.as_str() {
        "http-01" => match (f.string("http01_listen")?, f.path("http01_webroot")?) {
            (Some(addr), None) => Challenge::Http01Listen(addr.parse().map_err(|_| {
                err(
                    "http01_listen",
                    format!("`{addr}` is not an address such as 0.0.0.0:80"),
                )
            })?),
            (None, Some(root)) => Challenge::Http01Webroot(root),
            (None, None) => Challenge::Http01Listen(SocketAddr::from(([0, 0, 0, 0], 80))),
            (Some(_), Some(_)) => {
                return Err(err(
                    "http01_webroot",
                    "give either http01_listen or http01_webroot, not both",
                ));
            }
        },
        "dns-01" => Challenge::Dns01Hook(
            f.path("dns01_hook")?
                .ok_or_else(|| err("dns01_hook", "dns-01 needs a hook command"))?,
        ),
        other => {
            return Err(err(
                "challenge",
                format!("`{other}` is not one of http-01, dns-01"),
            ));
        }
    };
    let eab = match (f.string("eab_kid")?, f.path("eab_hmac_key_file")?) {
        (Some(k), Some(p)) => Some((k, p)),
        (None, None) => None,
        (Some(_), None) => return Err(err("eab_hmac_key_file", "eab_kid needs eab_hmac_key_file")),
        (None, Some(_)) => return Err(err("eab_kid", "eab_hmac_key_file needs eab_kid")),
    };
    Ok(AcmeConfig {
        directory,
        contact: f.strings("contact")?,
        account_file: f.path("account_file")?,
        trust_root: f.path("trust_root")?,
        challenge,
        eab,
        profile: f.string("profile")?,
        timeout: Duration::from_secs(
            u64::try_from(f.int("timeout_secs", 5, 3600, 300)?).unwrap_or(300),
        ),
        connect_timeout: Duration::from_secs(
            u64::try_from(f.int("connect_timeout_secs", 1, 300, 10)?).unwrap_or(10),
        ),
    })
}

fn command(f: &Fields<'_>) -> Result<CommandConfig, FieldError> {
    let command = f.strings("command")?;
    if command.is_empty() {
        return Err(err(
            "command",
            "required: the program and its arguments, as [\"/path/to/adapter\", \"arg\"]",
        ));
    }
    Ok(CommandConfig {
        command,
        timeout: Duration::from_secs(
            u64::try_from(f.int("timeout_secs", 1, 3600, 60)?).unwrap_or(60),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<IssuerSpec, FieldError> {
        parse_issuer(&toml::from_str(s).unwrap(), Path::new("/etc/cr"))
    }

    #[test]
    fn each_type_parses_with_defaults() {
        let i = parse("id = \"i\"\ntype = \"internal-ca\"\ndir = \"ca\"\n").unwrap();
        let IssuerKind::InternalCa(c) = i.kind else {
            panic!()
        };
        assert_eq!(c.dir, PathBuf::from("/etc/cr/ca"));
        assert_eq!(c.crl_path, PathBuf::from("/etc/cr/ca/crl.der"));
        assert_eq!(c.validity_days, 90);
        let a = parse("id = \"a\"\ntype = \"acme\"\ndirectory = \"https://x/dir\"\nhttp01_listen = \"127.0.0.1:5002\"\n").unwrap();
        let IssuerKind::Acme(c) = a.kind else {
            panic!()
        };
        assert_eq!(
            c.challenge,
            Challenge::Http01Listen("127.0.0.1:5002".parse().unwrap())
        );
        let c = parse("id = \"c\"\ntype = \"command\"\ncommand = [\"/bin/x\"]\n").unwrap();
        assert_eq!(c.type_name(), "command");
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(
            "id = \"a\"\ntype = \"acme\"\ndirectory = \"https://x\"\nchalenge = \"dns-01\"\n",
        )
        .unwrap_err();
        assert_eq!(e.field, "chalenge");
        assert!(
            e.message.contains("did you mean `challenge`"),
            "{}",
            e.message
        );
        let e = parse("id = \"a\"\ntype = \"command\"\n").unwrap_err();
        assert_eq!(e.field, "command");
        let e =
            parse("id = \"a\"\ntype = \"internal-ca\"\ndir = \"x\"\nprofiles = { short = 0 }\n")
                .unwrap_err();
        assert_eq!(e.field, "profiles.short");
    }
}
