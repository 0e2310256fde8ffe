//! Deployment: writing a bundle to every location an inventory entry names, all of them
//! atomically and together, running the entry's deploy hook, and checking that every
//! location holds exactly a given bundle.
//!
//! # Layout
//!
//! What each location of an entry (`[[cert]]` fields) receives:
//!
//! | field       | content                                                   | new file mode |
//! |-------------|-----------------------------------------------------------|---------------|
//! | `cert`      | the leaf alone when the entry also has `chain` or `fullchain`; otherwise the leaf followed by the chain, so that the service still sends the intermediates | 0644 |
//! | `key`       | the bundle's private key PEM text, byte for byte          | 0600          |
//! | `chain`     | the intermediates, leaf excluded (empty when there are none) | 0644       |
//! | `fullchain` | the leaf followed by the chain                            | 0644          |
//! | `combined`  | leaf, chain, then key, in one PEM file (HAProxy's `crt`)  | 0600          |
//! | `pkcs12`    | key, leaf and chain in PKCS#12 (RFC 7292)                 | 0600          |
//!
//! PEM files are the bundle's own strings concatenated (a newline is added only after a
//! part that lacks one), never re-encoded: writing the same bundle twice gives identical
//! bytes, which is what a rollback relies on. A file that exists keeps its owner and mode.
//!
//! The PKCS#12 file is protected by the first line of `pkcs12_password_file` (without its
//! line ending), or by the empty password when the entry has no password file. Keys and
//! certificates are encrypted with PBES2 (PBKDF2 with HMAC-SHA-256, AES-256-CBC; RFC 8018)
//! and the file is authenticated with an HMAC-SHA-256 MAC, which OpenSSL 3, Java and
//! current Windows read. The key bag's friendly name (a Java keystore's alias) is the entry
//! name. Its salts and IVs are random, so unlike the PEM files it is not byte-identical
//! from one write to the next; [`check_deployed`] compares its content instead.
//!
//! # Atomicity
//!
//! [`deploy`] works in two phases. First it renders every location and stages each as a
//! temporary file in the target's directory (written and fsynced); if anything fails
//! there (no key in the bundle for a location that needs one, an unreadable password file,
//! a directory that cannot be written), the temporary files are removed and no location
//! has changed. Then it renames every staged file over its target in quick succession and
//! fsyncs each directory once. Only then does the deploy hook run, with the paths in its
//! environment (`CERTRESPONDER_CERT_NAME`, `CERTRESPONDER_BUNDLE_ID`,
//! `CERTRESPONDER_CERT_PATH`, and `CERTRESPONDER_KEY_PATH`, `CERTRESPONDER_CHAIN_PATH`,
//! `CERTRESPONDER_FULLCHAIN_PATH`, `CERTRESPONDER_COMBINED_PATH`,
//! `CERTRESPONDER_PKCS12_PATH` for the locations the entry has).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certresponder_inventory::fs::{LocationOptions, StagedFile, commit_all_then};
use certresponder_inventory::inspect::{self, KeyInfo, der};
use certresponder_inventory::{Bundle, ManagedCert};
use certresponder_issuers::keygen::pkcs8_v1;
use certresponder_issuers::process::{CommandOutcome, run_shell};
use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, Pkcs12Archive,
    PrivateKey, PrivateKeyChain,
};
use sha2::{Digest, Sha256};

/// How long a deploy hook may run when the configuration does not say.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(120);

/// PBKDF2 iterations for the PKCS#12 encryption and MAC: what the p12-keystore library and
/// Java's keytool use, above OpenSSL 3's 2048, and read by every current implementation.
const PKCS12_ITERATIONS: u32 = 10_000;

/// Mode of new files that hold a private key.
const SECRET_MODE: u32 = 0o600;
/// Mode of new files that hold only certificates.
const PUBLIC_MODE: u32 = 0o644;

/// How [`deploy`] runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployOptions {
    /// How long the entry's `deploy_hook` may run before its process group is killed.
    pub hook_timeout: Duration,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            hook_timeout: DEFAULT_HOOK_TIMEOUT,
        }
    }
}

