//! Who is acting: the identity the operating system gives the process, never a name typed
//! on the command line. Approvals and denials record it; `two_person` counts distinct uids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Unix user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user name from the user database, or `uid N` when it has none.
    pub name: String,
    /// The user id that identifies the person: the login uid (see [`Identity::current`]).
    pub uid: u32,
}

/// `/proc/self/loginuid` when no login session set it.
const UNSET_LOGINUID: u32 = u32::MAX;

impl Identity {
    /// The person running this process. That is the login uid the kernel recorded when
    /// they logged in (`/proc/self/loginuid`), which `sudo` and `su` do not change, so one
    /// person cannot pass for two by switching accounts; when no login set it (a service,
    /// a container), the real uid.
    pub fn current() -> Result<Self, String> {
        let uid = login_uid().map_or_else(real_uid, Ok)?;
        Ok(Self::from_uid(uid))
    }

    /// The user `uid`, named from the user database (`uid N` when it has none).
    pub fn from_uid(uid: u32) -> Self {
        Self {
            name: user_name(uid).unwrap_or_else(|| format!("uid {uid}")),
            uid,
        }
    }

    /// The person behind another process, as the control socket sees its peer: the login
    /// uid the kernel recorded for process `pid` (as [`Identity::current`] uses for this
    /// one, so `sudo` does not make one person two), else `uid`, the process's user from
    /// the socket's peer credentials (no `pid`, no login session, or `/proc` hidden).
    pub fn of_process(pid: Option<i32>, uid: u32) -> Self {
        let login = pid
            .filter(|p| *p > 0)
            .and_then(|p| read_login_uid(&format!("/proc/{p}/loginuid")));
        Self::from_uid(login.unwrap_or(uid))
    }
}

fn login_uid() -> Option<u32> {
    read_login_uid("/proc/self/loginuid")
}

fn read_login_uid(path: &str) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|u| *u != UNSET_LOGINUID)
}

fn real_uid() -> Result<u32, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status to learn who is acting: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| "/proc/self/status has no readable `Uid:` line".to_string())
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {})", self.name, self.uid)
    }
}

/// The name of `uid`: from `/etc/passwd`, else from the system's user database through
/// `getent` (directory users: LDAP, SSSD).
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let wanted = uid.to_string();
    let from = |passwd: &str| {
        passwd.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _password = f.next();
            (f.next()? == wanted).then(|| name.to_string())
        })
    };
    if let Some(name) = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| from(&p))
    {
        return Some(name);
    }
    let out = std::process::Command::new("getent")
        .args(["passwd", &wanted])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| from(&String::from_utf8_lossy(&out.stdout)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_user_is_known() {
        let me = Identity::current().unwrap();
        assert!(!me.name.is_empty());
        assert_eq!(me.to_string(), format!("{} (uid {})", me.name, me.uid));
    }
}
