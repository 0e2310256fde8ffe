//! The configuration file (`/etc/certresponder/certresponder.toml` by default).
//!
//! ```toml
//! state_dir = "/var/lib/certresponder"          # sled database lives in state_dir/db
//! inventory_dir = "/etc/certresponder/inventory.d"
//! expiry_warning_days = 30
//!
//! [[issuer]]
//! id = "internal"
//! type = "internal-ca"
//! dir = "/var/lib/certresponder/ca"
//! ```
//! Relative paths are taken relative to the directory of the configuration file.

use std::path::{Path, PathBuf};

use certresponder_inventory::{ExpiryThreshold, did_you_mean};
use certresponder_issuers::config::{IssuerSpec, parse_issuer};
use toml::{Table, Value};

use crate::respond::settings::RespondConfig;

/// Where the configuration is read from when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/certresponder/certresponder.toml";
const DEFAULT_STATE_DIR: &str = "/var/lib/certresponder";
const DEFAULT_INVENTORY_DIR: &str = "/etc/certresponder/inventory.d";

const TOP_FIELDS: &[&str] = &[
    "state_dir",
    "inventory_dir",
    "expiry_warning_days",
    "checks",
    "respond",
    "policy",
    "pass_env",
    "notify",
    "issuer",
    "distrust",
    "daemon",
    "schedule",
    "ct",
    "ct_log",
];
const CHECK_FIELDS: &[&str] = &["rsa_min_bits", "allowed_curves", "expiring"];

pub use crate::signals::weak::ChecksConfig;

/// Fields of `[daemon]`.
const DAEMON_FIELDS: &[&str] = &[
    "control_socket",
    "control_group",
    "metrics_listen",
    "roles",
    "signals_per_minute",
    "deadline_check_secs",
];

/// The `[daemon]` table: where `certresponder run` listens.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DaemonConfig {
    /// The control socket (HTTP over a Unix socket, mode 0660).
    pub control_socket: PathBuf,
    /// The group given the socket, so its members may use it; `None`: the daemon's own.
    pub control_group: Option<String>,
    /// Where Prometheus metrics are served (`host:port`); `None`: not served.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `[daemon.roles]`: who may do what on the control socket; `None`: the socket's group
    /// reads and reports.
    pub roles: Option<crate::daemon::control::roles::Grants>,
    /// How many signals one identity may post to `POST /v1/signals` a minute (default 60).
    pub signals_per_minute: u32,
    /// How often the daemon looks for unfinished responses near their deadline, in seconds
    /// (default 60), whether or not a `respond` job is scheduled.
    pub deadline_check_secs: u32,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            control_socket: PathBuf::from("/run/certresponder/control.sock"),
            control_group: Some("certresponder".into()),
            metrics_listen: None,
            roles: None,
            signals_per_minute: 60,
            deadline_check_secs: 60,
        }
    }
}

/// The loaded configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    /// State directory; the sled database is `state_dir/db`.
    pub state_dir: PathBuf,
    /// The inventory directory: the source of truth for what is managed.
    pub inventory_dir: PathBuf,
    /// Certificates expiring within this many days stand out in listings.
    pub expiry_warning_days: u32,
    /// The checks' settings.
    pub checks: ChecksConfig,
    /// How sequences run (`[respond]`).
    pub respond: RespondConfig,
    /// The response policy file; `None`: the built-in default (`config/policy.toml`).
    pub policy: Option<PathBuf>,
    /// Environment variables the children (adapter commands, reload commands, deploy hooks,
    /// exec notifications, the dns-01 hook) inherit besides `PATH`, `LANG` and the
    /// documented `CERTRESPONDER_*` ones.
    pub pass_env: Vec<String>,
    /// Where notifications go (`[notify]`).
    pub notify: crate::notify::NotifyConfig,
    /// Declared issuers.
    #[serde(skip)]
    pub issuers: Vec<IssuerSpec>,
    /// Distrusted CAs (`[[distrust]]`).
    pub distrust: Vec<crate::signals::ca::distrust::Distrust>,
    /// The daemon's sockets (`[daemon]`).
    pub daemon: DaemonConfig,
    /// The daemon's jobs (`[schedule]`).
    pub schedule: crate::daemon::schedule::ScheduleConfig,
    /// Certificate Transparency monitoring (`[ct]`, `[[ct_log]]`).
    pub ct: crate::ct::config::CtConfig,
}

