//! The command adapter: a CA team's executable behind a versioned JSON protocol (see
//! `issuers/PROTOCOL.md`).
//!
//! For each operation the responder runs the configured program with its arguments, writes
//! one JSON request to its stdin, closes stdin and reads one JSON response from its stdout.
//! The program must answer within the configured timeout, or it is killed with its whole
//! process group and the call fails with [`IssuerError::Timeout`]. Its stderr is kept (the
//! last [`STDERR_LIMIT`] bytes, trimmed, private key blocks withheld) for the error
//! message. Exit status 0 means stdout holds the answer, success or a typed refusal; any other
//! status is [`IssuerError::Command`].
//!
//! What goes out is checked first (the CSR and certificates must parse), and what comes back
//! is checked before anyone relies on it: the leaf must parse, certify the CSR's key, cover the
//! requested names, not be a CA, and be signed by the first chain certificate. Requests never
//! carry private keys; issuance sends the CSR.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use certresponder_inventory::inspect::{self, CsrInfo};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Child;

use crate::IssuerError;
use crate::config::CommandConfig;
use crate::issuer::{
    CertStatus, Identifier, IssueRequest, IssuedChain, Issuer, RenewalWindow, RevocationReason,
    RevokeRequest,
};

/// The protocol version this responder speaks; requests carry it and responses must echo it.
pub const PROTOCOL_VERSION: u64 = 1;
/// How much of the command's stderr is kept for error messages: the last 4 KiB.
pub use crate::process::STDERR_LIMIT;
/// The largest response read from stdout: 1 MiB.
pub const STDOUT_LIMIT: usize = 1 << 20;
/// Longest adapter-provided text (an error message, a `why`) carried into our errors.
mod process;
mod response;

use process::*;
use response::*;

const TEXT_LIMIT: usize = 4096;
/// How much of an unparseable stdout is quoted in the error.
const SNIPPET_LIMIT: usize = 200;
/// When a renewal window names no `retry_after_secs`: ask again in six hours.
const DEFAULT_RENEWAL_RETRY: Duration = Duration::from_secs(6 * 3600);

/// The operations of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    Issue,
    Lookup,
    Revoke,
    Status,
    RenewalInfo,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Lookup => "lookup",
            Self::Revoke => "revoke",
            Self::Status => "status",
            Self::RenewalInfo => "renewal_info",
        }
    }
}

/// An issuer that is an external program speaking the JSON protocol of `issuers/PROTOCOL.md`.
pub struct CommandIssuer {
    id: String,
    cfg: CommandConfig,
}

impl std::fmt::Debug for CommandIssuer {
    // Only the program: arguments may hold things (tokens, environments) not meant for logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandIssuer")
            .field("id", &self.id)
            .field("program", &self.program())
            .field("timeout", &self.cfg.timeout)
            .finish_non_exhaustive()
    }
}

/// What a finished command left behind.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stdout_overflow: bool,
    stderr: String,
}

impl CommandIssuer {
    /// An issuer `id` that runs `cfg.command` for every operation.
    pub fn new(id: &str, cfg: CommandConfig) -> Self {
        Self {
            id: id.to_string(),
            cfg,
        }
    }

    /// The configured program (the first element of `command`).
    pub fn program(&self) -> &str {
        self.cfg.command.first().map_or("", String::as_str)
    }

    /// The prefix of every error: which issuer, which program, which operation.
    fn context(&self, op: Operation) -> String {
        format!(
            "issuer `{}` (command `{}`), operation `{}`",
            self.id,
            self.program(),
            op.name()
        )
    }

    fn protocol(&self, op: Operation, what: impl std::fmt::Display) -> IssuerError {
        IssuerError::Protocol(format!("{}: {what}", self.context(op)))
    }

    fn spawn_error(&self, program: &str, e: io::Error) -> IssuerError {
        let config = |message: String| IssuerError::Config {
            issuer: self.id.clone(),
            field: "command".into(),
            message,
        };
        match e.kind() {
            io::ErrorKind::NotFound if std::path::Path::new(program).exists() => config(format!(
                "`{program}` exists but could not be started: the interpreter on its `#!` line \
                 was not found"
            )),
            io::ErrorKind::NotFound if program.contains('/') => {
                config(format!("`{program}` was not found"))
            }
            io::ErrorKind::NotFound => config(format!(
                "`{program}` was not found on PATH (give an absolute path)"
            )),
            io::ErrorKind::PermissionDenied => config(format!(
                "`{program}` cannot be run: permission denied (is it executable?)"
            )),
            _ => IssuerError::Io {
                path: program.into(),
                source: e,
            },
        }
    }

