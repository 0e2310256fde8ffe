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
    /// How the person was told: by a login uid, by the account alone, or not for sure.
    #[serde(default, skip_serializing_if = "Basis::is_login")]
    pub basis: Basis,
}

/// How an [`Identity`] was established.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The login uid the kernel recorded at login, which `sudo` and `su` keep: one person,
    /// whatever account they act as.
    #[default]
    Login,
    /// No login session set a login uid (a service, a container, CI): the account stands for
    /// the person.
    Account,
    /// The person could not be told (the peer's `/proc` entry is hidden, or its process
    /// ended while it was read): the account is named, but nothing that counts people may
    /// rest on it.
    Unverified(String),
}

impl Basis {
    fn is_login(&self) -> bool {
        matches!(self, Self::Login)
    }
}

/// `/proc/self/loginuid` when no login session set it.
const UNSET_LOGINUID: u32 = u32::MAX;

impl Identity {
    /// The person running this process. That is the login uid the kernel recorded when
    /// they logged in (`/proc/self/loginuid`), which `sudo` and `su` do not change, so one
    /// person cannot pass for two by switching accounts; when no login set it (a service,
    /// a container), the real uid.
    pub fn current() -> Result<Self, String> {
        match login_uid() {
            Some(uid) => Ok(Self::from_uid(uid)),
            None => Ok(Self {
                basis: Basis::Account,
                ..Self::from_uid(real_uid()?)
            }),
        }
    }

    /// The user `uid`, named from the user database (`uid N` when it has none).
    pub fn from_uid(uid: u32) -> Self {
        Self {
            name: user_name(uid).unwrap_or_else(|| format!("uid {uid}")),
            uid,
            basis: Basis::Login,
        }
    }

    /// The account `uid` standing for a person that could not be told, and why.
    pub fn unverified(uid: u32, why: impl Into<String>) -> Self {
        Self {
            basis: Basis::Unverified(why.into()),
            ..Self::from_uid(uid)
        }
    }

    /// The person behind the control socket's peer, race-free: `pidfd` is the peer's
    /// process (`SO_PEERPIDFD`), `uid` its account (`SO_PEERCRED`). The login uid is read
    /// from `/proc/PID`, then the pidfd must show the process still alive and the account
    /// must be the process's, so that a pid reused in between cannot lend its login uid.
    /// An unset login uid falls back to the account; one that cannot be read (a hidden
    /// `/proc`) leaves the person unverified.
    pub fn of_peer(pidfd: Option<&std::os::fd::OwnedFd>, uid: u32) -> Self {
        use std::os::fd::AsRawFd as _;
        let Some(fd) = pidfd else {
            return Self::unverified(
                uid,
                "the kernel gave no pidfd for the peer (SO_PEERPIDFD needs Linux 6.5 or later)",
            );
        };
        let fdinfo = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
        let pid_of = || {
            std::fs::read_to_string(&fdinfo).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("Pid:"))
                    .and_then(|v| v.trim().parse::<i64>().ok())
            })
        };
        let Some(pid) = pid_of().filter(|p| *p > 0) else {
            return Self::unverified(uid, "the peer's process ended or is not visible");
        };
        let login = std::fs::read_to_string(format!("/proc/{pid}/loginuid"));
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
        // Still the same process: its pid cannot have been reused while it lives.
        if pid_of() != Some(pid) {
            return Self::unverified(uid, "the peer's process ended while it was identified");
        }
        let (login, status) = match (login, status) {
            (Ok(l), Ok(s)) => (l, s),
            (Err(e), _) | (_, Err(e)) => {
                return Self::unverified(
                    uid,
                    format!("its login uid cannot be read ({e}): /proc is hidden from the daemon"),
                );
            }
        };
        let uids: Vec<u32> = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        if !uids.contains(&uid) {
            return Self::unverified(
                uid,
                "the peer's process no longer runs as the account that connected",
            );
        }
        match login.trim().parse::<u32>() {
            Ok(UNSET_LOGINUID) => Self {
                basis: Basis::Account,
                ..Self::from_uid(uid)
            },
            Ok(login) => Self::from_uid(login),
            Err(_) => Self::unverified(uid, "its login uid is not a number"),
        }
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
