//! "Did you mean" hints for misspelt field and value names.

/// Levenshtein edit distance between two short strings.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `input`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input_lower = input.to_ascii_lowercase().replace('-', "_");
    candidates
        .iter()
        .map(|c| (distance(&input_lower, &c.replace('-', "_")), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints() {
        let fields = ["name", "owner", "tags", "key_profile", "fullchain"];
        assert_eq!(did_you_mean("ownr", &fields), Some("owner"));
        assert_eq!(did_you_mean("key-profile", &fields), Some("key_profile"));
        assert_eq!(did_you_mean("full_chain", &fields), Some("fullchain"));
        assert_eq!(did_you_mean("zzzzzzzz", &fields), None);
    }
}
