//! Private key files as an attacker with a local account would leave them, and as an
//! unprivileged service meets them, through the real binary: a key file left 0644 and a
//! symbolic link planted at a key location never make the new key readable by others; a link
//! is refused unless the entry follows links (certbot's `live/` tree), and then the file it
//! points to is replaced in its own directory; the group of a replaced key is kept, and when
//! the service cannot keep it nothing is replaced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use common::{Home, chown_tree, text};

const NOBODY: u32 = 65534;
/// A group no account is in, by number (no `groupadd` needed).
const KEY_GROUP: u32 = 4242;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A home with one entry `svc` (cert and key under `certs/svc/`), reissued once so that its
/// certificate is the internal CA's.
fn home_with_svc(extra: &str) -> (Home, std::path::PathBuf, std::path::PathBuf) {
    let home = Home::new();
    let (cert, key) = home.make_cert("svc", "svc.example.test");
    std::fs::write(
        home.path("inventory/svc.toml"),
        format!("{}{extra}", common::entry("svc", &cert, &key)),
    )
    .unwrap();
    (home, cert, key)
}

#[test]
fn a_key_left_readable_does_not_make_the_new_key_readable() {
    let (home, _cert, key) = home_with_svc("");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = std::fs::read(&key).unwrap();
    let v = home.json(&["reissue", "svc", "--json"], 0);
    assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    assert_ne!(std::fs::read(&key).unwrap(), before);
    assert_eq!(mode(&key), 0o640, "the new key keeps no access for others");
}

#[test]
fn a_planted_link_is_refused_and_followed_only_when_asked() {
    let (home, _cert, key) = home_with_svc("");
    // The attacker's copy of the key, readable by all, and a link to it where the key goes.
    let planted = home.path("planted.pem");
    std::fs::copy(&key, &planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(&planted, &key).unwrap();
    let out = home.run(&["reissue", "svc", "--json"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("is a symbolic link") && text(&out).contains("follow_symlinks"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(&planted).unwrap(),
        std::fs::read(home.path("certs/svc/key.pem")).unwrap(),
        "the link's target was written"
    );
    assert!(
        std::fs::symlink_metadata(&key)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_live_tree_link_is_followed_to_the_file_it_points_to() {
    let home = Home::new();
    let (cert, key) = home.make_cert("svc", "svc.example.test");
    // certbot's layout: live/ holds links to the files in archive/.
    let archive = home.path("archive");
    let live = home.path("live");
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::create_dir_all(&live).unwrap();
    for (file, path) in [("cert1.pem", &cert), ("privkey1.pem", &key)] {
        std::fs::rename(path, archive.join(file)).unwrap();
    }
    std::fs::set_permissions(
        archive.join("privkey1.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::os::unix::fs::symlink("../archive/cert1.pem", live.join("cert.pem")).unwrap();
    std::os::unix::fs::symlink("../archive/privkey1.pem", live.join("privkey.pem")).unwrap();
    let entry = common::entry("svc", &live.join("cert.pem"), &live.join("privkey.pem"));
    std::fs::write(
        home.path("inventory/svc.toml"),
        format!("{}\nfollow_symlinks = true\n", entry.trim_end()),
    )
    .unwrap();
    let old_key = std::fs::read(archive.join("privkey1.pem")).unwrap();
    let v = home.json(&["reissue", "svc", "--json"], 0);
    assert_eq!(v["cases"][0]["state"], "done", "{v:#}");
    // The links are still links; the files they point to were replaced.
    for link in ["cert.pem", "privkey.pem"] {
        assert!(
            std::fs::symlink_metadata(live.join(link))
                .unwrap()
                .file_type()
                .is_symlink(),
            "{link} is no longer a link"
        );
    }
    assert_ne!(
        std::fs::read(archive.join("privkey1.pem")).unwrap(),
        old_key
    );
    assert_eq!(mode(&archive.join("privkey1.pem")), 0o640);
    let listed: Vec<String> = std::fs::read_dir(&live)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        listed.len(),
        2,
        "files were written beside the links: {listed:?}"
    );
}

/// The binary as `nobody`, with `groups` as its supplementary groups.
fn as_nobody(home: &Home, groups: &[u32], args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={NOBODY}"))
        .arg(format!("--regid={NOBODY}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        cmd.arg(format!("--groups={}", list.join(",")));
    }
    cmd.arg(env!("CARGO_BIN_EXE_certresponder"))
        .arg("--config")
        .arg(home.config())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("CERTRESPONDER_CONFIG")
        .current_dir(home.dir.path())
        .output()
        .unwrap()
}

#[test]
fn the_group_of_a_key_is_kept_or_nothing_is_replaced() {
    let (home, cert, key) = home_with_svc("");
    chown_tree(home.dir.path(), NOBODY);
    // The service reissued it once (so its bundle, key included, is in the store) ...
    let out = as_nobody(&home, &[], &["reissue", "svc", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // ... then an administrator gave the key to root and to the group the web server reads
    // it through.
    std::os::unix::fs::chown(&key, Some(0), Some(KEY_GROUP)).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap());

    // The service is not in that group: it cannot keep it, and replaces nothing.
    let out = as_nobody(&home, &[], &["reissue", "svc", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("group {KEY_GROUP}")) && text(&out).contains("usermod"),
        "{}",
        text(&out)
    );
    assert_eq!(
        (std::fs::read(&cert).unwrap(), std::fs::read(&key).unwrap()),
        before,
        "a file was replaced"
    );
    assert_eq!(std::fs::metadata(&key).unwrap().gid(), KEY_GROUP);

    // In the group, it keeps it; the file is its own now.
    let out = as_nobody(&home, &[KEY_GROUP], &["reissue", "svc", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = std::fs::metadata(&key).unwrap();
    assert_ne!(std::fs::read(&key).unwrap(), before.1);
    assert_eq!((m.uid(), m.gid(), mode(&key)), (NOBODY, KEY_GROUP, 0o640));
}

#[test]
fn hooks_and_reloads_get_a_clean_environment() {
    let (home, _cert, _key) = home_with_svc(&format!(
        "deploy_hook = \"env > {0}/hook.env\"\nreload = \"env > {0}/reload.env\"\n",
        "HOME_DIR"
    ));
    let entry = std::fs::read_to_string(home.path("inventory/svc.toml"))
        .unwrap()
        .replace("HOME_DIR", &home.dir.path().display().to_string());
    std::fs::write(home.path("inventory/svc.toml"), entry).unwrap();
    let config = std::fs::read_to_string(home.config()).unwrap();
    std::fs::write(
        home.config(),
        format!("pass_env = [\"VAULT_ADDR\"]\n{config}"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certresponder"))
        .arg("--config")
        .arg(home.config())
        .args(["reissue", "svc", "--json"])
        .env("NO_COLOR", "1")
        .env("DATABASE_PASSWORD", "hunter2")
        .env("VAULT_ADDR", "https://vault.example.test")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for file in ["hook.env", "reload.env"] {
        let env = std::fs::read_to_string(home.path(file)).unwrap();
        assert!(
            !env.contains("hunter2"),
            "{file} got the service's secrets:\n{env}"
        );
        assert!(
            env.lines().any(|l| l.starts_with("PATH=")),
            "{file}:\n{env}"
        );
        assert!(
            env.contains("VAULT_ADDR=https://vault.example.test"),
            "{file}: pass_env not passed:\n{env}"
        );
    }
    let hook = std::fs::read_to_string(home.path("hook.env")).unwrap();
    assert!(hook.contains("CERTRESPONDER_CERT_NAME=svc"), "{hook}");
}
