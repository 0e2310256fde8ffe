//! HTTP/1.1 front end: `/ct/v1/*` (RFC 6962 §4) and `/static/*` (static-ct-api).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::log::Log;
use crate::statics;

fn lock(log: &Shared) -> Result<std::sync::MutexGuard<'_, Log>> {
    log.lock().map_err(|_| anyhow!("log state poisoned"))
}

/// Which APIs the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Rfc6962,
    Static,
    Both,
}

/// Largest submission body accepted.
const MAX_BODY: usize = 4 << 20;

type Shared = Arc<Mutex<Log>>;

pub async fn serve(listener: TcpListener, log: Shared, mode: Mode) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let log = log.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let log = log.clone();
                async move { Ok::<_, Infallible>(handle(req, log, mode).await) }
            });
            // A client hanging up mid-request is its business, not the log's.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn reply(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_reply(v: Result<serde_json::Value>) -> Response<Full<Bytes>> {
    match v {
        Ok(v) => reply(
            StatusCode::OK,
            "application/json",
            v.to_string().into_bytes(),
        ),
        Err(e) => reply(
            StatusCode::BAD_REQUEST,
            "text/plain",
            format!("{e:#}\n").into_bytes(),
        ),
    }
}

fn not_found() -> Response<Full<Bytes>> {
    reply(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec())
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request<Incoming>, key: &str) -> Result<String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .with_context(|| format!("missing query parameter {key}"))
}

fn query_u64(req: &Request<Incoming>, key: &str) -> Result<u64> {
    query(req, key)?
        .parse()
        .with_context(|| format!("{key} is not a number"))
}

#[derive(Deserialize)]
struct AddChain {
    chain: Vec<String>,
}

async fn read_chain(req: Request<Incoming>) -> Result<Vec<Vec<u8>>> {
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| anyhow!("reading the body: {e}"))?
        .to_bytes();
    let add: AddChain = serde_json::from_slice(&body).context("body is not {\"chain\": [...]}")?;
    add.chain
        .iter()
        .map(|c| STANDARD.decode(c).context("chain entry is not base64"))
        .collect()
}

async fn handle(req: Request<Incoming>, log: Shared, mode: Mode) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if let Some(ep) = path.strip_prefix("/ct/v1/") {
        let read_api = mode != Mode::Static;
        match (req.method(), ep) {
            (&Method::POST, "add-chain" | "add-pre-chain") => {
                let precert = ep == "add-pre-chain";
                let r = match read_chain(req).await {
                    Ok(chain) => lock(&log).and_then(|mut l| l.add(chain, precert)),
                    Err(e) => Err(e),
                };
                json_reply(r)
            }
            (&Method::GET, "get-roots") => json_reply(lock(&log).map(|l| l.get_roots())),
            (&Method::GET, "get-sth") if read_api => {
                json_reply(lock(&log).and_then(|l| l.get_sth()))
            }
            (&Method::GET, "get-sth-consistency") if read_api => json_reply((|| {
                let (a, b) = (query_u64(&req, "first")?, query_u64(&req, "second")?);
                lock(&log)?.get_consistency(a, b)
            })()),
            (&Method::GET, "get-proof-by-hash") if read_api => json_reply((|| {
                let hash = STANDARD
                    .decode(query(&req, "hash")?)
                    .context("hash is not base64")?;
                let size = query_u64(&req, "tree_size")?;
                lock(&log)?.get_proof_by_hash(&hash, size)
            })()),
            (&Method::GET, "get-entries") if read_api => json_reply((|| {
                let (a, b) = (query_u64(&req, "start")?, query_u64(&req, "end")?);
                lock(&log)?.get_entries(a, b)
            })()),
            (&Method::GET, "get-entry-and-proof") if read_api => json_reply((|| {
                let (i, s) = (
                    query_u64(&req, "leaf_index")?,
                    query_u64(&req, "tree_size")?,
                );
                lock(&log)?.get_entry_and_proof(i, s)
            })()),
            _ => not_found(),
        }
    } else if let Some(rest) = path.strip_prefix("/static/")
        && mode != Mode::Rfc6962
        && req.method() == Method::GET
    {
        let Ok(l) = lock(&log) else {
            return reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", Vec::new());
        };
        if rest == "checkpoint" {
            match statics::checkpoint(&l) {
                Ok(c) => reply(StatusCode::OK, "text/plain; charset=utf-8", c.into_bytes()),
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e:#}").into_bytes(),
                ),
            }
        } else if let Some(t) = rest
            .strip_prefix("tile/")
            .and_then(statics::parse_tile_path)
        {
            match statics::tile(&l, &t) {
                Ok(Some(b)) => reply(StatusCode::OK, "application/octet-stream", b),
                Ok(None) => not_found(),
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    format!("{e:#}").into_bytes(),
                ),
            }
        } else if let Some(h) = rest.strip_prefix("issuer/")
            && let Ok(fp) = hex::decode(h)
            && let Ok(fp) = <[u8; 32]>::try_from(fp)
            && let Some(der) = l.store.issuer(&fp)
        {
            reply(StatusCode::OK, "application/pkix-cert", der.to_vec())
        } else {
            not_found()
        }
    } else {
        not_found()
    }
}
