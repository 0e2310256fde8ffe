//! `key_file_permissions`: a file holding a private key (the key file, a combined PEM, a
//! PKCS#12 file, the PKCS#12 password file) that group or others may read, or that is owned
//! by an unexpected user: a regular (login) account, uid 1000 or above, that owns neither
//! the certificate file nor the directory. Service accounts (system uids) own keys they use;
//! a person's account should not. Nobody is known to have read it, so the finding is low
//! confidence: the policy escalates it to the owner and never revokes for it.

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
    .filter_map(|(field, path)| {
        path.and_then(|path| check(field, path).or_else(|| owner(field, path, &p.cert)))
    })
    .collect()
}

/// A key file owned by a regular (login) account that owns neither the certificate file nor
/// its directory.
fn owner(field: &str, path: &Path, cert: &Path) -> Option<Finding> {
    let uid = std::fs::metadata(path).ok()?.uid();
    let cert_uid = std::fs::metadata(cert).ok().map(|m| m.uid());
    let dir_uid = path
        .parent()
        .and_then(|d| std::fs::metadata(d).ok())
        .map(|m| m.uid());
    if uid < FIRST_REGULAR_UID || Some(uid) == cert_uid || Some(uid) == dir_uid {
        return None;
    }
    Some(Finding {
        check: "key_file_permissions",
        confidence: Confidence::Low,
        message: format!(
            "{} ({field}) holds a private key and is owned by uid {uid}, a regular account that owns neither the certificate file nor the directory (chown it to the service's user)",
            path.display()
        ),
        revocation_reason: None,
        deadline_hours: None,
        evidence: json!({
            "path": path.display().to_string(),
            "field": field,
            "uid": uid,
            "certificate_uid": cert_uid,
            "directory_uid": dir_uid,
        }),
    })
}

/// The first uid of regular (login) accounts on Debian (`FIRST_UID` in adduser.conf).
const FIRST_REGULAR_UID: u32 = 1000;

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

    #[test]
    fn a_key_owned_by_an_unexpected_user_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
        std::fs::write(&key, "x").unwrap();
        std::fs::write(&cert, "x").unwrap();
        // Same owner as the certificate and the directory: expected.
        assert!(owner("key", &key, &cert).is_none());
        // Only root can hand a file to another user; elsewhere this part cannot be shown.
        if std::fs::metadata(&key).unwrap().uid() == 0 {
            std::os::unix::fs::chown(&key, Some(65534), None).unwrap();
            std::os::unix::fs::chown(&cert, Some(65533), None).unwrap();
            std::os::unix::fs::chown(dir.path(), Some(65532), None).unwrap();
            let f = owner("key", &key, &cert).unwrap();
            assert_eq!(f.evidence["uid"], 65534);
            assert!(f.message.contains("uid 65534"), "{}", f.message);
            // Owned by the certificate's owner: expected again.
            std::os::unix::fs::chown(&cert, Some(65534), None).unwrap();
            assert!(owner("key", &key, &cert).is_none());
            // A service account (a system uid) that reads its own key: expected.
            std::os::unix::fs::chown(&cert, Some(0), None).unwrap();
            std::os::unix::fs::chown(&key, Some(105), None).unwrap();
            assert!(owner("key", &key, &cert).is_none());
        }
    }
}
