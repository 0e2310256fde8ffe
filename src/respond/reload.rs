//! Reloading a service after its new certificate files are deployed, coalescing identical
//! reload commands requested by concurrent sequences into one run.
//!
//! A mass response can replace a thousand certificates served by one nginx; reloading it a
//! thousand times would be slow and pointless. A [`Reloader`] runs each reload command (through
//! [`run_shell`]: `sh -c`, own process group, timeout, redacted stderr tail) in batches:
//!
//! - **Every answer comes from a run that started after the request.** A sequence asks for a
//!   reload only after writing its files, and a run already in progress may have read the old
//!   ones. So a request joins the command's *pending* batch (one that has not started yet), or
//!   else opens a new pending batch. A request that arrives while a run is in progress therefore
//!   goes to the next batch.
//! - **Debounce from the first request.** A batch starts `window` after its first request (or,
//!   when the previous run of the same command is still going, as soon as that run ends),
//!   runs the command once, and hands every member the same `Arc<CommandOutcome>`.
//! - **Never two runs of one command at once.** Runs of the same command are strictly
//!   sequential. With a `window` of zero a batch starts at once, yet requests that arrive
//!   while a run is in progress (or before the batch is picked up) are still coalesced into
//!   the next run.
//! - **Different commands are independent** and may run in parallel.
//! - **Coalescing is by command text; a batch runs with the environment of its first
//!   request.** Later members' `env` is ignored, so reload commands must not depend on
//!   per-certificate data: that belongs in deploy hooks, which run once per certificate.
//! - **Failures.** A command that cannot be started is a [`ReloadError::Start`] (naming the
//!   command) for every member. A non-zero exit or a timeout (the process group is killed) is
//!   `Ok(outcome)` with `outcome.success() == false`: the caller decides what it means.
//! - **Cancellation.** Each batch is driven by its own task, not by the requesters: a
//!   requester that is dropped leaves the batch running for the others, and a batch whose
//!   every requester went away still runs (its files were written, and a reload is harmless).
//!
//! - **No run while files are half written.** Deployments of certificates that share a reload
//!   command hold [`Reloader::writing`] while they write their files; a run waits until none
//!   is writing and keeps new writers out until a moment after it ends (the service may read
//!   the files just after the command returns, as `nginx -s reload` leaves the re-reading to
//!   the master process). Otherwise a reload for one certificate could read another's new
//!   key beside its old certificate and fail.
//!
//! The reloader remembers, per distinct command text, how many runs it made ([`Reloader::runs`]);
//! commands come from configuration, so that set is small.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use certresponder_issuers::process::{CommandOutcome, run_shell};
use tokio::sync::watch;
use tokio::time::Instant;

/// Why a reload could not give an outcome. A command that ran and failed is not an error:
/// see [`CommandOutcome::success`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The shell for the command could not be started; every member of the batch gets the
    /// same underlying error.
    #[error("reload command `{command}` could not be started: {source}")]
    Start {
        /// The reload command.
        command: String,
        /// Why it could not be started.
        #[source]
        source: Arc<io::Error>,
    },
    /// The task running the batch went away before reporting (the runtime is shutting down).
    #[error("reload command `{command}` was abandoned before it reported")]
    Abandoned {
        /// The reload command.
        command: String,
    },
}

/// What a batch hands its members: the shared outcome, or the shared start error.
type BatchResult = Result<Arc<CommandOutcome>, Arc<io::Error>>;

/// Runs reload commands, coalescing identical commands requested within a window into one
/// run (see the module documentation for the exact rules). Share it as `Arc<Reloader>`.
#[derive(Debug)]
pub struct Reloader {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    window: Duration,
    timeout: Duration,
    /// Per command text. Locked only for short, non-async bookkeeping, never across a run.
    lanes: Arc<Mutex<HashMap<String, Lane>>>,
}

/// The lanes of every engine of this process: the daemon builds a new engine on each reload
/// of its configuration while cases of the old one still run, and the same command must
/// still run once for both.
static SHARED_LANES: std::sync::LazyLock<Arc<Mutex<HashMap<String, Lane>>>> =
    std::sync::LazyLock::new(Default::default);

