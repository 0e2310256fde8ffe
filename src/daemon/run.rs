//! The daemon's main loop: start, recover, serve, schedule, reload, stop.
//!
//! - **Start.** The configuration, inventory and policy are loaded and checked; the store is
//!   opened (it is the daemon's alone while it runs); the inventory is registered; the
//!   control socket and the metrics listener are bound. Unfinished cases are handed to the
//!   runner (recovery), and then `READY=1` is sent.
//! - **Jobs** run on their `[schedule]`; after each detection job the policy acts on the
//!   signals it left open. Jobs never overlap one another.
//! - **SIGHUP** reloads the configuration, inventory and policy together: `RELOADING=1`,
//!   everything is loaded and checked beside the running one, and only if all of it is good
//!   does it replace it; otherwise the old one stays and the problem is logged. Then
//!   `READY=1`. Socket addresses are not rebound: changing them takes a restart.
//! - **SIGTERM** (or SIGINT): `STOPPING=1`, no new work is taken, running cases stop at their
//!   next step boundary (their journals say where; they resume on the next start), and the
//!   daemon exits once they have, or after [`STOP_GRACE`] at the latest.
//! - **Watchdog.** With `WatchdogSec=`, a task on the runtime sends `WATCHDOG=1` at half the
//!   interval; a stalled runtime stops the pings and systemd restarts the service.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use super::notify::{Notifier, watchdog_interval};
use super::{JobStatus, Loaded, Shared};
use crate::config::Config;
use crate::govern::Governor;
use crate::respond::Engine;
use crate::store::{SledStore, Store};

/// How long running cases get to reach a step boundary after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(20);

/// How often queued notifications are delivered.
const COURIER_EVERY: Duration = Duration::from_secs(2);

/// Why the daemon did not start (or stopped on its own).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration, inventory or policy is not valid (exit status 2).
    #[error("{0}")]
    Input(String),
    /// Anything else: the store, the sockets, the runtime (exit status 1).
    #[error("{0}")]
    Failed(String),
}

impl From<std::io::Error> for DaemonError {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(format!("setting up signal handling: {e}"))
    }
}

/// Runs the daemon until SIGTERM.
pub fn run(config: Option<&Path>) -> Result<ExitCode, DaemonError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("certresponder")
        .build()
        .map_err(|e| DaemonError::Failed(format!("starting the runtime: {e}")))?;
    rt.block_on(main_loop(config.map(Path::to_path_buf)))
}

/// Loads and checks everything a configuration brings: the inventory (every entry valid),
/// the issuers (built), the policy. Registers the inventory in the store only when all of
/// it is good.
fn load(path: Option<&Path>, store: &Arc<dyn Store + Send + Sync>) -> Result<Loaded, String> {
    let cfg = Config::load(path).map_err(|e| e.to_string())?;
    let report = certresponder_inventory::load_dir(
        &cfg.inventory_dir,
        &certresponder_inventory::LoadOptions {
            check_files: false,
            known_issuers: Some(cfg.issuer_ids()),
        },
    );
    if !report.errors.is_empty() {
        let shown: Vec<String> = report
            .errors
            .iter()
            .take(10)
            .map(ToString::to_string)
            .collect();
        return Err(format!(
            "the inventory has {} problem{}: {}",
            report.errors.len(),
            if report.errors.len() == 1 { "" } else { "s" },
            shown.join("; ")
        ));
    }
    let policy = cfg.load_policy().map_err(|e| format!("policy: {e}"))?;
    let engine = Engine::new(Arc::clone(store), cfg.clone()).map_err(|e| e.to_string())?;
    let sync = cfg
        .sync_inventory(store.as_ref(), Utc::now())
        .map_err(|e| e.to_string())?;
    for e in &sync.errors {
        tracing::warn!(problem = %e, "inventory");
    }
    Ok(Loaded {
        gov: Arc::new(Governor::new(Arc::new(engine), policy)),
        cfg,
        loaded_at: Utc::now(),
    })
}

