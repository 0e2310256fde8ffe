//! Loading and validating inventory files.
//!
//! An inventory file is TOML with one or more `[[cert]]` tables. Every problem is reported
//! with the file, the entry and the field; all problems are collected, not just the first,
//! and valid entries are still returned beside the errors so that one bad entry does not
//! hide the rest of an inventory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::{InventoryError, Location};
use crate::inspect::{self, CertInfo};
use crate::model::{
    CertId, CertKind, KeyProfile, ManagedCert, Paths, Priority, Trust, VerifyEndpoint,
};
use crate::suggest::did_you_mean;

/// Fields of a `[[cert]]` entry.
pub const ENTRY_FIELDS: &[&str] = &[
    "name",
    "owner",
    "tags",
    "kind",
    "trust",
    "issuer",
    "fallback_issuer",
    "priority",
    "key_profile",
    "cert",
    "key",
    "chain",
    "fullchain",
    "combined",
    "pkcs12",
    "pkcs12_password_file",
    "reload",
    "deploy_hook",
    "verify",
    "expiring",
    "follow_symlinks",
];
const VERIFY_FIELDS: &[&str] = &["address", "sni"];
const TOP_LEVEL: &[&str] = &["cert"];

/// What validation checks beyond the file's own structure.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Read the certificate, key and chain files and check that they parse and match.
    pub check_files: bool,
    /// The issuer ids the configuration declares; `None` skips the issuer check.
    pub known_issuers: Option<Vec<String>>,
}

/// The outcome of loading one or more inventory files.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Valid entries, in file order.
    pub entries: Vec<ManagedCert>,
    /// Every problem found.
    pub errors: Vec<InventoryError>,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// Files that could not be read or parsed at all: their entries are unknown, not absent.
    pub failed_files: Vec<PathBuf>,
}

impl LoadReport {
    /// Whether no problem was found.
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The `*.toml` files of an inventory directory, sorted; hidden files are skipped.
pub fn inventory_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every inventory file in `dir`.
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> LoadReport {
    match inventory_files(dir) {
        Ok(files) => load_files(&files, opts),
        Err(e) => LoadReport {
            errors: vec![InventoryError::Read {
                at: Location::file(dir),
                reason: e.to_string(),
            }],
            failed_files: vec![dir.to_path_buf()],
            ..LoadReport::default()
        },
    }
}

/// Loads the given files as one inventory (names must be unique across all of them).
pub fn load_files(files: &[PathBuf], opts: &LoadOptions) -> LoadReport {
    let mut report = LoadReport::default();
    let mut seen: HashMap<CertId, PathBuf> = HashMap::new();
    for file in files {
        report.files.push(file.clone());
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                report.errors.push(InventoryError::Read {
                    at: Location::file(file),
                    reason: e.to_string(),
                });
                report.failed_files.push(file.clone());
                continue;
            }
        };
        let (entries, errors, parsed) = parse_file(file, &text, opts);
        if !parsed {
            report.failed_files.push(file.clone());
        }
        report.errors.extend(errors);
        for (entry, at) in entries {
            if let Some(first) = seen.get(&entry.name) {
                report.errors.push(InventoryError::DuplicateName {
                    at: at.field("name"),
                    name: entry.name.to_string(),
                    first: first.clone(),
                });
                continue;
            }
            seen.insert(entry.name.clone(), file.clone());
            report.entries.push(entry);
        }
    }
    report
}

