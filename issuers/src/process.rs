//! Running child processes (adapter commands, reload commands, deploy hooks): killing a
//! command's whole process group on timeout, keeping the end of its stderr short and free of
//! private keys, and saying in words how it ended.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Child;

/// What every child (adapter commands, reload commands, deploy hooks, exec notifications,
/// the dns-01 hook) inherits from the service's environment: these names, the variables the
/// responder documents for each (`CERTRESPONDER_*`, set by the caller), and the names the
/// configuration lists in `pass_env`. Nothing else: tokens and credentials in the service's
/// environment stay there.
pub const INHERITED: &[&str] = &["PATH", "LANG"];

/// The names the configuration passes on (`pass_env`), set once the configuration is read.
static PASS_ENV: std::sync::RwLock<Vec<String>> = std::sync::RwLock::new(Vec::new());

/// Sets the variable names every child inherits besides [`INHERITED`] (the configuration's
/// `pass_env`; a reload of the configuration sets them again).
pub fn set_pass_env(names: &[String]) {
    if let Ok(mut v) = PASS_ENV.write() {
        *v = names.to_vec();
    }
}

/// Clears `cmd`'s environment and gives it only what [`INHERITED`] and `pass_env` name, as
/// this process has them.
fn clean_env(cmd: &mut tokio::process::Command) {
    cmd.env_clear();
    let passed = PASS_ENV.read().map(|v| v.clone()).unwrap_or_default();
    for name in INHERITED
        .iter()
        .copied()
        .chain(passed.iter().map(String::as_str))
    {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
}

/// A command for `program` in a clean environment ([`clean_env`]).
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    clean_env(&mut cmd);
    cmd
}

/// How much of a command's stderr is kept: the last 4 KiB.
pub const STDERR_LIMIT: usize = 4096;

/// Kills a child that leads its own process group (spawned with `process_group(0)`), and
/// everything it started, then reaps it.
pub async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        // The command leads its own process group (pgid = its pid). The group id cannot be
        // reused before the child is reaped below, so this reaches only what it started.
        // `kill(1)` does it without unsafe code; should it be missing, the child is still
        // killed below.
        let _ = tokio::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    // SIGKILL to the child itself and wait for it; an error means it is already gone.
    let _ = child.kill().await;
}

/// Reads to the end, keeping the last [`STDERR_LIMIT`] bytes.
pub async fn read_tail<R: AsyncRead + Unpin>(reader: Option<R>, tail: &mut Tail) -> io::Result<()> {
    let Some(mut reader) = reader else {
        return Ok(());
    };
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        tail.push(&chunk[..n]);
    }
}

/// The end of a stream, bounded to [`STDERR_LIMIT`] bytes.
#[derive(Debug, Default)]
pub struct Tail {
    buf: Vec<u8>,
    truncated: bool,
}

impl Tail {
    /// Appends bytes, dropping the oldest past [`STDERR_LIMIT`].
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > STDERR_LIMIT {
            let cut = self.buf.len() - STDERR_LIMIT;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    /// The kept text: trimmed, private keys withheld, `…` in front when the start was cut.
    pub fn text(&self) -> String {
        let mut start = 0;
        if self.truncated {
            // Do not begin in the middle of a UTF-8 sequence.
            while self.buf.get(start).is_some_and(|b| b & 0xc0 == 0x80) {
                start += 1;
            }
        }
        let text = redact(String::from_utf8_lossy(&self.buf[start..]).trim());
        if self.truncated {
            format!("…{text}")
        } else {
            text
        }
    }
}

/// Replaces PEM private key blocks with a marker, so a careless adapter that prints a key
/// does not get it into our errors and logs.
pub fn redact(text: &str) -> String {
    if !text.contains("PRIVATE KEY") {
        return text.to_string();
    }
    const WITHHELD: &str = "[private key withheld]";
    let mut out: Vec<&str> = Vec::new();
    let mut hiding = false;
    for line in text.lines() {
        let marks_key = line.contains("PRIVATE KEY-----");
        if hiding {
            if line.contains("-----END") {
                hiding = false;
            }
        } else if marks_key && line.contains("-----BEGIN") {
            out.push(WITHHELD);
            hiding = true;
        } else if marks_key && line.contains("-----END") {
            // The start of the block was cut off: what came before may be key material.
            out.clear();
            out.push(WITHHELD);
        } else {
            out.push(line);
        }
    }
    out.join("\n")
}

/// How a process ended, in words.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// How a shell command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandOutcome {
    /// The command line, as given to `sh -c`.
    pub command: String,
    /// Its exit status, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// Whether it was killed for running past its timeout.
    pub timed_out: bool,
    /// The end of its stderr (at most [`STDERR_LIMIT`] bytes, private key blocks withheld).
    pub stderr: String,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

impl CommandOutcome {
    /// Exit status 0 within the timeout.
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit_code == Some(0)
    }