    /// Runs the command once with `request` on stdin and returns the response's fields, or
    /// the typed error the response (or the way the command ended) stands for.
    async fn call(&self, op: Operation, request: Value) -> Result<Map<String, Value>, IssuerError> {
        let Some((program, args)) = self.cfg.command.split_first() else {
            return Err(IssuerError::Config {
                issuer: self.id.clone(),
                field: "command".into(),
                message: "is empty: give the program and its arguments".into(),
            });
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| self.protocol(op, format!("could not encode the request: {e}")))?;
        let started = Instant::now();
        let mut child = crate::process::clean_command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout ends everything it started.
            .process_group(0)
            // If the caller gives up on us (the future is dropped), the command goes too.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.spawn_error(program, e))?;
        let finished = self.collect(op, &mut child, &body).await?;
        tracing::debug!(
            issuer = %self.id,
            operation = op.name(),
            status = %describe(finished.status),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            stderr = %finished.stderr,
            "issuer command finished"
        );
        if !finished.status.success() {
            let mut status = describe(finished.status);
            if !finished.stdout.iter().all(u8::is_ascii_whitespace) {
                status.push_str(
                    "; its stdout was ignored (a response counts only with exit status 0)",
                );
            }
            return Err(IssuerError::Command {
                status: format!(
                    "{status}; issuer `{}`, command `{}`, operation `{}`",
                    self.id,
                    self.program(),
                    op.name()
                ),
                stderr: finished.stderr,
            });
        }
        if finished.stdout_overflow {
            return Err(self.protocol(
                op,
                format!(
                    "the response is larger than {STDOUT_LIMIT} bytes{}",
                    stderr_note(&finished.stderr)
                ),
            ));
        }
        parse_response(&finished.stdout, &finished.stderr)
            .map_err(|failure| self.failure_to_error(op, failure))
    }

    /// Feeds the request, drains stdout and stderr, and waits, all within the timeout.
    async fn collect(
        &self,
        op: Operation,
        child: &mut Child,
        body: &[u8],
    ) -> Result<Finished, IssuerError> {
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut out = Vec::new();
        let mut err_tail = Tail::default();
        let run = async {
            let write = async {
                if let Some(mut stdin) = stdin {
                    // A command may answer without reading its request (a broken pipe); its
                    // answer decides the outcome, so write errors are not ours to report.
                    let _ = stdin.write_all(body).await;
                    let _ = stdin.shutdown().await;
                }
            };
            let (_, overflow, read_err, status) = tokio::join!(
                write,
                read_capped(stdout, &mut out, STDOUT_LIMIT),
                read_tail(stderr, &mut err_tail),
                child.wait()
            );
            (overflow, read_err, status)
        };
        match tokio::time::timeout(self.cfg.timeout, run).await {
            Ok((overflow, read_err, status)) => {
                let program = self.program();
                let io_err = |source| IssuerError::Io {
                    path: program.into(),
                    source,
                };
                let status = status.map_err(io_err)?;
                let stdout_overflow = overflow.map_err(io_err)?;
                read_err.map_err(io_err)?;
                Ok(Finished {
                    status,
                    stdout: out,
                    stdout_overflow,
                    stderr: err_tail.text(),
                })
            }
            Err(_) => {
                kill_group(child).await;
                tracing::warn!(
                    issuer = %self.id,
                    operation = op.name(),
                    timeout_secs = self.cfg.timeout.as_secs(),
                    "issuer command timed out and was killed"
                );
                Err(IssuerError::Timeout(format!(
                    "{}: no answer within {:?}; the command was killed{}",
                    self.context(op),
                    self.cfg.timeout,
                    stderr_note(&err_tail.text())
                )))
            }
        }
    }

    fn failure_to_error(&self, op: Operation, failure: Failure) -> IssuerError {
        match failure {
            Failure::Protocol(what) => self.protocol(op, what),
            Failure::Refused {
                kind,
                message,
                retry_after,
            } => {
                let detail = format!("issuer `{}`: {message}", self.id);
                match kind.as_str() {
                    "rate_limited" => IssuerError::RateLimited {
                        retry_after,
                        detail,
                    },
                    "network" => IssuerError::Network(detail),
                    "server" => IssuerError::Server(detail),
                    "timeout" => IssuerError::Timeout(detail),
                    "unauthorized" => IssuerError::Unauthorized(detail),
                    "bad_csr" => IssuerError::BadCsr(detail),
                    "not_allowed" => IssuerError::NotAllowed(detail),
                    "already_revoked" => IssuerError::AlreadyRevoked(detail),
                    "bad_request" => IssuerError::BadRequest(detail),
                    "unsupported" => IssuerError::Unsupported(detail),
                    other => self.protocol(
                        op,
                        format!(
                            "unknown error kind `{other}` (known: {}); its message: {message}",
                            ERROR_KINDS.join(", ")
                        ),
                    ),
                }
            }
        }
    }

