//! End-to-end tests of [`Monitor`] against tiny in-process logs served by hyper: an RFC 6962
//! log whose answers can be made to misbehave, and a static-ct-api log of files.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::signature::EcdsaKeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};

use super::entry::tests::{cert, chain_data, x509_leaf, x509_timestamped};
use super::merkle::tests::{mth, path, proof};
use super::merkle::{Hash, leaf_hash, subtree_root};
use super::static_ct::tile_path;
use super::sth::tests::{checkpoint, log_key, signed_sth};
use super::*;
use crate::http_client::HttpClient;

/// The state of the RFC 6962 test log.
struct Log6962 {
    /// `(leaf_input, extra_data)` of every entry, published or not.
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    /// The size the STH publishes.
    size: usize,
    /// A root to sign instead of the true one.
    wrong_root: Option<Hash>,
    /// The most entries one get-entries answer holds.
    max_per_get: usize,
    /// How many requests to answer 429 before serving.
    throttle: usize,
    key: EcdsaKeyPair,
    requests: usize,
}

type Shared = Arc<Mutex<Log6962>>;

fn query(req: &Request<Incoming>) -> HashMap<String, u64> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

fn answer(log: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let mut log = log.lock().unwrap();
    log.requests += 1;
    if log.throttle > 0 {
        log.throttle -= 1;
        return Response::builder()
            .status(429)
            .header("retry-after", "0")
            .body(Full::new(Bytes::new()))
            .unwrap();
    }
    let hashes: Vec<Hash> = log.entries.iter().map(|(l, _)| leaf_hash(l)).collect();
    let q = query(req);
    let body = match req.uri().path() {
        "/ct/v1/get-sth" => {
            let root = log.wrong_root.unwrap_or_else(|| mth(&hashes[..log.size]));
            let sth = signed_sth(&log.key, log.size as u64, root);
            serde_json::json!({
                "tree_size": sth.tree_size,
                "timestamp": sth.timestamp,
                "sha256_root_hash": B64.encode(sth.root_hash),
                "tree_head_signature": B64.encode(&sth.signature),
            })
        }
        "/ct/v1/get-sth-consistency" => {
            let (first, second) = (q["first"] as usize, q["second"] as usize);
            let p: Vec<String> = proof(first, &hashes[..second])
                .iter()
                .map(|h| B64.encode(h))
                .collect();
            serde_json::json!({ "consistency": p })
        }
        "/ct/v1/get-proof-by-hash" => {
            // The hash is standard base64, percent-encoded in the query.
            let raw = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("hash="))
                .unwrap_or("")
                .replace("%2B", "+")
                .replace("%2F", "/")
                .replace("%3D", "=");
            let size = q["tree_size"] as usize;
            let wanted = B64.decode(raw).unwrap_or_default();
            let Some(index) = hashes[..size].iter().position(|h| h[..] == wanted[..]) else {
                return Response::builder()
                    .status(400)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
            };
            let p: Vec<String> = path(index, &hashes[..size])
                .iter()
                .map(|h| B64.encode(h))
                .collect();
            serde_json::json!({ "leaf_index": index, "audit_path": p })
        }
        "/ct/v1/get-entries" => {
            let start = q["start"] as usize;
            let end = (q["end"] as usize)
                .min(start + log.max_per_get - 1)
                .min(log.size - 1);
            let list: Vec<_> = log.entries[start..=end]
                .iter()
                .map(|(l, e)| serde_json::json!({"leaf_input": B64.encode(l), "extra_data": B64.encode(e)}))
                .collect();
            serde_json::json!({ "entries": list })
        }
        _ => {
            return Response::builder()
                .status(404)
                .body(Full::new(Bytes::new()))
                .unwrap();
        }
    };
    Response::new(Full::new(Bytes::from(body.to_string())))
}

