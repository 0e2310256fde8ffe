//! The systemd integration in `systemd/`: the unit passes `systemd-analyze verify` and scores
//! an exposure of at most 2.0 in `systemd-analyze security`, also with the drop-in that
//! `check-config --systemd-dropin` generates; the sysusers.d and tmpfiles.d files create the
//! account and the directories the unit expects; and the drop-in lists exactly the
//! directories the daemon writes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the unit's `ExecStart=` expects the binary.
const INSTALLED_BINARY: &str = "/usr/local/bin/certresponder";

/// Highest acceptable `systemd-analyze security` exposure.
const MAX_EXPOSURE: f64 = 2.0;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Runs a tool from Debian's `systemd` package, failing clearly when it is missing.
fn systemd_tool(tool: &str, args: &[&std::ffi::OsStr]) -> Output {
    Command::new(tool)
        .args(args)
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_COLORS", "0")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{tool}` ({e}): it comes with Debian's `systemd` package, which \
                 scripts/test installs (apt-get install systemd)"
            )
        })
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A copy of the unit in a fresh directory, with `ExecStart=` pointing at the binary under
/// test, and optionally a drop-in beside it (`certresponder.service.d/`), where
/// `systemd-analyze` reads it from.
fn unit_copy(dropin: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let unit = std::fs::read_to_string(repo("systemd/certresponder.service")).unwrap();
    assert!(
        unit.contains(&format!("\nExecStart={INSTALLED_BINARY} ")),
        "the unit's ExecStart= should run {INSTALLED_BINARY}, as the README says:\n{unit}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("certresponder.service");
    std::fs::write(
        &path,
        unit.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_certresponder")),
    )
    .unwrap();
    if let Some(dropin) = dropin {
        let d = dir.path().join("certresponder.service.d");
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("certificates.conf"), dropin).unwrap();
    }
    (dir, path)
}

/// `systemd-analyze verify`: success and not a word of output (it exits 0 on warnings).
fn assert_verifies(unit: &Path) {
    let out = systemd_tool(
        "systemd-analyze",
        &["verify".as_ref(), "--man=no".as_ref(), unit.as_os_str()],
    );
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "systemd-analyze verify {}: {}\n{}",
        unit.display(),
        out.status,
        text(&out)
    );
}

/// The overall exposure `systemd-analyze security --offline=true` gives the unit.
fn exposure(unit: &Path) -> (f64, String) {
    let out = systemd_tool(
        "systemd-analyze",
        &[
            "security".as_ref(),
            "--offline=true".as_ref(),
            "--no-pager".as_ref(),
            unit.as_os_str(),
        ],
    );
    let report = text(&out);
    assert!(out.status.success(), "systemd-analyze security: {report}");
    let marker = "Overall exposure level for certresponder.service:";
    let score = report
        .lines()
        .find_map(|l| l.split_once(marker))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{report}"));
    (score, report)
}

#[test]
fn unit_verifies_clean() {
    let (_dir, unit) = unit_copy(None);
    assert_verifies(&unit);
}

#[test]
fn unit_exposure_is_at_most_two() {
    let (_dir, unit) = unit_copy(None);
    let (score, report) = exposure(&unit);
    assert!(score <= MAX_EXPOSURE, "exposure {score}:\n{report}");
}

/// The drop-in relaxes the sandbox where a configuration needs it (a home directory, /tmp, a
/// port below 1024); even with all of that the unit must stay valid and within the limit.
#[test]
fn unit_with_a_generated_dropin_verifies_and_stays_within_the_limit() {
    let dropin = "# written by hand\n[Service]\n\
                  ReadWritePaths=-/etc/ssl/web \"-/srv/my certs\" -/srv/100%%\n\
                  ProtectHome=read-only\nPrivateTmp=no\n\
                  CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n\
                  AmbientCapabilities=CAP_NET_BIND_SERVICE\n";
    // And one check-config generates: a site in /tmp, with metrics on a port below 1024.
    let base = tempfile::tempdir_in("/tmp").unwrap();
    let site = Site::with_daemon(base.path(), "metrics_listen = \"127.0.0.1:999\"\n");
    let generated = site.dropin();
    for line in [
        "PrivateTmp=no",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    ] {
        assert!(generated.lines().any(|l| l == line), "{line}: {generated}");
    }
    for text in [dropin, generated.as_str()] {
        let (_dir, unit) = unit_copy(Some(text));
        assert_verifies(&unit);
        let (score, report) = exposure(&unit);
        assert!(
            score <= MAX_EXPOSURE,
            "exposure {score} with\n{text}\n{report}"
        );
    }
}

