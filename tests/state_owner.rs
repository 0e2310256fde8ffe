//! A command run as root on a state directory that belongs to the service's user, with no
//! daemon running, refuses instead of leaving root's files there (which the service could
//! then neither read nor write). As the owner, or with no other owner, it works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use common::{Home, entry, text};

/// A user id that is not root and owns nothing else here.
const SERVICE_UID: u32 = 65_534;

/// Every file and directory under `dir` with its owner.
fn owners(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            out.push((p.display().to_string(), meta.uid()));
            if meta.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

fn chown_all(dir: &Path, uid: u32) {
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid)).unwrap();
    for (p, _) in owners(dir) {
        std::os::unix::fs::lchown(&p, Some(uid), Some(uid)).unwrap();
    }
}

#[test]
fn root_refuses_a_state_directory_the_service_owns() {
    // Only root can hand the directory to another user and meet the refusal.
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs as root (as the test command does)"
    );
    let h = Home::new();
    let (cert, key) = h.make_cert("web", "web.example.test");
    std::fs::write(h.path("inventory/web.toml"), entry("web", &cert, &key)).unwrap();
    let listed = h.json(&["inventory", "list", "--json"], 0);
    assert_eq!(listed["certificates"][0]["name"], "web", "{listed:#}");
    let state = h.path("state");
    chown_all(&state, SERVICE_UID);
    let before = owners(&state);
    assert!(before.iter().all(|(_, uid)| *uid == SERVICE_UID));

    for args in [
        &["inventory", "list"][..],
        &["history", "web"],
        &["reissue", "web"],
        &["audit", "verify"],
        &["scan", "--no-ca"],
    ] {
        let out = h.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("belongs to") && err.contains("uid 65534") && err.contains("sudo -u"),
            "{args:?}: {err}"
        );
    }
    // Nothing was created or changed hands.
    assert_eq!(owners(&state), before);
    assert_eq!(std::fs::read(&cert).unwrap(), std::fs::read(&cert).unwrap());

    // Given back to root, the same commands work.
    chown_all(&state, 0);
    let out = h.run(&["history", "web"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
