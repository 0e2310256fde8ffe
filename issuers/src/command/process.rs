//! Reading the adapter process's output: bounded stdout, adapter text cut to size.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) use crate::process::{Tail, describe, kill_group, read_tail, redact};

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

/// A serial as the protocol sends it: lower-case hex without leading zero octets.
pub(super) fn serial_hex(der_content_hex: &str) -> String {
    let mut s = der_content_hex.to_ascii_lowercase();
    while s.len() > 2 && s.starts_with("00") {
        s.drain(..2);
    }
    s
}
