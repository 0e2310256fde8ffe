//! How a command reaches the service layer, chosen once at start-up: in this process (no
//! daemon runs: the command opens the store itself) or through the running daemon's control
//! socket (it holds the store). A command calls [`Backend::call`] the same way either way
//! and renders the same result, so it prints the same, exits the same and leaves the same
//! records whether or not the daemon runs.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::Value;

use super::CliError;
use crate::config::Config;
use crate::govern::Identity;
use crate::records::case::Case;
use crate::respond::Engine;
use crate::service::{Ctx, Host, Op, Progress, ProgressEvent, Service, ServiceError};
use crate::store::{SledStore, Store};

/// Where the use cases run.
pub(crate) enum Backend {
    /// In this process, on the store it opens (once, at the first use case).
    Local(Local),
    /// In the running daemon.
    Remote(Arc<Config>),
}

/// This process as the place the use cases run.
pub(crate) struct Local {
    cfg: Arc<Config>,
    svc: std::sync::Mutex<Option<Arc<Service>>>,
    host: LocalHost,
    /// The person running the command, taken before any change of user.
    who: Result<Identity, String>,
    /// Why this process could not become the state directory's owner, when it had to.
    not_owner: Option<ServiceError>,
}

impl Drop for Local {
    /// Cases started in the background finish before the command ends.
    fn drop(&mut self) {
        let runs = std::mem::take(
            &mut *self
                .host
                .runs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for r in runs {
            let _ = r.join();
        }
    }
}

impl Backend {
    /// The daemon when one answers on the configured control socket, else this process.
    pub(crate) fn choose(cfg: Config) -> Self {
        if super::remote::daemon_running(&cfg) {
            Self::Remote(Arc::new(cfg))
        } else {
            let who = Identity::current();
            let not_owner = become_state_owner(&cfg).err();
            Self::Local(Local {
                cfg: Arc::new(cfg),
                svc: std::sync::Mutex::new(None),
                host: LocalHost::default(),
                who,
                not_owner,
            })
        }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &Config {
        match self {
            Self::Local(l) => &l.cfg,
            Self::Remote(c) => c,
        }
    }

    /// Whether the daemon runs the use cases.
    pub(crate) fn is_remote(&self) -> bool {
        matches!(self, Self::Remote(_))
    }

    /// Runs use case `O`; progress and warnings go to stderr as they happen.
    pub(crate) fn call<O: Op>(&self, args: O::Args) -> Result<O::Output, CliError> {
        match self {
            Self::Local(l) => l.call::<O>(args).map_err(service_error),
            Self::Remote(cfg) => remote::<O>(cfg, args),
        }
    }
}

/// A use case's error as the command's: the caller's mistakes exit 2, the rest 1.
pub(crate) fn service_error(e: ServiceError) -> CliError {
    if e.is_input() {
        CliError::Input(e.into())
    } else {
        CliError::Failure(e.into())
    }
}

/// Progress on stderr.
pub(crate) struct Stderr;

impl Progress for Stderr {
    fn event(&self, event: ProgressEvent) {
        match event {
            ProgressEvent::Note { text } => eprintln!("{text}"),
            ProgressEvent::Warning { text } => eprintln!("warning: {text}"),
        }
    }
}

/// Opens the store for `O`. A use case that only reads does not create a database where
/// there is none: an empty store stands in.
fn open_service<O: Op>(cfg: &Arc<Config>) -> Result<Service, ServiceError> {
    let path = cfg.db_path();
    if !O::CHANGES && !path.exists() {
        return Ok(Service::without_database(path, Arc::clone(cfg)));
    }
    let store = SledStore::open(&path).map_err(|e| match e {
        crate::store::StoreError::Open { .. } if e.to_string().contains("in use by") => {
            ServiceError::Unavailable(format!(
                "{e}; the daemon's control socket {} does not answer",
                cfg.daemon.control_socket.display()
            ))
        }
        other => other.into(),
    })?;
    let store: Arc<dyn Store + Send + Sync> = Arc::new(store);
    Ok(Service::new(store, Arc::clone(cfg)))
}

/// Run as root on a state directory that another user (the service's) owns, this process
/// becomes that user (its group, no supplementary groups) before it touches the store: what
/// root created there would be root's, and the service could then neither read nor write
/// it. Called before any other thread exists, so that every thread of the command runs as
/// that user. When the change is refused, use cases are refused, saying why.
fn become_state_owner(cfg: &Config) -> Result<(), ServiceError> {
    use rustix::process::{Gid, Uid};
    use std::os::unix::fs::MetadataExt as _;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(&cfg.state_dir) else {
        return Ok(());
    };
    let (owner, group) = (meta.uid(), meta.gid());
    if owner == 0 {
        return Ok(());
    }
    let refused = |e: std::io::Error| {
        let user = Identity::from_uid(owner).name;
        ServiceError::Refused(format!(
            "{}: the state directory belongs to {user} (uid {owner}), and this command, run as root, could not become that user ({e}); run it as {user} (`sudo -u {user} certresponder ...`), or while the service runs",
            cfg.state_dir.display()
        ))
    };
    let gid = Gid::from_raw(group);
    let uid = Uid::from_raw(owner);
    rustix::thread::set_thread_groups(&[]).map_err(|e| refused(e.into()))?;
    rustix::thread::set_thread_res_gid(gid, gid, gid).map_err(|e| refused(e.into()))?;
    rustix::thread::set_thread_res_uid(uid, uid, uid).map_err(|e| refused(e.into()))?;
    Ok(())
}

impl Local {
    /// The service over the store, opened at the first use case: an empty stand-in while
    /// only reading where there is no database, the database once a use case changes
    /// anything.
    fn service<O: Op>(&self) -> Result<Arc<Service>, ServiceError> {
        let mut slot = self
            .svc
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(svc) = slot.as_ref()
            && (svc.missing_database().is_none() || !O::CHANGES)
        {
            return Ok(Arc::clone(svc));
        }
        let svc = Arc::new(open_service::<O>(&self.cfg)?);
        *slot = Some(Arc::clone(&svc));
        Ok(svc)
    }

