//! `POST /v1/ops/{name}`: runs a use case of the service layer for the CLI, as the user at
//! the other end of the socket, and streams its answer as JSON lines: any number of
//! `{"progress": EVENT}` while it runs, then one `{"ok": RESULT}` or
//! `{"error": {"kind", "message"}}`. The CLI renders the result exactly as it renders the
//! same use case run in its own process.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::super::Shared;
use crate::govern::Identity;
use crate::records::case::{Case, CaseState};
use crate::service::{Ctx, Host, Progress, ProgressEvent, Service, ServiceError};

/// The largest request body an operation takes (a blocklist or a scanner's report travels
/// in it).
pub const MAX_OP_BODY: usize = 256 << 20;

/// How long a waiting request looks again at its cases when no case ended meanwhile.
const CASE_POLL: Duration = Duration::from_millis(500);

/// The daemon as the host of a use case: cases go to its runner, notifications to its
/// courier, jobs to its scheduler's turn.
pub(crate) struct DaemonHost {
    pub(crate) shared: Arc<Shared>,
    pub(crate) handle: tokio::runtime::Handle,
}

impl Host for DaemonHost {
    fn run_cases(&self, svc: &Service, ids: &[u64]) -> Vec<Result<Case, String>> {
        if ids.is_empty() {
            return Vec::new();
        }
        let mut ended = self.shared.case_endings();
        if let Err(e) = self.start_cases(svc, ids) {
            return ids
                .iter()
                .map(|id| Err(format!("case {id}: {e}")))
                .collect();
        }
        loop {
            let mut out = Vec::with_capacity(ids.len());
            let mut pending = false;
            for id in ids {
                if let Some(e) = self.shared.case_error(*id) {
                    out.push(Err(format!("case {id} could not run: {e}")));
                    continue;
                }
                match self.shared.store.get_case(*id) {
                    // A case waiting to try its revocation again has returned for now.
                    Ok(Some(c)) if c.state != CaseState::Running || c.retry_at.is_some() => {
                        out.push(Ok(c));
                    }
                    Ok(Some(_)) if self.shared.stopping() => out.push(Err(format!(
                        "case {id}: the daemon is stopping; the case stops at its next step and resumes when the daemon starts again"
                    ))),
                    Ok(Some(_)) => pending = true,
                    Ok(None) => out.push(Err(format!("there is no case {id}"))),
                    Err(e) => out.push(Err(format!("case {id}: {e}"))),
                }
            }
            if !pending {
                return out;
            }
            let _ = self
                .handle
                .block_on(async { tokio::time::timeout(CASE_POLL, ended.changed()).await });
        }
    }

    fn start_cases(&self, _svc: &Service, ids: &[u64]) -> Result<(), String> {
        for id in ids {
            self.shared.note_case_error(*id, None);
        }
        self.shared.run_cases(ids.to_vec())
    }

    fn case_error(&self, id: u64) -> Option<String> {
        self.shared.case_error(id)
    }

    fn deliver_notifications(&self, _svc: &Service) -> usize {
        0
    }

    fn exclusive(&self) -> Box<dyn crate::service::Held + '_> {
        // On the blocking pool, outside any task: waiting here blocks only this request.
        Box::new(self.shared.job_lock_blocking())
    }
}

/// The service over the store with the configuration and governor in force, and the daemon
/// as its host.
fn in_force(shared: &Arc<Shared>, handle: tokio::runtime::Handle) -> (Service, DaemonHost) {
    let loaded = shared.loaded();
    let svc = Service::with_governor(
        Arc::clone(&shared.store),
        Arc::new(loaded.cfg.clone()),
        Arc::clone(&loaded.gov),
    );
    let host = DaemonHost {
        shared: Arc::clone(shared),
        handle,
    };
    (svc, host)
}

/// Runs use case `O` on the blocking pool as `who`, for a route of the REST API, and
/// answers its result.
pub(super) async fn run_blocking<O: crate::service::Op>(
    shared: Arc<Shared>,
    who: Identity,
    args: O::Args,
) -> Result<O::Output, super::request::ApiError> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let (svc, host) = in_force(&shared, handle);
        let ctx = Ctx {
            who,
            roles: crate::service::Roles::all(),
            host: &host,
            progress: &crate::service::NoProgress,
        };
        O::run(&svc, &ctx, args).map_err(super::request::ApiError::from)
    })
    .await
    .map_err(|e| super::request::ApiError::internal(format!("the request's task failed: {e}")))?
}

/// Progress sent down the socket as it happens.
struct Streamed(mpsc::UnboundedSender<Bytes>);

impl Progress for Streamed {
    fn event(&self, event: ProgressEvent) {
        let _ = self.0.send(line(&json!({ "progress": event })));
    }
}

fn line(v: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// The body of an operation's answer.
pub(super) type OpBody = UnsyncBoxBody<Bytes, Infallible>;

/// Starts operation `name` with `args` on the blocking pool and answers with the stream of
/// its progress and result.
pub(super) fn start(
    shared: Arc<Shared>,
    who: Identity,
    roles: crate::service::Roles,
    name: &'static str,
    args: Value,
) -> Response<OpBody> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let (svc, host) = in_force(&shared, handle);
        let progress = Streamed(tx.clone());
        let ctx = Ctx {
            who: who.clone(),
            roles,
            host: &host,
            progress: &progress,
        };
        let started = std::time::Instant::now();
        let result = crate::service::dispatch(name, &svc, &ctx, args);
        for w in crate::service::unreadable_warnings(&svc) {
            ctx.warn(w);
        }
        shared.audit_unreadable();
        let ms = started.elapsed().as_millis();
        let last = match result {
            Ok(v) => {
                tracing::info!(peer = %who, op = name, ms, "operation done");
                json!({ "ok": v })
            }
            Err(e) => {
                if matches!(e, ServiceError::Failed(_)) {
                    tracing::warn!(peer = %who, op = name, error = %e, "operation failed");
                } else {
                    tracing::info!(peer = %who, op = name, error = %e, "operation refused");
                }
                json!({ "error": e })
            }
        };
        let _ = tx.send(line(&last));
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|b| b.map(|b| Ok::<_, Infallible>(Frame::data(b))))
    });
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp
}
