//! PEM private keys (RFC 7468) wherever text carries them, repaired the way keyfinder
//! repairs them: the block's body is reduced to its base64 characters after undoing what
//! source code, markup and documents do to it:
//!
//! - line breaks written as escapes (`\n`, `\\n`, `\\\\n`, `\r\n`, `\u000a`, `&#10;`,
//!   `<br>`), and escaped `/` (`\/`, JSON from PHP);
//! - the quotes and `+` of string concatenation across lines (only the characters inside
//!   the string the BEGIN line opened are kept);
//! - indentation, Markdown quotes, and a prefix shared by every line (`//`, `#`, `+` of a
//!   diff);
//! - RFC 1421 header lines (`Proc-Type`, `DEK-Info`; a `Proc-Type: 4,ENCRYPTED` block with a
//!   well-formed `DEK-Info` and whole cipher blocks is an encrypted key).
//!
//! Each repair is only a candidate: a candidate counts when the bytes decode to a complete
//! private key, so repairs cannot turn other text into a key.

use memchr::memmem;
use zeroize::Zeroizing;

use super::{Block, Encrypted, Seen, b64, encrypted, material, ssh};

/// The longest PEM block read (an RSA-16384 key in escaped JSON is about 25 KiB).
const MAX_BLOCK: usize = 256 * 1024;
/// The longest label before `PRIVATE KEY` (`SSH2 ENCRYPTED `).
const MAX_LABEL_PREFIX: usize = 32;
/// How far before the BEGIN marker a string literal's opening quote is looked for.
const MAX_QUOTE_PREFIX: usize = 4096;
/// Characters that may form a prefix shared by every line of a commented or diffed block.
const PREFIX_CHARS: &[u8] = b"/#*;-+>!%| \t";

/// Parses the PEM block whose `PRIVATE KEY-----` marker is at `hit`, if it is a BEGIN line.
pub(super) fn block_at(bytes: &[u8], hit: usize) -> Option<Block> {
    let (begin, label) = begin_marker(bytes, hit)?;
    let body_start = hit + super::PEM_MARKER.len();
    let end_marker = [b"-----END ", label, b"PRIVATE KEY-----"].concat();
    let window = &bytes[body_start..bytes.len().min(body_start + MAX_BLOCK)];
    // The body holds no dashes: the next five end it, and must be the END line (looking no
    // further keeps the work linear in text full of BEGIN lines).
    let body_len = memmem::find(window, b"-----")?;
    // A line prefix may stand before the END line as before the BEGIN one; a `-` (a diff's
    // removed line) then runs into the dashes.
    let prefixed =
        window[body_len..].starts_with(b"-") && window[body_len + 1..].starts_with(&end_marker);
    if !prefixed && !window[body_len..].starts_with(&end_marker) {
        return None;
    }
    let body = &window[..body_len];
    let end = body_start + body_len + usize::from(prefixed) + end_marker.len();
    let block = |seen: Vec<Seen>| {
        Some(Block {
            start: begin,
            end,
            seen,
        })
    };
    let quote = open_quote(bytes, begin);
    match label {
        b"ENCRYPTED " => {
            return candidates(body, quote)
                .find_map(|c| encrypted::pkcs8(&c, "pem"))
                .and_then(|seen| block(vec![seen]));
        }
        b"SSH2 ENCRYPTED " => {
            return candidates(body, quote)
                .find_map(|c| ssh::ssh_com(&c))
                .and_then(|seen| block(vec![seen]));
        }
        _ => {}
    }
    // RFC 1421 headers: an encrypted "traditional" key (any label, DSA's included).
    if memmem::find(body, b"DEK-Info").is_some()
        || (memmem::find(body, b"Proc-Type").is_some()
            && memmem::find(body, b"ENCRYPTED").is_some())
    {
        let cipher = encrypted::dek_info(body)?;
        let encryption = format!("PEM {cipher}");
        return candidates(body, quote)
            .any(|c| encrypted::is_ciphertext(&c))
            .then(|| Encrypted::sealed("pem", encryption))
            .and_then(|seen| block(vec![seen]));
    }
    if label == b"DSA " {
        return block(vec![Seen::Unsupported]);
    }
    for candidate in candidates(body, quote) {
        let seen = if label == b"OPENSSH " {
            ssh::openssh(&candidate)
        } else {
            material::private_der(&candidate, "pem").map(|s| vec![s])
        };
        if let Some(seen) = seen {
            return block(seen);
        }
    }
    None
}