async fn main_loop(config: Option<PathBuf>) -> Result<ExitCode, DaemonError> {
    let notifier = Arc::new(Notifier::from_env());
    let cfg = Config::load(config.as_deref()).map_err(|e| DaemonError::Input(e.to_string()))?;
    let store = SledStore::open(&cfg.db_path()).map_err(|e| {
        DaemonError::Failed(format!("{e} (is another `certresponder run` using it?)"))
    })?;
    let store: Arc<dyn Store + Send + Sync> = Arc::new(store);
    let loaded = load(config.as_deref(), &store).map_err(DaemonError::Input)?;
    let (shared, cases_rx) = Shared::new(Arc::clone(&store), loaded);
    let listener = super::control::bind(&cfg.daemon)
        .map_err(|e| DaemonError::Failed(format!("control socket: {e}")))?;
    let socket = cfg.daemon.control_socket.clone();
    tokio::spawn(super::control::serve(Arc::clone(&shared), listener));
    if let Some(addr) = cfg.daemon.metrics_listen {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| DaemonError::Failed(format!("metrics listener {addr}: {e}")))?;
        tokio::spawn(super::metrics::serve(Arc::clone(&shared), l));
        tracing::info!(%addr, "serving metrics");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let runner = tokio::spawn(runner(Arc::clone(&shared), cases_rx, stop_rx.clone()));
    // What a process killed while staging files left beside them (key material) goes first.
    let swept: usize = crate::store::current_bundles(shared.store.as_ref())
        .map(|all| {
            all.iter()
                .map(|(rec, _)| crate::respond::deploy::sweep_locations(&rec.entry))
                .sum()
        })
        .unwrap_or(0);
    if swept > 0 {
        tracing::info!(
            files = swept,
            "temporary files left by an interrupted deployment removed"
        );
    }
    // Recovery: what a crash or a stop left unfinished runs first.
    let unfinished = shared
        .loaded()
        .gov
        .engine()
        .unfinished()
        .map_err(|e| DaemonError::Failed(e.to_string()))?;
    if !unfinished.is_empty() {
        tracing::info!(cases = ?unfinished, "resuming unfinished cases");
    }
    let resumed = unfinished.len();
    shared.audit_unreadable();
    shared.run_cases(unfinished).map_err(DaemonError::Failed)?;
    let (reloaded_tx, reloaded_rx) = watch::channel(0u64);
    let scheduler = tokio::spawn(scheduler(Arc::clone(&shared), reloaded_rx));
    let courier = tokio::spawn(courier(Arc::clone(&shared)));
    let deadlines = tokio::spawn(deadline_watch(Arc::clone(&shared)));
    let watchdog = watchdog_interval().map(|every| {
        let n = Arc::clone(&notifier);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                n.watchdog();
            }
        })
    });
    let jobs = shared.loaded().cfg.schedule.jobs.len();
    notifier.ready(&format!(
        "running: {jobs} scheduled job{}, {resumed} case{} resumed",
        if jobs == 1 { "" } else { "s" },
        if resumed == 1 { "" } else { "s" }
    ));
    tracing::info!(socket = %socket.display(), jobs, resumed, "certresponder is running");

    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut generation = 0u64;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                notifier.reloading();
                let s = Arc::clone(&shared);
                let store = Arc::clone(&store);
                let path = config.clone();
                let result = tokio::task::spawn_blocking(move || {
                    let new = load(path.as_deref(), &store)?;
                    let summary = format!(
                        "{} scheduled job{}, policy {}",
                        new.cfg.schedule.jobs.len(),
                        if new.cfg.schedule.jobs.len() == 1 { "" } else { "s" },
                        new.gov.policy().source
                    );
                    let old = s.loaded();
                    if old.cfg.daemon != new.cfg.daemon {
                        tracing::warn!("[daemon] changed: the sockets are rebound only on a restart");
                    }
                    s.replace(new);
                    Ok::<String, String>(summary)
                })
                .await
                .unwrap_or_else(|e| Err(format!("the reload task failed: {e}")));
                match result {
                    Ok(summary) => {
                        generation += 1;
                        let _ = reloaded_tx.send(generation);
                        // `[respond] concurrency` may have changed.
                        shared.nudge_runner();
                        tracing::info!(%summary, "configuration reloaded");
                        notifier.ready(&format!("running (reloaded: {summary})"));
                    }
                    Err(e) => {
                        tracing::error!(problem = %e, "reload refused; the previous configuration stays in force");
                        notifier.ready(&format!("running (reload refused: {e})"));
                    }
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }

    notifier.stopping("stopping: running cases stop at their next step");
    tracing::info!("stopping");
    shared.stop();
    crate::respond::engine::request_stop();
    scheduler.abort();
    let _ = stop_tx.send(true);
    match tokio::time::timeout(STOP_GRACE, runner).await {
        Ok(_) => tracing::info!("every running case reached a checkpoint"),
        Err(_) => tracing::warn!(
            grace_secs = STOP_GRACE.as_secs(),
            "cases still in a step after the grace period; they resume from their journal"
        ),
    }
    courier.abort();
    deadlines.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    // A last delivery attempt, briefly; the rest stays queued.
    let notify_cfg = shared.loaded().cfg.notify.clone();
    let _ =
        crate::notify::deliver_until(shared.store.as_ref(), &notify_cfg, Duration::from_secs(2))
            .await;
    // The socket bound at start (a reload does not rebind).
    super::control::unbind(&cfg.daemon);
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Runs the cases handed to it, at most `[respond] concurrency` at once (as the loaded
/// configuration says at each start, so a reload resizes it), each once at a time, in the
/// order handed. Ends when stopping and every case has returned; cases still queued then
/// stay unfinished in the store and run on the next start.
async fn runner(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Vec<u64>>,
    mut stop: watch::Receiver<bool>,
) {
    // Every case queued or running.
    let mut known: HashSet<u64> = HashSet::new();
    let mut queue: VecDeque<u64> = VecDeque::new();
    // The case each running task runs.
    let mut tasks: HashMap<tokio::task::Id, u64> = HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    loop {
        if !*stop.borrow() {
            let loaded = shared.loaded();
            while set.len() < loaded.cfg.respond.concurrency.max(1)
                && let Some(id) = queue.pop_front()
            {
                let engine = Arc::clone(loaded.gov.engine());
                let task = set.spawn(async move { (id, engine.run_case(id).await) });
                tasks.insert(task.id(), id);
            }
        }
        tokio::select! {
            ids = rx.recv(), if !*stop.borrow() => {
                let Some(ids) = ids else { break };
                for id in ids {
                    if known.insert(id) {
                        queue.push_back(id);
                    }
                }
            }
            Some(done) = set.join_next_with_id() => {
                let task = match &done {
                    Ok((task, _)) => *task,
                    Err(e) => e.id(),
                };
                // A case whose task ended, however, can be handed in again.
                let id = tasks.remove(&task);
                if let Some(id) = id {
                    known.remove(&id);
                }
                // After the error (if any) is noted below, waiters look.
                let _ended = EndedOnDrop(&shared);
                match done {
                    Ok((_, (id, Ok(case)))) => {
                        shared.note_case_error(id, None);
                        tracing::info!(case = id, cert = %case.cert, state = %case.state, "case returned");
                        if case.state == crate::respond::CaseState::Running
                            && let Some(at) = case.retry_at
                        {
                            // Its revocation failed for a reason that may pass: handed in
                            // again when it is to be tried (on the next start otherwise).
                            let again = Arc::clone(&shared);
                            let wait = (at - Utc::now()).to_std().unwrap_or_default();
                            tokio::spawn(async move {
                                tokio::time::sleep(wait).await;
                                if let Err(e) = again.run_cases(vec![id]) {
                                    tracing::warn!(case = id, error = %e, "the case's revocation could not be tried again");
                                }
                            });
                        }
                    }
                    Ok((_, (id, Err(e)))) => {
                        tracing::error!(case = id, error = %e, "case could not run");
                        shared.note_case_error(id, Some(e.to_string()));
                    }
                    Err(e) => {
                        tracing::error!(case = ?id, error = %e, "a case task panicked");
                        if let Some(id) = id {
                            shared.note_case_error(id, Some(format!("its task failed: {e}")));
                        }
                    }
                }
            }
            _ = stop.changed() => {}
        }
        if *stop.borrow() && set.is_empty() {
            break;
        }
    }
}

/// Tells the waiters that a case ended when dropped: after its outcome is noted.
struct EndedOnDrop<'a>(&'a Shared);

