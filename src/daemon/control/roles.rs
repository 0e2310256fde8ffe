//! Who may do what on the control socket: `[daemon.roles]` grants each role to users and
//! groups; the daemon checks every request against the peer's account (its `SO_PEERCRED`
//! uid and gid, and that user's supplementary groups in the group database).
//!
//! ```toml
//! [daemon.roles]
//! read    = ["group:certresponder"]
//! report  = ["group:certresponder", "user:siem"]
//! approve = ["group:pki-approvers"]
//! operate = ["group:pki-ops"]
//! admin   = ["user:pki-admin"]
//! ```
//!
//! Root and the daemon's own user hold every role. Without the table, the socket's group
//! (`control_group`) holds `read` and `report`. `admin` includes every other role.

use std::collections::BTreeMap;

use crate::service::{Role, Roles};

/// A user or a group a role is granted to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum Principal {
    /// `user:NAME` (or a numeric uid).
    User(String),
    /// `group:NAME` (or a numeric gid).
    Group(String),
}

impl Principal {
    /// Reads `user:NAME` or `group:NAME`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not `user:NAME` or `group:NAME`");
        let (kind, name) = s.split_once(':').ok_or_else(bad)?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad());
        }
        match kind {
            "user" => Ok(Self::User(name.to_string())),
            "group" => Ok(Self::Group(name.to_string())),
            _ => Err(bad()),
        }
    }
}

/// `[daemon.roles]`: the principals each role is granted to.
pub type Grants = BTreeMap<Role, Vec<Principal>>;

/// Reads `[daemon.roles]`; an error names the field (`roles.operate[1]`).
pub fn parse_table(t: &toml::Table) -> Result<Grants, (String, String)> {
    let mut grants = Grants::new();
    for (key, value) in t {
        let Some(role) = Role::ALL.into_iter().find(|r| r.as_str() == key) else {
            return Err((
                format!("roles.{key}"),
                format!(
                    "`{key}` is not a role (roles: {})",
                    Role::ALL.map(Role::as_str).join(", ")
                ),
            ));
        };
        let Some(list) = value.as_array() else {
            return Err((
                format!("roles.{key}"),
                "must be a list such as [\"group:pki-ops\", \"user:alice\"]".into(),
            ));
        };
        let mut principals = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let p = v
                .as_str()
                .ok_or_else(|| "must be a string".to_string())
                .and_then(Principal::parse)
                .map_err(|e| (format!("roles.{key}[{i}]"), e))?;
            principals.push(p);
        }
        grants.insert(role, principals);
    }
    Ok(grants)
}

/// An account as the group database knows it.
struct Account {
    uid: u32,
    name: Option<String>,
    /// Its primary gid and every local group (`/etc/group`) it is a member of.
    gids: Vec<u32>,
}

/// One line of `/etc/group` (or of `getent group`): name, gid, members.
fn group_line(line: &str) -> Option<(String, u32, Vec<String>)> {
    let mut f = line.split(':');
    let name = f.next()?.to_string();
    let _password = f.next()?;
    let gid = f.next()?.trim().parse().ok()?;
    let members = f
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    Some((name, gid, members))
}

/// The local group database, `/etc/group`.
fn groups() -> Vec<(String, u32, Vec<String>)> {
    std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .filter_map(group_line)
        .collect()
}

/// A group `/etc/group` does not list, from the system's group database (`getent group
/// NAME`: directory groups). Asked only for a group a grant names, when it is not local.
fn directory_group(name: &str) -> Option<(String, u32, Vec<String>)> {
    let o = std::process::Command::new("getent")
        .args(["group", name])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(group_line)
}

impl Account {
    fn of(uid: u32, gid: u32, db: &[(String, u32, Vec<String>)]) -> Self {
        let name = crate::govern::identity::user_name(uid);
        let mut gids = vec![gid];
        if let Some(n) = &name {
            for (_, g, members) in db {
                if members.iter().any(|m| m == n) && !gids.contains(g) {
                    gids.push(*g);
                }
            }
        }
        Self { uid, name, gids }
    }

