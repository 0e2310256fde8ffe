//! PEM (RFC 7468) reading: finds every `-----BEGIN LABEL-----` block and decodes it.

use base64::Engine as _;

/// One decoded PEM block.
#[derive(Clone, PartialEq, Eq)]
pub struct PemBlock {
    /// The label between `BEGIN ` and the dashes, such as `CERTIFICATE`.
    pub label: String,
    /// The decoded DER bytes.
    pub der: Vec<u8>,
    /// Whether the block carries RFC 1421 headers (`Proc-Type`, `DEK-Info`): an encrypted
    /// legacy private key.
    pub encrypted: bool,
}

impl std::fmt::Debug for PemBlock {
    // The bytes may be a private key: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("len", &self.der.len())
            .finish()
    }
}

/// Whether the bytes are PEM text: valid UTF-8 with a `-----BEGIN ` line somewhere. Binary
/// DER that happens to contain the marker (say, in a subject field) is not PEM.
pub fn looks_like_pem(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|t| t.contains("-----BEGIN "))
}

/// Parses every PEM block in `bytes`. Text outside the blocks (comments, `openssl x509 -text`
/// output) is ignored, as OpenSSL does.
pub fn parse_pem(bytes: &[u8]) -> Result<Vec<PemBlock>, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "the file contains PEM markers but is not valid UTF-8 text".to_string())?;
    let mut blocks = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((lineno, line)) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let label = label.to_string();
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut encrypted = false;
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            if line.starts_with("-----") {
                return Err(format!(
                    "PEM block `{label}` opened on line {} is closed by `{line}`",
                    lineno + 1
                ));
            }
            if line.contains(':') {
                // RFC 1421 encapsulated header, as in `Proc-Type: 4,ENCRYPTED`.
                if line.starts_with("Proc-Type") && line.contains("ENCRYPTED") {
                    encrypted = true;
                }
                continue;
            }
            body.push_str(line);
        }
        if !closed {
            return Err(format!(
                "PEM block `{label}` opened on line {} has no END line",
                lineno + 1
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| {
                format!(
                    "PEM block `{label}` opened on line {} has bad base64: {e}",
                    lineno + 1
                )
            })?;
        if der.is_empty() {
            return Err(format!(
                "PEM block `{label}` opened on line {} is empty",
                lineno + 1
            ));
        }
        blocks.push(PemBlock {
            label,
            der,
            encrypted,
        });
    }
    Ok(blocks)
}

/// Encodes DER as a PEM block with 64-column lines.
pub fn encode_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let der: Vec<u8> = (0..200u8).collect();
        let pem = encode_pem("CERTIFICATE", &der);
        let blocks = parse_pem(pem.as_bytes()).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].label, "CERTIFICATE");
        assert_eq!(blocks[0].der, der);
    }

    #[test]
    fn unterminated_block_is_an_error() {
        let err = parse_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap_err();
        assert!(err.contains("no END line"), "{err}");
    }

    #[test]
    fn bad_base64_is_an_error() {
        let err = parse_pem(b"-----BEGIN X-----\n!!!!\n-----END X-----\n").unwrap_err();
        assert!(err.contains("bad base64"), "{err}");
    }
}