/// A configuration error: names the file and the field.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}{message}", .file.display(), match .field { Some(f) => format!("field `{f}`: "), None => String::new() })]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// The field, if the error is about one.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            source: None,
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            inventory_dir: PathBuf::from(DEFAULT_INVENTORY_DIR),
            expiry_warning_days: 30,
            checks: ChecksConfig::default(),
            respond: RespondConfig::default(),
            policy: None,
            pass_env: Vec::new(),
            notify: crate::notify::NotifyConfig::default(),
            issuers: Vec::new(),
            distrust: Vec::new(),
            daemon: DaemonConfig::default(),
            schedule: crate::daemon::schedule::ScheduleConfig::default(),
            ct: crate::ct::config::CtConfig::default(),
        }
    }
}

impl Config {
    /// The sled database directory.
    pub fn db_path(&self) -> PathBuf {
        self.state_dir.join("db")
    }

    /// Ids of the declared issuers.
    pub fn issuer_ids(&self) -> Vec<String> {
        self.issuers.iter().map(|i| i.id.clone()).collect()
    }

    /// What `scan` needs of the configuration.
    pub fn scan_settings(&self) -> crate::signals::scan::ScanSettings<'_> {
        crate::signals::scan::ScanSettings {
            inventory_dir: &self.inventory_dir,
            issuer_ids: self.issuer_ids(),
            checks: &self.checks,
            blocklists: self.blocklist_dir(),
            distrust: &self.distrust,
            ct: &self.ct,
        }
    }

    /// The directory of imported blocklists (`STATE_DIR/blocklists`).
    pub fn blocklist_dir(&self) -> PathBuf {
        self.state_dir.join("blocklists")
    }

    /// The configured policy: its file, or the built-in default when none is named.
    pub fn load_policy(&self) -> Result<crate::policy::Policy, crate::policy::PolicyError> {
        crate::policy::Policy::load(self.policy.as_deref())
    }

    /// Brings `store` in line with the inventory directory (see [`crate::registry::sync`]).
    pub fn sync_inventory(
        &self,
        store: &dyn crate::store::Store,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<crate::registry::SyncReport, crate::store::StoreError> {
        crate::registry::sync(store, &self.inventory_dir, &self.issuer_ids(), now)
    }

    /// Loads the configuration: from `path` when given (it must exist), else from the
    /// default location when that exists, else the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => Self::from_file(p),
            None if Path::new(DEFAULT_CONFIG).exists() => {
                Self::from_file(Path::new(DEFAULT_CONFIG))
            }
            None => Ok(Self::default()),
        }
    }

    /// Reads and validates one configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            field: None,
            message: format!("cannot read the configuration: {e}"),
        })?;
        let cfg = Self::parse(path, &text)?;
        // The children this process starts inherit what this configuration passes on.
        certresponder_issuers::process::set_pass_env(&cfg.pass_env);
        Ok(cfg)
    }

    /// Parses configuration text; `path` names the file in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let err = |field: Option<&str>, message: String| ConfigError {
            file: path.to_path_buf(),
            field: field.map(str::to_string),
            message,
        };
        let table: Table = toml::from_str(text).map_err(|e| {
            err(
                None,
                format!(
                    "not valid TOML: {}",
                    e.to_string().trim().replace('\n', " ")
                ),
            )
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        let resolve = |p: &str| {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { base.join(p) }
        };
        let unknown = |key: &str, known: &[&str], prefix: &str| {
            let hint = did_you_mean(key, known)
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_else(|| format!(" (known fields: {})", known.join(", ")));
            err(
                Some(&format!("{prefix}{key}")),
                format!("unknown field{hint}"),
            )
        };
        for key in table.keys() {
            if !TOP_FIELDS.contains(&key.as_str()) {
                return Err(unknown(key, TOP_FIELDS, ""));
            }
        }
        let string = |t: &Table, field: &str, shown: &str| -> Result<Option<String>, ConfigError> {
            match t.get(field) {
                None => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(other) => Err(err(
                    Some(shown),
                    format!("must be a non-empty string, found {other}"),
                )),
            }
        };
        let mut cfg = Self {
            source: Some(path.to_path_buf()),
            ..Self::default()
        };
        if let Some(s) = string(&table, "state_dir", "state_dir")? {
            cfg.state_dir = resolve(&s);
        }
        if let Some(s) = string(&table, "inventory_dir", "inventory_dir")? {
            cfg.inventory_dir = resolve(&s);
        }
        match table.get("expiry_warning_days") {
            None => {}
            Some(Value::Integer(n)) if (0..=3650).contains(n) => {
                cfg.expiry_warning_days = u32::try_from(*n).unwrap_or(30);
            }
            Some(other) => {
                return Err(err(
                    Some("expiry_warning_days"),
                    format!("must be a whole number of days from 0 to 3650, found {other}"),
                ));
            }
        }
        match table.get("checks") {
            None => {}
            Some(Value::Table(t)) => {
                for key in t.keys() {
                    if !CHECK_FIELDS.contains(&key.as_str()) {
                        return Err(unknown(key, CHECK_FIELDS, "checks."));
                    }
                }
                match t.get("rsa_min_bits") {
                    None => {}
                    Some(Value::Integer(n)) if (512..=16_384).contains(n) => {
                        cfg.checks.rsa_min_bits = usize::try_from(*n).unwrap_or(2048);
                    }
                    Some(other) => {
                        return Err(err(
                            Some("checks.rsa_min_bits"),
                            format!("must be a number of bits from 512 to 16384, found {other}"),
                        ));
                    }
                }
                match t.get("allowed_curves") {
                    None => {}
                    Some(Value::Array(a)) if a.iter().all(Value::is_str) && !a.is_empty() => {
                        cfg.checks.allowed_curves = a
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect();
                    }
                    Some(other) => {
                        return Err(err(
                            Some("checks.allowed_curves"),
                            format!(
                                "must be a non-empty array of curve names such as [\"P-256\", \"P-384\"], found {other}"
                            ),
                        ));
                    }
                }
                if let Some(e) = string(t, "expiring", "checks.expiring")? {
                    cfg.checks.expiring =
                        ExpiryThreshold::parse(&e).map_err(|m| err(Some("checks.expiring"), m))?;
                }
            }
            Some(_) => {
                return Err(err(
                    Some("checks"),
                    "must be a table, written [checks]".into(),
                ));
            }
        }
        match table.get("respond") {
            None => {}
            Some(Value::Table(t)) => {
                cfg.respond =
                    RespondConfig::parse(t).map_err(|(field, msg)| err(Some(&field), msg))?;
            }
            Some(_) => {
                return Err(err(
                    Some("respond"),
                    "must be a table, written [respond]".into(),
                ));
            }
        }
        if let Some(s) = string(&table, "policy", "policy")? {
            cfg.policy = Some(resolve(&s));
        }
        match table.get("pass_env") {
            None => {}
            Some(Value::Array(a)) => {
                for v in a {
                    match v.as_str() {
                        Some(name)
                            if !name.is_empty()
                                && !name.contains('=')
                                && name.bytes().all(|b| b.is_ascii_graphic()) =>
                        {
                            cfg.pass_env.push(name.to_string());
                        }
                        _ => {
                            return Err(err(
                                Some("pass_env"),
                                format!("{v} is not an environment variable name"),
                            ));
                        }
                    }
                }
            }
            Some(other) => {
                return Err(err(
                    Some("pass_env"),
                    format!(
                        "must be a list of environment variable names, found {}",
                        other.type_str()
                    ),
                ));
            }
        }
        match table.get("notify") {
            None => {}
            Some(Value::Table(t)) => {
                cfg.notify = crate::notify::NotifyConfig::parse(t, base)
                    .map_err(|(field, msg)| err(Some(&format!("notify.{field}")), msg))?;
            }
            Some(_) => {
                return Err(err(
                    Some("notify"),
                    "must be a table, written [notify]".into(),
                ));
            }
        }
        let issuers = match table.get("issuer") {
            None => &Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(err(
                    Some("issuer"),
                    "must be an array of tables, written [[issuer]]".into(),
                ));
            }
        };
        for (i, value) in issuers.iter().enumerate() {
            let Some(t) = value.as_table() else {
                return Err(err(Some(&format!("issuer[{i}]")), "must be a table".into()));
            };
            let spec = parse_issuer(t, base)
                .map_err(|e| err(Some(&format!("issuer[{i}].{}", e.field)), e.message))?;
            if cfg.issuers.iter().any(|x| x.id == spec.id) {
                return Err(err(
                    Some(&format!("issuer[{i}].id")),
                    format!("issuer id `{}` is declared twice", spec.id),
                ));
            }
            cfg.issuers.push(spec);
        }
        match table.get("daemon") {
            None => {}
            Some(Value::Table(t)) => {
                for key in t.keys() {
                    if !DAEMON_FIELDS.contains(&key.as_str()) {
                        return Err(unknown(key, DAEMON_FIELDS, "daemon."));
                    }
                }
                if let Some(s) = string(t, "control_socket", "daemon.control_socket")? {
                    cfg.daemon.control_socket = resolve(&s);
                }
                match t.get("control_group") {
                    None => {}
                    Some(Value::String(g)) if g.is_empty() => cfg.daemon.control_group = None,
                    Some(Value::String(g)) => cfg.daemon.control_group = Some(g.clone()),
                    Some(other) => {
                        return Err(err(
                            Some("daemon.control_group"),
                            format!(
                                "must be a group name (\"\" for the daemon's own group), found {other}"
                            ),
                        ));
                    }
                }
                match t.get("roles") {
                    None => {}
                    Some(Value::Table(r)) => {
                        cfg.daemon.roles =
                            Some(crate::daemon::control::roles::parse_table(r).map_err(
                                |(field, why)| err(Some(&format!("daemon.{field}")), why),
                            )?);
                    }
                    Some(_) => {
                        return Err(err(
                            Some("daemon.roles"),
                            "must be a table, written [daemon.roles]".into(),
                        ));
                    }
                }
                match t.get("signals_per_minute") {
                    None => {}
                    Some(Value::Integer(n)) if (1..=100_000).contains(n) => {
                        cfg.daemon.signals_per_minute = u32::try_from(*n).unwrap_or(60);
                    }
                    Some(other) => {
                        return Err(err(
                            Some("daemon.signals_per_minute"),
                            format!("must be a whole number from 1 to 100000, found {other}"),
                        ));
                    }
                }
                match t.get("deadline_check_secs") {
                    None => {}
                    Some(Value::Integer(n)) if (1..=3600).contains(n) => {
                        cfg.daemon.deadline_check_secs = u32::try_from(*n).unwrap_or(60);
                    }
                    Some(other) => {
                        return Err(err(
                            Some("daemon.deadline_check_secs"),
                            format!(
                                "must be a whole number of seconds from 1 to 3600, found {other}"
                            ),
                        ));
                    }
                }
                if let Some(s) = string(t, "metrics_listen", "daemon.metrics_listen")? {
                    cfg.daemon.metrics_listen = Some(s.parse().map_err(|_| {
                        err(
                            Some("daemon.metrics_listen"),
                            format!("`{s}` is not an address and port, such as \"127.0.0.1:9464\""),
                        )
                    })?);
                }
            }
            Some(_) => {
                return Err(err(
                    Some("daemon"),
                    "must be a table, written [daemon]".into(),
                ));
            }
        }
        match table.get("schedule") {
            None => {}
            Some(Value::Table(t)) => {
                cfg.schedule = crate::daemon::schedule::parse_table(t, base)
                    .map_err(|(field, msg)| err(Some(&format!("schedule.{field}")), msg))?;
            }
            Some(_) => {
                return Err(err(
                    Some("schedule"),
                    "must be a table, written [schedule]".into(),
                ));
            }
        }
        match table.get("ct_log") {
            None => {}
            Some(Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    let Some(t) = v.as_table() else {
                        return Err(err(Some(&format!("ct_log[{i}]")), "must be a table".into()));
                    };
                    let log = crate::ct::config::parse_log(t)
                        .map_err(|(f, m)| err(Some(&format!("ct_log[{i}].{f}")), m))?;
                    if cfg.ct.logs.iter().any(|l| l.name == log.name) {
                        return Err(err(
                            Some(&format!("ct_log[{i}].name")),
                            format!("log `{}` is declared twice", log.name),
                        ));
                    }
                    cfg.ct.logs.push(log);
                }
            }
            Some(_) => {
                return Err(err(
                    Some("ct_log"),
                    "must be an array of tables, written [[ct_log]]".into(),
                ));
            }
        }
        match table.get("ct") {
            None => {}
            Some(Value::Table(t)) => {
                crate::ct::config::parse_ct(t, &mut cfg.ct)
                    .map_err(|(f, m)| err(Some(&format!("ct.{f}")), m))?;
                match t.get("log_list") {
                    None => {}
                    Some(Value::String(p)) if !p.trim().is_empty() => {
                        let file = resolve(p.trim());
                        let text = std::fs::read_to_string(&file).map_err(|e| {
                            err(
                                Some("ct.log_list"),
                                format!("cannot read {}: {e}", file.display()),
                            )
                        })?;
                        cfg.ct.listed =
                            crate::ct::loglist::parse_log_list(&text).map_err(|(field, m)| {
                                let at = if field.is_empty() {
                                    String::new()
                                } else {
                                    format!("field `{field}`: ")
                                };
                                err(Some("ct.log_list"), format!("{}: {at}{m}", file.display()))
                            })?;
                        cfg.ct.log_list = Some(file);
                    }
                    Some(other) => {
                        return Err(err(
                            Some("ct.log_list"),
                            format!("must be the path of a log list file, found {other}"),
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(err(Some("ct"), "must be a table, written [ct]".into()));
            }
        }
        let distrusts = match table.get("distrust") {
            None => &Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => {
                return Err(err(
                    Some("distrust"),
                    "must be an array of tables, written [[distrust]]".into(),
                ));
            }
        };
        for (i, value) in distrusts.iter().enumerate() {
            let Some(t) = value.as_table() else {
                return Err(err(
                    Some(&format!("distrust[{i}]")),
                    "must be a table".into(),
                ));
            };
            let d = crate::signals::ca::distrust::parse_config(t, base)
                .map_err(|(field, msg)| err(Some(&format!("distrust[{i}].{field}")), msg))?;
            if let Some(id) = &d.replace_with
                && !cfg.issuers.iter().any(|x| &x.id == id)
            {
                return Err(err(
                    Some(&format!("distrust[{i}].issuer")),
                    format!(
                        "issuer `{id}` is not declared (known: {})",
                        cfg.issuer_ids().join(", ")
                    ),
                ));
            }
            cfg.distrust.push(d);
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_in_a_section_names_the_full_field() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("open.secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = dir.path().join("certresponder.toml");
        std::fs::write(
            &file,
            "[notify.webhook]\nurl = \"https://x.example/\"\nsecret_file = \"open.secret\"\n",
        )
        .unwrap();
        let err = Config::from_file(&file).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("notify.webhook.secret_file"));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_log_list_is_read_next_to_the_configuration_and_its_errors_name_file_and_field() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("certresponder.toml");
        let key = rcgen::KeyPair::generate().unwrap();
        let der = rcgen::PublicKeyData::subject_public_key_info(&key);
        let b64 = base64::engine::general_purpose::STANDARD;
        let list = |id: &str| {
            format!(
                r#"{{"operators": [{{"name": "Op", "logs": [{{"key": "{}", "log_id": "{id}", "url": "https://l/"}}]}}]}}"#,
                b64.encode(&der)
            )
        };
        let good_id = b64.encode(sha2::Digest::finalize(
            <sha2::Sha256 as sha2::Digest>::new_with_prefix(&der),
        ));
        std::fs::write(dir.path().join("list.json"), list(&good_id)).unwrap();
        let text = "[ct]\nlog_list = \"list.json\"\n";
        let cfg = Config::parse(&cfg_path, text).unwrap();
        assert_eq!(cfg.ct.log_list, Some(dir.path().join("list.json")));
        assert_eq!(cfg.ct.listed.len(), 1);
        assert_eq!(cfg.ct.listed[0].operator, "Op");

        std::fs::write(dir.path().join("list.json"), list(&b64.encode([0u8; 32]))).unwrap();
        let e = Config::parse(&cfg_path, text).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ct.log_list"));
        assert!(e.message.contains("list.json"), "{e}");
        assert!(e.message.contains("operators[0].logs[0].log_id"), "{e}");

        let e = Config::parse(&cfg_path, "[ct]\nlog_list = \"missing.json\"\n").unwrap_err();
        assert!(e.message.starts_with("cannot read"), "{e}");
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let cfg = Config::parse(
            Path::new("/etc/cr/certresponder.toml"),
            "state_dir = \"state\"\n[[issuer]]\nid = \"internal\"\ntype = \"internal-ca\"\ndir = \"ca\"\n",
        )
        .unwrap();
        assert_eq!(cfg.state_dir, PathBuf::from("/etc/cr/state"));
        let certresponder_issuers::config::IssuerKind::InternalCa(ca) = &cfg.issuers[0].kind else {
            panic!("not an internal CA")
        };
        assert_eq!(ca.dir, PathBuf::from("/etc/cr/ca"));
        assert_eq!(ca.validity_days, 90);
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse(Path::new("c.toml"), "state_dri = \"x\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml: field `state_dri`: unknown field; did you mean `state_dir`?"
        );
        let e = Config::parse(
            Path::new("c.toml"),
            "[[issuer]]\nid = \"a\"\ntype = \"acmee\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("issuer[0].type"), "{e}");
        assert!(e.to_string().contains("did you mean `acme`"), "{e}");
        let e = Config::parse(Path::new("c.toml"), "expiry_warning_days = -1\n").unwrap_err();
        assert!(e.to_string().contains("expiry_warning_days"), "{e}");
    }

    #[test]
    fn distrust_tables() {
        let text = "[[issuer]]\nid = \"le\"\ntype = \"internal-ca\"\ndir = \"ca\"\n[[distrust]]\nca = \"Entrust Root CA - G2\"\nissued_after = 2024-11-12\nissuer = \"le\"\n";
        let cfg = Config::parse(Path::new("c.toml"), text).unwrap();
        assert_eq!(cfg.distrust.len(), 1);
        assert_eq!(cfg.distrust[0].replace_with.as_deref(), Some("le"));
        assert_eq!(cfg.distrust[0].deadline_hours, 24);
        let e = Config::parse(
            Path::new("c.toml"),
            &text.replace("issuer = \"le\"\n", "issuer = \"lee\"\n"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("distrust[0].issuer"), "{e}");
        let e = Config::parse(Path::new("c.toml"), "[[distrust]]\nca = \"spki:12\"\n").unwrap_err();
        assert!(e.to_string().contains("distrust[0].ca"), "{e}");
        let e = Config::parse(Path::new("c.toml"), "distrust = 3\n").unwrap_err();
        assert!(e.to_string().contains("[[distrust]]"), "{e}");
    }
}