/// What [`deploy`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployReport {
    /// The locations replaced, in the order of the inventory fields (`cert`, `key`,
    /// `chain`, `fullchain`, `combined`, `pkcs12`).
    pub written: Vec<PathBuf>,
    /// How the deploy hook ended, when the entry has one (it succeeded, or [`deploy`] would
    /// have returned an error).
    pub hook: Option<CommandOutcome>,
}

/// The location a [`DeployError`] is about: the entry, the inventory field and its path
/// (for `deploy_hook`, the inventory file the hook is written in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTarget {
    /// Inventory name of the certificate.
    pub entry: String,
    /// Inventory field: `cert`, `key`, `chain`, `fullchain`, `combined`, `pkcs12`,
    /// `pkcs12_password_file` or `deploy_hook`.
    pub field: &'static str,
    /// The file the field names (the inventory file for `deploy_hook`).
    pub path: PathBuf,
}

impl DeployTarget {
    fn new(entry: &ManagedCert, field: &'static str, path: &Path) -> Self {
        Self {
            entry: entry.name.to_string(),
            field,
            path: path.to_path_buf(),
        }
    }
}

impl fmt::Display for DeployTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: `{}` {}",
            self.entry,
            self.field,
            self.path.display()
        )
    }
}

/// Why a deployment or a deployment check failed. Every variant names the entry, the field
/// and the path; none carries key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The entry names a location that holds the private key, but the bundle has none.
    #[error("{at}: bundle {bundle} has no private key, and this location holds one")]
    NoKey {
        /// Where.
        at: DeployTarget,
        /// The bundle id.
        bundle: String,
    },
    /// Two fields of the entry name the same file, which would get two different contents.
    #[error("{at}: is the same file as `{other}`; give each location its own file")]
    SamePath {
        /// The second field naming the file.
        at: DeployTarget,
        /// The first field naming it.
        other: &'static str,
    },
    /// The bundle cannot be turned into this location's content: its certificates or key
    /// do not parse, its key does not match its leaf, or the PKCS#12 encoder refused it.
    #[error("{at}: cannot write bundle {bundle} here: {reason}")]
    Render {
        /// Where.
        at: DeployTarget,
        /// The bundle id.
        bundle: String,
        /// What is wrong.
        reason: String,
    },
    /// The PKCS#12 password cannot be read from `pkcs12_password_file`.
    #[error("{at}: cannot read the PKCS#12 password: {reason}")]
    Password {
        /// Where (`pkcs12_password_file`).
        at: DeployTarget,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be staged or read.
    #[error("{at}: {action}: {source}")]
    Io {
        /// Where.
        at: DeployTarget,
        /// What was being done.
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Renaming a staged file over its target failed after every file was staged: the
    /// locations in `replaced` already hold the new bundle, the others the old one.
    #[error(
        "{at}: replacing the file failed, after {} other location(s) were already replaced ({}); the deployment is incomplete: {source}",
        replaced.len(),
        list(replaced)
    )]
    Commit {
        /// The location that failed.
        at: DeployTarget,
        /// The locations already replaced.
        replaced: Vec<PathBuf>,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A location does not hold the bundle it should.
    #[error("{at}: {what}")]
    Mismatch {
        /// Where.
        at: DeployTarget,
        /// What differs.
        what: String,
    },
    /// The deploy hook could not be started (the files were written).
    #[error(
        "{}: `deploy_hook` in {}: the files were written, but the hook could not be started: {source}",
        at.entry,
        at.path.display()
    )]
    HookNotStarted {
        /// Where (`deploy_hook`, with the inventory file as path).
        at: DeployTarget,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The deploy hook exited non-zero, was killed, or timed out (the files were written).
    #[error(
        "{}: `deploy_hook` in {}: the files were written, but the hook failed: {detail}",
        at.entry,
        at.path.display()
    )]
    HookFailed {
        /// Where (`deploy_hook`, with the inventory file as path).
        at: DeployTarget,
        /// [`CommandOutcome::describe`]: how it ended and the end of its stderr.
        detail: String,
        /// The whole outcome, for the journal.
        outcome: Box<CommandOutcome>,
    },
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "none".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes `bundle` to every location `entry` names (see the module documentation for the
/// layout), all or none, then runs the entry's `deploy_hook`.
///
/// An error before the files are replaced leaves every location as it was; a hook error
/// ([`DeployError::HookFailed`], [`DeployError::HookNotStarted`]) comes after they were.
pub async fn deploy(
    entry: &ManagedCert,
    bundle: &Bundle,
    opts: &DeployOptions,
) -> Result<DeployReport, DeployError> {
    let (owned_entry, owned_bundle) = (entry.clone(), bundle.clone());
    // Rendering (PBKDF2 for the PKCS#12 file) and fsync block: keep them off the runtime.
    let written = tokio::task::spawn_blocking(move || write_files(&owned_entry, &owned_bundle))
        .await
        .map_err(|e| DeployError::Io {
            at: DeployTarget::new(entry, "cert", &entry.paths.cert),
            action: "writing the files",
            source: io::Error::other(format!("the writing task did not finish: {e}")),
        })??;
    tracing::info!(
        cert = %entry.name,
        step = "deploy",
        bundle = %bundle.id,
        files = written.len(),
        "bundle written to every location"
    );
    let Some(hook) = &entry.deploy_hook else {
        return Ok(DeployReport {
            written,
            hook: None,
        });
    };
    let at = DeployTarget::new(entry, "deploy_hook", &entry.source);
    let outcome = run_shell(hook, &hook_env(entry, bundle), opts.hook_timeout)
        .await
        .map_err(|source| DeployError::HookNotStarted {
            at: at.clone(),
            source,
        })?;
    if !outcome.success() {
        tracing::warn!(
            cert = %entry.name,
            step = "deploy_hook",
            outcome = %outcome.describe(),
            "deploy hook failed"
        );
        return Err(DeployError::HookFailed {
            at,
            detail: outcome.describe(),
            outcome: Box::new(outcome),
        });
    }
    tracing::info!(
        cert = %entry.name,
        step = "deploy_hook",
        duration_ms = outcome.duration_ms,
        "deploy hook succeeded"
    );
    Ok(DeployReport {
        written,
        hook: Some(outcome),
    })
}

/// The deploy hook's environment.
fn hook_env(entry: &ManagedCert, bundle: &Bundle) -> Vec<(String, String)> {
    let p = &entry.paths;
    let mut env = vec![
        (
            "CERTRESPONDER_CERT_NAME".to_string(),
            entry.name.to_string(),
        ),
        ("CERTRESPONDER_BUNDLE_ID".to_string(), bundle.id.clone()),
        (
            "CERTRESPONDER_CERT_PATH".to_string(),
            p.cert.display().to_string(),
        ),
    ];
    for (var, path) in [
        ("CERTRESPONDER_KEY_PATH", &p.key),
        ("CERTRESPONDER_CHAIN_PATH", &p.chain),
        ("CERTRESPONDER_FULLCHAIN_PATH", &p.fullchain),
        ("CERTRESPONDER_COMBINED_PATH", &p.combined),
        ("CERTRESPONDER_PKCS12_PATH", &p.pkcs12),
    ] {
        if let Some(path) = path {
            env.push((var.to_string(), path.display().to_string()));
        }
    }
    env
}

/// One location's rendered content.
struct Planned {
    field: &'static str,
    path: PathBuf,
    /// The file's content; wiped when dropped (key, combined and PKCS#12 files hold the key).
    bytes: zeroize::Zeroizing<Vec<u8>>,
    mode: u32,
}

/// Both phases of the file writes: stage everything, then replace everything.
fn write_files(entry: &ManagedCert, bundle: &Bundle) -> Result<Vec<PathBuf>, DeployError> {
    let planned = plan(entry, bundle)?;
    let mut staged = Vec::with_capacity(planned.len());
    for p in &planned {
        // On error `staged` is dropped, which removes every temporary file made so far.
        let opts = LocationOptions {
            new_mode: p.mode,
            secret: matches!(p.field, "key" | "combined" | "pkcs12"),
            follow_symlinks: entry.follow_symlinks,
        };
        staged.push(
            StagedFile::stage_location(&p.path, &p.bytes, &opts).map_err(|source| {
                DeployError::Io {
                    at: DeployTarget::new(entry, p.field, &p.path),
                    action: "staging the new file beside it (nothing was replaced)",
                    source,
                }
            })?,
        );
    }
    // The crash tests stop here between the first rename and the next: resume must
    // leave every location matching again.
    let last = staged.len().saturating_sub(1);
    let between = |i: usize| {
        if i == 0 && last > 0 {
            super::fault::point("during", crate::records::case::Step::Deploy);
        }
    };
    commit_all_then(staged, between).map_err(|e| {
        let (field, path) = planned
            .get(e.index)
            .map_or(("cert", &entry.paths.cert), |p| (p.field, &p.path));
        DeployError::Commit {
            at: DeployTarget::new(entry, field, path),
            replaced: e.replaced,
            source: e.source,
        }
    })
}

/// The bundle's certificates, parsed once.
struct Parsed {
    leaf_der: Vec<u8>,
    leaf_key: KeyInfo,
    chain_ders: Vec<Vec<u8>>,
}

fn parse_bundle(entry: &ManagedCert, bundle: &Bundle) -> Result<Parsed, DeployError> {
    let bad = |reason: String| DeployError::Render {
        at: DeployTarget::new(entry, "cert", &entry.paths.cert),
        bundle: bundle.id.clone(),
        reason,
    };
    let leaf = inspect::read_certificates(bundle.leaf_pem.as_bytes())
        .map_err(|e| bad(format!("its leaf does not parse: {e}")))?;
    let [leaf_der] = <[Vec<u8>; 1]>::try_from(leaf)
        .map_err(|v| bad(format!("its leaf PEM holds {} certificates", v.len())))?;
    let info = inspect::inspect_certificate_der(&leaf_der)
        .map_err(|e| bad(format!("its leaf does not parse: {e}")))?;
    let chain_ders = read_cert_list(bundle.chain_pem.as_bytes())
        .map_err(|e| bad(format!("its chain does not parse: {e}")))?;
    Ok(Parsed {
        leaf_der,
        leaf_key: info.key,
        chain_ders,
    })
}

/// Certificates in PEM or DER; an empty (or all-whitespace) input is an empty list, as in
/// a `chain` file of a certificate issued directly by a root.
fn read_cert_list(bytes: &[u8]) -> Result<Vec<Vec<u8>>, inspect::InspectError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    inspect::read_certificates(bytes)
}