    /// How it ended, in words (`exit status 1`, `killed by signal 9`...).
    pub fn ended(&self) -> String {
        if self.timed_out {
            format!("timed out after {} ms and was killed", self.duration_ms)
        } else {
            match (self.exit_code, self.signal) {
                (Some(code), _) => format!("exit status {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => "ended without a status".into(),
            }
        }
    }

    /// One line for a person: how it ended and what it said on stderr.
    pub fn describe(&self) -> String {
        let how = self.ended();
        if self.stderr.is_empty() {
            how
        } else {
            format!("{how}; stderr: {}", self.stderr)
        }
    }
}

/// Runs `command` with `sh -c` in its own process group, stdin and stdout closed (stdout is
/// discarded), in a clean environment ([`clean_env`]) with `env` added. Past `timeout` the
/// whole group is killed. Fails only when the shell cannot be started.
pub async fn run_shell(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
) -> io::Result<CommandOutcome> {
    let mut cmd = clean_command("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    run(cmd, command, timeout).await
}

/// Runs `cmd` (made by [`clean_command`], its arguments and environment set; `described`
/// names it in the outcome) as [`run_shell`] runs its shell: its own process group, stdin
/// and stdout closed, the end of stderr kept, the whole group killed past `timeout`. Fails
/// only when the program cannot be started.
pub async fn run(
    mut cmd: tokio::process::Command,
    described: &str,
    timeout: Duration,
) -> io::Result<CommandOutcome> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take();
    let mut tail = Tail::default();
    let ran = tokio::time::timeout(timeout, async {
        let (status, read) = tokio::join!(child.wait(), read_tail(stderr, &mut tail));
        read?;
        status
    })
    .await;
    let (exit_code, signal, timed_out) = match ran {
        Ok(status) => {
            let status = status?;
            (status.code(), status.signal(), false)
        }
        Err(_) => {
            kill_group(&mut child).await;
            (None, Some(9), true)
        }
    };
    Ok(CommandOutcome {
        command: described.to_string(),
        exit_code,
        signal,
        timed_out,
        stderr: tail.text(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shell_outcomes() {
        let t = Duration::from_secs(10);
        let ok = run_shell("echo out; echo err >&2", &[], t).await.unwrap();
        assert!(ok.success());
        assert_eq!(ok.stderr, "err");
        let env = [("CR_TEST".to_string(), "v".to_string())];
        let failed = run_shell("echo \"$CR_TEST\" >&2; exit 3", &env, t)
            .await
            .unwrap();
        assert!(!failed.success());
        assert_eq!(failed.exit_code, Some(3));
        assert_eq!(failed.describe(), "exit status 3; stderr: v");
        let started = Instant::now();
        let slow = run_shell("sleep 30 & sleep 30", &[], Duration::from_millis(200))
            .await
            .unwrap();
        assert!(slow.timed_out && !slow.success());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