/// Parses one inventory file's text. Returns the valid entries with their locations, the
/// errors, and whether the file parsed as TOML at all.
pub fn parse_file(
    file: &Path,
    text: &str,
    opts: &LoadOptions,
) -> (Vec<(ManagedCert, Location)>, Vec<InventoryError>, bool) {
    let mut errors = Vec::new();
    let table: Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            errors.push(InventoryError::Syntax {
                at: Location::file(file),
                reason: e.to_string().trim().replace('\n', " "),
            });
            return (Vec::new(), errors, false);
        }
    };
    for key in table.keys() {
        if !TOP_LEVEL.contains(&key.as_str()) {
            errors.push(unknown(Location::file(file).field(key), key, TOP_LEVEL));
        }
    }
    let Some(certs) = table.get("cert") else {
        errors.push(InventoryError::MissingField {
            at: Location::file(file).field("[[cert]]"),
        });
        return (Vec::new(), errors, true);
    };
    let Some(certs) = certs.as_array() else {
        errors.push(InventoryError::InvalidValue {
            at: Location::file(file).field("cert"),
            reason: "`cert` must be an array of tables, written `[[cert]]`".into(),
        });
        return (Vec::new(), errors, true);
    };
    let mut entries = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, value) in certs.iter().enumerate() {
        let label = format!("#{}", i + 1);
        let mut at = Location {
            file: file.to_path_buf(),
            entry: Some(label.clone()),
            field: None,
        };
        let Some(t) = value.as_table() else {
            errors.push(InventoryError::InvalidValue {
                at,
                reason: "each `[[cert]]` entry must be a table".into(),
            });
            continue;
        };
        if let Some(Value::String(n)) = t.get("name") {
            at.entry = Some(format!("{label} \"{n}\""));
        }
        let before = errors.len();
        let entry = parse_entry(t, &at, file, &mut errors);
        if let Some(entry) = entry {
            if seen.contains_key(entry.name.as_str()) {
                errors.push(InventoryError::DuplicateName {
                    at: at.field("name"),
                    name: entry.name.to_string(),
                    first: file.to_path_buf(),
                });
                continue;
            }
            check_issuer(&entry, &at, opts, &mut errors);
            if opts.check_files {
                errors.extend(check_files(&entry, &at));
            }
            if errors.len() == before {
                seen.insert(entry.name.to_string(), i);
                entries.push((entry, at));
            }
        }
    }
    (entries, errors, true)
}

fn unknown(at: Location, key: &str, known: &[&str]) -> InventoryError {
    InventoryError::UnknownField {
        at,
        suggestion: did_you_mean(key, known).map(str::to_string),
        known: known.iter().map(|s| (*s).to_string()).collect(),
    }
}

fn get_str<'a>(
    t: &'a Table,
    at: &Location,
    field: &str,
    errors: &mut Vec<InventoryError>,
) -> Option<&'a str> {
    match t.get(field)? {
        Value::String(s) if s.trim().is_empty() => {
            errors.push(InventoryError::InvalidValue {
                at: at.field(field),
                reason: "must not be empty".into(),
            });
            None
        }
        Value::String(s) => Some(s),
        other => {
            errors.push(InventoryError::InvalidValue {
                at: at.field(field),
                reason: format!("must be a string, found {}", other.type_str()),
            });
            None
        }
    }
}

fn get_bool(t: &Table, at: &Location, field: &str, errors: &mut Vec<InventoryError>) -> bool {
    match t.get(field) {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(other) => {
            errors.push(InventoryError::InvalidValue {
                at: at.field(field),
                reason: format!("must be true or false, found {}", other.type_str()),
            });
            false
        }
    }
}

fn get_enum<T>(
    t: &Table,
    at: &Location,
    field: &str,
    names: &[&str],
    parse: fn(&str) -> Option<T>,
    errors: &mut Vec<InventoryError>,
) -> Option<Option<T>> {
    let Some(s) = get_str(t, at, field, errors) else {
        return if t.contains_key(field) {
            None
        } else {
            Some(None)
        };
    };
    match parse(s) {
        Some(v) => Some(Some(v)),
        None => {
            let hint = did_you_mean(s, names)
                .map(|h| format!("; did you mean `{h}`?"))
                .unwrap_or_default();
            errors.push(InventoryError::InvalidValue {
                at: at.field(field),
                reason: format!("`{s}` is not one of {}{hint}", names.join(", ")),
            });
            None
        }
    }
}

fn get_path(
    t: &Table,
    at: &Location,
    field: &str,
    errors: &mut Vec<InventoryError>,
) -> Option<PathBuf> {
    let s = get_str(t, at, field, errors)?;
    let p = PathBuf::from(s);
    if !p.is_absolute() {
        errors.push(InventoryError::InvalidValue {
            at: at.field(field),
            reason: format!("`{s}` must be an absolute path"),
        });
        return None;
    }
    Some(p)
}