/// Concatenates PEM texts, adding a newline only after a part that does not end with one.
fn pem_join(parts: &[&str]) -> Vec<u8> {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts.iter().filter(|p| !p.is_empty()) {
        out.push_str(part);
        if !part.ends_with('\n') {
            out.push('\n');
        }
    }
    out.into_bytes()
}

/// Renders every location of the entry, in field order.
fn plan(entry: &ManagedCert, bundle: &Bundle) -> Result<Vec<Planned>, DeployError> {
    let paths = &entry.paths;
    let parsed = parse_bundle(entry, bundle)?;
    let (leaf, chain) = (bundle.leaf_pem.as_str(), bundle.chain_pem.as_str());
    let key_for = |field, path: &Path| checked_key(entry, bundle, &parsed, field, path);

    let mut planned = Vec::new();
    let cert = if paths.chain.is_some() || paths.fullchain.is_some() {
        pem_join(&[leaf])
    } else {
        pem_join(&[leaf, chain])
    };
    planned.push(Planned {
        field: "cert",
        path: paths.cert.clone(),
        bytes: cert.into(),
        mode: PUBLIC_MODE,
    });
    if let Some(path) = &paths.key {
        planned.push(Planned {
            field: "key",
            path: path.clone(),
            bytes: key_for("key", path)?.as_bytes().to_vec().into(),
            mode: SECRET_MODE,
        });
    }
    if let Some(path) = &paths.chain {
        planned.push(Planned {
            field: "chain",
            path: path.clone(),
            bytes: pem_join(&[chain]).into(),
            mode: PUBLIC_MODE,
        });
    }
    if let Some(path) = &paths.fullchain {
        planned.push(Planned {
            field: "fullchain",
            path: path.clone(),
            bytes: pem_join(&[leaf, chain]).into(),
            mode: PUBLIC_MODE,
        });
    }
    if let Some(path) = &paths.combined {
        let key = key_for("combined", path)?;
        planned.push(Planned {
            field: "combined",
            path: path.clone(),
            bytes: pem_join(&[leaf, chain, key]).into(),
            mode: SECRET_MODE,
        });
    }
    if let Some(path) = &paths.pkcs12 {
        let key = key_for("pkcs12", path)?;
        let password = read_password(entry)?;
        let bytes =
            pkcs12_bytes(entry.name.as_str(), key, &parsed, &password).map_err(|reason| {
                DeployError::Render {
                    at: DeployTarget::new(entry, "pkcs12", path),
                    bundle: bundle.id.clone(),
                    reason,
                }
            })?;
        planned.push(Planned {
            field: "pkcs12",
            path: path.clone(),
            bytes: bytes.into(),
            mode: SECRET_MODE,
        });
    }
    for (i, p) in planned.iter().enumerate() {
        if let Some(first) = planned[..i].iter().find(|q| q.path == p.path) {
            return Err(DeployError::SamePath {
                at: DeployTarget::new(entry, p.field, &p.path),
                other: first.field,
            });
        }
    }
    Ok(planned)
}