    /// The request of `issue` (or `lookup`, which carries the same fields) for `req`, and
    /// the CSR as read, checked before anything is sent.
    fn issue_request(
        &self,
        op: Operation,
        req: &IssueRequest,
    ) -> Result<(Value, CsrInfo), IssuerError> {
        let csr = inspect::inspect_csr_der(&req.csr_der)
            .map_err(|e| IssuerError::BadCsr(format!("issuer `{}`: {e}", self.id)))?;
        if !csr.signature_valid {
            return Err(IssuerError::BadCsr(format!(
                "issuer `{}`: the CSR's self-signature does not verify",
                self.id
            )));
        }
        let replaces = match &req.replaces {
            Some(der) => {
                inspect::inspect_certificate_der(der).map_err(|e| {
                    IssuerError::BadRequest(format!("issuer `{}`: `replaces`: {e}", self.id))
                })?;
                Some(inspect::encode_pem("CERTIFICATE", der))
            }
            None => None,
        };
        let request = json!({
            "version": PROTOCOL_VERSION,
            "operation": op.name(),
            "issuer": self.id,
            "csr": inspect::encode_pem("CERTIFICATE REQUEST", &req.csr_der),
            "identifiers": req.identifiers,
            "kind": req.kind,
            "profile": req.profile,
            "replaces": replaces,
            "request_id": req.request_id,
        });
        Ok((request, csr))
    }

    /// The request of an operation about one certificate: its PEM and serial, and `extra`.
    /// What is not a certificate is refused here; the command never sees it.
    fn about_certificate(
        &self,
        op: Operation,
        der: &[u8],
        extra: &[(&str, Value)],
    ) -> Result<Value, IssuerError> {
        let info = inspect::inspect_certificate_der(der).map_err(|e| {
            IssuerError::BadRequest(format!("issuer `{}`: not a certificate: {e}", self.id))
        })?;
        let mut request = json!({
            "version": PROTOCOL_VERSION,
            "operation": op.name(),
            "issuer": self.id,
            "certificate": inspect::encode_pem("CERTIFICATE", der),
            "serial": serial_hex(&info.serial),
        });
        for (field, value) in extra {
            request[*field] = value.clone();
        }
        Ok(request)
    }
}

/// Error kinds of protocol version 1.
#[async_trait]
impl Issuer for CommandIssuer {
    fn id(&self) -> &str {
        &self.id
    }

    async fn issue(&self, req: &IssueRequest) -> Result<IssuedChain, IssuerError> {
        let op = Operation::Issue;
        let (request, csr) = self.issue_request(op, req)?;
        let map = self.call(op, request).await?;
        decode_chain(&map, &csr, &req.identifiers).map_err(|e| self.protocol(op, e))
    }

    async fn lookup(&self, req: &IssueRequest) -> Result<Option<IssuedChain>, IssuerError> {
        let op = Operation::Lookup;
        if req.request_id.is_none() {
            return Ok(None);
        }
        let (request, csr) = self.issue_request(op, req)?;
        let map = self.call(op, request).await?;
        match map.get("found") {
            Some(Value::Bool(false)) => Ok(None),
            Some(Value::Bool(true)) => decode_chain(&map, &csr, &req.identifiers)
                .map(Some)
                .map_err(|e| self.protocol(op, e)),
            Some(_) => Err(self.protocol(op, "field `found` is not true or false")),
            None => Err(self.protocol(op, "the response has no field `found`")),
        }
    }

    async fn revoke(&self, req: &RevokeRequest) -> Result<(), IssuerError> {
        let op = Operation::Revoke;
        // `req.certificate_key` is deliberately not sent: no private key leaves the responder.
        let extra = [
            ("reason", json!(req.reason.name())),
            ("reason_code", json!(req.reason.code())),
        ];
        let request = self.about_certificate(op, &req.certificate_der, &extra)?;
        self.call(op, request).await.map(|_| ())
    }

    async fn status(&self, certificate_der: &[u8]) -> Result<CertStatus, IssuerError> {
        let op = Operation::Status;
        let request = self.about_certificate(op, certificate_der, &[])?;
        let map = self.call(op, request).await?;
        decode_status(&map).map_err(|e| self.protocol(op, e))
    }

    async fn renewal_info(
        &self,
        certificate_der: &[u8],
    ) -> Result<Option<RenewalWindow>, IssuerError> {
        let op = Operation::RenewalInfo;
        let request = self.about_certificate(op, certificate_der, &[])?;
        let map = self.call(op, request).await?;
        decode_window(&map).map_err(|e| self.protocol(op, e))
    }
}

