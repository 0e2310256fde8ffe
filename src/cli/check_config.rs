//! `certresponder check-config`: validates the configuration, the inventory, every issuer's
//! settings and the response policy together, without contacting a CA or changing anything.
//!
//! With `--systemd-dropin` it prints, once everything is valid, the drop-in for
//! `certresponder.service` (`systemd/`) that makes the directories the daemon writes
//! writable under `ProtectSystem=strict`; see `Dropin`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use certresponder_inventory::{LoadOptions, ManagedCert, load_dir};
use certresponder_issuers::config::{Challenge, IssuerKind};
use serde_json::json;

use super::{CliError, load_config};
use crate::config::Config;

pub(crate) fn run(
    config: Option<&Path>,
    json: bool,
    systemd_dropin: bool,
) -> Result<ExitCode, CliError> {
    let cfg = load_config(config)?;
    let mut problems: Vec<String> = Vec::new();
    let inventory = if cfg.inventory_dir.is_dir() {
        let report = load_dir(
            &cfg.inventory_dir,
            &LoadOptions {
                check_files: true,
                known_issuers: Some(cfg.issuer_ids()),
            },
        );
        problems.extend(report.errors.iter().map(ToString::to_string));
        Some(report)
    } else {
        problems.push(format!(
            "{}: the inventory directory does not exist",
            cfg.inventory_dir.display()
        ));
        None
    };
    let mut issuers = Vec::new();
    for spec in &cfg.issuers {
        let found = crate::issuers::check(spec);
        problems.extend(found.iter().map(|p| format!("issuer `{}`: {p}", spec.id)));
        issuers.push((spec.id.clone(), spec.type_name(), found));
    }
    let policy = match cfg.load_policy() {
        Ok(p) => Some((p.source.clone(), p.rules.len())),
        Err(e) => {
            problems.push(format!("policy: {e}"));
            None
        }
    };
    let dropin = systemd_dropin.then(|| {
        let entries = inventory.as_ref().map_or(&[][..], |r| &r.entries[..]);
        let d = Dropin::build(&cfg, entries);
        problems.extend(d.unwritable.iter().cloned());
        d
    });
    if let Some(d) = dropin.filter(|_| problems.is_empty()) {
        if json {
            println!("{}", serde_json::to_string_pretty(&d.to_json())?);
        } else {
            print!("{}", d.render());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if systemd_dropin && !json {
        // Nothing on stdout, which is usually redirected into the drop-in file.
        for p in &problems {
            eprintln!("error: {p}");
        }
        eprintln!(
            "{} problem{} found; no drop-in printed",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(2));
    }
    let inventory = inventory.map(|r| (r.entries.len(), r.files.len()));
    let source = cfg.source.as_ref().map_or_else(
        || "(built-in defaults)".to_string(),
        |p| p.display().to_string(),
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "config": source,
                "valid": problems.is_empty(),
                "state_dir": cfg.state_dir,
                "inventory_dir": cfg.inventory_dir,
                "certificates": inventory.map(|(n, _)| n),
                "policy": policy.as_ref().map(|(src, n)| json!({"source": src, "rules": n})),
                "issuers": issuers.iter().map(|(id, ty, p)| json!({"id": id, "type": ty, "problems": p})).collect::<Vec<_>>(),
                "ct": {
                    "logs": cfg.ct.logs.iter().map(|l| &l.name).collect::<Vec<_>>(),
                    "log_list": cfg.ct.log_list,
                    "listed_logs": cfg.ct.listed.len(),
                },
                "problems": problems,
            }))?
        );
    } else {
        println!("config:     {source}");
        println!("state:      {}", cfg.state_dir.display());
        match inventory {
            Some((n, files)) => println!(
                "inventory:  {} ({n} certificate{} in {files} file{})",
                cfg.inventory_dir.display(),
                if n == 1 { "" } else { "s" },
                if files == 1 { "" } else { "s" }
            ),
            None => println!("inventory:  {} (missing)", cfg.inventory_dir.display()),
        }
        match &policy {
            Some((src, n)) => println!("policy:     {src} ({n} rules)"),
            None => println!("policy:     PROBLEMS"),
        }
        for (id, ty, found) in &issuers {
            println!(
                "issuer:     {id} ({ty}): {}",
                if found.is_empty() { "ok" } else { "PROBLEMS" }
            );
        }
        if !cfg.ct.logs.is_empty() || cfg.ct.log_list.is_some() {
            println!(
                "ct:         {} monitored log{}{}",
                cfg.ct.logs.len(),
                if cfg.ct.logs.len() == 1 { "" } else { "s" },
                cfg.ct
                    .log_list
                    .as_ref()
                    .map(|p| format!(
                        "; log list {} ({} logs, for SCT checks)",
                        p.display(),
                        cfg.ct.listed.len()
                    ))
                    .unwrap_or_default()
            );
        }
        for p in &problems {
            eprintln!("error: {p}");
        }
        println!(
            "{}",
            if problems.is_empty() {
                "configuration is valid".to_string()
            } else {
                format!(
                    "{} problem{} found",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" }
                )
            }
        );
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// Where the drop-in goes.
const DROPIN_PATH: &str = "/etc/systemd/system/certresponder.service.d/certificates.conf";

/// Directories `certresponder.service` already makes writable: its `StateDirectory=` and
/// `RuntimeDirectory=`.
const UNIT_WRITABLE: &[&str] = &["/var/lib/certresponder", "/run/certresponder"];

/// What `ProtectHome=yes` hides (systemd.exec(5)).
const HOME_DIRS: &[&str] = &["/home", "/root", "/run/user"];

/// What `PrivateTmp=yes` replaces with the service's own directories.
const TMP_DIRS: &[&str] = &["/tmp", "/var/tmp"];

/// Entry names shown per directory in the drop-in's comments before "and N more".
const NAMES_SHOWN: usize = 3;

/// The drop-in for `certresponder.service` that lets the daemon write where the
/// configuration and the inventory say, and what it must relax for that.
///
/// The daemon replaces a file by writing a temporary file in the same directory and renaming
/// it over the target, so each location's *directory* must be writable: those are listed in
/// `ReadWritePaths=`, deduplicated, sorted, nested ones folded into their parent, without the
/// unit's own state and runtime directories. Each has a `-` prefix, so that a directory
/// that has gone missing fails that deployment (reported like any other) instead of
/// stopping the whole daemon from starting.
#[derive(Debug, Default)]
struct Dropin {
    /// Directories to make writable, with what needs each (`inventory: web (key)`).
    read_write: BTreeMap<PathBuf, Vec<String>>,
    /// Paths under `/home`, `/root` or `/run/user`: `ProtectHome=read-only` instead of `yes`.
    home: Vec<PathBuf>,
    /// Paths under `/tmp` or `/var/tmp`: `PrivateTmp=no`, or the daemon would write to its
    /// own private copies that nothing else reads.
    tmp: Vec<PathBuf>,
    /// Listeners on ports below 1024, with what they are: they need `CAP_NET_BIND_SERVICE`.
    low_ports: Vec<(String, SocketAddr)>,
    /// Paths that cannot be written in a unit file (control characters, not UTF-8).
    unwritable: Vec<String>,
}

impl Dropin {
    /// Collects what the daemon writes and reads for `cfg` and the inventory `entries`.
    fn build(cfg: &Config, entries: &[ManagedCert]) -> Self {
        let mut d = Self::default();
        for e in entries {
            let p = &e.paths;
            let files = [
                ("cert", Some(&p.cert)),
                ("key", p.key.as_ref()),
                ("chain", p.chain.as_ref()),
                ("fullchain", p.fullchain.as_ref()),
                ("combined", p.combined.as_ref()),
                ("pkcs12", p.pkcs12.as_ref()),
            ];
            for (field, file) in files {
                if let Some(file) = file {
                    d.write_beside(file, format!("inventory: {} ({field})", e.name));
                }
            }
            if let Some(f) = &p.pkcs12_password_file {
                d.read(f);
            }
        }
        for spec in &cfg.issuers {
            match &spec.kind {
                IssuerKind::InternalCa(c) => {
                    d.write_dir(&c.dir, format!("issuer {}: dir", spec.id));
                    d.write_beside(&c.crl_path, format!("issuer {}: crl_path", spec.id));
                }
                IssuerKind::Acme(a) => {
                    let account = a
                        .account_file
                        .clone()
                        .unwrap_or_else(|| crate::issuers::default_account_file(cfg, &spec.id));
                    d.write_beside(&account, format!("issuer {}: account_file", spec.id));
                    match &a.challenge {
                        Challenge::Http01Webroot(root) => {
                            d.write_dir(root, format!("issuer {}: http01_webroot", spec.id));
                        }
                        Challenge::Http01Listen(addr) => {
                            d.listen(format!("issuer {}: http01_listen", spec.id), *addr);
                        }
                        Challenge::Dns01Hook(_) => {}
                    }
                    for f in a.trust_root.iter().chain(a.eab.as_ref().map(|(_, f)| f)) {
                        d.read(f);
                    }
                }
                // A command issuer's program writes where it likes; it is its own business.
                _ => {}
            }
        }
        d.write_dir(&cfg.state_dir, "state_dir".into());
        if let Some(parent) = cfg.daemon.control_socket.parent() {
            d.write_dir(parent, "daemon.control_socket".into());
        }
        if let Some(addr) = cfg.daemon.metrics_listen {
            d.listen("daemon.metrics_listen".into(), addr);
        }
        d.read(&cfg.inventory_dir);
        if let Some(source) = &cfg.source {
            d.read(source);
        }
        if let Some(policy) = &cfg.policy {
            d.read(policy);
        }
        for p in &cfg.schedule.exposure_paths {
            d.read(p);
        }
        d.fold_nested();
        d
    }

    /// Records that `file` is replaced through a temporary file in its directory.
    fn write_beside(&mut self, file: &Path, why: String) {
        if let Some(dir) = normalize(file).parent() {
            self.write_dir(dir, why);
        }
    }

    /// Records that files are created in `dir`.
    fn write_dir(&mut self, dir: &Path, why: String) {
        let dir = normalize(dir);
        self.read(&dir);
        if UNIT_WRITABLE.iter().any(|w| dir.starts_with(w)) {
            return;
        }
        if let Err(e) = escape(&dir) {
            self.unwritable.push(format!("systemd drop-in: {why}: {e}"));
            return;
        }
        let whys = self.read_write.entry(dir).or_default();
        if !whys.contains(&why) {
            whys.push(why);
        }
    }

    /// Records that `path` is read: it must not be hidden by the sandbox.
    fn read(&mut self, path: &Path) {
        let path = normalize(path);
        if HOME_DIRS.iter().any(|h| path.starts_with(h)) && !self.home.contains(&path) {
            self.home.push(path);
        } else if TMP_DIRS.iter().any(|t| path.starts_with(t)) && !self.tmp.contains(&path) {
            self.tmp.push(path);
        }
    }

    /// Records a listening socket; only ports below 1024 matter.
    fn listen(&mut self, what: String, addr: SocketAddr) {
        if addr.port() != 0 && addr.port() < 1024 {
            self.low_ports.push((what, addr));
        }
    }

    /// Folds directories nested in another listed one into it (the map is sorted by
    /// component, so a parent comes before everything under it).
    fn fold_nested(&mut self) {
        let mut folded: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        for (dir, whys) in std::mem::take(&mut self.read_write) {
            match folded
                .iter_mut()
                .rev()
                .find(|(kept, _)| dir.starts_with(kept))
            {
                Some((_, kept_whys)) => kept_whys.extend(whys),
                None => {
                    folded.insert(dir, whys);
                }
            }
        }
        self.read_write = folded;
    }

    /// The drop-in file's text.
    fn render(&self) -> String {
        let mut out = String::new();
        // `writeln!` into a String cannot fail; the results are ignored below for that reason.
        let _ = writeln!(
            out,
            "# {DROPIN_PATH}  (generated by certresponder check-config --systemd-dropin)"
        );
        if self.read_write.is_empty() {
            out.push_str(
                "# Everything certresponder writes is in its StateDirectory= and RuntimeDirectory=.\n",
            );
        } else {
            out.push_str("# Directories certresponder writes, and what needs each:\n");
            for (dir, whys) in &self.read_write {
                let _ = writeln!(out, "#   {}: {}", dir.display(), summarize(whys));
            }
        }
        out.push_str("[Service]\n");
        if !self.read_write.is_empty() {
            let words: Vec<String> = self
                .read_write
                .keys()
                // Every key was checked by `escape` when it was recorded.
                .filter_map(|d| escape(d).ok())
                .collect();
            let _ = writeln!(out, "ReadWritePaths={}", words.join(" "));
        }
        if !self.home.is_empty() {
            let _ = writeln!(
                out,
                "# {} under /home, /root or /run/user, which ProtectHome=yes would hide.",
                show_paths(&self.home)
            );
            out.push_str("ProtectHome=read-only\n");
        }
        if !self.tmp.is_empty() {
            let _ = writeln!(
                out,
                "# {} under /tmp or /var/tmp, which PrivateTmp=yes would replace with the\n\
                 # service's own (move them elsewhere to keep PrivateTmp=yes).",
                show_paths(&self.tmp)
            );
            out.push_str("PrivateTmp=no\n");
        }
        if !self.low_ports.is_empty() {
            for (what, addr) in &self.low_ports {
                let _ = writeln!(out, "# {what} {addr} is a port below 1024.");
            }
            out.push_str("CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n");
            out.push_str("AmbientCapabilities=CAP_NET_BIND_SERVICE\n");
        }
        out
    }

    /// The `--json` form.
    fn to_json(&self) -> serde_json::Value {
        json!({
            "path": DROPIN_PATH,
            "read_write_paths": self.read_write.keys().collect::<Vec<_>>(),
            "protect_home_read_only": self.home,
            "private_tmp_off": self.tmp,
            "net_bind_service": self.low_ports.iter().map(|(what, addr)| json!({"what": what, "listen": addr})).collect::<Vec<_>>(),
            "dropin": self.render(),
        })
    }
}

/// `path` made absolute (from the working directory, when the configuration was named by a
/// relative path), without `.` components and with `..` applied, as systemd simplifies it.
fn normalize(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// One `ReadWritePaths=` word for `dir`: `-` (a missing directory is not an error) and the
/// path, `%` doubled (a specifier otherwise), and in double quotes with `\` and `"`
/// backslash-escaped when it holds a space, a quote or a backslash. systemd unquotes these
/// words without C escapes, so control characters cannot be written at all.
fn escape(dir: &Path) -> Result<String, String> {
    let Some(s) = dir.to_str() else {
        return Err(format!(
            "{} is not UTF-8, which a unit file cannot name",
            dir.display()
        ));
    };
    if s.chars().any(char::is_control) {
        return Err(format!(
            "{s:?} holds a control character, which a unit file cannot name"
        ));
    }
    let word = format!("-{}", s.replace('%', "%%"));
    if word
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'))
    {
        Ok(format!(
            "\"{}\"",
            word.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    } else {
        Ok(word)
    }
}

/// `whys` for a comment: the first few, then how many more.
fn summarize(whys: &[String]) -> String {
    let mut shown = whys
        .iter()
        .take(NAMES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if whys.len() > NAMES_SHOWN {
        let _ = write!(shown, " and {} more", whys.len() - NAMES_SHOWN);
    }
    shown
}

/// Paths for a comment: the first few, then how many more.
fn show_paths(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    let shown = summarize(&names);
    if paths.len() == 1 {
        format!("{shown} is")
    } else {
        format!("{shown} are")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn escapes_words_as_systemd_reads_them() {
        assert_eq!(escape(Path::new("/etc/ssl/web")).unwrap(), "-/etc/ssl/web");
        assert_eq!(escape(Path::new("/srv/100%")).unwrap(), "-/srv/100%%");
        assert_eq!(
            escape(Path::new("/srv/my certs")).unwrap(),
            "\"-/srv/my certs\""
        );
        assert_eq!(
            escape(Path::new(r#"/srv/a"b\c'd"#)).unwrap(),
            r#""-/srv/a\"b\\c'd""#
        );
        assert!(escape(Path::new("/srv/a\nb")).is_err());
    }

    #[test]
    fn folds_nested_directories_and_skips_the_units_own() {
        let mut d = Dropin::default();
        d.write_beside(Path::new("/etc/ssl/web/a/cert.pem"), "a".into());
        d.write_beside(Path::new("/etc/ssl/web/key.pem"), "b".into());
        d.write_beside(Path::new("/etc/ssl-other/./x/../key.pem"), "c".into());
        d.write_dir(Path::new("/var/lib/certresponder/ca"), "ca".into());
        d.write_dir(Path::new("/var/lib/certresponder-old"), "old".into());
        d.fold_nested();
        let dirs: Vec<&Path> = d.read_write.keys().map(PathBuf::as_path).collect();
        assert_eq!(
            dirs,
            // Sorted by component: `ssl` before `ssl-other`.
            [
                Path::new("/etc/ssl/web"),
                Path::new("/etc/ssl-other"),
                Path::new("/var/lib/certresponder-old")
            ]
        );
        assert_eq!(d.read_write[Path::new("/etc/ssl/web")], ["b", "a"]);
    }

    #[test]
    fn relaxes_only_what_the_paths_need() {
        let mut d = Dropin::default();
        d.write_beside(Path::new("/home/web/cert.pem"), "web".into());
        d.read(Path::new("/tmp/scan"));
        d.listen("http01".into(), "0.0.0.0:80".parse().unwrap());
        d.listen("metrics".into(), "127.0.0.1:9464".parse().unwrap());
        d.fold_nested();
        let text = d.render();
        assert!(text.contains("\nReadWritePaths=-/home/web\n"), "{text}");
        assert!(text.contains("\nProtectHome=read-only\n"), "{text}");
        assert!(text.contains("\nPrivateTmp=no\n"), "{text}");
        assert!(
            text.contains("# http01 0.0.0.0:80 is a port below 1024."),
            "{text}"
        );
        assert!(!text.contains("metrics"), "{text}");
        assert!(
            text.contains("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"),
            "{text}"
        );
    }
}