#[test]
fn sysusers_and_tmpfiles_make_the_account_and_directories() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let root_arg = format!("--root={}", root.path().display());
    let out = systemd_tool(
        "systemd-sysusers",
        &[
            root_arg.as_ref(),
            repo("systemd/certresponder.sysusers").as_os_str(),
        ],
    );
    assert!(out.status.success(), "systemd-sysusers: {}", text(&out));
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let fields: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("certresponder:"))
        .unwrap_or_else(|| panic!("no certresponder user in\n{passwd}"))
        .split(':')
        .collect();
    let (uid, gid): (u32, u32) = (fields[2].parse().unwrap(), fields[3].parse().unwrap());
    assert!(uid > 0 && uid < 1000, "a system account: {fields:?}");
    assert_eq!(fields[5], "/var/lib/certresponder");
    assert_eq!(fields[6], "/usr/sbin/nologin");
    let group = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    assert!(
        group
            .lines()
            .any(|l| l.starts_with(&format!("certresponder:x:{gid}:"))),
        "{group}"
    );

    let out = systemd_tool(
        "systemd-tmpfiles",
        &[
            root_arg.as_ref(),
            "--create".as_ref(),
            repo("systemd/certresponder.tmpfiles").as_os_str(),
        ],
    );
    assert!(out.status.success(), "systemd-tmpfiles: {}", text(&out));
    for (dir, mode, owner, group) in [
        ("var/lib/certresponder", 0o700, uid, gid),
        ("etc/certresponder", 0o750, 0, gid),
        ("etc/certresponder/inventory.d", 0o750, 0, gid),
    ] {
        let m = std::fs::metadata(root.path().join(dir)).unwrap();
        assert!(m.is_dir(), "{dir}");
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{dir}");
        assert_eq!((m.uid(), m.gid()), (owner, group), "{dir}");
    }
}

/// A configuration and inventory under one directory: certificates in `etc/ssl/web` and a
/// directory nested in it, an HAProxy directory with a space in its name, the internal CA
/// inside the state directory, its CRL published elsewhere, and the control socket
/// outside /run/certresponder.
struct Site {
    base: PathBuf,
}

impl Site {
    fn new(base: &Path) -> Self {
        Self::with_daemon(base, "")
    }