/// How long writers stay out after a run ends, for the service to read its files.
const SETTLE: Duration = Duration::from_millis(100);

/// The state of one command.
#[derive(Debug, Default)]
struct Lane {
    /// Held shared by deployments writing files this command's service reads, and
    /// exclusively by a run.
    files: Arc<tokio::sync::RwLock<()>>,
    /// The batch that has not started yet, which new requests join.
    pending: Option<Batch>,
    /// Whether a driver task owns this lane (it is waiting for, or running, a batch).
    driving: bool,
    /// Runs started so far.
    runs: u64,
}

#[derive(Debug)]
struct Batch {
    /// When the first request came: the batch starts `window` after it.
    first_at: Instant,
    /// The environment of the first request.
    env: Vec<(String, String)>,
    /// How many requests joined (including those since cancelled).
    members: usize,
    /// `None` until the run reports.
    result: watch::Sender<Option<BatchResult>>,
}

impl Inner {
    /// Locks the lanes. The lock is never held across a panic point that could leave a lane
    /// inconsistent, so a poisoned lock's data is still sound and is used as is.
    fn lanes(&self) -> MutexGuard<'_, HashMap<String, Lane>> {
        self.lanes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Reloader {
    /// A reloader whose batches start `window` after their first request and whose runs are
    /// killed past `timeout`.
    ///
    /// Its lanes are its own; see [`Reloader::shared`] for the engines' one.
    pub fn new(window: Duration, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                window,
                timeout,
                lanes: Arc::default(),
            }),
        }
    }

    /// A reloader that coalesces with every other shared reloader of this process (the
    /// engines' reloader: one built after a configuration reload joins the old one's
    /// batches and waits for its runs).
    pub fn shared(window: Duration, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                window,
                timeout,
                lanes: Arc::clone(&SHARED_LANES),
            }),
        }
    }

    /// Runs `command` (coalesced with identical commands requested within the window) and
    /// returns the outcome of the run that started after this request.
    ///
    /// `env` is used only when this request opens a new batch. A non-zero exit or a timeout
    /// is `Ok` with `success() == false`; [`ReloadError::Start`] means the shell could not
    /// be started. Dropping the returned future does not stop the batch.
    pub async fn reload(
        &self,
        command: &str,
        env: &[(String, String)],
    ) -> Result<Arc<CommandOutcome>, ReloadError> {
        let mut receiver = {
            let mut lanes = self.inner.lanes();
            let lane = lanes.entry(command.to_string()).or_default();
            let receiver = match &mut lane.pending {
                Some(batch) => {
                    batch.members += 1;
                    tracing::debug!(command, members = batch.members, "joined pending reload");
                    batch.result.subscribe()
                }
                None => {
                    let (result, receiver) = watch::channel(None);
                    lane.pending = Some(Batch {
                        first_at: Instant::now(),
                        env: env.to_vec(),
                        members: 1,
                        result,
                    });
                    tracing::debug!(command, "opened reload batch");
                    receiver
                }
            };
            if !lane.driving {
                lane.driving = true;
                tokio::spawn(drive(Arc::clone(&self.inner), command.to_string()));
            }
            receiver
        };
        let abandoned = || ReloadError::Abandoned {
            command: command.to_string(),
        };
        let result = receiver
            .wait_for(Option::is_some)
            .await
            .map_err(|_| abandoned())?
            .clone();
        match result {
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(source)) => Err(ReloadError::Start {
                command: command.to_string(),
                source,
            }),
            None => Err(abandoned()),
        }
    }

    /// Waits until no run of `command` is in progress and returns a guard: while it is held,
    /// no run of `command` starts. Deployments hold it while writing files the command's
    /// service reads. `None`: no reload command, nothing to wait for.
    pub async fn writing(
        &self,
        command: Option<&str>,
    ) -> Option<tokio::sync::OwnedRwLockReadGuard<()>> {
        let command = command?;
        let files = {
            let mut lanes = self.inner.lanes();
            Arc::clone(&lanes.entry(command.to_string()).or_default().files)
        };
        Some(files.read_owned().await)
    }

    /// How many times `command` actually ran (runs started; a command that could not be
    /// started is not counted). For the case journal, tests and metrics.
    pub fn runs(&self, command: &str) -> u64 {
        self.inner.lanes().get(command).map_or(0, |lane| lane.runs)
    }
}

