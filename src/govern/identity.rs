//! Who is acting: the identity the operating system gives the process, never a name typed
//! on the command line. Approvals and denials record it; `two_person` counts distinct uids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A Unix user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The user name from the password database, or `uid N` when it has none.
    pub name: String,
    /// The real user id.
    pub uid: u32,
}

impl Identity {
    /// The user running this process (its real uid, as `/proc/self/status` reports it).
    pub fn current() -> Result<Self, String> {
        let status = std::fs::read_to_string("/proc/self/status")
            .map_err(|e| format!("cannot read /proc/self/status to learn who is acting: {e}"))?;
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or("/proc/self/status has no readable `Uid:` line")?;
        Ok(Self {
            name: user_name(uid).unwrap_or_else(|| format!("uid {uid}")),
            uid,
        })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {})", self.name, self.uid)
    }
}

/// The name of `uid` in `/etc/passwd`.
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let wanted = uid.to_string();
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _password = f.next();
        (f.next()? == wanted).then(|| name.to_string())
    })
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