/// The bundle's key PEM for a location that holds it, once checked to parse and to match
/// the leaf: a bundle whose key does not fit its certificate is never deployed.
fn checked_key<'b>(
    entry: &ManagedCert,
    bundle: &'b Bundle,
    parsed: &Parsed,
    field: &'static str,
    path: &Path,
) -> Result<&'b str, DeployError> {
    let at = DeployTarget::new(entry, field, path);
    let Some(key) = &bundle.key_pem else {
        return Err(DeployError::NoKey {
            at,
            bundle: bundle.id.clone(),
        });
    };
    let render = |reason: String| DeployError::Render {
        at: at.clone(),
        bundle: bundle.id.clone(),
        reason,
    };
    let info = inspect::read_private_key(key.expose().as_bytes())
        .map_err(|e| render(format!("its private key does not parse: {e}")))?;
    if !info.public.same_public_key(&parsed.leaf_key) {
        return Err(render(format!(
            "its private key does not match its certificate {}",
            short(&parsed.leaf_der)
        )));
    }
    Ok(key.expose())
}

/// The PKCS#12 password: the first line of `pkcs12_password_file` without its line ending,
/// or empty when the entry has no password file.
fn read_password(entry: &ManagedCert) -> Result<String, DeployError> {
    let Some(path) = &entry.paths.pkcs12_password_file else {
        return Ok(String::new());
    };
    let bad = |reason: String| DeployError::Password {
        at: DeployTarget::new(entry, "pkcs12_password_file", path),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| bad("the file is not UTF-8 text".into()))?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// Encodes key, leaf and chain as PKCS#12 with PBES2/AES-256-CBC and an HMAC-SHA-256 MAC.
fn pkcs12_bytes(
    name: &str,
    key_pem: &str,
    parsed: &Parsed,
    password: &str,
) -> Result<Vec<u8>, String> {
    let key_der = pkcs8_der(key_pem)?;
    let key = PrivateKey::from_der(&key_der)
        .map_err(|e| format!("the PKCS#12 encoder refused the private key: {e}"))?;
    let certs = std::iter::once(&parsed.leaf_der)
        .chain(&parsed.chain_ders)
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the PKCS#12 encoder refused a certificate: {e}"))?;
    // The localKeyId ties the key bag to the leaf's bag; the leaf's hash is unique to it.
    let local_key_id = Sha256::digest(&parsed.leaf_der).to_vec();
    let mut store = KeyStore::new();
    store.add_entry(
        name,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(local_key_id, key, certs)),
    );
    store
        .writer(password)
        .encryption_algorithm(EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(PKCS12_ITERATIONS)
        .mac_algorithm(MacAlgorithm::HmacSha256)
        .mac_iterations(PKCS12_ITERATIONS)
        .write()
        .map_err(|e| format!("encoding PKCS#12 failed: {e}"))
}

/// rsaEncryption, 1.2.840.113549.1.1.1 (RFC 8017 appendix C), as a DER OID.
const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
/// id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 §2.1.1), as a DER OID.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// The key as PKCS#8 `PrivateKeyInfo` DER (RFC 5958), which PKCS#12 key bags carry:
/// PKCS#8 as is, PKCS#1 and SEC1 wrapped. Errors describe the structure, never the key.
fn pkcs8_der(key_pem: &str) -> Result<Vec<u8>, String> {
    let blocks = inspect::parse_pem(key_pem.as_bytes())
        .map_err(|e| format!("the private key PEM does not parse: {e}"))?;
    let block = blocks
        .iter()
        .find(|b| {
            matches!(
                b.label.as_str(),
                "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
            )
        })
        .ok_or("the private key PEM holds no PRIVATE KEY block")?;
    let algorithm = match block.label.as_str() {
        "PRIVATE KEY" => return pkcs8_v1(&block.der),
        "RSA PRIVATE KEY" => der::encode(0x30, &[OID_RSA_ENCRYPTION, &[0x05, 0x00]].concat()),
        _ => {
            // RFC 5915: ECPrivateKey ::= SEQUENCE { version, privateKey, [0] parameters
            // OPTIONAL, [1] publicKey OPTIONAL }; PKCS#8 needs the curve from [0].
            let no_curve = "the SEC1 EC private key does not name its curve";
            let (seq, _) = der::expect_tlv(
                &block.der,
                0x30,
                "the SEC1 EC private key is not a DER SEQUENCE",
            )?;
            let fields = der::children(seq.content)?;
            let params = fields.iter().find(|f| f.tag == 0xa0).ok_or(no_curve)?;
            let (curve, _) = der::expect_tlv(params.content, 0x06, no_curve)?;
            der::encode(0x30, &[OID_EC_PUBLIC_KEY, curve.raw].concat())
        }
    };
    let version = [0x02, 0x01, 0x00];
    Ok(der::encode(
        0x30,
        &[&version[..], &algorithm, &der::encode(0x04, &block.der)].concat(),
    ))
}

/// The first 16 hex digits of a certificate's SHA-256 fingerprint (a bundle id's form).
fn short(der: &[u8]) -> String {
    let mut h = hex::encode(Sha256::digest(der));
    h.truncate(16);
    h
}

/// Checks that every location of `entry` holds exactly `bundle`: the `cert` file starts
/// with the bundle's leaf (followed by nothing or the chain when the entry has `chain` or
/// `fullchain`, by exactly the chain otherwise), the `key` file parses and matches the
/// leaf, `chain` and `fullchain` hold the expected certificates in order, `combined`
/// holds leaf, chain and a matching key, and `pkcs12` opens with the password and holds
/// the leaf, the chain and a matching key. Returns the first difference found.
///
/// It reads files and derives the PKCS#12 keys (PBKDF2): from async code, call it on a
/// blocking thread (`tokio::task::spawn_blocking`).
pub fn check_deployed(entry: &ManagedCert, bundle: &Bundle) -> Result<(), DeployError> {
    let paths = &entry.paths;
    let parsed = parse_bundle(entry, bundle)?;
    let leaf = parsed.leaf_der.as_slice();
    let chain: Vec<&[u8]> = parsed.chain_ders.iter().map(Vec::as_slice).collect();
    let full: Vec<&[u8]> = std::iter::once(leaf).chain(chain.iter().copied()).collect();
    let check = Checker {
        bundle,
        parsed: &parsed,
    };

    let at = DeployTarget::new(entry, "cert", &paths.cert);
    let certs = check.certs(&at)?;
    let split = paths.chain.is_some() || paths.fullchain.is_some();
    if split && certs.len() == 1 {
        check.same_certs(&at, &certs, &[leaf])?;
    } else {
        check.same_certs(&at, &certs, &full)?;
    }
    if let Some(path) = &paths.key {
        let at = DeployTarget::new(entry, "key", path);
        let bytes = check.read(&at)?;
        check.matching_key(&at, &bytes)?;
    }
    if let Some(path) = &paths.chain {
        let at = DeployTarget::new(entry, "chain", path);
        check.same_certs(&at, &check.certs(&at)?, &chain)?;
    }
    if let Some(path) = &paths.fullchain {
        let at = DeployTarget::new(entry, "fullchain", path);
        check.same_certs(&at, &check.certs(&at)?, &full)?;
    }
    if let Some(path) = &paths.combined {
        let at = DeployTarget::new(entry, "combined", path);
        let bytes = check.read(&at)?;
        let certs = read_cert_list(&bytes)
            .map_err(|e| check.differs(&at, format!("does not parse: {e}")))?;
        check.same_certs(&at, &certs, &full)?;
        check.matching_key(&at, &bytes)?;
    }
    if let Some(path) = &paths.pkcs12 {
        let at = DeployTarget::new(entry, "pkcs12", path);
        let bytes = check.read(&at)?;
        let password = read_password(entry)?;
        let archive = Pkcs12Archive::from_pkcs12(&bytes, &password).map_err(|e| {
            check.differs(&at, format!("does not open with the PKCS#12 password: {e}"))
        })?;
        let held: Vec<&[u8]> = archive.certs.iter().map(|c| c.cert.as_der()).collect();
        for (i, want) in full.iter().enumerate() {
            if !held.contains(want) {
                let what = if i == 0 {
                    "certificate"
                } else {
                    "chain certificate"
                };
                return Err(check.differs(
                    &at,
                    format!(
                        "does not hold bundle {}'s {what} {}",
                        bundle.id,
                        short(want)
                    ),
                ));
            }
        }
        let matching = archive.keys.iter().any(|k| {
            inspect::read_private_key(k.key.as_der())
                .is_ok_and(|info| info.public.same_public_key(&parsed.leaf_key))
        });
        if !matching {
            return Err(check.differs(
                &at,
                format!(
                    "holds no private key matching bundle {}'s certificate {} ({} key(s) in the file)",
                    bundle.id,
                    short(leaf),
                    archive.keys.len()
                ),
            ));
        }
    }
    Ok(())
}

/// The comparisons of [`check_deployed`].
struct Checker<'a> {
    bundle: &'a Bundle,
    parsed: &'a Parsed,
}

