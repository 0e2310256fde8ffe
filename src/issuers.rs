//! Builds the configured issuer adapters, and checks their settings without contacting any CA.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use certresponder_issuers::command::CommandIssuer;
use certresponder_issuers::config::{Challenge, IssuerKind, IssuerSpec};
use certresponder_issuers::{AcmeIssuer, InternalCa, Issuer, IssuerError};

use crate::config::Config;
use crate::store::Store;

/// Where an ACME issuer's account credentials live when the configuration does not say:
/// `state_dir/acme/<id>.json`, written 0600.
pub fn default_account_file(cfg: &Config, id: &str) -> std::path::PathBuf {
    cfg.state_dir.join("acme").join(format!("{id}.json"))
}

/// Builds one adapter. The internal CA is created on first use.
pub fn build_one(
    cfg: &Config,
    spec: &IssuerSpec,
    store: &dyn Store,
) -> Result<Arc<dyn Issuer>, IssuerError> {
    let storage = store.issuer_storage(&spec.id);
    Ok(match &spec.kind {
        IssuerKind::InternalCa(c) => {
            Arc::new(InternalCa::open_or_create(&spec.id, c.clone(), storage)?)
        }
        IssuerKind::Acme(a) => {
            let mut a = a.clone();
            if a.account_file.is_none() {
                a.account_file = Some(default_account_file(cfg, &spec.id));
            }
            Arc::new(AcmeIssuer::new(&spec.id, a, storage)?)
        }
        IssuerKind::Command(c) => Arc::new(CommandIssuer::new(&spec.id, c.clone())),
        _ => {
            return Err(IssuerError::Unsupported(format!(
                "issuer type `{}` is not built by this release",
                spec.type_name()
            )));
        }
    })
}

/// Builds every configured adapter, by id.
pub fn build_all(
    cfg: &Config,
    store: &dyn Store,
) -> Result<BTreeMap<String, Arc<dyn Issuer>>, IssuerError> {
    cfg.issuers
        .iter()
        .map(|spec| Ok((spec.id.clone(), build_one(cfg, spec, store)?)))
        .collect()
}

/// Problems with an issuer's settings that can be seen without contacting the CA: files that
/// cannot be read, an executable that is missing or not executable.
pub fn check(spec: &IssuerSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let readable = |p: &Path, what: &str, problems: &mut Vec<String>| {
        if let Err(e) = std::fs::read(p) {
            problems.push(format!("{what} {}: {e}", p.display()));
        }
    };
    match &spec.kind {
        IssuerKind::InternalCa(c) => {
            let key = c.dir.join("ca.key");
            if key.exists() {
                match std::fs::metadata(&key) {
                    Ok(m) if m.permissions().mode() & 0o077 != 0 => problems.push(format!(
                        "CA key {} is mode {:o}; it must be 0600",
                        key.display(),
                        m.permissions().mode() & 0o777
                    )),
                    Ok(_) => {}
                    Err(e) => problems.push(format!("CA key {}: {e}", key.display())),
                }
            }
        }
        IssuerKind::Acme(a) => {
            if let Some(root) = &a.trust_root {
                readable(root, "trust_root", &mut problems);
            }
            if let Some((_, key)) = &a.eab {
                readable(key, "eab_hmac_key_file", &mut problems);
            }
            match &a.challenge {
                Challenge::Http01Webroot(root) if !root.is_dir() => {
                    problems.push(format!(
                        "http01_webroot {} is not a directory",
                        root.display()
                    ));
                }
                Challenge::Dns01Hook(hook) => executable(hook, "dns01_hook", &mut problems),
                _ => {}
            }
        }
        IssuerKind::Command(c) => {
            if let Some(program) = c.command.first() {
                executable(Path::new(program), "command", &mut problems);
            }
        }
        _ => {}
    }
    problems
}

fn executable(p: &Path, what: &str, problems: &mut Vec<String>) {
    let resolved = if p.components().count() > 1 {
        Some(p.to_path_buf())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(p))
                .find(|c| c.is_file())
        })
    };
    match resolved.map(|r| (std::fs::metadata(&r), r)) {
        Some((Ok(m), _)) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {}
        Some((Ok(_), r)) => {
            problems.push(format!("{what} {} is not an executable file", r.display()))
        }
        Some((Err(e), r)) => problems.push(format!("{what} {}: {e}", r.display())),
        None => problems.push(format!("{what} `{}` is not found on PATH", p.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn builds_each_type_and_checks_settings() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "state_dir = \"{d}/state\"\n\
             [[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"{d}/ca\"\n\
             [[issuer]]\nid = \"le\"\ntype = \"acme\"\ndirectory = \"https://acme.example.test/dir\"\n\
             [[issuer]]\nid = \"corp\"\ntype = \"command\"\ncommand = [\"{d}/missing-adapter\"]\n",
            d = dir.path().display()
        );
        let cfg = Config::parse(&dir.path().join("c.toml"), &text).unwrap();
        let store = MemoryStore::new();
        let built = build_all(&cfg, &store).unwrap();
        assert_eq!(
            built.keys().cloned().collect::<Vec<_>>(),
            ["corp", "internal", "le"]
        );
        assert!(
            dir.path().join("ca/ca.key").exists(),
            "the internal CA is created on first use"
        );
        assert!(check(&cfg.issuers[0]).is_empty());
        let problems = check(&cfg.issuers[2]);
        assert!(problems[0].contains("missing-adapter"), "{problems:?}");
        std::fs::set_permissions(
            dir.path().join("ca/ca.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(check(&cfg.issuers[0])[0].contains("must be 0600"));
    }
}
