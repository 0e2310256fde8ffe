//! Punycode encoding ([RFC 3492]), the ASCII form of Unicode DNS labels (`xn--…`).
//!
//! Only the encoder is needed: certificate names and watch-list entries are compared in their
//! ASCII form, as the certificates carry them ([RFC 5280 §7.2]).
//!
//! [RFC 3492]: https://www.rfc-editor.org/rfc/rfc3492
//! [RFC 5280 §7.2]: https://www.rfc-editor.org/rfc/rfc5280#section-7.2

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 0x80;

/// RFC 3492 §6.1: bias adaptation.
fn adapt(delta: u32, points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

/// The basic code point for digit `d` (`a`..`z`, `0`..`9`), lower case.
fn digit(d: u32) -> char {
    // Proven: callers pass d < BASE (36), so both casts stay in ASCII.
    let d = d as u8;
    char::from(if d < 26 { b'a' + d } else { b'0' + d - 26 })
}

/// Encodes `input` with RFC 3492 §6.3; `None` on arithmetic overflow (a label that long
/// is not a DNS label anyway).
pub fn encode(input: &str) -> Option<String> {
    let chars: Vec<u32> = input.chars().map(u32::from).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let basic = u32::try_from(out.len()).ok()?;
    let total = u32::try_from(chars.len()).ok()?;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut h) = (INITIAL_N, 0u32, INITIAL_BIAS, basic);
    while h < total {
        let m = chars.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(h + 1)?)?;
        n = m;
        for &c in &chars {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, h + 1, h == basic);
                delta = 0;
                h += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::encode;

    /// RFC 3492 §7.1 sample strings, given there as code points.
    fn from_points(points: &[u32]) -> String {
        points.iter().map(|&p| char::from_u32(p).unwrap()).collect()
    }

    #[test]
    fn rfc3492_samples() {
        // (A) Arabic (Egyptian).
        let a = from_points(&[
            0x0644, 0x064A, 0x0647, 0x0645, 0x0627, 0x0628, 0x062A, 0x0643, 0x0644, 0x0645, 0x0648,
            0x0634, 0x0639, 0x0631, 0x0628, 0x064A, 0x061F,
        ]);
        assert_eq!(encode(&a).unwrap(), "egbpdaj6bu4bxfgehfvwxn");
        // (B) Chinese (simplified).
        let b = from_points(&[
            0x4ED6, 0x4EEC, 0x4E3A, 0x4EC0, 0x4E48, 0x4E0D, 0x8BF4, 0x4E2D, 0x6587,
        ]);
        assert_eq!(encode(&b).unwrap(), "ihqwcrb4cv8a8dqg056pqjye");
        // (L) 3<nen>B<gumi><kinpachi><sensei>: mixed basic and non-basic.
        let l = from_points(&[
            0x0033, 0x5E74, 0x0042, 0x7D44, 0x91D1, 0x516B, 0x5148, 0x751F,
        ]);
        assert_eq!(encode(&l).unwrap(), "3B-ww4c5e180e575a65lsy2b");
        // (S) -> $1.00 <-: all basic, a trailing delimiter.
        assert_eq!(encode("-> $1.00 <-").unwrap(), "-> $1.00 <--");
    }

    #[test]
    fn common_labels() {
        assert_eq!(encode("bücher").unwrap(), "bcher-kva");
        assert_eq!(encode("münchen").unwrap(), "mnchen-3ya");
        assert_eq!(encode("例え").unwrap(), "r8jz45g");
    }
}
