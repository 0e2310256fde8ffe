//! How a command reaches the service layer, chosen once at start-up: in this process (no
//! daemon runs: the command opens the store itself) or through the running daemon's control
//! socket (it holds the store). A command calls [`Backend::call`] the same way either way
//! and renders the same result, so it prints the same, exits the same and leaves the same
//! records whether or not the daemon runs.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::CliError;
use crate::config::Config;
use crate::govern::Identity;
use crate::respond::Engine;
use crate::respond::case::Case;
use crate::service::{Ctx, Host, Op, Progress, ProgressEvent, Service, ServiceError};
use crate::store::{SledStore, Store};

/// Where the use cases run.
pub(crate) enum Backend {
    /// In this process, on the store it opens.
    Local(Arc<Config>),
    /// In the running daemon.
    Remote(Arc<Config>),
}

impl Backend {
    /// The daemon when one answers on the configured control socket, else this process.
    pub(crate) fn choose(cfg: Config) -> Self {
        if super::remote::daemon_running(&cfg) {
            Self::Remote(Arc::new(cfg))
        } else {
            Self::Local(Arc::new(cfg))
        }
    }

    /// The configuration.
    pub(crate) fn config(&self) -> &Config {
        match self {
            Self::Local(c) | Self::Remote(c) => c,
        }
    }

    /// Runs use case `O`; progress and warnings go to stderr as they happen.
    pub(crate) fn call<O: Op>(&self, args: O::Args) -> Result<O::Output, CliError> {
        match self {
            Self::Local(cfg) => local::<O>(cfg, args).map_err(service_error),
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

/// Refuses to work, as root, on a state directory that another user (the service's) owns:
/// what root created there would be root's, and the service could then not read or write
/// it.
fn check_state_owner(cfg: &Config) -> Result<(), ServiceError> {
    use std::os::unix::fs::MetadataExt as _;
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(&cfg.state_dir) else {
        return Ok(());
    };
    let owner = meta.uid();
    if owner == 0 {
        return Ok(());
    }
    let user = Identity::from_uid(owner).name;
    Err(ServiceError::Refused(format!(
        "{}: the state directory belongs to {user} (uid {owner}); run as root, this command would leave files there that the service cannot read or write. Run it as that user (`sudo -u {user} certresponder ...`), or while the service runs, which then does the work",
        cfg.state_dir.display()
    )))
}

fn local<O: Op>(cfg: &Arc<Config>, args: O::Args) -> Result<O::Output, ServiceError> {
    check_state_owner(cfg)?;
    let svc = open_service::<O>(cfg)?;
    let who = Identity::current().map_err(ServiceError::Failed)?;
    let host = LocalHost;
    let ctx = Ctx {
        who,
        host: &host,
        progress: &Stderr,
    };
    let out = O::run(&svc, &ctx, args);
    for w in crate::service::unreadable_warnings(&svc) {
        ctx.warn(w);
    }
    out
}

/// This process as the host: cases run here, notifications go out before it ends.
struct LocalHost;

/// How long a command waits at its end for notifications to go out.
const NOTIFY_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))
}

impl Host for LocalHost {
    fn run_cases(&self, svc: &Service, ids: &[u64]) -> Vec<Result<Case, String>> {
        if ids.is_empty() {
            return Vec::new();
        }
        let engine = match svc.governor() {
            Ok(g) => Arc::clone(g.engine()),
            Err(e) => return ids.iter().map(|_| Err(e.to_string())).collect(),
        };
        let rt = match runtime() {
            Ok(rt) => rt,
            Err(e) => return ids.iter().map(|_| Err(e.clone())).collect(),
        };
        rt.block_on(run_notifying(&engine, ids))
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    fn deliver_notifications(&self, svc: &Service) -> usize {
        let Ok(rt) = runtime() else { return 0 };
        rt.block_on(crate::notify::deliver_until(
            svc.store(),
            &svc.config().notify,
            NOTIFY_BUDGET,
        ))
        .pending
    }

    fn run_job(&self, _name: &str) -> Option<Result<String, String>> {
        None
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
    let where_ = socket.display();
    let stream = crate::daemon::control::client::connect(socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("talking to the daemon at {where_}: {e}"))?;
    let conn = tokio::spawn(conn);
    let path = format!("/v1/ops/{name}");
    let req = Request::builder()
        .method(Method::POST)
        .uri(&path)
        .header(header::HOST, "certresponder")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("building the request for {path}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("the daemon at {where_} gave no answer to {path}: {e}"))?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut buf: Vec<u8> = Vec::new();
    let mut last: Option<Value> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the daemon's answer to {path}: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
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
    conn.abort();
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
        s if s.is_client_error() => "input",
        _ => "failed",
    };
    Ok(serde_json::json!({"error": {"kind": kind, "message": message}}))
}