/// Serves `route` on a free local port until the test ends.
async fn serve<F>(route: F) -> SocketAddr
where
    F: Fn(&Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let route = Arc::new(route);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let route = route.clone();
            let svc = service_fn(move |req: Request<Incoming>| {
                let rsp = route(&req);
                async move { Ok::<_, std::convert::Infallible>(rsp) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A test log of `n` x509 entries (one real certificate, distinct timestamps), publishing
/// `size`; returns its state, URL and key.
async fn rfc6962_log(n: usize, size: usize) -> (Shared, String, Vec<u8>) {
    let (key, spki) = log_key();
    let (leaf, ca) = (cert("leaf.example"), cert("ca.example"));
    let entries = (0..n)
        .map(|i| {
            (
                x509_leaf(1000 + i as u64, &leaf),
                chain_data(std::slice::from_ref(&ca)),
            )
        })
        .collect();
    let log = Arc::new(Mutex::new(Log6962 {
        entries,
        size,
        wrong_root: None,
        max_per_get: 3,
        throttle: 0,
        key,
        requests: 0,
    }));
    let l = log.clone();
    let addr = serve(move |req| answer(&l, req)).await;
    (log, format!("http://{addr}/"), spki)
}

fn monitor(url: &str, spki: &[u8], kind: LogKind) -> Monitor {
    let mut spec = LogSpec::new(url, spki.to_vec(), kind);
    spec.max_batch = 4;
    spec.parallel = 3;
    Monitor::new(spec, HttpClient::new())
}

/// Runs an update, returning it and the entries delivered (index or malformed index).
async fn run(m: &Monitor, from: &Position) -> (Result<Update, CtError>, Vec<Result<u64, u64>>) {
    let mut seen = Vec::new();
    let r = m
        .update(from, |e| seen.push(e.map(|e| e.index).map_err(|e| e.index)))
        .await;
    (r, seen)
}

#[tokio::test]
async fn reads_an_rfc6962_log_in_order_and_continues_from_the_saved_position() {
    let (log, url, spki) = rfc6962_log(10, 7).await;
    let m = monitor(&url, &spki, LogKind::Rfc6962);
    let (r, seen) = run(&m, &Position::start()).await;
    let first = r.unwrap();
    assert_eq!(seen, (0..7).map(Ok).collect::<Vec<_>>());
    assert_eq!(first.position.tree_size, 7);
    assert_eq!(first.entries, 7);

    // The saved position survives serialization; the log grows and throttles once.
    let saved: Position =
        serde_json::from_str(&serde_json::to_string(&first.position).unwrap()).unwrap();
    {
        let mut l = log.lock().unwrap();
        l.size = 10;
        l.throttle = 1;
    }
    let (r, seen) = run(&m, &saved).await;
    let second = r.unwrap();
    assert_eq!(seen, (7..10).map(Ok).collect::<Vec<_>>());
    assert_eq!(second.position.tree_size, 10);

    // Nothing new: no entries, same position.
    let (r, seen) = run(&m, &second.position).await;
    assert!(seen.is_empty());
    assert_eq!(r.unwrap().position, second.position);
}

#[tokio::test]
async fn intermediate_positions_are_verified_by_consistency_proofs() {
    let (log, url, spki) = rfc6962_log(20, 20).await;
    let m = monitor(&url, &spki, LogKind::Rfc6962);
    let mut positions = Vec::new();
    let done = m
        .update_with_progress(&Position::start(), |_| {}, |p| positions.push(p.clone()), 8)
        .await
        .unwrap();
    // Batches of 4: checkpoints after 8 and 16 entries.
    let sizes: Vec<u64> = positions.iter().map(|p| p.tree_size).collect();
    assert_eq!(sizes, vec![8, 16]);
    // Continuing from an intermediate position reaches the same verified end.
    let (r, seen) = run(&m, &positions[0]).await;
    assert_eq!(seen.len(), 12);
    assert_eq!(r.unwrap().position, done.position);

    // Entries that differ from what the log signed fail at the first checkpoint.
    {
        let mut l = log.lock().unwrap();
        let good = l.entries.clone();
        l.entries[1].0 = good[2].0.clone();
        // The STH still signs the true tree; get-entries serves the altered one.
        let root = mth(&good.iter().map(|(i, _)| leaf_hash(i)).collect::<Vec<_>>());
        l.wrong_root = Some(root);
    }
    let mut positions = Vec::new();
    let r = m
        .update_with_progress(&Position::start(), |_| {}, |p| positions.push(p.clone()), 8)
        .await;
    assert!(positions.is_empty());
    assert!(
        matches!(
            r,
            Err(CtError::Misbehaviour(Misbehaviour::Inconsistent {
                first: 8,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_wrong_root_is_a_root_mismatch_and_the_position_does_not_move() {
    let (log, url, spki) = rfc6962_log(5, 5).await;
    log.lock().unwrap().wrong_root = Some([0x42; 32]);
    let m = monitor(&url, &spki, LogKind::Rfc6962);
    let (r, seen) = run(&m, &Position::start()).await;
    assert_eq!(seen.len(), 5, "entries are still delivered");
    match r {
        Err(CtError::Misbehaviour(Misbehaviour::RootMismatch {
            log,
            from,
            tree_size,
            ..
        })) => {
            assert_eq!((log.as_str(), from, tree_size), (url.as_str(), 0, 5));
        }
        other => panic!("expected a root mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tree_head_signed_by_another_key_is_a_bad_signature() {
    let (_log, url, _spki) = rfc6962_log(3, 3).await;
    let (_, other) = log_key();
    let m = monitor(&url, &other, LogKind::Rfc6962);
    let (r, seen) = run(&m, &Position::start()).await;
    assert!(seen.is_empty());
    assert!(
        matches!(
            r,
            Err(CtError::Misbehaviour(Misbehaviour::BadSignature {
                tree_size: 3,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_forked_history_is_inconsistent() {
    let (_log, url, spki) = rfc6962_log(8, 8).await;
    // A saved tree of 3 leaves the log never had.
    let mut frontier = Frontier::new();
    for i in 0u8..3 {
        frontier.push(leaf_hash(&[i]));
    }
    let saved = Position {
        tree_size: 3,
        root_hash: frontier.root(),
        frontier,
    };
    let m = monitor(&url, &spki, LogKind::Rfc6962);
    let (r, seen) = run(&m, &saved).await;
    assert!(seen.is_empty());
    assert!(
        matches!(
            r,
            Err(CtError::Misbehaviour(Misbehaviour::Inconsistent {
                first: 3,
                second: 8,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_malformed_entry_is_delivered_with_its_index_and_still_hashed() {
    let (log, url, spki) = rfc6962_log(4, 4).await;
    log.lock().unwrap().entries[2].0 = vec![0, 0, 1, 2, 3];
    let m = monitor(&url, &spki, LogKind::Rfc6962);
    let (r, seen) = run(&m, &Position::start()).await;
    assert_eq!(seen, vec![Ok(0), Ok(1), Err(2), Ok(3)]);
    assert_eq!(r.unwrap().position.tree_size, 4);
}

#[tokio::test]
async fn a_log_that_keeps_throttling_is_reported_after_bounded_retries() {
    let (log, url, spki) = rfc6962_log(1, 1).await;
    log.lock().unwrap().throttle = usize::MAX;
    let m = monitor(&url, &spki, LogKind::Rfc6962);
    let (r, _) = run(&m, &Position::start()).await;
    assert!(
        matches!(r, Err(CtError::RateLimited { attempts: 7, .. })),
        "{r:?}"
    );
}

/// A static-ct-api test log: its key, origin, and the certificates its entries log.
struct StaticLog {
    key: EcdsaKeyPair,
    spki: Vec<u8>,
    origin: String,
    leaf: Vec<u8>,
    ca: Vec<u8>,
}

/// The files of a static-ct-api log of `n` entries whose checkpoint signs `root` (or the
/// true root).
fn static_files(log: &StaticLog, n: u64, root: Option<Hash>) -> HashMap<String, Vec<u8>> {
    let fp: Hash = Sha256::digest(&log.ca).into();
    let leaf = &log.leaf;
    let mut files = HashMap::new();
    files.insert(format!("/issuer/{}", hex::encode(fp)), log.ca.clone());
    let mut hashes = Vec::new();
    let mut tiles: Vec<Vec<u8>> = Vec::new();
    for i in 0..n {
        let mut ext = vec![0, 0, 5];
        ext.extend_from_slice(&i.to_be_bytes()[3..]);
        let te = x509_timestamped(5000 + i, leaf, &ext);
        let mut input = vec![0, 0];
        input.extend_from_slice(&te);
        hashes.push(leaf_hash(&input));
        if i % 256 == 0 {
            tiles.push(Vec::new());
        }
        let tile = tiles.last_mut().unwrap();
        tile.extend_from_slice(&te);
        tile.extend_from_slice(&32u16.to_be_bytes());
        tile.extend_from_slice(&fp);
    }
    for (k, t) in tiles.into_iter().enumerate() {
        let w = (n - 256 * k as u64).min(256);
        let suffix = if w < 256 {
            format!(".p/{w}")
        } else {
            String::new()
        };
        files.insert(format!("/tile/data/{}{suffix}", tile_path(k as u64)), t);
    }
    // Hash tiles: level `l` holds the roots of the complete subtrees of 2^(8l) leaves.
    let mut level_hashes = hashes.clone();
    let mut level = 0;
    while !level_hashes.is_empty() {
        for (k, t) in level_hashes.chunks(256).enumerate() {
            let suffix = if t.len() < 256 {
                format!(".p/{}", t.len())
            } else {
                String::new()
            };
            files.insert(
                format!("/tile/{level}/{}{suffix}", tile_path(k as u64)),
                t.concat(),
            );
        }
        level_hashes = level_hashes.chunks_exact(256).map(subtree_root).collect();
        level += 1;
    }
    let sth = signed_sth(&log.key, n, root.unwrap_or_else(|| mth(&hashes)));
    files.insert(
        "/checkpoint".into(),
        checkpoint(&log.spki, &log.origin, &sth).into_bytes(),
    );
    files
}

async fn static_log(files: Arc<Mutex<HashMap<String, Vec<u8>>>>) -> SocketAddr {
    serve(
        move |req| match files.lock().unwrap().get(req.uri().path()) {
            Some(b) => Response::new(Full::new(Bytes::from(b.clone()))),
            None => Response::builder()
                .status(404)
                .body(Full::new(Bytes::new()))
                .unwrap(),
        },
    )
    .await
}

/// A static-ct-api log serving whatever `files` holds (see [`static_files`]), and a monitor
/// for it.
struct StaticServer {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    log: StaticLog,
    monitor: Monitor,
}

async fn static_server() -> StaticServer {
    let (key, spki) = log_key();
    let files = Arc::new(Mutex::new(HashMap::new()));
    let addr = static_log(files.clone()).await;
    let log = StaticLog {
        key,
        spki: spki.clone(),
        origin: format!("{addr}/sub"),
        leaf: cert("tile.example"),
        ca: cert("issuer.example"),
    };
    let kind = LogKind::StaticCt {
        monitoring_url: format!("http://{addr}/"),
    };
    let monitor = monitor(&format!("http://{addr}/sub"), &spki, kind);
    StaticServer {
        files,
        log,
        monitor,
    }
}

#[tokio::test]
async fn reads_a_static_ct_log_by_tiles_and_checks_its_root() {
    let (key, spki) = log_key();
    let files = Arc::new(Mutex::new(HashMap::new()));
    let addr = static_log(files.clone()).await;
    let submission = format!("http://{addr}/sub/");
    let log = StaticLog {
        key,
        spki: spki.clone(),
        origin: format!("{addr}/sub"),
        leaf: cert("tile.example"),
        ca: cert("issuer.example"),
    };
    *files.lock().unwrap() = static_files(&log, 300, None);
    let kind = LogKind::StaticCt {
        monitoring_url: format!("http://{addr}"),
    };
    let m = monitor(&submission, &spki, kind.clone());
    let mut chains = 0;
    let r = m
        .update(&Position::start(), |e| {
            let e = e.unwrap();
            assert_eq!(e.chain.len(), 1);
            chains += 1;
        })
        .await
        .unwrap();
    assert_eq!((chains, r.position.tree_size), (300, 300));

    // The log grows from 300 to 520: the rest of tile 1 (now full) and a partial tile 2.
    *files.lock().unwrap() = static_files(&log, 520, None);
    let (r2, seen) = run(&m, &r.position).await;
    assert_eq!(seen, (300..520).map(Ok).collect::<Vec<_>>());
    assert_eq!(r2.unwrap().position.tree_size, 520);

    // A checkpoint whose root the tiles do not give: from a saved position the hash tiles
    // show it before any entry is read; from the start, the entries' root does.
    *files.lock().unwrap() = static_files(&log, 600, Some([1; 32]));
    let (r3, seen) = run(&m, &r.position).await;
    assert!(
        matches!(
            r3,
            Err(CtError::Misbehaviour(Misbehaviour::Inconsistent {
                first: 300,
                second: 600,
                ..
            }))
        ),
        "{r3:?}"
    );
    assert!(seen.is_empty());
    let (r4, _) = run(&m, &Position::start()).await;
    assert!(
        matches!(
            r4,
            Err(CtError::Misbehaviour(Misbehaviour::RootMismatch {
                from: 0,
                tree_size: 600,
                ..
            }))
        ),
        "{r4:?}"
    );
}

#[tokio::test]
async fn a_long_static_ct_read_proves_and_reports_its_progress_by_hash_tiles() {
    let StaticServer {
        files,
        log,
        monitor: m,
    } = static_server().await;
    *files.lock().unwrap() = static_files(&log, 1300, None);
    let mut progress = Vec::new();
    let r = m
        .update_with_progress(
            &Position::start(),
            |_| {},
            |p| progress.push(p.clone()),
            500,
        )
        .await
        .unwrap();
    assert_eq!(r.position.tree_size, 1300);
    // Each at a tile boundary at least 500 entries after the last, and each a position the
    // read can resume from.
    let sizes: Vec<u64> = progress.iter().map(|p| p.tree_size).collect();
    assert_eq!(sizes, vec![512, 1024]);
    for p in &progress {
        let (resumed, seen) = run(&m, p).await;
        assert_eq!(seen.len() as u64, 1300 - p.tree_size);
        assert_eq!(resumed.unwrap().position, r.position);
    }

    // A hash tile that disagrees with the data after the first 512 entries (the level-1
    // hash of entries 512..768, which the proof at 512 reads): that position is not
    // proven, and nothing is reported.
    let mut bad = static_files(&log, 1300, None);
    bad.get_mut("/tile/1/000.p/5").unwrap()[2 * 32] ^= 1;
    *files.lock().unwrap() = bad;
    let mut progress = Vec::new();
    let r = m
        .update_with_progress(
            &Position::start(),
            |_| {},
            |p| progress.push(p.clone()),
            500,
        )
        .await;
    assert!(
        matches!(
            r,
            Err(CtError::Misbehaviour(Misbehaviour::Inconsistent {
                first: 512,
                second: 1300,
                ..
            }))
        ),
        "{r:?}"
    );
    assert!(progress.is_empty());
}

#[tokio::test]
async fn a_partial_tile_no_longer_served_is_read_from_the_full_tile() {
    let StaticServer {
        files,
        log,
        monitor: m,
    } = static_server().await;
    // The checkpoint is for 300 entries, but tile 1 has since filled and `.p/44` is gone.
    let mut grown = static_files(&log, 520, None);
    let old = static_files(&log, 300, None);
    grown.insert("/checkpoint".into(), old["/checkpoint"].clone());
    assert!(!grown.contains_key("/tile/data/001.p/44"));
    *files.lock().unwrap() = grown;
    let (r, seen) = run(&m, &Position::start()).await;
    assert_eq!(seen.len(), 300);
    assert_eq!(r.unwrap().position.tree_size, 300);
}

#[tokio::test]
async fn requests_keep_to_the_logs_rate_limit() {
    let (log, url, spki) = rfc6962_log(12, 12).await;
    let mut spec = LogSpec::new(&url, spki, LogKind::Rfc6962);
    spec.max_batch = 3;
    spec.parallel = 4;
    spec.rate_per_sec = Some(40.0);
    let m = Monitor::new(spec, HttpClient::new());
    let started = std::time::Instant::now();
    let (r, seen) = run(&m, &Position::start()).await;
    r.unwrap();
    assert_eq!(seen.len(), 12);
    let requests = log.lock().unwrap().requests;
    // get-sth plus four get-entries: the last starts no sooner than 4/40 s after the first.
    assert_eq!(requests, 5);
    assert!(started.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn an_rfc6962_log_started_at_its_end_is_read_on_from_there() {
    let (log, url, spki) = rfc6962_log(1040, 1037).await;
    let m = monitor(&url, &spki, LogKind::Rfc6962);
    let (position, sth) = m.start_at_end().await.unwrap();
    assert_eq!((position.tree_size, sth.tree_size), (1037, 1037));
    assert_eq!(position.root_hash, sth.root_hash);
    // The log has no get-entry-and-proof: the last entry, then its proof by hash; no
    // history.
    assert!(
        log.lock().unwrap().requests <= 4,
        "{}",
        log.lock().unwrap().requests
    );

    log.lock().unwrap().size = 1040;
    let (r, seen) = run(&m, &position).await;
    assert_eq!(seen, (1037..1040).map(Ok).collect::<Vec<_>>());
    assert_eq!(r.unwrap().position.tree_size, 1040);

    // A signed root the log's own proof does not lead to.
    log.lock().unwrap().wrong_root = Some([7; 32]);
    let r = m.start_at_end().await;
    assert!(
        matches!(
            r,
            Err(CtError::Misbehaviour(Misbehaviour::RootMismatch {
                tree_size: 1040,
                ..
            }))
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_static_ct_log_started_at_its_end_is_read_on_from_there() {
    let StaticServer {
        files,
        log,
        monitor: m,
    } = static_server().await;
    for n in [1, 255, 256, 257, 600, 65_536 + 513] {
        *files.lock().unwrap() = static_files(&log, n, None);
        let (position, sth) = m
            .start_at_end()
            .await
            .unwrap_or_else(|e| panic!("size {n}: {e}"));
        assert_eq!(position.tree_size, n);
        assert_eq!(position.root_hash, sth.root_hash, "size {n}");
    }

    *files.lock().unwrap() = static_files(&log, 600, None);
    let (position, _) = m.start_at_end().await.unwrap();
    *files.lock().unwrap() = static_files(&log, 700, None);
    let (r, seen) = run(&m, &position).await;
    assert_eq!(seen, (600..700).map(Ok).collect::<Vec<_>>());
    assert_eq!(r.unwrap().position.tree_size, 700);

    // A hash tile that does not give the signed root.
    let mut bad = static_files(&log, 600, None);
    bad.get_mut("/tile/0/002.p/88").unwrap()[0] ^= 1;
    *files.lock().unwrap() = bad;
    let r = m.start_at_end().await;
    assert!(
        matches!(
            r,
            Err(CtError::Misbehaviour(Misbehaviour::RootMismatch { .. }))
        ),
        "{r:?}"
    );
}