impl Drop for EndedOnDrop<'_> {
    fn drop(&mut self) {
        self.0.case_ended();
    }
}

/// Delivers queued notifications every few seconds.
async fn courier(shared: Arc<Shared>) {
    loop {
        let cfg = shared.loaded().cfg.notify.clone();
        crate::notify::deliver_due(shared.store.as_ref(), &cfg).await;
        tokio::time::sleep(COURIER_EVERY).await;
    }
}

/// Escalates unfinished responses near their deadline on the daemon's own timer (`[daemon]
/// deadline_check_secs`), so that no schedule has to include a `respond` job for it.
async fn deadline_watch(shared: Arc<Shared>) {
    loop {
        let s = Arc::clone(&shared);
        let checked =
            tokio::task::spawn_blocking(move || s.loaded().gov.check_deadlines(Utc::now())).await;
        match checked {
            Ok(Ok(ids)) if !ids.is_empty() => {
                tracing::warn!(cases = ?ids, "cases escalated again near their deadline");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(problem = %e, "deadlines could not be checked"),
            Err(e) => tracing::warn!(problem = %e, "the deadline check's task failed"),
        }
        let every = shared.loaded().cfg.daemon.deadline_check_secs.max(1);
        tokio::time::sleep(Duration::from_secs(u64::from(every))).await;
    }
}

/// Runs the jobs on their schedules, one at a time; a reload recomputes the schedule.
async fn scheduler(shared: Arc<Shared>, mut reloaded: watch::Receiver<u64>) {
    loop {
        let loaded = shared.loaded();
        let now = Utc::now();
        let mut due: Vec<(chrono::DateTime<Utc>, String)> = Vec::new();
        if let Ok(mut jobs) = shared.jobs.lock() {
            jobs.retain(|name, _| loaded.cfg.schedule.jobs.iter().any(|j| &j.name == name));
            for j in &loaded.cfg.schedule.jobs {
                let next = j.next_after(now);
                let status = jobs
                    .entry(j.name.clone())
                    .or_insert_with(JobStatus::default);
                status.schedule.clone_from(&j.expression);
                status.next_run = next;
                if let Some(t) = next {
                    due.push((t, j.name.clone()));
                }
            }
        }
        let Some(first) = due.iter().map(|(t, _)| *t).min() else {
            // Nothing scheduled: wait for a reload that schedules something.
            if reloaded.changed().await.is_err() {
                return;
            }
            continue;
        };
        let wait = (first - now).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            changed = reloaded.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        for (_, name) in due.iter().filter(|(t, _)| *t == first) {
            if shared.stopping() {
                return;
            }
            let _ = run_job_now(&shared, name).await;
        }
    }
}

/// Runs job `name` now, after the job running (jobs never overlap), and records how it went
/// in the job's status. The scheduler runs its jobs through this, and so does the control
/// socket's `POST /v1/jobs/{job}/run`.
pub(crate) async fn run_job_now(shared: &Arc<Shared>, name: &str) -> Result<String, String> {
    let _turn = shared.job_turn().await;
    shared.job_started(name);
    tracing::info!(job = %name, "job started");
    let result = run_job(shared, name).await;
    match &result {
        Ok(s) => tracing::info!(job = %name, result = %s, "job finished"),
        Err(e) => tracing::error!(job = %name, error = %e, "job failed"),
    }
    let next = shared
        .loaded()
        .cfg
        .schedule
        .jobs
        .iter()
        .find(|j| j.name == name)
        .and_then(|j| j.next_after(Utc::now()));
    shared.job_finished(name, result.clone(), next);
    let s = Arc::clone(shared);
    let _ = tokio::task::spawn_blocking(move || s.audit_unreadable()).await;
    result
}

/// Runs one job; after a detection job, the policy acts on what is open.
pub async fn run_job(shared: &Arc<Shared>, name: &str) -> Result<String, String> {
    let s = Arc::clone(shared);
    let name = name.to_string();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let loaded = s.loaded();
        let now = Utc::now();
        let store = s.store.as_ref();
        let summary = match name.as_str() {
            "scan" => {
                let r = crate::signals::scan::scan(store, &loaded.cfg.scan_settings(), now)
                    .map_err(|e| e.to_string())?;
                format!(
                    "{} scanned: {} new, {} seen again, {} resolved",
                    r.scanned,
                    r.new.len(),
                    r.seen_again.len(),
                    r.resolved.len()
                )
            }
            "ca_check" => {
                let issuers = loaded.gov.engine().issuers.clone();
                let replaced = crate::respond::engine::awaiting_revocation(store)
                    .map_err(|e| e.to_string())?;
                let r = handle
                    .block_on(crate::signals::ca::run(store, &issuers, &replaced, now))
                    .map_err(|e| e.to_string())?;
                let confirmed = handle
                    .block_on(loaded.gov.engine().reconfirm())
                    .map_err(|e| e.to_string())?;
                for p in &r.problems {
                    tracing::warn!(cert = %p.cert, check = p.check, problem = %p.message, "CA-side check could not be made");
                }
                format!(
                    "{} checked: {} new, {} resolved, {} problems, {} renewals scheduled, {} revocations confirmed",
                    r.checked,
                    r.signals.new.len(),
                    r.signals.resolved.len(),
                    r.problems.len(),
                    r.scheduled.len(),
                    confirmed.len()
                )
            }
            "exposure_scan" => {
                let outcome = crate::signals::exposure::sources::scan(
                    &loaded.cfg.schedule.exposure_paths,
                    &crate::signals::exposure::sources::ScanOptions::default(),
                );
                let r = crate::signals::exposure::record::record(store, &outcome.found, now)
                    .map_err(|e| e.to_string())?;
                for p in &outcome.failed_repositories {
                    tracing::warn!(path = %p.path, problem = %p.reason, "repository not scanned");
                }
                format!("{} keys found, {} of inventory certificates", r.found, r.exposed.len())
            }
            "crl_publish" => publish_crls(&loaded.cfg, store)?,
            "ct_poll" => {
                let r = handle
                    .block_on(crate::ct::poll::poll(store, &loaded.cfg.ct, &loaded.cfg.notify, now))
                    .map_err(|e| e.to_string())?;
                let read: u64 = r.logs.iter().map(|l| l.entries).sum();
                let failed: Vec<&str> = r
                    .logs
                    .iter()
                    .filter(|l| l.error.is_some())
                    .map(|l| l.name.as_str())
                    .collect();
                format!(
                    "{} logs, {read} entries read, {} matches, {} new unauthorized{}",
                    r.logs.len(),
                    r.matches.len(),
                    r.new_signals.len(),
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!("; failed: {}", failed.join(", "))
                    }
                )
            }
            "respond" => {
                let again = loaded
                    .gov
                    .check_deadlines(now)
                    .map_err(|e| e.to_string())?;
                format!("{} cases escalated again near their deadline", again.len())
            }
            other => return Err(format!("unknown job `{other}`")),
        };
        if name != "crl_publish" {
            let applied = s.act().map_err(|e| e.to_string())?;
            return Ok(format!(
                "{summary}; {} started, {} waiting for approval, {} escalated",
                applied.run.len(),
                applied.waiting.len(),
                applied.escalated.len()
            ));
        }
        Ok(summary)
    })
    .await
    .map_err(|e| format!("the job's task failed: {e}"))?
}