    fn is(&self, p: &Principal, db: &[(String, u32, Vec<String>)]) -> bool {
        match p {
            Principal::User(u) => {
                self.name.as_deref() == Some(u.as_str()) || u.parse() == Ok(self.uid)
            }
            Principal::Group(g) => {
                if let Some((_, gid, _)) = db.iter().find(|(name, _, _)| name == g) {
                    return self.gids.contains(gid);
                }
                if let Ok(gid) = g.parse::<u32>() {
                    return self.gids.contains(&gid);
                }
                directory_group(g).is_some_and(|(_, gid, members)| {
                    self.gids.contains(&gid)
                        || self.name.as_ref().is_some_and(|n| members.contains(n))
                })
            }
        }
    }
}

/// The roles of the account `uid` (primary group `gid`) under `grants` (`None`: the
/// default, `read` and `report` for the socket's group `control_group`). Root and the
/// daemon's own user hold every role.
pub fn roles_of(uid: u32, gid: u32, grants: Option<&Grants>, control_group: Option<&str>) -> Roles {
    if uid == 0 || uid == rustix::process::getuid().as_raw() {
        return Roles::all();
    }
    let db = groups();
    let account = Account::of(uid, gid, &db);
    let mut roles = Roles::default();
    match grants {
        Some(grants) => {
            for (role, principals) in grants {
                if principals.iter().any(|p| account.is(p, &db)) {
                    roles.0.insert(*role);
                }
            }
        }
        None => {
            if let Some(g) = control_group
                && account.is(&Principal::Group(g.to_string()), &db)
            {
                roles.0.insert(Role::Read);
                roles.0.insert(Role::Report);
            }
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_and_tables_are_read_or_refused_by_field() {
        assert_eq!(
            Principal::parse("group:pki-ops"),
            Ok(Principal::Group("pki-ops".into()))
        );
        assert_eq!(
            Principal::parse("user:1000"),
            Ok(Principal::User("1000".into()))
        );
        assert!(Principal::parse("pki-ops").is_err());
        assert!(Principal::parse("team:x").is_err());
        let t: toml::Table =
            toml::from_str("read = [\"group:adm\"]\nadmin = [\"user:root\"]").unwrap();
        let g = parse_table(&t).unwrap();
        assert_eq!(g[&Role::Read], [Principal::Group("adm".into())]);
        let t: toml::Table = toml::from_str("reed = [\"group:adm\"]").unwrap();
        assert_eq!(parse_table(&t).unwrap_err().0, "roles.reed");
        let t: toml::Table = toml::from_str("operate = [\"group:adm\", \"bob\"]").unwrap();
        assert_eq!(parse_table(&t).unwrap_err().0, "roles.operate[1]");
    }

    #[test]
    fn root_holds_every_role_and_groups_grant_theirs() {
        assert!(roles_of(0, 0, Some(&Grants::new()), None).has(Role::Admin));
        // `nobody` in its own group `nogroup` (gid 65534 on Debian), by name or number.
        let db = groups();
        let Some((nogroup, gid, _)) = db.iter().find(|(_, g, _)| *g == 65_534).cloned() else {
            return;
        };
        let mut grants = Grants::new();
        grants.insert(Role::Approve, vec![Principal::Group(nogroup.clone())]);
        grants.insert(Role::Read, vec![Principal::User("65534".into())]);
        let r = roles_of(65_534, gid, Some(&grants), None);
        assert!(r.has(Role::Approve) && r.has(Role::Read), "{r:?}");
        assert!(!r.has(Role::Operate) && !r.has(Role::Admin), "{r:?}");
        // The default: the socket's group reads and reports, nothing more.
        let r = roles_of(65_534, gid, None, Some(&nogroup));
        assert!(r.has(Role::Read) && r.has(Role::Report) && !r.has(Role::Approve));
        assert_eq!(roles_of(65_534, gid, None, None), Roles::default());
    }
}
