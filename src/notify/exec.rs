//! Exec hook delivery: a shell command run with `sh -c` in its own process group, the
//! delivery JSON on its stdin and the notification's essentials in its environment:
//!
//! - `CERTRESPONDER_EVENT`: the event (`approval_needed`, `breaker_open`, ...)
//! - `CERTRESPONDER_DELIVERY`: the delivery id, the same on every attempt
//! - `CERTRESPONDER_CERT`, `CERTRESPONDER_CASE`, `CERTRESPONDER_OWNER`: empty when the
//!   notification has none
//!
//! Exit status 0 within the timeout means delivered. Past the timeout the whole process
//! group is killed and the attempt has failed. Its stdout is discarded; the end of its
//! stderr (private key blocks withheld) goes into the error.

use std::process::Stdio;
use std::time::Duration;

use certresponder_issuers::process::{Tail, describe, kill_group, read_tail};
use tokio::io::AsyncWriteExt;

use super::Notification;
use super::config::ExecTarget;

/// The environment given to the hook.
pub fn environment(n: &Notification, delivery_id: &str) -> Vec<(String, String)> {
    vec![
        ("CERTRESPONDER_EVENT".into(), n.event.as_str().into()),
        ("CERTRESPONDER_DELIVERY".into(), delivery_id.into()),
        (
            "CERTRESPONDER_CERT".into(),
            n.cert.clone().unwrap_or_default(),
        ),
        (
            "CERTRESPONDER_CASE".into(),
            n.case.map(|c| c.to_string()).unwrap_or_default(),
        ),
        (
            "CERTRESPONDER_OWNER".into(),
            n.owner.clone().unwrap_or_default(),
        ),
    ]
}

/// Runs the hook with `stdin` as its input. `Err` says how it failed.
pub async fn run(
    target: &ExecTarget,
    env: &[(String, String)],
    stdin: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    let mut child = certresponder_issuers::process::clean_command("sh")
        .arg("-c")
        .arg(&target.command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the exec hook: {e}"))?;
    let input = child.stdin.take();
    let stderr = child.stderr.take();
    let mut tail = Tail::default();
    let ran = tokio::time::timeout(timeout, async {
        let feed = async move {
            if let Some(mut pipe) = input {
                // A hook that does not read its input closes the pipe early: not an error.
                let _ = pipe.write_all(&stdin).await;
                let _ = pipe.shutdown().await;
            }
        };
        let ((), status, read) = tokio::join!(feed, child.wait(), read_tail(stderr, &mut tail));
        let _ = read;
        status
    })
    .await;
    let how = match ran {
        Ok(Ok(status)) if status.success() => return Ok(()),
        Ok(Ok(status)) => describe(status),
        Ok(Err(e)) => format!("cannot wait for the exec hook: {e}"),
        Err(_) => {
            kill_group(&mut child).await;
            format!("timed out after {timeout:?} and was killed")
        }
    };
    let said = tail.text();
    if said.is_empty() {
        Err(format!("exec hook: {how}"))
    } else {
        Err(format!("exec hook: {how}; stderr: {said}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotifyEvent;

    #[tokio::test]
    async fn input_environment_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.json");
        let env_out = dir.path().join("env");
        let mut n = Notification::new(NotifyEvent::Escalation, "look at this");
        n.cert = Some("www".into());
        n.case = Some(3);
        let env = environment(&n, "1-ab");
        let hook = ExecTarget {
            command: format!(
                "cat > '{}'; printf '%s|%s|%s|%s' \"$CERTRESPONDER_EVENT\" \"$CERTRESPONDER_CERT\" \
                 \"$CERTRESPONDER_CASE\" \"$CERTRESPONDER_OWNER\" > '{}'",
                out.display(),
                env_out.display()
            ),
        };
        let t = Duration::from_secs(10);
        run(&hook, &env, n.delivery_json("1-ab", 1), t)
            .await
            .unwrap();
        let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(got["summary"], "look at this");
        assert_eq!(got["id"], "1-ab");
        assert_eq!(
            std::fs::read_to_string(&env_out).unwrap(),
            "escalation|www|3|"
        );

        let failing = ExecTarget {
            command: "echo 'pager down' >&2; exit 1".into(),
        };
        let err = run(&failing, &env, b"{}".to_vec(), t).await.unwrap_err();
        assert_eq!(err, "exec hook: exit status 1; stderr: pager down");

        // A hook that ignores a large input does not hang the delivery.
        let deaf = ExecTarget {
            command: "exit 0".into(),
        };
        run(&deaf, &env, vec![b' '; 1 << 20], t).await.unwrap();
    }

    #[tokio::test]
    async fn a_hung_hook_is_killed_at_the_timeout() {
        let started = std::time::Instant::now();
        let hung = ExecTarget {
            command: "sleep 30 & sleep 30".into(),
        };
        let err = run(&hung, &[], Vec::new(), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(err.contains("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