fn parse_entry(
    t: &Table,
    at: &Location,
    file: &Path,
    errors: &mut Vec<InventoryError>,
) -> Option<ManagedCert> {
    let before = errors.len();
    for key in t.keys() {
        if !ENTRY_FIELDS.contains(&key.as_str()) {
            errors.push(unknown(at.field(key), key, ENTRY_FIELDS));
        }
    }
    let required = |field: &str, errors: &mut Vec<InventoryError>| {
        if !t.contains_key(field) {
            errors.push(InventoryError::MissingField {
                at: at.field(field),
            });
        }
    };
    required("name", errors);
    required("owner", errors);
    required("cert", errors);

    let name = get_str(t, at, "name", errors).and_then(|n| match CertId::new(n) {
        Ok(id) => Some(id),
        Err(reason) => {
            errors.push(InventoryError::InvalidValue {
                at: at.field("name"),
                reason,
            });
            None
        }
    });
    let owner = get_str(t, at, "owner", errors).map(str::to_string);
    let tags = match t.get("tags") {
        None => Vec::new(),
        Some(Value::Array(a)) => {
            let mut tags = Vec::new();
            for (i, v) in a.iter().enumerate() {
                match v.as_str() {
                    Some(s) if !s.is_empty() => tags.push(s.to_string()),
                    _ => errors.push(InventoryError::InvalidValue {
                        at: at.field(format!("tags[{i}]")),
                        reason: "each tag must be a non-empty string".into(),
                    }),
                }
            }
            tags
        }
        Some(other) => {
            errors.push(InventoryError::InvalidValue {
                at: at.field("tags"),
                reason: format!("must be an array of strings, found {}", other.type_str()),
            });
            Vec::new()
        }
    };
    let kind = get_enum(t, at, "kind", CertKind::NAMES, CertKind::parse, errors)
        .map(|k| k.unwrap_or(CertKind::TlsServer));
    let trust = get_enum(t, at, "trust", Trust::NAMES, Trust::parse, errors)
        .map(|k| k.unwrap_or(Trust::Private));
    let key_profile = get_enum(
        t,
        at,
        "key_profile",
        KeyProfile::NAMES,
        KeyProfile::parse,
        errors,
    );
    let issuer = get_str(t, at, "issuer", errors).map(str::to_string);
    let fallback_issuer = get_str(t, at, "fallback_issuer", errors).map(str::to_string);
    if fallback_issuer.is_some() && fallback_issuer == issuer {
        errors.push(InventoryError::InvalidValue {
            at: at.field("fallback_issuer"),
            reason: "is the same as `issuer`: the fallback must order from another CA".into(),
        });
    }
    let priority = get_enum(t, at, "priority", Priority::NAMES, Priority::parse, errors)
        .map(Option::unwrap_or_default);
    let reload = get_str(t, at, "reload", errors).map(str::to_string);
    let deploy_hook = get_str(t, at, "deploy_hook", errors).map(str::to_string);
    let follow_symlinks = get_bool(t, at, "follow_symlinks", errors);
    let cert = get_path(t, at, "cert", errors);
    let key = get_path(t, at, "key", errors);
    let chain = get_path(t, at, "chain", errors);
    let fullchain = get_path(t, at, "fullchain", errors);
    let combined = get_path(t, at, "combined", errors);
    let pkcs12 = get_path(t, at, "pkcs12", errors);
    let pkcs12_password_file = get_path(t, at, "pkcs12_password_file", errors);
    if pkcs12_password_file.is_some() && !t.contains_key("pkcs12") {
        errors.push(InventoryError::InvalidValue {
            at: at.field("pkcs12_password_file"),
            reason: "is set but `pkcs12` is not: name the PKCS#12 file it protects".into(),
        });
    }
    if (combined.is_some() || pkcs12.is_some()) && !t.contains_key("key") {
        errors.push(InventoryError::InvalidValue {
            at: at.field(if combined.is_some() {
                "combined"
            } else {
                "pkcs12"
            }),
            reason: "needs `key`: a combined PEM or PKCS#12 file carries the private key".into(),
        });
    }
    let verify = parse_verify(t, at, errors);
    let expiring = get_str(t, at, "expiring", errors).and_then(|s| {
        crate::model::ExpiryThreshold::parse(s)
            .map_err(|reason| {
                errors.push(InventoryError::InvalidValue {
                    at: at.field("expiring"),
                    reason,
                })
            })
            .ok()
    });

    if errors.len() != before {
        return None;
    }
    Some(ManagedCert {
        name: name?,
        owner: owner?,
        tags,
        kind: kind?,
        trust: trust?,
        issuer,
        fallback_issuer,
        priority: priority?,
        key_profile: key_profile?,
        paths: Paths {
            cert: cert?,
            key,
            chain,
            fullchain,
            combined,
            pkcs12,
            pkcs12_password_file,
        },
        reload,
        deploy_hook,
        follow_symlinks,
        verify,
        expiring,
        source: file.to_path_buf(),
    })
}

