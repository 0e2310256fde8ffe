//! The control socket: HTTP/1 with JSON bodies on a Unix socket
//! (`/run/certresponder/control.sock`, mode 0660, group `certresponder`). While the daemon
//! runs it holds the database, so the CLI asks it here; a SIEM or a secret scanner posts
//! signals here. Access is by the socket's file mode and group; the person acting is the
//! user at the other end of the socket (its peer credentials), never a name in a request.
//!
//! The API (`v1`):
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1/status` | [`Status`] |
//! | `GET /v1/inventory[?all=1]` | `inventory list`: certificates, inventory errors |
//! | `GET /v1/signals[?all=1]` | the stored signals (resolved ones with `all`) |
//! | `GET /v1/cases` | every case, without private keys |
//! | `GET /v1/cases/{id}` | one case with its evidence (signals, audit records) |
//! | `POST /v1/cases/{id}/approve` | the approval; a case that may now run is started |
//! | `POST /v1/cases/{id}/deny` `{"reason"}` | the denied case |
//! | `POST /v1/rollback` `{"cert", "to"?, "force"?}` | how the rollback went |
//! | `POST /v1/signals` `{"cert", "check", "confidence"?, "message", "evidence"?, "source"?}` | the signal and what the policy did about it |
//! | `POST /v1/distrust` `{"ca", "issued_after"?, "deadline"?, "issuer"?, "reason"?, "dry_run"?, "remove"?}` | the run's number and the cases opened (they run in deadline and priority order); with `dry_run`, what it would affect; with `remove`, what was forgotten |
//! | `GET /v1/distrust` | every distrusted CA (configuration and recorded) |
//! | `POST /v1/jobs/{job}/run` | runs a job now (after the one running, if any): `{"job", "ok", "result"}` |
//! | `GET /v1/distrust/{run}` | how the run stands: progress, `finished`, the summary and each certificate's outcome |
//!
//! Errors are `{"error": "..."}`: 400 for a malformed request (naming the field), 403 for
//! what governance refuses (approving twice, a person who is not an approver, a rollback
//! that is not allowed now), 404 for an unknown path or case, 405 for a wrong method, 409
//! when a case is already running for the certificate, 413 past [`MAX_BODY`], 503 for
//! changes while the daemon is stopping.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::UnixListener;

use super::{Loaded, Shared};
use crate::govern::Identity;
use crate::policy::vocab;
use crate::service::{Role, Roles};

/// The largest request body accepted (1 MiB).
pub const MAX_BODY: usize = 1 << 20;

/// How long a client may take to send a request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Answers the control socket until the task is dropped: one task per connection, each
/// request as the user at the other end.
pub async fn serve(shared: Arc<Shared>, listener: UnixListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                tracing::warn!(error = %e, "the control socket cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let cred = match stream.peer_cred() {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "a control connection without peer credentials was dropped");
                    return;
                }
            };
            let (uid, gid) = (cred.uid(), cred.gid());
            let pidfd =
                nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerPidfd).ok();
            let who = tokio::task::spawn_blocking(move || Identity::of_peer(pidfd.as_ref(), uid))
                .await
                .unwrap_or_else(|_| Identity::unverified(uid, "identifying the peer failed"));
            let peer = Arc::new(Peer { who, uid, gid });
            let service = hyper::service::service_fn(move |req| {
                let shared = Arc::clone(&shared);
                let peer = Arc::clone(&peer);
                async move { Ok::<_, Infallible>(handle(shared, peer, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "control connection ended");
            }
        });
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec_pretty(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response<Full<Bytes>> {
    let mut resp = json_response(e.status, &json!({ "error": e.message }));
    if let Some(allow) = e.allow {
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    resp
}

/// The user at the other end of a connection: the person (by login uid) and the account
/// (the socket's peer credentials), whose roles are checked on every request.
pub(crate) struct Peer {
    /// The person acting.
    pub(crate) who: Identity,
    /// The account's uid.
    pub(crate) uid: u32,
    /// The account's primary gid.
    pub(crate) gid: u32,
}

/// Checks that `peer` holds `role` under the roles in force; a refusal is a 403 naming the
/// role, and is logged. A request that changes anything is audited with who made it and
/// the role that allowed it. Returns every role the peer holds.
fn authorize(
    shared: &Shared,
    peer: &Peer,
    role: Role,
    request: &str,
    changes: bool,
) -> Result<Roles, ApiError> {
    let loaded = shared.loaded();
    let roles = roles::roles_of(
        peer.uid,
        peer.gid,
        loaded.cfg.daemon.roles.as_ref(),
        loaded.cfg.daemon.control_group.as_deref(),
    );
    if !roles.has(role) {
        let account = crate::govern::identity::user_name(peer.uid)
            .unwrap_or_else(|| format!("uid {}", peer.uid));
        tracing::warn!(peer = %peer.who, account = %account, request, role = %role, "control request refused: role not held");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "this needs the `{role}` role, which the account {account} (uid {}) does not hold; roles are granted in [daemon.roles] of the daemon's configuration",
                peer.uid
            ),
        ));
    }
    if changes {
        let entry = crate::audit::AuditEntry {
            kind: "control_request",
            actor: &peer.who.to_string(),
            cert: None,
            case: None,
            data: json!({"request": request, "role": role, "uid": peer.uid}),
        };
        crate::audit::append(shared.store.as_ref(), entry)?;
    }
    Ok(roles)
}

/// [`authorize`] on the blocking pool (it reads the group database and may append to the
/// audit log).
async fn authorized(
    shared: &Arc<Shared>,
    peer: &Arc<Peer>,
    role: Role,
    request: String,
    changes: bool,
) -> Result<Roles, ApiError> {
    let (shared, peer) = (Arc::clone(shared), Arc::clone(peer));
    blocking(move || authorize(&shared, &peer, role, &request, changes)).await
}

async fn handle(
    shared: Arc<Shared>,
    peer: Arc<Peer>,
    req: Request<Incoming>,
) -> Response<ops::OpBody> {
    let who = &peer.who;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    if let Some(name) = path.strip_prefix("/v1/ops/") {
        return match op(shared, &peer, req, name).await {
            Ok(resp) => resp,
            Err(e) => {
                tracing::info!(peer = %who, %method, %path, status = %e.status, error = %e.message, "control request refused");
                error_response(&e).map(BodyExt::boxed_unsync)
            }
        };
    }
    let result = answer(shared, &peer, req).await;
    let status = result
        .as_ref()
        .map_or_else(|e| e.status, |_| StatusCode::OK);
    if status.is_server_error() {
        let error = result
            .as_ref()
            .err()
            .map(|e| e.message.as_str())
            .unwrap_or("");
        tracing::warn!(peer = %who, %method, %path, %status, error, "control request failed");
    } else if method == http::Method::GET {
        // Reads are frequent (`approve` polls its case): kept out of the journal.
        tracing::debug!(peer = %who, %method, %path, %status, "control request");
    } else {
        tracing::info!(peer = %who, %method, %path, %status, "control request");
    }
    match result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => error_response(&e),
    }
    .map(BodyExt::boxed_unsync)
}

/// `POST /v1/ops/{name}`: a use case of the service layer, run as the peer.
async fn op(
    shared: Arc<Shared>,
    peer: &Arc<Peer>,
    req: Request<Incoming>,
    name: &str,
) -> Result<Response<ops::OpBody>, ApiError> {
    let Some(&(name, changes)) = crate::service::op_names().iter().find(|(n, _)| *n == name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("there is no operation `{name}`"),
        ));
    };
    if req.method() != http::Method::POST {
        return Err(ApiError {
            allow: Some("POST"),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("/v1/ops/{name} takes POST, not {}", req.method()),
            )
        });
    }
    if changes && shared.stopping() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping and takes no changes; try again once it has started again",
        ));
    }
    let body = read_body_limited(req, ops::MAX_OP_BODY).await?;
    let args: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad(format!("malformed JSON: {e}")))?
    };
    let role = crate::service::required_role(name, &args)?;
    let roles = authorized(&shared, peer, role, format!("POST /v1/ops/{name}"), changes).await?;
    Ok(ops::start(shared, peer.who.clone(), roles, name, args))
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    read_body_limited(req, MAX_BODY).await
}

async fn read_body_limited(req: Request<Incoming>, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {max} bytes"),
        )
    };
    if req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
    {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad(format!("reading the body: {e}"))),
    }
}

/// Runs `f` on the blocking pool (the store and the files are synchronous).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?
}

async fn answer(
    shared: Arc<Shared>,
    peer: &Arc<Peer>,
    req: Request<Incoming>,
) -> Result<Value, ApiError> {
    let request = format!("{} {}", req.method(), req.uri().path());
    let route = route(req.method(), req.uri())?;
    if route.changes() && shared.stopping() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping and takes no changes; try again once it has started again",
        ));
    }
    let body = if route.changes() {
        read_body(req).await?
    } else {
        Bytes::new()
    };
    // What the route needs; a forced rollback and a real distrust need more. A body that
    // cannot be read asks for the most, and is refused as malformed once allowed.
    let asked: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let role = match route {
        Route::PostSignal => Role::Report,
        Route::Approve(_) | Route::Deny(_) => Role::Approve,
        Route::RunJob(_) => Role::Operate,
        Route::Rollback if asked["force"] == false || asked["force"].is_null() => Role::Operate,
        Route::Distrust if asked["dry_run"] == true && asked["remove"] != true => Role::Operate,
        Route::Rollback | Route::Distrust => Role::Admin,
        _ => Role::Read,
    };
    let roles = authorized(&shared, peer, role, request, route.changes()).await?;
    let loaded = shared.loaded();
    let who = peer.who.clone();
    match route {
        Route::Status => blocking(move || status::status(&shared, &loaded)).await,
        Route::Inventory { all } => {
            blocking(move || {
                let listing =
                    crate::service::inventory::listing(shared.store.as_ref(), &loaded.cfg, all)?;
                serde_json::to_value(listing).map_err(ApiError::internal)
            })
            .await
        }
        Route::Signals { all } => {
            blocking(move || {
                let shown = crate::service::signals::listed(shared.store.as_ref(), all)?;
                serde_json::to_value(shown).map_err(ApiError::internal)
            })
            .await
        }
        Route::Cases => {
            blocking(move || {
                let cases = crate::service::cases::sorted_cases(shared.store.as_ref())?;
                Ok(Value::Array(
                    cases
                        .iter()
                        .map(crate::respond::Case::public_json)
                        .collect(),
                ))
            })
            .await
        }
        Route::Case(id) => {
            blocking(move || {
                crate::service::cases::CaseDetail::load(shared.store.as_ref(), id)?
                    .map(Value::from)
                    .ok_or_else(|| no_case(id))
            })
            .await
        }
        Route::Approve(id) => {
            let ApproveBody {} = parse_body(&body, true)?;
            blocking(move || approve(&shared, &loaded, id, &who)).await
        }
        Route::Deny(id) => {
            let b: DenyBody = parse_body(&body, false)?;
            blocking(move || deny(&shared, &loaded, id, &who, &b.reason)).await
        }
        Route::Rollback => {
            let b: RollbackBody = parse_body(&body, false)?;
            rollback(shared, b, who).await
        }
        Route::PostSignal => {
            let b: SignalBody = parse_body(&body, false)?;
            blocking(move || post_signal(&shared, b, &who, &roles)).await
        }
        Route::RunJob(job) => {
            let RunJobBody {} = parse_body(&body, true)?;
            let result = super::run::run_job_now(&shared, job).await;
            Ok(json!({
                "job": job,
                "ok": result.is_ok(),
                "result": match result {
                    Ok(s) | Err(s) => s,
                },
            }))
        }
        Route::Distrust => {
            let b: DistrustBody = parse_body(&body, false)?;
            blocking(move || distrust(&shared, &loaded, b, &who)).await
        }
        Route::Distrusts => {
            blocking(move || {
                let all = crate::signals::ca::distrust::all(
                    &loaded.cfg.distrust,
                    shared.store.as_ref(),
                )?;
                serde_json::to_value(all).map_err(ApiError::internal)
            })
            .await
        }
        Route::DistrustRun(id) => {
            blocking(move || {
                let run = shared.distrust_run(id).ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("there is no distrust run {id} (the daemon remembers the last {} since it started)", super::DISTRUST_RUNS_KEPT),
                    )
                })?;
                let errors: Vec<(u64, String)> = run
                    .begun
                    .applied
                    .run
                    .iter()
                    .filter_map(|id| shared.case_error(*id).map(|e| (*id, e)))
                    .collect();
                let report = crate::service::distrust::report(
                    shared.store.as_ref(),
                    &run.begun,
                    run.started.elapsed(),
                    &errors,
                )?;
                serde_json::to_value(report).map_err(ApiError::internal)
            })
            .await
        }
    }
}

/// `POST /v1/distrust`: records a distrust and opens the replacements, which the runner
/// takes in order; or, with `dry_run`, lists what it would affect; or, with `remove`,
/// forgets one recorded before.
fn distrust(
    shared: &Shared,
    loaded: &Loaded,
    b: DistrustBody,
    who: &Identity,
) -> Result<Value, ApiError> {
    use crate::signals::ca::distrust::{self as d, CaRef, Distrust};
    let ca = CaRef::parse(&b.ca).map_err(|e| ApiError::field("ca", e))?;
    let store = shared.store.as_ref();
    if b.remove {
        if d::remove(store, &ca)? == 0 {
            return Err(ApiError::field(
                "ca",
                format!(
                    "`{}` is not recorded as distrusted by the distrust command",
                    ca.written()
                ),
            ));
        }
        crate::audit::append(
            store,
            crate::audit::AuditEntry {
                kind: "distrust_removed",
                actor: &who.to_string(),
                cert: None,
                case: None,
                data: json!({"ca": ca}),
            },
        )?;
        return Ok(json!({"removed": ca.written()}));
    }
    let issued_after = b
        .issued_after
        .as_deref()
        .map(d::parse_date)
        .transpose()
        .map_err(|e| ApiError::field("issued_after", e))?;
    let deadline_hours = d::parse_deadline(b.deadline.as_deref().unwrap_or("24h"))
        .map_err(|e| ApiError::field("deadline", e))?;
    if let Some(id) = &b.issuer
        && !loaded.cfg.issuers.iter().any(|i| &i.id == id)
    {
        return Err(ApiError::field(
            "issuer",
            format!(
                "`{id}` is not a configured issuer (known: {})",
                loaded.cfg.issuer_ids().join(", ")
            ),
        ));
    }
    let distrust = Distrust {
        ca,
        issued_after,
        deadline_hours,
        replace_with: b.issuer,
        reason: b.reason,
        origin: "command".into(),
        added_by: Some(who.to_string()),
        added_at: Some(Utc::now()),
    };
    if b.dry_run {
        let affected = crate::service::distrust::affected_listing(store, &distrust)?;
        return Ok(json!({"distrust": distrust, "affected": affected}));
    }
    let begun = crate::service::distrust::begin(&loaded.gov, distrust, &who.to_string())?;
    let cases = begun.applied.run.clone();
    let not_started = shared.run_cases(cases.clone()).err();
    let affected = begun.names.len();
    let d = begun.distrust.clone();
    let run = shared.add_distrust(begun);
    Ok(json!({
        "run": run,
        "distrust": d,
        "affected": affected,
        "cases": cases,
        "not_started": not_started,
    }))
}

fn no_case(id: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("there is no case {id} (see `certresponder cases list`)"),
    )
}

fn approve(shared: &Shared, loaded: &Loaded, id: u64, who: &Identity) -> Result<Value, ApiError> {
    if shared.store.get_case(id)?.is_none() {
        return Err(no_case(id));
    }
    let approved = loaded.gov.approve(id, who, Utc::now())?;
    let not_started = if approved.runnable {
        shared.run_cases(vec![id]).err()
    } else {
        None
    };
    Ok(json!({
        "case": approved.case,
        "runnable": approved.runnable,
        "still_needed": approved.still_needed,
        "by": who.to_string(),
        "not_started": not_started,
    }))
}

fn deny(
    shared: &Shared,
    loaded: &Loaded,
    id: u64,
    who: &Identity,
    reason: &str,
) -> Result<Value, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::field("reason", "must say why the case is denied"));
    }
    if shared.store.get_case(id)?.is_none() {
        return Err(no_case(id));
    }
    let case = loaded.gov.deny(id, who, reason, Utc::now())?;
    Ok(case.public_json())
}

async fn rollback(shared: Arc<Shared>, b: RollbackBody, who: Identity) -> Result<Value, ApiError> {
    if b.cert.trim().is_empty() {
        return Err(ApiError::field("cert", "names no certificate"));
    }
    if shared.store.get_cert(&b.cert)?.is_none() {
        return Err(ApiError::field(
            "cert",
            format!("no certificate named `{}` is registered", b.cert),
        ));
    }
    let done = ops::run_blocking::<crate::service::cases::Rollback>(
        shared,
        who,
        crate::service::cases::RollbackArgs {
            cert: b.cert,
            to: b.to,
            force: b.force,
        },
    )
    .await?;
    serde_json::to_value(done).map_err(ApiError::internal)
}

/// Checks a posted signal against the inventory and the vocabulary.
fn reported(shared: &Shared, b: SignalBody) -> Result<crate::service::signals::Reported, ApiError> {
    match shared.store.get_cert(&b.cert)? {
        Some(rec) if rec.status == crate::store::CertStatus::Active => {}
        Some(_) => {
            return Err(ApiError::field(
                "cert",
                format!("`{}` was removed from the inventory", b.cert),
            ));
        }
        None => {
            return Err(ApiError::field(
                "cert",
                format!("no certificate named `{}` is registered", b.cert),
            ));
        }
    }
    let check = vocab::check_info(&b.check).ok_or_else(|| {
        ApiError::field(
            "check",
            format!(
                "`{}` is not a check of the finding vocabulary (one of: {})",
                b.check,
                vocab::check_names().join(", ")
            ),
        )
    })?;
    let confidence = match b.confidence.as_deref() {
        None => check.confidence,
        Some(c) => vocab::parse_confidence(c).ok_or_else(|| {
            ApiError::field(
                "confidence",
                format!("`{c}` is not one of {}", vocab::CONFIDENCES.join(", ")),
            )
        })?,
    };
    let message = b.message.trim();
    if message.is_empty() {
        return Err(ApiError::field("message", "must say what was seen"));
    }
    if message.chars().count() > MAX_MESSAGE {
        return Err(ApiError::field(
            "message",
            format!("longer than {MAX_MESSAGE} characters; put details in `evidence`"),
        ));
    }
    let source = b.source.unwrap_or_else(|| "api".into());
    if source.is_empty()
        || source.len() > MAX_SOURCE
        || !source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::field(
            "source",
            format!(
                "`{source}` is not a name: up to {MAX_SOURCE} letters, digits, `-`, `_` and `.`"
            ),
        ));
    }
    if let Some(e) = &b.evidence {
        let size = serde_json::to_vec(e).map_or(usize::MAX, |v| v.len());
        if size > MAX_EVIDENCE {
            return Err(ApiError::field(
                "evidence",
                format!(
                    "is {size} bytes of JSON, more than the {} KiB a signal keeps; send a summary and where the rest is",
                    MAX_EVIDENCE / 1024
                ),
            ));
        }
    }
    Ok(crate::service::signals::Reported {
        cert: b.cert,
        check,
        confidence,
        message: message.to_string(),
        details: b.evidence.map_or(Value::Null, Value::Object),
        source,
    })
}

/// The largest `evidence` a posted signal may carry, as JSON.
const MAX_EVIDENCE: usize = 64 * 1024;

/// Counts a post against its identity's `[daemon] signals_per_minute`: one over it is
/// refused (429) saying when to try again.
fn admit_signal(shared: &Shared, who: &Identity) -> Result<(), ApiError> {
    let limit = shared.loaded().cfg.daemon.signals_per_minute as usize;
    let now = std::time::Instant::now();
    let minute = Duration::from_secs(60);
    let mut posts = shared
        .signal_posts
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let recent = posts.entry(who.uid).or_default();
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) >= minute)
    {
        recent.pop_front();
    }
    if recent.len() >= limit {
        let wait = recent
            .front()
            .map_or(minute, |t| minute.saturating_sub(now.duration_since(*t)));
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{who} posted {limit} signals in the last minute, the most `[daemon] signals_per_minute` allows; try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    recent.push_back(now);
    Ok(())
}

fn post_signal(
    shared: &Shared,
    b: SignalBody,
    who: &Identity,
    roles: &Roles,
) -> Result<Value, ApiError> {
    admit_signal(shared, who)?;
    let mut r = reported(shared, b)?;
    // A caller who may not act on certificates (no `operate`) reports at most `high`:
    // a person or a system that can only report cannot start what only a confirmed
    // compromise starts on its own.
    if !roles.has(Role::Operate) && r.confidence > crate::signals::Confidence::High {
        r.confidence = crate::signals::Confidence::High;
    }
    let signal =
        crate::service::signals::record_reported(shared.store.as_ref(), &r, &who.to_string())?;
    tracing::info!(cert = %signal.subject, check = %signal.check, source = %signal.source, by = %who, "signal posted");
    let applied = shared.act().map_err(|e| {
        ApiError::internal(format!(
            "signal {} was recorded, but acting on it failed: {e}",
            signal.id
        ))
    })?;
    Ok(json!({ "signal": signal, "applied": applied }))
}

pub mod client;
pub(crate) mod ops;
mod request;
pub mod roles;
mod socket;
mod status;

use request::{
    ApiError, ApproveBody, DenyBody, DistrustBody, MAX_MESSAGE, MAX_SOURCE, RollbackBody, Route,
    RunJobBody, SignalBody, parse_body, route,
};
pub use socket::{bind, unbind};
pub use status::{BreakerSummary, ConfigStatus, Status};

#[cfg(test)]
pub(crate) mod tests;
