//! The control socket's file: its directory, a stale socket replaced (never a live one),
//! mode 0660 and the configured group.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};

use tokio::net::UnixListener;

/// Binds the control socket: creates its directory (0755) when missing, replaces a stale
/// socket left by a daemon that did not stop cleanly (never one a daemon still answers on,
/// nor a file that is not a socket), then gives it mode 0660 and the configured group.
/// Must be called within a Tokio runtime.
pub fn bind(cfg: &crate::config::DaemonConfig) -> Result<UnixListener, String> {
    let path = &cfg.control_socket;
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        certresponder_inventory::fs::create_dir_with_mode(dir, 0o755).map_err(|e| {
            format!(
                "creating the control socket's directory {}: {e}",
                dir.display()
            )
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "another daemon is running: it answers on the control socket {shown}"
                ));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("removing the stale control socket {shown}: {e}"))?;
        }
        Ok(_) => {
            return Err(format!(
                "{shown} exists and is not a socket; remove it or set `daemon.control_socket`"
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {e}")),
    }
    let gid = cfg.control_group.as_deref().map(group_id).transpose()?;
    let listener =
        UnixListener::bind(path).map_err(|e| format!("binding the control socket {shown}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("setting the mode of the control socket {shown}: {e}"))?;
    if let (Some(gid), Some(group)) = (gid, cfg.control_group.as_deref()) {
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|e| {
            format!(
                "giving the control socket {shown} to group `{group}` (`daemon.control_group`): {e}; the daemon's user must be a member of it"
            )
        })?;
    }
    Ok(listener)
}

/// Removes the control socket (when the daemon stops), if it is still a socket.
pub fn unbind(cfg: &crate::config::DaemonConfig) {
    let path = &cfg.control_socket;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
        && let Err(e) = std::fs::remove_file(path)
    {
        tracing::warn!(path = %path.display(), error = %e, "the control socket could not be removed");
    }
}

/// The id of group `name`, from the system's group database (`getent`, which sees
/// directory groups too), else from `/etc/group`.
fn group_id(name: &str) -> Result<u32, String> {
    let from = |text: &str| {
        text.lines().find_map(|l| {
            let mut f = l.split(':');
            (f.next()? == name).then_some(())?;
            let _password = f.next()?;
            f.next()?.trim().parse::<u32>().ok()
        })
    };
    let getent = std::process::Command::new("getent")
        .args(["group", name])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| from(&String::from_utf8_lossy(&o.stdout)));
    getent
        .or_else(|| {
            std::fs::read_to_string("/etc/group")
                .ok()
                .and_then(|t| from(&t))
        })
        .ok_or_else(|| {
            format!(
                "the control socket's group `{name}` (`daemon.control_group`) does not exist; create it (`groupadd --system {name}`) or name another"
            )
        })
}