impl Checker<'_> {
    fn differs(&self, at: &DeployTarget, what: String) -> DeployError {
        DeployError::Mismatch {
            at: at.clone(),
            what,
        }
    }

    fn read(&self, at: &DeployTarget) -> Result<Vec<u8>, DeployError> {
        std::fs::read(&at.path).map_err(|source| DeployError::Io {
            at: at.clone(),
            action: "reading it",
            source,
        })
    }

    fn certs(&self, at: &DeployTarget) -> Result<Vec<Vec<u8>>, DeployError> {
        let bytes = self.read(at)?;
        read_cert_list(&bytes).map_err(|e| self.differs(at, format!("does not parse: {e}")))
    }

    fn same_certs(
        &self,
        at: &DeployTarget,
        found: &[Vec<u8>],
        want: &[&[u8]],
    ) -> Result<(), DeployError> {
        let id = &self.bundle.id;
        for (i, (f, w)) in found.iter().zip(want).enumerate() {
            if f.as_slice() != *w {
                let which = if i == 0 {
                    "certificate".to_string()
                } else {
                    format!("certificate #{}", i + 1)
                };
                return Err(self.differs(
                    at,
                    format!(
                        "holds {which} {} but bundle {id} has {}",
                        short(f),
                        short(w)
                    ),
                ));
            }
        }
        if found.len() != want.len() {
            return Err(self.differs(
                at,
                format!(
                    "holds {} certificate(s) but bundle {id} has {} here",
                    found.len(),
                    want.len()
                ),
            ));
        }
        Ok(())
    }

    fn matching_key(&self, at: &DeployTarget, bytes: &[u8]) -> Result<(), DeployError> {
        let key = inspect::read_private_key(bytes)
            .map_err(|e| self.differs(at, format!("does not hold a readable private key: {e}")))?;
        if !key.public.same_public_key(&self.parsed.leaf_key) {
            return Err(self.differs(
                at,
                format!(
                    "holds a {} key that does not match bundle {}'s certificate {}",
                    key.public.describe(),
                    self.bundle.id,
                    short(&self.parsed.leaf_der)
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// Removes what a process killed while staging left beside `entry`'s locations (and beside
/// the files its links point to); returns how many files. Problems are logged, not fatal.
pub fn sweep_locations(entry: &ManagedCert) -> usize {
    let p = &entry.paths;
    let mut removed = 0;
    for path in std::iter::once(&p.cert).chain(
        [&p.key, &p.chain, &p.fullchain, &p.combined, &p.pkcs12]
            .into_iter()
            .flatten(),
    ) {
        let resolved = std::fs::canonicalize(path).ok();
        for at in std::iter::once(path.as_path()).chain(resolved.as_deref()) {
            match certresponder_inventory::fs::sweep_temp_files(at) {
                Ok(n) => removed += n,
                Err(e) => {
                    tracing::warn!(cert = %entry.name, path = %at.display(), error = %e, "leftover temporary files not removed");
                }
            }
        }
    }
    removed
}