/// The start of the `-----BEGIN ` marker before `hit` and the label's words before
/// `PRIVATE KEY` (with their trailing space), when `hit` is on a BEGIN line.
fn begin_marker(bytes: &[u8], hit: usize) -> Option<(usize, &[u8])> {
    let from = hit.saturating_sub(MAX_LABEL_PREFIX + 16);
    let before = &bytes[from..hit];
    let dashes = memmem::rfind(before, b"-----BEGIN ")?;
    let label = &before[dashes + 11..];
    label
        .iter()
        .all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
        .then_some((from + dashes, label))
}

/// The quote character of a string literal left open on the BEGIN line before the marker
/// (`key = "-----BEGIN ...`), if any.
fn open_quote(bytes: &[u8], begin: usize) -> Option<u8> {
    let from = begin.saturating_sub(MAX_QUOTE_PREFIX);
    let line_start = memchr::memrchr(b'\n', &bytes[from..begin]).map_or(from, |i| from + i + 1);
    let prefix = &bytes[line_start..begin];
    // The quote opened last wins when several are open (`it's "-----BEGIN`).
    let mut open: Option<(u8, usize)> = None;
    for q in [b'"', b'\'', b'`'] {
        let mut count = 0usize;
        let mut at = 0;
        for (i, &b) in prefix.iter().enumerate() {
            if b == q && (i == 0 || prefix[i - 1] != b'\\') {
                count += 1;
                at = i;
            }
        }
        if count % 2 == 1 && open.is_none_or(|(_, i)| at > i) {
            open = Some((q, at));
        }
    }
    open.map(|(q, _)| q)
}

/// The decoded candidates for a block's body, most specific repair first.
fn candidates(body: &[u8], quote: Option<u8>) -> impl Iterator<Item = Zeroizing<Vec<u8>>> + '_ {
    let quotes = [quote, None];
    let tries = quotes
        .into_iter()
        .enumerate()
        .filter(move |(i, q)| *i == 0 || quote.is_some() && q.is_none())
        .flat_map(|(_, q)| [(q, false), (q, true)]);
    tries.filter_map(move |(q, strip)| {
        let text = clean(body, q, strip)?;
        b64::decode(&text)
    })
}

/// One line of the body as it is being cleaned.
type Line = Zeroizing<Vec<u8>>;

/// The body's base64 text. `quote`: keep only what is inside that string literal (the BEGIN
/// line opened it). `strip`: remove the prefix every line shares; `None` when asked to
/// strip and there is none (the candidate would repeat another).
fn clean(body: &[u8], quote: Option<u8>, strip: bool) -> Option<Zeroizing<Vec<u8>>> {
    let lines = split_lines(body, quote);
    let lines: Vec<&Line> = lines
        .iter()
        .filter(|l| !l.contains(&b':')) // RFC 1421 headers
        .collect();
    let prefix = if strip {
        let p = common_prefix(&lines);
        if !p.iter().any(|&b| b == b'/' || b == b'+') {
            return None;
        }
        p.len()
    } else {
        0
    };
    let mut out = Zeroizing::new(Vec::with_capacity(body.len()));
    for line in lines {
        let line = trim_start(line);
        let line = line.get(prefix.min(line.len())..).unwrap_or_default();
        out.extend(line.iter().copied().filter(|&b| b64::is_base64(b)));
    }
    (!out.is_empty()).then_some(out)
}

fn trim_start(line: &[u8]) -> &[u8] {
    let n = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &line[n..]
}

/// The prefix of [`PREFIX_CHARS`] shared by every non-blank line (after indentation).
fn common_prefix<'a>(lines: &[&'a Line]) -> &'a [u8] {
    let mut prefix: Option<&[u8]> = None;
    for line in lines {
        let line = trim_start(line);
        if line.is_empty() {
            continue;
        }
        let own = &line[..line.iter().take_while(|b| PREFIX_CHARS.contains(b)).count()];
        prefix = Some(match prefix {
            None => own,
            Some(p) => &p[..p.iter().zip(own).take_while(|(a, b)| a == b).count()],
        });
    }
    prefix.unwrap_or_default()
}