/// Drives one command's lane: runs its pending batches one after another, each no earlier
/// than `window` after its first request, and leaves when no batch is pending.
async fn drive(inner: Arc<Inner>, command: String) {
    let mut guard = DriverGuard {
        inner: &inner,
        command: &command,
        armed: true,
    };
    loop {
        // Wait for the pending batch's start time; requests keep joining meanwhile.
        let first_at = {
            let mut lanes = inner.lanes();
            let Some(lane) = lanes.get_mut(&command) else {
                // Lanes are never removed; nothing to do.
                break;
            };
            match &lane.pending {
                Some(batch) => batch.first_at,
                None => {
                    lane.driving = false;
                    break;
                }
            }
        };
        tokio::time::sleep_until(first_at + inner.window).await;
        // Close the batch: from here on, new requests open the next one.
        let batch = {
            let mut lanes = inner.lanes();
            let Some(lane) = lanes.get_mut(&command) else {
                break;
            };
            match lane.pending.take() {
                Some(batch) => batch,
                None => continue,
            }
        };
        let members = batch.members;
        let files = inner
            .lanes()
            .get(&command)
            .map(|lane| Arc::clone(&lane.files));
        // No deployment is writing while the command runs, nor just after.
        let exclusive = match files {
            Some(f) => Some(f.write_owned().await),
            None => None,
        };
        tracing::info!(command = %command, members, "running reload command");
        let ran = run_shell(&command, &batch.env, inner.timeout).await;
        if let Some(guard) = exclusive {
            tokio::spawn(async move {
                tokio::time::sleep(SETTLE).await;
                drop(guard);
            });
        }
        let result: BatchResult = match ran {
            Ok(outcome) => {
                if let Some(lane) = inner.lanes().get_mut(&command) {
                    lane.runs += 1;
                }
                if outcome.success() {
                    tracing::info!(
                        command = %command, members, outcome = %outcome.describe(),
                        "reload command finished"
                    );
                } else {
                    tracing::warn!(
                        command = %command, members, outcome = %outcome.describe(),
                        "reload command failed"
                    );
                }
                Ok(Arc::new(outcome))
            }
            Err(error) => {
                tracing::warn!(
                    command = %command, members, outcome = %error,
                    "reload command could not be started"
                );
                Err(Arc::new(error))
            }
        };
        // Members that were cancelled simply do not read it.
        batch.result.send_replace(Some(result));
    }
    guard.armed = false;
}

/// Should a driver be dropped before it finishes (its task aborted at runtime shutdown),
/// releases the lane so later requests start a new driver, and drops the pending batch so
/// its members get [`ReloadError::Abandoned`] instead of waiting forever.
struct DriverGuard<'a> {
    inner: &'a Inner,
    command: &'a str,
    armed: bool,
}