    /// With `daemon` added to the configuration's `[daemon]` table.
    fn with_daemon(base: &Path, daemon: &str) -> Self {
        let site = Self {
            base: base.to_path_buf(),
        };
        for d in [
            "inventory",
            "etc/ssl/web/api",
            "haproxy certs",
            "pub/crl",
            "run",
        ] {
            std::fs::create_dir_all(site.path(d)).unwrap();
        }
        std::fs::write(
            site.config(),
            format!(
                "state_dir = \"state\"\ninventory_dir = \"inventory\"\n\n\
                 [[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"state/ca\"\n\
                 crl_path = \"{}\"\n\n\
                 [daemon]\ncontrol_socket = \"run/control.sock\"\n{daemon}",
                site.path("pub/crl/internal.crl").display()
            ),
        )
        .unwrap();
        let mut inventory = String::new();
        for (name, dir) in [
            ("web", "etc/ssl/web"),
            ("api", "etc/ssl/web/api"),
            ("lb", "haproxy certs"),
        ] {
            let (chain, key) = common::issue(&format!("{name}.example.test"));
            let cert = site.path(&format!("{dir}/{name}.pem"));
            let keyp = site.path(&format!("{dir}/{name}.key"));
            std::fs::write(&cert, chain).unwrap();
            std::fs::write(&keyp, key).unwrap();
            std::fs::set_permissions(&keyp, std::fs::Permissions::from_mode(0o600)).unwrap();
            inventory.push_str(&common::entry(name, &cert, &keyp));
            // Still inside this [[cert]] table: the blank line entry() ends with does not
            // close it.
            if name == "lb" {
                inventory.push_str(&format!(
                    "combined = \"{}\"\n\n",
                    site.path("haproxy certs/lb-combined.pem").display()
                ));
            }
        }
        std::fs::write(site.path("inventory/site.toml"), inventory).unwrap();
        site
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    fn config(&self) -> PathBuf {
        self.path("certresponder.toml")
    }

    fn check_config(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_certresponder"))
            .arg("--config")
            .arg(self.config())
            .arg("check-config")
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// `check-config --systemd-dropin`, which must succeed.
    fn dropin(&self) -> String {
        let out = self.check_config(&["--systemd-dropin"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// Whether the site lies where PrivateTmp=yes would hide it (the temporary directory).
    fn in_tmp(&self) -> bool {
        ["/tmp", "/var/tmp"]
            .iter()
            .any(|t| self.base.starts_with(t))
    }
}

#[test]
fn dropin_lists_the_directories_the_daemon_writes() {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let site = Site::new(base.path());
    let dropin = site.dropin();
    let b = site.base.display();
    let expected = format!(
        "ReadWritePaths=-{b}/etc/ssl/web \"-{b}/haproxy certs\" -{b}/pub/crl -{b}/run -{b}/state"
    );
    let lines: Vec<&str> = dropin.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("ReadWritePaths="))
            .collect::<Vec<_>>(),
        [&expected.as_str()],
        "{dropin}"
    );
    assert!(
        lines[0].starts_with(
            "# /etc/systemd/system/certresponder.service.d/certificates.conf  (generated by"
        ),
        "{dropin}"
    );
    assert!(lines.contains(&"[Service]"), "{dropin}");
    // Why each directory is there: the nested `api` directory is folded into its parent.
    assert!(
        dropin.contains(&format!(
            "#   {b}/etc/ssl/web: inventory: web (cert), inventory: web (key), inventory: api (cert) and 1 more\n"
        )),
        "{dropin}"
    );
    assert!(
        dropin.contains(&format!(
            "#   {b}/haproxy certs: inventory: lb (cert), inventory: lb (key), inventory: lb (combined)\n"
        )),
        "{dropin}"
    );
    assert_eq!(
        dropin.contains("\nPrivateTmp=no\n"),
        site.in_tmp(),
        "{dropin}"
    );
    assert!(!dropin.contains("ProtectHome"), "{dropin}");
    assert!(!dropin.contains("Capabilit"), "{dropin}");

    let out = site.check_config(&["--systemd-dropin", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<String> = ["etc/ssl/web", "haproxy certs", "pub/crl", "run", "state"]
        .iter()
        .map(|p| site.path(p).display().to_string())
        .collect();
    assert_eq!(json["read_write_paths"], serde_json::json!(paths));
    assert_eq!(json["dropin"], dropin.as_str());
}

#[test]
fn dropin_in_a_temporary_directory_turns_private_tmp_off() {
    // PrivateTmp=yes would give the daemon its own empty /tmp: writing a certificate there
    // would succeed and reach no service.
    let base = tempfile::tempdir_in("/tmp").unwrap();
    let site = Site::new(base.path());
    let dropin = site.dropin();
    assert!(dropin.contains("\nPrivateTmp=no\n"), "{dropin}");
}

#[test]
fn dropin_is_refused_for_an_invalid_inventory() {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let site = Site::new(base.path());
    std::fs::remove_file(site.path("etc/ssl/web/web.key")).unwrap();
    let out = site.check_config(&["--systemd-dropin"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // Nothing a shell redirection would install as a drop-in.
    assert!(out.stdout.is_empty(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("web.key") && stderr.contains("no drop-in printed"),
        "{stderr}"
    );

    let out = site.check_config(&["--systemd-dropin", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert!(json.get("read_write_paths").is_none(), "{json}");
}
