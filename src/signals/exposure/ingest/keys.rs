//! The private keys in a secret taken from a report, reduced to their public halves by
//! [`extract`](crate::signals::exposure::extract), with the reason when none can be read.
//!
//! Secrets come as the scanners saw them: PEM blocks with real line breaks, or on one line
//! with literal `\n` escapes (a key in a JSON or `.env` file), indented, quoted; the
//! extractor reads all of these.

use certresponder_inventory::inspect::KeyInfo;

use crate::signals::exposure::extract::keys_in;

/// A key read from a secret.
pub(crate) struct KeyAt {
    /// Its public half.
    pub public: KeyInfo,
    /// Its encoding: `pem`, `openssh`, `jwk`...
    pub format: &'static str,
    /// The 1-based line of the secret it starts on.
    pub line: usize,
}

/// What a secret holds.
#[derive(Default)]
pub(crate) struct Keys {
    /// The keys read.
    pub keys: Vec<KeyAt>,
    /// Why keys that seemed to be there could not be read (never their content).
    pub problems: Vec<String>,
}

/// Reads every private key in `text`.
pub(crate) fn private_keys(text: &[u8]) -> Keys {
    let got = keys_in(text);
    let mut problems = Vec::new();
    if !got.encrypted.is_empty() {
        problems.push(
            "the key is encrypted with a passphrase: its public half cannot be read".to_string(),
        );
    }
    if got.unsupported > 0 {
        problems.push(
            "a private key of a kind whose public half cannot be derived here (DSA, or a \
             hardware-bound OpenSSH key)"
                .to_string(),
        );
    }
    if got.keys.is_empty() && problems.is_empty() && cut_off(text) {
        problems.push("the key is cut off: its block has no END line".to_string());
    }
    Keys {
        keys: got
            .keys
            .into_iter()
            .map(|k| KeyAt {
                public: k.public,
                format: k.format,
                line: k.line.unwrap_or(1),
            })
            .collect(),
        problems,
    }
}

/// Whether a private-key block opens in `text` and is never closed.
fn cut_off(text: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text).to_ascii_uppercase();
    match text.rfind("-----BEGIN ") {
        Some(at) => {
            let rest = &text[at..];
            rest.contains("PRIVATE KEY") && !rest.contains("-----END ")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::exposure::ingest::test_keys::p256;

    #[test]
    fn plain_escaped_indented_and_cut_off() {
        let (pem, public) = p256();
        let got = private_keys(format!("x\ny\n{pem}").as_bytes());
        assert_eq!(got.keys.len(), 1);
        assert_eq!(got.keys[0].line, 3);
        assert!(got.keys[0].public.same_public_key(&public));

        let escaped = format!("{{\"key\": \"{}\"}}", pem.replace('\n', "\\n"));
        let got = private_keys(escaped.as_bytes());
        assert_eq!(got.keys.len(), 1, "{:?}", got.problems);
        assert_eq!(got.keys[0].line, 1);

        let indented: String = pem.lines().map(|l| format!("    {l}\n")).collect();
        assert_eq!(private_keys(indented.as_bytes()).keys.len(), 1);

        let cut = &pem[..pem.len() / 2];
        let got = private_keys(cut.as_bytes());
        assert!(got.keys.is_empty());
        assert_eq!(got.problems.len(), 1);
    }
}
