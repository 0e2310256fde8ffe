//! The client side of the control socket: connecting with errors that say what to do, and
//! one HTTP/1 exchange. The CLI talks to the daemon through it.

use std::io::ErrorKind;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;

use super::MAX_BODY;

/// How long connecting to the socket may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to the daemon's control socket, with errors that say what to do.
pub async fn connect(socket: &Path) -> Result<tokio::net::UnixStream, String> {
    let where_ = socket.display();
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::UnixStream::connect(socket))
        .await
        .map_err(|_| format!("the daemon's control socket {where_} did not accept a connection"))?
        .map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => format!(
                "the daemon's control socket {where_} refuses this user: only its owner and its group may use it"
            ),
            ErrorKind::NotFound | ErrorKind::ConnectionRefused => {
                format!("the daemon is not running (no control socket answers at {where_})")
            }
            _ => format!("cannot connect to the daemon's control socket {where_}: {e}"),
        })?;
    Ok(stream)
}

/// An answer being read: its status and body, and the connection it comes on (closed when
/// this is dropped).
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The body, as it comes.
    pub body: hyper::body::Incoming,
    conn: tokio::task::JoinHandle<Result<(), hyper::Error>>,
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Sends one request on a new connection to `socket` and returns the answer's head, its
/// body still to be read.
pub async fn request(
    socket: &Path,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<Answer, String> {
    let where_ = socket.display();
    let stream = connect(socket).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("talking to the daemon at {where_}: {e}"))?;
    let conn = tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "certresponder")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .body(Full::new(body))
        .map_err(|e| format!("building the request for {path}: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("the daemon at {where_} gave no answer to {path}: {e}"))?;
    Ok(Answer {
        status: resp.status(),
        body: resp.into_body(),
        conn,
    })
}

/// One HTTP/1 exchange on a new connection to `socket`: the status and the whole body.
pub async fn send(
    socket: &Path,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<(StatusCode, Bytes), String> {
    let mut answer = request(socket, method, path, body).await?;
    let status = answer.status;
    let bytes = Limited::new(&mut answer.body, 64 * MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the daemon's answer to {path}: {e}"))?
        .to_bytes();
    Ok((status, bytes))
}
