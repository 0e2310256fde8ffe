//! Running the adapter process: bounded reads of its output, killing its process group on
//! timeout, and keeping stderr short and free of private keys.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        // The command leads its own process group (pgid = its pid). The group id cannot be
        // reused before the child is reaped below, so this reaches only what it started.
        // `kill(1)` does it without unsafe code; should it be missing, the child is still
        // killed below.
        let _ = tokio::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    // SIGKILL to the child itself and wait for it; an error means it is already gone.
    let _ = child.kill().await;
}

/// Reads to the end, keeping at most `limit` bytes; returns whether there was more.
pub(super) async fn read_capped<R: AsyncRead + Unpin>(
    reader: Option<R>,
    out: &mut Vec<u8>,
    limit: usize,
) -> io::Result<bool> {
    let Some(mut reader) = reader else {
        return Ok(false);
    };
    let mut overflow = false;
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(overflow);
        }
        // Keep draining past the limit, so the command is never blocked writing.
        if out.len() + n <= limit {
            out.extend_from_slice(&chunk[..n]);
        } else {
            overflow = true;
        }
    }
}

/// Reads to the end, keeping the last [`STDERR_LIMIT`] bytes.
pub(super) async fn read_tail<R: AsyncRead + Unpin>(
    reader: Option<R>,
    tail: &mut Tail,
) -> io::Result<()> {
    let Some(mut reader) = reader else {
        return Ok(());
    };
    let mut chunk = [0u8; 8192];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        tail.push(&chunk[..n]);
    }
}

/// The end of a stream, bounded to [`STDERR_LIMIT`] bytes.
#[derive(Debug, Default)]
pub(super) struct Tail {
    buf: Vec<u8>,
    truncated: bool,
}

impl Tail {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > STDERR_LIMIT {
            let cut = self.buf.len() - STDERR_LIMIT;
            self.buf.drain(..cut);
            self.truncated = true;
        }
    }

    /// The kept text: trimmed, private keys withheld, `…` in front when the start was cut.
    pub(super) fn text(&self) -> String {
        let mut start = 0;
        if self.truncated {
            // Do not begin in the middle of a UTF-8 sequence.
            while self.buf.get(start).is_some_and(|b| b & 0xc0 == 0x80) {
                start += 1;
            }
        }
        let text = redact(String::from_utf8_lossy(&self.buf[start..]).trim());
        if self.truncated {
            format!("…{text}")
        } else {
            text
        }
    }
}

/// Replaces PEM private key blocks with a marker, so a careless adapter that prints a key
/// does not get it into our errors and logs.
pub(super) fn redact(text: &str) -> String {
    if !text.contains("PRIVATE KEY") {
        return text.to_string();
    }
    const WITHHELD: &str = "[private key withheld]";
    let mut out: Vec<&str> = Vec::new();
    let mut hiding = false;
    for line in text.lines() {
        let marks_key = line.contains("PRIVATE KEY-----");
        if hiding {
            if line.contains("-----END") {
                hiding = false;
            }
        } else if marks_key && line.contains("-----BEGIN") {
            out.push(WITHHELD);
            hiding = true;
        } else if marks_key && line.contains("-----END") {
            // The start of the block was cut off: what came before may be key material.
            out.clear();
            out.push(WITHHELD);
        } else {
            out.push(line);
        }
    }
    out.join("\n")
}

/// Cuts adapter-provided text to [`TEXT_LIMIT`] bytes, on a character boundary.
pub(super) fn bounded(text: &str) -> String {
    if text.len() <= TEXT_LIMIT {
        return text.to_string();
    }
    let mut end = TEXT_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The start of an unparseable stdout, for the error message.
pub(super) fn snippet(stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout);
    let text = redact(text.trim());
    let mut end = text.len().min(SNIPPET_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "…" } else { "" };
    format!("{}{cut}", text[..end].escape_debug())
}

pub(super) fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

/// How a process ended, in words.
pub(super) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// A serial as the protocol sends it: lower-case hex without leading zero octets.
pub(super) fn serial_hex(der_content_hex: &str) -> String {
    let mut s = der_content_hex.to_ascii_lowercase();
    while s.len() > 2 && s.starts_with("00") {
        s.drain(..2);
    }
    s
}