impl Drop for DriverGuard<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Some(lane) = self.inner.lanes().get_mut(self.command)
        {
            lane.driving = false;
            lane.pending = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::Path;

    const T: Duration = Duration::from_secs(10);

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `sh` quoting for a temp path.
    fn q(path: &Path) -> String {
        format!("'{}'", path.display())
    }

    async fn wait_for_line(path: &Path, line: &str) {
        let deadline = Instant::now() + T;
        while !lines(path).iter().any(|l| l == line) {
            assert!(Instant::now() < deadline, "`{line}` never appeared");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_run_while_files_are_written_and_no_writing_during_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        // The run records the state of a file pair it reads, like a service loading a
        // certificate and its key.
        let pair = dir.path().join("pair");
        let cmd = format!(
            "cat {p} >> {l}; sleep 0.3; echo end >> {l}",
            p = q(&pair),
            l = q(&log)
        );
        let reloader = Arc::new(Reloader::new(Duration::ZERO, T));
        std::fs::write(&pair, "old old\n").unwrap();
        // A deployment is half way: the run must wait for it.
        let writing = reloader.writing(Some(&cmd)).await;
        std::fs::write(&pair, "new old\n").unwrap();
        let run = {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tokio::spawn(async move { reloader.reload(&cmd, &[]).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            lines(&log).is_empty(),
            "the command ran during a deployment"
        );
        std::fs::write(&pair, "new new\n").unwrap();
        drop(writing);
        wait_for_line(&log, "new new").await;
        // A deployment that starts while the command runs waits until it has ended.
        let writer = {
            let (reloader, cmd, log) = (Arc::clone(&reloader), cmd.clone(), log.clone());
            tokio::spawn(async move {
                let _guard = reloader.writing(Some(&cmd)).await;
                lines(&log)
            })
        };
        let seen = writer.await.unwrap();
        assert_eq!(
            seen,
            ["new new", "end"],
            "a deployment wrote during the run"
        );
        assert!(run.await.unwrap().unwrap().success());
        assert_eq!(reloader.runs(&cmd), 1);
        assert!(reloader.writing(None).await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_requests_within_window_run_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runs");
        let cmd = format!("echo ran >> {}", q(&f));
        let reloader = Arc::new(Reloader::new(Duration::from_millis(200), T));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tasks.push(tokio::spawn(
                async move { reloader.reload(&cmd, &[]).await },
            ));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().unwrap());
        }
        assert_eq!(lines(&f), ["ran"]);
        assert_eq!(reloader.runs(&cmd), 1);
        assert!(outcomes[0].success());
        assert!(outcomes.iter().all(|o| Arc::ptr_eq(o, &outcomes[0])));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn request_during_a_run_gets_the_next_run_and_runs_never_overlap() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runs");
        let cmd = format!("echo start >> {f}; sleep 0.5; echo end >> {f}", f = q(&f));
        let reloader = Arc::new(Reloader::new(Duration::from_millis(50), T));
        let first = {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tokio::spawn(async move { reloader.reload(&cmd, &[]).await })
        };
        wait_for_line(&f, "start").await;
        // The first run is in progress: it may have read the old files.
        assert_eq!(lines(&f), ["start"]);
        let second = reloader.reload(&cmd, &[]).await.unwrap();
        let first = first.await.unwrap().unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(first.success() && second.success());
        // The second run started after the first ended: never two at once.
        assert_eq!(lines(&f), ["start", "end", "start", "end"]);
        assert_eq!(reloader.runs(&cmd), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn different_commands_run_independently_and_in_parallel() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runs");
        let a = format!(
            "echo a-start >> {f}; sleep 0.5; echo a-end >> {f}",
            f = q(&f)
        );
        let b = format!(
            "echo b-start >> {f}; sleep 0.5; echo b-end >> {f}",
            f = q(&f)
        );
        let reloader = Arc::new(Reloader::new(Duration::from_millis(100), T));
        let mut tasks = Vec::new();
        for i in 0..10 {
            let reloader = Arc::clone(&reloader);
            let cmd = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(
                async move { reloader.reload(&cmd, &[]).await },
            ));
        }
        for task in tasks {
            assert!(task.await.unwrap().unwrap().success());
        }
        assert_eq!(reloader.runs(&a), 1);
        assert_eq!(reloader.runs(&b), 1);
        let seen = lines(&f);
        assert_eq!(seen.len(), 4);
        // Both started before either ended.
        let pos = |l: &str| seen.iter().position(|s| s == l).unwrap();
        assert!(pos("a-start").max(pos("b-start")) < pos("a-end").min(pos("b-end")));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn failing_command_is_an_unsuccessful_outcome_for_every_member() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runs");
        let cmd = format!(
            "echo ran >> {}; echo 'nginx: bad config' >&2; exit 3",
            q(&f)
        );
        let reloader = Arc::new(Reloader::new(Duration::from_millis(100), T));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tasks.push(tokio::spawn(
                async move { reloader.reload(&cmd, &[]).await },
            ));
        }
        for task in tasks {
            let outcome = task.await.unwrap().unwrap();
            assert!(!outcome.success());
            assert_eq!(outcome.exit_code, Some(3));
            assert_eq!(outcome.stderr, "nginx: bad config");
        }
        assert_eq!(lines(&f), ["ran"]);
        assert_eq!(reloader.runs(&cmd), 1);
    }

    #[tokio::test]
    async fn timeout_kills_the_command() {
        let reloader = Reloader::new(Duration::ZERO, Duration::from_millis(200));
        let started = std::time::Instant::now();
        let outcome = reloader.reload("sleep 30 & sleep 30", &[]).await.unwrap();
        assert!(outcome.timed_out && !outcome.success());
        assert!(started.elapsed() < T);
    }

    #[tokio::test]
    async fn command_that_cannot_start_is_an_error_naming_it_for_every_member() {
        let reloader = Arc::new(Reloader::new(Duration::from_millis(50), T));
        // A NUL byte cannot be passed to `sh`: the spawn itself fails.
        let cmd = "systemctl reload nginx\0";
        let (a, b) = tokio::join!(reloader.reload(cmd, &[]), reloader.reload(cmd, &[]));
        for result in [a, b] {
            let err = result.unwrap_err();
            assert!(matches!(err, ReloadError::Start { .. }));
            assert!(err.to_string().contains("systemctl reload nginx"), "{err}");
        }
        assert_eq!(reloader.runs(cmd), 0);
        // The lane is free again afterwards.
        assert!(reloader.reload("true", &[]).await.unwrap().success());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn zero_window_still_coalesces_requests_made_during_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runs");
        let cmd = format!("echo start >> {f}; sleep 0.5; echo end >> {f}", f = q(&f));
        let reloader = Arc::new(Reloader::new(Duration::ZERO, T));
        let first = {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tokio::spawn(async move { reloader.reload(&cmd, &[]).await })
        };
        wait_for_line(&f, "start").await;
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tasks.push(tokio::spawn(
                async move { reloader.reload(&cmd, &[]).await },
            ));
        }
        let first = first.await.unwrap().unwrap();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap().unwrap());
        }
        assert!(outcomes.iter().all(|o| Arc::ptr_eq(o, &outcomes[0])));
        assert!(!Arc::ptr_eq(&first, &outcomes[0]));
        assert_eq!(lines(&f), ["start", "end", "start", "end"]);
        assert_eq!(reloader.runs(&cmd), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn cancelled_requester_does_not_stop_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runs");
        let cmd = format!("echo ran >> {}", q(&f));
        let reloader = Arc::new(Reloader::new(Duration::from_millis(200), T));
        let cancelled = {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tokio::spawn(async move { reloader.reload(&cmd, &[]).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        cancelled.abort();
        assert!(cancelled.await.unwrap_err().is_cancelled());
        let outcome = reloader.reload(&cmd, &[]).await.unwrap();
        assert!(outcome.success());
        assert_eq!(lines(&f), ["ran"]);
        assert_eq!(reloader.runs(&cmd), 1);

        // A batch whose only requester went away still runs.
        let alone = {
            let (reloader, cmd) = (Arc::clone(&reloader), cmd.clone());
            tokio::spawn(async move { reloader.reload(&cmd, &[]).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        alone.abort();
        let deadline = Instant::now() + T;
        while reloader.runs(&cmd) < 2 {
            assert!(Instant::now() < deadline, "the abandoned batch never ran");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(lines(&f), ["ran", "ran"]);
    }

    #[tokio::test]
    async fn batch_runs_with_the_env_of_its_first_request() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("runs");
        let cmd = format!("echo \"$CR_RELOAD_TEST\" >> {}", q(&f));
        let reloader = Reloader::new(Duration::from_millis(100), T);
        let env = |v: &str| vec![("CR_RELOAD_TEST".to_string(), v.to_string())];
        let (first, second) = (env("first"), env("second"));
        let (a, b) = tokio::join!(
            reloader.reload(&cmd, &first),
            reloader.reload(&cmd, &second)
        );
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
        assert_eq!(lines(&f), ["first"]);
    }
}