    fn call<O: Op>(&self, args: O::Args) -> Result<O::Output, ServiceError> {
        if let Some(e) = &self.not_owner {
            return Err(e.clone());
        }
        let svc = self.service::<O>()?;
        let who = self.who.clone().map_err(ServiceError::Failed)?;
        let ctx = Ctx {
            who,
            // The store is opened with this process's own rights: it may do what they allow.
            roles: crate::service::Roles::all(),
            host: &self.host,
            progress: &Stderr,
        };
        let out = O::run(&svc, &ctx, args);
        for w in crate::service::unreadable_warnings(&svc) {
            ctx.warn(w);
        }
        out
    }
}

/// This process as the host: cases run here, notifications go out before it ends.
#[derive(Default)]
struct LocalHost {
    /// Cases started in the background, each batch on a thread of its own.
    runs: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Why a case started in the background could not run.
    errors: Arc<std::sync::Mutex<std::collections::HashMap<u64, String>>>,
}

/// How long a command waits at its end for notifications to go out.
const NOTIFY_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

/// Runs cases in this process to their end, delivering notifications beside them; returns
/// those that ended and why the others could not run.
pub(crate) fn run_here(engine: &Arc<Engine>, ids: &[u64]) -> (Vec<Case>, Vec<String>) {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for r in rt.block_on(run_notifying(engine, ids)) {
        match r {
            Ok(c) => cases.push(c),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (cases, errors)
}

/// Gives queued notifications a short time to go out; returns how many stay queued.
pub(crate) fn deliver_here(store: &dyn Store, notify: &crate::notify::NotifyConfig) -> usize {
    let Ok(rt) = runtime() else { return 0 };
    rt.block_on(crate::notify::deliver_until(store, notify, NOTIFY_BUDGET))
        .pending
}

impl Host for LocalHost {
    fn start_cases(&self, svc: &Service, ids: &[u64]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let engine = Arc::clone(svc.governor().map_err(|e| e.to_string())?.engine());
        let rt = runtime()?;
        let ids = ids.to_vec();
        let errors = Arc::clone(&self.errors);
        let run = std::thread::spawn(move || {
            let results = rt.block_on(run_notifying(&engine, &ids));
            let mut errors = errors
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (id, r) in ids.iter().zip(results) {
                if let Err(e) = r {
                    errors.insert(*id, e.to_string());
                }
            }
        });
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(run);
        Ok(())
    }

    fn case_error(&self, id: u64) -> Option<String> {
        self.errors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn run_cases(&self, svc: &Service, ids: &[u64]) -> Vec<Result<Case, String>> {
        if ids.is_empty() {
            return Vec::new();
        }
        let engine = match svc.governor() {
            Ok(g) => Arc::clone(g.engine()),
            Err(e) => return ids.iter().map(|_| Err(e.to_string())).collect(),
        };
        let (cases, errors) = run_here(&engine, ids);
        cases
            .into_iter()
            .map(Ok)
            .chain(errors.into_iter().map(Err))
            .collect()
    }

    fn deliver_notifications(&self, svc: &Service) -> usize {
        deliver_here(svc.store(), &svc.config().notify)
    }

    fn exclusive(&self) -> Box<dyn crate::service::Held + '_> {
        Box::new(())
    }
}

/// Runs cases while delivering queued notifications beside them.
async fn run_notifying(
    engine: &Arc<Engine>,
    ids: &[u64],
) -> Vec<Result<Case, crate::respond::RespondError>> {
    let courier = async {
        loop {
            crate::notify::deliver_due(engine.store(), &engine.config().notify).await;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    };
    // The courier is dropped when the cases are done; an interrupted delivery stays queued.
    tokio::select! {
        r = engine.run_cases(ids) => r,
        () = courier => Vec::new(),
    }
}

/// Has the daemon run `O` and reads its stream: progress to stderr, then the result.
fn remote<O: Op>(cfg: &Config, args: O::Args) -> Result<O::Output, CliError> {
    let body = Bytes::from(serde_json::to_vec(&args)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let socket = cfg.daemon.control_socket.clone();
    let last = rt
        .block_on(exchange(&socket, O::NAME, body))
        .map_err(|e| CliError::Failure(anyhow::anyhow!("{e}")))?;
    if let Some(err) = last.get("error") {
        let e: ServiceError = serde_json::from_value(err.clone()).map_err(|_| {
            CliError::Failure(anyhow::anyhow!("the daemon refused `{}`: {err}", O::NAME))
        })?;
        return Err(service_error(e));
    }
    serde_json::from_value(last.get("ok").cloned().unwrap_or(Value::Null)).map_err(|e| {
        CliError::Failure(anyhow::anyhow!(
            "the daemon's answer to `{}` cannot be read: {e} (is it the same release as this command?)",
            O::NAME
        ))
    })
}

/// One request to `/v1/ops/{name}`; progress lines are shown as they come; returns the
/// last line (the result or the error).
async fn exchange(socket: &std::path::Path, name: &str, body: Bytes) -> Result<Value, String> {
    let path = format!("/v1/ops/{name}");
    let mut answer =
        crate::daemon::control::client::request(socket, Method::POST, &path, body).await?;
    let (status, body) = (answer.status, &mut answer.body);
    let mut buf: Vec<u8> = Vec::new();
    let mut last: Option<Value> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the daemon's answer to {path}: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        // A refusal before the operation started is one JSON document, not lines.
        while status == StatusCode::OK
            && let Some(nl) = buf.iter().position(|b| *b == b'\n')
        {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let v: Value = serde_json::from_slice(&line)
                .map_err(|e| format!("the daemon's answer to {path} is not JSON lines: {e}"))?;
            match v.get("progress") {
                Some(p) => {
                    if let Ok(ev) = serde_json::from_value::<ProgressEvent>(p.clone()) {
                        Stderr.event(ev);
                    }
                }
                None => last = Some(v),
            }
        }
    }
    if !buf.iter().all(u8::is_ascii_whitespace) {
        last = Some(serde_json::from_slice(&buf).map_err(|e| {
            format!("the daemon answered {status} with a body that is not JSON: {e}")
        })?);
    }
    let last = last.ok_or_else(|| {
        format!("the daemon ended its answer to {path} without a result; see its log (`journalctl -u certresponder`)")
    })?;
    if status == StatusCode::OK {
        return Ok(last);
    }
    // A refusal before the operation started: `{"error": "..."}`.
    let message = last["error"]
        .as_str()
        .map_or_else(|| last.to_string(), str::to_string);
    let kind = match status {
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::FORBIDDEN => "refused",
        s if s.is_client_error() => "input",
        _ => "failed",
    };
    Ok(serde_json::json!({"error": {"kind": kind, "message": message}}))
}