/// Splits the body into lines at real and escaped line breaks, undoing escapes, entities
/// and markup, and keeping only what is inside the string literal when `quote` is given.
fn split_lines(body: &[u8], quote: Option<u8>) -> Vec<Line> {
    let mut lines: Vec<Line> = vec![Zeroizing::new(Vec::new())];
    let mut inside = quote.is_some();
    let mut i = 0;
    let push = |lines: &mut Vec<Line>, c: Option<u8>, inside: bool| match c {
        None => lines.push(Zeroizing::new(Vec::new())),
        Some(c) if inside || quote.is_none() => {
            if let Some(l) = lines.last_mut() {
                l.push(c);
            }
        }
        Some(_) => {}
    };
    while i < body.len() {
        let c = body[i];
        match c {
            b'\\' => {
                let run = body[i..].iter().take_while(|&&b| b == b'\\').count();
                let j = i + run;
                match body.get(j) {
                    Some(b'n' | b'r') => {
                        push(&mut lines, None, inside);
                        i = j + 1;
                    }
                    Some(b't') => i = j + 1,
                    Some(b'u') => match hex_at(body, j + 1, 4) {
                        Some(cp) => {
                            push(&mut lines, code_point(cp), inside);
                            i = j + 5;
                        }
                        None => i = j + 1,
                    },
                    Some(b'x') => match hex_at(body, j + 1, 2) {
                        Some(cp) => {
                            push(&mut lines, code_point(cp), inside);
                            i = j + 3;
                        }
                        None => i = j + 1,
                    },
                    // An escaped quote does not end the string.
                    Some(b'"' | b'\'' | b'`') => i = j + 1,
                    _ => i = j,
                }
            }
            b'\n' | b'\r' => {
                push(&mut lines, None, inside);
                i += 1;
            }
            _ if Some(c) == quote => {
                inside = !inside;
                i += 1;
            }
            b'<' => {
                // Markup such as `<br>` or `<br />`: a line break.
                let tag = body[i..body.len().min(i + 16)]
                    .iter()
                    .position(|&b| b == b'>');
                match tag {
                    Some(n) => {
                        push(&mut lines, None, inside);
                        i += n + 1;
                    }
                    None => i += 1,
                }
            }
            b'&' => {
                let (cp, len) = entity(&body[i..]);
                if let Some(cp) = cp {
                    push(&mut lines, code_point(cp), inside);
                }
                i += len;
            }
            _ => {
                push(&mut lines, Some(c), inside);
                i += 1;
            }
        }
    }
    lines
}

/// The character a code point stands for in a key body: `None` for a line break, itself
/// for base64 characters, and a space (dropped later) for anything else.
fn code_point(cp: u32) -> Option<u8> {
    match u8::try_from(cp) {
        Ok(b'\n' | b'\r') => None,
        Ok(b) if b64::is_base64(b) => Some(b),
        _ => Some(b' '),
    }
}

/// `n` hex digits at `at`.
fn hex_at(body: &[u8], at: usize, n: usize) -> Option<u32> {
    let digits = body.get(at..at + n)?;
    let s = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// An HTML/XML entity at the start of `s`: its code point (numeric entities) and length;
/// a lone `&` is one byte long.
fn entity(s: &[u8]) -> (Option<u32>, usize) {
    let Some(semi) = s.iter().take(10).position(|&b| b == b';') else {
        return (None, 1);
    };
    let inner = &s[1..semi];
    let cp = match inner {
        [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok()),
        [b'#', dec @ ..] => std::str::from_utf8(dec).ok().and_then(|d| d.parse().ok()),
        name if name.iter().all(u8::is_ascii_alphanumeric) => None,
        _ => return (None, 1),
    };
    (cp, semi + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(body: &str, quote: Option<u8>, strip: bool) -> String {
        clean(body.as_bytes(), quote, strip)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .unwrap_or_default()
    }

    #[test]
    fn escapes_quotes_and_concatenation_are_undone() {
        assert_eq!(cleaned("\\nAB+C\\nDE/F\\n", Some(b'"'), false), "AB+CDE/F");
        assert_eq!(cleaned("\\\\nAB\\\\nCD\\\\n", Some(b'"'), false), "ABCD");
        assert_eq!(
            cleaned(
                "\\n\" +\n  \"AB+C\\n\" +\n  \"DE\\n\" +\n  \"",
                Some(b'"'),
                false
            ),
            "AB+CDE"
        );
        assert_eq!(cleaned("\nAB\\/C\n", None, false), "AB/C");
        assert_eq!(
            cleaned("&#10;AB&#43;C&#xA;<br/>DE&amp;", None, false),
            "AB+CDE"
        );
    }

    #[test]
    fn headers_and_shared_prefixes_are_removed() {
        assert_eq!(
            cleaned(
                "\nProc-Type: 4,ENCRYPTED\nDEK-Info: X,00\n\nABCD\n",
                None,
                false
            ),
            "ABCD"
        );
        assert_eq!(cleaned("\n// AB/C\n// DEF\n// ", None, true), "AB/CDEF");
        assert_eq!(cleaned("\n+AB\n+CD\n+", None, true), "ABCD");
        assert_eq!(cleaned("\nAB\nCD\n", None, true), "");
    }

    #[test]
    fn open_quotes_are_found() {
        let text = b"const k = \"-----BEGIN";
        assert_eq!(open_quote(text, 11), Some(b'"'));
        let text = b"x = 'it''s' -----BEGIN";
        assert_eq!(open_quote(text, 12), None);
        let text = b"{\"a\": \"b\", \"k\": \"-----BEGIN";
        assert_eq!(open_quote(text, 17), Some(b'"'));
    }
}