fn parse_verify(t: &Table, at: &Location, errors: &mut Vec<InventoryError>) -> Vec<VerifyEndpoint> {
    let items = match t.get("verify") {
        None => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            errors.push(InventoryError::InvalidValue {
                at: at.field("verify"),
                reason: format!(
                    "must be an array of tables such as [{{ address = \"127.0.0.1:443\", sni = \"www.example.com\" }}], found {}",
                    other.type_str()
                ),
            });
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("verify[{i}]");
        let Some(v) = item.as_table() else {
            errors.push(InventoryError::InvalidValue {
                at: at.field(&field),
                reason: "must be a table with `address` and optional `sni`".into(),
            });
            continue;
        };
        for key in v.keys() {
            if !VERIFY_FIELDS.contains(&key.as_str()) {
                errors.push(unknown(
                    at.field(format!("{field}.{key}")),
                    key,
                    VERIFY_FIELDS,
                ));
            }
        }
        let address = match v.get("address") {
            None => {
                errors.push(InventoryError::MissingField {
                    at: at.field(format!("{field}.address")),
                });
                continue;
            }
            Some(Value::String(a)) => a.clone(),
            Some(other) => {
                errors.push(InventoryError::InvalidValue {
                    at: at.field(format!("{field}.address")),
                    reason: format!("must be a string, found {}", other.type_str()),
                });
                continue;
            }
        };
        if let Err(reason) = check_address(&address) {
            errors.push(InventoryError::InvalidValue {
                at: at.field(format!("{field}.address")),
                reason,
            });
            continue;
        }
        let sni = match v.get("sni") {
            None => None,
            Some(Value::String(s)) if is_dns_name(s) => Some(s.to_ascii_lowercase()),
            Some(other) => {
                errors.push(InventoryError::InvalidValue {
                    at: at.field(format!("{field}.sni")),
                    reason: format!("`{other}` is not a DNS name"),
                });
                continue;
            }
        };
        out.push(VerifyEndpoint { address, sni });
    }
    out
}

/// Checks `host:port` (IPv6 literals in brackets).
fn check_address(a: &str) -> Result<(), String> {
    let (host, port) = a
        .rsplit_once(':')
        .ok_or_else(|| format!("`{a}` must be host:port, such as 127.0.0.1:443"))?;
    port.parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("`{port}` in `{a}` is not a port number (1-65535)"))?;
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        v6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        host.parse::<std::net::Ipv4Addr>().is_ok() || is_dns_name(host)
    };
    if !host_ok {
        return Err(format!(
            "`{host}` in `{a}` is not a host name or IP address (write IPv6 as [::1]:443)"
        ));
    }
    Ok(())
}

fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn check_issuer(
    entry: &ManagedCert,
    at: &Location,
    opts: &LoadOptions,
    errors: &mut Vec<InventoryError>,
) {
    let Some(known) = &opts.known_issuers else {
        return;
    };
    for (field, issuer) in [
        ("issuer", &entry.issuer),
        ("fallback_issuer", &entry.fallback_issuer),
    ] {
        let Some(issuer) = issuer else { continue };
        if !known.iter().any(|k| k == issuer) {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            errors.push(InventoryError::UnknownIssuer {
                at: at.field(field),
                issuer: issuer.clone(),
                suggestion: did_you_mean(issuer, &names).map(str::to_string),
                known: known.clone(),
            });
        }
    }
}

