//! `key_file_permissions`: a file holding a private key (the key file, a combined PEM, a
//! PKCS#12 file, the PKCS#12 password file) that group or others may read. Nobody is known
//! to have read it, so the finding is low confidence: the policy escalates it to the owner
//! and never revokes for it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use certresponder_inventory::ManagedCert;
use serde_json::json;

use super::{Confidence, Finding};

/// One finding per key-bearing location readable by group or others.
pub fn key_file_findings(entry: &ManagedCert) -> Vec<Finding> {
    let p = &entry.paths;
    [
        ("key", p.key.as_deref()),
        ("combined", p.combined.as_deref()),
        ("pkcs12", p.pkcs12.as_deref()),
        ("pkcs12_password_file", p.pkcs12_password_file.as_deref()),
    ]
    .into_iter()
    .filter_map(|(field, path)| path.and_then(|path| check(field, path)))
    .collect()
}

fn check(field: &str, path: &Path) -> Option<Finding> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o044 == 0 {
        return None;
    }
    let who = match (mode & 0o040 != 0, mode & 0o004 != 0) {
        (true, true) => "its group and every user",
        (false, true) => "every user",
        _ => "its group",
    };
    Some(Finding {
        check: "key_file_permissions",
        confidence: Confidence::Low,
        message: format!(
            "{} ({field}) holds a private key and has mode {mode:04o}: {who} may read it (chmod 600)",
            path.display()
        ),
        revocation_reason: None,
        deadline_hours: None,
        evidence: json!({
            "path": path.display().to_string(),
            "field": field,
            "mode": format!("{mode:04o}"),
            "uid": meta.uid(),
            "gid": meta.gid(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn group_or_world_readable_key_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "x").unwrap();
        let f = |mode: u32| {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            check("key", &key)
        };
        assert!(f(0o600).is_none());
        assert!(f(0o400).is_none());
        assert!(
            f(0o620).is_none(),
            "group-writable but not readable is not a read exposure"
        );
        let found = f(0o644).unwrap();
        assert_eq!(found.confidence, Confidence::Low);
        assert!(found.message.contains("0644"), "{}", found.message);
        assert_eq!(found.evidence["mode"], "0644");
        assert!(f(0o640).unwrap().message.contains("its group"));
        assert!(check("key", &dir.path().join("missing.pem")).is_none());
    }
}