/// Publishes a fresh CRL for every internal CA whose current one is due (within a quarter of
/// its validity of nextUpdate).
fn publish_crls(cfg: &Config, store: &dyn Store) -> Result<String, String> {
    let mut published = Vec::new();
    for spec in &cfg.issuers {
        let certresponder_issuers::config::IssuerKind::InternalCa(c) = &spec.kind else {
            continue;
        };
        if !c.dir.join("ca.pem").exists() {
            continue;
        }
        let ca = certresponder_issuers::InternalCa::open_or_create(
            &spec.id,
            c.clone(),
            store.issuer_storage(&spec.id),
        )
        .map_err(|e| format!("issuer `{}`: {e}", spec.id))?;
        if let Some(crl) = ca
            .refresh_crl_if_due(c.crl_validity / 4)
            .map_err(|e| format!("issuer `{}`: {e}", spec.id))?
        {
            published.push(format!("{} (number {})", spec.id, crl.number));
        }
    }
    Ok(if published.is_empty() {
        "no CRL was due".into()
    } else {
        format!("published: {}", published.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use certresponder_issuers::{
        CertStatus as IssuerStatus, IssueRequest, IssuedChain, Issuer, IssuerError, RenewalWindow,
        RevokeRequest,
    };

    use super::*;
    use crate::records::case::{CaseState, Trigger};
    use crate::respond::SequenceKind;
    use crate::respond::engine::tests::fixture;

    /// An issuer that counts the issuances in flight at once. Each waits (at most 5 s)
    /// until `gather` of them are in flight, so that cases allowed to run together are seen
    /// together however slowly they reach the issuer.
    struct Counting {
        inner: Arc<dyn Issuer>,
        now: AtomicUsize,
        most: AtomicUsize,
        gather: AtomicUsize,
    }

    #[async_trait]
    impl Issuer for Counting {
        fn id(&self) -> &str {
            self.inner.id()
        }
        async fn issue(&self, req: &IssueRequest) -> Result<IssuedChain, IssuerError> {
            let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(n, Ordering::SeqCst);
            let until = tokio::time::Instant::now() + Duration::from_secs(5);
            while self.now.load(Ordering::SeqCst) < self.gather.load(Ordering::SeqCst)
                && tokio::time::Instant::now() < until
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Anyone still arriving gets the chance to overlap.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let out = self.inner.issue(req).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            out
        }
        async fn revoke(&self, req: &RevokeRequest) -> Result<(), IssuerError> {
            self.inner.revoke(req).await
        }
        async fn status(&self, der: &[u8]) -> Result<IssuerStatus, IssuerError> {
            self.inner.status(der).await
        }
        async fn renewal_info(&self, der: &[u8]) -> Result<Option<RenewalWindow>, IssuerError> {
            self.inner.renewal_info(der).await
        }
    }

    fn loaded(
        cfg: &Config,
        store: &Arc<dyn Store + Send + Sync>,
        issuer: &Arc<Counting>,
    ) -> Loaded {
        let mut issuers: BTreeMap<String, Arc<dyn Issuer>> = BTreeMap::new();
        issuers.insert("internal".into(), Arc::clone(issuer) as Arc<dyn Issuer>);
        let engine = Engine::with_issuers(Arc::clone(store), cfg.clone(), issuers);
        Loaded {
            cfg: cfg.clone(),
            gov: Arc::new(Governor::new(
                Arc::new(engine),
                crate::policy::Policy::builtin(),
            )),
            loaded_at: Utc::now(),
        }
    }

    /// Opens a reissue for each of `names`, hands them to the runner and waits for them.
    async fn run_all(shared: &Shared, names: &[&str]) {
        let engine = Arc::clone(shared.loaded().gov.engine());
        let trigger = Trigger {
            source: "manual".into(),
            by: "test".into(),
            why: "runner test".into(),
            signals: Vec::new(),
        };
        let ids: Vec<u64> = names
            .iter()
            .map(|n| {
                engine
                    .open_case(n, SequenceKind::Reissue, false, None, trigger.clone())
                    .unwrap()
                    .id
            })
            .collect();
        shared.run_cases(ids.clone()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let states: Vec<CaseState> = ids
                .iter()
                .map(|id| shared.store.get_case(*id).unwrap().unwrap().state)
                .collect();
            if states.iter().all(|s| *s == CaseState::Done) {
                return;
            }
            assert!(
                states
                    .iter()
                    .all(|s| *s == CaseState::Running || *s == CaseState::Done),
                "{states:?}"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "cases did not finish: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_runner_keeps_to_the_concurrency_in_force_and_a_reload_resizes_it() {
        let f = fixture("concurrency = 1\n");
        let store: Arc<dyn Store + Send + Sync> = f.store.clone();
        let real = f.engine();
        let issuer = Arc::new(Counting {
            inner: Arc::clone(&real.issuers["internal"]),
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            gather: AtomicUsize::new(1),
        });
        let first = loaded(&f.cfg, &store, &issuer);
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        for n in names {
            f.register(&real, n, Some("true")).await;
        }
        let (shared, rx) = Shared::new(Arc::clone(&store), first);
        let (stop_tx, stop_rx) = watch::channel(false);
        let runner = tokio::spawn(runner(Arc::clone(&shared), rx, stop_rx));

        run_all(&shared, &names[..4]).await;
        assert_eq!(issuer.most.load(Ordering::SeqCst), 1, "concurrency = 1");

        let mut cfg = f.cfg.clone();
        cfg.respond.concurrency = 4;
        shared.replace(loaded(&cfg, &store, &issuer));
        issuer.most.store(0, Ordering::SeqCst);
        issuer.gather.store(4, Ordering::SeqCst);
        run_all(&shared, &names[4..]).await;
        assert_eq!(
            issuer.most.load(Ordering::SeqCst),
            4,
            "after the reload to concurrency = 4"
        );

        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .expect("the runner ends when stopping")
            .unwrap();
    }
}
