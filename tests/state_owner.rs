//! A command run as root on a state directory that belongs to the service's user, with no
//! daemon running, does its work as that user: it never leaves root's files there (which the
//! service could then neither read nor write).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use common::{Home, chown_tree, entry, text};

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

#[test]
fn root_works_as_the_owner_of_the_state_directory() {
    // Only root can hand the home to another user and act on it.
    assert!(
        rustix::process::geteuid().is_root(),
        "this test runs as root (as the test command does)"
    );
    let h = Home::new();
    let (cert, key) = h.make_cert("web", "web.example.test");
    std::fs::write(h.path("inventory/web.toml"), entry("web", &cert, &key)).unwrap();
    let listed = h.json(&["inventory", "list", "--json"], 0);
    assert_eq!(listed["certificates"][0]["name"], "web", "{listed:#}");
    // The service's account owns everything, as the shipped unit sets it up.
    chown_tree(h.dir.path(), SERVICE_UID);
    let before = std::fs::read(&cert).unwrap();

    for (args, status) in [
        (&["inventory", "list"][..], 0),
        (&["history", "web"], 0),
        (&["reissue", "web", "--why", "rotation"], 0),
        (&["audit", "verify"], 0),
        (&["scan", "--no-ca"], 0),
        (&["cases", "list"], 0),
    ] {
        let out = h.run(args);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {}", text(&out));
    }
    assert_ne!(
        std::fs::read(&cert).unwrap(),
        before,
        "the reissue did not deploy"
    );
    // Nothing under the home belongs to root: not the store, not the CA, not the new files.
    let roots: Vec<(String, u32)> = owners(h.dir.path())
        .into_iter()
        .filter(|(_, uid)| *uid != SERVICE_UID)
        .collect();
    assert!(roots.is_empty(), "left to another user: {roots:#?}");
    // The audit log names the person who ran the commands, not the account they ran as.
    let records = h.json(&["audit", "export", "--json"], 0);
    let reissued = records
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "case_opened")
        .unwrap();
    assert!(
        !reissued["actor"].as_str().unwrap().contains("uid 65534"),
        "{reissued:#}"
    );
}
