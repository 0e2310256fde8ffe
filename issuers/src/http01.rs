//! The built-in HTTP-01 responder (RFC 8555 §8.3): answers
//! `GET /.well-known/acme-challenge/<token>` with the key authorization while an order is
//! being validated. It binds its address on first use and keeps serving from then on; tokens
//! are added before a challenge is marked ready and removed once the order is done.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::IssuerError;

const PREFIX: &str = "/.well-known/acme-challenge/";

/// A running responder.
#[derive(Debug, Clone)]
pub struct Http01Responder {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    addr: SocketAddr,
}

/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// The first pause after a failed accept; it doubles up to [`ACCEPT_PAUSE_MAX`].
const ACCEPT_PAUSE_MIN: std::time::Duration = std::time::Duration::from_millis(10);
/// The longest pause after failed accepts.
const ACCEPT_PAUSE_MAX: std::time::Duration = std::time::Duration::from_secs(1);

impl Http01Responder {
    /// Binds `addr` and starts serving on the current tokio runtime.
    pub async fn start(addr: SocketAddr) -> Result<Self, IssuerError> {
        let listener = TcpListener::bind(addr).await.map_err(|e| IssuerError::Io {
            path: format!("http-01 responder on {addr}").into(),
            source: e,
        })?;
        let addr = listener.local_addr().map_err(|e| IssuerError::Io {
            path: "http-01 responder".into(),
            source: e,
        })?;
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = tokens.clone();
        tokio::spawn(async move {
            // At most MAX_CONNECTIONS served at once: a peer that opens connections and
            // sends nothing holds a slot for the read deadline at most.
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
            let mut pause = ACCEPT_PAUSE_MIN;
            loop {
                let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                match listener.accept().await {
                    Ok((stream, _)) => {
                        pause = ACCEPT_PAUSE_MIN;
                        let tokens = served.clone();
                        tokio::spawn(async move {
                            let _slot = slot;
                            let _ = serve(stream, &tokens).await;
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, say: wait before trying again rather
                        // than spinning.
                        tracing::warn!(%addr, error = %e, pause_ms = pause.as_millis() as u64, "http-01 responder cannot accept; pausing");
                        drop(slot);
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(ACCEPT_PAUSE_MAX);
                    }
                }
            }
        });
        tracing::info!(%addr, "http-01 responder listening");
        Ok(Self { tokens, addr })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Publishes a token's key authorization (the caller checked the token).
    pub fn add(&self, token: &str, key_authorization: &str) {
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(token.to_string(), key_authorization.to_string());
        }
    }

    /// Withdraws a token.
    pub fn remove(&self, token: &str) {
        if let Ok(mut t) = self.tokens.lock() {
            t.remove(token);
        }
    }
}

async fn serve(
    mut stream: TcpStream,
    tokens: &Mutex<HashMap<String, String>>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    // Read the request head, at most 8 KiB, with a deadline so idle peers cannot pile up.
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if read.is_err() {
        return Ok(());
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let body = if method == "GET" || method == "HEAD" {
        path.strip_prefix(PREFIX)
            .and_then(|token| tokens.lock().ok().and_then(|t| t.get(token).cloned()))
    } else {
        None
    };
    let response = match body {
        Some(ka) => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            ka.len(),
            if method == "HEAD" { "" } else { &ka }
        ),
        None => {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
        }
    };
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_known_tokens_only() {
        let r = Http01Responder::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        r.add("tok", "tok.thumb");
        let addr = r.addr();
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/.well-known/acme-challenge/tok").await;
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with("tok.thumb"),
            "{ok}"
        );
        assert!(
            get("/.well-known/acme-challenge/other")
                .await
                .starts_with("HTTP/1.1 404")
        );
        r.remove("tok");
        assert!(
            get("/.well-known/acme-challenge/tok")
                .await
                .starts_with("HTTP/1.1 404")
        );
    }

    #[tokio::test]
    async fn idle_peers_cannot_take_more_than_the_connection_cap() {
        let r = Http01Responder::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        r.add("tok", "tok.thumb");
        let addr = r.addr();
        // Peers that connect and say nothing hold every slot.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let ask = || async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /.well-known/acme-challenge/tok HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.map(|_| out)
        };
        let waiting = tokio::spawn(ask());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "a connection beyond the cap was served"
        );
        // One idle peer leaves: the waiting request is served.
        drop(idle.pop());
        let out = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("served once a slot was free")
            .unwrap()
            .unwrap();
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    }
}