/// Ends the command and everything in its process group, then reaps it.
#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Map<String, Value>, Failure> {
        parse_response(s.as_bytes(), "")
    }

    fn protocol_message(r: Result<Map<String, Value>, Failure>) -> String {
        match r {
            Err(Failure::Protocol(m)) => m,
            other => panic!("expected a protocol failure, got {other:?}"),
        }
    }

    #[test]
    fn responses_are_checked_for_shape_and_version() {
        assert!(parse(r#"{"version":1,"ok":true}"#).is_ok());
        assert!(protocol_message(parse("")).contains("printed nothing"));
        assert!(protocol_message(parse("hello")).contains("not one JSON object"));
        let two = protocol_message(parse(r#"{"version":1,"ok":true}{"version":1,"ok":true}"#));
        assert!(two.contains("trailing characters"), "{two}");
        assert!(protocol_message(parse("[1]")).contains("not an object"));
        let v2 = protocol_message(parse(
            r#"{"version":2,"ok":false,"error":{"kind":"unsupported","message":"I speak 2"}}"#,
        ));
        assert!(v2.contains("version 2") && v2.contains("I speak 2"), "{v2}");
        assert!(protocol_message(parse(r#"{"ok":true}"#)).contains("no `version`"));
        assert!(protocol_message(parse(r#"{"version":1,"ok":"yes"}"#)).contains("`ok`"));
        assert!(protocol_message(parse(r#"{"version":1,"ok":false}"#)).contains("`error`"));
        let m = protocol_message(parse(
            r#"{"version":1,"ok":false,"error":{"kind":"server"}}"#,
        ));
        assert!(m.contains("error.message"), "{m}");
    }

    #[test]
    fn refusals_carry_kind_message_and_retry_after() {
        let r = parse(
            r#"{"version":1,"ok":false,"error":{"kind":"rate_limited","message":"slow down","retry_after_secs":30}}"#,
        );
        assert_eq!(
            r.unwrap_err(),
            Failure::Refused {
                kind: "rate_limited".into(),
                message: "slow down".into(),
                retry_after: Some(Duration::from_secs(30)),
            }
        );
        let bad = parse(
            r#"{"version":1,"ok":false,"error":{"kind":"server","message":"x","retry_after_secs":-1}}"#,
        );
        assert!(protocol_message(bad).contains("retry_after_secs"));
    }

    #[test]
    fn windows_default_their_retry_and_must_not_run_backwards() {
        let map = |s: &str| parse(s).unwrap();
        assert_eq!(
            decode_window(&map(r#"{"version":1,"ok":true,"window":null}"#)),
            Ok(None)
        );
        let w = decode_window(&map(
            r#"{"version":1,"ok":true,"window":{"start":"2026-01-01T00:00:00Z","end":"2026-01-02T00:00:00+00:00"}}"#,
        ));
        assert_eq!(w.unwrap().unwrap().retry_after, DEFAULT_RENEWAL_RETRY);
        let backwards = decode_window(&map(
            r#"{"version":1,"ok":true,"window":{"start":"2026-01-02T00:00:00Z","end":"2026-01-01T00:00:00Z"}}"#,
        ));
        assert!(backwards.unwrap_err().contains("before"));
        let no_reason = decode_status(&map(
            r#"{"version":1,"ok":true,"status":"revoked","reason":null,"revoked_at":"2026-01-02T03:04:05Z"}"#,
        ));
        assert!(matches!(
            no_reason,
            Ok(CertStatus::Revoked { reason: None, .. })
        ));
    }

    #[test]
    fn stderr_is_bounded_to_its_tail_and_keys_are_withheld() {
        let mut tail = Tail::default();
        for i in 0..2000 {
            tail.push(format!("line {i} é\n").as_bytes());
        }
        let text = tail.text();
        assert!(text.starts_with('…'));
        assert!(text.ends_with("line 1999 é"));
        assert!(text.len() <= STDERR_LIMIT + '…'.len_utf8());
        let key = "oops\n-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\nafter";
        assert_eq!(redact(key), "oops\n[private key withheld]\nafter");
        let cut = "MIGHAgEA\nAAAA\n-----END EC PRIVATE KEY-----\nafter";
        assert_eq!(redact(cut), "[private key withheld]\nafter");
        assert_eq!(redact("plain"), "plain");
    }

    #[test]
    fn serials_lose_leading_zero_octets() {
        assert_eq!(serial_hex("00ab12"), "ab12");
        assert_eq!(serial_hex("00"), "00");
        assert_eq!(serial_hex("0A"), "0a");
    }
}