fn read_path(path: &Path, at: &Location) -> Result<Vec<u8>, InventoryError> {
    std::fs::read(path).map_err(|e| InventoryError::UnreadablePath {
        at: at.clone(),
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn read_certs(path: &Path, at: &Location) -> Result<Vec<CertInfo>, InventoryError> {
    let bytes = read_path(path, at)?;
    inspect::inspect_certificates(&bytes).map_err(|source| InventoryError::Unparseable {
        at: at.clone(),
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the files an entry points at and checks that they parse and belong together.
pub fn check_files(entry: &ManagedCert, at: &Location) -> Vec<InventoryError> {
    let mut errors = Vec::new();
    let leaf = match read_certs(&entry.paths.cert, &at.field("cert")) {
        Ok(certs) => certs.into_iter().next(),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if let Some(key_path) = &entry.paths.key {
        let kat = at.field("key");
        match read_path(key_path, &kat).and_then(|b| {
            inspect::read_private_key(&b).map_err(|source| InventoryError::Unparseable {
                at: kat.clone(),
                path: key_path.clone(),
                source,
            })
        }) {
            Ok(key) => {
                if let Some(leaf) = &leaf
                    && !key.public.same_public_key(&leaf.key)
                {
                    errors.push(InventoryError::KeyMismatch {
                        at: kat,
                        cert: entry.paths.cert.clone(),
                        key: key_path.clone(),
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if let Some(chain) = &entry.paths.chain
        && !std::fs::read(chain).is_ok_and(|b| b.trim_ascii().is_empty())
        && let Err(e) = read_certs(chain, &at.field("chain"))
    {
        errors.push(e);
    }
    if let Some(fullchain) = &entry.paths.fullchain {
        let fat = at.field("fullchain");
        match read_certs(fullchain, &fat) {
            Ok(certs) => {
                if let (Some(leaf), Some(first)) = (&leaf, certs.first())
                    && leaf.fingerprints.cert_sha256 != first.fingerprints.cert_sha256
                {
                    errors.push(InventoryError::InvalidValue {
                        at: fat,
                        reason: format!(
                            "the first certificate in {} is not the certificate in {}",
                            fullchain.display(),
                            entry.paths.cert.display()
                        ),
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<ManagedCert>, Vec<String>) {
        let (e, errs, _) = parse_file(Path::new("inv.toml"), text, &LoadOptions::default());
        (
            e.into_iter().map(|(e, _)| e).collect(),
            errs.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn minimal_entry_gets_defaults() {
        let (e, errs) =
            parse("[[cert]]\nname = \"web\"\nowner = \"team-web\"\ncert = \"/etc/ssl/web.pem\"\n");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(e[0].kind, CertKind::TlsServer);
        assert_eq!(e[0].trust, Trust::Private);
        assert_eq!(e[0].key_profile, None);
    }

    #[test]
    fn addresses() {
        assert!(check_address("127.0.0.1:443").is_ok());
        assert!(check_address("[::1]:8443").is_ok());
        assert!(check_address("www.example.com:443").is_ok());
        assert!(check_address("host").is_err());
        assert!(check_address("host:0").is_err());
        assert!(check_address("ho st:443").is_err());
    }

    #[test]
    fn bad_enum_value_has_hint() {
        let (_, errs) =
            parse("[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"/c\"\nkind = \"tls-sever\"\n");
        assert!(errs[0].contains("did you mean `tls-server`"), "{errs:?}");
    }

    #[test]
    fn fallback_issuer_and_priority() {
        let base = "[[cert]]\nname = \"web\"\nowner = \"o\"\ncert = \"/c\"\nissuer = \"acme\"\n";
        let (e, errs) = parse(base);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(e[0].priority, Priority::Normal);
        assert_eq!(e[0].fallback_issuer, None);
        let (e, errs) = parse(&format!(
            "{base}fallback_issuer = \"backup\"\npriority = \"critical\"\n"
        ));
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(e[0].priority, Priority::Critical);
        assert_eq!(e[0].fallback_issuer.as_deref(), Some("backup"));
        let (_, errs) = parse(&format!("{base}fallback_issuer = \"acme\"\n"));
        assert!(
            errs[0].contains("fallback_issuer") && errs[0].contains("another CA"),
            "{errs:?}"
        );
        let (_, errs) = parse(&format!("{base}priority = \"urgent\"\n"));
        assert!(
            errs[0].contains("priority") && errs[0].contains("critical"),
            "{errs:?}"
        );
        let opts = LoadOptions {
            known_issuers: Some(vec!["acme".into(), "backup".into()]),
            ..LoadOptions::default()
        };
        let text = format!("{base}fallback_issuer = \"bakup\"\n");
        let (_, errs, _) = parse_file(Path::new("inv.toml"), &text, &opts);
        let msg = errs[0].to_string();
        assert!(
            msg.contains("fallback_issuer") && msg.contains("backup"),
            "{msg}"
        );
    }
}
